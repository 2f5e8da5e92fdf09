// Control socket client (PROTOCOL.md section 1): requestId-matched
// request/reply promises, event subscription, reconnect with exponential
// backoff and jitter.
import { verifySession } from './accounts';
import { POLICY_CLOSE, UNAUTHORIZED_CLOSE, unauthorized } from './auth';
import { Backoff } from './backoff';
import { wsUrl } from './rest';
import { ApiError, type ServerMessage, type WelcomeMessage } from './types';

export type ConnectionState =
  | { kind: 'connecting' }
  | { kind: 'connected' }
  | { kind: 'reconnecting'; retryAt: number; attempt: number }
  | { kind: 'offline' }
  | { kind: 'closed' };

type Handler = (msg: ServerMessage) => void;

interface Pending {
  resolve: (msg: ServerMessage) => void;
  reject: (err: ApiError) => void;
  timer: ReturnType<typeof setTimeout>;
  /** Reply types that settle this request; any type settles it when empty. */
  expect: string[];
}

interface Queued {
  frame: string;
  requestId?: string;
}

const DEFAULT_TIMEOUT_MS = 20_000;
/** Close codes after which reconnecting is pointless. */
const FATAL_CLOSE_CODES = new Set([4001, 4003, 4004, 1008]);

let seq = 0;
function newRequestId(): string {
  seq += 1;
  return `r${Date.now().toString(36)}${seq.toString(36)}`;
}

export class ControlSocket {
  private ws: WebSocket | null = null;
  private readonly handlers = new Map<string, Set<Handler>>();
  private readonly stateHandlers = new Set<(s: ConnectionState) => void>();
  private readonly welcomeHandlers = new Set<(w: WelcomeMessage) => void>();
  private readonly pending = new Map<string, Pending>();
  private queue: Queued[] = [];
  private readonly backoff = new Backoff(500, 20_000);
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private closedByUser = false;
  private opened = false;
  private _state: ConnectionState = { kind: 'connecting' };
  private _welcome: WelcomeMessage | null = null;
  /** False while the server says the workspace is starting. */
  private ready = false;
  /** View access: connections ask for `?mode=view` (PROTOCOL.md section 8). */
  private viewOnly = false;

  constructor(
    private readonly path: string,
    /** Asked before each reconnect; false leaves the socket closed (see WorkspaceClient). */
    private readonly mayReconnect: () => Promise<boolean> = () => Promise.resolve(true),
  ) {
    window.addEventListener('online', this.onOnline);
    window.addEventListener('offline', this.onOffline);
  }

  get state(): ConnectionState {
    return this._state;
  }

  /** True once this connection received its `welcome`. */
  get isOpen(): boolean {
    return this.opened;
  }

  get welcome(): WelcomeMessage | null {
    return this._welcome;
  }

  connect(): void {
    this.closedByUser = false;
    this.open();
  }

  close(): void {
    this.closedByUser = true;
    window.removeEventListener('online', this.onOnline);
    window.removeEventListener('offline', this.onOffline);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.ws?.close(1000);
    this.ws = null;
    this.failPending('disconnected', 'The connection was closed.');
    this.queue = [];
    this.setState({ kind: 'closed' });
  }

  /**
   * Connects in view mode from now on. A connection made in the other mode is made again at
   * once: its requests fail as after any lost connection, and the welcome handlers catch up.
   */
  setViewOnly(v: boolean): void {
    if (v === this.viewOnly) return;
    this.viewOnly = v;
    const ws = this.ws;
    if (!ws || this.closedByUser) return;
    this.ws = null;
    ws.close(1000);
    this.failPending('disconnected', 'The connection to the workspace was reopened.');
    this.queue = [];
    this.open();
  }

  /** Reconnect right now (for a "retry now" button). */
  retryNow(): void {
    if (this.closedByUser || this._state.kind === 'connected' || this._state.kind === 'connecting') return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.open();
  }

  on(type: string, handler: Handler): () => void {
    let set = this.handlers.get(type);
    if (!set) {
      set = new Set();
      this.handlers.set(type, set);
    }
    set.add(handler);
    return () => set!.delete(handler);
  }

  onState(handler: (s: ConnectionState) => void): () => void {
    this.stateHandlers.add(handler);
    return () => this.stateHandlers.delete(handler);
  }

  /** Called on every (re)connection with its `welcome`; re-subscribe there. */
  onWelcome(handler: (w: WelcomeMessage) => void): () => void {
    this.welcomeHandlers.add(handler);
    return () => this.welcomeHandlers.delete(handler);
  }

  /**
   * Send a request and wait for the reply carrying the same requestId.
   * An `error` reply rejects with an ApiError carrying the protocol code.
   */
  request<T extends ServerMessage = ServerMessage>(
    type: string,
    payload: Record<string, unknown> = {},
    opts: { timeoutMs?: number; expect?: string[] } = {},
  ): Promise<T> {
    const requestId = newRequestId();
    const frame = JSON.stringify({ type, payload, requestId });
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        this.queue = this.queue.filter((q) => q.requestId !== requestId);
        reject(new ApiError('timeout', `No answer to ${type} within ${Math.round(timeoutMs / 1000)} s.`));
      }, timeoutMs);
      this.pending.set(requestId, {
        resolve: resolve as (m: ServerMessage) => void,
        reject,
        timer,
        expect: opts.expect ?? [],
      });
      this.sendFrame(frame, requestId);
    });
  }

  /**
   * Fire-and-forget request (for types whose only reply is an error, or whose
   * effects arrive as events). Errors are reported through `on('error')`.
   */
  send(type: string, payload: Record<string, unknown> = {}): void {
    const requestId = newRequestId();
    this.sendFrame(JSON.stringify({ type, payload, requestId }), requestId);
  }

  private sendFrame(frame: string, requestId?: string): void {
    if (this.ws && this.ws.readyState === WebSocket.OPEN && this.opened && this.ready) {
      this.ws.send(frame);
    } else {
      this.queue.push({ frame, requestId });
    }
  }

  private flushQueue(): void {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || !this.ready) return;
    const q = this.queue;
    this.queue = [];
    for (const item of q) this.ws.send(item.frame);
  }

  private open(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (!navigator.onLine) {
      this.setState({ kind: 'offline' });
      return;
    }
    this.setState({ kind: 'connecting' });
    this.opened = false;
    this.ready = false;
    let ws: WebSocket;
    try {
      ws = new WebSocket(wsUrl(this.viewOnly ? `${this.path}?mode=view` : this.path));
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    const openTimeout = setTimeout(() => {
      if (ws.readyState === WebSocket.CONNECTING) ws.close();
    }, 15_000);
    ws.onopen = () => {
      clearTimeout(openTimeout);
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data !== 'string') return;
      let msg: ServerMessage;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      this.dispatch(msg);
    };
    ws.onclose = (ev) => {
      clearTimeout(openTimeout);
      if (this.ws !== ws) return;
      this.ws = null;
      this.opened = false;
      this.ready = false;
      this.failPending('disconnected', 'The connection to the workspace was lost.');
      // Fire-and-forget frames are dropped: the welcome handlers re-subscribe.
      this.queue = this.queue.filter((q) => q.requestId && this.pending.has(q.requestId));
      if (this.closedByUser) return;
      if (ev.code === UNAUTHORIZED_CLOSE) {
        // The session ended (signed out elsewhere, revoked, the account disabled).
        this.setState({ kind: 'closed' });
        unauthorized();
        return;
      }
      if (FATAL_CLOSE_CODES.has(ev.code)) {
        this.setState({ kind: 'closed' });
        // A policy close may be the session too; or access to this workspace was taken away,
        // which the check before a reconnect finds out (and says).
        if (ev.code === POLICY_CLOSE) void verifySession().then(() => this.mayReconnect());
        return;
      }
      void this.mayReconnect().then((ok) => {
        if (this.closedByUser || this.ws) return;
        if (ok) this.scheduleReconnect();
        else this.setState({ kind: 'closed' });
      });
    };
    ws.onerror = () => {
      /* onclose follows */
    };
  }

  private dispatch(msg: ServerMessage): void {
    if (msg.type === 'welcome') {
      this._welcome = msg as unknown as WelcomeMessage;
      this.opened = true;
      this.ready = true;
      this.backoff.reset();
      this.setState({ kind: 'connected' });
      for (const h of this.welcomeHandlers) h(this._welcome);
      this.flushQueue();
    } else if (msg.type === 'status') {
      const st = msg.state as string;
      if (st === 'ready') {
        this.ready = true;
        this.flushQueue();
      } else if (st === 'starting') {
        this.ready = false;
      } else {
        // stopping / stopped / error: let requests through; they get errors.
        this.ready = true;
        this.flushQueue();
      }
    }
    const rid = msg.requestId;
    if (rid && this.pending.has(rid)) {
      const p = this.pending.get(rid)!;
      if (msg.type === 'error') {
        this.pending.delete(rid);
        clearTimeout(p.timer);
        p.reject(new ApiError(String(msg.code ?? 'internal'), String(msg.message ?? 'Request failed')));
        // The caller handles it; `on('error')` only hears unanswered errors.
        return;
      } else if (p.expect.length === 0 || p.expect.includes(msg.type)) {
        this.pending.delete(rid);
        clearTimeout(p.timer);
        p.resolve(msg);
      }
    }
    const set = this.handlers.get(msg.type);
    if (set) for (const h of [...set]) h(msg);
    const any = this.handlers.get('*');
    if (any) for (const h of [...any]) h(msg);
  }

  private failPending(code: string, message: string): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new ApiError(code, message));
      this.pending.delete(id);
    }
  }

  private scheduleReconnect(): void {
    if (this.closedByUser) return;
    if (!navigator.onLine) {
      this.setState({ kind: 'offline' });
      return;
    }
    const delay = this.backoff.next();
    this.setState({ kind: 'reconnecting', retryAt: Date.now() + delay, attempt: this.backoff.attempts });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.open();
    }, delay);
  }

  private setState(s: ConnectionState): void {
    this._state = s;
    for (const h of this.stateHandlers) h(s);
  }

  private onOnline = () => {
    if (this.closedByUser) return;
    if (this._state.kind === 'offline' || this._state.kind === 'reconnecting') {
      this.backoff.reset();
      this.open();
    }
  };

  private onOffline = () => {
    if (this.closedByUser) return;
    // The socket may linger half-open; close it so that we reconnect cleanly.
    if (this.ws) this.ws.close();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.setState({ kind: 'offline' });
  };
}
