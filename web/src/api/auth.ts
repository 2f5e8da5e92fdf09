// Where the app goes when the server says the session is gone (a 401 from the REST API, a
// socket closed with 4401), and which `next` it follows after signing in. It knows no React:
// the app installs how to get to the sign-in page (an in-app navigation), so that this module,
// which the REST client and the sockets import, does not depend on the app.

export const LOGIN_PATH = '/login';

let go: (url: string) => void = (url) => location.replace(url);
/** True from the moment the app left for the sign-in page until that page is on screen. */
let leaving = false;

/** How the app gets to the sign-in page (App installs an in-app navigation). */
export function setSignInNavigator(fn: (url: string) => void): void {
  go = fn;
}

/** The sign-in page's URL that comes back to `next` afterwards. */
export function loginUrl(next = location.pathname + location.search): string {
  return next && next !== '/' ? `${LOGIN_PATH}?next=${encodeURIComponent(next)}` : LOGIN_PATH;
}

/**
 * The session is gone: go to the sign-in page, once. Many requests and sockets fail together
 * when a session ends; the first one navigates, and none does on the sign-in page itself, so
 * that nothing loops.
 */
export function unauthorized(): void {
  if (leaving || location.pathname === LOGIN_PATH) return;
  leaving = true;
  go(loginUrl());
}

/** The sign-in page is on screen: a later 401 (after signing in) may send the person there again. */
export function signInPageShown(): void {
  leaving = false;
}

/**
 * Where to go after signing in. Only a path of this origin is followed (one leading `/`, not
 * `//host` nor `/\host`, which browsers read as another host); anything else goes home, and
 * so does the sign-in page itself.
 */
export function safeNext(raw: string | null | undefined): string {
  if (!raw || !raw.startsWith('/') || raw.startsWith('//') || raw.startsWith('/\\')) return '/';
  let url: URL;
  try {
    url = new URL(raw, location.origin);
  } catch {
    return '/';
  }
  if (url.origin !== location.origin || url.pathname === LOGIN_PATH) return '/';
  return url.pathname + url.search + url.hash;
}

/** Close codes of a socket that the server ended because its session is gone. */
export const UNAUTHORIZED_CLOSE = 4401;
/** A close for a policy reason: maybe the session ended, maybe access to the workspace did. */
export const POLICY_CLOSE = 1008;
