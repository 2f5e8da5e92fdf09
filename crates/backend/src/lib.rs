//! Where workspaces run: the [`Backend`] trait and the types it speaks in. Implementations
//! live in their own crates (`backend-local` on this machine; Kubernetes later).
//!
//! Owns: the contract between the server and whatever runs workspaces: provisioning storage,
//! starting, stopping and finding runners, and how to reach one ([`RunnerAddr`]).
//! Must not know: any implementation (sandbox, processes, pods), users, HTTP routes, the
//! wire protocol, what happens inside a workspace.
//!
//! The server reaches a runner only through the [`RunnerAddr`] a backend hands out; that is
//! what lets a local process and a Kubernetes pod be one code path. `FakeBackend` (feature
//! `fake`) stands in for a real one in tests of the server.

#[cfg(feature = "fake")]
mod fake;

#[cfg(feature = "fake")]
pub use fake::FakeBackend;

/// Shared handle, as the server holds it.
pub type SharedBackend = std::sync::Arc<dyn Backend>;

/// Smallest limits a workspace may ask for: below these a shell does not start.
pub const MIN_MEMORY_BYTES: u64 = 16 * 1024 * 1024;
pub const MIN_CPU_MILLIS: u64 = 10;
pub const MIN_PIDS: u64 = 16;
pub const MIN_DISK_BYTES: u64 = 16 * 1024 * 1024;
/// Largest storage limit: 16 TiB, what ext4 holds with 4 KiB blocks and 32-bit block numbers.
pub const MAX_DISK_BYTES: u64 = 16 << 40;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

/// A boxed future, so that `Backend` can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How to reach a running runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunnerAddr {
    /// A Unix socket in a directory only the server's user can write, answered by `peer`
    /// (see [`connect_unix`]).
    Unix { path: PathBuf, peer: RunnerPeer },
    /// `host:port` plus the bearer token the runner requires.
    Tcp { authority: String, token: String },
}

/// Who must be at the other end of a runner's Unix socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerPeer {
    /// The uid the runner runs as (the workspace's own, when sandboxed).
    pub uid: u32,
    /// The process the server started for it: the runner itself, or the sandbox around it
    /// (then the runner is two generations below: `sandbox-init` → PID 1 → runner).
    pub started_by: u32,
}

/// Generations between the process the server starts and the runner, at most.
const RUNNER_DEPTH: usize = 2;

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

impl RunnerPeer {
    /// Checks the credentials the kernel reports for the other end of `stream`.
    fn check(&self, stream: &tokio::net::UnixStream) -> Result<(), String> {
        let cred = rustix::net::sockopt::socket_peercred(stream)
            .map_err(|e| format!("cannot read the peer's credentials: {e}"))?;
        let (uid, pid) = (cred.uid.as_raw(), cred.pid.as_raw_nonzero().get() as u32);
        if uid != self.uid {
            return Err(format!(
                "the socket is answered by uid {uid}, not the runner's uid {}",
                self.uid
            ));
        }
        let mut at = pid;
        for _ in 0..=RUNNER_DEPTH {
            if at == self.started_by {
                return Ok(());
            }
            match parent_of(at) {
                Some(parent) => at = parent,
                None => break,
            }
        }
        Err(format!(
            "the socket is answered by process {pid}, which is not the runner started as {}",
            self.started_by
        ))
    }
}

/// Connects to a runner's Unix socket. Refuses (with `PermissionDenied` and the reason) a
/// path that is not a socket owned by this process's user and closed to everyone else (a
/// link, say), and a socket answered by anyone but the runner: the server runs as root and
/// must never be talked into connecting to something a workspace planted.
pub async fn connect_unix(
    path: &std::path::Path,
    peer: &RunnerPeer,
) -> std::io::Result<tokio::net::UnixStream> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let refuse = |why: String| {
        std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("refusing the runner socket {}: {why}", path.display()),
        )
    };
    let meta = std::fs::symlink_metadata(path)?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if !meta.file_type().is_socket() {
        return Err(refuse(
            "it is not a socket (a link or a file was put in its place)".into(),
        ));
    }
    if meta.uid() != me || meta.mode() & 0o077 != 0 {
        return Err(refuse(format!(
            "it belongs to uid {} with mode {:o}, not to this server alone",
            meta.uid(),
            meta.mode() & 0o777
        )));
    }
    let stream = tokio::net::UnixStream::connect(path).await?;
    peer.check(&stream).map_err(refuse)?;
    Ok(stream)
}

/// What a backend knows about one workspace's runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunnerState {
    Running { addr: RunnerAddr, pid: Option<u32> },
    Stopped,
}

/// A file a new workspace starts with (from its template).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedFile {
    /// Relative path, `/`-separated, without `..`.
    pub path: String,
    pub contents: Vec<u8>,
    pub executable: bool,
}

/// Limits one workspace asked for when it was created; `None` takes the server's default.
/// The server's own limits are ceilings: a workspace may ask for less, never more.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkspaceLimits {
    pub memory_bytes: Option<u64>,
    /// Thousandths of a core.
    pub cpu_millis: Option<u64>,
    pub pids: Option<u64>,
    pub disk_bytes: Option<u64>,
}

/// Why a backend operation failed. Messages are for operators and logs.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("workspace {0} has no storage (was it deleted?)")]
    NoStorage(String),
    #[error("workspace {0} already has storage")]
    AlreadyExists(String),
    #[error("the runner of workspace {id} did not start: {reason}")]
    StartFailed { id: String, reason: String },
    #[error("the runner of workspace {id} did not stop: {reason}")]
    StopFailed { id: String, reason: String },
    /// The workspace's storage (its disk image, its mount) could not be made or used.
    #[error("{0}")]
    Storage(String),
    /// Work handed to a blocking thread did not finish (the thread panicked).
    #[error("{0} did not finish")]
    Interrupted(&'static str),
    /// The workspace is running and the operation needs it stopped.
    #[error("workspace {0} is running; stop it first")]
    Running(String),
    /// An archive that could not be read, or that failed its check.
    #[error("the archive of workspace {id} is unusable: {reason}")]
    BadArchive { id: String, reason: String },
    #[error("invalid template file path {0:?}")]
    BadSeedPath(String),
    /// A workspace asked for limits this backend cannot give; the message is for the client.
    #[error("{0}")]
    BadLimits(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// Starts, stops and finds the runners of workspaces. Every method is idempotent: starting a
/// running workspace returns its address, stopping a stopped one succeeds.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// Refuses limits outside what this backend can give ([`BackendError::BadLimits`]).
    fn check_limits(&self, limits: &WorkspaceLimits) -> Result<(), BackendError>;

    /// Creates the workspace's storage with the given files (sized by `limits`).
    fn provision<'a>(
        &'a self,
        id: &'a str,
        files: &'a [SeedFile],
        limits: &'a WorkspaceLimits,
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Starts the runner (if it is not running) under `limits` and returns once it accepts
    /// connections.
    fn start<'a>(
        &'a self,
        id: &'a str,
        limits: &'a WorkspaceLimits,
    ) -> BoxFuture<'a, Result<RunnerAddr, BackendError>>;

    /// Stops the runner, giving its programs a grace period.
    fn stop<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Whether the runner is running right now.
    fn status<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<RunnerState, BackendError>>;

    /// Ids of every workspace whose runner is running (used after a server restart).
    fn list_running(&self) -> BoxFuture<'_, Result<Vec<String>, BackendError>>;

    /// Stops the runner and deletes the storage for good.
    fn destroy<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Writes a stopped workspace's storage into `sink` as one archive (the backend's own
    /// format, read only by its [`Backend::import`]), from a blocking thread; the size of the
    /// files it holds. A running workspace is refused.
    fn export<'a>(
        &'a self,
        id: &'a str,
        sink: ArchiveSink,
    ) -> BoxFuture<'a, Result<u64, BackendError>>;

    /// Makes the workspace's storage from an archive of [`Backend::export`]'s. It is unpacked
    /// beside where the storage goes, `verify` is asked after its last byte is read, and only
    /// then does it take the storage's place: a bad archive replaces nothing. A workspace
    /// that has storage is refused.
    fn import<'a>(
        &'a self,
        id: &'a str,
        source: ArchiveSource,
        verify: ArchiveCheck,
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Removes a stopped workspace's storage (after it was safely archived elsewhere).
    fn evict<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), BackendError>>;
}

/// Where [`Backend::export`] writes (a blocking writer).
pub type ArchiveSink = Box<dyn std::io::Write + Send>;
/// What [`Backend::import`] reads (a blocking reader).
pub type ArchiveSource = Box<dyn std::io::Read + Send>;
/// Asked by [`Backend::import`] after the archive's last byte: `Err(why)` refuses it.
pub type ArchiveCheck = Box<dyn FnOnce() -> Result<(), String> + Send>;
