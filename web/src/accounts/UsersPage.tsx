// `/admin/users` (admins): the accounts of this server. Create, change the role, disable or
// enable, reset the password, set quotas, delete.
import { useCallback, useEffect, useState } from 'react';
import { accounts } from '../api/accounts';
import type { Quotas, Role, UpdateUser, User } from '../api/types';
import { Dialog, Icon, confirmDanger, notify } from '../app/feedback';
import { ROLE_LABEL, reloadAccount, useAccount } from './account';
import { errorText, formatBytes, formatTime } from './format';

const ROLES: Role[] = ['admin', 'user', 'viewer'];

const ROLE_HINT: Record<Role, string> = {
  admin: 'everything, on every workspace and account',
  user: 'their own workspaces and those shared with them',
  viewer: 'only what is shared with them, read-only',
};

/** The quota fields, in the units people think in. */
const QUOTA_FIELDS: { key: keyof Quotas; label: string; unit?: string }[] = [
  { key: 'workspaces', label: 'Workspaces' },
  { key: 'running', label: 'Running at once' },
  { key: 'sessions', label: 'Sessions' },
  { key: 'connections', label: 'Connections' },
  { key: 'storageMib', label: 'Storage', unit: 'MiB' },
  { key: 'memoryMib', label: 'Memory', unit: 'MiB' },
];

function quotaSummary(q: Quotas | undefined): string {
  const parts: string[] = [];
  for (const f of QUOTA_FIELDS) {
    const v = q?.[f.key];
    if (v == null) continue;
    parts.push(f.unit ? `${formatBytes(v * 1024 * 1024)} ${f.label.toLowerCase()}` : `${v} ${f.label.toLowerCase()}`);
  }
  return parts.length ? parts.join(', ') : 'server defaults';
}

function NewUserDialog({ onClose, onCreated }: { onClose: () => void; onCreated: (u: User) => void }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState<Role>('user');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    if (busy) return;
    if (!username.trim() || !password) {
      setError('A username and a password are both needed.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      onCreated(await accounts.createUser({ username: username.trim(), password, role }));
    } catch (e) {
      setError(errorText(e));
      setBusy(false);
    }
  };
  return (
    <Dialog
      title="New user"
      onClose={onClose}
      onSubmit={() => void submit()}
      testId="new-user-dialog"
      footer={
        <>
          <button type="button" className="button secondary" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="button primary" disabled={busy} data-testid="create-user">
            {busy ? 'Creating…' : 'Create user'}
          </button>
        </>
      }
    >
      <label className="field">
        <span className="field-label">Username</span>
        <input className="input" autoFocus value={username} onChange={(e) => setUsername(e.target.value)} autoComplete="off" autoCapitalize="none" spellCheck={false} data-testid="new-username" />
      </label>
      <label className="field">
        <span className="field-label">Password</span>
        <input className="input" type="password" value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="new-password" data-testid="new-password" />
      </label>
      <RoleChoice value={role} onChange={setRole} />
      {error && (
        <div className="form-error" role="alert" data-testid="form-error">
          {error}
        </div>
      )}
    </Dialog>
  );
}

function RoleChoice({ value, onChange }: { value: Role; onChange: (r: Role) => void }) {
  return (
    <fieldset className="field">
      <legend className="field-label">Role</legend>
      <div className="radio-list">
        {ROLES.map((r) => (
          <label key={r} className="radio-row">
            <input type="radio" name="role" value={r} checked={value === r} onChange={() => onChange(r)} data-testid={`new-role-${r}`} />
            <span>
              <strong>{ROLE_LABEL[r]}</strong> <span className="muted">— {ROLE_HINT[r]}</span>
            </span>
          </label>
        ))}
      </div>
    </fieldset>
  );
}

function PasswordDialog({ user, onClose }: { user: User; onClose: () => void }) {
  const [password, setPassword] = useState('');
  const [again, setAgain] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    if (busy) return;
    if (!password) {
      setError('Type the new password.');
      return;
    }
    if (password !== again) {
      setError('The two passwords differ.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await accounts.updateUser(user.username, { password });
      notify(`New password set for ${user.username}.`);
      onClose();
    } catch (e) {
      setError(errorText(e));
      setBusy(false);
    }
  };
  return (
    <Dialog
      title={`Reset the password of ${user.username}`}
      onClose={onClose}
      onSubmit={() => void submit()}
      testId="password-dialog"
      footer={
        <>
          <button type="button" className="button secondary" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="button primary" disabled={busy} data-testid="save-password">
            {busy ? 'Saving…' : 'Set password'}
          </button>
        </>
      }
    >
      {/* A username field for password managers, which file the new password under it. */}
      <input type="text" name="username" value={user.username} autoComplete="username" readOnly hidden />
      <label className="field">
        <span className="field-label">New password</span>
        <input className="input" type="password" autoFocus value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="new-password" data-testid="reset-password" />
      </label>
      <label className="field">
        <span className="field-label">New password, again</span>
        <input className="input" type="password" value={again} onChange={(e) => setAgain(e.target.value)} autoComplete="new-password" data-testid="reset-password-again" />
      </label>
      {error && (
        <div className="form-error" role="alert" data-testid="form-error">
          {error}
        </div>
      )}
    </Dialog>
  );
}

function QuotasDialog({ user, onClose, onSaved }: { user: User; onClose: () => void; onSaved: (u: User) => void }) {
  const [values, setValues] = useState<Record<string, string>>(() =>
    Object.fromEntries(QUOTA_FIELDS.map((f) => [f.key, user.quotas?.[f.key] == null ? '' : String(user.quotas[f.key])])),
  );
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    if (busy) return;
    const quotas: Quotas = {};
    for (const f of QUOTA_FIELDS) {
      const text = values[f.key].trim();
      if (!text) continue;
      const n = Number(text);
      if (!Number.isInteger(n) || n < 0) {
        setError(`${f.label} must be a whole number${f.unit ? ` of ${f.unit}` : ''}, or empty for the server's default.`);
        return;
      }
      quotas[f.key] = n;
    }
    setBusy(true);
    setError(null);
    try {
      onSaved(await accounts.updateUser(user.username, { quotas }));
    } catch (e) {
      setError(errorText(e));
      setBusy(false);
    }
  };
  return (
    <Dialog
      title={`Quotas of ${user.username}`}
      onClose={onClose}
      onSubmit={() => void submit()}
      width={520}
      testId="quotas-dialog"
      footer={
        <>
          <button type="button" className="button secondary" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="button primary" disabled={busy} data-testid="save-quotas">
            {busy ? 'Saving…' : 'Save quotas'}
          </button>
        </>
      }
    >
      <div className="quota-grid">
        {QUOTA_FIELDS.map((f, i) => (
          <label key={f.key} className="field">
            <span className="field-label">
              {f.label}
              {f.unit ? ` (${f.unit})` : ''}
            </span>
            <input
              className="input"
              inputMode="numeric"
              autoFocus={i === 0}
              value={values[f.key]}
              placeholder="server default"
              onChange={(e) => setValues((v) => ({ ...v, [f.key]: e.target.value }))}
              data-testid={`quota-${f.key}`}
            />
          </label>
        ))}
      </div>
      <p className="field-hint">An empty field takes the server's default.</p>
      {error && (
        <div className="form-error" role="alert" data-testid="form-error">
          {error}
        </div>
      )}
    </Dialog>
  );
}

export function UsersPage() {
  const { user: me } = useAccount();
  const [users, setUsers] = useState<User[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [dialog, setDialog] = useState<{ kind: 'new' } | { kind: 'password' | 'quotas'; user: User } | null>(null);

  const load = useCallback(async () => {
    try {
      const list = await accounts.users();
      list.sort((a, b) => a.username.localeCompare(b.username));
      setUsers(list);
      setError(null);
    } catch (e) {
      setError(errorText(e));
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  const replace = (u: User) => setUsers((list) => list && list.map((x) => (x.id === u.id ? u : x)));

  const update = async (u: User, change: UpdateUser, done: string) => {
    setBusy(u.id);
    try {
      replace(await accounts.updateUser(u.username, change));
      notify(done);
      if (u.id === me?.id) reloadAccount();
    } catch (e) {
      notify(`Could not change ${u.username}: ${errorText(e)}`, 'error');
      await load();
    } finally {
      setBusy(null);
    }
  };

  const changeRole = async (u: User, role: Role) => {
    if (u.id === me?.id && role !== 'admin') {
      const ok = await confirmDanger('Change your own role', `You will no longer be an administrator and cannot change this back yourself.`, `Make me ${ROLE_LABEL[role].toLowerCase()}`);
      if (!ok) return;
    }
    await update(u, { role }, `${u.username} is now ${ROLE_LABEL[role].toLowerCase()}.`);
  };

  const toggleDisabled = async (u: User) => {
    if (!u.disabled) {
      const ok = await confirmDanger('Disable user', `Disable ${u.username}? They are signed out everywhere, their API tokens stop working, and they cannot sign in until enabled again.`, `Disable ${u.username}`);
      if (!ok) return;
    }
    await update(u, { disabled: !u.disabled }, u.disabled ? `${u.username} can sign in again.` : `${u.username} is disabled.`);
  };

  const remove = async (u: User) => {
    const ok = await confirmDanger('Delete user', `Delete the user “${u.username}”? Their sessions and API tokens end at once. This cannot be undone.`, `Delete ${u.username}`);
    if (!ok) return;
    setBusy(u.id);
    try {
      await accounts.deleteUser(u.username);
      notify(`Deleted ${u.username}`);
      await load();
    } catch (e) {
      notify(`Could not delete ${u.username}: ${errorText(e)}`, 'error');
    } finally {
      setBusy(null);
    }
  };

  return (
    <section className="account-section" aria-labelledby="users-title">
      <div className="section-head">
        <h2 id="users-title">Accounts</h2>
        <button type="button" className="button primary small" onClick={() => setDialog({ kind: 'new' })} data-testid="new-user">
          <Icon name="plus" /> New user
        </button>
      </div>
      {error && (
        <div className="banner error" role="alert">
          <Icon name="error" /> Could not load the users: {error}
          <button type="button" className="button secondary small" onClick={() => void load()}>
            Retry
          </button>
        </div>
      )}
      {!users && !error && <p className="muted">Loading…</p>}
      {users && (
        <div className="table-scroll">
          <table className="data-table" data-testid="users-table">
            <thead>
              <tr>
                <th scope="col">Username</th>
                <th scope="col">Role</th>
                <th scope="col">Status</th>
                <th scope="col">Quotas</th>
                <th scope="col">Created</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {users.map((u) => {
                const b = busy === u.id;
                return (
                  <tr key={u.id} data-testid={`user-${u.username}`} data-disabled={u.disabled ? 'true' : 'false'}>
                    <td data-label="Username" className="strong">
                      {u.username}
                      {u.id === me?.id && <span className="tag">you</span>}
                    </td>
                    <td data-label="Role">
                      <select
                        className="input select"
                        value={u.role}
                        disabled={b}
                        aria-label={`Role of ${u.username}`}
                        onChange={(e) => void changeRole(u, e.target.value as Role)}
                        data-testid="user-role"
                      >
                        {ROLES.map((r) => (
                          <option key={r} value={r}>
                            {ROLE_LABEL[r]}
                          </option>
                        ))}
                      </select>
                    </td>
                    <td data-label="Status">{u.disabled ? <span className="tag danger">disabled</span> : <span className="tag success">active</span>}</td>
                    <td data-label="Quotas" className="muted">
                      {quotaSummary(u.quotas)}
                    </td>
                    <td data-label="Created" title={u.createdAt}>
                      {formatTime(u.createdAt)}
                    </td>
                    <td className="row-actions">
                      <button type="button" className="button secondary small" disabled={b} onClick={() => void toggleDisabled(u)} aria-label={`${u.disabled ? 'Enable' : 'Disable'} ${u.username}`} data-testid="user-toggle">
                        {u.disabled ? 'Enable' : 'Disable'}
                      </button>
                      <button type="button" className="button secondary small" disabled={b} onClick={() => setDialog({ kind: 'password', user: u })} aria-label={`Reset the password of ${u.username}`} data-testid="user-password">
                        Password…
                      </button>
                      <button type="button" className="button secondary small" disabled={b} onClick={() => setDialog({ kind: 'quotas', user: u })} aria-label={`Quotas of ${u.username}`} data-testid="user-quotas">
                        Quotas…
                      </button>
                      <button type="button" className="icon-button danger" disabled={b} onClick={() => void remove(u)} aria-label={`Delete ${u.username}`} title="Delete" data-testid="user-delete">
                        <Icon name="trash" />
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {dialog?.kind === 'new' && (
        <NewUserDialog
          onClose={() => setDialog(null)}
          onCreated={(u) => {
            setDialog(null);
            notify(`Created ${u.username}`);
            void load();
          }}
        />
      )}
      {dialog?.kind === 'password' && <PasswordDialog user={dialog.user} onClose={() => setDialog(null)} />}
      {dialog?.kind === 'quotas' && (
        <QuotasDialog
          user={dialog.user}
          onClose={() => setDialog(null)}
          onSaved={(u) => {
            setDialog(null);
            replace(u);
            notify(`Saved the quotas of ${u.username}`);
          }}
        />
      )}
    </section>
  );
}
