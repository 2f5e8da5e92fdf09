// Typed helpers over the control socket of one workspace.
import { ControlSocket } from './control';
import type {
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

export class WorkspaceClient {
  readonly socket: ControlSocket;

  constructor(readonly workspaceId: string) {
    this.socket = new ControlSocket(`/api/workspaces/${encodeURIComponent(workspaceId)}/ws`);
  }

  listDir(path: string): Promise<DirListing> {
    return this.socket.request<DirListing & ServerMessage>('list_dir', { path: wirePath(path) }, { expect: ['dir_listing'] });
  }

  readFile(path: string): Promise<FileContent> {
    return this.socket.request<FileContent & ServerMessage>('read_file', { path: wirePath(path) }, { expect: ['file_content'], timeoutMs: 30_000 });
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
