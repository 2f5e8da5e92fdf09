// REST client for PROTOCOL.md sections 0 and 7.
import { unauthorized } from './auth';
import { ApiError, type PublishTemplate, type Template, type Workspace, type WorkspaceLimits } from './types';

const DEFAULT_TIMEOUT_MS = 20_000;

export interface RequestOptions {
  timeoutMs?: number;
  /**
   * A 401 means the session is gone, and the app goes to the sign-in page (default). The
   * sign-in request itself turns it off: there a 401 is a wrong password.
   */
  signInOn401?: boolean;
}

export async function request<T>(method: string, url: string, body?: unknown, opts: RequestOptions = {}): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs);
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? { Accept: 'application/json' } : { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: ctrl.signal,
    });
  } catch (e) {
    if (ctrl.signal.aborted) throw new ApiError('timeout', `The server did not answer within ${timeoutMs / 1000} s.`);
    throw new ApiError('unavailable', 'Cannot reach the server. Check your connection.');
  } finally {
    clearTimeout(timer);
  }
  if (!res.ok) {
    let code = 'internal';
    let message = `${res.status} ${res.statusText}`;
    try {
      const j = await res.json();
      if (j && j.error) {
        code = j.error.code ?? code;
        message = j.error.message ?? message;
      }
    } catch {
      /* body was not JSON */
    }
    const err = new ApiError(code, message, res.status);
    if (res.status === 429) {
      const after = Number(res.headers.get('Retry-After'));
      if (Number.isFinite(after) && after >= 0) err.retryAfter = Math.ceil(after);
    }
    if (res.status === 401 && opts.signInOn401 !== false) unauthorized();
    throw err;
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

const enc = encodeURIComponent;

export const api = {
  listWorkspaces: () => request<Workspace[]>('GET', '/api/workspaces'),
  getWorkspace: (id: string) => request<Workspace>('GET', `/api/workspaces/${enc(id)}`),
  createWorkspace: (name: string, template: string, limits?: WorkspaceLimits) =>
    request<Workspace>(
      'POST',
      '/api/workspaces',
      limits && Object.keys(limits).length > 0 ? { name, template, limits } : { name, template },
      { timeoutMs: 120_000 },
    ),
  startWorkspace: (id: string) => request<Workspace>('POST', `/api/workspaces/${enc(id)}/start`, undefined, { timeoutMs: 120_000 }),
  /** Keep it running with nobody connected, or let the server's idle stop take it. */
  setKeepRunning: (id: string, keepRunning: boolean) => request<Workspace>('PATCH', `/api/workspaces/${enc(id)}`, { keepRunning }),
  stopWorkspace: (id: string) => request<Workspace>('POST', `/api/workspaces/${enc(id)}/stop`, undefined, { timeoutMs: 60_000 }),
  deleteWorkspace: (id: string) => request<void>('DELETE', `/api/workspaces/${enc(id)}`, undefined, { timeoutMs: 60_000 }),
  listTemplates: () => request<Template[]>('GET', '/api/templates'),
  /** Administrators only. The workspace is started first if it is not running, hence the wait. */
  publishTemplate: (t: PublishTemplate) => request<Template>('POST', '/api/templates', t, { timeoutMs: 120_000 }),
  /** Administrators only; workspaces made from it keep their files. */
  deleteTemplate: (name: string) => request<void>('DELETE', `/api/templates/${enc(name)}`),
  info: () => request<ServerInfo>('GET', '/api/info'),
};

/** Absolute ws:// or wss:// URL for a path on this origin. */
export function wsUrl(path: string): string {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}${path}`;
}

/** How people sign in: `password`, or `none` (every caller is the admin: no sign-out). */
export type AuthMode = 'password' | 'none';

/** What the server says about itself (`GET /api/info`). */
export interface ServerInfo {
  version?: string;
  /** `http://{port}-{id}.localhost:8080/`: previews on their own origin; null: path-based only. */
  previewUrlTemplate: string | null;
  /** Absent from servers older than accounts. */
  auth?: AuthMode;
}

let info: Promise<ServerInfo> | null = null;

/** The server's info, asked once per page. */
export function serverInfo(): Promise<ServerInfo> {
  info ??= api.info().catch(() => ({ previewUrlTemplate: null }));
  return info;
}

/** Where a preview is shown: a new tab, or a frame inside the IDE. */
export type PreviewUse = 'tab' | 'frame';

/** The preview's own host for `port`, when the server offers one and `workspaceId` is an id. */
function previewHost(info: ServerInfo | null, workspaceId: string, port: number): string | null {
  const template = info?.previewUrlTemplate;
  if (!template || !/^[0-9a-f]{32}$/.test(workspaceId)) return null;
  return template.replace('{port}', String(port)).replace('{id}', workspaceId);
}

/**
 * Where to send the browser for the preview of `port`. On its own origin when the server offers
 * one (root-absolute URLs of the app work there, and the page cannot touch cove), else under
 * cove's path, where the server sandboxes it. With sign-in on, a tab goes through cove's
 * `/w/{id}/open/{port}`, which signs it in to the preview host; a frame uses the path preview,
 * since browsers keep a frame on another site away from its cookies.
 */
export function previewUrl(info: ServerInfo | null, workspaceId: string, port: number, use: PreviewUse = 'tab'): string {
  if (info?.auth === 'password') {
    return use === 'tab' ? `/w/${enc(workspaceId)}/open/${port}` : `/w/${enc(workspaceId)}/proxy/${port}/`;
  }
  return previewHost(info, workspaceId, port) ?? `/w/${enc(workspaceId)}/proxy/${port}/`;
}

/** The preview's address as a person reads it (where a tab from `previewUrl` ends up). */
export function previewAddress(info: ServerInfo | null, workspaceId: string, port: number): string {
  return previewHost(info, workspaceId, port) ?? `${location.origin}/w/${enc(workspaceId)}/proxy/${port}/`;
}
