// The sidebar's source-control view: the branch (switch or create one), pull and push, a
// commit message, and the staged and unstaged changes, each with its actions; a click shows
// the change side by side.
import { useState, useSyncExternalStore } from 'react';
import type { GitFile, GitReply } from '../api/generated';
import { Dialog, Icon, confirmDanger, notify } from '../app/feedback';
import type { DiffTarget } from './DiffPane';
import type { GitStore } from './store';

const WORDS: Record<string, string> = { M: 'modified', A: 'added', D: 'deleted', R: 'renamed', '?': 'untracked', U: 'conflict', T: 'type changed', C: 'copied' };

function FileRow({ file, letter, onOpen, actions }: { file: GitFile; letter: string; onOpen: () => void; actions: { label: string; icon: string; run: () => void }[] }) {
  const name = file.path.slice(file.path.lastIndexOf('/') + 1);
  const dir = file.path.includes('/') ? file.path.slice(0, file.path.lastIndexOf('/')) : '';
  return (
    <li className="scm-file" data-testid={`scm-file-${file.path}`}>
      <button type="button" className="scm-open" onClick={onOpen} title={`${file.path}: ${WORDS[letter] ?? letter}`}>
        <span className="scm-name">{name}</span> <span className="muted">{dir}</span>
      </button>
      {actions.map((a) => (
        <button key={a.label} type="button" className="icon-button small" aria-label={`${a.label} ${file.path}`} title={a.label} onClick={a.run}>
          <Icon name={a.icon} size={14} />
        </button>
      ))}
      <span className={`scm-letter git-${letter === '?' ? 'U' : letter}`} aria-label={WORDS[letter] ?? letter}>
        {letter === '?' ? 'U' : letter}
      </span>
    </li>
  );
}

export function ScmView({ store, readOnly, onDiff }: { store: GitStore; readOnly: boolean; onDiff: (t: DiffTarget) => void }) {
  const { status, error } = useSyncExternalStore(store.subscribe, store.get);
  const [message, setMessage] = useState('');
  const [busy, setBusy] = useState(false);
  const [newBranch, setNewBranch] = useState<string | null>(null);
  const [credentials, setCredentials] = useState<{ retry: 'pull' | 'push' } | null>(null);
  const [cred, setCred] = useState({ url: '', username: '', password: '' });

  const act = async (op: Parameters<GitStore['run']>[0], done?: string): Promise<GitReply | null> => {
    setBusy(true);
    try {
      const r = await store.run(op);
      if (r.needsCredentials && (op.op === 'pull' || op.op === 'push')) setCredentials({ retry: op.op });
      else if (!r.ok) notify(`git: ${r.output.trim() || 'failed'}`, 'error');
      else if (done) notify(done);
      return r;
    } catch (e) {
      notify(e instanceof Error ? e.message : String(e), 'error');
      return null;
    } finally {
      setBusy(false);
    }
  };

  if (!status) return <section className="sidebar-section scm-view" aria-label="Source control"><p className="tree-message muted">{error ?? 'Reading the repository…'}</p></section>;
  if (!status.repository) {
    return (
      <section className="sidebar-section scm-view" aria-label="Source control">
        <p className="tree-message muted">This workspace is not a git repository.</p>
        {!readOnly && (
          <button type="button" className="button primary small scm-init" onClick={() => void act({ op: 'init' }, 'Initialized a git repository.')} data-testid="scm-init">
            Initialize repository
          </button>
        )}
      </section>
    );
  }
  const staged = status.files.filter((f) => f.index !== '.' && f.index !== '?');
  const unstaged = status.files.filter((f) => f.worktree !== '.');
  const commit = async () => {
    const r = await act({ op: 'commit', message }, 'Committed.');
    if (r?.ok) setMessage('');
  };
  return (
    <section className="sidebar-section scm-view" aria-label="Source control" data-testid="scm-view">
      <div className="scm-branch">
        <Icon name="split" size={14} />
        <label className="sr-only" htmlFor="scm-branch">
          Branch
        </label>
        <select
          id="scm-branch"
          value={status.branch ?? ''}
          disabled={readOnly || busy}
          onChange={(e) => (e.target.value === '\u0000new' ? setNewBranch('') : void act({ op: 'switch', branch: e.target.value, create: false }))}
          data-testid="scm-branch"
        >
          {!status.branch && <option value="">(no branch)</option>}
          {status.branches.map((b) => (
            <option key={b} value={b}>
              {b}
            </option>
          ))}
          {!readOnly && <option value={'\u0000new'}>New branch…</option>}
        </select>
        {!readOnly && (
          <>
            <button type="button" className="icon-button small" disabled={busy} title={`Pull${status.behind ? ` (${status.behind} behind)` : ''}`} aria-label="Pull" onClick={() => void act({ op: 'pull' }, 'Pulled.')} data-testid="scm-pull">
              <Icon name="download" size={14} />
              {status.behind > 0 && <span className="count-badge">{status.behind}</span>}
            </button>
            <button type="button" className="icon-button small" disabled={busy} title={`Push${status.ahead ? ` (${status.ahead} ahead)` : ''}`} aria-label="Push" onClick={() => void act({ op: 'push' }, 'Pushed.')} data-testid="scm-push">
              <Icon name="upload" size={14} />
              {status.ahead > 0 && <span className="count-badge">{status.ahead}</span>}
            </button>
          </>
        )}
      </div>
      {newBranch !== null && (
        <form
          className="search-row scm-new-branch"
          onSubmit={(e) => {
            e.preventDefault();
            void act({ op: 'switch', branch: newBranch, create: true }, `Switched to a new branch ${newBranch}.`).then(() => setNewBranch(null));
          }}
        >
          <input autoFocus className="search-input" aria-label="New branch name" value={newBranch} onChange={(e) => setNewBranch(e.target.value)} data-testid="scm-new-branch" />
          <button type="submit" className="button secondary small">
            Create
          </button>
        </form>
      )}
      {!readOnly && (
        <div className="scm-commit">
          <textarea
            className="search-input"
            rows={2}
            placeholder="Message (Ctrl+Enter to commit)"
            aria-label="Commit message"
            value={message}
            onChange={(e) => setMessage(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && message.trim() && staged.length) {
                e.preventDefault();
                void commit();
              }
            }}
            data-testid="scm-message"
          />
          <button type="button" className="button primary small" disabled={busy || !message.trim() || staged.length === 0} onClick={() => void commit()} data-testid="scm-commit" title={staged.length ? 'Commit the staged changes' : 'Stage changes to commit them'}>
            Commit{staged.length ? ` (${staged.length})` : ''}
          </button>
        </div>
      )}
      <div className="scm-lists">
        {staged.length > 0 && <h3 className="scm-heading">Staged changes</h3>}
        <ul className="scm-list" data-testid="scm-staged">
          {staged.map((f) => (
            <FileRow key={f.path} file={f} letter={f.index} onOpen={() => onDiff({ path: f.path, side: 'staged' })} actions={readOnly ? [] : [{ label: 'Unstage', icon: 'close', run: () => void act({ op: 'unstage', paths: [f.path] }) }]} />
          ))}
        </ul>
        <h3 className="scm-heading">Changes</h3>
        {unstaged.length === 0 && <p className="muted scm-empty">No changes in the working tree.</p>}
        <ul className="scm-list" data-testid="scm-changes">
          {unstaged.map((f) => (
            <FileRow
              key={f.path}
              file={f}
              letter={f.worktree}
              onOpen={() => onDiff({ path: f.path, side: 'unstaged' })}
              actions={
                readOnly
                  ? []
                  : [
                      {
                        label: 'Discard changes',
                        icon: 'reload',
                        run: () =>
                          void confirmDanger('Discard changes', `Throw away the changes to ${f.path}? ${f.worktree === '?' ? 'The file is deleted.' : 'It goes back to the staged or committed text.'}`, 'Discard').then(
                            (yes) => {
                              if (yes) void act({ op: 'discard', paths: [f.path] });
                            },
                          ),
                      },
                      { label: 'Stage', icon: 'plus', run: () => void act({ op: 'stage', paths: [f.path] }) },
                    ]
              }
            />
          ))}
        </ul>
      </div>
      {credentials && (
        <Dialog title="Sign in to the remote" onClose={() => setCredentials(null)} testId="scm-credentials">
          <p className="muted">Git asked for a user name and password. They are kept in this workspace's own git credential store (~/.git-credentials), not in cove.</p>
          <form
            className="scm-credentials"
            onSubmit={(e) => {
              e.preventDefault();
              const retry = credentials.retry;
              setCredentials(null);
              void act({ op: 'credentials', ...cred }).then((r) => {
                if (r?.ok) void act({ op: retry }, retry === 'push' ? 'Pushed.' : 'Pulled.');
              });
              setCred({ url: '', username: '', password: '' });
            }}
          >
            <input className="search-input" placeholder="https://git.example.com" aria-label="Remote URL" value={cred.url} onChange={(e) => setCred({ ...cred, url: e.target.value })} />
            <input className="search-input" placeholder="User name" aria-label="User name" autoComplete="username" value={cred.username} onChange={(e) => setCred({ ...cred, username: e.target.value })} />
            <input className="search-input" type="password" placeholder="Password or token" aria-label="Password or token" autoComplete="current-password" value={cred.password} onChange={(e) => setCred({ ...cred, password: e.target.value })} />
            <button type="submit" className="button primary small">
              Save and retry
            </button>
          </form>
        </Dialog>
      )}
    </section>
  );
}
