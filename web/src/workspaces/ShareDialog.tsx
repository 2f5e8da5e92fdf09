// Sharing a workspace (its owner, or an admin): who has it and how (view or edit), changing
// that, removing it, and adding someone by username.
import { useCallback, useEffect, useRef, useState } from 'react';
import { accounts } from '../api/accounts';
import type { Share, ShareAccess, Workspace } from '../api/types';
import { Dialog, notify } from '../app/feedback';
import { Avatar } from '../accounts/Avatar';
import { errorText } from '../accounts/format';

const ACCESS_LABEL: Record<ShareAccess, string> = { view: 'Can view', edit: 'Can edit' };

export function ShareDialog({ workspace, onClose }: { workspace: Workspace; onClose: () => void }) {
  const [shares, setShares] = useState<Share[] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [username, setUsername] = useState('');
  const [access, setAccess] = useState<ShareAccess>('view');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const usernameRef = useRef<HTMLInputElement>(null);

  const load = useCallback(async () => {
    try {
      const list = await accounts.shares(workspace.id);
      list.sort((a, b) => a.user.localeCompare(b.user));
      setShares(list);
      setLoadError(null);
    } catch (e) {
      setLoadError(errorText(e));
    }
  }, [workspace.id]);

  useEffect(() => {
    void load();
  }, [load]);

  const add = async () => {
    const name = username.trim();
    if (!name) {
      setError('Type the username of the person to share with.');
      usernameRef.current?.focus();
      return;
    }
    setBusy('+');
    setError(null);
    try {
      await accounts.share(workspace.id, name, access);
      setUsername('');
      notify(`${workspace.name} is shared with ${name} (${ACCESS_LABEL[access].toLowerCase()}).`);
      await load();
      usernameRef.current?.focus();
    } catch (e) {
      // A user that does not exist answers 404 with a message that says so: show it as it is.
      setError(errorText(e));
      usernameRef.current?.focus();
    } finally {
      setBusy(null);
    }
  };

  const change = async (s: Share, to: ShareAccess) => {
    setBusy(s.user);
    setError(null);
    try {
      await accounts.share(workspace.id, s.user, to);
      setShares((list) => list && list.map((x) => (x.user === s.user ? { ...x, access: to } : x)));
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(null);
    }
  };

  const remove = async (s: Share) => {
    setBusy(s.user);
    setError(null);
    try {
      await accounts.unshare(workspace.id, s.user);
      setShares((list) => list && list.filter((x) => x.user !== s.user));
      notify(`${s.user} no longer has ${workspace.name}; their open editors and terminals on it are closed.`);
      usernameRef.current?.focus();
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(null);
    }
  };

  return (
    <Dialog
      title={`Share ${workspace.name}`}
      onClose={onClose}
      onSubmit={() => void add()}
      width={520}
      testId="share-dialog"
      footer={
        <button type="button" className="button secondary" onClick={onClose}>
          Done
        </button>
      }
    >
      <div className="share-add">
        <label className="field grow">
          <span className="field-label">Username</span>
          <input
            ref={usernameRef}
            className={`input${error ? ' invalid' : ''}`}
            autoFocus
            value={username}
            onChange={(e) => setUsername(e.target.value)}
            autoComplete="off"
            autoCapitalize="none"
            spellCheck={false}
            aria-invalid={!!error}
            aria-describedby={error ? 'share-error' : undefined}
            data-testid="share-username"
          />
        </label>
        <label className="field">
          <span className="field-label">Access</span>
          <select className="input select" value={access} onChange={(e) => setAccess(e.target.value as ShareAccess)} data-testid="share-access">
            <option value="view">{ACCESS_LABEL.view}</option>
            <option value="edit">{ACCESS_LABEL.edit}</option>
          </select>
        </label>
        <button type="submit" className="button primary" disabled={busy !== null} data-testid="share-add">
          {busy === '+' ? 'Sharing…' : 'Share'}
        </button>
      </div>
      {error && (
        <div id="share-error" className="form-error" role="alert" data-testid="form-error">
          {error}
        </div>
      )}
      <h3 className="share-list-title">People with access</h3>
      {loadError && (
        <div className="form-error" role="alert">
          Could not load who has it: {loadError}
        </div>
      )}
      {!shares && !loadError && <p className="muted">Loading…</p>}
      <ul className="share-list" data-testid="share-list" aria-label="People with access">
        <li className="share-row">
          <Avatar username={workspace.owner} size={26} />
          <span className="share-name">{workspace.owner}</span>
          <span className="muted share-fixed">Owner</span>
        </li>
        {shares?.map((s) => (
          <li key={s.user} className="share-row" data-testid={`share-${s.user}`}>
            <Avatar username={s.user} size={26} />
            <span className="share-name">{s.user}</span>
            <select
              className="input select small"
              value={s.access}
              disabled={busy !== null}
              aria-label={`Access of ${s.user}`}
              onChange={(e) => void change(s, e.target.value as ShareAccess)}
              data-testid="share-change"
            >
              <option value="view">{ACCESS_LABEL.view}</option>
              <option value="edit">{ACCESS_LABEL.edit}</option>
            </select>
            <button type="button" className="button secondary small" disabled={busy !== null} onClick={() => void remove(s)} aria-label={`Stop sharing with ${s.user}`} data-testid="share-remove">
              Remove
            </button>
          </li>
        ))}
      </ul>
      {shares && shares.length === 0 && <p className="muted">Only its owner has it.</p>}
    </Dialog>
  );
}
