import { useCallback, useEffect, useState } from 'react';
import { api } from '../api/rest';
import { watchWorkspaces } from '../api/events';
import type { Workspace, WorkspaceAccess } from '../api/types';
import { useAccount, type Account } from '../accounts/account';
import { ACCESS_TEXT } from '../accounts/Avatar';
import { UserMenu } from '../accounts/UserMenu';
import { Icon, ThemeToggle, confirmDanger, notify } from '../app/feedback';
import { linkHandler, navigate } from '../app/router';
import { NewProjectDialog } from './NewProjectDialog';
import { PublishTemplateDialog } from './PublishTemplateDialog';
import { ShareDialog } from './ShareDialog';

/** What the caller may do with a workspace; servers older than accounts say nothing: the owner. */
export function accessOf(w: Workspace): WorkspaceAccess {
  return w.access ?? 'owner';
}

/** Whether the Share action is offered: to the owner (or an admin), where people sign in. */
export function canShare(w: Workspace, a: Account): boolean {
  return accessOf(w) === 'owner' && a.auth !== 'none';
}

export function relativeTime(iso: string): string {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return iso;
  const s = Math.round((Date.now() - t) / 1000);
  if (s < 45) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 24) return `${h} h ago`;
  const d = Math.round(h / 24);
  if (d < 30) return `${d} d ago`;
  return new Date(t).toLocaleDateString();
}

export function StateBadge({ state }: { state: string }) {
  return (
    <span className={`state-badge state-${state}`} data-testid="workspace-state">
      <span className="dot" aria-hidden="true" />
      {state}
    </span>
  );
}

export function TopBar({ children }: { children?: React.ReactNode }) {
  return (
    <header className="topbar">
      <a className="brand" href="/" onClick={linkHandler('/')} aria-label="cove home">
        <span className="brand-mark" aria-hidden="true">
          <Icon name="logo" size={14} />
        </span>
        cove
      </a>
      <div className="topbar-rest">
        {children}
        <ThemeToggle />
        <UserMenu />
      </div>
    </header>
  );
}

type Action = 'stop' | 'start' | 'delete' | 'keep' | 'unkeep';
type Act = (w: Workspace, what: Action) => void;

/** The workspaces of one kind (the caller's own, or shared with them) as a table. */
function WorkspaceTable(props: {
  items: Workspace[];
  shared: boolean;
  busy: Record<string, string>;
  account: Account;
  act: Act;
  onShare: (w: Workspace) => void;
  /** Offered to administrators only: the server refuses everyone else. */
  onPublish?: (w: Workspace) => void;
  testId: string;
  label: string;
}) {
  const { items, shared, busy, account, act } = props;
  return (
    <table className={`ws-table${shared ? ' shared' : ''}${props.onPublish ? ' admin' : ''}`} data-testid={props.testId} aria-label={props.label}>
      <thead>
        <tr>
          <th scope="col">Name</th>
          <th scope="col">Template</th>
          <th scope="col">State</th>
          <th scope="col">Owner</th>
          <th scope="col">Created</th>
          <th scope="col">
            <span className="sr-only">Actions</span>
          </th>
        </tr>
      </thead>
      <tbody>
        {items.map((w) => {
          const href = `/w/${encodeURIComponent(w.id)}`;
          const b = busy[w.id];
          const running = w.state === 'running' || w.state === 'starting';
          const access = accessOf(w);
          return (
            <tr key={w.id} data-testid={`workspace-${w.name}`} data-access={access}>
              <td>
                <a className="ws-name" href={href} onClick={linkHandler(href)}>
                  <Icon name="folder" /> <span className="ws-name-text" title={w.name}>{w.name}</span>
                </a>
                {shared && (
                  <span className="ws-shared" data-testid="shared-by">
                    shared by {w.owner} · <span className={`tag${access === 'view' ? '' : ' accent'}`}>{ACCESS_TEXT[access]}</span>
                  </span>
                )}
              </td>
              <td className="muted">{w.template}</td>
              <td title={w.stateReason ?? undefined}>
                <StateBadge state={b === 'stop' ? 'stopping' : b === 'start' ? 'starting' : w.state} />
              </td>
              <td className="muted">{w.owner}</td>
              <td className="muted" title={w.createdAt}>
                {relativeTime(w.createdAt)}
              </td>
              <td className="ws-actions">
                <button type="button" className="button secondary small open-button" onClick={() => navigate(href)} aria-label={`Open ${w.name}`}>
                  Open
                </button>
                {access !== 'view' &&
                  (running ? (
                    <button type="button" className="button secondary small" disabled={!!b} onClick={() => act(w, 'stop')} aria-label={`Stop ${w.name}`}>
                      Stop
                    </button>
                  ) : (
                    <button type="button" className="button secondary small" disabled={!!b} onClick={() => act(w, 'start')} aria-label={`Start ${w.name}`}>
                      Start
                    </button>
                  ))}
                {access !== 'view' && (
                  <button
                    type="button"
                    className={`icon-button${w.keepRunning ? ' on' : ''}`}
                    disabled={!!b}
                    onClick={() => act(w, w.keepRunning ? 'unkeep' : 'keep')}
                    aria-pressed={w.keepRunning}
                    aria-label={`Keep ${w.name} running when nobody is connected`}
                    title={w.keepRunning ? 'Kept running when nobody is connected (click to let it stop when idle)' : 'Stops when nobody is connected for a while (click to keep it running)'}
                    data-testid="keep-running"
                  >
                    <Icon name="pin" />
                  </button>
                )}
                {canShare(w, account) && (
                  <button type="button" className="icon-button" onClick={() => props.onShare(w)} aria-label={`Share ${w.name}`} title="Share" data-testid="share-workspace">
                    <Icon name="share" />
                  </button>
                )}
                {props.onPublish && (
                  <button
                    type="button"
                    className="icon-button"
                    onClick={() => props.onPublish?.(w)}
                    aria-label={`Publish ${w.name} as a template`}
                    title="Publish as template"
                    data-testid="publish-template"
                  >
                    <Icon name="publish" />
                  </button>
                )}
                {access === 'owner' && (
                  <button type="button" className="icon-button danger" disabled={!!b} onClick={() => act(w, 'delete')} aria-label={`Delete ${w.name}`} title="Delete">
                    <Icon name="trash" />
                  </button>
                )}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

export function Home() {
  const account = useAccount();
  const [items, setItems] = useState<Workspace[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [showNew, setShowNew] = useState(false);
  const [sharing, setSharing] = useState<Workspace | null>(null);
  const [publishing, setPublishing] = useState<Workspace | null>(null);
  const [busy, setBusy] = useState<Record<string, string>>({});

  const load = useCallback(async () => {
    try {
      const list = await api.listWorkspaces();
      list.sort((a, b) => (b.createdAt ?? '').localeCompare(a.createdAt ?? ''));
      setItems(list);
      setError(null);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  }, []);

  // Live: every change (a stop from an IDE tab, a deletion in another window) arrives as an
  // event; a slow poll covers a feed that could not be opened.
  useEffect(() => {
    void load();
    const stop = watchWorkspaces({
      changed: (w) =>
        setItems((list) => {
          if (!list) return list;
          const i = list.findIndex((x) => x.id === w.id);
          if (i < 0) return [w, ...list];
          const next = [...list];
          next[i] = w;
          return next;
        }),
      deleted: (id) => setItems((list) => list && list.filter((x) => x.id !== id)),
      resync: () => void load(),
    });
    const t = setInterval(() => {
      if (document.visibilityState === 'visible') void load();
    }, 30_000);
    return () => {
      stop();
      clearInterval(t);
    };
  }, [load]);

  const act = async (w: Workspace, what: Action) => {
    if (what === 'delete') {
      const ok = await confirmDanger(
        'Delete workspace',
        `Delete "${w.name}"? Its files, terminals and processes are removed for good. This cannot be undone.`,
        'Delete workspace',
      );
      if (!ok) return;
    }
    setBusy((b) => ({ ...b, [w.id]: what }));
    try {
      if (what === 'stop') await api.stopWorkspace(w.id);
      else if (what === 'start') await api.startWorkspace(w.id);
      else if (what === 'keep' || what === 'unkeep') await api.setKeepRunning(w.id, what === 'keep');
      else {
        await api.deleteWorkspace(w.id);
        notify(`Deleted ${w.name}`);
      }
      await load();
    } catch (e) {
      notify(e instanceof Error ? e.message : String(e), 'error');
    } finally {
      setBusy((b) => {
        const n = { ...b };
        delete n[w.id];
        return n;
      });
    }
  };

  // A viewer owns nothing and creates nothing: only what is shared with them.
  const canCreate = account.user?.role !== 'viewer';
  const own = items?.filter((w) => accessOf(w) === 'owner') ?? [];
  const shared = items?.filter((w) => accessOf(w) !== 'owner') ?? [];
  // Templates are what every user's new projects start from: the administrators' to publish.
  const isAdmin = account.user?.role === 'admin';
  const tableProps = {
    busy,
    account,
    act: (w: Workspace, what: Action) => void act(w, what),
    onShare: setSharing,
    onPublish: isAdmin ? setPublishing : undefined,
  };

  return (
    <div className="home">
      <TopBar />
      <main className="home-main">
        <div className="home-head">
          <div>
            <h1>Workspaces</h1>
            <p className="muted">Each workspace is an isolated project with its own files, terminals and processes.</p>
          </div>
          {canCreate && (
            <button type="button" className="button primary" onClick={() => setShowNew(true)} data-testid="new-project">
              <Icon name="plus" /> New project
            </button>
          )}
        </div>
        {error && (
          <div className="banner error" role="alert">
            <Icon name="error" /> Could not load workspaces: {error}
            <button type="button" className="button secondary small" onClick={() => void load()}>
              Retry
            </button>
          </div>
        )}
        {items === null && !error && <div className="muted pad">Loading…</div>}
        {items && own.length === 0 && (canCreate || shared.length === 0) && (
          <div className={`empty-state${shared.length > 0 ? ' compact' : ''}`}>
            <div className="empty-icon" aria-hidden="true">
              <Icon name="folder" size={28} />
            </div>
            {canCreate ? (
              <>
                <h2>No workspaces yet</h2>
                <p className="muted">Create a project from a template to get an editor, a terminal and a preview in your browser.</p>
                <button type="button" className="button primary" onClick={() => setShowNew(true)}>
                  <Icon name="plus" /> New project
                </button>
              </>
            ) : (
              <>
                <h2>Nothing is shared with you yet</h2>
                <p className="muted">Your account can view workspaces that others share with you. Ask their owner to share one.</p>
              </>
            )}
          </div>
        )}
        {own.length > 0 && <WorkspaceTable {...tableProps} items={own} shared={false} testId="workspace-list" label="Your workspaces" />}
        {shared.length > 0 && (
          <section className="home-shared" aria-labelledby="shared-title">
            <h2 id="shared-title">Shared with you</h2>
            <WorkspaceTable {...tableProps} items={shared} shared testId="shared-workspace-list" label="Shared with you" />
          </section>
        )}
      </main>
      {showNew && (
        <NewProjectDialog
          onClose={() => setShowNew(false)}
          onCreated={(w) => {
            setShowNew(false);
            navigate(`/w/${encodeURIComponent(w.id)}`);
          }}
        />
      )}
      {sharing && <ShareDialog workspace={sharing} onClose={() => setSharing(null)} />}
      {publishing && <PublishTemplateDialog workspace={publishing} onClose={() => setPublishing(null)} />}
    </div>
  );
}
