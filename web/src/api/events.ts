// Live workspace changes (`GET /api/events`, Server-Sent Events): creations, state changes
// and deletions, whoever caused them. EventSource reconnects by itself; after a reconnect
// (or when the server says this client fell behind) the caller lists again.
import { verifySession } from './accounts';
import type { Workspace } from './types';

export interface WorkspaceEventHandlers {
  changed(w: Workspace): void;
  deleted(id: string): void;
  /** Events may have been missed: list again. */
  resync(): void;
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
  source.addEventListener('resync', () => h.resync());
  return () => source.close();
}
