// `/settings/sessions`: where this account is signed in, ending any of those sessions, and
// what the account uses of its quotas.
import { useCallback, useEffect, useState } from 'react';
import { accounts } from '../api/accounts';
import { LOGIN_PATH } from '../api/auth';
import type { SessionView, Usage } from '../api/types';
import { Icon, confirmDanger, notify } from '../app/feedback';
import { relativeTime } from '../workspaces/Home';
import { describeUserAgent, errorText, formatTime, usageLines } from './format';

export function UsagePanel() {
  const [usage, setUsage] = useState<Usage | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    accounts
      .usage()
      .then(setUsage)
      .catch((e) => setError(errorText(e)));
  }, []);
  if (error) return <p className="muted">Usage is not available: {error}</p>;
  if (!usage) return <p className="muted">Loading usage…</p>;
  return (
    <ul className="usage-list" data-testid="usage">
      {usageLines(usage).map((l) => (
        <li key={l.key} data-testid={`usage-${l.key}`}>
          <span>{l.text}</span>
          {l.fraction !== null && (
            <span className={`meter${l.fraction >= 0.9 ? ' high' : ''}`} aria-hidden="true">
              <span style={{ width: `${Math.min(100, Math.round(l.fraction * 100))}%` }} />
            </span>
          )}
        </li>
      ))}
    </ul>
  );
}

export function SessionsPage() {
  const [sessions, setSessions] = useState<SessionView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      const list = await accounts.sessions();
      // This one first, then the most recently used.
      list.sort((a, b) => Number(b.current) - Number(a.current) || b.lastSeenAt.localeCompare(a.lastSeenAt));
      setSessions(list);
      setError(null);
    } catch (e) {
      setError(errorText(e));
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  const revoke = async (s: SessionView) => {
    if (s.current) {
      const ok = await confirmDanger('Sign out here', 'This is the session you are using now: ending it signs you out of this browser.', 'Sign out');
      if (!ok) return;
    }
    setBusy(s.id);
    try {
      await accounts.revokeSession(s.id);
      if (s.current) {
        location.replace(LOGIN_PATH);
        return;
      }
      notify('Session ended. Its open terminals and editors there are disconnected.');
      await load();
    } catch (e) {
      notify(`Could not end the session: ${errorText(e)}`, 'error');
    } finally {
      setBusy(null);
    }
  };

  const others = sessions?.filter((s) => !s.current) ?? [];
  const revokeOthers = async () => {
    const ok = await confirmDanger(
      'Sign out everywhere else',
      `End ${others.length === 1 ? 'the other session' : `the ${others.length} other sessions`} of your account? This browser stays signed in.`,
      'Sign out others',
    );
    if (!ok) return;
    setBusy('*');
    const failed: string[] = [];
    for (const s of others) {
      try {
        await accounts.revokeSession(s.id);
      } catch (e) {
        failed.push(errorText(e));
      }
    }
    setBusy(null);
    if (failed.length) notify(`Some sessions could not be ended: ${failed[0]}`, 'error');
    else notify('Every other session is ended.');
    await load();
  };

  return (
    <>
      <section className="account-section" aria-labelledby="usage-title">
        <h2 id="usage-title">Usage</h2>
        <UsagePanel />
      </section>
      <section className="account-section" aria-labelledby="sessions-title">
        <div className="section-head">
          <h2 id="sessions-title">Signed-in sessions</h2>
          {others.length > 0 && (
            <button type="button" className="button secondary small" onClick={() => void revokeOthers()} disabled={busy !== null} data-testid="revoke-other-sessions">
              Sign out everywhere else
            </button>
          )}
        </div>
        {error && (
          <div className="banner error" role="alert">
            <Icon name="error" /> Could not load the sessions: {error}
            <button type="button" className="button secondary small" onClick={() => void load()}>
              Retry
            </button>
          </div>
        )}
        {!sessions && !error && <p className="muted">Loading…</p>}
        {sessions && (
          <div className="table-scroll">
            <table className="data-table" data-testid="sessions-table">
              <thead>
                <tr>
                  <th scope="col">Browser</th>
                  <th scope="col">Address</th>
                  <th scope="col">Signed in</th>
                  <th scope="col">Last seen</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {sessions.map((s) => (
                  <tr key={s.id} data-testid={`session-${s.id}`} data-current={s.current ? 'true' : 'false'}>
                    <td data-label="Browser" title={s.userAgent}>
                      {describeUserAgent(s.userAgent)}
                      {s.current && (
                        <span className="tag accent" data-testid="this-session">
                          this session
                        </span>
                      )}
                    </td>
                    <td data-label="Address" className="mono">
                      {s.address}
                    </td>
                    <td data-label="Signed in" title={s.createdAt}>
                      {formatTime(s.createdAt)}
                    </td>
                    <td data-label="Last seen" title={s.lastSeenAt}>
                      {relativeTime(s.lastSeenAt)}
                    </td>
                    <td className="row-actions">
                      <button
                        type="button"
                        className="button secondary small"
                        disabled={busy !== null}
                        onClick={() => void revoke(s)}
                        aria-label={s.current ? 'Sign out of this session' : `End the session of ${describeUserAgent(s.userAgent)} at ${s.address}`}
                        data-testid="revoke-session"
                      >
                        {s.current ? 'Sign out' : 'Revoke'}
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </>
  );
}
