// Small helpers of the IDE page: a number kept in this browser, the platform's modifier key,
// and what the IDE says about a stopped workspace.
import { useCallback, useState } from 'react';
import type { Workspace } from '../api/types';
import { relativeTime } from '../workspaces/Home';
import { linkHandler } from './router';

export function useStoredNumber(key: string, initial: number): [number, (v: number) => void] {
  const [v, setV] = useState(() => {
    const s = Number(localStorage.getItem(key));
    return Number.isFinite(s) && s > 0 ? s : initial;
  });
  const set = useCallback(
    (n: number) => {
      setV(n);
      try {
        localStorage.setItem(key, String(n));
      } catch {
        /* private mode */
      }
    },
    [key],
  );
  return [v, set];
}

export function isMod(e: KeyboardEvent): boolean {
  return /Mac|iPhone|iPad/.test(navigator.platform) ? e.metaKey : e.ctrlKey;
}

/** "Stopped by you 2 min ago" and the like. */
export function stoppedText(w: Workspace): string {
  const by = w.stoppedBy ? ` by ${w.stoppedBy === 'admin' ? 'you' : w.stoppedBy}` : '';
  const when = w.stateChangedAt ? ` ${relativeTime(w.stateChangedAt)}` : '';
  if (w.state === 'error') return `The workspace failed${w.stateReason ? `: ${w.stateReason}` : ''}.`;
  if (w.state === 'hibernated') return `This workspace is hibernated${when}: its files are kept in storage and come back when it starts.`;
  if (w.stoppedBy) return `This workspace was stopped${by}${when}.`;
  return `This workspace stopped${when}${w.stateReason ? ` (${w.stateReason})` : ''}.`;
}


/** The IDE of a workspace that does not exist (or is not the caller's). */
export function WorkspaceMissing({ message }: { message: string }) {
  return (
    <main className="notfound">
      <h1>Workspace not found</h1>
      <p className="muted">{message}</p>
      <p>
        <a href="/" onClick={linkHandler('/')}>
          Back to your workspaces
        </a>
      </p>
    </main>
  );
}

/** The IDE of a workspace deleted while it was open. */
export function WorkspaceDeleted({ name, unsaved }: { name?: string; unsaved: number }) {
  return (
    <main className="notfound" data-testid="workspace-deleted">
      <h1>This workspace was deleted</h1>
      <p className="muted">
        {name ? `“${name}”` : 'It'} no longer exists: its files, terminals and processes are gone.
        {unsaved > 0 ? ' Your unsaved editor text stays in this browser.' : ''}
      </p>
      <p>
        <a href="/" onClick={linkHandler('/')} className="button primary">
          Back to your workspaces
        </a>
      </p>
    </main>
  );
}
