// Who is signed in, and how this server signs people in: asked once per page, shared by the
// top bars, the IDE and the account pages.
import { useSyncExternalStore } from 'react';
import { accounts } from '../api/accounts';
import { serverInfo, type AuthMode } from '../api/rest';
import type { Role, User } from '../api/types';

export interface Account {
  /** False until both answers are in. */
  loaded: boolean;
  /** Null when the server has no accounts (older servers) or the question failed. */
  user: User | null;
  /** Absent from servers older than accounts. */
  auth?: AuthMode;
}

let state: Account = { loaded: false, user: null };
let started = false;
const listeners = new Set<() => void>();

function set(next: Account): void {
  state = next;
  for (const l of listeners) l();
}

function load(): void {
  void Promise.all([accounts.me().catch(() => null), serverInfo()]).then(([user, info]) => set({ loaded: true, user, auth: info.auth }));
}

/** Asks again (after a change to one's own account). */
export function reloadAccount(): void {
  load();
}

function subscribe(fn: () => void): () => void {
  if (!started) {
    started = true;
    load();
  }
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function useAccount(): Account {
  return useSyncExternalStore(subscribe, () => state);
}

/** Whether sign-in exists at all here: with `--auth none` there is nothing to sign out of. */
export function hasSignIn(a: Account): boolean {
  return a.auth !== 'none' && a.user !== null;
}

export const ROLE_LABEL: Record<Role, string> = { admin: 'Administrator', user: 'User', viewer: 'Viewer' };
