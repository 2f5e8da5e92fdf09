// File tree state: folders listed lazily, kept fresh by `file_changed`.
import type { DirEntry, FileChangedMessage } from '../api/types';
import { joinPath, normPath, parentOf, type WorkspaceClient } from '../api/workspace';

export interface DirState {
  entries: DirEntry[] | null;
  loading: boolean;
  error?: string;
}

export interface Row {
  path: string;
  name: string;
  kind: DirEntry['kind'];
  depth: number;
  expanded: boolean;
  loading: boolean;
}

export const SKIP_DIRS = new Set(['node_modules', '.git', '__pycache__', '.venv', 'venv', 'target', 'dist', '.next', '.cache', '.mypy_cache', '.pytest_cache']);

function sortEntries(entries: DirEntry[]): DirEntry[] {
  return [...entries].sort((a, b) => {
    const ad = a.kind === 'dir' ? 0 : 1;
    const bd = b.kind === 'dir' ? 0 : 1;
    if (ad !== bd) return ad - bd;
    return a.name.localeCompare(b.name, undefined, { numeric: true, sensitivity: 'base' });
  });
}

export class FileTreeModel {
  private readonly dirs = new Map<string, DirState>();
  private readonly expanded = new Set<string>(['']);
  private readonly listeners = new Set<() => void>();
  private readonly pendingRefresh = new Set<string>();
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;
  private rows: Row[] = [];
  private indexCache: string[] | null = null;
  /** Bumped on every change that can make the quick-open index stale. */
  private structureVersion = 0;
  /** The newest listing asked for, per folder: an older answer arriving last is dropped. */
  private readonly listings = new Map<string, number>();

  constructor(private readonly client: WorkspaceClient) {}

  subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };
  getRows = (): Row[] => this.rows;

  private emit(): void {
    this.rows = this.computeRows();
    for (const l of this.listeners) l();
  }

  private computeRows(): Row[] {
    const out: Row[] = [];
    const walk = (dir: string, depth: number) => {
      const st = this.dirs.get(dir);
      if (!st?.entries) return;
      for (const e of st.entries) {
        const path = joinPath(dir, e.name);
        const isDir = e.kind === 'dir';
        const expanded = isDir && this.expanded.has(path);
        out.push({ path, name: e.name, kind: e.kind, depth, expanded, loading: !!this.dirs.get(path)?.loading });
        if (expanded) walk(path, depth + 1);
      }
    };
    walk('', 0);
    return out;
  }

  dirState(dir: string): DirState | undefined {
    return this.dirs.get(normPath(dir));
  }

  isExpanded(dir: string): boolean {
    return this.expanded.has(normPath(dir));
  }

  entryKind(path: string): DirEntry['kind'] | undefined {
    const p = normPath(path);
    if (p === '') return 'dir';
    const st = this.dirs.get(parentOf(p));
    const name = p.slice(p.lastIndexOf('/') + 1);
    return st?.entries?.find((e) => e.name === name)?.kind;
  }

  async refresh(dir: string): Promise<void> {
    const d = normPath(dir);
    const prev = this.dirs.get(d);
    this.dirs.set(d, { entries: prev?.entries ?? null, loading: true });
    if (!prev?.entries) this.emit();
    const asked = (this.listings.get(d) ?? 0) + 1;
    this.listings.set(d, asked);
    const superseded = () => this.listings.get(d) !== asked;
    try {
      const r = await this.client.listDir(d);
      if (superseded()) return;
      this.dirs.set(d, { entries: sortEntries(r.entries ?? []), loading: false });
      // Forget folders that vanished.
      const names = new Set((r.entries ?? []).filter((e) => e.kind === 'dir').map((e) => e.name));
      for (const key of [...this.dirs.keys()]) {
        if (key !== d && parentOf(key) === d && !names.has(key.slice(key.lastIndexOf('/') + 1))) {
          this.forget(key);
        }
      }
    } catch (e) {
      if (superseded()) return;
      this.dirs.set(d, { entries: prev?.entries ?? null, loading: false, error: e instanceof Error ? e.message : String(e) });
      if (d !== '' && !prev?.entries) this.expanded.delete(d);
    }
    this.emit();
  }

  private forget(dir: string): void {
    for (const key of [...this.dirs.keys()]) {
      if (key === dir || key.startsWith(dir + '/')) this.dirs.delete(key);
    }
    for (const key of [...this.expanded]) {
      if (key === dir || key.startsWith(dir + '/')) this.expanded.delete(key);
    }
  }

  async toggle(dir: string, open?: boolean): Promise<void> {
    const d = normPath(dir);
    const willOpen = open ?? !this.expanded.has(d);
    if (willOpen) {
      this.expanded.add(d);
      this.emit();
      if (!this.dirs.get(d)?.entries) await this.refresh(d);
    } else {
      this.expanded.delete(d);
      this.emit();
    }
  }

  /** Expand every folder above a path (to reveal it). */
  async reveal(path: string): Promise<void> {
    const parts = normPath(path).split('/');
    let cur = '';
    for (let i = 0; i < parts.length - 1; i++) {
      cur = joinPath(cur, parts[i]);
      if (!this.expanded.has(cur) || !this.dirs.get(cur)?.entries) await this.toggle(cur, true);
    }
  }

  collapseAll(): void {
    this.expanded.clear();
    this.expanded.add('');
    this.emit();
  }

  /** Refresh every folder we have listed (after a reconnect). */
  async resync(): Promise<void> {
    this.structureVersion++;
    this.indexCache = null;
    const dirs = [...this.dirs.keys()].filter((d) => d === '' || this.expanded.has(d));
    if (!dirs.includes('')) dirs.unshift('');
    await Promise.all(dirs.map((d) => this.refresh(d)));
  }

  onFileChanged(ev: FileChangedMessage): void {
    const path = normPath(ev.path);
    if (ev.kind === 'modified') {
      // The runner's atomic writes (a file saved through the API) show as `modified` even when
      // they make the file: a name its folder's listing lacks is new.
      const known = this.dirs.get(parentOf(path))?.entries;
      const name = path.slice(path.lastIndexOf('/') + 1);
      if (!known || known.some((e) => e.name === name)) return;
    }
    this.structureVersion++;
    this.indexCache = null;
    const touch = (p: string) => {
      const parent = parentOf(p);
      if (this.dirs.has(parent)) this.pendingRefresh.add(parent);
    };
    touch(path);
    if (ev.kind === 'deleted' || ev.kind === 'renamed') {
      if (this.dirs.has(path)) this.forget(path);
    }
    if (ev.kind === 'renamed' && ev.to) touch(normPath(ev.to));
    if (this.pendingRefresh.size && !this.refreshTimer) {
      // Coalesce bursts (git checkout, npm install) into one listing per folder.
      this.refreshTimer = setTimeout(() => {
        this.refreshTimer = null;
        const dirs = [...this.pendingRefresh];
        this.pendingRefresh.clear();
        for (const d of dirs) void this.refresh(d);
      }, 120);
    }
  }

  /**
   * Every file path under the root, for quick open: breadth-first, skipping
   * heavy folders, bounded in count and depth.
   */
  async listAllFiles(limit = 5000, maxDepth = 12): Promise<{ files: string[]; truncated: boolean }> {
    if (this.indexCache) return { files: this.indexCache, truncated: false };
    const startVersion = this.structureVersion;
    const files: string[] = [];
    let truncated = false;
    let queue: { dir: string; depth: number }[] = [{ dir: '', depth: 0 }];
    const deadline = Date.now() + 8000;
    while (queue.length && !truncated) {
      const batch = queue.splice(0, 8);
      const results = await Promise.all(
        batch.map(async ({ dir, depth }) => {
          // A folder with a change not yet listed again is asked afresh.
          const cached = this.dirs.get(dir);
          if (cached?.entries && !cached.loading && !this.pendingRefresh.has(dir)) return { dir, depth, entries: cached.entries };
          try {
            const r = await this.client.listDir(dir);
            return { dir, depth, entries: r.entries ?? [] };
          } catch {
            return { dir, depth, entries: [] as DirEntry[] };
          }
        }),
      );
      for (const { dir, depth, entries } of results) {
        for (const e of entries) {
          const p = joinPath(dir, e.name);
          if (e.kind === 'dir') {
            if (!SKIP_DIRS.has(e.name) && depth + 1 <= maxDepth) queue.push({ dir: p, depth: depth + 1 });
          } else {
            files.push(p);
            if (files.length >= limit) truncated = true;
          }
        }
      }
      if (Date.now() > deadline) truncated = true;
    }
    queue = [];
    if (!truncated && startVersion === this.structureVersion) this.indexCache = files;
    return { files, truncated };
  }
}
