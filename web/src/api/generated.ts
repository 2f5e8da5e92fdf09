// Generated from crates/protocol by `COVE_UPDATE_GENERATED=1 cargo test -p cove-protocol typescript`; do not edit.
// CI fails when this file and the Rust types differ.

export type ErrorCode = "bad_request" | "unauthorized" | "not_found" | "conflict" | "forbidden" | "too_large" | "limit_exceeded" | "unavailable" | "internal";

export type LanguageServers = { 
/**
 * The workspace root as the language servers see it (`file:///...`): documents are
 * named by URIs beneath it.
 */
rootUri: string, servers: Array<LanguageServer>, };

export type LanguageServer = { 
/**
 * The key of the socket (`python`, `typescript`, `rust`, `go`, `c`, or a name the
 * workspace's `.cove/languages.json` adds).
 */
language: string, 
/**
 * The program and its arguments, as it is started.
 */
command: Array<string>, 
/**
 * Where the command came from: `workspace` (`.cove/languages.json`) or `path`.
 */
source: string, 
/**
 * What the editor passes as `initializationOptions` in `initialize`, where the server
 * needs to be told something about this machine (typescript-language-server: where
 * TypeScript is installed, when the workspace has none of its own).
 */
initializationOptions?: unknown, };

export type SearchQuery = { query: string, 
/**
 * `query` is a regular expression (Rust/ripgrep syntax), not literal text.
 */
regex: boolean, caseSensitive: boolean, wholeWord: boolean, 
/**
 * Comma-separated globs a file must match (`src/**,*.{ts,tsx}`: a comma inside braces is
 * the glob's own).
 */
include?: string, 
/**
 * Comma-separated globs a file must not match.
 */
exclude?: string, 
/**
 * At most this many matching lines (default and ceiling: 10,000).
 */
maxResults?: number, };

export type SearchLine = { "type": "match", path: string, 
/**
 * 1-based.
 */
line: number, text: string, 
/**
 * `[start, end)` character offsets (UTF-16 code units, as the browser counts) of
 * each match in `text`.
 */
ranges: Array<[number, number]>, 
/**
 * Where the first match starts in the whole line (UTF-16, 0-based): `text` is cut
 * around the match when the line is long (minified files), `ranges` are within it.
 */
column: number, 
/**
 * `text` is a cut of a longer line.
 */
clipped: boolean, } | { "type": "done", matches: number, files: number, truncated: boolean, elapsedMs: number, } | { "type": "error", message: string, };

export type Settings = { 
/**
 * `light`, `dark` or `system`.
 */
theme?: string, 
/**
 * A CSS font family list for the editor and terminals (at most 200 characters).
 */
fontFamily?: string, 
/**
 * 8-32 pixels.
 */
fontSize?: number, 
/**
 * 1-16 columns.
 */
tabSize?: number, wordWrap?: boolean, 
/**
 * `default` or `vim`.
 */
keymap?: string, 
/**
 * Format a document with its language server when it is saved.
 */
formatOnSave?: boolean, };

export type GitStatus = { 
/**
 * Whether the workspace root is (inside) a git repository.
 */
repository: boolean, 
/**
 * The branch checked out; `None` when detached or before the first commit's branch exists.
 */
branch: string | null, upstream: string | null, ahead: number, behind: number, files: Array<GitFile>, 
/**
 * Local branches.
 */
branches: Array<string>, };

export type GitFile = { path: string, index: string, worktree: string, renamedFrom?: string, };

export type GitShowQuery = { path: string, 
/**
 * `head` or `index`.
 */
from: string, };

export type GitShown = { content: string | null, };

export type OutsideFileQuery = { path: string, };

export type OutsideFile = { path: string, content: string, };

export type GitRequest = { "op": "init" } | { "op": "stage", paths: Array<string>, } | { "op": "unstage", paths: Array<string>, } | { "op": "discard", paths: Array<string>, } | { "op": "setIndex", path: string, content: string, } | { "op": "commit", message: string, } | { "op": "switch", branch: string, create: boolean, } | { "op": "pull" } | { "op": "push" } | { "op": "credentials", url: string, username: string, password: string, };

export type GitReply = { ok: boolean, 
/**
 * git's output (stdout then stderr), at most 64 KiB.
 */
output: string, 
/**
 * The push or pull failed for want of a credential: the IDE asks for one.
 */
needsCredentials: boolean, };

export type ErrorReply = { code: ErrorCode, message: string, };

export type RestError = { error: ErrorReply, };

export type WorkspaceState = "stopped" | "starting" | "running" | "stopping" | "error" | "hibernated";

export type Limits = { memoryMib?: number, 
/**
 * Cores (0.25 = a quarter of one).
 */
cpu?: number, pids?: number, diskMib?: number, };

export type CreateWorkspace = { name: string, 
/**
 * Default: `blank`.
 */
template?: string, limits?: Limits, };

export type WorkspaceView = { id: string, name: string, template: string, state: WorkspaceState, 
/**
 * The owner's username.
 */
owner: string, createdAt: string, 
/**
 * When `state` last changed.
 */
stateChangedAt: string, 
/**
 * Why it is in its state, for people ("stopped by admin", "its runner exited").
 */
stateReason?: string, 
/**
 * Who stopped it, when a person did.
 */
stoppedBy?: string, 
/**
 * What the Processes panel offers to run (from its template).
 */
runCommand?: string, 
/**
 * The port its run command serves, for the preview.
 */
previewPort?: number, 
/**
 * The limits it asked for at creation (absent: the server's defaults).
 */
limits?: Limits, 
/**
 * What the caller may do with it (a cove addition).
 */
access?: WorkspaceAccess, 
/**
 * Kept running with nobody connected: the server's idle stop passes it by.
 */
keepRunning: boolean, };

export type Template = { name: string, description: string, 
/**
 * A short symbol shown beside the name (an emoji, or a few letters).
 */
icon?: string, 
/**
 * What the Processes panel offers to run.
 */
runCommand?: string, 
/**
 * The port the run command serves, for the preview.
 */
previewPort?: number, 
/**
 * A shell command run once, as the process `init`, when a workspace made from this
 * template first starts (installing dependencies, say).
 */
initCommand?: string, 
/**
 * How many files it holds, and their bytes.
 */
files: number, bytes: number, 
/**
 * Who published it (`cove` for the built-in ones), and when (RFC 3339).
 */
publishedBy?: string, publishedAt?: string, };

export type PublishTemplate = { 
/**
 * The workspace (id, or a name of the caller's) whose files become the template.
 */
workspace: string, 
/**
 * Lowercase letters, digits and `-`, at most 40.
 */
name: string, description: string, icon?: string, runCommand?: string, previewPort?: number, initCommand?: string, };

export type ServerInfo = { version: string, 
/**
 * `http://{port}-{id}.localhost:8080/`: where previews live, from the name the client
 * used; `null` when they are only path-based from there.
 */
previewUrlTemplate: string | null, 
/**
 * How clients sign in: `password` (sessions and API tokens) or `none`.
 */
auth: string, };

export type Healthz = { 
/**
 * `alive` or `expired`.
 */
status: string, 
/**
 * Milliseconds since the epoch of the last activity.
 */
lastHeartbeat: number, };

export type Health = { success: boolean, status: string, 
/**
 * Open sockets by kind (`control`, `terminal`, `plain`, `events`).
 */
connections: { [key in string]: number }, activeStreams: number, };

export type AttachMode = "edit" | "view";

export type Replay = "screen" | "raw";

export type TerminalQuery = { cols?: number, rows?: number, 
/**
 * Used only when the terminal does not exist yet.
 */
command?: string, 
/**
 * Resume at this byte of the terminal's output.
 */
offset?: number, 
/**
 * Without `offset`: `screen` (default on the raw socket) or `raw` (default with
 * `format=text`), see [`Replay`].
 */
replay?: Replay, 
/**
 * `raw` (default) or `text` (the plain-text socket of seed 004).
 */
format?: string, 
/**
 * `edit` (default) or `view`: output only; input and resizes are refused, and a missing
 * terminal is not created.
 */
mode?: AttachMode, };

export type ControlQuery = { 
/**
 * `edit` (default) or `view`: every request that changes the workspace is refused.
 */
mode?: AttachMode, };

export type DeleteQuery = { recursive: boolean, };

export type Role = "admin" | "user" | "viewer";

export type ShareAccess = "view" | "edit";

export type WorkspaceAccess = "view" | "edit" | "owner";

export type LoginRequest = { 
/**
 * Left out in single-user mode: the admin.
 */
username?: string, password: string, };

export type LoginResponse = { user: User, };

export type Quotas = { 
/**
 * Workspaces the user may own.
 */
workspaces?: number, 
/**
 * Workspaces of theirs running at once.
 */
running?: number, 
/**
 * Signed-in sessions at once.
 */
sessions?: number, 
/**
 * Open sockets at once (control, terminal, events).
 */
connections?: number, 
/**
 * The sum of their workspaces' storage limits.
 */
storageMib?: number, 
/**
 * The sum of the memory limits of their running workspaces.
 */
memoryMib?: number, };

export type User = { id: string, username: string, role: Role, createdAt: string, 
/**
 * A disabled user cannot sign in, and their sessions and tokens are ended.
 */
disabled: boolean, 
/**
 * Their own quotas, where they differ from the server's defaults.
 */
quotas?: Quotas, };

export type CreateUser = { username: string, password: string, role: Role, };

export type UpdateUser = { password?: string, role?: Role, disabled?: boolean, quotas?: Quotas, };

export type UpdateWorkspace = { 
/**
 * Keep it running with nobody connected (background jobs), or let the idle stop take it.
 */
keepRunning?: boolean, };

export type ChangePassword = { password: string, currentPassword: string, };

export type SessionView = { id: string, createdAt: string, lastSeenAt: string, address: string, userAgent: string, 
/**
 * The session this request came with.
 */
current: boolean, };

export type CreateToken = { name: string, 
/**
 * Default: never.
 */
expiresInDays?: number, };

export type TokenCreated = { id: string, name: string, token: string, expiresAt: string | null, };

export type TokenView = { id: string, name: string, createdAt: string, expiresAt: string | null, lastUsedAt: string | null, };

export type Share = { 
/**
 * The username.
 */
user: string, access: ShareAccess, };

export type ShareRequest = { access: ShareAccess, };

export type Usage = { workspaces: number, running: number, storageBytes: number, memoryBytes: number, sessions: number, connections: number, quotas: Quotas, };

export type Outcome = "success" | "failure";

export type AuditEntry = { id: number, 
/**
 * RFC 3339, UTC.
 */
at: string, 
/**
 * The username who acted (or tried to), empty when unknown.
 */
user: string, 
/**
 * What was done, e.g. `login`, `workspace.delete`, `socket.refused`.
 */
action: string, 
/**
 * What it was done to (a workspace id, a username, a token id), or empty.
 */
target: string, 
/**
 * The client's address.
 */
address: string, outcome: Outcome, 
/**
 * Anything else worth knowing (why it was refused, the values that did not match).
 */
detail: string, };

export type AuditPage = { entries: Array<AuditEntry>, next?: number, };

export type AuditQuery = { 
/**
 * A username.
 */
user?: string, action?: string, 
/**
 * RFC 3339.
 */
since?: string, 
/**
 * RFC 3339.
 */
until?: string, 
/**
 * At most 500; default 100.
 */
limit?: number, 
/**
 * Only entries older than this id (paging).
 */
before?: number, };

export type Presence = { workspaceId: string, users: Array<PresentUser>, };

export type PresentUser = { username: string, access: WorkspaceAccess, };

export type Request = { "type": "create_terminal", "payload": CreateTerminal } | { "type": "attach_terminal", "payload": AttachTerminal } | { "type": "terminal_input", "payload": TerminalInput } | { "type": "resize_terminal", "payload": ResizeTerminal } | { "type": "close_terminal", "payload": TerminalRef } | { "type": "list_terminals", "payload": Empty } | { "type": "run_command", "payload": RunCommand } | { "type": "stop_process", "payload": StopProcess } | { "type": "list_processes", "payload": Empty } | { "type": "subscribe_process", "payload": ProcessRef } | { "type": "read_file", "payload": ReadFile } | { "type": "write_file", "payload": WriteFile } | { "type": "list_dir", "payload": PathRef } | { "type": "make_dir", "payload": PathRef } | { "type": "delete_path", "payload": DeletePath } | { "type": "rename_path", "payload": RenamePath } | { "type": "watch", "payload": OptionalPath } | { "type": "unwatch", "payload": OptionalPath } | { "type": "list_ports", "payload": Empty } | { "type": "stats", "payload": Empty } | { "type": "ping", "payload": Empty };

export type Empty = Record<symbol, never>;

export type CreateTerminal = { terminalId?: string | null, cols?: number | null, rows?: number | null, cwd?: string | null, env?: { [key in string]: string } | null, 
/**
 * A shell command line; the default is the login shell.
 */
command?: string | null, };

export type TerminalRef = { terminalId: string, };

export type AttachTerminal = { terminalId: string, offset?: number, 
/**
 * Without `offset`: `screen` (default) sends one `terminal_output` without an offset that
 * redraws the screen as it is, `raw` the scrollback the terminal keeps.
 */
replay?: Replay, };

export type TerminalInput = { terminalId: string, input: string, };

export type ResizeTerminal = { terminalId: string, cols: number, rows: number, };

export type RunCommand = { 
/**
 * With `args`, the program to execute; without, a shell command line.
 */
command: string, args?: Array<string> | null, cwd?: string | null, env?: { [key in string]: string } | null, processId?: string | null, };

export type StopProcess = { processId: string, 
/**
 * A signal name (`TERM`, `SIGINT`, `KILL`...) or number. Default: TERM, then KILL.
 */
signal?: SignalSpec | null, };

export type SignalSpec = number | string;

export type ProcessRef = { processId: string, };

export type Encoding = "utf8" | "base64";

export type ReadFile = { path: string, encoding?: Encoding, };

export type WriteFile = { path: string, content: string, encoding?: Encoding, baseVersion?: string | null, };

export type PathRef = { path: string, };

export type OptionalPath = { path?: string | null, };

export type DeletePath = { path: string, recursive: boolean, };

export type RenamePath = { from: string, to: string, overwrite: boolean, };

export type ServerMessage = { requestId?: string | null, } & ({ "type": "welcome" } & Welcome | { "type": "status" } & Status | { "type": "terminal_created" } & TerminalCreated | { "type": "terminal_attached" } & TerminalAttached | { "type": "terminal_output" } & TerminalOutput | { "type": "terminal_exit" } & TerminalExit | { "type": "terminals" } & Terminals | { "type": "process_started" } & ProcessStarted | { "type": "process_output" } & ProcessOutput | { "type": "process_exit" } & ProcessExit | { "type": "processes" } & Processes | { "type": "file_content" } & FileContent | { "type": "file_written" } & FileWritten | { "type": "dir_listing" } & DirListing | { "type": "file_changed" } & FileChanged | { "type": "port_opened" } & PortEvent | { "type": "port_closed" } & PortEvent | { "type": "ports" } & Ports | { "type": "stats" } & Stats | { "type": "ok" } & Empty | { "type": "pong" } & Empty | { "type": "error" } & ErrorReply);

export type Event = { "type": "welcome" } & Welcome | { "type": "status" } & Status | { "type": "terminal_created" } & TerminalCreated | { "type": "terminal_attached" } & TerminalAttached | { "type": "terminal_output" } & TerminalOutput | { "type": "terminal_exit" } & TerminalExit | { "type": "terminals" } & Terminals | { "type": "process_started" } & ProcessStarted | { "type": "process_output" } & ProcessOutput | { "type": "process_exit" } & ProcessExit | { "type": "processes" } & Processes | { "type": "file_content" } & FileContent | { "type": "file_written" } & FileWritten | { "type": "dir_listing" } & DirListing | { "type": "file_changed" } & FileChanged | { "type": "port_opened" } & PortEvent | { "type": "port_closed" } & PortEvent | { "type": "ports" } & Ports | { "type": "stats" } & Stats | { "type": "ok" } & Empty | { "type": "pong" } & Empty | { "type": "error" } & ErrorReply;

export type Welcome = { protocol: number, workspaceId: string, terminals: Array<TerminalInfo>, processes: Array<ProcessInfo>, };

export type StatusState = "starting" | "ready" | "stopping" | "stopped" | "error";

export type Status = { state: StatusState, message: string, };

export type TerminalCreated = { terminalId: string, };

export type TerminalAttached = { terminalId: string, cols: number, rows: number, 
/**
 * Where the output that follows starts, in bytes of the terminal's output since it
 * started.
 */
offset?: number, 
/**
 * The offset asked for is no longer held (or never was): the output starts later, at
 * `offset`.
 */
gap?: boolean, };

export type TerminalOutput = { terminalId: string, data: string, 
/**
 * The offset of `data`'s first byte in the terminal's output since it started: a client
 * that reconnects asks `attach_terminal` for the offset after the last byte it has.
 */
offset?: number, };

export type TerminalExit = { terminalId: string, exitCode: number | null, signal: number | null, };

export type TerminalInfo = { terminalId: string, command: string, cols: number, rows: number, alive: boolean, 
/**
 * The name of the program in the terminal's foreground now (`vim`, `bash`), while alive.
 */
foreground?: string | null, };

export type Terminals = { terminals: Array<TerminalInfo>, };

export type ProcessStarted = { processId: string, command: string, args: Array<string>, pid?: number | null, };

export type Stream = "stdout" | "stderr";

export type ProcessOutput = { processId: string, stream: Stream, data: string, };

export type ProcessExit = { processId: string, exitCode: number | null, signal: number | null, };

export type ProcessInfo = { processId: string, command: string, args: Array<string>, running: boolean, exitCode: number | null, signal?: number | null, pid?: number | null, };

export type Processes = { processes: Array<ProcessInfo>, };

export type FileContent = { path: string, content: string, encoding: Encoding, version: string, };

export type FileWritten = { path: string, version: string, size: number, };

export type EntryKind = "file" | "dir" | "symlink" | "other";

export type DirEntry = { name: string, kind: EntryKind, size: number, 
/**
 * Milliseconds since the Unix epoch.
 */
mtime: number, 
/**
 * A regular file with an execute bit set.
 */
executable: boolean, };

export type DirListing = { path: string, entries: Array<DirEntry>, };

export type ChangeKind = "created" | "modified" | "deleted" | "renamed";

export type FileChanged = { path: string, kind: ChangeKind, to?: string | null, };

export type PortEvent = { port: number, address: string, 
/**
 * The name of the program listening.
 */
process?: string | null, 
/**
 * The `run_command` process it belongs to (it or one of its descendants listens).
 */
processId?: string | null, 
/**
 * The terminal it belongs to, when started from one.
 */
terminalId?: string | null, };

export type PortInfo = { port: number, address: string, process?: string | null, 
/**
 * The `run_command` process it belongs to (it or one of its descendants listens).
 */
processId?: string | null, 
/**
 * The terminal it belongs to, when started from one.
 */
terminalId?: string | null, };

export type Ports = { ports: Array<PortInfo>, };

export type Stats = { cpuPercent: number, memoryBytes: number, memoryLimitBytes: number | null, pids: number, diskBytes: number, diskLimitBytes: number | null, };

export type RawControl = { "type": "attached", offset: number, cols: number, rows: number, gap?: boolean, snapshot?: number, } | { "type": "resize", cols: number, rows: number, } | { "type": "exit", exitCode: number | null, signal: number | null, } | { "type": "error", code: ErrorCode, message: string, };

export type LogsSubscription = { workspaceId: string, processId: string, };

export type Logs = { workspaceId: string, processId: string, stream: Stream, data: string, };

export type LogsSkipped = { workspaceId: string, processId: string, 
/**
 * Bytes dropped on the way to this client; a lower bound when the runner's kept log was
 * outrun too (the message then says "at least").
 */
bytes: number, message: string, };

export type StreamClosed = { workspaceId: string, processId: string, exitCode: number | null, signal: number | null, };

export type StatsSubscription = { workspaceId?: string | null, };

export type WorkspaceStats = { workspaceId: string, name: string, owner: string, terminals: number, processes: number, cpuPercent: number, memoryBytes: number, memoryLimitBytes: number | null, pids: number, diskBytes: number, diskLimitBytes: number | null, };

export type HostStats = { cpuCount: number, 
/**
 * 1-minute load average.
 */
load: number, memoryTotalBytes: number, memoryAvailableBytes: number, serverMemoryBytes: number, 
/**
 * Open connections by kind: control, terminal, plain, events, preview, and each
 * Socket.IO namespace.
 */
connections: { [key in string]: number }, runningWorkspaces: number, 
/**
 * Workspace start latency: how many starts, and their mean, in milliseconds.
 */
starts: number, startMeanMs: number, 
/**
 * The last few failures the server logged (starts, runners), newest first.
 */
recentErrors: Array<RecentError>, };

export type RecentError = { 
/**
 * RFC 3339.
 */
at: string, workspaceId: string | null, message: string, };

export type StatsEvent = { workspaces: Array<WorkspaceStats>, host?: HostStats | null, };

export type WatchFiles = { workspaceId: string, path?: string | null, };

export type FileChange = { workspaceId: string, path: string, kind: ChangeKind, to?: string | null, };

export type Room = { workspaceId: string, };

export type Connected = { namespace: string, username: string, };

export type RealtimeError = { code: ErrorCode, message: string, 
/**
 * The event that was refused, when there is one.
 */
event?: string | null, workspaceId?: string | null, };

export type EmitRequest = { namespace: string, room?: string | null, event: string, data: unknown, };

export type EmitReply = { 
/**
 * Clients the event was queued for.
 */
delivered: number, 
/**
 * Clients that were too far behind to take it.
 */
dropped: number, };
