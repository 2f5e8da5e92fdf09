// Live workspace changes (`GET /api/events`, Server-Sent Events): creations, state changes
// and deletions, whoever caused them, and who has which workspace open (`presence`).
// EventSource reconnects by itself; after a reconnect (or when the server says this client
// fell behind) the caller lists again.
import { verifySession } from './accounts';
import type { Presence, Workspace } from './types';

export interface WorkspaceEventHandlers {
  changed(w: Workspace): void;
  deleted(id: string): void;
  /** Events may have been missed: list again. */
  resync(): void;
  /** The people with an open IDE on a workspace (sent on every change, and once on connect). */
  presence?(p: Presence): void;
}

export function watchWorkspaces(h: WorkspaceEventHandlers): () => void {
  if (typeof EventSource === 'undefined') return () => {};
  const source = new EventSource('/api/events');
  let opened = false;
  source.addEventListener('open', () => {
    if (opened) h.resync();
    opened = true;
  });
  // EventSource gives up for good on an answer that is not a stream (a 401 among them) and
  // cannot tell which: ask whether the session is gone (then the app goes to sign in).
  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CLOSED) void verifySession();
  });
  source.addEventListener('workspace', (e) => {
    try {
      h.changed(JSON.parse((e as MessageEvent).data) as Workspace);
    } catch {
      /* ignore a malformed event */
    }
  });
  source.addEventListener('workspace_deleted', (e) => {
    try {
      h.deleted(String(JSON.parse((e as MessageEvent).data).id));
    } catch {
      /* ignore */
    }
  });
  source.addEventListener('presence', (e) => {
    try {
      const p = JSON.parse((e as MessageEvent).data) as Presence;
      if (p && typeof p.workspaceId === 'string' && Array.isArray(p.users)) h.presence?.(p);
    } catch {
      /* ignore a malformed event */
    }
  });
  source.addEventListener('resync', () => h.resync());
  return () => source.close();
}
