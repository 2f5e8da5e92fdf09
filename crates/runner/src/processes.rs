//! Processes started with `run_command`: stdout and stderr kept apart, a kept log for late
//! subscribers, exit code and signal, and stopping the whole process group.
//!
//! Lifecycle: `Running` until the main process exits and its output is in, then `Exited` for
//! good; a stop also waits until nothing it started is left (see `stopping`). Each process
//! leads its own session (and so its own process group), which is what `stop_process` signals.

use bytes::Bytes;
use cove_protocol::{ProcessInfo, SignalSpec};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio_util::task::TaskTracker;

use crate::error::Error;
use crate::launch::Launch;
use crate::output::{OutputLog, STDERR, STDOUT, StreamTag};
use crate::registry::{Entry, Kind, Registry};
use crate::stopping::{Lifecycle, Sweeper, new_marker, signal_group};
use crate::{Exit, Notice, clip};

/// How many exited processes are kept for their logs.
const KEEP_EXITED: usize = 64;
/// How long output of grandchildren that still hold the pipes is awaited after the main process exits.
const PIPE_LINGER: Duration = Duration::from_secs(2);

/// One process.
#[derive(Debug)]
pub(crate) struct Process {
    pub(crate) id: String,
    pub(crate) command: String,
    pub(crate) args: Vec<String>,
    pub(crate) pid: u32,
    pub(crate) log: Arc<OutputLog>,
    life: Arc<Lifecycle>,
    created: u64,
}

impl Process {
    pub(crate) fn exit_status(&self) -> Option<Exit> {
        self.life.status()
    }

    /// Waits until the process has exited and its output is in the log (and, when it is
    /// being stopped, until nothing it started is left).
    pub(crate) async fn exited(&self) -> Exit {
        self.life.exited().await
    }

    pub(crate) fn info(&self) -> ProcessInfo {
        let exit = self.exit_status();
        ProcessInfo {
            process_id: self.id.clone(),
            command: self.command.clone(),
            args: self.args.clone(),
            running: exit.is_none(),
            exit_code: exit.and_then(|e| e.code),
            signal: exit.and_then(|e| e.signal),
            pid: Some(self.pid),
        }
    }

    /// With a signal, sends it to the process group. Without, TERM, then KILL after `grace`.
    /// Either way, once the main process is gone, whatever is left of its group and whatever
    /// it started elsewhere is killed. The stop belongs to the runner and starts before this
    /// returns; the future only tells how it ended.
    pub(crate) fn stop(
        &self,
        signal: Option<i32>,
        grace: Duration,
    ) -> impl Future<Output = Exit> + Send + 'static {
        let running = self.exit_status().is_none();
        let stop = match signal {
            // Not a stop in the lifecycle sense: nothing to wait for.
            Some(sig) if sig == libc::SIGSTOP || sig == libc::SIGTSTP => {
                if running {
                    signal_group(self.pid, sig);
                }
                None
            }
            Some(sig) => {
                if running {
                    signal_group(self.pid, sig);
                }
                Some(self.life.stop(None))
            }
            None => {
                if running {
                    signal_group(self.pid, libc::SIGTERM);
                }
                Some(self.life.stop(Some(grace)))
            }
        };
        async move {
            match stop {
                Some(stop) => stop.await,
                None => Exit::default(),
            }
        }
    }
}

/// What a client asks for with `run_command`.
#[derive(Debug, Clone, Default)]
pub(crate) struct NewProcess {
    pub(crate) id: Option<String>,
    pub(crate) command: String,
    pub(crate) args: Option<Vec<String>>,
    pub(crate) cwd: Option<String>,
    pub(crate) env: Vec<(String, String)>,
}

/// All processes of the workspace.
#[derive(Debug)]
pub(crate) struct Processes {
    registry: Registry<Process>,
    notices: tokio::sync::broadcast::Sender<Notice>,
    launch: Arc<Launch>,
    tasks: TaskTracker,
    sweeper: Sweeper,
}

impl Entry for Process {
    fn created(&self) -> u64 {
        self.created
    }

    fn has_exited(&self) -> bool {
        self.exit_status().is_some()
    }
}

impl Processes {
    pub(crate) fn new(
        launch: Arc<Launch>,
        tasks: TaskTracker,
        sweeper: Sweeper,
        notices: tokio::sync::broadcast::Sender<Notice>,
    ) -> Processes {
        Processes {
            registry: Registry::new(Kind::Process, KEEP_EXITED),
            notices,
            launch,
            tasks,
            sweeper,
        }
    }

    pub(crate) fn get(&self, id: &str) -> Result<Arc<Process>, Error> {
        self.registry.get(id)
    }

    /// Every known process, oldest first.
    pub(crate) fn list(&self) -> Vec<Arc<Process>> {
        self.registry.list()
    }

    pub(crate) fn start(&self, request: NewProcess) -> Result<Arc<Process>, Error> {
        if request.command.trim().is_empty() {
            return Err(Error::BadRequest("command must not be empty".into()));
        }
        let mut spawned = None;
        let process = self.registry.add(
            request.id.clone(),
            self.launch.limits.max_processes,
            |id, created| {
                let marker = new_marker();
                let mut command = self.launch.command(
                    &request.command,
                    request.args.as_deref(),
                    request.cwd.as_deref(),
                    &request.env,
                    &id,
                    &marker,
                )?;
                command
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .kill_on_drop(false);
                let child = command.spawn().map_err(|source| Error::Spawn {
                    command: request.command.clone(),
                    source,
                })?;
                let pid = child.id().unwrap_or(0);
                let process = Arc::new(Process {
                    id,
                    command: request.command.clone(),
                    args: request.args.clone().unwrap_or_default(),
                    pid,
                    log: OutputLog::new(self.launch.limits.scrollback_bytes),
                    life: Arc::new(Lifecycle::new(
                        pid,
                        marker,
                        self.tasks.clone(),
                        self.sweeper.clone(),
                    )),
                    created,
                });
                spawned = Some(child);
                Ok(process)
            },
        )?;
        let mut child = spawned.expect("the registry ran start");
        let (id, pid) = (process.id.clone(), process.pid);
        tracing::info!(process = %clip(&id), pid, command = %clip(&request.command), "process started");
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let out = self.tasks.spawn(pipe(process.log.clone(), stdout, STDOUT));
        let err = self.tasks.spawn(pipe(process.log.clone(), stderr, STDERR));
        let watched = process.clone();
        let notices = self.notices.clone();
        let ooms_before = crate::stats::oom_kills();
        self.tasks.spawn(async move {
            let status = child.wait().await;
            let exit = Exit::from_status(status.ok());
            watched.life.main_exited(exit);
            // Grandchildren may hold the pipes open; give their output a moment, not forever.
            let drained = tokio::time::timeout(PIPE_LINGER, async {
                let _ = out.await;
                let _ = err.await;
            })
            .await;
            if drained.is_err() {
                tracing::debug!(process = %clip(&watched.id), "pipes still open after exit; no longer read");
            }
            tracing::info!(process = %clip(&watched.id), ?exit, "process exited");
            crate::stats::report_oom(&notices, Kind::Process, &watched.id, exit, ooms_before);
            watched.log.close();
            watched.life.output_done(exit);
        });
        Ok(process)
    }

    /// Stops every running process (runner shutdown).
    pub(crate) async fn stop_all(&self, grace: Duration) {
        let all = self.list();
        futures_util::future::join_all(all.iter().map(|p| p.stop(None, grace))).await;
    }
}

async fn pipe(log: Arc<OutputLog>, mut from: impl tokio::io::AsyncRead + Unpin, stream: StreamTag) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        log.wait_for_room().await;
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => log.append(stream, Bytes::copy_from_slice(&buf[..n])),
        }
    }
}

/// Parses `TERM`, `SIGTERM`, `sigint` or `9` into a signal number.
pub(crate) fn parse_signal(spec: &SignalSpec) -> Result<i32, Error> {
    let bad = || Error::BadRequest(format!("unknown signal {spec:?}"));
    match spec {
        SignalSpec::Number(n) if (1..=64).contains(n) => Ok(*n),
        SignalSpec::Number(_) => Err(bad()),
        SignalSpec::Name(name) => {
            let upper = name.trim().to_ascii_uppercase();
            let short = upper.strip_prefix("SIG").unwrap_or(&upper);
            Ok(match short {
                "HUP" => libc::SIGHUP,
                "INT" => libc::SIGINT,
                "QUIT" => libc::SIGQUIT,
                "KILL" => libc::SIGKILL,
                "USR1" => libc::SIGUSR1,
                "USR2" => libc::SIGUSR2,
                "TERM" => libc::SIGTERM,
                "CONT" => libc::SIGCONT,
                "STOP" => libc::SIGSTOP,
                "TSTP" => libc::SIGTSTP,
                "WINCH" => libc::SIGWINCH,
                other => other
                    .parse::<i32>()
                    .ok()
                    .filter(|n| (1..=64).contains(n))
                    .ok_or_else(bad)?,
            })
        }
    }
}
