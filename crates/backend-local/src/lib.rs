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

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_util::task::TaskTracker;

use cove_backend::{
    Backend, BackendError, BoxFuture, MAX_DISK_BYTES, MIN_CPU_MILLIS, MIN_DISK_BYTES,
    MIN_MEMORY_BYTES, MIN_PIDS, RunnerAddr, RunnerPeer, RunnerState, SeedFile, WorkspaceLimits,
};
use cove_protocol::launch::{NetworkSpec, RunnerLimits, RunnerSpec, SandboxLimits, SandboxSpec};

/// `BackendError::Io` with a context, for `map_err`.
fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackendError {
    let context = context.into();
    move |source| BackendError::Io { context, source }
}

/// How sandboxed runners are confined.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// The server's cgroup limits: every workspace's defaults and ceilings.
    pub limits: SandboxLimits,
    /// Size of each workspace's private /tmp.
    pub tmp_bytes: u64,
    /// New workspaces get a disk image of their storage limit (a hard limit on every write).
    pub disk_images: bool,
    pub network: NetworkSpec,
}

impl SandboxSettings {
    /// Checks that this host can run sandboxes and that the server's limits are ones a
    /// shell can live within, finds out whether workspaces can have disk images, and says
    /// what it decided in the log.
    pub fn for_this_host(
        limits: SandboxLimits,
        tmp_bytes: u64,
        disk_limit_bytes: u64,
        network: NetworkSpec,
    ) -> Result<SandboxSettings, BackendError> {
        let cgroups =
            cove_sandbox::check_host().map_err(|e| BackendError::Storage(e.to_string()))?;
        if limits.memory_bytes < MIN_MEMORY_BYTES
            || limits.cpu_millis < MIN_CPU_MILLIS
            || limits.pids < MIN_PIDS
        {
            return Err(BackendError::BadLimits(format!(
                "the server's limits must be at least {} MiB of memory, {} processes and {} of a core",
                MIN_MEMORY_BYTES >> 20,
                MIN_PIDS,
                MIN_CPU_MILLIS as f64 / 1000.0
            )));
        }
        tracing::info!(
            ?cgroups,
            memory_mib = limits.memory_bytes >> 20,
            cpu = limits.cpu_millis as f64 / 1000.0,
            pids = limits.pids,
            "workspaces are sandboxed"
        );
        let disk_images = match cove_sandbox::disk::probe() {
            Ok(mke2fs) => {
                tracing::info!(
                    disk_mib = disk_limit_bytes >> 20,
                    mke2fs = %mke2fs.display(),
                    "each new workspace gets a disk image of its storage limit"
                );
                true
            }
            Err(why) => {
                tracing::warn!("storage limits hold only for API writes, not for programs: {why}");
                false
            }
        };
        Ok(SandboxSettings {
            limits,
            tmp_bytes,
            disk_images,
            network,
        })
    }
}

/// What the server lets workspaces reach, as a person chose it (`--network`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkChoice {
    /// Outbound when slirp4netns is installed and cove listens on loopback only.
    Auto,
    /// Only each workspace's own loopback.
    None,
    /// Outbound to public addresses (and `--allow-egress` ranges) through slirp4netns.
    Outbound,
}

/// Decides the workspaces' network from the choice, where cove listens and whether
/// slirp4netns is installed; says why in the log. Allowed ranges must parse as CIDR.
pub fn choose_network(
    choice: NetworkChoice,
    bind: std::net::SocketAddr,
    slirp4netns: Option<PathBuf>,
    allow: &[String],
) -> Result<NetworkSpec, BackendError> {
    for range in allow {
        range
            .parse::<cove_sandbox::egress::Ipv4Net>()
            .map_err(|e| BackendError::BadLimits(format!("--allow-egress {range}: {e}")))?;
    }
    let outbound = |slirp4netns: PathBuf| NetworkSpec::Outbound {
        slirp4netns: slirp4netns.to_string_lossy().into_owned(),
        allow: allow.to_vec(),
    };
    let network = match (choice, slirp4netns) {
        (NetworkChoice::None, _) => NetworkSpec::Loopback,
        (NetworkChoice::Outbound, None) => {
            return Err(BackendError::BadLimits(
                "--network outbound needs slirp4netns, which is not installed (apt-get install slirp4netns)".into(),
            ));
        }
        (NetworkChoice::Outbound, Some(slirp4netns)) => {
            if !bind.ip().is_loopback() {
                tracing::warn!(
                    %bind,
                    "--network outbound with a non-loopback listen address: workspaces cannot reach the host's addresses (prohibited routes), but mind what else listens on this network"
                );
            }
            outbound(slirp4netns)
        }
        (NetworkChoice::Auto, None) => {
            tracing::info!(
                "workspaces have no outbound network: slirp4netns is not installed (apt-get install slirp4netns, or --network none to silence this)"
            );
            NetworkSpec::Loopback
        }
        (NetworkChoice::Auto, Some(_)) if !bind.ip().is_loopback() => {
            tracing::info!(
                %bind,
                "workspaces have no outbound network: cove listens beyond loopback (--network outbound to choose otherwise)"
            );
            NetworkSpec::Loopback
        }
        (NetworkChoice::Auto, Some(slirp4netns)) => outbound(slirp4netns),
    };
    if let NetworkSpec::Outbound { slirp4netns, allow } = &network {
        tracing::info!(%slirp4netns, ?allow, "workspaces have outbound network to public addresses; the host's addresses and private ranges are closed to them");
    }
    Ok(network)
}

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

    /// New workspaces get an image (when they have a storage limit) if sandboxed with images.
    fn new_workspaces_get_images(&self) -> bool {
        self.config.sandbox.as_ref().is_some_and(|s| s.disk_images)
    }

    /// Mounts the workspace's image at its directory unless it has none or it is mounted
    /// (unsandboxed runners only; it stays mounted until the workspace stops).
    async fn mount_storage(&self, id: &str) -> Result<(), BackendError> {
        let (image, root) = (self.image(id), self.root(id));
        if !image.exists() {
            return Ok(());
        }
        tokio::task::spawn_blocking(move || {
            if !cove_sandbox::disk::is_mounted(&root) {
                cove_sandbox::disk::mount_image(&image, &root, 0)?;
                // mke2fs always makes one; it is noise in a project's file tree.
                let _ = std::fs::remove_dir(root.join("lost+found"));
            }
            Ok(())
        })
        .await
        .map_err(|_| BackendError::Interrupted("mounting the workspace's disk"))?
        .map_err(|e: cove_sandbox::SandboxError| {
            BackendError::Storage(format!("cannot mount the workspace's disk: {e}"))
        })
    }

    /// Unmounts the workspace's image after its runner has gone, if whoever mounted it could
    /// not (an unsandboxed runner, or a sandbox that was SIGKILLed). Off the async threads:
    /// an unmount flushes the filesystem.
    async fn unmount_storage(&self, id: &str) {
        let (root, image, id) = (self.root(id), self.image(id), id.to_string());
        let _ = tokio::task::spawn_blocking(move || {
            if image.exists() && cove_sandbox::disk::is_mounted(&root) {
                match cove_sandbox::disk::unmount(&root) {
                    Ok(()) => tracing::debug!(workspace = %id, "disk unmounted"),
                    Err(e) => tracing::warn!(workspace = %id, "{e}"),
                }
            }
        })
        .await;
    }

    /// The runner's socket: in `run/`, which only the server's user may enter.
    fn socket(&self, id: &str) -> PathBuf {
        self.config.data_dir.join("run").join(format!("{id}.sock"))
    }

    /// Who answers a workspace's socket when its runner is the process `started_by`.
    fn peer(&self, id: &str, started_by: u32) -> RunnerPeer {
        let uid = match self.config.sandbox {
            Some(_) => workspace_uid(id),
            // SAFETY: geteuid has no preconditions.
            None => unsafe { libc::geteuid() },
        };
        RunnerPeer { uid, started_by }
    }

    fn addr(&self, id: &str, started_by: u32) -> RunnerAddr {
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

    fn pid_file(&self, id: &str) -> PathBuf {
        self.config.data_dir.join("run").join(format!("{id}.pid"))
    }

    fn log_file(&self, id: &str) -> PathBuf {
        self.config.data_dir.join("logs").join(format!("{id}.log"))
    }

    /// The pid of the workspace's runner if that process is alive and really is its runner
    /// (a pid file can outlive its process, and pids are reused).
    fn live_pid(&self, id: &str) -> Option<u32> {
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

    async fn start_runner(
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

    async fn stop_runner(&self, id: &str) -> Result<(), BackendError> {
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
        Box::pin(async move {
            let root = self.root(id);
            let image = self.image(id);
            if root.exists() || image.exists() {
                return Err(BackendError::AlreadyExists(id.to_string()));
            }
            for file in files {
                if file
                    .path
                    .split('/')
                    .any(|c| c.is_empty() || c == "." || c == "..")
                    || file.path.starts_with('/')
                {
                    return Err(BackendError::BadSeedPath(file.path.clone()));
                }
            }
            let files = files.to_vec();
            let limit = self.disk_limit(limits);
            let result = if self.new_workspaces_get_images() && limit > 0 {
                let uid = workspace_uid(id);
                tokio::task::spawn_blocking(move || {
                    provision_image(&root, &image, limit, uid, &files)
                })
                .await
            } else {
                tokio::task::spawn_blocking(move || write_seed(&root, &files)).await
            };
            result.map_err(|_| BackendError::Interrupted("making the workspace's files"))?
        })
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

fn to_json<T: serde::Serialize>(spec: &T) -> String {
    serde_json::to_string(spec).expect("launch specs always serialize")
}

/// The host uid (and gid) a sandboxed workspace runs as: stable per workspace, never a
/// system or login uid (200000-299999).
pub fn workspace_uid(id: &str) -> u32 {
    // FNV-1a: stable across builds, unlike std's hasher.
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    200_000 + (hash % 100_000) as u32
}

/// Gives a tree to the workspace's uid (once: a tree already owned by it is left alone).
async fn own(path: &Path, uid: u32, gid: u32) -> Result<(), BackendError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(io(format!("cannot stat {}", path.display())))?;
    if meta.uid() == uid && meta.gid() == gid {
        return Ok(());
    }
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || chown_tree(&path, uid, gid))
        .await
        .map_err(|_| BackendError::Interrupted("giving the files to the workspace's user"))?
        .map_err(io("cannot give the workspace's files to its user"))
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    if std::fs::symlink_metadata(path)?.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Builds a workspace's disk image from its template: the files are staged beside it, given
/// to the workspace's uid, copied into a new image, and the staging directory removed.
fn provision_image(
    root: &Path,
    image: &Path,
    limit: u64,
    uid: u32,
    files: &[SeedFile],
) -> Result<(), BackendError> {
    let staging = image.with_extension("new");
    let _ = std::fs::remove_dir_all(&staging);
    let made = write_seed(&staging, files)
        .and_then(|()| {
            chown_tree(&staging, uid, uid)
                .map_err(io("cannot give the template's files to the workspace"))
        })
        .and_then(|()| {
            cove_sandbox::disk::create_image(image, limit, &staging, uid, uid).map_err(|e| {
                BackendError::Storage(format!("cannot create the workspace's disk: {e}"))
            })
        })
        .and_then(|()| {
            std::fs::create_dir(root).map_err(io(format!("cannot create {}", root.display())))
        });
    let _ = std::fs::remove_dir_all(&staging);
    if made.is_err() {
        let _ = std::fs::remove_file(image);
    }
    made
}

fn write_seed(root: &Path, files: &[SeedFile]) -> Result<(), BackendError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(root).map_err(io(format!("cannot create {}", root.display())))?;
    for file in files {
        let path = root.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io("cannot create a template directory"))?;
        }
        std::fs::write(&path, &file.contents).map_err(io("cannot write a template file"))?;
        if file.executable {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .map_err(io("cannot mark a template file executable"))?;
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

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

#[cfg(test)]
mod network_tests {
    use super::*;

    #[test]
    fn auto_gives_outbound_network_only_on_loopback_with_slirp4netns() {
        let slirp = Some(PathBuf::from("/usr/bin/slirp4netns"));
        let (lo, any): (std::net::SocketAddr, std::net::SocketAddr) = (
            "127.0.0.1:8080".parse().unwrap(),
            "0.0.0.0:8080".parse().unwrap(),
        );
        let outbound = NetworkSpec::Outbound {
            slirp4netns: "/usr/bin/slirp4netns".into(),
            allow: vec![],
        };
        let pick = |choice, bind, slirp: &Option<PathBuf>| {
            choose_network(choice, bind, slirp.clone(), &[])
        };
        assert_eq!(pick(NetworkChoice::Auto, lo, &slirp).unwrap(), outbound);
        assert_eq!(
            pick(NetworkChoice::Auto, any, &slirp).unwrap(),
            NetworkSpec::Loopback
        );
        assert_eq!(
            pick(NetworkChoice::Auto, lo, &None).unwrap(),
            NetworkSpec::Loopback
        );
        assert_eq!(
            pick(NetworkChoice::None, lo, &slirp).unwrap(),
            NetworkSpec::Loopback
        );
        assert_eq!(
            pick(NetworkChoice::Outbound, any, &slirp).unwrap(),
            outbound
        );
        let missing = pick(NetworkChoice::Outbound, lo, &None).unwrap_err();
        assert!(missing.to_string().contains("apt-get install slirp4netns"));
        let bad = choose_network(NetworkChoice::Auto, lo, slirp, &["10.0.0.0/33".into()]);
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("--allow-egress 10.0.0.0/33")
        );
    }
}
