// Wire types of PROTOCOL.md v1 (REST section 0, control socket section 1).

export type WorkspaceState = 'stopped' | 'starting' | 'running' | 'stopping' | 'error';

export interface Workspace {
  id: string;
  name: string;
  template: string;
  state: WorkspaceState;
  owner: string;
  createdAt: string;
  /** When `state` last changed. */
  stateChangedAt?: string;
  /** Why it is in its state, for people ("stopped by admin"). */
  stateReason?: string;
  /** Who stopped it, when a person did. */
  stoppedBy?: string;
  runCommand?: string;
  previewPort?: number;
  /** What the workspace asked for at creation; absent: the server's defaults. */
  limits?: WorkspaceLimits;
}

/** Resource limits a workspace may ask for (each at most the server's own). */
export interface WorkspaceLimits {
  memoryMib?: number;
  cpu?: number;
  pids?: number;
  diskMib?: number;
}

export interface Template {
  name: string;
  description: string;
  runCommand?: string;
  previewPort?: number;
}

export type ErrorCode =
  | 'bad_request'
  | 'not_found'
  | 'conflict'
  | 'forbidden'
  | 'too_large'
  | 'limit_exceeded'
  | 'unavailable'
  | 'internal'
  | 'unauthorized'
  | 'timeout'
  | 'disconnected'
  | string;

export interface TerminalInfo {
  terminalId: string;
  command?: string;
  cols?: number;
  rows?: number;
  alive?: boolean;
  /** The program in the terminal's foreground now (vim while vim runs). */
  foreground?: string;
}

export interface ProcessInfo {
  processId: string;
  command: string;
  args?: string[];
  running: boolean;
  exitCode?: number | null;
  pid?: number;
}

export interface DirEntry {
  name: string;
  kind: 'file' | 'dir' | 'symlink';
  size?: number;
  mtime?: number | string;
}

export interface PortInfo {
  port: number;
  address?: string;
  /** The program that listens. */
  process?: string | null;
  /** The run_command process (or terminal) it belongs to. */
  processId?: string;
  terminalId?: string;
}

export type FileChangeKind = 'created' | 'modified' | 'deleted' | 'renamed';

/** Every server-to-client message of the control socket. */
export type ServerMessage = { type: string; requestId?: string } & Record<string, unknown>;

export interface WelcomeMessage {
  type: 'welcome';
  protocol: number;
  workspaceId: string;
  terminals?: TerminalInfo[];
  processes?: ProcessInfo[];
}

export interface StatusMessage {
  type: 'status';
  state: 'starting' | 'ready' | 'stopping' | 'stopped' | 'error';
  message?: string;
}

export interface FileChangedMessage {
  type: 'file_changed';
  path: string;
  kind: FileChangeKind;
  to?: string;
}

export interface FileContent {
  type: 'file_content';
  path: string;
  content: string;
  encoding: 'utf8' | 'base64';
  version: string;
}

export interface FileWritten {
  type: 'file_written';
  path: string;
  version: string;
  size: number;
}

export interface DirListing {
  type: 'dir_listing';
  path: string;
  entries: DirEntry[];
}

export interface ProcessOutput {
  type: 'process_output';
  processId: string;
  stream: 'stdout' | 'stderr';
  data: string;
}

export interface ProcessExit {
  type: 'process_exit';
  processId: string;
  exitCode: number | null;
  signal?: string | number | null;
}

export interface ProcessStarted {
  type: 'process_started';
  processId: string;
  command: string;
  args?: string[];
  pid?: number;
}

export interface PortEvent {
  type: 'port_opened' | 'port_closed';
  port: number;
  address?: string;
  process?: string;
  processId?: string;
  terminalId?: string;
}

/** Error with the stable `code` of PROTOCOL.md. */
export class ApiError extends Error {
  code: ErrorCode;
  status?: number;
  constructor(code: ErrorCode, message: string, status?: number) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
  }
}
