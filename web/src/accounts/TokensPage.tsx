// `/settings/tokens`: API tokens for scripts (`Authorization: Bearer ...`). The secret is
// shown once, when it is made; the list never has it.
import { useCallback, useEffect, useRef, useState } from 'react';
import { accounts } from '../api/accounts';
import type { TokenCreated, TokenView } from '../api/types';
import { Icon, confirmDanger, notify } from '../app/feedback';
import { relativeTime } from '../workspaces/Home';
import { useAccount } from './account';
import { errorText, formatTime } from './format';

async function copyText(text: string, field: HTMLInputElement | null): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No clipboard API (plain http on another host): select it for Ctrl+C.
    field?.focus();
    field?.select();
    return false;
  }
}

function NewSecret({ created, onDone }: { created: TokenCreated; onDone: () => void }) {
  const fieldRef = useRef<HTMLInputElement>(null);
  const [copied, setCopied] = useState(false);
  useEffect(() => {
    fieldRef.current?.focus();
    fieldRef.current?.select();
  }, []);
  return (
    <div className="secret-box" role="region" aria-labelledby="secret-title" data-testid="token-created">
      <h3 id="secret-title">
        <Icon name="info" /> Copy the token “{created.name}” now
      </h3>
      <p>You will not see it again. If you lose it, revoke it and make another.</p>
      <div className="secret-row">
        <label className="sr-only" htmlFor="token-secret">
          The new token
        </label>
        <input id="token-secret" ref={fieldRef} className="input mono" readOnly value={created.token} data-testid="token-secret" onFocus={(e) => e.currentTarget.select()} />
        <button
          type="button"
          className="button primary"
          data-testid="token-copy"
          onClick={() =>
            void copyText(created.token, fieldRef.current).then((ok) => {
              setCopied(ok);
              if (!ok) notify('Copying is not allowed here: the token is selected, press Ctrl+C.');
            })
          }
        >
          {copied ? 'Copied' : 'Copy'}
        </button>
      </div>
      <p className="field-hint">
        Scripts send it as <code>Authorization: Bearer …</code>
        {created.expiresAt ? `; it expires ${formatTime(created.expiresAt)}.` : '; it does not expire.'}
      </p>
      <button type="button" className="button secondary small" onClick={onDone} data-testid="token-done">
        I have copied it
      </button>
    </div>
  );
}

export function TokensPage() {
  const { user } = useAccount();
  const [tokens, setTokens] = useState<TokenView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [name, setName] = useState('');
  const [days, setDays] = useState('');
  const [formError, setFormError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [created, setCreated] = useState<TokenCreated | null>(null);
  const nameRef = useRef<HTMLInputElement>(null);
  const canCreate = user?.role !== 'viewer';

  const load = useCallback(async () => {
    try {
      const list = await accounts.tokens();
      list.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
      setTokens(list);
      setError(null);
    } catch (e) {
      setError(errorText(e));
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  const create = async (e: React.FormEvent) => {
    e.preventDefault();
    if (busy) return;
    const n = name.trim();
    if (!n) {
      setFormError('Give the token a name, such as the script or machine that uses it.');
      nameRef.current?.focus();
      return;
    }
    let expires: number | undefined;
    if (days.trim()) {
      expires = Number(days);
      if (!Number.isInteger(expires) || expires <= 0) {
        setFormError('Expiry must be a whole number of days, or empty for never.');
        return;
      }
    }
    setBusy(true);
    setFormError(null);
    try {
      const t = await accounts.createToken(n, expires);
      setCreated(t);
      setName('');
      setDays('');
      await load();
    } catch (err) {
      setFormError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  const revoke = async (t: TokenView) => {
    const ok = await confirmDanger('Revoke token', `Revoke the token “${t.name}”? Scripts that use it stop working at once.`, 'Revoke token');
    if (!ok) return;
    try {
      await accounts.revokeToken(t.id);
      notify(`Revoked ${t.name}`);
      if (created?.id === t.id) setCreated(null);
      await load();
    } catch (e) {
      notify(`Could not revoke ${t.name}: ${errorText(e)}`, 'error');
    }
  };

  return (
    <>
      {canCreate ? (
        <section className="account-section" aria-labelledby="new-token-title">
          <h2 id="new-token-title">New token</h2>
          {created ? (
            <NewSecret
              created={created}
              onDone={() => {
                setCreated(null);
                requestAnimationFrame(() => nameRef.current?.focus());
              }}
            />
          ) : (
            <form className="inline-form" onSubmit={(e) => void create(e)} data-testid="token-form" noValidate>
              <label className="field grow">
                <span className="field-label">Name</span>
                <input ref={nameRef} className="input" value={name} onChange={(e) => setName(e.target.value)} placeholder="deploy script" autoComplete="off" data-testid="token-name" />
              </label>
              <label className="field">
                <span className="field-label">Expires after (days)</span>
                <input className="input" inputMode="numeric" value={days} onChange={(e) => setDays(e.target.value)} placeholder="never" data-testid="token-days" aria-describedby="token-days-hint" />
                <span id="token-days-hint" className="sr-only">
                  Leave empty for a token that does not expire.
                </span>
              </label>
              <button type="submit" className="button primary" disabled={busy} data-testid="token-create">
                {busy ? 'Creating…' : 'Create token'}
              </button>
            </form>
          )}
          {formError && (
            <div className="form-error" role="alert" data-testid="form-error">
              {formError}
            </div>
          )}
        </section>
      ) : (
        <p className="muted">Your account can view only, so it cannot make API tokens.</p>
      )}
      <section className="account-section" aria-labelledby="tokens-title">
        <h2 id="tokens-title">Your tokens</h2>
        {error && (
          <div className="banner error" role="alert">
            <Icon name="error" /> Could not load the tokens: {error}
            <button type="button" className="button secondary small" onClick={() => void load()}>
              Retry
            </button>
          </div>
        )}
        {!tokens && !error && <p className="muted">Loading…</p>}
        {tokens && tokens.length === 0 && <p className="muted">No tokens yet.</p>}
        {tokens && tokens.length > 0 && (
          <div className="table-scroll">
            <table className="data-table" data-testid="tokens-table">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Created</th>
                  <th scope="col">Expires</th>
                  <th scope="col">Last used</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {tokens.map((t) => {
                  const expired = t.expiresAt !== null && Date.parse(t.expiresAt) < Date.now();
                  return (
                    <tr key={t.id} data-testid={`token-${t.name}`}>
                      <td data-label="Name" className="strong">
                        {t.name}
                      </td>
                      <td data-label="Created" title={t.createdAt}>
                        {formatTime(t.createdAt)}
                      </td>
                      <td data-label="Expires" title={t.expiresAt ?? undefined}>
                        {t.expiresAt === null ? <span className="muted">never</span> : expired ? <span className="tag danger">expired</span> : formatTime(t.expiresAt)}
                      </td>
                      <td data-label="Last used" title={t.lastUsedAt ?? undefined}>{t.lastUsedAt ? relativeTime(t.lastUsedAt) : <span className="muted">never</span>}</td>
                      <td className="row-actions">
                        <button type="button" className="button secondary small" onClick={() => void revoke(t)} aria-label={`Revoke ${t.name}`} data-testid="token-revoke">
                          Revoke
                        </button>
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </>
  );
}
