// Editor tabs: one CodeMirror view, one EditorState per open file (so undo
// history and unsaved text live in the browser and survive any reconnect).
import { Compartment, EditorState, type Extension, type Text, type Transaction, type TransactionSpec } from '@codemirror/state';
import { EditorView } from '@codemirror/view';
import type { WorkspaceClient } from '../api/workspace';
import { normPath } from '../api/workspace';
import { ApiError, type FileChangedMessage } from '../api/types';
import { baseExtensions, decodeContent, minimalChange, tabInfo } from './parts';
import { serverFor } from './servers';
import { prepare, settingsExtension } from './settingsExtension';
import { settings } from '../app/settings';
import type { LanguageServices } from './lsp';
import { fileKind, languageLabel, loadLanguage } from './languages';

/** How a tab shows its file: in the editor, as an image, or as a file the editor does not open. */
export type TabKind = 'text' | 'image' | 'binary' | 'large';

export interface TabInfo {
  path: string;
  title: string;
  kind: TabKind;
  dirty: boolean;
  loading: boolean;
  saving: boolean;
  error?: string;
  diskChanged: boolean;
  deleted: boolean;
}

export interface CursorInfo {
  line: number;
  col: number;
  selected: number;
  language: string;
  lineSeparator: string;
}

export interface AskAction {
  id: string;
  label: string;
  kind?: 'primary' | 'danger' | 'secondary';
}

export interface EditorHooks {
  ask(title: string, message: string, actions: AskAction[]): Promise<string>;
  notify(message: string, kind?: 'info' | 'error'): void;
}

export interface Tab {
  path: string;
  kind: TabKind;
  state: EditorState | null;
  savedDoc: Text | null;
  version?: string;
  dirty: boolean;
  loading: boolean;
  saving: boolean;
  saveAgain: boolean;
  recheckAfterSave: boolean;
  error?: string;
  diskChanged: boolean;
  deleted: boolean;
  language: Compartment;
  /** The language server's extension, once it is connected. */
  lsp: Compartment;
  scrollTop: number;
}

/** What survives a reload or a crash of the page: open tabs and unsaved text. */
interface SavedEditor {
  tabs: string[];
  active: string | null;
  /** Unsaved text by path, with the version of the file it was based on. */
  unsaved: Record<string, { text: string; version?: string }>;
}

/** Larger unsaved buffers are not kept in the browser's storage (a few MB per site). */
const MAX_KEPT_CHARS = 2_000_000;

export class EditorModel {
  private tabs: Tab[] = [];
  private persistTimer: ReturnType<typeof setTimeout> | null = null;
  /** Unsaved text to put back into tabs as they load (from the last page). */
  private pendingRestore = new Map<string, { text: string; version?: string }>();
  private activePath: string | null = null;
  private view: EditorView | null = null;
  private readonly base: Extension[];
  private readonly listeners = new Set<() => void>();
  private tabsSnap: { tabs: TabInfo[]; active: string | null; readOnly: boolean } = { tabs: [], active: null, readOnly: false };
  /** View access: text can be read, selected and searched, not changed or saved. */
  private readOnly = false;
  /** One compartment across every tab's state, so that one switch reaches them all. */
  private readonly readOnlyConf = new Compartment();
  /** The person's settings (tab size, wrap, font, keymap), across every tab. */
  private readonly settingsConf = new Compartment();
  private settingsExt: Extension = [];
  private readonly unsubscribeSettings: () => void;
  private cursorSnap: CursorInfo | null = null;

  constructor(
    private readonly client: WorkspaceClient,
    private readonly hooks: EditorHooks,
    /** A second editor group (split editor): its own tabs and kept state, and no language
     * servers of its own (the first group's already serve the workspace). */
    private readonly group: { name: string; languageServers: boolean } = { name: '', languageServers: true },
  ) {
    this.base = baseExtensions();
    const apply = () => {
      void prepare(settings.get()).then(() => {
        // The settings as they are now: a change made while Vim's code loaded wins.
        this.settingsExt = settingsExtension(settings.get());
        for (const tab of this.tabs) this.applyToTab(tab, { effects: this.settingsConf.reconfigure(this.settingsExt) });
      });
    };
    this.unsubscribeSettings = settings.subscribe(apply);
    apply();
  }

  // ---- subscription (useSyncExternalStore) ----
  subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };
  getTabs = () => this.tabsSnap;
  getCursor = () => this.cursorSnap;

  private emit(): void {
    this.tabsSnap = { tabs: this.tabs.map(tabInfo), active: this.activePath, readOnly: this.readOnly };
    for (const l of this.listeners) l();
    this.schedulePersist();
  }

  // ---- keeping tabs and unsaved text across reloads (per workspace, in this browser) ----
  private get storageKey(): string {
    return `cove.editor.${this.client.workspaceId}${this.group.name ? `.${this.group.name}` : ''}`;
  }

  private schedulePersist(): void {
    if (this.persistTimer) return;
    this.persistTimer = setTimeout(() => {
      this.persistTimer = null;
      this.persist();
    }, 300);
  }

  /** Writes open tabs and unsaved text to the browser's storage now. */
  persist(): void {
    const cur = this.active();
    if (cur && this.view && cur.state) cur.state = this.view.state;
    const saved: SavedEditor = { tabs: this.tabs.map((t) => t.path), active: this.activePath, unsaved: {} };
    for (const t of this.tabs) {
      if (!t.dirty || !t.state || t.kind !== 'text') continue;
      const text = t.state.doc.sliceString(0, t.state.doc.length, t.state.lineBreak);
      if (text.length <= MAX_KEPT_CHARS) saved.unsaved[t.path] = { text, version: t.version };
    }
    // Restores still waiting for their tab to load are kept too.
    for (const [path, kept] of this.pendingRestore) if (!(path in saved.unsaved)) saved.unsaved[path] = kept;
    try {
      if (saved.tabs.length === 0 && Object.keys(saved.unsaved).length === 0) localStorage.removeItem(this.storageKey);
      else localStorage.setItem(this.storageKey, JSON.stringify(saved));
    } catch {
      // Storage full or disabled: the beforeunload question still protects the text.
    }
  }

  /** Reopens the tabs of the last page of this workspace and puts back its unsaved text. */
  async restore(): Promise<number> {
    let saved: SavedEditor | null = null;
    try {
      saved = JSON.parse(localStorage.getItem(this.storageKey) ?? 'null');
    } catch {
      saved = null;
    }
    if (!saved || !Array.isArray(saved.tabs)) return 0;
    for (const [path, kept] of Object.entries(saved.unsaved ?? {})) this.pendingRestore.set(path, kept);
    const paths = [...new Set([...saved.tabs, ...this.pendingRestore.keys()])];
    const restored = this.pendingRestore.size;
    await Promise.all(paths.map((p) => this.open(p, false)));
    if (saved.active && this.find(saved.active)) this.activate(saved.active);
    return restored;
  }

  /** Puts unsaved text kept from an earlier page into a loaded tab. */
  private applyRestore(tab: Tab, diskMissing: boolean): void {
    const kept = this.pendingRestore.get(tab.path);
    if (!kept) return;
    this.pendingRestore.delete(tab.path);
    if (!tab.state) {
      // The file is gone (or unreadable): start from empty so the text can be saved again.
      tab.kind = 'text';
      tab.error = undefined;
      tab.state = this.createState('', tab);
      tab.savedDoc = null;
      this.loadLanguageFor(tab);
    }
    const current = tab.state.doc.sliceString(0, tab.state.doc.length, tab.state.lineBreak);
    const change = minimalChange(current, kept.text);
    if (change) tab.state = tab.state.update({ changes: change }).state;
    tab.dirty = !(tab.savedDoc && tab.state.doc.eq(tab.savedDoc));
    tab.deleted = diskMissing;
    // Saving over a file that changed since then asks first (the version no longer matches).
    if (!diskMissing && kept.version !== undefined) {
      tab.diskChanged = kept.version !== tab.version && tab.dirty;
      tab.version = kept.version;
    }
    if (tab === this.active()) this.showActive();
  }

  private emitCursor(): void {
    const tab = this.active();
    const st = tab?.state;
    if (!tab || !st) {
      this.cursorSnap = null;
    } else {
      const sel = st.selection.main;
      const line = st.doc.lineAt(sel.head);
      this.cursorSnap = {
        line: line.number,
        col: sel.head - line.from + 1,
        selected: st.selection.ranges.reduce((n, r) => n + (r.to - r.from), 0),
        language: languageLabel(tab.path),
        lineSeparator: st.facet(EditorState.lineSeparator) === '\r\n' ? 'CRLF' : 'LF',
      };
    }
    for (const l of this.listeners) l();
  }

  // ---- view ----
  attach(parent: HTMLElement): void {
    if (this.view) return;
    this.view = new EditorView({
      parent,
      state: this.active()?.state ?? EditorState.create({ extensions: this.base }),
      dispatchTransactions: (trs, view) => this.onTransactions(trs, view),
    });
  }

  detach(): void {
    this.view?.destroy();
    this.view = null;
  }

  focus(): void {
    this.view?.focus();
  }

  get hasView(): boolean {
    return this.view !== null;
  }

  private onTransactions(trs: readonly Transaction[], view: EditorView): void {
    view.update(trs);
    const tab = this.active();
    if (!tab || !tab.state) return;
    tab.state = view.state;
    if (trs.some((tr) => tr.docChanged)) {
      const dirty = !(tab.savedDoc && tab.state.doc.eq(tab.savedDoc)) || tab.deleted;
      if (dirty !== tab.dirty) {
        tab.dirty = dirty;
        this.emit();
      }
    }
    if (trs.some((tr) => tr.selection || tr.docChanged)) this.emitCursor();
  }

  private active(): Tab | undefined {
    return this.tabs.find((t) => t.path === this.activePath);
  }

  private find(path: string): Tab | undefined {
    return this.tabs.find((t) => t.path === path);
  }

  private showActive(): void {
    const tab = this.active();
    if (this.view && tab?.state) {
      this.view.setState(tab.state);
      const top = tab.scrollTop;
      requestAnimationFrame(() => {
        if (this.view && this.active() === tab) this.view.scrollDOM.scrollTop = top;
      });
    }
    this.emitCursor();
  }

  private createState(content: string, tab: Tab): EditorState {
    const crlf = /\r\n/.test(content);
    return EditorState.create({
      doc: content,
      extensions: [
        this.base,
        tab.language.of([]),
        tab.lsp.of([]),
        this.readOnlyConf.of(EditorState.readOnly.of(this.readOnly)),
        this.settingsConf.of(this.settingsExt),
        crlf ? EditorState.lineSeparator.of('\r\n') : [],
      ],
    });
  }

  /**
   * Read-only or not (the caller's access to the workspace). Only typing is stopped: changes
   * on disk still reach the tabs, and the cursor still moves, selects and searches.
   */
  setReadOnly(v: boolean): void {
    if (v === this.readOnly) return;
    this.readOnly = v;
    for (const tab of this.tabs) this.applyToTab(tab, { effects: this.readOnlyConf.reconfigure(EditorState.readOnly.of(v)) });
    this.emit();
  }

  get isReadOnly(): boolean {
    return this.readOnly;
  }

  private applyToTab(tab: Tab, spec: TransactionSpec): void {
    if (!tab.state) return;
    if (tab === this.active() && this.view) {
      this.view.dispatch(spec);
    } else {
      tab.state = tab.state.update(spec).state;
    }
  }

  private loadLanguageFor(tab: Tab): void {
    const p = loadLanguage(tab.path);
    if (!p) return;
    p.then((ext) => {
      if (!this.tabs.includes(tab) || !tab.state) return;
      this.applyToTab(tab, { effects: tab.language.reconfigure(ext) });
    }).catch(() => {
      /* stay plain text */
    });
  }

  // ---- language servers (loaded with the first file whose language may have one) ----
  private lsp: LanguageServices | null = null;
  private lspLoading: Promise<LanguageServices> | null = null;

  /** The language services, once a file has needed them (for the status bar and Problems). */
  getLanguageServices = (): LanguageServices | null => this.lsp;

  private languageServices(): Promise<LanguageServices> {
    this.lspLoading ??= import('./lsp').then((m) => {
      this.lsp = new m.LanguageServices(
        this.client.workspaceId,
        {
          docOf: (path) => {
            const tab = this.find(path);
            return tab === this.active() && this.view ? this.view.state.doc : (tab?.state?.doc ?? null);
          },
          viewOf: (path) => (this.activePath === path && this.view && this.find(path)?.state ? this.view : null),
          show: (path) => this.openAndShow(path),
          docFor: async (path) => {
            await this.open(path, false);
            // A tab still loading (opened a moment ago) is waited for, not skipped.
            for (let i = 0; i < 100 && this.find(normPath(path))?.loading; i++) await new Promise((r) => setTimeout(r, 50));
            return this.find(normPath(path))?.state?.doc ?? null;
          },
          unsaved: (path) => !!this.find(normPath(path))?.dirty,
          notify: (message) => this.hooks.notify(message),
          ask: (title, message, actions) => this.hooks.ask(title, message, actions),
          update: (path, spec) => this.updateTab(path, spec),
          attach: (server) => {
            for (const tab of this.tabs) if (serverFor(tab.path)?.server === server) this.loadLspFor(tab);
          },
        },
        () => !this.readOnly,
      );
      this.emit();
      return this.lsp;
    });
    return this.lspLoading;
  }

  /** Connects a text tab to its language server, if its language has one; quietly not, if not. */
  private loadLspFor(tab: Tab): void {
    if (!serverFor(tab.path) || tab.kind !== 'text' || !this.group.languageServers) return;
    void this.languageServices()
      .then((lsp) => lsp.extensionFor(tab.path))
      .then((ext) => {
        if (!this.tabs.includes(tab) || !tab.state) return;
        this.applyToTab(tab, { effects: tab.lsp.reconfigure(ext ?? []) });
      })
      .catch((e) => {
        // The plain editor stays; the status bar says what it can.
        console.warn('language server:', e);
      });
  }

  /** Opens `path`, shows it, and resolves with the view once its text is in. */
  private async openAndShow(path: string): Promise<EditorView | null> {
    await this.open(path);
    const tab = this.find(normPath(path));
    if (!tab || !tab.state || !this.view) return null;
    this.activate(tab.path);
    return this.view;
  }

  /** The current text of an open tab (unsaved changes included). */
  textOf(path: string): string | null {
    const tab = this.find(path);
    const state = tab === this.active() && this.view ? this.view.state : tab?.state;
    return state ? state.doc.toString() : null;
  }

  /** Runs a command of the active editor (the command palette); false when there is none. */
  runCommand(command: (view: EditorView) => boolean): boolean {
    if (!this.view || !this.active()?.state) return false;
    this.view.focus();
    return command(this.view);
  }

  /** Runs a language server command on the active editor; false when its file has no server. */
  runLanguageCommand(command: 'definition' | 'references' | 'rename' | 'format'): boolean {
    return this.runCommand((view) => this.lsp?.run(command, view) ?? false);
  }

  /** Ends what the model started (the IDE is leaving the workspace). */
  dispose(): void {
    this.unsubscribeSettings();
    this.lsp?.dispose();
  }

  /** Opens `path` and puts the cursor at `line`:`col` (1-based), scrolled into view. */
  async revealAt(path: string, line: number, col = 1): Promise<void> {
    await this.open(path);
    const tab = this.find(normPath(path));
    if (!tab?.state || !this.view || this.activePath !== tab.path) return;
    const doc = this.view.state.doc;
    const target = doc.line(Math.max(1, Math.min(line, doc.lines)));
    const pos = Math.min(target.to, target.from + Math.max(0, col - 1));
    this.view.dispatch({ selection: { anchor: pos }, effects: EditorView.scrollIntoView(pos, { y: 'center' }) });
    this.view.focus();
  }

  /** A change from a language server (a rename) to a tab, shown or not. */
  private updateTab(path: string, spec: TransactionSpec): void {
    const tab = this.find(normPath(path));
    if (!tab || !tab.state || this.readOnly) return;
    this.applyToTab(tab, spec);
    tab.dirty = !(tab.savedDoc && tab.state.doc.eq(tab.savedDoc)) || tab.deleted;
    this.emit();
  }

  // ---- tabs ----
  async open(rawPath: string, activate = true): Promise<void> {
    const path = normPath(rawPath);
    const existing = this.find(path);
    if (existing) {
      if (activate) this.activate(path);
      return;
    }
    const tab: Tab = {
      path,
      kind: fileKind(path),
      state: null,
      savedDoc: null,
      dirty: false,
      loading: true,
      saving: false,
      saveAgain: false,
      recheckAfterSave: false,
      diskChanged: false,
      deleted: false,
      language: new Compartment(),
      lsp: new Compartment(),
      scrollTop: 0,
    };
    // Insert after the active tab, like most editors (restored tabs keep their order).
    const idx = activate ? this.tabs.findIndex((t) => t.path === this.activePath) : -1;
    this.tabs.splice(idx < 0 ? this.tabs.length : idx + 1, 0, tab);
    if (activate || this.activePath === null) this.activate(path);
    else this.emit();
    if (tab.kind !== 'text') {
      tab.loading = false;
      this.emit();
      return;
    }
    await this.load(tab);
  }

  private async load(tab: Tab): Promise<void> {
    try {
      const r = await this.client.readFile(tab.path);
      const content = decodeContent(r.content, r.encoding);
      tab.state = this.createState(content, tab);
      tab.savedDoc = tab.state.doc;
      tab.version = r.version;
      tab.loading = false;
      tab.error = undefined;
      this.applyRestore(tab, false);
      if (tab === this.active()) this.showActive();
      this.loadLanguageFor(tab);
      this.loadLspFor(tab);
    } catch (e) {
      tab.loading = false;
      if (e instanceof ApiError && e.code === 'bad_request' && /utf-?8/i.test(e.message)) {
        // Not text: show the binary placeholder rather than an error.
        tab.kind = 'binary';
      } else if (e instanceof ApiError && e.code === 'too_large') {
        tab.kind = 'large';
      } else {
        tab.error = e instanceof Error ? e.message : String(e);
      }
      if (e instanceof ApiError && e.code === 'not_found') this.applyRestore(tab, true);
    }
    this.emit();
  }

  activate(path: string): void {
    const cur = this.active();
    if (cur && this.view && cur.state) {
      cur.state = this.view.state;
      cur.scrollTop = this.view.scrollDOM.scrollTop;
    }
    this.activePath = path;
    this.showActive();
    this.emit();
  }

  async close(path: string): Promise<void> {
    const tab = this.find(path);
    if (!tab) return;
    if (tab.dirty) {
      const choice = await this.hooks.ask(
        'Unsaved changes',
        `Do you want to save the changes you made to ${tab.path}?`,
        [
          // Kept from when this person could edit; saving is not theirs to do now.
          ...(this.readOnly ? [] : [{ id: 'save', label: 'Save', kind: 'primary' as const }]),
          { id: 'discard', label: "Don't save", kind: 'danger' },
          { id: 'cancel', label: 'Cancel', kind: 'secondary' },
        ],
      );
      if (choice === 'cancel' || !choice) return;
      if (choice === 'save') {
        const ok = await this.save(tab.path);
        if (!ok) return;
      }
    }
    const idx = this.tabs.indexOf(tab);
    this.tabs.splice(idx, 1);
    this.lsp?.closed(tab.path);
    if (this.activePath === path) {
      const next = this.tabs[Math.min(idx, this.tabs.length - 1)];
      this.activePath = next ? next.path : null;
      if (next) this.showActive();
      else this.emitCursor();
    }
    this.emit();
  }

  get activeTabPath(): string | null {
    return this.activePath;
  }

  dirtyCount(): number {
    return this.tabs.filter((t) => t.dirty).length;
  }

  /** Saves every tab with unsaved text; resolves true when all of them are on disk. */
  async saveAll(): Promise<boolean> {
    const dirty = this.tabs.filter((t) => t.dirty).map((t) => t.path);
    const results = await Promise.all(dirty.map((p) => this.save(p)));
    return results.every(Boolean);
  }

  /** Save a tab (default: the active one). Resolves true when it is on disk. */
  async save(rawPath?: string): Promise<boolean> {
    const tab = rawPath ? this.find(normPath(rawPath)) : this.active();
    // Read-only: the server would refuse the write; the IDE's banner says why.
    if (this.readOnly) return false;
    if (!tab || !tab.state || tab.loading || tab.kind !== 'text') return false;
    const s = settings.get();
    if (s.formatOnSave && this.lsp && !tab.saving) await this.lsp.formatBeforeSave(tab.path, s.tabSize ?? 4);
    if (tab === this.active() && this.view) tab.state = this.view.state;
    if (tab.saving) {
      tab.saveAgain = true;
      return false;
    }
    tab.saving = true;
    this.emit();
    let ok = false;
    try {
      ok = await this.writeTab(tab, tab.deleted ? undefined : tab.version);
    } catch (e) {
      if (e instanceof ApiError && e.code === 'conflict') {
        ok = await this.resolveConflict(tab);
      } else {
        const msg = e instanceof Error ? e.message : String(e);
        this.hooks.notify(`Could not save ${tab.path}: ${msg}`, 'error');
      }
    } finally {
      tab.saving = false;
      this.emit();
    }
    if (tab.saveAgain) {
      tab.saveAgain = false;
      return this.save(tab.path);
    }
    if (ok && tab.recheckAfterSave) {
      tab.recheckAfterSave = false;
      void this.refreshFromDisk(tab, false);
    }
    return ok;
  }

  private async writeTab(tab: Tab, baseVersion: string | undefined): Promise<boolean> {
    const st = tab.state!;
    const doc = st.doc;
    const content = doc.sliceString(0, doc.length, st.lineBreak);
    const r = await this.client.writeFile(tab.path, content, baseVersion);
    tab.version = r.version;
    tab.savedDoc = doc;
    tab.deleted = false;
    tab.diskChanged = false;
    tab.dirty = !(tab.state && tab.state.doc.eq(doc));
    return true;
  }

  private async resolveConflict(tab: Tab): Promise<boolean> {
    const choice = await this.hooks.ask(
      'File changed on disk',
      `${tab.path} was changed on disk since you opened it (for example from a terminal or another tab). What do you want to do with your unsaved changes?`,
      [
        { id: 'overwrite', label: 'Overwrite file on disk', kind: 'danger' },
        { id: 'reload', label: 'Reload from disk (discard mine)', kind: 'secondary' },
        { id: 'keep', label: 'Keep editing', kind: 'primary' },
      ],
    );
    // Ctrl+S pressed again while the question was open: the answer covers it.
    tab.saveAgain = false;
    try {
      if (choice === 'overwrite') {
        return await this.writeTab(tab, undefined);
      }
      if (choice === 'reload') {
        await this.refreshFromDisk(tab, true);
        return false;
      }
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      this.hooks.notify(`Could not save ${tab.path}: ${msg}`, 'error');
      return false;
    }
    tab.diskChanged = true;
    return false;
  }

  /**
   * Read the file again. `force` replaces unsaved text; otherwise a dirty tab
   * only learns that the disk changed.
   */
  private async refreshFromDisk(tab: Tab, force: boolean): Promise<void> {
    if (tab.kind !== 'text' || tab.loading) return;
    let r;
    try {
      r = await this.client.readFile(tab.path);
    } catch (e) {
      if (e instanceof ApiError && e.code === 'not_found') {
        tab.deleted = true;
        this.emit();
      }
      return;
    }
    if (!this.tabs.includes(tab) || !tab.state) return;
    if (r.version === tab.version && !force) return;
    if (tab.dirty && !force) {
      tab.diskChanged = true;
      this.emit();
      return;
    }
    const content = decodeContent(r.content, r.encoding);
    const current = tab.state.doc.sliceString(0, tab.state.doc.length, tab.state.lineBreak);
    const change = minimalChange(current, content);
    if (change) this.applyToTab(tab, { changes: change });
    tab.savedDoc = tab.state.doc;
    tab.version = r.version;
    tab.dirty = false;
    tab.diskChanged = false;
    tab.deleted = false;
    tab.error = undefined;
    this.emit();
  }

  /** A workspace file's bytes, base64 (the Markdown preview's images). */
  async readBase64(path: string): Promise<string> {
    return (await this.client.readFileBase64(path)).content;
  }

  /** The first bytes of a file (at most 64 KiB), for a hex view. */
  async readBytes(path: string): Promise<Uint8Array> {
    const bin = atob(await this.readBase64(path));
    const n = Math.min(bin.length, 64 * 1024);
    const bytes = new Uint8Array(n);
    for (let i = 0; i < n; i++) bytes[i] = bin.charCodeAt(i);
    return bytes;
  }

  reloadTab(path: string): void {
    const tab = this.find(path);
    if (tab) void this.refreshFromDisk(tab, true);
  }

  // ---- file system events ----
  onFileChanged(ev: FileChangedMessage): void {
    const path = normPath(ev.path);
    if (path === '.cove/languages.json' || path === '.cove') this.lsp?.forgetServers();
    switch (ev.kind) {
      case 'modified':
      case 'created': {
        const tab = this.find(path);
        if (!tab) return;
        if (tab.saving) {
          tab.recheckAfterSave = true;
          return;
        }
        void this.refreshFromDisk(tab, false);
        return;
      }
      case 'deleted': {
        for (const tab of this.tabs) {
          if (tab.path === path || tab.path.startsWith(path + '/')) tab.deleted = true;
        }
        this.emit();
        return;
      }
      case 'renamed': {
        if (ev.to != null) this.pathRenamed(path, normPath(ev.to));
        else this.onFileChanged({ ...ev, kind: 'deleted' });
        return;
      }
    }
  }

  /** The user deleted a path: close its tabs that hold no unsaved text. */
  pathDeleted(path: string): void {
    const gone = this.tabs.filter((t) => (t.path === path || t.path.startsWith(path + '/')) && !t.dirty);
    for (const t of gone) void this.close(t.path);
  }

  /** Follow a rename of a file or a folder. */
  pathRenamed(from: string, to: string): void {
    let changed = false;
    for (const tab of this.tabs) {
      let np: string | null = null;
      if (tab.path === from) np = to;
      else if (tab.path.startsWith(from + '/')) np = to + tab.path.slice(from.length);
      if (np && !this.find(np)) {
        if (this.activePath === tab.path) this.activePath = np;
        this.lsp?.closed(tab.path);
        tab.path = np;
        changed = true;
        this.loadLanguageFor(tab);
        this.loadLspFor(tab);
      }
    }
    if (changed) {
      this.emit();
      this.emitCursor();
    }
  }

  /** After a reconnect: catch up with changes made while we were away. */
  resync(): void {
    for (const tab of this.tabs) {
      if (tab.kind !== 'text') continue;
      if (tab.error && !tab.state) {
        tab.loading = true;
        tab.error = undefined;
        this.emit();
        void this.load(tab);
      } else if (!tab.saving && !tab.loading) {
        void this.refreshFromDisk(tab, false);
      }
    }
  }
}
