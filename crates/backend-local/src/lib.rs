//! The local backend: each workspace is a directory (or a disk image) under the data dir,
//! and its runner is a detached `cove runner` process, sandboxed, listening on a Unix socket
//! the server binds for it.
//!
//! Owns: a workspace's storage on this machine (directory or ext4 image, made from its
//! template at provision), starting its runner through `cove sandbox-init` (or unconfined),
//! stopping it, finding it again after the server restarts, the runner's log file.
//! Must not know: HTTP, users, the wire protocol, what happens inside a workspace.
//!
//! Layout under the data dir:
//! - `workspaces/<id>/`: the workspace's files; when sandboxed with a storage limit, the mount
//!   point of `workspaces/<id>.img` (an ext4 image of the limit's size, mounted while the
//!   workspace runs), so a program that fills the disk fills only its own image;
//! - `run/<id>.sock`, `run/<id>.pid`: the runner's socket and pid. The `run` dir is 0700 and
//!   the server binds each socket itself, so no workspace can put anything in its place;
//!   the runner inherits the bound socket and listens on it;
//! - `logs/<id>.log`: the runner's log.
//!
//! Runners are started in their own session and are not killed with the server: a restarted
//! server finds them through their pid files and sockets.

use std::path::PathBuf;
use std::time::Duration;
use tokio_util::task::TaskTracker;

use cove_backend::{
    Backend, BackendError, BoxFuture, MAX_DISK_BYTES, MIN_CPU_MILLIS, MIN_DISK_BYTES,
    MIN_MEMORY_BYTES, MIN_PIDS, RunnerAddr, RunnerState, SeedFile, WorkspaceLimits,
};
use cove_protocol::launch::RunnerLimits;

/// `BackendError::Io` with a context, for `map_err`.
fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackendError {
    let context = context.into();
    move |source| BackendError::Io { context, source }
}

mod archive;
mod process;
mod settings;
mod storage;

pub use settings::{NetworkChoice, SandboxSettings, choose_network};
pub use storage::workspace_uid;

#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub data_dir: PathBuf,
    /// The program to run as `<runner_exe> runner ...` (normally the cove binary itself).
    pub runner_exe: PathBuf,
    /// What every runner's clients may ask for (its `disk_limit_bytes` is set per workspace).
    pub runner_limits: RunnerLimits,
    /// Storage per workspace, the default and ceiling (0: none).
    pub disk_limit_bytes: u64,
    /// `None` runs runners unconfined (development only).
    pub sandbox: Option<SandboxSettings>,
    /// How long a runner may take to accept connections.
    pub start_timeout: Duration,
    /// How long a runner may take to stop before it is killed.
    pub stop_timeout: Duration,
}

#[derive(Debug)]
pub struct LocalBackend {
    config: LocalConfig,
    /// Waits for runner children so they never linger as zombies.
    reapers: TaskTracker,
}

/// Longest path a Unix socket address can hold (`sun_path` is 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;

impl LocalBackend {
    /// Prepares the data dir's layout.
    pub fn new(config: LocalConfig) -> Result<LocalBackend, BackendError> {
        use std::os::unix::fs::PermissionsExt;
        for dir in ["workspaces", "run", "logs"] {
            let path = config.data_dir.join(dir);
            std::fs::create_dir_all(&path)
                .map_err(io(format!("cannot create {}", path.display())))?;
        }
        let run = config.data_dir.join("run");
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700))
            .map_err(io(format!("cannot restrict {}", run.display())))?;
        let probe = run.join(format!("{}.sock", "0".repeat(32)));
        if probe.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(BackendError::Io {
                context: format!(
                    "the data dir {} is too long for Unix socket paths ({} bytes > {MAX_SOCKET_PATH}); choose a shorter --data-dir",
                    config.data_dir.display(),
                    probe.as_os_str().len()
                ),
                source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
            });
        }
        Ok(LocalBackend {
            config,
            reapers: TaskTracker::new(),
        })
    }

    /// The directory holding a workspace's files.
    pub fn root(&self, id: &str) -> PathBuf {
        self.config.data_dir.join("workspaces").join(id)
    }

    /// The disk image holding a workspace's files (when it has one).
    fn image(&self, id: &str) -> PathBuf {
        self.config
            .data_dir
            .join("workspaces")
            .join(format!("{id}.img"))
    }

    /// The runner's socket: in `run/`, which only the server's user may enter.
    fn socket(&self, id: &str) -> PathBuf {
        self.config.data_dir.join("run").join(format!("{id}.sock"))
    }

    fn pid_file(&self, id: &str) -> PathBuf {
        self.config.data_dir.join("run").join(format!("{id}.pid"))
    }

    fn log_file(&self, id: &str) -> PathBuf {
        self.config.data_dir.join("logs").join(format!("{id}.log"))
    }

    /// The storage limit of a workspace: its own (held to the server's, which may have been
    /// lowered since), else the server's (0: none). An image never shrinks, so a lowered
    /// limit binds API writes only.
    fn disk_limit(&self, limits: &WorkspaceLimits) -> u64 {
        let server = self.config.disk_limit_bytes;
        match limits.disk_bytes {
            Some(own) if server > 0 => own.min(server),
            Some(own) => own,
            None => server,
        }
    }
}

impl Backend for LocalBackend {
    fn check_limits(&self, limits: &WorkspaceLimits) -> Result<(), BackendError> {
        const MIB: u64 = 1024 * 1024;
        let sandbox = self.config.sandbox.as_ref();
        let confined = |what: &str| {
            BackendError::BadLimits(format!(
                "this server runs workspaces without a sandbox, so it cannot limit {what}"
            ))
        };
        let range = |what: &str, value: u64, (min, max): (u64, u64), unit: u64, name: &str| {
            if value < min || value > max {
                return Err(BackendError::BadLimits(format!(
                    "{what} must be between {} and {} {name} on this server",
                    min / unit,
                    max / unit
                )));
            }
            Ok(())
        };
        if let Some(memory) = limits.memory_bytes {
            let max = sandbox
                .ok_or_else(|| confined("memory"))?
                .limits
                .memory_bytes;
            range("memoryMib", memory, (MIN_MEMORY_BYTES, max), MIB, "MiB")?;
        }
        if let Some(cpu) = limits.cpu_millis {
            let max = sandbox.ok_or_else(|| confined("CPU"))?.limits.cpu_millis;
            if !(MIN_CPU_MILLIS..=max).contains(&cpu) {
                return Err(BackendError::BadLimits(format!(
                    "cpu must be between {} and {} cores on this server",
                    MIN_CPU_MILLIS as f64 / 1000.0,
                    max as f64 / 1000.0
                )));
            }
        }
        if let Some(pids) = limits.pids {
            let max = sandbox.ok_or_else(|| confined("processes"))?.limits.pids;
            range("pids", pids, (MIN_PIDS, max), 1, "processes")?;
        }
        if let Some(disk) = limits.disk_bytes {
            let max = match self.config.disk_limit_bytes {
                0 => MAX_DISK_BYTES,
                max => max,
            };
            range("diskMib", disk, (MIN_DISK_BYTES, max), MIB, "MiB")?;
        }
        Ok(())
    }

    fn provision<'a>(
        &'a self,
        id: &'a str,
        files: &'a [SeedFile],
        limits: &'a WorkspaceLimits,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.provision_storage(id, files, limits))
    }

    fn start<'a>(
        &'a self,
        id: &'a str,
        limits: &'a WorkspaceLimits,
    ) -> BoxFuture<'a, Result<RunnerAddr, BackendError>> {
        Box::pin(self.start_runner(id, limits))
    }

    fn stop<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.stop_runner(id))
    }

    fn status<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<RunnerState, BackendError>> {
        Box::pin(async move {
            Ok(match self.live_pid(id) {
                Some(pid) if self.socket(id).exists() => RunnerState::Running {
                    addr: self.addr(id, pid),
                    pid: Some(pid),
                },
                _ => RunnerState::Stopped,
            })
        })
    }

    fn list_running(&self) -> BoxFuture<'_, Result<Vec<String>, BackendError>> {
        Box::pin(async move {
            let run = self.config.data_dir.join("run");
            let mut ids = Vec::new();
            let entries =
                std::fs::read_dir(&run).map_err(io(format!("cannot list {}", run.display())))?;
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(id) = name.strip_suffix(".pid")
                    && self.live_pid(id).is_some()
                {
                    ids.push(id.to_string());
                }
            }
            Ok(ids)
        })
    }

    fn export<'a>(
        &'a self,
        id: &'a str,
        sink: cove_backend::ArchiveSink,
    ) -> BoxFuture<'a, Result<u64, BackendError>> {
        Box::pin(self.export_storage(id, sink))
    }

    fn import<'a>(
        &'a self,
        id: &'a str,
        source: cove_backend::ArchiveSource,
        verify: cove_backend::ArchiveCheck,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.import_storage(id, source, verify))
    }

    fn evict<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.evict_storage(id))
    }

    fn destroy<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.stop_runner(id).await?;
            let root = self.root(id);
            if root.exists() {
                tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&root))
                    .await
                    .map_err(|_| BackendError::Interrupted("deleting the workspace's files"))?
                    .map_err(io("cannot delete the workspace's files"))?;
            }
            let _ = std::fs::remove_file(self.image(id));
            // A sandbox that was killed could not remove its cgroups.
            let name = id.to_string();
            let _ = tokio::task::spawn_blocking(move || cove_sandbox::remove_cgroups(&name)).await;
            let _ = std::fs::remove_file(self.log_file(id));
            let mut rotated = self.log_file(id).into_os_string();
            rotated.push(".1");
            let _ = std::fs::remove_file(rotated);
            // Left by runners from before sockets moved out of the workspace's reach.
            let _ = std::fs::remove_dir_all(self.config.data_dir.join("run").join(id));
            let _ =
                std::fs::remove_dir(self.config.data_dir.join("run").join(format!("{id}.root")));
            Ok(())
        })
    }
}

/// A workspace's own limit held to the server's (the flag may have been lowered since the
/// workspace asked), or the server's when it asked for none.
fn held(own: Option<u64>, ceiling: u64) -> u64 {
    own.map_or(ceiling, |own| own.min(ceiling))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cove_protocol::launch::{NetworkSpec, SandboxLimits};
    use std::path::Path;

    const MIB: u64 = 1024 * 1024;

    fn backend(dir: &Path, sandboxed: bool, disk_mib: u64) -> LocalBackend {
        LocalBackend::new(LocalConfig {
            data_dir: dir.to_path_buf(),
            runner_exe: PathBuf::from("/bin/false"),
            runner_limits: RunnerLimits::DEFAULT,
            disk_limit_bytes: disk_mib * MIB,
            sandbox: sandboxed.then_some(SandboxSettings {
                limits: SandboxLimits::DEFAULT,
                tmp_bytes: 64 * MIB,
                disk_images: false,
                network: NetworkSpec::Loopback,
            }),
            start_timeout: Duration::from_secs(1),
            stop_timeout: Duration::from_secs(1),
        })
        .unwrap()
    }

    #[test]
    fn limits_are_checked_against_the_servers_and_held_to_them() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(dir.path(), true, 1024);
        let ask = |memory, cpu, pids, disk| WorkspaceLimits {
            memory_bytes: memory,
            cpu_millis: cpu,
            pids,
            disk_bytes: disk,
        };
        assert!(
            b.check_limits(&ask(Some(64 * MIB), Some(250), Some(32), Some(64 * MIB)))
                .is_ok()
        );
        for bad in [
            ask(Some(1024 * MIB), None, None, None),
            ask(Some(MIB), None, None, None),
            ask(None, Some(501), None, None),
            ask(None, Some(1), None, None),
            ask(None, None, Some(513), None),
            ask(None, None, None, Some(2048 * MIB)),
        ] {
            assert!(
                matches!(b.check_limits(&bad), Err(BackendError::BadLimits(_))),
                "{bad:?}"
            );
        }
        // A workspace that asked for more than today's flag gets today's flag.
        assert_eq!(held(Some(1024 * MIB), 512 * MIB), 512 * MIB);
        assert_eq!(held(Some(64 * MIB), 512 * MIB), 64 * MIB);
        assert_eq!(held(None, 512), 512);
        assert_eq!(
            b.disk_limit(&ask(None, None, None, Some(4096 * MIB))),
            1024 * MIB
        );
        assert_eq!(
            b.disk_limit(&ask(None, None, None, Some(64 * MIB))),
            64 * MIB
        );
        assert_eq!(b.disk_limit(&WorkspaceLimits::default()), 1024 * MIB);

        // No server limit: any size up to what ext4 holds; unsandboxed: no cgroup limits.
        let open = backend(dir.path(), false, 0);
        assert!(
            open.check_limits(&ask(None, None, None, Some(MAX_DISK_BYTES)))
                .is_ok()
        );
        assert!(
            open.check_limits(&ask(None, None, None, Some(MAX_DISK_BYTES + 1)))
                .is_err()
        );
        let refused = open.check_limits(&ask(Some(64 * MIB), None, None, None));
        assert!(
            matches!(refused, Err(BackendError::BadLimits(m)) if m.contains("without a sandbox"))
        );
    }
}
