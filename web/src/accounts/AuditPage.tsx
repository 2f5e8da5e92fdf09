// `/admin/audit` (admins): who did what, newest first, filtered by user, action and time;
// "Older" pages back with `before`.
import { useCallback, useEffect, useRef, useState } from 'react';
import { accounts } from '../api/accounts';
import type { AuditEntry, AuditQuery } from '../api/types';
import { Icon } from '../app/feedback';
import { errorText, formatTime } from './format';

const PAGE_SIZE = 100;

interface Filters {
  user: string;
  action: string;
  /** As typed in a datetime-local field (local time). */
  since: string;
  until: string;
}

const EMPTY: Filters = { user: '', action: '', since: '', until: '' };

/** RFC 3339 (UTC) from a datetime-local value, or undefined when empty or invalid. */
function rfc3339(local: string): string | undefined {
  if (!local) return undefined;
  const t = new Date(local).getTime();
  return Number.isFinite(t) ? new Date(t).toISOString() : undefined;
}

function toQuery(f: Filters, before?: number): AuditQuery {
  return {
    user: f.user.trim() || undefined,
    action: f.action.trim() || undefined,
    since: rfc3339(f.since),
    until: rfc3339(f.until),
    limit: PAGE_SIZE,
    before,
  };
}

export function AuditPage() {
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [entries, setEntries] = useState<AuditEntry[] | null>(null);
  const [next, setNext] = useState<number | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  /** The filters of the entries on screen ("Older" continues with them, not with the draft). */
  const applied = useRef<Filters>(EMPTY);
  /** Answers to an older search are dropped. */
  const seq = useRef(0);

  const search = useCallback(async (f: Filters, before?: number) => {
    const n = ++seq.current;
    setLoading(true);
    setError(null);
    try {
      const page = await accounts.audit(toQuery(f, before));
      if (n !== seq.current) return;
      applied.current = f;
      setEntries((cur) => (before !== undefined && cur ? [...cur, ...page.entries] : page.entries));
      setNext(page.next ?? undefined);
    } catch (e) {
      if (n === seq.current) setError(errorText(e));
    } finally {
      if (n === seq.current) setLoading(false);
    }
  }, []);

  useEffect(() => {
    void search(EMPTY);
  }, [search]);

  const field = (key: keyof Filters, label: string, props: React.InputHTMLAttributes<HTMLInputElement> = {}) => (
    <label className="field">
      <span className="field-label">{label}</span>
      <input className="input" value={draft[key]} onChange={(e) => setDraft((d) => ({ ...d, [key]: e.target.value }))} data-testid={`audit-${key}`} {...props} />
    </label>
  );

  return (
    <section className="account-section" aria-label="Audit entries">
      <form
        className="audit-filters"
        onSubmit={(e) => {
          e.preventDefault();
          void search(draft);
        }}
        data-testid="audit-filters"
        role="search"
        aria-label="Filter the audit log"
      >
        {field('user', 'User', { placeholder: 'any', autoComplete: 'off', spellCheck: false })}
        {field('action', 'Action', { placeholder: 'e.g. login', autoComplete: 'off', spellCheck: false, list: 'audit-actions' })}
        {field('since', 'Since', { type: 'datetime-local' })}
        {field('until', 'Until', { type: 'datetime-local' })}
        <div className="audit-buttons">
          <button type="submit" className="button primary" disabled={loading} data-testid="audit-apply">
            Filter
          </button>
          <button
            type="button"
            className="button secondary"
            onClick={() => {
              setDraft(EMPTY);
              void search(EMPTY);
            }}
          >
            Clear
          </button>
        </div>
        <datalist id="audit-actions">
          {[...new Set((entries ?? []).map((e) => e.action))].sort().map((a) => (
            <option key={a} value={a} />
          ))}
        </datalist>
      </form>
      {error && (
        <div className="banner error" role="alert">
          <Icon name="error" /> Could not load the audit log: {error}
        </div>
      )}
      {entries === null && !error && <p className="muted">Loading…</p>}
      {entries && entries.length === 0 && <p className="muted">No entries match.</p>}
      {entries && entries.length > 0 && (
        <div className="table-scroll">
          <table className="data-table audit-table" data-testid="audit-table">
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">User</th>
                <th scope="col">Action</th>
                <th scope="col">Target</th>
                <th scope="col">Address</th>
                <th scope="col">Outcome</th>
                <th scope="col">Detail</th>
              </tr>
            </thead>
            <tbody>
              {entries.map((e) => (
                <tr key={e.id} data-testid={`audit-${e.id}`} data-outcome={e.outcome}>
                  <td data-label="Time" title={e.at} className="nowrap">
                    {formatTime(e.at)}
                  </td>
                  <td data-label="User">{e.user || <span className="muted">unknown</span>}</td>
                  <td data-label="Action" className="mono">
                    {e.action}
                  </td>
                  <td data-label="Target" className="mono wrap">
                    {e.target}
                  </td>
                  <td data-label="Address" className="mono">
                    {e.address}
                  </td>
                  <td data-label="Outcome">
                    <span className={`tag ${e.outcome === 'success' ? 'success' : 'danger'}`}>{e.outcome}</span>
                  </td>
                  <td data-label="Detail" className="wrap">
                    {e.detail}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {entries && next !== undefined && (
        <p className="pager">
          <button type="button" className="button secondary" disabled={loading} onClick={() => void search(applied.current, next)} data-testid="audit-older">
            {loading ? 'Loading…' : 'Older'}
          </button>
        </p>
      )}
    </section>
  );
}
