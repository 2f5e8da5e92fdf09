// Words and numbers of the account pages: usage against quotas, sizes, times, browsers.
import type { Quotas, Usage } from '../api/types';

const MIB = 1024 * 1024;

/** "1.5 GiB", "300 MiB", "12 KiB". */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '?';
  if (n >= 1024 * MIB) return `${trim(n / (1024 * MIB))} GiB`;
  if (n >= MIB) return `${trim(n / MIB)} MiB`;
  if (n >= 1024) return `${trim(n / 1024)} KiB`;
  return `${n} B`;
}

function trim(x: number): string {
  return x >= 100 ? String(Math.round(x)) : x.toFixed(1).replace(/\.0$/, '');
}

function plural(n: number, one: string, many: string): string {
  return n === 1 ? one : many;
}

/** One line of usage: "3 of 10 workspaces"; without a quota (null or absent): "3 workspaces". */
export interface UsageLine {
  key: string;
  text: string;
  /** 0..1 of the quota; null without one. */
  fraction: number | null;
}

export function usageLines(u: Usage): UsageLine[] {
  const q: Quotas = u.quotas ?? {};
  const count = (key: keyof Quotas, used: number, one: string, many: string, suffix = ''): UsageLine => {
    const limit = q[key];
    return limit == null
      ? { key, text: `${used} ${plural(used, one, many)}${suffix} (no limit)`, fraction: null }
      : { key, text: `${used} of ${limit} ${plural(limit, one, many)}${suffix}`, fraction: limit > 0 ? used / limit : 1 };
  };
  const size = (key: 'storageMib' | 'memoryMib', used: number, what: string): UsageLine => {
    const limit = q[key];
    return limit == null
      ? { key, text: `${formatBytes(used)} ${what} (no limit)`, fraction: null }
      : { key, text: `${formatBytes(used)} of ${formatBytes(limit * MIB)} ${what}`, fraction: limit > 0 ? used / (limit * MIB) : 1 };
  };
  return [
    count('workspaces', u.workspaces, 'workspace', 'workspaces'),
    count('running', u.running, 'workspace', 'workspaces', ' running'),
    size('storageMib', u.storageBytes, 'storage'),
    size('memoryMib', u.memoryBytes, 'memory'),
    count('sessions', u.sessions, 'session', 'sessions'),
    count('connections', u.connections, 'connection', 'connections'),
  ];
}

/** A local date and time a person reads at a glance: "12 Mar 2026, 14:05". */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '';
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return iso;
  return new Date(t).toLocaleString(undefined, { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/** "Chrome 131 on Linux" from a User-Agent header; the header itself when it is not a browser's. */
export function describeUserAgent(ua: string): string {
  if (!ua) return 'Unknown';
  const os = /Windows/.test(ua)
    ? 'Windows'
    : /iPhone|iPad/.test(ua)
      ? 'iOS'
      : /Mac OS X|Macintosh/.test(ua)
        ? 'macOS'
        : /Android/.test(ua)
          ? 'Android'
          : /CrOS/.test(ua)
            ? 'ChromeOS'
            : /Linux/.test(ua)
              ? 'Linux'
              : '';
  const browsers: [RegExp, string][] = [
    [/Edg\/(\d+)/, 'Edge'],
    [/OPR\/(\d+)/, 'Opera'],
    [/Firefox\/(\d+)/, 'Firefox'],
    [/HeadlessChrome\/(\d+)/, 'Headless Chrome'],
    [/Chrom(?:e|ium)\/(\d+)/, 'Chrome'],
    [/Version\/(\d+)[^ ]* .*Safari\//, 'Safari'],
  ];
  for (const [re, name] of browsers) {
    const m = re.exec(ua);
    if (m) return `${name} ${m[1]}${os ? ` on ${os}` : ''}`;
  }
  return ua.length > 60 ? `${ua.slice(0, 60)}…` : ua;
}

/** A person's wording of an error thrown by the API client. */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
