//! `cove serve` as a child process for programs that must say what went wrong instead of
//! panicking: the benchmarks (`cove-bench`, `cove-start-bench`).
//!
//! [`Serve::start`] runs `cove serve --bind-addr 127.0.0.1:0 --data-dir <fresh> --auth none`
//! (no `--auth none` when the caller's arguments name an `--auth`)
//! plus the caller's arguments, waits a bounded time for `cove listening on http://ADDR`, and
//! keeps the tail of the server's output for failure messages; [`Serve::stop`] ends it with
//! SIGTERM, then SIGKILL. `web/e2e/server.mjs` is the same for the browser scripts.
//!
//! Runners outlive the server by design: a caller deletes its workspaces, or ends the pids of
//! [`Serve::runner_pids`], before it stops the server. Dropping a [`Serve`] kills the server and
//! then removes its [`DataDir`].

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout_at;

/// What [`Serve::start`] runs, beyond the fixed
/// `serve --bind-addr 127.0.0.1:0 --data-dir <dir> --auth none`.
#[derive(Debug, Clone)]
pub struct ServeOptions<'a> {
    /// Extra `cove serve` arguments.
    pub args: &'a [String],
    /// Added to the server's environment.
    pub env: &'a [(&'a str, &'a str)],
    /// How the data dir's name starts (it is made in the temp dir).
    pub dir_prefix: &'a str,
    /// How long the server may take to print its listening line.
    pub wait: Duration,
    /// Lines of output kept for [`Serve::log_tail`].
    pub tail_lines: usize,
}

impl Default for ServeOptions<'_> {
    fn default() -> Self {
        Self {
            args: &[],
            env: &[],
            dir_prefix: "cove-serve-",
            wait: Duration::from_secs(60),
            tail_lines: 40,
        }
    }
}

/// A running `cove serve`, started by [`Serve::start`].
pub struct Serve {
    child: Child,
    pid: u32,
    port: u16,
    announced_on: &'static str,
    log: Arc<Mutex<VecDeque<String>>>,
    drains: Vec<JoinHandle<()>>,
    /// Last, so that it is removed after the child is killed.
    data_dir: DataDir,
}

impl Serve {
    /// Starts `bin serve` and waits for its listening line. An error carries the last lines
    /// of the server's output.
    pub async fn start(bin: &Path, options: ServeOptions<'_>) -> Result<Serve> {
        let data_dir = DataDir::new(options.dir_prefix)?;
        let mut child = Command::new(bin)
            .arg("serve")
            .args(["--bind-addr", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir.path())
            // Every caller is the administrator unless the caller chooses `--auth` itself.
            .args(auth_default(options.args))
            .args(options.args)
            // A config file of the data dir's own (none is there), unless one is given: the
            // user's ~/.config/cove/config.yaml must not change what is measured.
            .args(
                (!options.args.iter().any(|a| a.starts_with("--config")))
                    .then(|| format!("--config={}", data_dir.path().join("config.yaml").display())),
            )
            .envs(options.env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawn {}", bin.display()))?;
        let pid = child.id().ok_or_else(|| anyhow!("the server has no pid"))?;
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, mut rx) = mpsc::unbounded_channel::<(&'static str, u16)>();
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
        let keep = options.tail_lines.max(1);
        let drains = vec![
            tokio::spawn(drain_lines(stdout, "stdout", log.clone(), keep, tx.clone())),
            tokio::spawn(drain_lines(stderr, "stderr", log.clone(), keep, tx)),
        ];

        let deadline = tokio::time::Instant::now() + options.wait;
        let (announced_on, port) = tokio::select! {
            got = timeout_at(deadline, rx.recv()) => match got {
                Err(_) => {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                    bail!(
                        "no `cove listening on http://127.0.0.1:PORT` line within {:?}; \
                         output: {}",
                        options.wait,
                        tail_text(&log)
                    );
                }
                Ok(None) => {
                    // Both pipes closed: the server is exiting.
                    let status = match timeout_at(deadline, child.wait()).await {
                        Ok(Ok(s)) => s.to_string(),
                        Ok(Err(e)) => e.to_string(),
                        Err(_) => "still running, output closed".to_string(),
                    };
                    let _ = child.start_kill();
                    bail!("the server exited before listening ({status}); output: {}",
                        tail_text(&log));
                }
                Ok(Some(found)) => found,
            },
            status = child.wait() => {
                // Give the drains a moment to collect the last lines.
                tokio::time::sleep(Duration::from_millis(100)).await;
                bail!("the server exited before listening ({}); output: {}",
                    status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                    tail_text(&log));
            }
        };
        Ok(Serve {
            child,
            pid,
            port,
            announced_on,
            log,
            drains,
            data_dir,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// `"stdout"` or `"stderr"`: where the listening line came (PROTOCOL.md wants stdout).
    pub fn announced_on(&self) -> &'static str {
        self.announced_on
    }

    /// The last lines of the server's output, each prefixed with its stream.
    pub fn log_tail(&self) -> Vec<String> {
        self.log.lock().unwrap().iter().cloned().collect()
    }

    /// The pids in `<data-dir>/run/*.pid`: the runners (or their sandboxes) this server started.
    pub fn runner_pids(&self) -> Vec<i32> {
        let mut out = Vec::new();
        if let Ok(dir) = std::fs::read_dir(self.data_dir().join("run")) {
            for e in dir.flatten().take(10_000) {
                let path = e.path();
                if path.extension().and_then(|x| x.to_str()) == Some("pid")
                    && let Ok(text) = std::fs::read_to_string(&path)
                    && let Ok(pid) = text.trim().parse::<i32>()
                    && pid > 1
                {
                    out.push(pid);
                }
            }
        }
        out
    }

    /// SIGTERM by pid; SIGKILL when the server has not exited within `grace` (then waits at
    /// most 5 s more). Returns whether it exited on SIGTERM.
    pub async fn stop(&mut self, grace: Duration) -> bool {
        crate::signal(self.pid, libc::SIGTERM);
        if tokio::time::timeout(grace, self.child.wait()).await.is_ok() {
            return true;
        }
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        false
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        for drain in &self.drains {
            drain.abort();
        }
    }
}

/// A fresh directory in the temp dir for a server's data. On drop, undoes what a killed
/// sandbox could not (its disk image stays mounted, its cgroups stay), then removes it.
pub struct DataDir(Option<tempfile::TempDir>);

impl DataDir {
    pub fn new(prefix: &str) -> Result<DataDir> {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(std::env::temp_dir())
            .context("create a data dir")?;
        Ok(DataDir(Some(dir)))
    }

    pub fn path(&self) -> &Path {
        self.0.as_ref().expect("present until drop").path()
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        clean_up_after_killed_sandboxes(self.path());
        // TempDir's own drop removes the tree.
        drop(self.0.take());
    }
}

/// Keeps reading lines of the server's output (so that it never blocks on a full pipe);
/// reports the port of the `cove listening on` line.
async fn drain_lines<R: AsyncRead + Unpin>(
    r: R,
    stream: &'static str,
    log: Arc<Mutex<VecDeque<String>>>,
    keep: usize,
    tx: mpsc::UnboundedSender<(&'static str, u16)>,
) {
    let mut r = BufReader::new(r);
    let mut line = Vec::new();
    let mut reported = false;
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        if !reported && let Some(port) = parse_listening(&text) {
            reported = true;
            let _ = tx.send((stream, port));
        }
        let mut log = log.lock().unwrap();
        if log.len() >= keep {
            log.pop_front();
        }
        log.push_back(format!("{stream}: {text}"));
    }
}

/// `cove listening on http://127.0.0.1:PORT` (maybe with a trailing `/`) -> PORT.
fn parse_listening(line: &str) -> Option<u16> {
    let rest = line.split("cove listening on http://").nth(1)?;
    let hostport = rest.split(['/', ' ']).next()?;
    let port = hostport.rsplit(':').next()?;
    port.parse().ok().filter(|p| *p != 0)
}

fn tail_text(log: &Mutex<VecDeque<String>>) -> String {
    let log = log.lock().unwrap();
    if log.is_empty() {
        return "(nothing)".into();
    }
    log.iter()
        .skip(log.len().saturating_sub(10))
        .cloned()
        .collect::<Vec<_>>()
        .join(" | ")
}

/// What a sandbox that was SIGKILLed could not remove itself: mounts below `data_dir` and
/// its cgroups (named after the pid files in `run/`).
pub(crate) fn clean_up_after_killed_sandboxes(data_dir: &Path) {
    let root = data_dir.to_string_lossy().into_owned();
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for mount_point in table.lines().filter_map(|l| l.split(' ').nth(4)) {
        if mount_point.starts_with(&root)
            && let Ok(path) = std::ffi::CString::new(mount_point)
        {
            // SAFETY: a NUL-terminated path that outlives the call.
            unsafe {
                libc::umount2(path.as_ptr(), libc::MNT_DETACH);
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(data_dir.join("run")) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".pid") {
                for controller in ["memory", "pids", "cpu", ""] {
                    let group = Path::new("/sys/fs/cgroup")
                        .join(controller)
                        .join(format!("cove-{id}"));
                    let _ = std::fs::remove_dir(group);
                }
            }
        }
    }
}

/// `--auth none`, unless `args` choose an `--auth` of their own.
fn auth_default<S: AsRef<str>>(args: &[S]) -> &'static [&'static str] {
    let chosen = args.iter().any(|a| {
        let a = a.as_ref();
        a == "--auth" || a.starts_with("--auth=")
    });
    if chosen { &[] } else { &["--auth", "none"] }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_line() {
        assert_eq!(
            parse_listening("cove listening on http://127.0.0.1:40123"),
            Some(40123)
        );
        assert_eq!(
            parse_listening("cove listening on http://127.0.0.1:8080/"),
            Some(8080)
        );
        assert_eq!(parse_listening("listening soon"), None);
    }
}
