// Language intelligence: one LSP client per language server, each over its own socket to a
// server the workspace's runner starts for it (GET /api/workspaces/{id}/lsp/{language}).
// Everything here is loaded lazily, on the first file of a language that has a server; a
// language without one, or a server that fails, leaves the editor as it was, with a word in
// the status bar.
import type { Extension, Text, TransactionSpec } from '@codemirror/state';
import { ChangeSet } from '@codemirror/state';
import { EditorView, ViewPlugin, keymap, type ViewUpdate } from '@codemirror/view';
import { setDiagnostics, type Diagnostic } from '@codemirror/lint';
import {
  LSPClient,
  LSPPlugin,
  Workspace,
  type Transport,
  type WorkspaceFile,
  findReferences,
  findReferencesKeymap,
  jumpToDefinition,
  formatDocument,
  formatKeymap,
  hoverTooltips,
  jumpToDefinitionKeymap,
  serverCompletion,
  signatureHelp,
} from '@codemirror/lsp-client';
import { request, wsUrl } from '../api/rest';
import type { LanguageServers } from '../api/generated';
import { serverFor } from './servers';
import { sanitizeHTML } from './sanitize';
import { offsetOf, renameCommand, type TextEdit } from './rename';
import { cleanDiagnostics, severityOf, type Problem } from './diagnostics';
import { minimalChange } from './parts';
import { closeOutsideFile, outsidePath, showOutsideFile } from './outside';

export type { Problem };

/** What the editor model lets language services do with its tabs. */
export interface EditorAccess {
  /** A question to the person, with buttons; resolves with the id of the one chosen. */
  ask(title: string, message: string, actions: { id: string; label: string; kind?: 'primary' | 'danger' | 'secondary' }[]): Promise<string>;
  /** The text of `path`, its tab opened in the background first if it is not open. */
  docFor(path: string): Promise<Text | null>;
  /** A message to the person. */
  notify(message: string): void;
  /** Whether the tab of `path` holds unsaved text. */
  unsaved(path: string): boolean;
  /** The current text of an open tab. */
  docOf(path: string): Text | null;
  /** The view showing `path`, if it is the active tab. */
  viewOf(path: string): EditorView | null;
  /** Opens (or shows) `path` and returns the view once its text is in. */
  show(path: string): Promise<EditorView | null>;
  /** Applies a change to an open tab (shown or not). */
  update(path: string, spec: TransactionSpec): void;
  /** Puts an extension into every open tab of `server`'s files (or takes it out: null). */
  attach(server: string): void;
}

export interface LspStatus {
  server: string;
  /** `resting`: stopped while the page is hidden, started again when it is shown. */
  state: 'starting' | 'ready' | 'stopped' | 'resting';
  message: string;
}

interface TrackedFile extends WorkspaceFile {
  path: string;
}

/** Syncs documents half a second after typing stops (as the library's own diagnostics do). */
const autoSync = ViewPlugin.fromClass(
  class {
    pending: ReturnType<typeof setTimeout> | null = null;
    constructor(readonly view: EditorView) {}
    update(update: ViewUpdate) {
      if (!update.docChanged) return;
      if (this.pending) clearTimeout(this.pending);
      this.pending = setTimeout(() => {
        this.pending = null;
        LSPPlugin.get(this.view)?.client.sync();
      }, 500);
    }
    destroy() {
      if (this.pending) clearTimeout(this.pending);
    }
  },
);

/** A minimal change from `a` to `b` (the differing middle), for files edited while hidden. */
function diff(a: Text, b: Text): ChangeSet {
  return ChangeSet.of(minimalChange(a.toString(), b.toString()) ?? [], a.length);
}

/** The editor's tabs as the LSP client's workspace: a file stays open while its tab is. */
class TabsWorkspace extends Workspace {
  files: TrackedFile[] = [];
  constructor(
    client: LSPClient,
    private readonly services: LanguageServices,
  ) {
    super(client);
  }

  syncFiles() {
    const out = [];
    for (const file of this.files) {
      const current = this.services.editor.docOf(file.path);
      if (!current) continue;
      const view = this.services.editor.viewOf(file.path);
      const plugin = view ? LSPPlugin.get(view) : null;
      let changes: ChangeSet | null = null;
      if (plugin && plugin.client === this.client && !plugin.unsyncedChanges.empty && plugin.syncedDoc.eq(file.doc)) {
        changes = plugin.unsyncedChanges;
        plugin.clear();
      } else if (!current.eq(file.doc)) {
        changes = diff(file.doc, current);
        plugin?.clear();
      }
      if (!changes) continue;
      const prevDoc = file.doc;
      file.doc = current;
      file.version++;
      out.push({ changes, file, prevDoc });
    }
    return out;
  }

  openFile(uri: string, languageId: string, view: EditorView) {
    if (this.getFile(uri)) {
      // The tab is shown again: its problems go back into the view.
      queueMicrotask(() => this.services.showProblemsIn(uri));
      return;
    }
    // The plugin is made with a URI of the workspace's own (uriOf), which maps back.
    const path = this.services.pathOf(uri) ?? uri;
    const file: TrackedFile = {
      uri,
      path,
      languageId,
      version: 0,
      doc: view.state.doc,
      getView: () => this.services.editor.viewOf(path),
    };
    this.files.push(file);
    this.client.didOpen(file);
  }

  closeFile(): void {
    // A tab switch destroys the view's plugin; the file stays open until its tab closes.
  }

  /** The tab of `path` closed. */
  forget(path: string): void {
    const file = this.files.find((f) => f.path === path);
    if (!file) return;
    this.files = this.files.filter((f) => f !== file);
    this.client.didClose(file.uri);
  }

  connected(): void {
    for (const file of this.files) this.client.didOpen(file);
  }

  updateFile(uri: string, update: TransactionSpec): void {
    const path = this.services.pathOf(uri);
    if (path !== null) this.services.editor.update(path, update);
  }

  async displayFile(uri: string): Promise<EditorView | null> {
    const path = this.services.pathOf(uri);
    if (path !== null) return this.services.editor.show(path);
    const outside = outsidePath(uri);
    if (outside !== null) return this.services.showOutside(outside);
    this.services.editor.notify(`cove cannot open ${uri}`);
    return null;
  }
}

interface Connection {
  client: LSPClient;
  workspace: TabsWorkspace | null;
  socket: WebSocket;
  /** Settles its `connect` with null (it was hung up before it was ready). */
  giveUp?: () => void;
}

export class LanguageServices {
  private available: Promise<LanguageServers | null> | null = null;
  /** When the list was asked for: a language it lacks is asked about again after a while
   * (a server installed, or named in .cove/languages.json, since). */
  private availableAt = 0;
  private rootUri = '';
  private readonly connections = new Map<string, Connection>();
  private readonly failed = new Set<string>();
  private problems = new Map<string, { version: number | null; items: unknown[] }>();
  private readonly listeners = new Set<() => void>();
  /** Each server's last state; the status bar shows the active file's. */
  private statusSnap: Record<string, LspStatus> = {};
  private readonly rename = renameCommand({
    pathOf: (uri) => this.pathOf(uri),
    docFor: (path) => this.editor.docFor(path),
    unsaved: (path) => this.editor.unsaved(path),
    apply: (path, changes) => this.editor.update(path, { changes, userEvent: 'rename' }),
    notify: (message) => this.editor.notify(message),
  });
  private problemsSnap: Problem[] = [];

  constructor(
    private readonly workspaceId: string,
    readonly editor: EditorAccess,
    private readonly canEdit: () => boolean,
  ) {
    // For the browser tests and the benchmark, as the terminals are.
    (window as unknown as { __coveLsp?: LanguageServices }).__coveLsp = this;
    document.addEventListener('visibilitychange', this.onVisibility);
    this.scheduleRest();
  }

  /**
   * How long the page may stay hidden before its servers stop. Each is a process of the
   * workspace holding its memory (pyright: over 100 MiB) for a tab nobody looks at.
   */
  restAfterMs = 10 * 60_000;
  private readonly resting = new Set<string>();
  private restTimer: ReturnType<typeof setTimeout> | null = null;

  /** While the page is hidden, its servers stop after a while (those started meanwhile too). */
  private scheduleRest(): void {
    if (document.visibilityState === 'hidden' && !this.restTimer) this.restTimer = setTimeout(() => this.rest(), this.restAfterMs);
  }

  private onVisibility = (): void => {
    if (document.visibilityState === 'hidden') {
      this.scheduleRest();
      return;
    }
    if (this.restTimer) clearTimeout(this.restTimer);
    this.restTimer = null;
    for (const server of [...this.resting]) {
      this.resting.delete(server);
      this.editor.attach(server);
    }
  };

  /** Stops every server until the page is shown again; their tabs stay plain editors meanwhile. */
  private rest(): void {
    this.restTimer = null;
    for (const [server, connection] of [...this.connections]) {
      this.connections.delete(server);
      this.resting.add(server);
      hangUp(connection);
      this.setStatus(server, 'resting', `The ${server} language server rests while this page is hidden`);
      this.editor.attach(server);
    }
  }

  subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };
  getStatus = () => this.statusSnap;
  getProblems = () => this.problemsSnap;

  private emit(): void {
    for (const l of this.listeners) l();
  }

  private setStatus(server: string, state: LspStatus['state'], message: string): void {
    this.statusSnap = { ...this.statusSnap, [server]: { server, state, message } };
    this.emit();
  }

  /** The workspace path of a document URI; null for one outside the workspace (the
   * standard library's stubs, say) or one that does not decode. */
  pathOf(uri: string): string | null {
    const prefix = this.rootUri.endsWith('/') ? this.rootUri : this.rootUri + '/';
    if (!uri.startsWith(prefix)) return null;
    try {
      return decodeURIComponent(uri.slice(prefix.length));
    } catch {
      return null;
    }
  }

  uriOf(path: string): string {
    return `${this.rootUri}/${path.split('/').map(encodeURIComponent).join('/')}`;
  }

  private servers(fresh = false): Promise<LanguageServers | null> {
    if (fresh && Date.now() - this.availableAt > 5000) this.available = null;
    if (!this.available) {
      this.availableAt = Date.now();
      this.available = request<LanguageServers>('GET', `/api/workspaces/${encodeURIComponent(this.workspaceId)}/lsp`).then(
        (list) => {
          this.rootUri = list.rootUri.replace(/\/$/, '');
          return list;
        },
        () => {
          this.available = null; // asked again with the next file
          return null;
        },
      );
    }
    return this.available;
  }

  /**
   * The LSP extension for a tab of `path`, once its server is connected; null when the file's
   * language has no server (or it failed): the editor then stays as it is.
   */
  async extensionFor(path: string): Promise<Extension | null> {
    const wanted = serverFor(path);
    if (!wanted || !this.canEdit() || this.failed.has(wanted.server) || this.resting.has(wanted.server)) return null;
    let list = await this.servers();
    if (list && !list.servers.some((s) => s.language === wanted.server)) list = await this.servers(true);
    if (!list || !list.servers.some((s) => s.language === wanted.server)) return null;
    const entry = list.servers.find((s) => s.language === wanted.server)!;
    if (entry.source === 'workspace' && !(await this.approve(entry.language, entry.command))) return null;
    // The page may have rested its servers while this was asked.
    if (this.resting.has(wanted.server)) return null;
    const connection = await this.connect(wanted.server, entry.initializationOptions);
    if (!connection) return null;
    return [
      connection.client.plugin(this.uriOf(path), wanted.languageId),
      autoSync,
      keymap.of([{ key: 'Shift-Alt-f', run: formatDocument }]),
    ];
  }

  private connect(server: string, initializationOptions?: unknown): Promise<Connection | null> {
    const existing = this.connections.get(server);
    if (existing) return existing.client.initializing.then(() => existing);
    const url = wsUrl(`/api/workspaces/${encodeURIComponent(this.workspaceId)}/lsp/${encodeURIComponent(server)}`);
    const socket = new WebSocket(url);
    let handlers: ((value: string) => void)[] = [];
    const transport: Transport = {
      send: (message) => {
        if (socket.readyState === WebSocket.OPEN) socket.send(this.withWorkspaceFolder(message));
      },
      subscribe: (h) => {
        handlers.push(h);
      },
      unsubscribe: (h) => {
        handlers = handlers.filter((x) => x !== h);
      },
    };
    socket.onmessage = (e) => {
      for (const h of handlers) h(String(e.data));
    };
    // The client makes its workspace in its constructor.
    let workspace: TabsWorkspace | null = null;
    const client = new LSPClient({
        rootUri: this.rootUri,
        initializationOptions,
        sanitizeHTML,
        timeout: 20000,
        workspace: (c) => (workspace = new TabsWorkspace(c, this)),
        notificationHandlers: {
          'textDocument/publishDiagnostics': (_client, params: { uri: string; version?: number; diagnostics: unknown[] }) => {
            if (typeof params?.uri !== 'string' || this.pathOf(params.uri) === null) return true;
            this.problems.set(params.uri, { version: null, items: cleanDiagnostics(params.diagnostics) });
            this.showProblemsIn(params.uri);
            this.updateProblems();
            return true;
          },
        },
        extensions: [serverCompletion(), hoverTooltips(), signatureHelp(), keymap.of([...formatKeymap, { key: 'F2', run: this.rename, preventDefault: true }, ...jumpToDefinitionKeymap, ...findReferencesKeymap])],
      });
    const connection: Connection = { socket, client, workspace };
    this.connections.set(server, connection);
    this.scheduleRest();
    this.setStatus(server, 'starting', `Starting the ${server} language server…`);
    return new Promise((resolve) => {
      let opened = false;
      connection.giveUp = () => resolve(null);
      // An answer for a connection hung up meanwhile (the page rested) changes nothing.
      const current = () => this.connections.get(server) === connection;
      socket.onopen = () => {
        opened = true;
        connection.client.connect(transport);
        connection.client.initializing.then(
          () => {
            if (!current()) return resolve(null);
            this.setStatus(server, 'ready', `${server} language server`);
            resolve(connection);
          },
          (e) => {
            // The client rejects with the server's error object ({code, message}), not an Error.
            const message = e instanceof Error ? e.message : typeof e?.message === 'string' ? e.message : String(e);
            this.fail(server, `did not start: ${message}`, connection);
            resolve(null);
          },
        );
      };
      socket.onclose = (e) => {
        const why = e.reason || (opened ? 'the connection closed' : 'it is not available here');
        this.fail(server, why, connection);
        if (!opened) resolve(null);
      };
    });
  }

  /**
   * The client's `initialize` names only `rootUri`; servers such as pyright treat the project
   * as a workspace folder only when it is listed as one (otherwise a rename stays in one file).
   */
  private withWorkspaceFolder(message: string): string {
    if (!message.includes('"initialize"')) return message;
    const parsed = JSON.parse(message) as { method?: string; params?: Record<string, unknown> };
    if (parsed.method !== 'initialize' || !parsed.params) return message;
    parsed.params.workspaceFolders = [{ uri: this.rootUri, name: this.rootUri.slice(this.rootUri.lastIndexOf('/') + 1) || 'workspace' }];
    return JSON.stringify(parsed);
  }

  /** A server that stopped: its tabs go back to the plain editor, and the status bar says why. */
  private fail(server: string, why: string, connection: Connection): void {
    // Only the server's current connection: an old one, hung up, says nothing about it.
    if (this.connections.get(server) !== connection) return;
    this.connections.delete(server);
    this.failed.add(server);
    hangUp(connection);
    for (const uri of [...this.problems.keys()]) if (serverFor(this.pathOf(uri) ?? '')?.server === server) this.problems.delete(uri);
    this.updateProblems();
    // The runner's reason already says which server stopped and how.
    const said = /^the \S+ language server stopped/i.test(why);
    this.setStatus(server, 'stopped', said ? why.charAt(0).toUpperCase() + why.slice(1) : `The ${server} language server stopped: ${why}`);
    this.editor.attach(server);
  }

  private approvals = new Map<string, Promise<boolean>>();

  /**
   * A server the workspace names (.cove/languages.json: a file anyone who can change the
   * workspace, or the repository it was cloned from, wrote) runs only once the person allows
   * that exact command; the answer is kept in this browser for this workspace.
   */
  private approve(language: string, command: string[]): Promise<boolean> {
    const key = `cove.lsp-allowed.${this.workspaceId}`;
    const said = JSON.stringify(command);
    let allowed: string[] = [];
    try {
      allowed = JSON.parse(localStorage.getItem(key) ?? '[]');
    } catch {
      allowed = [];
    }
    if (allowed.includes(said)) return Promise.resolve(true);
    const pending = this.approvals.get(said);
    if (pending) return pending;
    const asked = this.editor
      .ask(
        'Run a language server named by this workspace?',
        `The workspace's .cove/languages.json asks to run this command as its ${language} language server, with your access to the workspace:\n\n${command.join(' ')}\n\nRun it only if you trust whoever wrote that file.`,
        [
          { id: 'allow', label: 'Run it', kind: 'primary' },
          { id: 'deny', label: 'Not now', kind: 'secondary' },
        ],
      )
      .then((answer) => {
        this.approvals.delete(said);
        if (answer !== 'allow') {
          this.failed.add(language);
          this.setStatus(language, 'stopped', `The ${language} language server named by this workspace was not allowed to run`);
          return false;
        }
        try {
          localStorage.setItem(key, JSON.stringify([...allowed, said]));
        } catch {
          /* allowed for this page only */
        }
        return true;
      });
    this.approvals.set(said, asked);
    return asked;
  }

  /** A file outside the workspace, shown read-only; null (and a word why) when it cannot be. */
  showOutside(path: string): Promise<EditorView | null> {
    return showOutsideFile(this.workspaceId, path).catch((e) => {
      this.editor.notify(`Cannot show ${path}: ${e instanceof Error ? e.message : String(e)}`);
      return null;
    });
  }

  /** The workspace's own list of servers changed (.cove/languages.json): ask again next time. */
  forgetServers(): void {
    this.available = null;
  }

  /** Lets a failed server be tried again (from the status bar). */
  retry(server: string): void {
    this.failed.delete(server);
    const { [server]: _gone, ...rest } = this.statusSnap;
    this.statusSnap = rest;
    this.emit();
    this.editor.attach(server);
  }

  /** The tab of `path` closed: its server stops tracking it. */
  closed(path: string): void {
    const wanted = serverFor(path);
    if (!wanted) return;
    this.connections.get(wanted.server)?.workspace?.forget(path);
    const uri = this.uriOf(path);
    if (this.problems.delete(uri)) this.updateProblems();
  }

  /** Puts the last reported problems of `uri` into its view, if it is shown. */
  showProblemsIn(uri: string): void {
    const kept = this.problems.get(uri);
    const path = this.pathOf(uri);
    const view = path === null ? null : this.editor.viewOf(path);
    if (!kept || !view) return;
    const doc = view.state.doc;
    const at = (p: { line: number; character: number }) => {
      if (p.line >= doc.lines) return doc.length;
      const line = doc.line(p.line + 1);
      return Math.min(line.to, line.from + p.character);
    };
    const diagnostics: Diagnostic[] = (kept.items as { range: { start: { line: number; character: number }; end: { line: number; character: number } }; severity?: number; message: string }[]).map(
      (d) => ({ from: at(d.range.start), to: Math.max(at(d.range.start), at(d.range.end)), severity: severityOf(d.severity), message: d.message }),
    );
    view.dispatch(setDiagnostics(view.state, diagnostics));
  }

  private updateProblems(): void {
    const all: Problem[] = [];
    for (const [uri, kept] of this.problems) {
      for (const d of kept.items as { range: { start: { line: number; character: number } }; severity?: number; message: string; source?: string }[]) {
        all.push({
          path: this.pathOf(uri) ?? uri,
          line: d.range.start.line + 1,
          col: d.range.start.character + 1,
          severity: severityOf(d.severity),
          message: d.message,
          source: d.source ?? '',
        });
      }
    }
    const rank = { error: 0, warning: 1, info: 2, hint: 3 };
    all.sort((a, b) => a.path.localeCompare(b.path) || rank[a.severity] - rank[b.severity] || a.line - b.line);
    this.problemsSnap = all;
    this.emit();
  }

  /** Runs a language command on the editor (for the command palette); false when it cannot. */
  run(command: 'definition' | 'references' | 'rename' | 'format', view: EditorView): boolean {
    if (!LSPPlugin.get(view)) return false;
    const commands = { definition: jumpToDefinition, references: findReferences, rename: this.rename, format: formatDocument };
    return commands[command](view);
  }

  /**
   * Formats `path` with its language server before it is saved (format on save). Gives up
   * quietly after a few seconds, or when the text changed meanwhile: saving never waits long.
   */
  async formatBeforeSave(path: string, tabSize: number): Promise<void> {
    const wanted = serverFor(path);
    const connection = wanted && this.connections.get(wanted.server);
    if (!connection || !connection.client.serverCapabilities?.documentFormattingProvider) return;
    connection.client.sync();
    const before = this.editor.docOf(path);
    if (!before) return;
    const asked = connection.client.request<unknown, TextEdit[] | null>('textDocument/formatting', {
      textDocument: { uri: this.uriOf(path) },
      options: { tabSize, insertSpaces: true },
    });
    const edits = await Promise.race([asked.catch(() => null), new Promise<null>((r) => setTimeout(() => r(null), 3000))]);
    if (!edits?.length || this.editor.docOf(path) !== before) return;
    this.editor.update(path, { changes: edits.map((e) => ({ from: offsetOf(before, e.range.start), to: offsetOf(before, e.range.end), insert: e.newText })), userEvent: 'format' });
  }

  /** Ends every connection (the IDE is leaving the workspace). */
  dispose(): void {
    closeOutsideFile();
    document.removeEventListener('visibilitychange', this.onVisibility);
    if (this.restTimer) clearTimeout(this.restTimer);
    for (const [, c] of this.connections) hangUp(c);
    this.connections.clear();
  }
}

/** Ends a connection from this side: the runner then stops the server's whole process tree. */
function hangUp(c: Connection): void {
  c.socket.onclose = null;
  c.giveUp?.();
  try {
    c.client.disconnect();
  } catch {
    /* already gone */
  }
  if (c.socket.readyState === WebSocket.OPEN || c.socket.readyState === WebSocket.CONNECTING) c.socket.close();
}
