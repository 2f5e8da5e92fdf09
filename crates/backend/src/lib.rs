//! Where workspaces run: the [`Backend`] trait and its local implementation.
//!
//! Owns: a workspace's storage (a directory locally, a volume on Kubernetes), starting its
//! runner, stopping it, finding it again after the server restarts.
//! Must not know: users, HTTP routes, the wire protocol, what happens inside a workspace.
//!
//! The server reaches a runner only through the [`RunnerAddr`] a backend hands out; that is
//! what lets a local process and a Kubernetes pod be one code path.

mod local;

pub use local::{
    LocalBackend, LocalConfig, RunnerLimits, SandboxSettings, SharedBackend, workspace_uid,
};

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

/// A boxed future, so that `Backend` can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How to reach a running runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunnerAddr {
    /// A Unix socket only the server's user can open.
    Unix(PathBuf),
    /// `host:port` plus the bearer token the runner requires.
    Tcp { authority: String, token: String },
}

/// What a backend knows about one workspace's runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunnerState {
    Running { addr: RunnerAddr, pid: Option<u32> },
    Stopped,
}

/// A file a new workspace starts with (from its template).
#[derive(Debug, Clone)]
pub struct SeedFile {
    /// Relative path, `/`-separated, without `..`.
    pub path: String,
    pub contents: Vec<u8>,
    pub executable: bool,
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
    #[error("invalid template file path {0:?}")]
    BadSeedPath(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl BackendError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackendError {
        let context = context.into();
        move |source| BackendError::Io { context, source }
    }
}

/// Starts, stops and finds the runners of workspaces. Every method is idempotent: starting a
/// running workspace returns its address, stopping a stopped one succeeds.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// A short name for logs and `--help`: `local`, `kubernetes`.
    fn name(&self) -> &'static str;

    /// Creates the workspace's storage with the given files.
    fn provision<'a>(
        &'a self,
        id: &'a str,
        files: &'a [SeedFile],
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Starts the runner (if it is not running) and returns once it accepts connections.
    fn start<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<RunnerAddr, BackendError>>;

    /// Stops the runner, giving its programs a grace period.
    fn stop<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Whether the runner is running right now.
    fn status<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<RunnerState, BackendError>>;

    /// Ids of every workspace whose runner is running (used after a server restart).
    fn list_running(&self) -> BoxFuture<'_, Result<Vec<String>, BackendError>>;

    /// Stops the runner and deletes the storage for good.
    fn destroy<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), BackendError>>;
}
