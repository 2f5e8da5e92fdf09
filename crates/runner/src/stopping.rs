//! Stopping a program and everything it started, whatever the client does meanwhile.
//!
//! A stop belongs to the runner (a task on the workspace's tracker), never to the request or
//! the socket that asked for it: a client that leaves at once must not leave a TERM without
//! its KILL. After the program's own process group, a sweep of `/proc` kills what it started
//! that left the group: a new session (`setsid`), or an orphan reparented to the sandbox's
//! PID 1, where the parent chain breaks. Every program carries a marker in its environment
//! ([`MARKER_VAR`]) that whatever it starts inherits, which finds those.
//!
//! Clients see a program as exited only once its output is complete and, while it is being
//! stopped, once the sweep found nothing left: `running: false` means nothing of it runs.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use crate::{Exit, clip};

/// The environment variable that marks every program the runner starts (and so what each of
/// those starts in turn).
pub(crate) const MARKER_VAR: &str = "COVE_SPAWN";

/// Most sweeps one stop makes, and the longest it spends sweeping: enough to catch a fork
/// bomb racing the sweep, bounded for a tree that somehow keeps coming back.
const MAX_SWEEPS: usize = 200;
const MAX_SWEEP_TIME: Duration = Duration::from_secs(5);
/// Pause between two sweeps that both found something, so that killed processes can die.
const SWEEP_PAUSE: Duration = Duration::from_millis(2);

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

/// A marker that no other program of this runner carries, nor one of another runner (the
/// runner's pid and start time tell runners apart, the counter programs).
pub(crate) fn new_marker() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static STARTED: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
    let started = STARTED.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{started:x}-{n}", std::process::id())
}

/// Kills process trees on a thread of its own. Not on tokio's blocking pool: a workspace at
/// its process limit cannot start a thread, and that is exactly when a sweep is needed (tokio
/// panics when it cannot start a blocking thread and has none).
#[derive(Debug, Clone)]
pub(crate) struct Sweeper {
    jobs: std::sync::mpsc::Sender<Job>,
}

#[derive(Debug)]
struct Job {
    root: u32,
    marker: String,
    done: oneshot::Sender<()>,
}

impl Sweeper {
    /// Starts the thread; it ends when the last `Sweeper` is dropped.
    pub(crate) fn start() -> std::io::Result<Sweeper> {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("cove-sweep".into())
            .spawn(move || {
                for job in queue {
                    kill_tree(job.root, &job.marker);
                    let _ = job.done.send(());
                }
            })?;
        Ok(Sweeper { jobs })
    }

    /// SIGKILLs everything `root` started (see [`kill_tree`]), off the async thread.
    pub(crate) async fn kill_tree(&self, root: u32, marker: &str) {
        let (done, finished) = oneshot::channel();
        let job = Job {
            root,
            marker: marker.to_string(),
            done,
        };
        if self.jobs.send(job).is_ok() {
            let _ = finished.await;
        }
    }
}

/// SIGKILLs every process that `root` started, sweep after sweep until one finds nothing (or
/// the bounds are reached). Returns how many kills were sent.
pub(crate) fn kill_tree(root: u32, marker: &str) -> usize {
    let needle = format!("{MARKER_VAR}={marker}");
    let deadline = std::time::Instant::now() + MAX_SWEEP_TIME;
    let mut killed = 0;
    for _ in 0..MAX_SWEEPS {
        let found = tree(root, needle.as_bytes());
        if found.is_empty() {
            return killed;
        }
        for pid in &found {
            // SAFETY: kill(2) takes plain integers and touches no memory of ours.
            unsafe {
                libc::kill(*pid as i32, libc::SIGKILL);
            }
        }
        killed += found.len();
        if std::time::Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(SWEEP_PAUSE);
    }
    tracing::warn!(
        root,
        killed,
        marker = %clip(marker),
        "processes kept appearing while their tree was killed; gave up"
    );
    killed
}

/// A live process as `/proc/<pid>/stat` tells it.
#[derive(Debug, Clone, Copy)]
struct Proc {
    pid: u32,
    ppid: u32,
    pgrp: u32,
    session: u32,
}

/// Every live process except this runner and PID 1 (zombies are already dead: their parent,
/// or PID 1, reaps them).
fn processes() -> Vec<Proc> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me || pid <= 1 {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command name is in parentheses and may itself contain spaces or parentheses.
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let num = |i: usize| fields.get(i).and_then(|s| s.parse::<u32>().ok());
        if matches!(fields.first(), Some(&"Z") | Some(&"X") | None) {
            continue;
        }
        if let (Some(ppid), Some(pgrp), Some(session)) = (num(1), num(2), num(3)) {
            out.push(Proc {
                pid,
                ppid,
                pgrp,
                session,
            });
        }
    }
    out
}

fn has_marker(pid: u32, needle: &[u8]) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == needle))
}

/// The pids of what `root` started: its process group and session, its descendants, and
/// whatever carries its marker, with their descendants.
fn tree(root: u32, needle: &[u8]) -> Vec<u32> {
    let all = processes();
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut seeds = Vec::new();
    for p in &all {
        children.entry(p.ppid).or_default().push(p.pid);
        if p.pid == root || p.pgrp == root || p.session == root {
            seeds.push(p.pid);
        }
    }
    // The root's children even when the root itself is gone from the list (a zombie).
    seeds.extend(children.get(&root).into_iter().flatten());
    let mut found = HashSet::new();
    let with_descendants = |seeds: Vec<u32>, found: &mut HashSet<u32>| {
        let mut stack = seeds;
        while let Some(pid) = stack.pop() {
            if found.insert(pid) {
                stack.extend(children.get(&pid).into_iter().flatten());
            }
        }
    };
    with_descendants(seeds, &mut found);
    let marked: Vec<u32> = all
        .iter()
        .filter(|p| !found.contains(&p.pid) && has_marker(p.pid, needle))
        .map(|p| p.pid)
        .collect();
    with_descendants(marked, &mut found);
    found.into_iter().collect()
}

/// Where a program is in its life, as clients see it, and its stop.
#[derive(Debug)]
pub(crate) struct Lifecycle {
    /// The main process, which leads the program's session and process group.
    pid: u32,
    marker: String,
    /// The main process's exit, as soon as it is reaped.
    main: watch::Sender<Option<Exit>>,
    /// The exit clients see: the output is complete and nothing of a stop is left to kill.
    exit: watch::Sender<Option<Exit>>,
    /// When the main process gets SIGKILL if it is still there; a later stop may move it earlier.
    kill_at: watch::Sender<Option<Instant>>,
    /// How many stops have finished; a reply waits for the one it started or joined.
    finished: watch::Sender<u64>,
    state: Mutex<State>,
    tasks: TaskTracker,
    sweeper: Sweeper,
}

#[derive(Debug, Default)]
struct State {
    /// Set once the output is complete (the exit waits for a stop in progress, if any).
    output_done: Option<Exit>,
    stopping: bool,
    finished: u64,
}

impl Lifecycle {
    pub(crate) fn new(pid: u32, marker: String, tasks: TaskTracker, sweeper: Sweeper) -> Lifecycle {
        Lifecycle {
            pid,
            marker,
            main: watch::channel(None).0,
            exit: watch::channel(None).0,
            kill_at: watch::channel(None).0,
            finished: watch::channel(0).0,
            state: Mutex::new(State::default()),
            tasks,
            sweeper,
        }
    }

    /// The exit, once the program is over for clients.
    pub(crate) fn status(&self) -> Option<Exit> {
        *self.exit.borrow()
    }

    /// Waits until the program is over for clients.
    pub(crate) async fn exited(&self) -> Exit {
        let mut rx = self.exit.subscribe();
        match rx.wait_for(|e| e.is_some()).await {
            Ok(exit) => exit.expect("waited for Some"),
            Err(_) => Exit::default(),
        }
    }

    /// The main process was reaped (its output may still be on its way).
    pub(crate) fn main_exited(&self, exit: Exit) {
        self.main.send_replace(Some(exit));
    }

    /// The output is complete: the program is over for clients unless a stop still sweeps.
    pub(crate) fn output_done(&self, exit: Exit) {
        let mut state = self.state.lock().unwrap();
        state.output_done = Some(exit);
        if !state.stopping {
            self.publish(exit);
        }
    }

    fn publish(&self, exit: Exit) {
        self.exit.send_if_modified(|e| {
            let first = e.is_none();
            if first {
                *e = Some(exit);
            }
            first
        });
    }

    /// Ends the program and everything it started: a stop owned by the runner, which
    /// SIGKILLs the process group `kill_after` from now if the main process is still there
    /// (without, waits for it to end), then sweeps the rest. The caller sends its own signal
    /// first. The stop starts at once, before this returns; the future only tells its
    /// outcome, and dropping it (the client left) changes nothing.
    pub(crate) fn stop(
        self: &Arc<Self>,
        kill_after: Option<Duration>,
    ) -> impl Future<Output = Exit> + Send + 'static {
        if let Some(after) = kill_after {
            let at = Instant::now() + after;
            self.kill_at
                .send_modify(|k| *k = Some(k.map_or(at, |k| k.min(at))));
        }
        let target = {
            let mut state = self.state.lock().unwrap();
            if !state.stopping {
                state.stopping = true;
                self.tasks.spawn(self.clone().finish());
            }
            state.finished + 1
        };
        let me = self.clone();
        async move {
            let mut finished = me.finished.subscribe();
            let _ = finished.wait_for(|n| *n >= target).await;
            me.exited().await
        }
    }

    async fn finish(self: Arc<Self>) {
        let mut main = self.main.subscribe();
        let mut kill_at = self.kill_at.subscribe();
        let mut killed = false;
        loop {
            if main.borrow_and_update().is_some() {
                break;
            }
            let at = *kill_at.borrow_and_update();
            let deadline = if killed { None } else { at };
            tokio::select! {
                _ = main.changed() => {}
                _ = kill_at.changed() => {}
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    signal_group(self.pid, libc::SIGKILL);
                    killed = true;
                }
            }
        }
        // What is left of the group, then what left it.
        signal_group(self.pid, libc::SIGKILL);
        self.sweeper.kill_tree(self.pid, &self.marker).await;
        let mut state = self.state.lock().unwrap();
        state.stopping = false;
        state.finished += 1;
        if let Some(exit) = state.output_done {
            self.publish(exit);
        }
        self.finished.send_replace(state.finished);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt as _;

    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    }

    /// A tree whose members left the group and the session of their parent, and whose parent
    /// exited, is still found by its marker.
    #[test]
    fn the_sweep_finds_what_left_the_group_by_its_marker() {
        let marker = new_marker();
        let pidfile = tempfile::NamedTempFile::new().unwrap();
        let script = format!(
            "setsid sh -c 'echo $$ > {}; exec sleep 300' & sleep 300",
            pidfile.path().display()
        );
        let mut child = std::process::Command::new("/bin/sh");
        child
            .arg("-c")
            .arg(&script)
            .env(MARKER_VAR, &marker)
            .process_group(0);
        let mut child = child.spawn().unwrap();
        let root = child.id();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let escaped: u32 = loop {
            if let Ok(pid) = std::fs::read_to_string(pidfile.path())
                .unwrap()
                .trim()
                .parse()
            {
                break pid;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the child never started"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let session = std::fs::read_to_string(format!("/proc/{escaped}/stat")).unwrap();
        assert!(!session.contains(&format!(" {root} {root} ")), "{session}");
        // Kill the root alone, so its children are orphans in a session of their own.
        // SAFETY: kill(2) takes plain integers.
        unsafe {
            libc::kill(root as i32, libc::SIGKILL);
        }
        child.wait().unwrap();
        assert!(alive(escaped));
        assert!(kill_tree(root, &marker) >= 1);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while alive(escaped) {
            assert!(std::time::Instant::now() < deadline, "{escaped} survived");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(kill_tree(root, &marker), 0, "a second sweep finds nothing");
    }

    #[test]
    fn markers_differ() {
        assert_ne!(new_marker(), new_marker());
    }
}
