// Search across the workspace's files (ripgrep in the workspace, streamed as NDJSON), and
// replace across them with one undo.
import type { SearchLine, SearchQuery } from '../api/generated';
import type { WorkspaceClient } from '../api/workspace';

export type SearchMatch = Extract<SearchLine, { type: 'match' }>;
export type SearchDone = Extract<SearchLine, { type: 'done' }>;

/** Runs a search; `onLine` gets each line as it arrives. Resolves when the answer is whole. */
export async function runSearch(workspaceId: string, query: SearchQuery, onLine: (line: SearchLine) => void, signal: AbortSignal): Promise<void> {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '' && v !== null) params.set(k, String(v));
  const response = await fetch(`/api/workspaces/${encodeURIComponent(workspaceId)}/search?${params}`, { signal, credentials: 'same-origin' });
  if (!response.ok || !response.body) {
    let message = `search failed (${response.status})`;
    try {
      message = (await response.json()).error.message;
    } catch {
      /* keep the status */
    }
    onLine({ type: 'error', message });
    return;
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let rest = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    rest += value;
    let nl;
    while ((nl = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      if (line.trim()) onLine(JSON.parse(line) as SearchLine);
    }
  }
}

/** A JavaScript pattern for the same search, to replace with (literal text is escaped). */
export function patternOf(query: SearchQuery): RegExp {
  let source = query.regex ? query.query : query.query.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  if (query.wholeWord) source = `\\b(?:${source})\\b`;
  return new RegExp(source, query.caseSensitive ? 'gu' : 'giu');
}

/** A planned replacement in one file: its text before and after, and the version read. */
export interface FileReplacement {
  path: string;
  before: string;
  after: string;
  version: string;
  count: number;
}

/**
 * Reads every file with matches and computes its replaced text, changing only the lines the
 * search reported (as rg matched them: one line at a time), each only if it still reads as
 * it did. Nothing is written yet; files whose lines changed since are left out and named.
 */
export async function planReplace(
  client: WorkspaceClient,
  byFile: Map<string, SearchMatch[]>,
  query: SearchQuery,
  replacement: string,
): Promise<{ plans: FileReplacement[]; changed: string[] }> {
  const pattern = patternOf(query);
  const plans: FileReplacement[] = [];
  const changed: string[] = [];
  for (const [path, matches] of byFile) {
    const file = await client.readFile(path);
    if (file.encoding !== 'utf8') continue;
    const lines = file.content.split('\n');
    let count = 0;
    let stale = false;
    for (const m of matches) {
      const i = Number(m.line) - 1;
      const cr = lines[i]?.endsWith('\r') ? '\r' : '';
      const text = cr ? lines[i].slice(0, -1) : lines[i];
      if (m.clipped) continue; // a cut of a long line cannot be checked: left as it is
      if (text !== m.text) {
        stale = true;
        break;
      }
      lines[i] =
        text.replace(pattern, (...args) => {
          count++;
          // `$1`-style references in regex mode, literal text otherwise.
          if (!query.regex) return replacement;
          const groups = args.slice(1, -2) as (string | undefined)[];
          return replacement.replace(/\$(\d+|\$)/g, (_m: string, g: string) => (g === '$' ? '$' : (groups[Number(g) - 1] ?? '')));
        }) + cr;
    }
    if (stale) changed.push(path);
    else if (count > 0) plans.push({ path, before: file.content, after: lines.join('\n'), version: file.version, count });
  }
  return { plans, changed };
}

/**
 * Writes every planned file, each only if it is still the version read (a file changed
 * meanwhile is skipped, not overwritten). Returns what was written, for the undo.
 */
export async function applyReplace(client: WorkspaceClient, plans: FileReplacement[]): Promise<{ done: FileReplacement[]; skipped: string[] }> {
  const done: FileReplacement[] = [];
  const skipped: string[] = [];
  for (const plan of plans) {
    try {
      const written = await client.writeFile(plan.path, plan.after, plan.version);
      done.push({ ...plan, version: written.version });
    } catch {
      skipped.push(plan.path);
    }
  }
  return { done, skipped };
}

/** Puts back what `applyReplace` wrote, file by file, where nobody changed it since. */
export async function undoReplace(client: WorkspaceClient, done: FileReplacement[]): Promise<string[]> {
  const skipped: string[] = [];
  for (const plan of done) {
    try {
      await client.writeFile(plan.path, plan.before, plan.version);
    } catch {
      skipped.push(plan.path);
    }
  }
  return skipped;
}
