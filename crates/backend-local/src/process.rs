//! A workspace's runner as a process on this machine: its socket (bound here, inherited by
//! the runner), starting it through `cove sandbox-init` or unconfined, waiting until it
//! accepts, recognising it again by pid, and stopping it.

use std::path::Path;
use std::time::{Duration, Instant};

use cove_backend::{BackendError, RunnerAddr, RunnerPeer, WorkspaceLimits};
use cove_protocol::launch::{RunnerLimits, RunnerSpec, SandboxLimits, SandboxSpec};

use crate::storage::{own, workspace_uid};
use crate::{LocalBackend, held, io};

impl LocalBackend {
    /// Who answers a workspace's socket when its runner is the process `started_by`.
    fn peer(&self, id: &str, started_by: u32) -> RunnerPeer {
        let uid = match self.config.sandbox {
            Some(_) => workspace_uid(id),
            // SAFETY: geteuid has no preconditions.
            None => unsafe { libc::geteuid() },
        };
        RunnerPeer { uid, started_by }
    }

    pub(crate) fn addr(&self, id: &str, started_by: u32) -> RunnerAddr {
        RunnerAddr::Unix {
            path: self.socket(id),
            peer: self.peer(id, started_by),
        }
    }

    /// Binds the runner's socket without listening: the runner inherits it and listens, so
    /// the kernel reports the runner as the socket's owner (`SO_PEERCRED`).
    fn bind_socket(&self, id: &str) -> Result<std::os::fd::OwnedFd, BackendError> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.socket(id);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("cannot remove an old runner socket")(e)),
        }
        let rustix_err = |context: &'static str| move |e: rustix::io::Errno| io(context)(e.into());
        let socket = rustix::net::socket_with(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::STREAM,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .map_err(rustix_err("cannot create the runner's socket"))?;
        let addr = rustix::net::SocketAddrUnix::new(&path)
            .map_err(rustix_err("bad runner socket path"))?;
        rustix::net::bind(&socket, &addr).map_err(rustix_err("cannot bind the runner's socket"))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(io("cannot restrict the runner's socket"))?;
        Ok(socket)
    }

    /// The pid of the workspace's runner if that process is alive and really is its runner
    /// (a pid file can outlive its process, and pids are reused).
    pub(crate) fn live_pid(&self, id: &str) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.pid_file(id))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        is_runner_of(pid, id).then_some(pid)
    }

    async fn wait_until_accepting(
        &self,
        id: &str,
        pid: u32,
        deadline: Instant,
    ) -> Result<(), BackendError> {
        let socket = self.socket(id);
        let peer = self.peer(id, pid);
        loop {
            match cove_backend::connect_unix(&socket, &peer).await {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    return Err(BackendError::StartFailed {
                        id: id.to_string(),
                        reason: e.to_string(),
                    });
                }
                Err(_) => {}
            }
            if !is_alive(pid) {
                return Err(BackendError::StartFailed {
                    id: id.to_string(),
                    reason: format!("it exited; its log says: {}", tail(&self.log_file(id), 600)),
                });
            }
            if Instant::now() > deadline {
                return Err(BackendError::StartFailed {
                    id: id.to_string(),
                    reason: format!("it did not listen within {:?}", self.config.start_timeout),
                });
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    pub(crate) async fn start_runner(
        &self,
        id: &str,
        workspace_limits: &WorkspaceLimits,
    ) -> Result<RunnerAddr, BackendError> {
        let root = self.root(id);
        if !root.is_dir() {
            return Err(BackendError::NoStorage(id.to_string()));
        }
        if let Some(pid) = self.live_pid(id) {
            self.wait_until_accepting(id, pid, Instant::now() + self.config.start_timeout)
                .await?;
            return Ok(self.addr(id, pid));
        }
        if self.config.sandbox.is_none() {
            // Sandboxed, `sandbox-init` mounts the image for exactly the sandbox's life.
            self.mount_storage(id).await?;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_file(id))
            .map_err(io("cannot open the runner log"))?;
        let socket = self.bind_socket(id)?;
        let socket_fd = std::os::fd::AsRawFd::as_raw_fd(&socket);
        let disk_limit = self.disk_limit(workspace_limits);
        let mut runner = RunnerSpec {
            workspace_id: id.to_string(),
            root: root.to_string_lossy().into_owned(),
            listen_fd: socket_fd,
            limits: RunnerLimits {
                disk_limit_bytes: Some(disk_limit).filter(|l| *l > 0),
                ..self.config.runner_limits
            },
            program_cgroup: None,
        };
        let mut command = std::process::Command::new(&self.config.runner_exe);
        match &self.config.sandbox {
            None => {
                command
                    .arg("runner")
                    .arg("--spec")
                    .arg(to_json(&runner))
                    .current_dir(&root);
            }
            Some(sandbox) => {
                let (uid, gid) = (workspace_uid(id), workspace_uid(id));
                own(&root, uid, gid).await?;
                let root_dir = self.config.data_dir.join("run").join(format!("{id}.root"));
                std::fs::create_dir_all(&root_dir)
                    .map_err(io("cannot create the sandbox's root"))?;
                // A sandbox that crashed may have left its groups behind.
                let name = id.to_string();
                let _ =
                    tokio::task::spawn_blocking(move || cove_sandbox::remove_cgroups(&name)).await;
                runner.root = cove_sandbox::WORKSPACE_PATH.to_string();
                runner.program_cgroup = cove_sandbox::delegates_cpu()
                    .then(|| cove_sandbox::CPU_PROCS_INSIDE.to_string());
                let image = self.image(id);
                let spec = SandboxSpec {
                    name: id.to_string(),
                    workspace_dir: root.to_string_lossy().into_owned(),
                    workspace_image: image.exists().then(|| image.to_string_lossy().into_owned()),
                    disk_limit_bytes: disk_limit,
                    log_file: self.log_file(id).to_string_lossy().into_owned(),
                    root_dir: root_dir.to_string_lossy().into_owned(),
                    uid,
                    gid,
                    limits: SandboxLimits {
                        memory_bytes: held(
                            workspace_limits.memory_bytes,
                            sandbox.limits.memory_bytes,
                        ),
                        cpu_millis: held(workspace_limits.cpu_millis, sandbox.limits.cpu_millis),
                        pids: held(workspace_limits.pids, sandbox.limits.pids),
                    },
                    tmp_bytes: sandbox.tmp_bytes,
                    network: sandbox.network.clone(),
                    runner,
                };
                command
                    .arg("sandbox-init")
                    .arg("--spec")
                    .arg(to_json(&spec))
                    .current_dir("/");
            }
        }
        command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log);
        if self.config.sandbox.is_some() {
            // Inside, the runner sees only what the sandbox shows: a fixed, clean environment.
            command.env_clear().envs([
                (
                    "PATH",
                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                ),
                ("HOME", cove_sandbox::WORKSPACE_PATH),
                ("SHELL", "/bin/bash"),
                ("USER", "cove"),
                ("LANG", "C.UTF-8"),
            ]);
            if let Ok(filter) = std::env::var("COVE_LOG") {
                command.env("COVE_LOG", filter);
            }
        }
        // Its own session: a Ctrl+C meant for the server's terminal must not reach runners,
        // and runners outlive the server on purpose.
        // SAFETY: setsid and fcntl are async-signal-safe; clearing close-on-exec on the
        // child's copy of the socket hands exactly that descriptor on (the parent's copy, and
        // those of other children spawned meanwhile, keep it).
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(move || {
                rustix::process::setsid()?;
                if libc::fcntl(socket_fd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = tokio::process::Command::from(command)
            .kill_on_drop(false)
            .spawn()
            .map_err(io(format!(
                "cannot run {}",
                self.config.runner_exe.display()
            )))?;
        // The runner has its copy; the server keeps none (it connects by path).
        drop(socket);
        let pid = child.id().unwrap_or(0);
        std::fs::write(self.pid_file(id), pid.to_string())
            .map_err(io("cannot write the pid file"))?;
        self.reapers.spawn(async move {
            let _ = child.wait().await;
        });
        tracing::info!(workspace = %id, pid, "runner started");
        self.wait_until_accepting(id, pid, Instant::now() + self.config.start_timeout)
            .await?;
        Ok(self.addr(id, pid))
    }

    pub(crate) async fn stop_runner(&self, id: &str) -> Result<(), BackendError> {
        let Some(pid) = self.live_pid(id) else {
            let _ = std::fs::remove_file(self.pid_file(id));
            self.unmount_storage(id).await;
            return Ok(());
        };
        signal(pid, libc::SIGTERM);
        let deadline = Instant::now() + self.config.stop_timeout;
        while is_alive(pid) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if is_alive(pid) {
            tracing::warn!(workspace = %id, pid, "runner ignored SIGTERM; killing it");
            signal(pid, libc::SIGKILL);
        }
        let _ = std::fs::remove_file(self.pid_file(id));
        let _ = std::fs::remove_file(self.socket(id));
        // The sandbox's PID 1 is gone only once the outer process is (it waits for it), so
        // nothing in the workspace holds the disk any more.
        self.unmount_storage(id).await;
        tracing::info!(workspace = %id, pid, "runner stopped");
        Ok(())
    }
}

fn to_json<T: serde::Serialize>(spec: &T) -> String {
    serde_json::to_string(spec).expect("launch specs always serialize")
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) takes plain integers.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// Alive and not a zombie (a zombie runner has exited; only its parent has yet to reap it).
fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next())
                != Some("Z")
        }
        Err(_) => false,
    }
}

fn is_runner_of(pid: u32, id: &str) -> bool {
    if !is_alive(pid) {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    // `cove runner --spec {...}` or `cove sandbox-init --spec {...}`, whose spec names the
    // workspace; runners started before specs existed carry `--workspace-id <id>`.
    let spec = args
        .windows(2)
        .find(|w| w[0] == b"--spec")
        .and_then(|w| serde_json::from_slice::<serde_json::Value>(w[1]).ok());
    let named = match &spec {
        Some(spec) => {
            let runner = spec.get("runner").unwrap_or(spec);
            runner.get("workspaceId").and_then(|v| v.as_str()) == Some(id)
        }
        None => args
            .windows(2)
            .any(|w| w[0] == b"--workspace-id" && w[1] == id.as_bytes()),
    };
    named && (args.contains(&b"runner".as_slice()) || args.contains(&b"sandbox-init".as_slice()))
}

/// The last `max` bytes of a log file, for error messages.
fn tail(path: &Path, max: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let start = text.len().saturating_sub(max);
    String::from_utf8_lossy(&text[start..]).trim().to_string()
}
