//! Wire types of cove's protocol (`docs/PROTOCOL.md`), shared by the server, the runner and
//! clients.
//!
//! Owns: the JSON shapes of the control socket (requests, replies, events), the raw terminal
//! socket's control messages, the REST bodies (`rest`, `accounts`), the launch specs
//! (`launch`), the REST error body and the stable error codes, and what a socket attached in
//! view mode may ask (`attach`).
//! Must not know: I/O, sockets, files, processes. Serde only.
//!
//! A request is `{"type": T, "payload": {...}, "requestId": "..."}` and decodes into
//! [`ClientMessage`]. Everything the server sends is flat, `{"type": T, ...fields}`, and is a
//! [`ServerMessage`]: an [`Event`] plus the `requestId` it answers.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub mod accounts;
mod attach;
mod error;
pub mod handover;
pub mod ide;
pub mod launch;
pub mod realtime;
pub mod rest;
pub use attach::{AttachMode, Replay};
pub use error::{ErrorCode, ErrorReply, RestError};

/// Version of the control protocol, sent in `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Environment variables given to a terminal or a process.
pub type Env = BTreeMap<String, String>;

/// A decoded request from a client: what to do, and the id to answer it with.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientMessage {
    pub request: Request,
    pub request_id: Option<String>,
}

/// Every request of docs/PROTOCOL.md section 1, with its payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(tag = "type", content = "payload", rename_all = "snake_case")]
pub enum Request {
    CreateTerminal(CreateTerminal),
    AttachTerminal(AttachTerminal),
    TerminalInput(TerminalInput),
    ResizeTerminal(ResizeTerminal),
    CloseTerminal(TerminalRef),
    ListTerminals(Empty),
    RunCommand(RunCommand),
    StopProcess(StopProcess),
    ListProcesses(Empty),
    SubscribeProcess(ProcessRef),
    ReadFile(ReadFile),
    WriteFile(WriteFile),
    ListDir(PathRef),
    MakeDir(PathRef),
    DeletePath(DeletePath),
    RenamePath(RenamePath),
    Watch(OptionalPath),
    Unwatch(OptionalPath),
    ListPorts(Empty),
    Stats(Empty),
    Ping(Empty),
}

/// The request types this protocol version knows, in the order of docs/PROTOCOL.md.
pub const REQUEST_TYPES: &[&str] = &[
    "create_terminal",
    "attach_terminal",
    "terminal_input",
    "resize_terminal",
    "close_terminal",
    "list_terminals",
    "run_command",
    "stop_process",
    "list_processes",
    "subscribe_process",
    "read_file",
    "write_file",
    "list_dir",
    "make_dir",
    "delete_path",
    "rename_path",
    "watch",
    "unwatch",
    "list_ports",
    "stats",
    "ping",
];

/// A payload with no fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Empty {}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct CreateTerminal {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cols: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Env>,
    /// A shell command line; the default is the login shell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct TerminalRef {
    pub terminal_id: String,
}

/// `attach_terminal`: follow a terminal's output. Without `offset`, its scrollback is
/// replayed first; with one, the output resumes exactly at that byte of everything the
/// terminal has written since it started (PROTOCOL.md section 8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct AttachTerminal {
    pub terminal_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub offset: Option<u64>,
    /// Without `offset`: `screen` (default) sends one `terminal_output` without an offset that
    /// redraws the screen as it is, `raw` the scrollback the terminal keeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub replay: Option<Replay>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct TerminalInput {
    pub terminal_id: String,
    pub input: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ResizeTerminal {
    pub terminal_id: String,
    pub cols: u16,
    pub rows: u16,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct RunCommand {
    /// With `args`, the program to execute; without, a shell command line.
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Env>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct StopProcess {
    pub process_id: String,
    /// A signal name (`TERM`, `SIGINT`, `KILL`...) or number. Default: TERM, then KILL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<SignalSpec>,
}

/// A signal given by name or by number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(untagged)]
pub enum SignalSpec {
    Number(i32),
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ProcessRef {
    pub process_id: String,
}

/// How file content travels in JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    #[default]
    Utf8,
    Base64,
}

impl Encoding {
    /// True for the default, so that `encoding` can be left out of requests.
    pub fn is_default(&self) -> bool {
        *self == Encoding::Utf8
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ReadFile {
    pub path: String,
    #[serde(default, skip_serializing_if = "Encoding::is_default")]
    pub encoding: Encoding,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct WriteFile {
    pub path: String,
    pub content: String,
    #[serde(default, skip_serializing_if = "Encoding::is_default")]
    pub encoding: Encoding,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct PathRef {
    pub path: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct OptionalPath {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct DeletePath {
    pub path: String,
    #[serde(default)]
    pub recursive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct RenamePath {
    pub from: String,
    pub to: String,
    #[serde(default)]
    pub overwrite: bool,
}

/// Why a frame could not be decoded into a [`ClientMessage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// The `requestId`, when the frame was JSON enough to carry one.
    pub request_id: Option<String>,
    pub message: String,
}

impl ClientMessage {
    /// Decodes one control-socket text frame, with a message fit for a person when it fails.
    pub fn decode(text: &str) -> Result<ClientMessage, DecodeError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| DecodeError {
            request_id: None,
            message: format!("the frame is not valid JSON: {e}"),
        })?;
        let serde_json::Value::Object(mut object) = value else {
            return Err(DecodeError {
                request_id: None,
                message: "a request must be a JSON object".into(),
            });
        };
        let request_id = match object.remove("requestId") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(id)) => Some(id),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            Some(_) => {
                return Err(DecodeError {
                    request_id: None,
                    message: "requestId must be a string".into(),
                });
            }
        };
        let fail = |message: String| DecodeError {
            request_id: request_id.clone(),
            message,
        };
        let kind = match object.get("type") {
            Some(serde_json::Value::String(kind)) => kind.clone(),
            Some(_) => return Err(fail("type must be a string".into())),
            None => return Err(fail("the request has no type".into())),
        };
        if !REQUEST_TYPES.contains(&kind.as_str()) {
            return Err(fail(format!("unknown message type {kind:?}")));
        }
        let payload = match object.remove("payload") {
            None | Some(serde_json::Value::Null) => serde_json::Value::Object(Default::default()),
            Some(payload @ serde_json::Value::Object(_)) => payload,
            Some(_) => return Err(fail(format!("the payload of {kind} must be an object"))),
        };
        let tagged = serde_json::json!({ "type": kind, "payload": payload });
        let request = serde_json::from_value(tagged)
            .map_err(|e| fail(format!("bad payload for {kind}: {e}")))?;
        Ok(ClientMessage {
            request,
            request_id,
        })
    }

    /// Encodes the request the way a client sends it.
    pub fn encode(&self) -> String {
        let mut value = serde_json::to_value(&self.request).expect("requests always serialize");
        if let (Some(id), serde_json::Value::Object(object)) = (&self.request_id, &mut value) {
            object.insert("requestId".into(), serde_json::Value::String(id.clone()));
        }
        value.to_string()
    }
}

/// One message from server to client: an event or reply, and the request it answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ServerMessage {
    #[serde(flatten)]
    pub event: Event,
    #[serde(rename = "requestId", default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ServerMessage {
    /// An event nobody asked for.
    pub fn event(event: Event) -> ServerMessage {
        ServerMessage {
            event,
            request_id: None,
        }
    }

    /// A reply to the request with this id.
    pub fn reply(event: Event, request_id: Option<String>) -> ServerMessage {
        ServerMessage { event, request_id }
    }

    /// Encodes the message as one JSON text frame.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialize")
    }
}

/// Replies and events of docs/PROTOCOL.md section 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Welcome(Welcome),
    Status(Status),
    TerminalCreated(TerminalCreated),
    TerminalAttached(TerminalAttached),
    TerminalOutput(TerminalOutput),
    TerminalExit(TerminalExit),
    Terminals(Terminals),
    ProcessStarted(ProcessStarted),
    ProcessOutput(ProcessOutput),
    ProcessExit(ProcessExit),
    Processes(Processes),
    FileContent(FileContent),
    FileWritten(FileWritten),
    DirListing(DirListing),
    FileChanged(FileChanged),
    PortOpened(PortEvent),
    PortClosed(PortEvent),
    Ports(Ports),
    Stats(Stats),
    Ok(Empty),
    Pong(Empty),
    Error(ErrorReply),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct Welcome {
    pub protocol: u32,
    pub workspace_id: String,
    pub terminals: Vec<TerminalInfo>,
    pub processes: Vec<ProcessInfo>,
}

/// Lifecycle of a workspace as seen by a client while it connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum StatusState {
    Starting,
    Ready,
    Stopping,
    Stopped,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Status {
    pub state: StatusState,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct TerminalCreated {
    pub terminal_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct TerminalAttached {
    pub terminal_id: String,
    pub cols: u16,
    pub rows: u16,
    /// Where the output that follows starts, in bytes of the terminal's output since it
    /// started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub offset: Option<u64>,
    /// The offset asked for is no longer held (or never was): the output starts later, at
    /// `offset`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub gap: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct TerminalOutput {
    pub terminal_id: String,
    pub data: String,
    /// The offset of `data`'s first byte in the terminal's output since it started: a client
    /// that reconnects asks `attach_terminal` for the offset after the last byte it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub offset: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct TerminalExit {
    pub terminal_id: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct TerminalInfo {
    pub terminal_id: String,
    pub command: String,
    pub cols: u16,
    pub rows: u16,
    pub alive: bool,
    /// The name of the program in the terminal's foreground now (`vim`, `bash`), while alive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreground: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Terminals {
    pub terminals: Vec<TerminalInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ProcessStarted {
    pub process_id: String,
    pub command: String,
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

/// Which output stream of a process a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ProcessOutput {
    pub process_id: String,
    pub stream: Stream,
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ProcessExit {
    pub process_id: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ProcessInfo {
    pub process_id: String,
    pub command: String,
    pub args: Vec<String>,
    pub running: bool,
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Processes {
    pub processes: Vec<ProcessInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct FileContent {
    pub path: String,
    pub content: String,
    pub encoding: Encoding,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct FileWritten {
    pub path: String,
    pub version: String,
    pub size: u64,
}

/// What a directory entry is (symlinks are not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct DirEntry {
    pub name: String,
    pub kind: EntryKind,
    pub size: u64,
    /// Milliseconds since the Unix epoch.
    pub mtime: i64,
    /// A regular file with an execute bit set.
    #[serde(default)]
    pub executable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct DirListing {
    pub path: String,
    pub entries: Vec<DirEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Created,
    Modified,
    Deleted,
    Renamed,
}

/// A change under a watched path. Paths are relative to the workspace root, without a
/// leading slash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct FileChanged {
    pub path: String,
    pub kind: ChangeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct PortEvent {
    pub port: u16,
    pub address: String,
    /// The name of the program listening.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
    /// The `run_command` process it belongs to (it or one of its descendants listens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_id: Option<String>,
    /// The terminal it belongs to, when started from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct PortInfo {
    pub port: u16,
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
    /// The `run_command` process it belongs to (it or one of its descendants listens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_id: Option<String>,
    /// The terminal it belongs to, when started from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Ports {
    pub ports: Vec<PortInfo>,
}

/// Resource use of a workspace. A limit is `null` when none applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub cpu_percent: f64,
    pub memory_bytes: u64,
    pub memory_limit_bytes: Option<u64>,
    pub pids: u64,
    pub disk_bytes: u64,
    pub disk_limit_bytes: Option<u64>,
}

/// Control messages on the raw terminal socket (docs/PROTOCOL.md section 2), both directions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RawControl {
    /// First message from the server: the binary bytes that follow start at `offset`.
    /// With a screen replay, the first `snapshot` binary bytes redraw the screen and are not
    /// counted: `offset` is where the live bytes after them start.
    Attached {
        offset: u64,
        cols: u16,
        rows: u16,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        gap: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        snapshot: Option<u64>,
    },
    /// From the client: the window size changed.
    Resize { cols: u16, rows: u16 },
    /// From the server: the terminal ended; the socket closes next.
    #[serde(rename_all = "camelCase")]
    Exit {
        exit_code: Option<i32>,
        signal: Option<i32>,
    },
    /// From the server, for a request it could not honour.
    Error { code: ErrorCode, message: String },
}

#[cfg(test)]
mod tests;
