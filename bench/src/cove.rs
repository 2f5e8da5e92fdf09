//! The cove side: the server as a child process, a minimal HTTP/1.1 client,
//! and WebSocket clients for the raw terminal socket (PROTOCOL.md section 2)
//! and the JSON control socket (section 1). Everything here runs on one
//! current-thread tokio runtime, so the client uses one core.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::timeout_at;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::procs::{descendants, read_stat, rss_kib};
use crate::pty::{
    COLS, ECHO_TIMEOUT, ECHO_WARMUP, MARKER, MarkerScanner, ROWS, SHELL_COMMAND, throughput_command,
};
use crate::stats::Latency;
use crate::term::Net;
use crate::{PathResult, RUN_TIMEOUT, RunStat, TerminalArgs, progress};

/// How long the server may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Timeout of one HTTP request, of a WebSocket handshake, of a reply.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The echo terminal's command (raw mode, no echo, then `cat`).
const ECHO_COMMAND: &str = "stty raw -echo; exec cat";
/// Server stdout/stderr lines kept for the report.
const TAIL_LINES: usize = 40;

pub(crate) type Ws = WebSocketStream<Net>;

/// Everything measured against one cove server.
#[derive(Debug)]
pub(crate) struct CoveRun {
    pub binary: PathBuf,
    pub port: u16,
    pub pid: u32,
    pub workspace_id: Option<String>,
    /// Milliseconds of `POST /api/workspaces`.
    pub create_ms: Option<f64>,
    /// Milliseconds from `POST .../start` until `GET` says `running`.
    pub start_ms: Option<f64>,
    pub raw: PathResult,
    pub json: PathResult,
    pub mem_start: Result<MemSnapshot, String>,
    pub mem_idle: Result<MemSnapshot, String>,
    /// Observations, including where the server departs from PROTOCOL.md.
    pub notes: Vec<String>,
    /// The last lines of the server's stdout/stderr (shown when something failed).
    pub server_log_tail: Vec<String>,
    pub failed: bool,
}

/// RSS of the server and of its child processes.
#[derive(Debug, Clone)]
pub(crate) struct MemSnapshot {
    pub server_kib: u64,
    pub children: Vec<ChildMem>,
    /// Every process below the server, depth first (depth 1 = child).
    pub tree: Vec<TreeEntry>,
}

#[derive(Debug, Clone)]
pub(crate) struct TreeEntry {
    pub depth: usize,
    pub pid: i32,
    pub comm: String,
    pub rss_kib: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct ChildMem {
    pub pid: i32,
    pub comm: String,
    pub rss_kib: u64,
    /// Processes below this child (e.g. the shells of a runner) and their RSS.
    pub below_count: usize,
    pub below_kib: u64,
}

impl MemSnapshot {
    pub(crate) fn children_kib(&self) -> u64 {
        self.children.iter().map(|c| c.rss_kib).sum()
    }
    pub(crate) fn below_kib(&self) -> u64 {
        self.children.iter().map(|c| c.below_kib).sum()
    }
}

/// Runs all cove measurements. `Err` only when the server could not be
/// started at all.
pub(crate) fn run(args: &TerminalArgs, bin: &Path) -> Result<CoveRun, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    rt.block_on(run_async(args, bin))
}

async fn run_async(args: &TerminalArgs, bin: &Path) -> Result<CoveRun, String> {
    progress(&format!("cove: starting {} serve", bin.display()));
    let server = match Server::start(bin, &args.serve_args).await {
        Ok(s) => s,
        Err(e) => return Err(format!("cove did not start: {e:#}")),
    };
    progress(&format!(
        "cove: listening on port {} (pid {})",
        server.port, server.pid
    ));
    let mut run = CoveRun {
        binary: bin.to_path_buf(),
        port: server.port,
        pid: server.pid,
        workspace_id: None,
        create_ms: None,
        start_ms: None,
        raw: PathResult::not_run("cove raw socket", "not run"),
        json: PathResult::not_run("cove JSON socket", "not run"),
        mem_start: Err("not measured".into()),
        mem_idle: Err("not measured".into()),
        notes: std::mem::take(&mut *server.notes.lock().unwrap()),
        server_log_tail: Vec::new(),
        failed: false,
    };
    if let Err(e) = phases(&server, args, &mut run).await {
        progress(&format!("cove: aborted: {e:#}"));
        run.notes.push(format!("measurements aborted: {e:#}"));
        run.failed = true;
    }
    run.failed |= run.raw.runs.is_err()
        || run.raw.echo.is_err()
        || run.json.runs.is_err()
        || run.json.echo.is_err();
    run.server_log_tail = server.log_tail();
    progress("cove: stopping the server");
    let stop_notes = server.shutdown().await;
    run.notes.extend(stop_notes);
    Ok(run)
}

async fn phases(server: &Server, args: &TerminalArgs, run: &mut CoveRun) -> Result<()> {
    let port = server.port;
    // Idle memory right after start: let it settle a moment first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    run.mem_start = mem_snapshot(server.pid).map_err(|e| format!("{e:#}"));

    // Workspace.
    progress("cove: creating the workspace");
    let id = create_workspace(port, run).await?;
    run.workspace_id = Some(id.clone());
    start_workspace(port, &id, run).await;
    let payload = args.bytes;
    let runs = args.runs as usize;
    let samples = args.echo_samples as usize;

    // Raw socket.
    let mut raw_runs = Vec::new();
    let mut raw_err = None;
    for i in 0..runs {
        progress(&format!("cove raw: throughput run {}/{runs}", i + 1));
        match raw_throughput_run(port, &id, &format!("bt{}", i + 1), payload, &mut run.notes).await
        {
            Ok(r) => {
                progress(&format!(
                    "cove raw: {:.3} s, {:.1} MB/s, {} frames",
                    r.secs,
                    payload as f64 / 1e6 / r.secs,
                    r.chunks
                ));
                check_received("raw socket", &r, payload, &mut run.notes);
                raw_runs.push(r);
            }
            Err(e) => {
                progress(&format!("cove raw throughput failed: {e:#}"));
                raw_err = Some(format!("run {}: {e:#}", i + 1));
                break;
            }
        }
    }
    run.raw.runs = match raw_err {
        Some(e) => Err(e),
        None => Ok(raw_runs),
    };
    progress("cove raw: echo latency");
    run.raw.echo = raw_echo(port, &id, samples, &mut run.notes)
        .await
        .map_err(|e| format!("{e:#}"));
    log_echo("cove raw", &run.raw.echo);

    // JSON socket.
    let mut json_runs = Vec::new();
    let mut json_err = None;
    for i in 0..runs {
        progress(&format!("cove json: throughput run {}/{runs}", i + 1));
        match json_throughput_run(port, &id, &format!("bj{}", i + 1), payload, &mut run.notes).await
        {
            Ok(r) => {
                progress(&format!(
                    "cove json: {:.3} s, {:.1} MB/s, {} messages",
                    r.secs,
                    payload as f64 / 1e6 / r.secs,
                    r.chunks
                ));
                check_received("JSON socket", &r, payload, &mut run.notes);
                json_runs.push(r);
            }
            Err(e) => {
                progress(&format!("cove json throughput failed: {e:#}"));
                json_err = Some(format!("run {}: {e:#}", i + 1));
                break;
            }
        }
    }
    run.json.runs = match json_err {
        Some(e) => Err(e),
        None => Ok(json_runs),
    };
    progress("cove json: echo latency");
    run.json.echo = json_echo(port, &id, samples, &mut run.notes)
        .await
        .map_err(|e| format!("{e:#}"));
    log_echo("cove json", &run.json.echo);

    // Memory with one idle terminal.
    progress("cove: memory with one idle terminal");
    run.mem_idle = idle_memory(server.pid, port, &id, &mut run.notes)
        .await
        .map_err(|e| format!("{e:#}"));
    Ok(())
}

fn log_echo(what: &str, r: &Result<Latency, String>) {
    match r {
        Ok(l) => progress(&format!(
            "{what} echo: p50 {:.1} µs, p99 {:.1} µs",
            l.p50, l.p99
        )),
        Err(e) => progress(&format!("{what} echo failed: {e}")),
    }
}

fn check_received(what: &str, r: &RunStat, payload: u64, notes: &mut Vec<String>) {
    if r.received < payload {
        push_note(
            notes,
            format!(
                "{what}: only {} bytes arrived before the marker for a payload of {payload} \
                 bytes: output was lost",
                r.received
            ),
        );
    }
}

/// Adds a note once.
pub(crate) fn push_note(notes: &mut Vec<String>, note: String) {
    if !notes.contains(&note) {
        notes.push(note);
    }
}

// ---------------------------------------------------------------------------
// Server process

/// A directory removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    fn new() -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("cove-bench-{}-{nanos:08x}", std::process::id()));
        std::fs::create_dir(&path).with_context(|| format!("create {}", path.display()))?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Sandboxed workspaces' disk images stay mounted when their sandbox was killed.
        let root = self.0.to_string_lossy().into_owned();
        let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for mount_point in table.lines().filter_map(|l| l.split(' ').nth(4)) {
            if mount_point.starts_with(&root) {
                let _ = rustix::mount::unmount(mount_point, rustix::mount::UnmountFlags::DETACH);
            }
        }
        // A sandbox killed by pid could not remove its (now empty) cgroups either.
        if let Ok(entries) = std::fs::read_dir(self.0.join("run")) {
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
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The cove server, started by us. Killed (by pid) on drop if `shutdown` was
/// not called.
pub(crate) struct Server {
    child: Child,
    pub(crate) pid: u32,
    pub(crate) port: u16,
    pub(crate) data_dir: TempDir,
    log: Arc<Mutex<VecDeque<String>>>,
    notes: Mutex<Vec<String>>,
}

impl Server {
    pub(crate) async fn start(bin: &Path, extra: &[String]) -> Result<Self> {
        let data_dir = TempDir::new()?;
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .args(["--bind-addr", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir.0)
            .args(["--auth", "none"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawn {}", bin.display()))?;
        let pid = child.id().ok_or_else(|| anyhow!("the server has no pid"))?;
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, mut rx) = mpsc::unbounded_channel::<(&'static str, u16)>();
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
        tokio::spawn(drain_lines(stdout, "stdout", log.clone(), tx.clone()));
        tokio::spawn(drain_lines(stderr, "stderr", log.clone(), tx));

        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        let mut notes = Vec::new();
        let port = tokio::select! {
                got = timeout_at(deadline, rx.recv()) => match got {
                    Err(_) => {
                        let _ = child.start_kill();
                        let _ = child.wait().await;
                        bail!(
                            "no `cove listening on http://127.0.0.1:PORT` line within {:?}; \
                             output: {}",
                            START_TIMEOUT,
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
                    Ok(Some((stream, port))) => {
                        if stream != "stdout" {
                            notes.push(format!(
                                "the server printed its `cove listening on` line on {stream}, \
                                 not stdout"
                            ));
                        }
                        port
                    }
                },
                status = child.wait() => {
                    // Give the drains a moment to collect the last lines.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    bail!("the server exited before listening ({}); output: {}",
                        status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                        tail_text(&log));
                }
        };
        Ok(Self {
            child,
            pid,
            port,
            data_dir,
            log,
            notes: Mutex::new(notes),
        })
    }

    pub(crate) fn log_tail(&self) -> Vec<String> {
        self.log.lock().unwrap().iter().cloned().collect()
    }

    /// SIGTERM by pid, SIGKILL after 10 s; then ends (by pid, after checking
    /// their start time) any process the server started that outlived it,
    /// and removes the data directory.
    pub(crate) async fn shutdown(mut self) -> Vec<String> {
        let mut notes = Vec::new();
        let below = descendants(self.pid as i32);
        let pid = rustix::process::Pid::from_raw(self.pid as i32);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                notes.push("the server did not exit within 10 s of SIGTERM; killed".into());
                let _ = self.child.start_kill();
                let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
            }
        }
        // Processes the server started (runners, shells) that are still
        // there after a grace period.
        let mut survivors = Vec::new();
        for _ in 0..20 {
            survivors = below
                .iter()
                .filter(|(p, _)| {
                    read_stat(p.pid)
                        .is_some_and(|now| now.starttime == p.starttime && now.state != 'Z')
                })
                .map(|(p, _)| p.clone())
                .collect::<Vec<_>>();
            if survivors.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !survivors.is_empty() {
            let mut list: Vec<String> = survivors
                .iter()
                .take(8)
                .map(|p| format!("{} ({})", p.pid, p.comm))
                .collect();
            if survivors.len() > 8 {
                list.push(format!("and {} more", survivors.len() - 8));
            }
            notes.push(format!(
                "{} process(es) started by the server were still running 2 s after it exited \
                 (expected for runners: PROTOCOL.md section 6 keeps them across server \
                 restarts); the bench killed them by pid: {}",
                survivors.len(),
                list.join(", ")
            ));
            for p in &survivors {
                if let Some(pid) = rustix::process::Pid::from_raw(p.pid) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Runners record their pids in <data-dir>/run/*.pid: end any that is
        // still there (a runner that was re-parented away from the server).
        for pid in runner_pids(&self.data_dir.0) {
            if let Some(p) = rustix::process::Pid::from_raw(pid)
                && read_stat(pid).is_some_and(|st| st.state != 'Z')
                && cmdline_mentions(pid, &self.data_dir.0)
            {
                notes.push(format!(
                    "runner pid {pid} (from run/*.pid) was still running; killed by pid"
                ));
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
        let dir = self.data_dir.0.clone();
        drop(self.data_dir);
        if dir.exists() {
            notes.push(format!("could not remove {}", dir.display()));
        }
        notes
    }
}

/// The pids in `<data-dir>/run/*.pid`.
pub(crate) fn runner_pids(data_dir: &Path) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(dir) = std::fs::read_dir(data_dir.join("run")) {
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

/// Whether the command line of `pid` mentions `dir` (so that a recycled pid
/// of an unrelated process is never killed).
fn cmdline_mentions(pid: i32, dir: &Path) -> bool {
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let needle = dir.as_os_str().as_encoded_bytes();
    memchr::memmem::find(&raw, needle).is_some()
}

/// Keeps reading lines of the server's output (so it never blocks on a
/// full pipe); reports the port of the `cove listening on` line.
async fn drain_lines<R: AsyncRead + Unpin>(
    r: R,
    stream: &'static str,
    log: Arc<Mutex<VecDeque<String>>>,
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
        if log.len() >= TAIL_LINES {
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

fn tail_text(log: &Arc<Mutex<VecDeque<String>>>) -> String {
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

// ---------------------------------------------------------------------------
// /proc (helpers in procs.rs)

pub(crate) fn mem_snapshot(server_pid: u32) -> Result<MemSnapshot> {
    let root = server_pid as i32;
    let server_kib = rss_kib(root).ok_or_else(|| anyhow!("no VmRSS for pid {root}"))?;
    let tree: Vec<TreeEntry> = descendants(root)
        .into_iter()
        .map(|(p, depth)| TreeEntry {
            depth,
            pid: p.pid,
            rss_kib: rss_kib(p.pid).unwrap_or(0),
            comm: crate::procs::label(p.pid, &p.comm),
        })
        .collect();
    // A child of the server is a runner (or, sandboxed, the sandbox's outer
    // process): its own memory counts every process below it that is not a
    // terminal's (the sandbox's init, the runner); shells and what runs in
    // them are "below".
    let mut children: Vec<ChildMem> = Vec::new();
    let mut shell_depth: Option<usize> = None;
    for e in &tree {
        if shell_depth.is_some_and(|d| e.depth <= d) {
            shell_depth = None;
        }
        if e.depth == 1 {
            children.push(ChildMem {
                pid: e.pid,
                comm: e.comm.clone(),
                rss_kib: e.rss_kib,
                below_count: 0,
                below_kib: 0,
            });
        } else if let Some(c) = children.last_mut() {
            let is_shell = crate::procs::TERMINAL_COMMS.contains(&e.comm.as_str());
            if shell_depth.is_some() || is_shell {
                c.below_count += 1;
                c.below_kib += e.rss_kib;
                if shell_depth.is_none() {
                    shell_depth = Some(e.depth);
                }
            } else {
                c.rss_kib += e.rss_kib;
            }
        }
    }
    Ok(MemSnapshot {
        server_kib,
        children,
        tree,
    })
}

// ---------------------------------------------------------------------------
// HTTP

pub(crate) struct HttpResponse {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

impl HttpResponse {
    pub(crate) fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "HTTP {} body is not JSON: {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request with `Connection: close`.
pub(crate) async fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<HttpResponse> {
    http_with(port, method, path, &[], body).await
}

/// Like [`http`] with extra request headers.
pub(crate) async fn http_with(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Result<HttpResponse> {
    let fut = async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
        s.set_nodelay(true)?;
        let body = body.unwrap_or("");
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
             Accept: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        if !body.is_empty() {
            req.push_str("Content-Type: application/json\r\n");
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).await?;
        let mut buf = Vec::new();
        s.take(64 << 20).read_to_end(&mut buf).await?;
        parse_http_response(&buf)
    };
    tokio::time::timeout(REQUEST_TIMEOUT, fut)
        .await
        .map_err(|_| anyhow!("{method} {path}: no answer within {REQUEST_TIMEOUT:?}"))?
        .with_context(|| format!("{method} {path}"))
}

fn parse_http_response(buf: &[u8]) -> Result<HttpResponse> {
    let end = memchr::memmem::find(buf, b"\r\n\r\n").ok_or_else(|| anyhow!("no HTTP header"))?;
    let head = std::str::from_utf8(&buf[..end])?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?;
    let mut chunked = false;
    let mut length = None;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            } else if k == "content-length" {
                length = v.parse::<usize>().ok();
            }
        }
    }
    let rest = &buf[end + 4..];
    let body = if chunked {
        decode_chunked(rest)?
    } else if let Some(n) = length {
        rest.get(..n)
            .ok_or_else(|| anyhow!("body shorter than Content-Length"))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(HttpResponse { status, body })
}

fn decode_chunked(mut b: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for _ in 0..100_000 {
        let eol = memchr::memmem::find(b, b"\r\n").ok_or_else(|| anyhow!("bad chunk"))?;
        let size_str = std::str::from_utf8(&b[..eol])?;
        let size = usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16)?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(b.get(..size).ok_or_else(|| anyhow!("short chunk"))?);
        b = b.get(size + 2..).unwrap_or(&[]);
    }
    bail!("too many chunks")
}

pub(crate) fn json_id(v: &Value) -> Option<String> {
    match v.get("id")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

async fn create_workspace(port: u16, run: &mut CoveRun) -> Result<String> {
    let t = Instant::now();
    let r = http(
        port,
        "POST",
        "/api/workspaces",
        Some(r#"{"name":"bench","template":"blank"}"#),
    )
    .await?;
    run.create_ms = Some(t.elapsed().as_secs_f64() * 1e3);
    if !(200..300).contains(&r.status) {
        bail!(
            "POST /api/workspaces answered {}: {}",
            r.status,
            r.text().trim()
        );
    }
    if r.status != 201 {
        push_note(
            &mut run.notes,
            format!(
                "POST /api/workspaces answered {} instead of 201 (PROTOCOL.md section 0)",
                r.status
            ),
        );
    }
    let v = r.json()?;
    let id = json_id(&v).ok_or_else(|| anyhow!("no `id` in {v}"))?;
    let missing: Vec<&str> = ["id", "name", "template", "state", "owner", "createdAt"]
        .into_iter()
        .filter(|k| v.get(k).is_none())
        .collect();
    if !missing.is_empty() {
        push_note(
            &mut run.notes,
            format!(
                "the workspace JSON of POST /api/workspaces lacks {} (PROTOCOL.md section 0): {v}",
                missing.join(", ")
            ),
        );
    }
    Ok(id)
}

/// `POST .../start`, then polls `GET` until `running` (at most 60 s). Best
/// effort: the sockets start the workspace themselves too.
async fn start_workspace(port: u16, id: &str, run: &mut CoveRun) {
    let t = Instant::now();
    let path = format!("/api/workspaces/{id}/start");
    match http(port, "POST", &path, None).await {
        Ok(r) if r.status == 200 => {}
        Ok(r) => {
            push_note(
                &mut run.notes,
                format!(
                    "POST {path} answered {} (expected 200): {}",
                    r.status,
                    r.text().trim()
                ),
            );
            return;
        }
        Err(e) => {
            push_note(&mut run.notes, format!("POST {path}: {e:#}"));
            return;
        }
    }
    let get = format!("/api/workspaces/{id}");
    let end = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    while Instant::now() < end {
        match http(port, "GET", &get, None).await {
            Ok(r) if r.status == 200 => {
                let state = r
                    .json()
                    .ok()
                    .and_then(|v| v.get("state").and_then(|s| s.as_str()).map(String::from))
                    .unwrap_or_default();
                if state == "running" {
                    run.start_ms = Some(t.elapsed().as_secs_f64() * 1e3);
                    progress(&format!(
                        "cove: workspace {id} running after {:.0} ms",
                        t.elapsed().as_secs_f64() * 1e3
                    ));
                    return;
                }
                if state == "error" {
                    push_note(
                        &mut run.notes,
                        format!("workspace state `error` after start: {}", r.text()),
                    );
                    return;
                }
                last = state;
            }
            Ok(r) => {
                push_note(
                    &mut run.notes,
                    format!("GET {get} answered {}: {}", r.status, r.text().trim()),
                );
                return;
            }
            Err(e) => {
                push_note(&mut run.notes, format!("GET {get}: {e:#}"));
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    push_note(
        &mut run.notes,
        format!("workspace not `running` 60 s after start (last state {last:?})"),
    );
}

// ---------------------------------------------------------------------------
// WebSocket helpers

/// Percent-encodes everything except RFC 3986 unreserved characters.
pub(crate) fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(crate) async fn ws_connect(port: u16, path: &str) -> Result<Ws> {
    let fut = async {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
        tcp.set_nodelay(true)?;
        let url = format!("ws://127.0.0.1:{port}{path}");
        let (ws, _resp) = tokio_tungstenite::client_async(url, Net::new(tcp)).await?;
        anyhow::Ok(ws)
    };
    tokio::time::timeout(REQUEST_TIMEOUT, fut)
        .await
        .map_err(|_| anyhow!("WebSocket {path}: no handshake within {REQUEST_TIMEOUT:?}"))?
        .with_context(|| format!("WebSocket {path}"))
}

/// The next data message (text or binary) before `deadline`; `None` on
/// timeout. A close or an error is an error.
pub(crate) async fn next_msg(ws: &mut Ws, deadline: Instant) -> Result<Option<Message>> {
    loop {
        let d = tokio::time::Instant::from_std(deadline);
        match timeout_at(d, ws.next()).await {
            Err(_) => return Ok(None),
            Ok(None) => bail!("the socket ended"),
            Ok(Some(Err(e))) => return Err(e).context("socket error"),
            Ok(Some(Ok(m))) => match m {
                Message::Text(_) | Message::Binary(_) => return Ok(Some(m)),
                Message::Close(f) => bail!("the server closed the socket: {f:?}"),
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            },
        }
    }
}

pub(crate) async fn ws_send(ws: &mut Ws, m: Message) -> Result<()> {
    tokio::time::timeout(REQUEST_TIMEOUT, ws.send(m))
        .await
        .map_err(|_| anyhow!("send timed out"))?
        .context("send")
}

pub(crate) async fn ws_close(mut ws: Ws) {
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
}

pub(crate) fn text_json(m: &Message) -> Option<Value> {
    match m {
        Message::Text(t) => serde_json::from_str(t.as_str()).ok(),
        _ => None,
    }
}

pub(crate) fn msg_type(v: &Value) -> &str {
    v.get("type").and_then(|t| t.as_str()).unwrap_or("")
}

// ---------------------------------------------------------------------------
// Raw terminal socket (PROTOCOL.md section 2)

pub(crate) fn raw_path(id: &str, tid: &str, command: &str) -> String {
    format!(
        "/api/workspaces/{}/terminals/{}/ws?cols={COLS}&rows={ROWS}&command={}",
        urlencode(id),
        urlencode(tid),
        urlencode(command)
    )
}

/// Waits for the first message, which must be the `attached` text frame.
/// Returns binary bytes that came instead (a protocol departure) so the
/// caller can still use them.
pub(crate) async fn expect_attached(ws: &mut Ws, notes: &mut Vec<String>) -> Result<Value> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let m = next_msg(ws, deadline)
        .await?
        .ok_or_else(|| anyhow!("no `attached` message within {REQUEST_TIMEOUT:?}"))?;
    match text_json(&m) {
        Some(v) if msg_type(&v) == "attached" => {
            let missing: Vec<&str> = ["offset", "cols", "rows"]
                .into_iter()
                .filter(|k| v.get(k).and_then(|x| x.as_u64()).is_none())
                .collect();
            if !missing.is_empty() {
                push_note(
                    notes,
                    format!(
                        "raw socket: `attached` lacks numeric {} (PROTOCOL.md section 2): {v}",
                        missing.join(", ")
                    ),
                );
            }
            Ok(v)
        }
        _ => {
            push_note(
                notes,
                format!(
                    "raw socket: the first message is not the `attached` text frame \
                     (PROTOCOL.md section 2) but {}",
                    describe(&m)
                ),
            );
            Ok(Value::Null)
        }
    }
}

pub(crate) fn describe(m: &Message) -> String {
    match m {
        Message::Text(t) => format!("text {:?}", truncate(t.as_str(), 200)),
        Message::Binary(b) => format!("binary {:?}", truncate(&String::from_utf8_lossy(b), 200)),
        other => format!("{other:?}"),
    }
}

pub(crate) fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Reads until output has come and then nothing for `quiet` (the prompt is
/// out), or until `max`. With `need_output == false`, only waits for quiet.
async fn raw_settle(ws: &mut Ws, quiet: Duration, max: Duration, need_output: bool) -> Result<u64> {
    let end = Instant::now() + max;
    let mut seen = !need_output;
    let mut bytes = 0u64;
    loop {
        let now = Instant::now();
        if now >= end {
            return Ok(bytes);
        }
        let deadline = if seen { (now + quiet).min(end) } else { end };
        match next_msg(ws, deadline).await? {
            None => return Ok(bytes),
            Some(Message::Binary(b)) => {
                bytes += b.len() as u64;
                seen = true;
            }
            Some(m) => {
                if let Some(v) = text_json(&m)
                    && msg_type(&v) == "exit"
                {
                    bail!("the terminal exited: {v}");
                }
            }
        }
    }
}

async fn raw_throughput_run(
    port: u16,
    id: &str,
    tid: &str,
    payload: u64,
    notes: &mut Vec<String>,
) -> Result<RunStat> {
    let mut ws = ws_connect(port, &raw_path(id, tid, SHELL_COMMAND)).await?;
    expect_attached(&mut ws, notes).await?;
    raw_settle(
        &mut ws,
        Duration::from_millis(200),
        Duration::from_secs(15),
        true,
    )
    .await?;
    let mut line = throughput_command(payload).into_bytes();
    line.push(b'\n');
    let mut scanner = MarkerScanner::new(MARKER);
    let mut received = 0u64;
    let mut frames = 0u64;
    let start = Instant::now();
    let deadline = start + RUN_TIMEOUT;
    ws_send(&mut ws, Message::binary(line)).await?;
    loop {
        match next_msg(&mut ws, deadline).await? {
            None => bail!(
                "timed out after {:?} ({received} bytes in {frames} frames, no marker)",
                RUN_TIMEOUT
            ),
            Some(Message::Binary(b)) => {
                received += b.len() as u64;
                frames += 1;
                if scanner.feed(&b) {
                    break;
                }
            }
            Some(m) => {
                if let Some(v) = text_json(&m)
                    && msg_type(&v) == "exit"
                {
                    bail!("the terminal exited during the run: {v}");
                }
            }
        }
    }
    let stat = RunStat {
        secs: start.elapsed().as_secs_f64(),
        received,
        chunks: frames,
    };
    // End the shell; the server should send `exit` and close with 1000.
    let t = Instant::now();
    let _ = ws_send(&mut ws, Message::binary(b"exit\n".to_vec())).await;
    let (exit, close) = wait_exit_and_close(&mut ws, Duration::from_secs(5)).await;
    match (&exit, &close) {
        (Some(_), Some(Some(1000))) => progress(&format!(
            "cove raw: shell exited, `exit` + close 1000 after {:.0} ms",
            t.elapsed().as_secs_f64() * 1e3
        )),
        _ => push_note(
            notes,
            format!(
                "raw socket: after `exit` was typed into the shell: `exit` frame {}, close {} \
                 within 5 s (PROTOCOL.md section 2 wants the `exit` text frame, then a close \
                 with code 1000)",
                match &exit {
                    Some(v) => format!("received ({v})"),
                    None => "missing".into(),
                },
                match close {
                    Some(Some(c)) => format!("with code {c}"),
                    Some(None) => "without a code (or the connection just ended)".into(),
                    None => "missing".into(),
                }
            ),
        ),
    }
    ws_close(ws).await;
    Ok(stat)
}

/// Reads until the `exit` text frame and the close of the socket (or the
/// timeout). Returns the `exit` message and the close code (`Some(None)`
/// when the socket ended without a close frame or code).
async fn wait_exit_and_close(
    ws: &mut Ws,
    timeout: Duration,
) -> (Option<Value>, Option<Option<u16>>) {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut exit = None;
    loop {
        match timeout_at(deadline, ws.next()).await {
            Err(_) => return (exit, None),
            Ok(None) | Ok(Some(Err(_))) => return (exit, Some(None)),
            Ok(Some(Ok(Message::Close(f)))) => {
                return (exit, Some(f.map(|f| u16::from(f.code))));
            }
            Ok(Some(Ok(m))) => {
                if let Some(v) = text_json(&m)
                    && msg_type(&v) == "exit"
                {
                    exit = Some(v);
                }
            }
        }
    }
}

async fn raw_echo(port: u16, id: &str, samples: usize, notes: &mut Vec<String>) -> Result<Latency> {
    let mut ws = ws_connect(port, &raw_path(id, "be", ECHO_COMMAND)).await?;
    expect_attached(&mut ws, notes).await?;
    // Let `stty raw -echo` run, then check that bytes come back.
    raw_settle(
        &mut ws,
        Duration::from_millis(300),
        Duration::from_secs(5),
        false,
    )
    .await?;
    let mut ready = false;
    for _ in 0..20 {
        ws_send(&mut ws, Message::binary(b"r".to_vec())).await?;
        let end = Instant::now() + Duration::from_millis(250);
        while let Some(m) = next_msg(&mut ws, end).await? {
            if let Message::Binary(b) = &m
                && b.contains(&b'r')
            {
                ready = true;
                break;
            }
        }
        if ready {
            break;
        }
    }
    if !ready {
        bail!("the echo terminal (`{ECHO_COMMAND}`) never echoed a byte within 5 s");
    }
    raw_settle(
        &mut ws,
        Duration::from_millis(200),
        Duration::from_secs(5),
        false,
    )
    .await?;
    let frames: Vec<Message> = (0..26u8).map(|i| Message::binary(vec![b'a' + i])).collect();
    let mut times = Vec::with_capacity(samples);
    for i in 0..ECHO_WARMUP + samples {
        let byte = b'a' + (i % 26) as u8;
        let start = Instant::now();
        let deadline = start + ECHO_TIMEOUT;
        ws.send(frames[i % 26].clone()).await.context("send")?;
        loop {
            match next_msg(&mut ws, deadline).await? {
                None => bail!("echo sample {i}: no answer within {ECHO_TIMEOUT:?}"),
                Some(Message::Binary(b)) if b.contains(&byte) => break,
                Some(_) => {}
            }
        }
        if i >= ECHO_WARMUP {
            times.push(start.elapsed());
        }
    }
    ws_close(ws).await;
    Latency::from_durations(&times).ok_or_else(|| anyhow!("no samples"))
}

// ---------------------------------------------------------------------------
// JSON control socket (PROTOCOL.md section 1)

/// Connects and reads the `welcome` message.
pub(crate) async fn ctl_connect(port: u16, id: &str, notes: &mut Vec<String>) -> Result<Ws> {
    let mut ws = ws_connect(port, &format!("/api/workspaces/{}/ws", urlencode(id))).await?;
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let m = next_msg(&mut ws, deadline)
        .await?
        .ok_or_else(|| anyhow!("no `welcome` within {REQUEST_TIMEOUT:?}"))?;
    match text_json(&m) {
        Some(v) if msg_type(&v) == "welcome" => {
            if v.get("protocol").and_then(|p| p.as_u64()) != Some(1) {
                push_note(
                    notes,
                    format!("JSON socket: `welcome` lacks `protocol: 1`: {v}"),
                );
            }
        }
        _ => push_note(
            notes,
            format!(
                "JSON socket: the first message is not `welcome` (PROTOCOL.md section 1) but {}",
                describe(&m)
            ),
        ),
    }
    Ok(ws)
}

pub(crate) async fn ctl_send(ws: &mut Ws, v: Value) -> Result<()> {
    ws_send(ws, Message::text(v.to_string())).await
}

/// Waits for a JSON message accepted by `want`; an `error` message is an
/// error. Other messages are skipped.
pub(crate) async fn ctl_wait(
    ws: &mut Ws,
    timeout: Duration,
    what: &str,
    mut want: impl FnMut(&Value) -> bool,
) -> Result<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let m = next_msg(ws, deadline)
            .await?
            .ok_or_else(|| anyhow!("no {what} within {timeout:?}"))?;
        let Some(v) = text_json(&m) else {
            continue;
        };
        if msg_type(&v) == "error" {
            bail!("error reply while waiting for {what}: {v}");
        }
        if want(&v) {
            return Ok(v);
        }
    }
}

pub(crate) fn is_for(v: &Value, ty: &str, tid: &str) -> bool {
    msg_type(v) == ty && v.get("terminalId").and_then(|t| t.as_str()) == Some(tid)
}

pub(crate) async fn ctl_create_terminal(ws: &mut Ws, tid: &str, command: &str) -> Result<()> {
    ctl_send(
        ws,
        json!({"type": "create_terminal", "payload": {
            "terminalId": tid, "cols": COLS, "rows": ROWS, "command": command}}),
    )
    .await?;
    ctl_wait(ws, REQUEST_TIMEOUT, "terminal_created", |v| {
        is_for(v, "terminal_created", tid)
    })
    .await?;
    Ok(())
}

/// Like [`raw_settle`] for `terminal_output` of `tid`.
async fn ctl_settle(
    ws: &mut Ws,
    tid: &str,
    quiet: Duration,
    max: Duration,
    need_output: bool,
) -> Result<()> {
    let end = Instant::now() + max;
    let mut seen = !need_output;
    loop {
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        let deadline = if seen { (now + quiet).min(end) } else { end };
        match next_msg(ws, deadline).await? {
            None => return Ok(()),
            Some(m) => {
                if let Some(v) = text_json(&m) {
                    if is_for(&v, "terminal_output", tid) {
                        seen = true;
                    } else if is_for(&v, "terminal_exit", tid) {
                        bail!("the terminal exited: {v}");
                    }
                }
            }
        }
    }
}

pub(crate) async fn ctl_close_terminal(ws: &mut Ws, tid: &str) -> Result<()> {
    ctl_send(
        ws,
        json!({"type": "close_terminal", "payload": {"terminalId": tid}}),
    )
    .await?;
    ctl_wait(ws, Duration::from_secs(5), "terminal_exit", |v| {
        is_for(v, "terminal_exit", tid)
    })
    .await?;
    Ok(())
}

async fn json_throughput_run(
    port: u16,
    id: &str,
    tid: &str,
    payload: u64,
    notes: &mut Vec<String>,
) -> Result<RunStat> {
    let mut ws = ctl_connect(port, id, notes).await?;
    ctl_create_terminal(&mut ws, tid, SHELL_COMMAND).await?;
    ctl_settle(
        &mut ws,
        tid,
        Duration::from_millis(200),
        Duration::from_secs(15),
        true,
    )
    .await?;
    let input = json!({"type": "terminal_input", "payload": {
        "terminalId": tid, "input": format!("{}\n", throughput_command(payload))}})
    .to_string();
    let mut scanner = MarkerScanner::new(MARKER);
    let mut received = 0u64;
    let mut messages = 0u64;
    let start = Instant::now();
    let deadline = start + RUN_TIMEOUT;
    ws_send(&mut ws, Message::text(input)).await?;
    loop {
        let m = match next_msg(&mut ws, deadline).await? {
            None => bail!(
                "timed out after {:?} ({received} bytes in {messages} messages, no marker)",
                RUN_TIMEOUT
            ),
            Some(m) => m,
        };
        let Message::Text(t) = &m else {
            push_note(
                notes,
                "JSON socket: a binary frame arrived (section 1 uses text frames only)".into(),
            );
            continue;
        };
        let v: Value = serde_json::from_str(t.as_str()).context("bad JSON from the server")?;
        match msg_type(&v) {
            "terminal_output" if v.get("terminalId").and_then(|x| x.as_str()) == Some(tid) => {
                let data = v
                    .get("data")
                    .and_then(|d| d.as_str())
                    .ok_or_else(|| anyhow!("terminal_output without string `data`"))?;
                received += data.len() as u64;
                messages += 1;
                if scanner.feed(data.as_bytes()) {
                    break;
                }
            }
            "terminal_exit" if v.get("terminalId").and_then(|x| x.as_str()) == Some(tid) => {
                bail!("the terminal exited during the run: {v}")
            }
            "error" => bail!("error from the server during the run: {v}"),
            _ => {}
        }
    }
    let stat = RunStat {
        secs: start.elapsed().as_secs_f64(),
        received,
        chunks: messages,
    };
    if let Err(e) = ctl_close_terminal(&mut ws, tid).await {
        push_note(notes, format!("JSON socket: close_terminal {tid}: {e:#}"));
    }
    ws_close(ws).await;
    Ok(stat)
}

async fn json_echo(
    port: u16,
    id: &str,
    samples: usize,
    notes: &mut Vec<String>,
) -> Result<Latency> {
    let tid = "bje";
    let mut ws = ctl_connect(port, id, notes).await?;
    ctl_create_terminal(&mut ws, tid, ECHO_COMMAND).await?;
    ctl_settle(
        &mut ws,
        tid,
        Duration::from_millis(300),
        Duration::from_secs(5),
        false,
    )
    .await?;
    let inputs: Vec<Message> = (0..27u8)
        .map(|i| {
            let c = if i == 26 { 'r' } else { (b'a' + i) as char };
            Message::text(
                json!({"type": "terminal_input", "payload": {
                "terminalId": tid, "input": c.to_string()}})
                .to_string(),
            )
        })
        .collect();
    let output_has = |m: &Message, c: char| -> Result<bool> {
        let Some(v) = text_json(m) else {
            return Ok(false);
        };
        if msg_type(&v) == "error" {
            bail!("error from the server: {v}");
        }
        Ok(is_for(&v, "terminal_output", tid)
            && v.get("data")
                .and_then(|d| d.as_str())
                .is_some_and(|d| d.contains(c)))
    };
    let mut ready = false;
    for _ in 0..20 {
        ws_send(&mut ws, inputs[26].clone()).await?;
        let end = Instant::now() + Duration::from_millis(250);
        while let Some(m) = next_msg(&mut ws, end).await? {
            if output_has(&m, 'r')? {
                ready = true;
                break;
            }
        }
        if ready {
            break;
        }
    }
    if !ready {
        bail!("the echo terminal (`{ECHO_COMMAND}`) never echoed a character within 5 s");
    }
    ctl_settle(
        &mut ws,
        tid,
        Duration::from_millis(200),
        Duration::from_secs(5),
        false,
    )
    .await?;
    let mut times = Vec::with_capacity(samples);
    for i in 0..ECHO_WARMUP + samples {
        let c = (b'a' + (i % 26) as u8) as char;
        let start = Instant::now();
        let deadline = start + ECHO_TIMEOUT;
        ws.send(inputs[i % 26].clone()).await.context("send")?;
        loop {
            match next_msg(&mut ws, deadline).await? {
                None => bail!("echo sample {i}: no answer within {ECHO_TIMEOUT:?}"),
                Some(m) if output_has(&m, c)? => break,
                Some(_) => {}
            }
        }
        if i >= ECHO_WARMUP {
            times.push(start.elapsed());
        }
    }
    if let Err(e) = ctl_close_terminal(&mut ws, tid).await {
        push_note(notes, format!("JSON socket: close_terminal {tid}: {e:#}"));
    }
    ws_close(ws).await;
    Latency::from_durations(&times).ok_or_else(|| anyhow!("no samples"))
}

/// Closes every terminal the bench left, opens one idle shell, and measures
/// the RSS of the server and its children while it is open.
async fn idle_memory(
    server_pid: u32,
    port: u16,
    id: &str,
    notes: &mut Vec<String>,
) -> Result<MemSnapshot> {
    let mut ws = ctl_connect(port, id, notes).await?;
    ctl_send(&mut ws, json!({"type": "list_terminals", "payload": {}})).await?;
    match ctl_wait(&mut ws, REQUEST_TIMEOUT, "terminals", |v| {
        msg_type(v) == "terminals"
    })
    .await
    {
        Ok(v) => {
            let list = v
                .get("terminals")
                .and_then(|t| t.as_array())
                .cloned()
                .unwrap_or_default();
            for t in list {
                let alive = t.get("alive").and_then(|a| a.as_bool()).unwrap_or(true);
                if let Some(tid) = t.get("terminalId").and_then(|x| x.as_str())
                    && alive
                    && let Err(e) = ctl_close_terminal(&mut ws, tid).await
                {
                    push_note(notes, format!("JSON socket: close_terminal {tid}: {e:#}"));
                }
            }
        }
        Err(e) => push_note(notes, format!("JSON socket: list_terminals: {e:#}")),
    }
    ctl_create_terminal(&mut ws, "idle", SHELL_COMMAND).await?;
    ctl_settle(
        &mut ws,
        "idle",
        Duration::from_millis(300),
        Duration::from_secs(10),
        true,
    )
    .await?;
    // Let allocators settle a little, then measure.
    ctl_settle(
        &mut ws,
        "idle",
        Duration::from_secs(1),
        Duration::from_secs(1),
        false,
    )
    .await?;
    let snap = mem_snapshot(server_pid)?;
    ws_close(ws).await;
    Ok(snap)
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

    #[test]
    fn url_encoding() {
        assert_eq!(
            urlencode("bash --norc --noprofile -i"),
            "bash%20--norc%20--noprofile%20-i"
        );
        assert_eq!(
            urlencode("stty raw -echo; exec cat"),
            "stty%20raw%20-echo%3B%20exec%20cat"
        );
    }

    #[test]
    fn http_parsing() {
        let r = parse_http_response(b"HTTP/1.1 201 Created\r\ncontent-length: 8\r\n\r\n{\"id\":1}")
            .unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(json_id(&r.json().unwrap()).as_deref(), Some("1"));
        let r = parse_http_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab\r\n\r\n2\r\ncd\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, b"ab\r\ncd");
    }
}
