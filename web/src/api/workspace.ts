// Typed helpers over the control socket of one workspace.
import { ControlSocket } from './control';
import { api } from './rest';
import { ApiError } from './types';
import type {
  Workspace,
  DirListing,
  FileContent,
  FileWritten,
  PortInfo,
  ProcessInfo,
  ProcessStarted,
  ServerMessage,
  TerminalInfo,
} from './types';

/** Workspace paths are kept relative ("src/a.ts"; "" is the root). */
export function normPath(p: string): string {
  return p.replace(/^\/+/, '').replace(/\/+$/, '');
}

export function wirePath(p: string): string {
  const n = normPath(p);
  return n === '' ? '/' : n;
}

export function parentOf(p: string): string {
  const n = normPath(p);
  const i = n.lastIndexOf('/');
  return i < 0 ? '' : n.slice(0, i);
}

export function baseName(p: string): string {
  const n = normPath(p);
  return n.slice(n.lastIndexOf('/') + 1);
}

export function joinPath(dir: string, name: string): string {
  const d = normPath(dir);
  return d ? `${d}/${name}` : name;
}

/** Why the IDE stopped talking to its workspace: someone stopped it, or deleted it. */
export type Halt = { kind: 'stopped'; workspace: Workspace } | { kind: 'deleted' };

export class WorkspaceClient {
  readonly socket: ControlSocket;
  private halt: Halt | null = null;
  private readonly haltListeners = new Set<(h: Halt | null) => void>();
  private checking: Promise<boolean> | null = null;

  constructor(readonly workspaceId: string) {
    this.socket = new ControlSocket(`/api/workspaces/${encodeURIComponent(workspaceId)}/ws`, () => this.mayReconnect());
  }

  get halted(): Halt | null {
    return this.halt;
  }

  onHalt(fn: (h: Halt | null) => void): () => void {
    this.haltListeners.add(fn);
    return () => this.haltListeners.delete(fn);
  }

  /** Stops every socket of this workspace from reconnecting, and says why. */
  setHalt(h: Halt | null): void {
    this.halt = h;
    for (const fn of this.haltListeners) fn(h);
  }

  /**
   * Asked before any socket of this workspace reconnects. Opening a socket starts a stopped
   * workspace, so a reconnect after someone stopped (or deleted) it would undo their
   * decision: it is only allowed while the workspace is meant to run. A network failure of
   * the check itself allows it (the socket's own retry handles the outage).
   */
  mayReconnect(): Promise<boolean> {
    if (this.halt) return Promise.resolve(false);
    this.checking ??= api
      .getWorkspace(this.workspaceId)
      .then((w) => {
        if (w.state === 'stopped' || w.state === 'stopping' || w.state === 'error') {
          this.setHalt({ kind: 'stopped', workspace: w });
          return false;
        }
        return true;
      })
      .catch((e) => {
        if (e instanceof ApiError && e.status === 404) {
          this.setHalt({ kind: 'deleted' });
          return false;
        }
        // Signed out: the REST client is on its way to the sign-in page.
        if (e instanceof ApiError && e.status === 401) return false;
        return true;
      })
      .finally(() => {
        this.checking = null;
      });
    return this.checking;
  }

  listDir(path: string): Promise<DirListing> {
    return this.socket.request<DirListing & ServerMessage>('list_dir', { path: wirePath(path) }, { expect: ['dir_listing'] });
  }

  readFile(path: string): Promise<FileContent> {
    return this.socket.request<FileContent & ServerMessage>('read_file', { path: wirePath(path) }, { expect: ['file_content'], timeoutMs: 30_000 });
  }

  readFileBase64(path: string): Promise<FileContent> {
    return this.socket.request<FileContent & ServerMessage>('read_file', { path: wirePath(path), encoding: 'base64' }, { expect: ['file_content'], timeoutMs: 30_000 });
  }

  writeFile(path: string, content: string, baseVersion?: string): Promise<FileWritten> {
    const payload: Record<string, unknown> = { path: wirePath(path), content };
    if (baseVersion !== undefined) payload.baseVersion = baseVersion;
    return this.socket.request<FileWritten & ServerMessage>('write_file', payload, { expect: ['file_written'], timeoutMs: 30_000 });
  }

  makeDir(path: string): Promise<ServerMessage> {
    return this.socket.request('make_dir', { path: wirePath(path) });
  }

  deletePath(path: string, recursive = true): Promise<ServerMessage> {
    return this.socket.request('delete_path', { path: wirePath(path), recursive });
  }

  renamePath(from: string, to: string, overwrite = false): Promise<ServerMessage> {
    return this.socket.request('rename_path', { from: wirePath(from), to: wirePath(to), overwrite });
  }

  watch(path = ''): Promise<ServerMessage> {
    return this.socket.request('watch', path ? { path: wirePath(path) } : {});
  }

  async listTerminals(): Promise<TerminalInfo[]> {
    const r = await this.socket.request('list_terminals', {}, { expect: ['terminals'] });
    return (r.terminals as TerminalInfo[]) ?? [];
  }

  closeTerminal(terminalId: string): void {
    this.socket.send('close_terminal', { terminalId });
  }

  runCommand(commandLine: string, cwd?: string): Promise<ProcessStarted> {
    // Without `args` the server runs `command` as a shell command line, so
    // `python3 main.py` or `npm run dev -- --host` work as typed.
    const payload: Record<string, unknown> = { command: commandLine };
    if (cwd) payload.cwd = cwd;
    return this.socket.request<ProcessStarted & ServerMessage>('run_command', payload, { expect: ['process_started'], timeoutMs: 30_000 });
  }

  stopProcess(processId: string): void {
    this.socket.send('stop_process', { processId });
  }

  subscribeProcess(processId: string): void {
    this.socket.send('subscribe_process', { processId });
  }

  async listProcesses(): Promise<ProcessInfo[]> {
    const r = await this.socket.request('list_processes', {}, { expect: ['processes'] });
    return (r.processes as ProcessInfo[]) ?? [];
  }

  async listPorts(): Promise<PortInfo[]> {
    const r = await this.socket.request('list_ports', {}, { expect: ['ports'] });
    return (r.ports as PortInfo[]) ?? [];
  }
}
