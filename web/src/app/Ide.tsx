// The IDE of one workspace: sidebar, editor groups, panel and status bar, on one control socket.
import { useCallback, useEffect, useRef, useState, useSyncExternalStore } from 'react';
import { api, previewUrl, serverInfo, type ServerInfo } from '../api/rest';
import type { ConnectionState } from '../api/control';
import { ApiError, type FileChangedMessage, type ServerMessage, type PresentUser, type StatusMessage, type Workspace } from '../api/types';
import { WorkspaceClient, type Halt } from '../api/workspace';
import { watchWorkspaces } from '../api/events';
import { EditorPane } from '../editor/EditorPane';
import { EditorModel } from '../editor/model';
import { ProblemsPanel, useProblems } from '../editor/ProblemsPanel';
import { SearchView } from '../search/SearchView';
import { useUploader } from '../files/UploadBar';
import { downloadUrl, startDownload } from '../files/upload';
import { GitStore } from '../scm/store';
import { ScmView } from '../scm/ScmView';
import { DiffPane, type DiffTarget } from '../scm/DiffPane';
import { useGitDecorations } from '../scm/decorations';
import { useSplitEditor } from '../editor/SplitEditor';
import { FileTree } from '../files/FileTree';
import { FileTreeModel } from '../files/model';
import { QuickOpen } from '../files/QuickOpen';
import { TerminalPanel, type TerminalPanelHandle } from '../terminal/TerminalPanel';
import { PortsPanel, usePorts } from '../workspaces/PortsPanel';
import { ProcessesPanel } from '../workspaces/ProcessesPanel';
import { PreviewPane } from '../workspaces/PreviewPane';
import { StateBadge, accessOf } from '../workspaces/Home';
import { WorkspaceDeleted, WorkspaceMissing, isMod, stoppedText, useStoredNumber } from './ideParts';
import { CommandPalette } from './CommandPalette';
import { ideCommands } from './commands';
import { SettingsDialog } from './SettingsDialog';
import { settings } from './settings';
import { PresenceList } from '../accounts/Avatar';
import { UserMenu } from '../accounts/UserMenu';
import { useAccount } from '../accounts/account';
import { Icon, ThemeToggle, ask, notify } from './feedback';
import { linkHandler, setNavigationGuard } from './router';
import { Sash } from './Sash';
import { SidebarViews, type SidebarView } from './SidebarViews';
import { StatusBar } from './StatusBar';

type PanelTab = 'terminal' | 'problems' | 'processes' | 'ports';

export default function Ide({ workspaceId }: { workspaceId: string }) {
  const [client] = useState(() => new WorkspaceClient(workspaceId));
  const [editor] = useState(() => new EditorModel(client, { ask, notify }));
  const [tree] = useState(() => new FileTreeModel(client));
  const [workspace, setWorkspace] = useState<Workspace | null>(null);
  /** Who has this workspace open (the `presence` event), the caller among them. */
  const [present, setPresent] = useState<PresentUser[]>([]);
  const account = useAccount();
  const [info, setInfo] = useState<ServerInfo | null>(null);
  const [halt, setHalt] = useState<Halt | null>(client.halted);
  /** The workspace's id once known (the route may name it by its name). */
  const idRef = useRef<string | null>(null);
  const [starting, setStarting] = useState(false);
  const [loadError, setLoadError] = useState<ApiError | null>(null);
  /** The first answer about the workspace came (or failed): its access is as known as it gets. */
  const [accessKnown, setAccessKnown] = useState(false);
  const [conn, setConn] = useState<ConnectionState>(client.socket.state);
  const [wsStatus, setWsStatus] = useState<string | null>(null);
  const [panel, setPanel] = useState<PanelTab>('terminal');
  const [panelOpen, setPanelOpen] = useState(true);
  // On a phone the editor gets the width; the file tree opens over it when asked for.
  const narrow = () => window.innerWidth <= 600;
  const [sidebarOpen, setSidebarOpen] = useState(() => !narrow());
  const [sidebarWidth, setSidebarWidth] = useStoredNumber('cove.sidebarWidth', 240);
  const [panelHeight, setPanelHeight] = useStoredNumber('cove.panelHeight', 280);
  const [quickOpen, setQuickOpen] = useState(false);
  const [palette, setPalette] = useState(false);
  const uploader = useUploader(workspace?.id ?? workspaceId);
  const [git] = useState(() => new GitStore(client));
  const [diff, setDiff] = useState<DiffTarget | null>(null);
  const decorations = useGitDecorations(git);
  const split = useSplitEditor(client, editor, workspaceId, () => setQuickOpen(true));
  const [settingsOpen, setSettingsOpen] = useState(false);
  const [sidebarView, setSidebarView] = useState<SidebarView>('files');
  /** Bumped to put the cursor in the search box again. */
  const [searchFocus, setSearchFocus] = useState(0);
  const lsp = useSyncExternalStore(editor.subscribe, editor.getLanguageServices);
  const problems = useProblems(lsp);
  useEffect(() => {
    void settings.load();
    return () => {
      editor.dispose();
      git.dispose();
    };
  }, [editor, git]);
  /** The port shown in the preview pane beside the editor, if open. */
  const [previewPort2, setPreviewPort2] = useState<number | null>(null);
  const [previewWidth, setPreviewWidth] = useStoredNumber('cove.previewWidth', 480);
  const [running, setRunning] = useState(0);
  const termRef = useRef<TerminalPanelHandle>(null);
  const knownPorts = usePorts(client);
  const { active: activePath } = useSyncExternalStore(editor.subscribe, editor.getTabs);
  useEffect(() => {
    if (activePath && narrow()) setSidebarOpen(false);
  }, [activePath]);
  useEffect(() => {
    const mq = window.matchMedia('(max-width: 600px)');
    const on = () => setSidebarOpen(!mq.matches);
    mq.addEventListener('change', on);
    return () => mq.removeEventListener('change', on);
  }, []);

  useEffect(() => {
    let live = true;
    void serverInfo().then((i) => live && setInfo(i));
    return () => {
      live = false;
    };
  }, []);

  // A stop or a deletion, by anyone, is a decision: the IDE says so at once and does not
  // start the workspace again on its own (its sockets ask before reconnecting).
  useEffect(() => client.onHalt(setHalt), [client]);
  useEffect(() => {
    const mine = (w: { id: string; name: string }) => w.id === workspaceId || w.name === workspaceId;
    return watchWorkspaces({
      changed: (w) => {
        if (!mine(w)) return;
        // The feed may not carry the caller's access (it is the same view for everyone):
        // keep the one the REST answer gave, or a viewer would look like an owner.
        setWorkspace((prev) => ({ ...w, access: w.access ?? prev?.access }));
        if (w.state === 'stopping' || w.state === 'stopped' || w.state === 'error' || w.state === 'hibernated') client.setHalt({ kind: 'stopped', workspace: w });
      },
      deleted: (id) => {
        if (id === workspaceId || id === idRef.current) client.setHalt({ kind: 'deleted' });
      },
      resync: () => void client.mayReconnect(),
      presence: (p) => {
        if (p.workspaceId === workspaceId || p.workspaceId === idRef.current) setPresent(p.users);
      },
    });
  }, [client, workspaceId]);

  const startAgain = useCallback(async () => {
    setStarting(true);
    try {
      const w = await api.startWorkspace(workspace?.id ?? workspaceId);
      setWorkspace(w);
      client.setHalt(null);
      client.socket.connect();
    } catch (e) {
      notify(e instanceof Error ? e.message : String(e), 'error');
    } finally {
      setStarting(false);
    }
  }, [client, workspace, workspaceId]);

  // Workspace metadata (name, run command, preview port).
  useEffect(() => {
    let live = true;
    const load = () =>
      api
        .getWorkspace(workspaceId)
        .then((w) => {
          if (!live) return;
          idRef.current = w.id;
          setWorkspace(w);
          setAccessKnown(true);
          document.title = `${w.name} · cove`;
        })
        .catch((e) => {
          if (!live) return;
          // Unknown access is full access here: the server still refuses what is not allowed.
          setAccessKnown(true);
          if (e instanceof ApiError && (e.status === 404 || e.status === 403)) setLoadError(e);
        });
    void load();
    const t = setInterval(() => {
      if (document.visibilityState === 'visible') void load();
    }, 15_000);
    return () => {
      live = false;
      clearInterval(t);
    };
  }, [workspaceId]);

  // The control socket and everything that follows its events.
  useEffect(() => {
    const s = client.socket;
    let first = true;
    // (Re)subscribe to file changes and catch up; runs on every welcome and
    // again when a starting workspace reports `ready`.
    const sync = () => {
      client.watch().catch((e: ApiError) => {
        if (e.code !== 'unavailable' && e.code !== 'disconnected') notify(`File watching is off: ${e.message}`, 'error');
      });
      if (first) {
        first = false;
        void tree.refresh('');
      } else {
        void tree.resync();
        editor.resync();
      }
    };
    const offs = [
      s.onState(setConn),
      s.onWelcome(() => {
        setWsStatus(null);
        sync();
      }),
      s.on('status', (m: ServerMessage) => {
        const st = m as unknown as StatusMessage;
        if (st.state === 'ready') {
          setWsStatus(null);
          // Before `welcome` (a workspace that was starting), welcome syncs.
          if (s.isOpen) sync();
          setWorkspace((w) => (w ? { ...w, state: 'running' } : w));
        } else {
          setWsStatus(st.message ? `${st.state}: ${st.message}` : `Workspace ${st.state}…`);
        }
      }),
      s.on('file_changed', (m: ServerMessage) => {
        const ev = m as unknown as FileChangedMessage;
        tree.onFileChanged(ev);
        editor.onFileChanged(ev);
      }),
      s.on('error', (m: ServerMessage) => {
        const msg = String(m.message ?? m.code ?? 'error');
        notify(msg, 'error');
      }),
    ];
    return () => {
      offs.forEach((f) => f());
      s.close();
    };
  }, [client, editor, tree]);

  // A viewer's IDE only watches: its sockets say so (PROTOCOL.md section 8), the editor takes
  // no typing. The control socket waits for the access to be known, so that a viewer's is in
  // view mode from the start and no shell is opened for them; a later change (shared for
  // editing, or down to viewing) switches everything over while the IDE stays open.
  const viewOnly = workspace ? accessOf(workspace) === 'view' : false;
  const connected = useRef(false);
  useEffect(() => {
    if (!accessKnown) return;
    client.socket.setViewOnly(viewOnly);
    editor.setReadOnly(viewOnly);
    if (!connected.current) {
      connected.current = true;
      client.socket.connect();
    }
  }, [client, editor, accessKnown, viewOnly]);

  // Never lose unsaved text: ask before the page goes (closing the tab, reloading) or
  // before an in-app link leaves the IDE; and keep it in this browser meanwhile, so that even
  // a crash or a "leave anyway" brings it back next time.
  useEffect(() => {
    void editor.restore().then((n) => {
      if (n > 0) notify(n === 1 ? 'Restored unsaved changes in 1 file.' : `Restored unsaved changes in ${n} files.`);
    });
    const onBefore = (e: BeforeUnloadEvent) => {
      editor.persist();
      if (editor.dirtyCount() > 0) {
        e.preventDefault();
        e.returnValue = '';
      }
    };
    const onHide = () => editor.persist();
    window.addEventListener('beforeunload', onBefore);
    window.addEventListener('pagehide', onHide);
    setNavigationGuard(async () => {
      const n = editor.dirtyCount();
      if (n === 0) return true;
      const choice = await ask(
        'Unsaved changes',
        `${n === 1 ? '1 file has' : `${n} files have`} unsaved changes. They stay in this browser and come back when you open this workspace again, but they are not saved in the workspace.`,
        [
          ...(editor.isReadOnly ? [] : [{ id: 'save', label: 'Save all and leave', kind: 'primary' as const }]),
          { id: 'leave', label: 'Leave without saving', kind: 'danger' },
          { id: 'stay', label: 'Stay', kind: 'secondary' },
        ],
      );
      if (choice === 'save') return editor.saveAll();
      if (choice === 'leave') editor.persist();
      return choice === 'leave';
    });
    return () => {
      window.removeEventListener('beforeunload', onBefore);
      window.removeEventListener('pagehide', onHide);
      setNavigationGuard(null);
      editor.persist();
    };
  }, [editor]);

  /** Opens the sidebar on view `v` (search with the cursor in its box). */
  const showSidebar = (v: SidebarView) => {
    setSidebarOpen(true);
    setSidebarView(v);
    if (v === 'search') setSearchFocus((n) => n + 1);
  };
  const showPanel = useCallback((p: PanelTab) => {
    setPanel(p);
    setPanelOpen(true);
  }, []);

  // Global shortcuts.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const key = e.key.toLowerCase();
      // Ctrl+B and Ctrl+J mean something to the shell: leave them to the terminal.
      const inTerminal = e.target instanceof Element && !!e.target.closest('.xterm');
      if (isMod(e) && e.shiftKey && !e.altKey && key === 'p') {
        e.preventDefault();
        setPalette(true);
      } else if (isMod(e) && e.shiftKey && !e.altKey && (key === 'f' || key === 'g')) {
        e.preventDefault();
        showSidebar(key === 'f' ? 'search' : 'scm');
      } else if (isMod(e) && !e.shiftKey && !e.altKey && key === 'p') {
        e.preventDefault();
        setQuickOpen(true);
      } else if (isMod(e) && !e.altKey && key === 's') {
        e.preventDefault();
        void split.focused().save();
      } else if (isMod(e) && !e.shiftKey && e.key === '\\') {
        e.preventDefault();
        split.toggle();
      } else if (e.ctrlKey && (e.key === '`' || e.code === 'Backquote')) {
        e.preventDefault();
        if (e.shiftKey) {
          showPanel('terminal');
          termRef.current?.newTerminal();
        } else if (panelOpen && panel === 'terminal') {
          setPanelOpen(false);
          editor.focus();
        } else {
          showPanel('terminal');
          requestAnimationFrame(() => termRef.current?.focus());
        }
      } else if (isMod(e) && !e.shiftKey && key === 'b' && !inTerminal) {
        e.preventDefault();
        setSidebarOpen((o) => !o);
      } else if (isMod(e) && !e.shiftKey && key === 'j' && !inTerminal) {
        e.preventDefault();
        setPanelOpen((o) => !o);
      }
    };
    window.addEventListener('keydown', onKey, true);
    return () => window.removeEventListener('keydown', onKey, true);
  }, [editor, panel, panelOpen, showPanel, split]);

  const openFile = useCallback(
    (path: string) => {
      setQuickOpen(false);
      void tree.reveal(path);
      void editor.open(path).then(() => editor.focus());
    },
    [editor, tree],
  );
  const openAt = useCallback(
    (path: string, line: number, col: number) => {
      void tree.reveal(path);
      void editor.revealAt(path, line, col);
    },
    [editor, tree],
  );
  const closeQuickOpen = useCallback(() => {
    setQuickOpen(false);
    editor.focus();
  }, [editor]);

  if (loadError) return <WorkspaceMissing message={loadError.message} />;
  if (halt?.kind === 'deleted') return <WorkspaceDeleted name={workspace?.name} unsaved={editor.dirtyCount()} />;

  const name = workspace?.name ?? workspaceId;
  const previewPort = workspace?.previewPort;
  // A stopped workspace listens on nothing and runs nothing, whatever was last heard.
  const ports = halt ? [] : knownPorts;
  const runningNow = halt ? 0 : running;
  const previewOpen = previewPort ? ports.some((p) => p.port === previewPort) : false;
  const firstPort = previewOpen ? previewPort : ports[0]?.port;

  return (
    <div className="ide" style={{ '--sidebar-width': `${sidebarWidth}px`, '--panel-height': `${panelHeight}px` } as React.CSSProperties}>
      <header className="titlebar">
        <a className="brand" href="/" onClick={linkHandler('/')} aria-label="cove: all workspaces">
          <span className="brand-mark" aria-hidden="true">
            <Icon name="logo" size={14} />
          </span>
          cove
        </a>
        <nav className="title-crumbs" aria-label="Breadcrumb">
          <a href="/" onClick={linkHandler('/')}>
            Workspaces
          </a>
          <Icon name="chevronRight" size={12} />
          <span className="title-name" data-testid="workspace-name">
            {name}
          </span>
          {workspace && <StateBadge state={conn.kind === 'connected' && !wsStatus ? 'running' : workspace.state} />}
        </nav>
        <div className="title-actions">
          <button type="button" className="title-search" onClick={() => setQuickOpen(true)} data-testid="open-quick-open">
            <Icon name="search" size={14} />
            <span>Go to file</span>
            <kbd>{/Mac/.test(navigator.platform) ? '⌘P' : 'Ctrl+P'}</kbd>
          </button>
          {firstPort !== undefined && (
            <button
              type="button"
              className={`button secondary small${previewPort2 !== null ? ' on' : ''}`}
              aria-pressed={previewPort2 !== null}
              onClick={() => setPreviewPort2((p) => (p === null ? firstPort : null))}
              data-testid="open-preview"
              title="Show the preview beside the editor"
            >
              <Icon name="split" size={14} /> <span className="button-text">Preview :{firstPort}</span>
            </button>
          )}
          <button type="button" className="icon-button" aria-label="Command palette (Ctrl+Shift+P)" title="Command palette (Ctrl+Shift+P)" onClick={() => setPalette(true)} data-testid="open-palette">
            <Icon name="list" />
          </button>
          <button type="button" className="icon-button" aria-label="Settings" title="Settings" onClick={() => setSettingsOpen(true)} data-testid="open-settings">
            <Icon name="settings" />
          </button>
          <ThemeToggle />
          <button type="button" className={`icon-button${sidebarOpen ? ' on' : ''}`} aria-pressed={sidebarOpen} aria-label="Toggle sidebar" title="Toggle sidebar (Ctrl+B)" onClick={() => setSidebarOpen((o) => !o)}>
            <Icon name="sidebar" />
          </button>
          <button type="button" className={`icon-button${panelOpen ? ' on' : ''}`} aria-pressed={panelOpen} aria-label="Toggle panel" title="Toggle panel (Ctrl+J)" onClick={() => setPanelOpen((o) => !o)}>
            <Icon name="panel" />
          </button>
          {/* Who else has this workspace open, live; then who is signed in here. */}
          <PresenceList users={present.filter((u) => u.username !== account.user?.username)} />
          <UserMenu />
        </div>
      </header>

      {viewOnly && workspace && (
        <div className="halt-banner readonly-banner" role="status" data-testid="readonly-banner">
          <Icon name="eye" />
          <span>
            <strong>
              You are viewing {workspace.name} shared by {workspace.owner}: read-only.
            </strong>{' '}
            <span className="muted">You can open files and follow terminals and processes, but not change, run or type anything.</span>
          </span>
        </div>
      )}
      {workspace?.state === 'starting' && workspace.stateReason?.startsWith('restoring') && (
        <div className="halt-banner" role="status" data-testid="workspace-restoring">
          <Icon name="download" />
          <span>
            <strong>Restoring the workspace from storage…</strong> <span className="muted">{workspace.stateReason}</span>
          </span>
        </div>
      )}
      {halt?.kind === 'stopped' && (
        <div className="halt-banner" role="status" data-testid="workspace-stopped">
          <Icon name="info" />
          <span>
            <strong>{stoppedText(halt.workspace)}</strong>{' '}
            <span className="muted">Its programs are not running. Files and unsaved editor text are kept.</span>
          </span>
          <button type="button" className="button primary small" onClick={() => void startAgain()} disabled={starting} data-testid="start-workspace">
            {starting ? 'Starting…' : 'Start workspace'}
          </button>
        </div>
      )}
      <div className={`workbench${sidebarOpen ? '' : ' no-sidebar'}`}>
        {sidebarOpen && (
          <>
            <aside className="sidebar" aria-label="Sidebar">
              <SidebarViews view={sidebarView} onView={setSidebarView}>
                <>
                  <FileTree client={client} tree={tree} editor={editor} activePath={activePath} workspaceName={name} readOnly={viewOnly} onDropFiles={uploader.onDropFiles} onPick={uploader.onPick} decorations={decorations} />
                  {uploader.bar}
                </>
                <SearchView workspaceId={workspace?.id ?? workspaceId} client={client} readOnly={viewOnly} onOpen={openAt} focusKey={searchFocus} />
                <ScmView store={git} readOnly={viewOnly} onDiff={setDiff} />
              </SidebarViews>
            </aside>
            <Sash orientation="vertical" value={sidebarWidth} min={160} max={600} direction={1} onChange={setSidebarWidth} label="Resize sidebar" />
          </>
        )}
        <div className={`main-column${panelOpen ? '' : ' no-panel'}`}>
          <div className="editor-split">
            <EditorPane editor={editor} workspaceId={workspaceId} onQuickOpen={() => setQuickOpen(true)} />
            {split.pane}
            {diff && <DiffPane target={diff} store={git} client={client} onClose={() => setDiff(null)} />}
            {previewPort2 !== null && (
              <>
                <Sash orientation="vertical" value={previewWidth} min={240} max={Math.max(300, window.innerWidth - 400)} direction={-1} onChange={setPreviewWidth} label="Resize preview" />
                <div className="preview-column" style={{ width: previewWidth }}>
                  <PreviewPane
                    ports={ports}
                    port={previewPort2}
                    onPort={setPreviewPort2}
                    urlOf={(port) => previewUrl(info, workspace?.id ?? workspaceId, port, 'frame')}
                    onClose={() => setPreviewPort2(null)}
                  />
                </div>
              </>
            )}
          </div>
          {panelOpen && (
            <Sash orientation="horizontal" value={panelHeight} min={120} max={Math.max(160, window.innerHeight - 200)} direction={-1} onChange={setPanelHeight} label="Resize panel" />
          )}
          <section className="panel" hidden={!panelOpen} aria-label="Panel">
            <div className="panel-header">
              <div className="panel-tabs" role="tablist" aria-label="Panel views">
                {(['terminal', 'problems', 'processes', 'ports'] as PanelTab[]).map((p) => (
                  <button
                    key={p}
                    type="button"
                    role="tab"
                    id={`panel-tab-${p}`}
                    aria-selected={panel === p}
                    aria-controls={`panel-view-${p}`}
                    className={`panel-tab${panel === p ? ' active' : ''}`}
                    data-testid={`panel-tab-${p}`}
                    onClick={() => setPanel(p)}
                  >
                    {p === 'terminal' ? 'Terminal' : p === 'problems' ? 'Problems' : p === 'processes' ? 'Processes' : 'Ports'}
                    {p === 'problems' && problems.length > 0 && <span className="count-badge" data-testid="problems-count">{problems.length}</span>}
                    {p === 'processes' && runningNow > 0 && <span className="count-badge">{runningNow}</span>}
                    {p === 'ports' && ports.length > 0 && <span className="count-badge">{ports.length}</span>}
                  </button>
                ))}
              </div>
              <div className="panel-actions">
                {panel === 'terminal' && !viewOnly && (
                  <>
                    <button type="button" className="icon-button" aria-label="New terminal" title="New terminal (Ctrl+Shift+`)" data-testid="new-terminal" onClick={() => termRef.current?.newTerminal()}>
                      <Icon name="plus" />
                    </button>
                    <button type="button" className="icon-button" aria-label="Kill the active terminal" title="Kill terminal" onClick={() => termRef.current?.killActive()}>
                      <Icon name="trash" />
                    </button>
                  </>
                )}
                <button type="button" className="icon-button" aria-label="Close panel" title="Close panel" onClick={() => setPanelOpen(false)}>
                  <Icon name="close" />
                </button>
              </div>
            </div>
            <div className="panel-views">
              <div id="panel-view-terminal" role="tabpanel" aria-labelledby="panel-tab-terminal" className="panel-view" hidden={panel !== 'terminal'}>
                <TerminalPanel ref={termRef} client={client} visible={panelOpen && panel === 'terminal'} viewOnly={viewOnly} />
              </div>
 <div id="panel-view-problems" role="tabpanel" aria-labelledby="panel-tab-problems" className="panel-view" hidden={panel !== 'problems'}>
                <ProblemsPanel lsp={lsp} onOpen={openAt} />
              </div>
              <div id="panel-view-processes" role="tabpanel" aria-labelledby="panel-tab-processes" className="panel-view" hidden={panel !== 'processes'}>
                <ProcessesPanel
                  client={client}
                  runCommand={workspace?.runCommand}
                  readOnly={viewOnly}
                  onCountChange={setRunning}
                  ports={ports}
                  portUrl={(port) => previewUrl(info, workspace?.id ?? workspaceId, port)}
                />
              </div>
              <div id="panel-view-ports" role="tabpanel" aria-labelledby="panel-tab-ports" className="panel-view" hidden={panel !== 'ports'}>
                <PortsPanel workspaceId={workspace?.id ?? workspaceId} info={info} ports={ports} previewPort={previewPort} />
              </div>
            </div>
          </section>
        </div>
      </div>

      <StatusBar
        conn={conn}
        stopped={halt?.kind === 'stopped'}
        workspaceStatus={wsStatus}
        editor={editor}
        runningProcesses={runningNow}
        ports={ports.length}
        onRetry={() => client.socket.retryNow()}
        onShowPanel={showPanel}
      />
      {quickOpen && <QuickOpen tree={tree} onOpen={openFile} onClose={closeQuickOpen} />}
      {palette && (
        <CommandPalette
          onClose={() => setPalette(false)}
          commands={ideCommands(
            editor,
            {
              quickOpen: () => setQuickOpen(true),
              searchInFiles: () => showSidebar('search'),
              toggleSidebar: () => setSidebarOpen((o) => !o),
              togglePanel: () => setPanelOpen((o) => !o),
              newTerminal: () => {
                showPanel('terminal');
                termRef.current?.newTerminal();
              },
              showPanel,
              openSettings: () => setSettingsOpen(true),
              splitEditor: split.toggle,
              downloadWorkspace: () => startDownload(downloadUrl(workspace?.id ?? workspaceId, '', true)),
            },
            viewOnly,
          )}
        />
      )}
      {settingsOpen && <SettingsDialog onClose={() => setSettingsOpen(false)} />}
    </div>
  );
}
