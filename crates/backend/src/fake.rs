//! An in-memory backend for tests of the server: storage is a set of ids, a started
//! workspace is marked running and handed an address nobody listens on, and every call is
//! recorded. Failures of start and stop can be turned on, and a runner can "die" or be
//! "found again", to test how the server copes.

use std::collections::{BTreeSet, HashSet};
use std::io::{Read as _, Write as _};
use std::sync::Mutex;

use crate::{
    ArchiveCheck, ArchiveSink, ArchiveSource, Backend, BackendError, BoxFuture, RunnerAddr,
    RunnerState, SeedFile, WorkspaceLimits,
};

#[derive(Debug, Default)]
struct State {
    storage: HashSet<String>,
    /// Exports write this many bytes, then fail when `fail_exports_after` says so.
    fail_exports_after: Option<usize>,
    running: BTreeSet<String>,
    fail_starts: bool,
    fail_stops: bool,
    calls: Vec<String>,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct FakeBackend {
    state: Mutex<State>,
}

impl FakeBackend {
    pub fn new() -> FakeBackend {
        FakeBackend::default()
    }

    /// From now on, starts fail (or succeed again).
    pub fn fail_starts(&self, fail: bool) {
        self.state.lock().unwrap().fail_starts = fail;
    }

    /// From now on, stops fail (or succeed again).
    pub fn fail_stops(&self, fail: bool) {
        self.state.lock().unwrap().fail_stops = fail;
    }

    /// Marks a runner running or gone, as a crash or a runner that outlived a server would.
    pub fn set_running(&self, id: &str, running: bool) {
        let mut state = self.state.lock().unwrap();
        if running {
            state.running.insert(id.to_string());
        } else {
            state.running.remove(id);
        }
    }

    /// From now on, exports fail after writing `bytes` (or work again with `None`).
    pub fn fail_exports_after(&self, bytes: Option<usize>) {
        self.state.lock().unwrap().fail_exports_after = bytes;
    }

    /// Whether the workspace has storage.
    pub fn has_storage(&self, id: &str) -> bool {
        self.state.lock().unwrap().storage.contains(id)
    }

    /// Every call so far, as `"start <id>"`, `"stop <id>"`...
    pub fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }

    fn record(&self, call: &str, id: &str) -> std::sync::MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap();
        state.calls.push(format!("{call} {id}"));
        state
    }

    fn addr(id: &str) -> RunnerAddr {
        RunnerAddr::Tcp {
            authority: "fake.invalid:1".into(),
            token: id.to_string(),
        }
    }
}

impl Backend for FakeBackend {
    fn check_limits(&self, _limits: &WorkspaceLimits) -> Result<(), BackendError> {
        Ok(())
    }

    fn provision<'a>(
        &'a self,
        id: &'a str,
        _files: &'a [SeedFile],
        _limits: &'a WorkspaceLimits,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let mut state = self.record("provision", id);
            if !state.storage.insert(id.to_string()) {
                return Err(BackendError::AlreadyExists(id.to_string()));
            }
            Ok(())
        })
    }

    fn start<'a>(
        &'a self,
        id: &'a str,
        _limits: &'a WorkspaceLimits,
    ) -> BoxFuture<'a, Result<RunnerAddr, BackendError>> {
        Box::pin(async move {
            let mut state = self.record("start", id);
            if !state.storage.contains(id) {
                return Err(BackendError::NoStorage(id.to_string()));
            }
            if state.fail_starts {
                return Err(BackendError::StartFailed {
                    id: id.to_string(),
                    reason: "the fake backend was told to fail".into(),
                });
            }
            state.running.insert(id.to_string());
            Ok(FakeBackend::addr(id))
        })
    }

    fn stop<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let mut state = self.record("stop", id);
            if state.fail_stops {
                return Err(BackendError::StopFailed {
                    id: id.to_string(),
                    reason: "the fake backend was told to fail".into(),
                });
            }
            state.running.remove(id);
            Ok(())
        })
    }

    fn status<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<RunnerState, BackendError>> {
        Box::pin(async move {
            let state = self.state.lock().unwrap();
            Ok(if state.running.contains(id) {
                RunnerState::Running {
                    addr: FakeBackend::addr(id),
                    pid: None,
                }
            } else {
                RunnerState::Stopped
            })
        })
    }

    fn list_running(&self) -> BoxFuture<'_, Result<Vec<String>, BackendError>> {
        Box::pin(async move {
            let state = self.state.lock().unwrap();
            Ok(state.running.iter().cloned().collect())
        })
    }

    fn destroy<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let mut state = self.record("destroy", id);
            if state.fail_stops && state.running.contains(id) {
                return Err(BackendError::StopFailed {
                    id: id.to_string(),
                    reason: "the fake backend was told to fail".into(),
                });
            }
            state.running.remove(id);
            state.storage.remove(id);
            Ok(())
        })
    }

    fn export<'a>(
        &'a self,
        id: &'a str,
        mut sink: ArchiveSink,
    ) -> BoxFuture<'a, Result<u64, BackendError>> {
        Box::pin(async move {
            let fail_after = {
                let state = self.record("export", id);
                if !state.storage.contains(id) {
                    return Err(BackendError::NoStorage(id.to_string()));
                }
                if state.running.contains(id) {
                    return Err(BackendError::Running(id.to_string()));
                }
                state.fail_exports_after
            };
            // A workspace's "files": its id, many times over (enough for several chunks),
            // written from a blocking thread as a real backend does.
            let content = id.repeat(64 * 1024).into_bytes();
            tokio::task::spawn_blocking(move || {
                let io = |e: std::io::Error| BackendError::Io {
                    context: "writing the archive".into(),
                    source: e,
                };
                match fail_after {
                    Some(bytes) => {
                        sink.write_all(&content[..bytes.min(content.len())])
                            .map_err(io)?;
                        Err(BackendError::Storage(
                            "the disk went away mid-export".into(),
                        ))
                    }
                    None => {
                        sink.write_all(&content).map_err(io)?;
                        sink.flush().map_err(io)?;
                        Ok(content.len() as u64)
                    }
                }
            })
            .await
            .map_err(|_| BackendError::Interrupted("the fake export"))?
        })
    }

    fn import<'a>(
        &'a self,
        id: &'a str,
        mut source: ArchiveSource,
        verify: ArchiveCheck,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            if self.record("import", id).storage.contains(id) {
                return Err(BackendError::AlreadyExists(id.to_string()));
            }
            let bad = |reason: String| BackendError::BadArchive {
                id: id.to_string(),
                reason,
            };
            // Read from a blocking thread, as a real backend does.
            let read = tokio::task::spawn_blocking(move || {
                let mut content = Vec::new();
                source
                    .read_to_end(&mut content)
                    .map_err(|e| e.to_string())?;
                verify()?;
                Ok::<_, String>(content)
            })
            .await
            .map_err(|_| BackendError::Interrupted("the fake import"))?;
            let content = read.map_err(bad)?;
            if content != id.repeat(64 * 1024).into_bytes() {
                return Err(bad("not this workspace's files".into()));
            }
            self.state.lock().unwrap().storage.insert(id.to_string());
            Ok(())
        })
    }

    fn evict<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let mut state = self.record("evict", id);
            if state.running.contains(id) {
                return Err(BackendError::Running(id.to_string()));
            }
            state.storage.remove(id);
            Ok(())
        })
    }
}
