//! Terminals: a shell on a PTY, its scrollback, and its lifecycle.
//!
//! Lifecycle: `Running` until the shell exits (or is closed), then `Exited` with its status;
//! it never goes back. A close ends what the terminal started too (see `stopping`), and the
//! terminal is `Exited` only once that is done. An exited terminal stays listed (`alive: false`) so a client can still
//! read its last output, until `close_terminal` removes it or newer ones push it out.

use bytes::{Bytes, BytesMut};
use cove_protocol::TerminalInfo;
use cove_pty::{Master, Size};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::task::TaskTracker;

use crate::error::Error;
use crate::launch::Launch;
use crate::output::{OutputLog, Reader, STDOUT};
use crate::registry::{Entry, Kind, Registry};
use crate::screen::{SLEEP_AFTER, Screen};
use crate::stopping::{Lifecycle, Sweeper, new_marker, signal_group};
use crate::{Exit, Notice, clip};

/// How many exited terminals are kept for their scrollback.
const KEEP_EXITED: usize = 16;
/// Largest chunk the reader appends at once: reads are coalesced up to this size.
const MAX_CHUNK: usize = 256 * 1024;

/// One terminal.
#[derive(Debug)]
pub(crate) struct Terminal {
    pub(crate) id: String,
    /// What runs in it, for `list_terminals`.
    command: String,
    pub(crate) pid: u32,
    master: Arc<Master>,
    input: tokio::sync::Mutex<()>,
    size: Mutex<Size>,
    /// Everything the terminal printed, bounded by the scrollback size.
    pub(crate) log: Arc<OutputLog>,
    /// The screen those bytes drew. Fed before each append to the log and under this lock, so
    /// that a snapshot and the log's end always describe the same moment.
    screen: Mutex<Screen>,
    life: Arc<Lifecycle>,
    created: u64,
}

impl Terminal {
    pub(crate) fn size(&self) -> Size {
        *self.size.lock().unwrap()
    }

    pub(crate) fn exit_status(&self) -> Option<Exit> {
        self.life.status()
    }

    /// Waits until the terminal's program has exited (and, when it is being closed, until
    /// nothing it started is left).
    pub(crate) async fn exited(&self) -> Exit {
        self.life.exited().await
    }

    pub(crate) fn info(&self) -> TerminalInfo {
        let size = self.size();
        let alive = self.exit_status().is_none();
        TerminalInfo {
            terminal_id: self.id.clone(),
            command: self.command.clone(),
            cols: size.cols,
            rows: size.rows,
            alive,
            foreground: alive.then(|| self.foreground()).flatten(),
        }
    }

    /// The name of the program in the foreground (`vim` while vim runs), from the PTY.
    fn foreground(&self) -> Option<String> {
        let group = self.master.foreground_group().ok()?;
        let name = std::fs::read_to_string(format!("/proc/{group}/comm")).ok()?;
        Some(name.trim().to_string()).filter(|n| !n.is_empty())
    }

    /// Types `data` into the terminal. Writes from several clients never interleave.
    pub(crate) async fn write(&self, data: &[u8]) -> Result<(), Error> {
        if self.exit_status().is_some() {
            return Err(Error::Exited {
                kind: Kind::Terminal,
                id: self.id.clone(),
            });
        }
        let _turn = self.input.lock().await;
        self.master
            .write_all(data)
            .await
            .map_err(|source| Error::Input {
                kind: Kind::Terminal,
                id: self.id.clone(),
                source,
            })
    }

    /// Sets the window size (the last resize from any client wins).
    pub(crate) fn resize(&self, size: Size) -> Result<(), Error> {
        self.resize_screen(&mut self.screen.lock().unwrap(), size)
    }

    /// Resizes the PTY and the screen at the same point of the output (the caller holds the
    /// screen's lock, so no output is fed in between).
    fn resize_screen(&self, screen: &mut Screen, size: Size) -> Result<(), Error> {
        check_size(size)?;
        *self.size.lock().unwrap() = size;
        screen.resize(size);
        if self.exit_status().is_none() {
            let _ = self.master.resize(size);
        }
        Ok(())
    }

    /// A snapshot that redraws the screen as it is now, after resizing it to `size` if given,
    /// and a reader of the output that follows it: nothing in between is lost or drawn twice,
    /// and output the program writes for its new size follows the snapshot. No snapshot for a
    /// terminal that has printed nothing yet: there is nothing to draw.
    pub(crate) fn attach_screen(&self, size: Option<Size>) -> (Option<String>, Reader) {
        let mut screen = self.screen.lock().unwrap();
        // A size out of range is not the terminal's: it keeps its own, as on a resume.
        if let Some(size) = size {
            let _ = self.resize_screen(&mut screen, size);
        }
        let end = self.log.end();
        let snapshot = (end > 0).then(|| screen.snapshot());
        // The start of a character split across reads is in the log but not drawn yet: it
        // comes as live output, with the rest of the character.
        let from = end - screen.undrawn() as u64;
        (snapshot, self.log.reader(Some(from)))
    }

    /// Feeds the screen and appends to the log, as one step (see `screen`).
    fn append(&self, chunk: Bytes) {
        let mut screen = self.screen.lock().unwrap();
        screen.feed(&chunk);
        self.log.append(STDOUT, chunk);
    }

    /// Hangs up the terminal's session (SIGHUP), kills it after `grace`, then whatever it
    /// started. The close belongs to the runner and starts before this returns; the future
    /// only tells how it ended.
    pub(crate) fn close(&self, grace: Duration) -> impl Future<Output = Exit> + Send + 'static {
        if self.exit_status().is_none() {
            signal_group(self.pid, libc::SIGHUP);
            signal_group(self.pid, libc::SIGCONT);
        }
        self.life.stop(Some(grace))
    }
}

/// A window size a terminal can have.
fn check_size(size: Size) -> Result<(), Error> {
    if size.cols == 0 || size.rows == 0 || size.cols > 1000 || size.rows > 1000 {
        return Err(Error::BadRequest(
            "cols and rows must be between 1 and 1000".into(),
        ));
    }
    Ok(())
}

/// What a client asks for when it creates a terminal.
#[derive(Debug, Clone, Default)]
pub(crate) struct NewTerminal {
    pub(crate) id: Option<String>,
    pub(crate) command: Option<String>,
    pub(crate) cwd: Option<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) size: Option<Size>,
}

/// All terminals of the workspace.
#[derive(Debug)]
pub(crate) struct Terminals {
    registry: Registry<Terminal>,
    notices: tokio::sync::broadcast::Sender<Notice>,
    launch: Arc<Launch>,
    tasks: TaskTracker,
    sweeper: Sweeper,
}

impl Entry for Terminal {
    fn created(&self) -> u64 {
        self.created
    }

    fn has_exited(&self) -> bool {
        self.exit_status().is_some()
    }
}

impl Terminals {
    pub(crate) fn new(
        launch: Arc<Launch>,
        tasks: TaskTracker,
        sweeper: Sweeper,
        notices: tokio::sync::broadcast::Sender<Notice>,
    ) -> Terminals {
        Terminals {
            registry: Registry::new(Kind::Terminal, KEEP_EXITED),
            notices,
            launch,
            tasks,
            sweeper,
        }
    }

    pub(crate) fn get(&self, id: &str) -> Result<Arc<Terminal>, Error> {
        self.registry.get(id)
    }

    /// Every terminal, oldest first.
    pub(crate) fn list(&self) -> Vec<Arc<Terminal>> {
        self.registry.list()
    }

    /// Forgets an exited terminal (not a newer one that took its id meanwhile).
    pub(crate) fn remove(&self, terminal: &Arc<Terminal>) {
        self.registry.remove_entry(&terminal.id, terminal);
    }

    /// Starts a terminal. An id in use by a live terminal is a conflict; a dead one is replaced.
    pub(crate) fn create(&self, request: NewTerminal) -> Result<Arc<Terminal>, Error> {
        let size = request.size.unwrap_or_default();
        check_size(size)?;
        let terminal = self.registry.add(
            request.id.clone(),
            self.launch.limits.max_terminals,
            |id, created| {
                let marker = new_marker();
                let spec = self.launch.pty_spawn(
                    request.command.as_deref(),
                    request.cwd.as_deref(),
                    &request.env,
                    size,
                    &id,
                    &marker,
                )?;
                let (master, child) = cove_pty::spawn(&spec).map_err(|e| {
                    tracing::warn!(terminal = %clip(&id), error = %clip(&e.to_string()), "cannot start terminal");
                    Error::Pty(e)
                })?;
                let pid = child.id().unwrap_or(0);
                let terminal = Arc::new(Terminal {
                    id,
                    command: request
                        .command
                        .clone()
                        .unwrap_or_else(|| self.launch.shell.clone()),
                    pid,
                    master: Arc::new(master),
                    input: tokio::sync::Mutex::new(()),
                    size: Mutex::new(size),
                    log: OutputLog::new(self.launch.limits.scrollback_bytes),
                    screen: Mutex::new(Screen::new(size)),
                    life: Arc::new(Lifecycle::new(
                        pid,
                        marker,
                        self.tasks.clone(),
                        self.sweeper.clone(),
                    )),
                    created,
                });
                self.tasks
                    .spawn(pump(terminal.clone(), child, self.notices.clone()));
                Ok(terminal)
            },
        )?;
        tracing::info!(terminal = %clip(&terminal.id), pid = terminal.pid, "terminal started");
        Ok(terminal)
    }

    /// Puts the screens nobody used for [`SLEEP_AFTER`] to sleep. Run now and then by one
    /// task for all terminals (`lib.rs`), not in each terminal's pump: a timer there would
    /// cancel the pump's wait for a stalled reader before it could give up on it.
    pub(crate) fn sleep_idle_screens(&self) {
        for terminal in self.list() {
            terminal.screen.lock().unwrap().sleep_if_idle(SLEEP_AFTER);
        }
    }

    /// Closes every terminal (runner shutdown).
    pub(crate) async fn close_all(&self, grace: Duration) {
        let all = self.list();
        futures_util::future::join_all(all.iter().map(|t| t.close(grace))).await;
    }
}

/// Moves the PTY's output into the terminal's log until the shell exits, then records how.
async fn pump(
    terminal: Arc<Terminal>,
    mut child: tokio::process::Child,
    notices: tokio::sync::broadcast::Sender<Notice>,
) {
    let ooms_before = crate::stats::oom_kills();
    let master = terminal.master.clone();
    let mut buf = vec![0u8; 64 * 1024];
    let status = loop {
        tokio::select! {
            status = child.wait() => {
                // Take what the shell wrote just before it exited.
                let mut tail = BytesMut::new();
                while tail.len() < 4 * MAX_CHUNK {
                    match master.try_read(&mut buf) {
                        Ok(Some(n)) if n > 0 => tail.extend_from_slice(&buf[..n]),
                        _ => break,
                    }
                }
                terminal.append(tail.freeze());
                break status;
            }
            read = async {
                terminal.log.wait_for_room().await;
                master.read(&mut buf).await
            } => match read {
                Ok(0) | Err(_) => break child.wait().await,
                Ok(n) => {
                    // Coalesce what is already there so a burst becomes one frame downstream,
                    // reading on into the same buffer: one copy per chunk (a profile showed
                    // a growing BytesMut copying the bytes two more times on average).
                    let mut filled = n;
                    let mut spilled: Option<BytesMut> = None;
                    loop {
                        if filled == buf.len() {
                            let spill = spilled.get_or_insert_with(BytesMut::new);
                            spill.extend_from_slice(&buf[..filled]);
                            filled = 0;
                            if spill.len() >= MAX_CHUNK {
                                break;
                            }
                        }
                        match master.try_read(&mut buf[filled..]) {
                            Ok(Some(n)) if n > 0 => filled += n,
                            _ => break,
                        }
                    }
                    let chunk = match spilled {
                        None => Bytes::copy_from_slice(&buf[..filled]),
                        Some(mut spill) => {
                            spill.extend_from_slice(&buf[..filled]);
                            spill.freeze()
                        }
                    };
                    terminal.append(chunk);
                }
            }
        }
    };
    let exit = Exit::from_status(status.ok());
    terminal.life.main_exited(exit);
    tracing::info!(terminal = %clip(&terminal.id), ?exit, "terminal exited");
    crate::stats::report_oom(&notices, Kind::Terminal, &terminal.id, exit, ooms_before);
    terminal.log.close();
    // Nothing more will be drawn: keep the last screen as its dump.
    terminal.screen.lock().unwrap().sleep();
    terminal.life.output_done(exit);
}
