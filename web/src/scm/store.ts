// The workspace's git state for the source-control view and the tree's decorations: asked
// of the server when a view needs it and again after file changes (debounced), and after
// every operation.
import type { GitReply, GitRequest, GitShown, GitStatus } from '../api/generated';
import { request } from '../api/rest';
import type { WorkspaceClient } from '../api/workspace';

export class GitStore {
  private status: GitStatus | null = null;
  private error: string | null = null;
  private readonly listeners = new Set<() => void>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** How many statuses were asked for: the newest answer wins. */
  private asked = 0;
  private snap: { status: GitStatus | null; error: string | null } = { status: null, error: null };
  private readonly off: () => void;

  constructor(private readonly client: WorkspaceClient) {
    // Any change on disk may change what git says (a save, a checkout in a terminal).
    this.off = client.socket.on('file_changed', () => this.soon());
  }

  private get base(): string {
    return `/api/workspaces/${encodeURIComponent(this.client.workspaceId)}/git`;
  }

  subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    if (this.listeners.size === 1) this.soon(0);
    return () => this.listeners.delete(fn);
  };
  get = () => this.snap;

  private emit(): void {
    this.snap = { status: this.status, error: this.error };
    for (const l of this.listeners) l();
  }

  /** Asks again in a moment (bursts of file changes make one request). */
  soon(ms = 300): void {
    if (this.listeners.size === 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.refresh();
    }, ms);
  }

  async refresh(): Promise<void> {
    // Statuses can cross on the way: only the newest asked for is shown.
    const asked = ++this.asked;
    let status: GitStatus | null = null;
    let error: string | null = null;
    try {
      status = await request<GitStatus>('GET', `${this.base}/status`);
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
    }
    if (asked !== this.asked) return;
    if (status) this.status = status;
    this.error = error;
    this.emit();
  }

  async run(op: GitRequest): Promise<GitReply> {
    try {
      return await request<GitReply>('POST', this.base, op);
    } finally {
      void this.refresh();
    }
  }

  async show(path: string, from: 'head' | 'index'): Promise<string | null> {
    const r = await request<GitShown>('GET', `${this.base}/show?path=${encodeURIComponent(path)}&from=${from}`);
    return r.content ?? null;
  }

  dispose(): void {
    this.off();
    if (this.timer) clearTimeout(this.timer);
  }
}
