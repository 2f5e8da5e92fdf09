//! Attach modes (docs/PROTOCOL.md section 8): a socket opened with `mode=view` watches and
//! reads; [`Request::changes_workspace`] is the one list of what it may not ask.

use serde::{Deserialize, Deserializer, Serialize};

use crate::Request;

/// How a socket attaches to a workspace: `edit` (the default) may do everything, `view` may
/// watch terminals and processes and read files, and is refused every input, resize, write,
/// run, stop or delete with `forbidden`. The runner enforces it, where input reaches a
/// terminal; the server only says which mode a socket gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum AttachMode {
    #[default]
    Edit,
    View,
}

impl AttachMode {
    /// The name in a query string.
    pub fn as_str(self) -> &'static str {
        match self {
            AttachMode::Edit => "edit",
            AttachMode::View => "view",
        }
    }

    pub fn parse(name: &str) -> Option<AttachMode> {
        [AttachMode::Edit, AttachMode::View]
            .into_iter()
            .find(|m| m.as_str() == name)
    }

    /// True for the default, so that `mode` can be left out of a query.
    pub fn is_edit(&self) -> bool {
        *self == AttachMode::Edit
    }

    /// Whether a socket in this mode may make `request`.
    pub fn allows(self, request: &Request) -> bool {
        self == AttachMode::Edit || !request.changes_workspace()
    }
}

/// By hand rather than derived, so that a bad value is refused with a message that names the
/// parameter and what it may be (a query string's errors reach people as they are).
impl<'de> Deserialize<'de> for AttachMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<AttachMode, D::Error> {
        let name = String::deserialize(deserializer)?;
        AttachMode::parse(&name).ok_or_else(|| {
            serde::de::Error::custom(format!("mode must be edit or view, not {name:?}"))
        })
    }
}

/// What a terminal socket attached without an `offset` gets first (docs/PROTOCOL.md section 8):
/// `screen` (the default), a snapshot that redraws the terminal as it is now, then live output;
/// `raw`, the bytes the terminal still keeps (its scrollback), then live output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Replay {
    #[default]
    Screen,
    Raw,
}

impl Replay {
    /// The name in a query string.
    pub fn as_str(self) -> &'static str {
        match self {
            Replay::Screen => "screen",
            Replay::Raw => "raw",
        }
    }
}

impl<'de> Deserialize<'de> for Replay {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Replay, D::Error> {
        let name = String::deserialize(deserializer)?;
        [Replay::Screen, Replay::Raw]
            .into_iter()
            .find(|r| r.as_str() == name)
            .ok_or_else(|| {
                serde::de::Error::custom(format!("replay must be screen or raw, not {name:?}"))
            })
    }
}

impl Request {
    /// The request's `type` on the wire (`write_file`).
    pub fn kind(&self) -> &'static str {
        match self {
            Request::CreateTerminal(_) => "create_terminal",
            Request::AttachTerminal(_) => "attach_terminal",
            Request::TerminalInput(_) => "terminal_input",
            Request::ResizeTerminal(_) => "resize_terminal",
            Request::CloseTerminal(_) => "close_terminal",
            Request::ListTerminals(_) => "list_terminals",
            Request::RunCommand(_) => "run_command",
            Request::StopProcess(_) => "stop_process",
            Request::ListProcesses(_) => "list_processes",
            Request::SubscribeProcess(_) => "subscribe_process",
            Request::ReadFile(_) => "read_file",
            Request::WriteFile(_) => "write_file",
            Request::ListDir(_) => "list_dir",
            Request::MakeDir(_) => "make_dir",
            Request::DeletePath(_) => "delete_path",
            Request::RenamePath(_) => "rename_path",
            Request::Watch(_) => "watch",
            Request::Unwatch(_) => "unwatch",
            Request::ListPorts(_) => "list_ports",
            Request::Stats(_) => "stats",
            Request::Ping(_) => "ping",
        }
    }

    /// Whether the request changes the workspace: types into or resizes a terminal, starts or
    /// ends a program, or changes a file. A `view` socket is refused exactly these. Listing,
    /// reading, attaching, subscribing and watching change nothing (a watch or an attach is
    /// the socket's own state, gone with it). No wildcard: a new request is classified here
    /// on purpose, or the crate does not compile.
    pub fn changes_workspace(&self) -> bool {
        match self {
            Request::CreateTerminal(_)
            | Request::TerminalInput(_)
            | Request::ResizeTerminal(_)
            | Request::CloseTerminal(_)
            | Request::RunCommand(_)
            | Request::StopProcess(_)
            | Request::WriteFile(_)
            | Request::MakeDir(_)
            | Request::DeletePath(_)
            | Request::RenamePath(_) => true,
            Request::AttachTerminal(_)
            | Request::ListTerminals(_)
            | Request::ListProcesses(_)
            | Request::SubscribeProcess(_)
            | Request::ReadFile(_)
            | Request::ListDir(_)
            | Request::Watch(_)
            | Request::Unwatch(_)
            | Request::ListPorts(_)
            | Request::Stats(_)
            | Request::Ping(_) => false,
        }
    }
}
