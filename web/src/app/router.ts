// Client-side routes on the History API (the server answers index.html for
// every non-API GET).
import { useSyncExternalStore } from 'react';

const EVENT = 'cove:navigate';

function subscribe(fn: () => void): () => void {
  window.addEventListener('popstate', fn);
  window.addEventListener(EVENT, fn);
  return () => {
    window.removeEventListener('popstate', fn);
    window.removeEventListener(EVENT, fn);
  };
}

export function usePath(): string {
  return useSyncExternalStore(subscribe, () => location.pathname);
}

/** Asked before an in-app navigation; resolves false to stay. */
type Guard = () => Promise<boolean> | boolean;
let guard: Guard | null = null;

/** Sets (or clears, with null) the question asked before leaving the current page in-app. */
export function setNavigationGuard(g: Guard | null): void {
  guard = g;
}

/**
 * Goes to `to` in-app. `force` skips the guard: for leaving because the session ended, where
 * asking is pointless (the IDE keeps unsaved text in this browser when it unmounts).
 */
export function navigate(to: string, replace = false, force = false): void {
  if (to === location.pathname + location.search) return;
  const go = () => {
    if (replace) history.replaceState(null, '', to);
    else history.pushState(null, '', to);
    window.dispatchEvent(new Event(EVENT));
  };
  if (!guard || force) {
    go();
    return;
  }
  void Promise.resolve(guard()).then((ok) => {
    if (ok) go();
  });
}

/** onClick for <a href>: navigate in-app unless a modifier asks for a new tab. */
export function linkHandler(to: string) {
  return (e: React.MouseEvent) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(to);
  };
}

/** The account pages, by path (settings for everyone, admin for admins). */
export const ACCOUNT_PAGES = {
  '/settings/sessions': 'sessions',
  '/settings/tokens': 'tokens',
  '/admin/users': 'users',
  '/admin/audit': 'audit',
  '/admin/system': 'system',
} as const;
export type AccountPage = (typeof ACCOUNT_PAGES)[keyof typeof ACCOUNT_PAGES];

export type Route =
  | { name: 'home' }
  | { name: 'ide'; id: string }
  | { name: 'login' }
  | { name: 'account'; page: AccountPage }
  | { name: 'notfound' };

export function matchRoute(path: string): Route {
  if (path === '/' || path === '') return { name: 'home' };
  if (path === '/login') return { name: 'login' };
  const key = path.replace(/\/$/, '');
  if (Object.hasOwn(ACCOUNT_PAGES, key)) return { name: 'account', page: ACCOUNT_PAGES[key as keyof typeof ACCOUNT_PAGES] };
  const m = /^\/w\/([^/]+)\/?$/.exec(path);
  if (m) return { name: 'ide', id: decodeURIComponent(m[1]) };
  return { name: 'notfound' };
}
