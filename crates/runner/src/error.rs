//! What can go wrong in the runner, by meaning, and the one translation of it into the wire's
//! error code and message ([`Error::to_reply`]).
//!
//! Domain code (terminals, processes, files, the registry) returns [`Error`] and knows nothing
//! of codes or of the protocol's field names; only the sockets and HTTP routes (`control.rs`,
//! `raw.rs`, `http.rs`) call `to_reply`. Messages name what the client named (its ids, its
//! paths relative to the workspace), never a host path.

use cove_protocol::{ErrorCode, ErrorReply};

use crate::registry::Kind;

const MIB: u64 = 1024 * 1024;

/// A request the runner could not carry out, or a program that ended badly.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The request cannot be carried out as asked; the text says why.
    #[error("{0}")]
    BadRequest(String),
    /// A client-chosen id that ids may not be.
    #[error("{kind} ids are 1-128 characters of letters, digits and _-.:@")]
    BadId { kind: Kind },
    /// No terminal or process has this id.
    #[error("no {kind} {id:?}")]
    NotFound { kind: Kind, id: String },
    /// The id belongs to a terminal or process that still runs.
    #[error("{kind} {id:?} is still running")]
    StillRunning { kind: Kind, id: String },
    /// The terminal has exited, so it takes no input.
    #[error("{kind} {id} has exited")]
    Exited { kind: Kind, id: String },
    /// Input could not be written to the terminal (it is going away).
    #[error("{kind} {id}: {source}")]
    Input {
        kind: Kind,
        id: String,
        source: std::io::Error,
    },
    /// As many terminals or processes run as the workspace may run.
    #[error("this workspace already runs {running} {} (the limit)", kind.plural())]
    TooMany { kind: Kind, running: usize },
    /// A terminal's PTY could not be opened or its program not started.
    #[error("{0}")]
    Pty(#[from] cove_pty::PtyError),
    /// A process could not be started.
    #[error("cannot start {command:?}: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    /// A program was killed because the workspace ran out of memory.
    #[error(
        "{kind} {id} was killed: the workspace ran out of memory{}",
        limit.map(|l| format!(" ({} MiB)", l / MIB)).unwrap_or_default()
    )]
    OutOfMemory {
        kind: Kind,
        id: String,
        limit: Option<u64>,
    },
    /// A path the file operation cannot use as asked.
    #[error("{path}: {problem}")]
    Path { path: String, problem: PathProblem },
    /// The file changed (or was deleted) since the version a write was based on.
    #[error("{path} {} since version {base}", if *deleted { "was deleted" } else { "changed" })]
    Stale {
        path: String,
        base: String,
        deleted: bool,
    },
    /// A rename onto a name that exists, without `overwrite`.
    #[error("{path} already exists (pass overwrite to replace it)")]
    Taken { path: String },
    /// A file larger than files are read or written whole.
    #[error(
        "{path} is {}; files up to {} are read and written whole (download it instead)",
        human_size(*size),
        human_size(*limit)
    )]
    TooLarge { path: String, size: u64, limit: u64 },
    /// A write that would take the workspace past its storage limit.
    #[error(
        "{path}: the workspace's storage limit of {} MiB is reached ({} MiB used)",
        limit / MIB,
        used / MIB
    )]
    StorageFull { path: String, limit: u64, used: u64 },
    /// A socket attached in view mode asked for something that changes the workspace
    /// (docs/PROTOCOL.md section 8): `action` is the request type, or what a raw socket sent.
    #[error("this connection is read-only (mode=view): {action} is not allowed")]
    ReadOnly { action: &'static str },
    /// No language server for this language is on the PATH or named by the workspace.
    #[error(
        "no language server for {language:?}: none is on the workspace's PATH or named in .cove/languages.json"
    )]
    NoLanguageServer { language: String },
    /// As many language servers run as a workspace may run.
    #[error("this workspace already runs {running} language servers (the limit)")]
    TooManyLanguageServers { running: usize },
    /// The file watcher cannot start; the text says why.
    #[error("{0}")]
    Watcher(String),
    /// Something failed that the client can do nothing about; the text says only what.
    #[error("{0}")]
    Internal(&'static str),
}

/// Why a path cannot be used, as a file operation found out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathProblem {
    Missing,
    /// `..` or a symlink that leads out of the workspace.
    Outside,
    Denied,
    /// A component before the last is not a directory.
    ThroughFile,
    IsDirectory,
    NotRegularFile,
    TooLong,
    Invalid,
    /// The operation changes an entry, and the root is none.
    Root,
    EndsInDotDot,
    /// `..` in a path whose directories are created as needed.
    DotDot,
    TooDeep,
    Exists,
    NotEmpty,
    /// A directory deleted without `recursive` is not empty.
    NotEmptyNeedsRecursive,
    Busy,
    NoSpace,
    /// Anything else the kernel said; logged where it happened.
    Failed,
}

impl std::fmt::Display for PathProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PathProblem::Missing => "no such file or directory",
            PathProblem::Outside => "the path leads outside the workspace",
            PathProblem::Denied => "permission denied",
            PathProblem::ThroughFile => "a component of the path is not a directory",
            PathProblem::IsDirectory => "the path is a directory",
            PathProblem::NotRegularFile => "not a regular file",
            PathProblem::TooLong => "the path is too long",
            PathProblem::Invalid => "invalid path",
            PathProblem::Root => "the workspace root itself cannot be changed this way",
            PathProblem::EndsInDotDot => "the path must end in a name, not ..",
            PathProblem::DotDot => ".. is not allowed here",
            PathProblem::TooDeep => "the tree is too deep",
            PathProblem::Exists => "the path already exists",
            PathProblem::NotEmpty => "the directory is not empty",
            PathProblem::NotEmptyNeedsRecursive => {
                "the directory is not empty (pass recursive to delete it all)"
            }
            PathProblem::Busy => "the path is in use",
            PathProblem::NoSpace => "no space left in the workspace",
            PathProblem::Failed => "file operation failed",
        })
    }
}

/// `512 bytes`, `12.5 KiB`, `8 MiB`.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64;
    let mut unit = "bytes";
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    if value.fract() < 0.05 {
        format!("{value:.0} {unit}")
    } else {
        format!("{value:.1} {unit}")
    }
}

// The edge: from here on, the wire's words.

impl Error {
    /// The error as the control socket and the REST API send it: a stable code for clients
    /// to branch on, and the message for people.
    pub(crate) fn to_reply(&self) -> ErrorReply {
        let message = match self {
            // The client sent the id in a field of this name: the message names that field.
            Error::BadId { kind } => format!(
                "{} must be 1-128 characters of letters, digits and _-.:@",
                id_field(*kind)
            ),
            other => other.to_string(),
        };
        ErrorReply::new(self.code(), message)
    }

    fn code(&self) -> ErrorCode {
        match self {
            Error::BadRequest(_) | Error::BadId { .. } | Error::Pty(_) | Error::Spawn { .. } => {
                ErrorCode::BadRequest
            }
            Error::NotFound { .. } | Error::NoLanguageServer { .. } => ErrorCode::NotFound,
            Error::StillRunning { .. }
            | Error::Exited { .. }
            | Error::Input { .. }
            | Error::Stale { .. }
            | Error::Taken { .. } => ErrorCode::Conflict,
            Error::TooMany { .. }
            | Error::TooManyLanguageServers { .. }
            | Error::OutOfMemory { .. }
            | Error::StorageFull { .. } => ErrorCode::LimitExceeded,
            Error::TooLarge { .. } => ErrorCode::TooLarge,
            Error::Path { problem, .. } => match problem {
                PathProblem::Missing => ErrorCode::NotFound,
                PathProblem::Outside | PathProblem::Denied => ErrorCode::Forbidden,
                PathProblem::ThroughFile
                | PathProblem::IsDirectory
                | PathProblem::NotRegularFile
                | PathProblem::TooLong
                | PathProblem::Invalid
                | PathProblem::Root
                | PathProblem::EndsInDotDot
                | PathProblem::DotDot
                | PathProblem::TooDeep => ErrorCode::BadRequest,
                PathProblem::Exists
                | PathProblem::NotEmpty
                | PathProblem::NotEmptyNeedsRecursive
                | PathProblem::Busy => ErrorCode::Conflict,
                PathProblem::NoSpace => ErrorCode::LimitExceeded,
                PathProblem::Failed => ErrorCode::Internal,
            },
            Error::ReadOnly { .. } => ErrorCode::Forbidden,
            Error::Watcher(_) => ErrorCode::Unavailable,
            Error::Internal(_) => ErrorCode::Internal,
        }
    }
}

/// The request field that carries an id of this kind.
fn id_field(kind: Kind) -> &'static str {
    match kind {
        Kind::Terminal => "terminalId",
        Kind::Process => "processId",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_what_the_client_sent() {
        let reply = Error::BadId {
            kind: Kind::Terminal,
        }
        .to_reply();
        assert_eq!(reply.code, ErrorCode::BadRequest);
        assert_eq!(
            reply.message,
            "terminalId must be 1-128 characters of letters, digits and _-.:@"
        );
        let reply = Error::NotFound {
            kind: Kind::Process,
            id: "p".into(),
        }
        .to_reply();
        assert_eq!(
            (reply.code, reply.message.as_str()),
            (ErrorCode::NotFound, "no process \"p\"")
        );
        let reply = Error::Path {
            path: "a/b".into(),
            problem: PathProblem::Outside,
        }
        .to_reply();
        assert_eq!(
            (reply.code, reply.message.as_str()),
            (
                ErrorCode::Forbidden,
                "a/b: the path leads outside the workspace"
            )
        );
    }

    #[test]
    fn read_only_is_forbidden_and_says_why() {
        let reply = Error::ReadOnly {
            action: "write_file",
        }
        .to_reply();
        assert_eq!(
            (reply.code, reply.message.as_str()),
            (
                ErrorCode::Forbidden,
                "this connection is read-only (mode=view): write_file is not allowed"
            )
        );
    }

    #[test]
    fn sizes_read_in_people_s_units() {
        assert_eq!(human_size(512), "512 bytes");
        assert_eq!(human_size(8 * MIB), "8 MiB");
        assert_eq!(human_size(12 * 1024 + 512), "12.5 KiB");
    }
}
