// The sign-in page (`/login?next=...`). It asks the server nothing before it shows (every
// /api route answers 401 here), so the form is on screen in the first render. It is a real
// form (POST /login, named fields) for password managers; the script sends JSON instead and
// stays on the page to show the server's message when the password is wrong.
import { useEffect, useRef, useState } from 'react';
import { accounts } from '../api/accounts';
import { safeNext, signInPageShown } from '../api/auth';
import { ApiError } from '../api/types';
import { Icon } from '../app/feedback';

/** The username last used in this browser ('' for single-user servers), to focus the password. */
const LAST_USER_KEY = 'cove.login.username';

function lastUsername(): string | null {
  try {
    return localStorage.getItem(LAST_USER_KEY);
  } catch {
    return null;
  }
}

export function Login() {
  const remembered = useRef(lastUsername()).current;
  const [username, setUsername] = useState(remembered ?? '');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  /** Seconds left before the server takes another attempt (after a 429). */
  const [wait, setWait] = useState(0);
  const passwordRef = useRef<HTMLInputElement>(null);
  const usernameRef = useRef<HTMLInputElement>(null);

  useEffect(() => {
    signInPageShown();
    document.title = 'Sign in · cove';
    // Someone who signed in here before goes straight to the password.
    (remembered !== null ? passwordRef : usernameRef).current?.focus();
  }, [remembered]);

  useEffect(() => {
    if (wait <= 0) return;
    const t = setTimeout(() => setWait((w) => w - 1), 1000);
    return () => clearTimeout(t);
  }, [wait]);

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    if (busy || wait > 0) return;
    if (!password) {
      setError('Enter your password.');
      passwordRef.current?.focus();
      return;
    }
    setBusy(true);
    setError(null);
    const name = username.trim();
    try {
      await accounts.login(password, name || undefined);
      try {
        localStorage.setItem(LAST_USER_KEY, name);
      } catch {
        /* storage disabled */
      }
      // A full load: every cached answer (who is signed in, the server's info) is asked again.
      location.replace(safeNext(new URLSearchParams(location.search).get('next')));
    } catch (err) {
      setBusy(false);
      if (err instanceof ApiError && err.status === 429) {
        const s = err.retryAfter ?? 30;
        setWait(s);
        setError(null);
      } else {
        setError(err instanceof Error ? err.message : String(err));
      }
      setPassword('');
      requestAnimationFrame(() => passwordRef.current?.focus());
    }
  };

  const message = wait > 0 ? `Too many attempts; try again in ${wait} s` : error;

  return (
    <main className="login">
      <form className="login-card" method="post" action="/login" onSubmit={(e) => void submit(e)} aria-labelledby="login-title" data-testid="login-form" noValidate>
        <div className="brand big" aria-hidden="true">
          <span className="brand-mark">
            <Icon name="logo" size={16} />
          </span>
          cove
        </div>
        <h1 id="login-title">Sign in</h1>
        <label className="field">
          <span className="field-label">Username</span>
          <input
            ref={usernameRef}
            className="input"
            name="username"
            value={username}
            onChange={(e) => setUsername(e.target.value)}
            autoComplete="username"
            autoCapitalize="none"
            spellCheck={false}
            aria-describedby="login-username-hint"
            data-testid="login-username"
          />
          <span id="login-username-hint" className="field-hint">
            Leave empty if this server has one password.
          </span>
        </label>
        <label className="field">
          <span className="field-label">Password</span>
          <input
            ref={passwordRef}
            className={`input${error ? ' invalid' : ''}`}
            type="password"
            name="password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            autoComplete="current-password"
            required
            aria-invalid={!!error}
            aria-describedby={message ? 'login-error' : undefined}
            data-testid="login-password"
          />
        </label>
        {/* Always in the page, so that screen readers announce what appears in it. */}
        <div id="login-error" className={message ? 'form-error' : undefined} role="alert" data-testid="login-error">
          {message}
        </div>
        <button className="button primary wide login-submit" type="submit" disabled={busy || wait > 0} data-testid="login-submit">
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
