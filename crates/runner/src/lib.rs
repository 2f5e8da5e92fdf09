//! Per-workspace agent: terminals, processes and files of exactly one workspace.
//!
//! Owns: PTY sessions and their scrollback, child processes and their logs, confined file
//! access, the file watcher, the listening-port scanner, resource statistics, and the
//! sockets of docs/PROTOCOL.md sections 1, 2 and 6 that serve them.
//! Must not know: HTTP users or roles, other workspaces, which backend started this process,
//! or the sandbox around it.
//!
//! One runner process serves one workspace. It keeps running when every client and even the
//! server are gone; it stops on SIGTERM (or `POST /shutdown`), ending its terminals and
//! processes first.

pub mod control;
pub mod files;
pub mod http;
pub mod output;
pub mod ports;
pub mod preview;
pub mod processes;
pub mod raw;
pub mod registry;
pub mod replay;
pub mod stats;
pub mod stopping;
pub mod terminals;
pub mod utf8;
pub mod watch;

use cove_protocol::{ErrorCode, ErrorReply, StatusState};
use std::ffi::OsString;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Limits on what clients of one workspace may ask for.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Scrollback kept per terminal, and output log kept per process.
    pub scrollback_bytes: usize,
    /// Largest file read or written through the API.
    pub max_file_bytes: u64,
    /// Largest control-socket message accepted.
    pub max_message_bytes: usize,
    pub max_terminals: usize,
    pub max_processes: usize,
    /// How long a process gets between TERM and KILL.
    pub stop_grace: Duration,
    /// Storage the workspace's files may take, enforced on API writes.
    pub disk_limit_bytes: Option<u64>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            scrollback_bytes: 1024 * 1024,
            max_file_bytes: 8 * 1024 * 1024,
            max_message_bytes: 16 * 1024 * 1024,
            max_terminals: 64,
            max_processes: 64,
            stop_grace: Duration::from_secs(5),
            disk_limit_bytes: None,
        }
    }
}

/// Where the runner listens.
#[derive(Debug)]
pub enum Listen {
    /// A Unix socket the server bound in a directory only it can write, inherited by this
    /// process; the runner listens on it (see [`take_listen_fd`]).
    Inherited(std::os::unix::net::UnixListener),
    /// A Unix socket created with mode 0600 (only the server's user can connect).
    Unix(PathBuf),
    /// TCP, for runners in Kubernetes pods; every request needs the bearer token.
    Tcp {
        addr: std::net::SocketAddr,
        token: String,
    },
}

/// Everything a runner needs to serve one workspace.
#[derive(Debug)]
pub struct Config {
    pub workspace_id: String,
    pub root: PathBuf,
    pub listen: Listen,
    /// The login shell for terminals.
    pub shell: String,
    /// What `HOME` is for the workspace's programs (the root unless a sandbox maps it).
    pub home: PathBuf,
    /// A `cgroup.procs` file every program joins before it executes (the sandbox's CPU limit,
    /// which the runner itself stays out of).
    pub program_cgroup: Option<PathBuf>,
    pub limits: Limits,
}

/// Takes the bound Unix socket inherited as descriptor `fd`: checks that it is one, keeps it
/// from the programs this runner starts (close-on-exec), and listens on it. Listening here,
/// not in the server, makes the socket's peer credentials (`SO_PEERCRED`) this process's,
/// which the server checks before it talks to a runner.
pub fn take_listen_fd(fd: i32) -> std::io::Result<std::os::unix::net::UnixListener> {
    use std::os::fd::{FromRawFd, OwnedFd};
    if fd < 3 {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    }
    // Checked before ownership is taken: fstat on a number that is not ours is harmless.
    // SAFETY: a descriptor number is only borrowed for the duration of the check.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let stat = rustix::fs::fstat(borrowed)?;
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::Socket {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    }
    // SAFETY: the server passed this descriptor for this purpose, nothing else in this
    // process refers to it, and it is a socket (checked above).
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC)?;
    rustix::net::listen(&owned, 1024)?;
    let listener = std::os::unix::net::UnixListener::from(owned);
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// How a program ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl Exit {
    fn from_status(status: Option<std::process::ExitStatus>) -> Exit {
        use std::os::unix::process::ExitStatusExt;
        match status {
            Some(s) => Exit {
                code: s.code(),
                signal: s.signal(),
            },
            None => Exit::default(),
        }
    }
}

/// When a program died of SIGKILL and the workspace's out-of-memory kill count went up since
/// it started, tells every socket of the workspace why (the exit itself only says "signal 9").
pub(crate) fn report_oom(
    broadcast: &tokio::sync::broadcast::Sender<cove_protocol::ServerMessage>,
    what: &str,
    id: &str,
    exit: Exit,
    ooms_before: Option<u64>,
) {
    if exit.signal != Some(libc::SIGKILL) {
        return;
    }
    let (Some(before), Some(now)) = (ooms_before, stats::oom_kills()) else {
        return;
    };
    if now > before {
        let limit = stats::memory_limit()
            .map(|l| format!(" ({} MiB)", l / (1024 * 1024)))
            .unwrap_or_default();
        let message = format!("{what} {id} was killed: the workspace ran out of memory{limit}");
        tracing::warn!("{}", clip(&message));
        let error = cove_protocol::ErrorReply::new(ErrorCode::LimitExceeded, message);
        let _ = broadcast.send(cove_protocol::ServerMessage::event(
            cove_protocol::Event::Error(error),
        ));
    }
}

/// Sends `signal` to the process group led by `pgid`; a group that is already gone is fine.
pub(crate) fn signal_group(pgid: u32, signal: i32) {
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe {
        libc::kill(-(pgid as i32), signal);
    }
}

/// How many characters of a client-controlled string a log line shows.
const LOG_CHARS: usize = 200;

/// A client-controlled string as a log line may show it: at most `LOG_CHARS` (200) characters,
/// control characters escaped (so no forged lines), and how much was cut. Clients choose
/// command lines, paths and ids, and a program in the workspace can send them to its own
/// runner in a loop: logged whole, they would fill the host's disk.
#[derive(Clone, Copy)]
pub struct Clip<'a>(&'a str);

/// See [`Clip`]; every log line that shows a client's string goes through this.
pub fn clip(text: &str) -> Clip<'_> {
    Clip(text)
}

impl std::fmt::Display for Clip<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write as _;
        let mut end = 0;
        for (shown, (at, c)) in self.0.char_indices().enumerate() {
            if shown == LOG_CHARS {
                break;
            }
            end = at + c.len_utf8();
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_char(c)?;
            }
        }
        if end < self.0.len() {
            write!(f, "…[{} more bytes]", self.0.len() - end)?;
        }
        Ok(())
    }
}

/// Quoted, and cut like [`Display`](std::fmt::Display): a `?clip(..)` is as short as `%clip(..)`.
impl std::fmt::Debug for Clip<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// Checks a client-chosen terminal or process id: short, printable, no path characters.
pub(crate) fn validate_id(id: &str, what: &str) -> Result<String, ErrorReply> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'@'));
    if ok {
        Ok(id.to_string())
    } else {
        Err(ErrorReply::new(
            ErrorCode::BadRequest,
            format!("{what} must be 1-128 characters of letters, digits and _-.:@"),
        ))
    }
}

/// How programs are started in this workspace: shell, environment, working directory.
#[derive(Debug)]
pub struct Launch {
    pub root: PathBuf,
    pub program_cgroup: Option<std::ffi::CString>,
    pub home: PathBuf,
    pub shell: String,
    pub workspace_id: String,
    pub limits: Limits,
}

impl Launch {
    /// A `cwd` from a client: relative to the workspace root, absolute as it is.
    fn cwd(&self, cwd: Option<&str>) -> Result<PathBuf, ErrorReply> {
        let path = match cwd {
            None | Some("") => return Ok(self.root.clone()),
            Some(c) if c.contains('\0') => {
                return Err(ErrorReply::new(
                    ErrorCode::BadRequest,
                    "cwd must not contain NUL bytes",
                ));
            }
            Some(c) if c.starts_with('/') => PathBuf::from(c),
            Some(c) => self.root.join(c),
        };
        if !path.is_dir() {
            return Err(ErrorReply::new(
                ErrorCode::BadRequest,
                format!("cwd {:?} is not a directory", cwd.unwrap_or_default()),
            ));
        }
        Ok(path)
    }

    /// The complete environment of a new program: a clean base plus the client's variables,
    /// and last the program's marker (see `stopping`), which a client cannot replace.
    fn env(
        &self,
        extra: &[(String, String)],
        id_var: (&str, &str),
        marker: &str,
    ) -> Result<Vec<(OsString, OsString)>, ErrorReply> {
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        let lang = std::env::var("LANG").unwrap_or_else(|_| "C.UTF-8".into());
        let user = std::env::var("USER").unwrap_or_else(|_| "cove".into());
        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), path),
            ("HOME".into(), self.home.to_string_lossy().into_owned()),
            ("USER".into(), user),
            ("SHELL".into(), self.shell.clone()),
            ("LANG".into(), lang),
            ("TERM".into(), "xterm-256color".into()),
            ("COLORTERM".into(), "truecolor".into()),
            ("COVE_WORKSPACE_ID".into(), self.workspace_id.clone()),
            (id_var.0.into(), id_var.1.into()),
        ];
        for (key, value) in extra {
            if key.is_empty() || key.contains('=') || key.contains('\0') || value.contains('\0') {
                return Err(ErrorReply::new(
                    ErrorCode::BadRequest,
                    format!(
                        "bad environment variable {key:?}: names must be non-empty without = or NUL"
                    ),
                ));
            }
            env.retain(|(k, _)| k != key);
            env.push((key.clone(), value.clone()));
        }
        env.retain(|(k, _)| k != stopping::MARKER_VAR);
        env.push((stopping::MARKER_VAR.into(), marker.into()));
        Ok(env.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }

    fn pty_spawn(
        &self,
        command: Option<&str>,
        cwd: Option<&str>,
        env: &[(String, String)],
        size: cove_pty::Size,
        terminal_id: &str,
        marker: &str,
    ) -> Result<cove_pty::Spawn, ErrorReply> {
        let (program, args, arg0) = match command {
            None => {
                // A login shell, as ssh and code-server start one: argv[0] = "-bash".
                let name = self.shell.rsplit('/').next().unwrap_or("sh");
                (
                    self.shell.clone(),
                    vec![],
                    Some(OsString::from(format!("-{name}"))),
                )
            }
            Some(line) => (
                "/bin/bash".to_string(),
                vec!["-c".into(), OsString::from(line)],
                None,
            ),
        };
        Ok(cove_pty::Spawn {
            program: program.into(),
            args,
            arg0,
            cwd: self.cwd(cwd)?,
            env: self.env(env, ("COVE_TERMINAL_ID", terminal_id), marker)?,
            size,
            cgroup_procs: self.program_cgroup.clone(),
        })
    }

    /// A command for `run_command`: the program and args as given, or a shell command line
    /// when no args are given. The child leads its own session, so it can be stopped as a group.
    fn command(
        &self,
        command: &str,
        args: Option<&[String]>,
        cwd: Option<&str>,
        env: &[(String, String)],
        process_id: &str,
        marker: &str,
    ) -> Result<tokio::process::Command, ErrorReply> {
        let mut cmd = match args {
            Some(args) => {
                let mut cmd = std::process::Command::new(command);
                cmd.args(args);
                cmd
            }
            None => {
                let mut cmd = std::process::Command::new("/bin/bash");
                cmd.arg("-c").arg(command);
                cmd
            }
        };
        let env = self.env(env, ("COVE_PROCESS_ID", process_id), marker)?;
        cmd.current_dir(self.cwd(cwd)?).env_clear().envs(env);
        let cgroup = self.program_cgroup.clone();
        // SAFETY: open/write (join_cgroup), setsid and prctl are async-signal-safe and touch
        // only the child's own state.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(path) = &cgroup {
                    cove_pty::join_cgroup(path)?;
                }
                rustix::process::setsid()?;
                // A runner that dies (even by SIGKILL) takes its processes with it.
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::TERM,
                ))?;
                Ok(())
            });
        }
        Ok(tokio::process::Command::from(cmd))
    }
}

/// Everything of one workspace, shared by every connection.
#[derive(Debug)]
pub struct Workspace {
    pub id: String,
    pub launch: Arc<Launch>,
    pub terminals: Arc<terminals::Terminals>,
    pub processes: Arc<processes::Processes>,
    pub files: files::Files,
    pub watcher: watch::Watcher,
    pub ports: ports::PortScanner,
    pub stats: stats::StatsSampler,
    /// Events for every socket of the workspace (status, ports).
    pub broadcast: tokio::sync::broadcast::Sender<cove_protocol::ServerMessage>,
    pub tasks: TaskTracker,
    pub shutdown: CancellationToken,
    pub started_at: std::time::SystemTime,
}

impl Workspace {
    pub fn new(
        config: &Config,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) -> std::io::Result<Arc<Workspace>> {
        let program_cgroup = config.program_cgroup.as_ref().map(|p| {
            std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).expect("no NUL in a path")
        });
        let launch = Arc::new(Launch {
            program_cgroup,
            root: config.root.clone(),
            home: config.home.clone(),
            shell: config.shell.clone(),
            workspace_id: config.workspace_id.clone(),
            limits: config.limits.clone(),
        });
        let files = files::Files::open_with_limit(
            &config.root,
            config.limits.max_file_bytes,
            config.limits.disk_limit_bytes,
        )?;
        let (broadcast, _) = tokio::sync::broadcast::channel(256);
        let sweeper = stopping::Sweeper::start()?;
        let terminals = Arc::new(terminals::Terminals::new(
            launch.clone(),
            tasks.clone(),
            sweeper.clone(),
            broadcast.clone(),
        ));
        let processes = Arc::new(processes::Processes::new(
            launch.clone(),
            tasks.clone(),
            sweeper,
            broadcast.clone(),
        ));
        // Which terminal or process a listening port belongs to: by the pids they lead.
        let owners: ports::Owners = {
            let (terminals, processes) = (terminals.clone(), processes.clone());
            Arc::new(move || {
                let mut owners = std::collections::HashMap::new();
                for t in terminals
                    .list()
                    .iter()
                    .filter(|t| t.exit_status().is_none())
                {
                    owners.insert(t.pid, ports::Owner::Terminal(t.id.clone()));
                }
                for p in processes
                    .list()
                    .iter()
                    .filter(|p| p.exit_status().is_none())
                {
                    owners.insert(p.pid, ports::Owner::Process(p.id.clone()));
                }
                owners
            })
        };
        Ok(Arc::new(Workspace {
            id: config.workspace_id.clone(),
            terminals,
            processes,
            files,
            watcher: watch::Watcher::new(config.root.clone(), tasks.clone(), shutdown.clone()),
            ports: ports::PortScanner::new(
                broadcast.clone(),
                tasks.clone(),
                shutdown.clone(),
                owners,
            ),
            stats: stats::StatsSampler::default(),
            launch,
            broadcast,
            tasks,
            shutdown,
            started_at: std::time::SystemTime::now(),
        }))
    }

    /// Ends every terminal and process, within the configured grace period.
    pub async fn stop_everything(&self) {
        let grace = self.launch.limits.stop_grace.min(Duration::from_secs(3));
        let status = cove_protocol::ServerMessage::event(cove_protocol::Event::Status(
            cove_protocol::Status {
                state: StatusState::Stopping,
                message: "the workspace is stopping".into(),
            },
        ));
        let _ = self.broadcast.send(status);
        tokio::join!(
            self.terminals.close_all(grace),
            self.processes.stop_all(grace)
        );
    }
}

/// Hands memory freed after bursts of output back to the system now and then: glibc keeps
/// freed heap pages, so a runner that once relayed a flood would otherwise stay large.
async fn release_memory(shutdown: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = every.tick() => {
                // SAFETY: malloc_trim only walks the allocator's own free lists.
                unsafe {
                    libc::malloc_trim(0);
                }
            }
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Serves the workspace until `shutdown` is cancelled (or SIGTERM/SIGINT arrives), then stops
/// its terminals and processes and returns.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    // The runner runs as the workspace's user but outside its CPU limit and holds what the
    // programs must not reach (its sockets, the server's connection): a program of the same
    // user must not ptrace it or read its memory, environment or descriptors in /proc. What
    // it starts is dumpable again from `execve` on, as the workspace's own programs should be.
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| anyhow::anyhow!("cannot make the runner undumpable: {e}"))?;
    let tasks = TaskTracker::new();
    let workspace = Workspace::new(&config, tasks.clone(), shutdown.clone()).map_err(|e| {
        anyhow::anyhow!("cannot open workspace root {}: {e}", config.root.display())
    })?;
    let socket_path = match &config.listen {
        Listen::Unix(path) => Some(path.clone()),
        _ => None,
    };
    let server = http::serve(workspace.clone(), config.listen, shutdown.clone());
    let signals = {
        let shutdown = shutdown.clone();
        async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            let mut int =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = int.recv() => tracing::info!("SIGINT: stopping"),
                _ = shutdown.cancelled() => {}
            }
            shutdown.cancel();
            anyhow::Ok(())
        }
    };
    tasks.spawn(release_memory(shutdown.clone()));
    let (served, _) = tokio::join!(server, signals);
    workspace.stop_everything().await;
    tasks.close();
    if tokio::time::timeout(Duration::from_secs(5), tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("some tasks did not finish within 5 s of shutdown");
    }
    if let Some(path) = socket_path {
        let _ = std::fs::remove_file(path);
    }
    served
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_strings_and_cuts_long_ones_with_a_marker() {
        assert_eq!(clip("ls -la").to_string(), "ls -la");
        assert_eq!(clip("").to_string(), "");
        let exact = "x".repeat(LOG_CHARS);
        assert_eq!(clip(&exact).to_string(), exact);
        let long = "y".repeat(15 * 1024 * 1024);
        let shown = clip(&long).to_string();
        assert_eq!(
            shown,
            format!(
                "{}…[{} more bytes]",
                "y".repeat(LOG_CHARS),
                long.len() - LOG_CHARS
            )
        );
    }

    #[test]
    fn clip_counts_characters_and_escapes_control_characters() {
        let wide = "é".repeat(LOG_CHARS + 1);
        assert_eq!(
            clip(&wide).to_string(),
            format!("{}…[2 more bytes]", "é".repeat(LOG_CHARS))
        );
        assert_eq!(
            clip("a\nINFO forged line\u{1b}[2J").to_string(),
            "a\\nINFO forged line\\u{1b}[2J"
        );
    }
}
