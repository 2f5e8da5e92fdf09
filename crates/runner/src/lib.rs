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

//! Only [`run`] and what configures it are public: the `cove` binary starts a runner, and
//! everything else is the runner's own business.

#![warn(unreachable_pub)]

mod adopt;
mod archive;
mod captured;
mod control;
mod error;
mod files;
mod git;
mod http;
mod launch;
mod lsp;
mod output;
mod outside;
mod ports;
mod preview;
mod processes;
mod raw;
mod registry;
mod replay;
mod screen;
mod search;
mod stats;
mod stopping;
mod terminals;
mod utf8;
mod watch;

use cove_protocol::PortEvent;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use launch::Launch;

/// Limits on what clients of one workspace may ask for.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Scrollback kept per terminal, and output log kept per process.
    pub scrollback_bytes: usize,
    /// Largest file read or written through the API.
    pub max_file_bytes: u64,
    /// Largest control-socket message accepted.
    pub max_message_bytes: usize,
    /// Terminals that may run at once.
    pub max_terminals: usize,
    /// Processes that may run at once.
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
    /// The workspace's id, as the server knows it.
    pub workspace_id: String,
    /// The workspace's files: every file operation stays beneath it.
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
pub(crate) struct Exit {
    pub(crate) code: Option<i32>,
    pub(crate) signal: Option<i32>,
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

/// How many characters of a client-controlled string a log line shows.
const LOG_CHARS: usize = 200;

/// A client-controlled string as a log line may show it: at most `LOG_CHARS` (200) characters,
/// control characters escaped (so no forged lines), and how much was cut. Clients choose
/// command lines, paths and ids, and a program in the workspace can send them to its own
/// runner in a loop: logged whole, they would fill the host's disk.
#[derive(Clone, Copy)]
pub(crate) struct Clip<'a>(&'a str);

/// See [`Clip`]; every log line that shows a client's string goes through this.
pub(crate) fn clip(text: &str) -> Clip<'_> {
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

/// What every control socket of the workspace is told as it happens, unasked. The control
/// socket turns it into an event.
#[derive(Debug, Clone)]
pub(crate) enum Notice {
    /// The workspace is stopping: its programs are being ended.
    Stopping,
    PortOpened(PortEvent),
    PortClosed(PortEvent),
    /// A program ended in a way its exit status does not explain (out of memory).
    Failed(Arc<error::Error>),
}

/// Everything of one workspace, shared by every connection.
#[derive(Debug)]
pub(crate) struct Workspace {
    pub(crate) id: String,
    pub(crate) launch: Arc<Launch>,
    pub(crate) terminals: Arc<terminals::Terminals>,
    pub(crate) processes: Arc<processes::Processes>,
    pub(crate) language_servers: lsp::LanguageServersHost,
    pub(crate) files: files::Files,
    pub(crate) watcher: watch::Watcher,
    pub(crate) ports: ports::PortScanner,
    pub(crate) stats: stats::StatsSampler,
    /// `GET /stats`'s own sampler: its CPU figure covers the time since the last `GET /stats`,
    /// not since a control socket's `stats`.
    pub(crate) figures: stats::StatsSampler,
    /// Notices for every control socket of the workspace (status, ports, kills).
    pub(crate) notices: tokio::sync::broadcast::Sender<Notice>,
    pub(crate) tasks: TaskTracker,
    pub(crate) shutdown: CancellationToken,
    pub(crate) started_at: std::time::SystemTime,
}

impl Workspace {
    fn new(
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
        let files = files::Files::open(
            &config.root,
            config.limits.max_file_bytes,
            config.limits.disk_limit_bytes,
        )?;
        let (notices, _) = tokio::sync::broadcast::channel(256);
        let sweeper = stopping::Sweeper::start()?;
        let terminals = Arc::new(terminals::Terminals::new(
            launch.clone(),
            tasks.clone(),
            sweeper.clone(),
            notices.clone(),
        ));
        let language_servers =
            lsp::LanguageServersHost::new(launch.clone(), tasks.clone(), sweeper.clone());
        let processes = Arc::new(processes::Processes::new(
            launch.clone(),
            tasks.clone(),
            sweeper,
            notices.clone(),
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
            language_servers,
            files,
            watcher: watch::Watcher::new(config.root.clone(), tasks.clone(), shutdown.clone()),
            ports: ports::PortScanner::new(
                notices.clone(),
                tasks.clone(),
                shutdown.clone(),
                owners,
            ),
            stats: stats::StatsSampler::default(),
            figures: stats::StatsSampler::default(),
            launch,
            notices,
            tasks,
            shutdown,
            started_at: std::time::SystemTime::now(),
        }))
    }

    /// Ends every terminal and process, within the configured grace period.
    async fn stop_everything(&self) {
        let grace = self.launch.limits.stop_grace.min(Duration::from_secs(3));
        let _ = self.notices.send(Notice::Stopping);
        tokio::join!(
            self.terminals.close_all(grace),
            self.processes.stop_all(grace),
            self.language_servers.stop_all()
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

/// Puts idle terminals' screens to sleep, every half of `screen::SLEEP_AFTER`.
async fn sleep_idle_screens(terminals: Arc<terminals::Terminals>, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(screen::SLEEP_AFTER / 2);
    loop {
        tokio::select! {
            _ = every.tick() => terminals.sleep_idle_screens(),
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
    tasks.spawn(sleep_idle_screens(
        workspace.terminals.clone(),
        shutdown.clone(),
    ));
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
