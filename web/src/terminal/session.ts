// One xterm.js terminal on the raw terminal socket (PROTOCOL.md section 2).
import { Terminal, type ITheme } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { WebLinksAddon } from '@xterm/addon-web-links';
import { verifySession } from '../api/accounts';
import { POLICY_CLOSE, UNAUTHORIZED_CLOSE, unauthorized } from '../api/auth';
import { Backoff } from '../api/backoff';
import { wsUrl } from '../api/rest';

export type TermStatus = 'connecting' | 'attached' | 'reconnecting' | 'paused' | 'exited';

export interface TermSessionEvents {
  onStatus?: (s: TermStatus, detail?: string) => void;
  onTitle?: (title: string) => void;
  /** Asked before each reconnect: a reconnect would start a workspace someone stopped. */
  mayReconnect?: () => Promise<boolean>;
  /**
   * Output only (view access): the socket is opened with `?mode=view`, xterm takes no
   * keyboard input and no resize is sent. The server refuses both anyway (PROTOCOL.md
   * section 8); this keeps them from being tried.
   */
  viewOnly?: boolean;
}

const encoder = new TextEncoder();
/** The terminals' fonts where the person chose none (and the fallback after one they chose). */
const MONOSPACE = 'ui-monospace, "SF Mono", "Cascadia Mono", "JetBrains Mono", Menlo, Consolas, "DejaVu Sans Mono", monospace';
const DEFAULT_FONT_SIZE = 13;

declare global {
  interface Window {
    /** Live terminals by id, for end-to-end tests and debugging. */
    __coveTerminals?: Map<string, Terminal>;
  }
}

function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

export function terminalTheme(): ITheme {
  return {
    background: cssVar('--term-bg', '#1e1e1e'),
    foreground: cssVar('--term-fg', '#d4d4d4'),
    cursor: cssVar('--term-cursor', '#d4d4d4'),
    cursorAccent: cssVar('--term-bg', '#1e1e1e'),
    selectionBackground: cssVar('--term-selection', '#264f78'),
    black: cssVar('--ansi-black', '#000000'),
    red: cssVar('--ansi-red', '#cd3131'),
    green: cssVar('--ansi-green', '#0dbc79'),
    yellow: cssVar('--ansi-yellow', '#e5e510'),
    blue: cssVar('--ansi-blue', '#2472c8'),
    magenta: cssVar('--ansi-magenta', '#bc3fbc'),
    cyan: cssVar('--ansi-cyan', '#11a8cd'),
    white: cssVar('--ansi-white', '#e5e5e5'),
    brightBlack: cssVar('--ansi-bright-black', '#666666'),
    brightRed: cssVar('--ansi-bright-red', '#f14c4c'),
    brightGreen: cssVar('--ansi-bright-green', '#23d18b'),
    brightYellow: cssVar('--ansi-bright-yellow', '#f5f543'),
    brightBlue: cssVar('--ansi-bright-blue', '#3b8eea'),
    brightMagenta: cssVar('--ansi-bright-magenta', '#d670d6'),
    brightCyan: cssVar('--ansi-bright-cyan', '#29b8db'),
    brightWhite: cssVar('--ansi-bright-white', '#e5e5e5'),
  };
}

/**
 * Owns an xterm.js instance and its raw socket. Counts the PTY bytes it has
 * received so that a reconnect asks for `?offset=<count>` and nothing is shown
 * twice; the first attach of a page passes no offset and asks for a screen
 * replay: a snapshot that redraws the terminal as it is (vim, htop, a prompt),
 * whose bytes are not PTY bytes and are not counted.
 */
export class TermSession {
  readonly term: Terminal;
  private readonly fit = new FitAddon();
  private ws: WebSocket | null = null;
  /** Byte offset of the next PTY byte we expect (server numbering). */
  private received = 0;
  /** Bytes of the screen snapshot still to come on this connection (not counted). */
  private snapshotLeft = 0;
  private attachedOnce = false;
  /** True once this connection received `attached`. */
  private attachedNow = false;
  private exited = false;
  private disposed = false;
  private readonly backoff = new Backoff(400, 15_000);
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private resizeObserver: ResizeObserver | null = null;
  private container: HTMLElement | null = null;
  private status: TermStatus = 'connecting';
  private lastSentSize = '';
  private fitFrame = 0;
  private viewOnly: boolean;
  /** When the last refusal was written, so that a stream of them shows once. */
  private lastRefusal = 0;

  constructor(
    readonly workspaceId: string,
    readonly terminalId: string,
    private readonly events: TermSessionEvents = {},
  ) {
    this.viewOnly = !!events.viewOnly;
    this.term = new Terminal({
      disableStdin: this.viewOnly,
      fontFamily: MONOSPACE,
      fontSize: DEFAULT_FONT_SIZE,
      lineHeight: 1.15,
      cursorBlink: true,
      scrollback: 10_000,
      allowProposedApi: false,
      theme: terminalTheme(),
    });
    this.term.loadAddon(this.fit);
    this.term.loadAddon(new WebLinksAddon());
    this.term.onData((data) => this.sendInput(encoder.encode(data)));
    this.term.onBinary((data) => {
      const bytes = new Uint8Array(data.length);
      for (let i = 0; i < data.length; i++) bytes[i] = data.charCodeAt(i) & 0xff;
      this.sendInput(bytes);
    });
    this.term.onResize(({ cols, rows }) => this.sendResize(cols, rows));
    this.term.onTitleChange((t) => this.events.onTitle?.(t));
    (window.__coveTerminals ??= new Map()).set(terminalId, this.term);
    window.addEventListener('offline', this.onOffline);
    window.addEventListener('online', this.onOnline);
  }

  // A socket over a network that went away is stale: drop it, and resume
  // (from the byte count) as soon as the network is back.
  private onOffline = () => {
    this.ws?.close();
  };

  private onOnline = () => {
    this.backoff.reset();
    this.nudge();
  };

  /**
   * Switches between output only and full input (access changed while the IDE is open). The
   * socket is opened again in the new mode, resuming at the byte count: nothing is lost.
   */
  setViewOnly(v: boolean): void {
    if (v === this.viewOnly) return;
    this.viewOnly = v;
    this.term.options.disableStdin = v;
    const ws = this.ws;
    if (!ws || this.disposed || this.exited) return;
    this.ws = null;
    ws.close(1000);
    this.connect();
  }

  get bytesReceived(): number {
    return this.received;
  }

  get currentStatus(): TermStatus {
    return this.status;
  }

  /** Put the terminal into the DOM and connect. */
  mount(el: HTMLElement): void {
    if (this.container === el) return;
    this.container = el;
    this.term.open(el);
    this.resizeObserver = new ResizeObserver(() => this.scheduleFit());
    this.resizeObserver.observe(el);
    this.scheduleFit();
    if (!this.ws && !this.exited) this.connect();
  }

  focus(): void {
    this.term.focus();
  }

  setTheme(): void {
    this.term.options.theme = terminalTheme();
  }

  /**
   * The person's font (their editor settings), the defaults where unset. A family that is not
   * installed falls back to the usual monospace ones, never to a proportional font.
   */
  setFont(family: string | undefined, size: number | undefined): void {
    const fontFamily = family?.trim() ? `${family}, ${MONOSPACE}` : MONOSPACE;
    const fontSize = size ?? DEFAULT_FONT_SIZE;
    if (this.term.options.fontFamily === fontFamily && this.term.options.fontSize === fontSize) return;
    this.term.options.fontFamily = fontFamily;
    this.term.options.fontSize = fontSize;
    // Another cell size: the same box holds other columns and rows (sent as a resize).
    this.scheduleFit();
  }

  /** Fit to the container when it is visible. */
  scheduleFit(): void {
    if (this.fitFrame) cancelAnimationFrame(this.fitFrame);
    this.fitFrame = requestAnimationFrame(() => {
      this.fitFrame = 0;
      const el = this.container;
      if (!el || el.offsetParent === null || el.clientWidth < 20 || el.clientHeight < 20) return;
      try {
        this.fit.fit();
      } catch {
        /* not rendered yet */
      }
    });
  }

  private connect(): void {
    if (this.disposed || this.exited) return;
    this.setStatus(this.attachedOnce ? 'reconnecting' : 'connecting');
    // Hidden containers measure as tiny: then keep the size we already have.
    const el = this.container;
    const visible = !!el && el.offsetParent !== null && el.clientWidth >= 20 && el.clientHeight >= 20;
    const dims = visible ? this.fit.proposeDimensions() : undefined;
    const cols = dims && Number.isFinite(dims.cols) && dims.cols > 1 ? dims.cols : this.term.cols;
    const rows = dims && Number.isFinite(dims.rows) && dims.rows > 1 ? dims.rows : this.term.rows;
    // A first attach from a hidden panel knows no size of its own: it takes the terminal's
    // (from `attached`) rather than squeeze it to xterm's default and back.
    const q = new URLSearchParams(
      dims || this.attachedOnce ? { cols: String(cols), rows: String(rows) } : {},
    );
    if (this.attachedOnce) q.set('offset', String(this.received));
    else q.set('replay', 'screen');
    if (this.viewOnly) q.set('mode', 'view');
    const url = wsUrl(
      `/api/workspaces/${encodeURIComponent(this.workspaceId)}/terminals/${encodeURIComponent(this.terminalId)}/ws?${q}`,
    );
    let ws: WebSocket;
    try {
      ws = new WebSocket(url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    this.attachedNow = false;
    const openTimeout = setTimeout(() => {
      if (ws.readyState === WebSocket.CONNECTING) ws.close();
    }, 15_000);
    ws.onmessage = (ev) => {
      if (ev.data instanceof ArrayBuffer) {
        const bytes = new Uint8Array(ev.data);
        const snapshot = Math.min(this.snapshotLeft, bytes.length);
        this.snapshotLeft -= snapshot;
        this.received += bytes.length - snapshot;
        this.term.write(bytes);
        return;
      }
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(String(ev.data));
      } catch {
        return;
      }
      this.onControl(msg);
    };
    ws.onclose = (ev) => {
      clearTimeout(openTimeout);
      if (this.ws !== ws) return;
      this.ws = null;
      this.lastSentSize = '';
      if (this.disposed || this.exited) return;
      if (ev.code === 1000 && this.exited) return;
      if (ev.code === UNAUTHORIZED_CLOSE) {
        // The session ended: the app goes to sign in; the terminal itself keeps running.
        this.setStatus('paused');
        unauthorized();
        return;
      }
      if (ev.code === 4004 || ev.code === POLICY_CLOSE || ev.code === 4003) {
        if (ev.code === POLICY_CLOSE) void verifySession();
        this.markExited(ev.reason || 'terminal not available');
        return;
      }
      this.scheduleReconnect();
    };
    ws.onerror = () => {
      /* onclose follows */
    };
  }

  private onControl(msg: Record<string, unknown>): void {
    switch (msg.type) {
      case 'attached': {
        const offset = Number(msg.offset ?? 0);
        if (this.attachedOnce && msg.gap) {
          this.term.write('\r\n\x1b[2m[some output was skipped while disconnected]\x1b[0m\r\n');
        }
        this.received = Number.isFinite(offset) ? offset : 0;
        const snapshot = Number(msg.snapshot ?? 0);
        this.snapshotLeft = Number.isFinite(snapshot) && snapshot > 0 ? snapshot : 0;
        // A snapshot redraws everything, at the terminal's size, so it starts from a clean
        // terminal of that size (a fit to the panel follows, and the program redraws).
        if (this.snapshotLeft > 0) {
          this.term.reset();
          const [c, r] = [Number(msg.cols), Number(msg.rows)];
          if (c > 0 && r > 0 && (c !== this.term.cols || r !== this.term.rows)) this.term.resize(c, r);
        }
        this.attachedOnce = true;
        this.attachedNow = true;
        this.backoff.reset();
        this.setStatus('attached');
        // The server may have another size: tell it ours (the last resize wins).
        this.lastSentSize = '';
        this.sendResize(this.term.cols, this.term.rows);
        this.scheduleFit();
        break;
      }
      case 'exit': {
        const code = msg.exitCode;
        const sig = msg.signal;
        const detail = sig ? `signal ${String(sig)}` : `exit code ${code ?? '?'}`;
        this.markExited(detail);
        break;
      }
      case 'error': {
        const m = String(msg.message ?? msg.code ?? 'error');
        if (!this.attachedNow) {
          // Refused before attaching (limit reached, bad id...): retrying will not help.
          this.term.write(`\x1b[31mCannot open this terminal: ${m}\x1b[0m\r\n`);
          this.exited = true;
          this.setStatus('exited', m);
          this.ws?.close();
        } else if (msg.code === 'forbidden') {
          // Input or a resize from someone who may only watch: the server's words, quietly,
          // once in a while (every keystroke is refused).
          const now = Date.now();
          if (now - this.lastRefusal > 5000) this.term.write(`\r\n\x1b[2m[${m}]\x1b[0m\r\n`);
          this.lastRefusal = now;
        } else {
          this.term.write(`\r\n\x1b[31m[${m}]\x1b[0m\r\n`);
        }
        break;
      }
      default:
        break;
    }
  }

  private markExited(detail: string): void {
    if (this.exited) return;
    this.exited = true;
    this.term.write(`\r\n\x1b[2m[process exited: ${detail}]\x1b[0m\r\n`);
    this.setStatus('exited', detail);
  }

  private scheduleReconnect(): void {
    if (this.disposed || this.exited) return;
    this.setStatus('reconnecting');
    const check = this.events.mayReconnect?.() ?? Promise.resolve(true);
    void check.then((ok) => {
      if (this.disposed || this.exited || this.ws) return;
      if (!ok) {
        // Waits for nudge() once the workspace runs again.
        this.setStatus('paused');
        return;
      }
      const delay = this.backoff.next();
      if (this.retryTimer) clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.connect();
      }, delay);
    });
  }

  /** Reconnect immediately (after the control socket came back). */
  nudge(): void {
    if (this.disposed || this.exited || this.ws) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.connect();
  }

  private sendInput(bytes: Uint8Array): void {
    if (this.viewOnly) return;
    if (this.ws && this.ws.readyState === WebSocket.OPEN && !this.exited) this.ws.send(bytes);
  }

  private sendResize(cols: number, rows: number): void {
    // A watcher's size is not the terminal's: the people typing decide it.
    if (this.viewOnly) return;
    const key = `${cols}x${rows}`;
    if (key === this.lastSentSize) return;
    if (this.ws && this.ws.readyState === WebSocket.OPEN && this.status === 'attached') {
      this.lastSentSize = key;
      this.ws.send(JSON.stringify({ type: 'resize', cols, rows }));
    }
  }

  private setStatus(s: TermStatus, detail?: string): void {
    this.status = s;
    this.events.onStatus?.(s, detail);
  }

  get isExited(): boolean {
    return this.exited;
  }

  dispose(): void {
    this.disposed = true;
    window.removeEventListener('offline', this.onOffline);
    window.removeEventListener('online', this.onOnline);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.fitFrame) cancelAnimationFrame(this.fitFrame);
    this.resizeObserver?.disconnect();
    this.ws?.close(1000);
    this.ws = null;
    window.__coveTerminals?.delete(this.terminalId);
    this.term.dispose();
  }
}
