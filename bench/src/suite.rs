//! The comparison: cove and each peer, plus the bare PTY, measured by the
//! same client code ([`crate::measure`], [`crate::load`]).
//!
//! Three phases, each on a fresh server:
//! 1. *figures*: time from a new-terminal request to its prompt, output
//!    throughput (long lines), keystroke echo latency;
//! 2. *load*: server memory idle and with 100 and 1,000 open idle terminals
//!    (a liveness check of every terminal at the end), then keystroke echo
//!    while 500 of them each type 10 keystrokes a second;
//! 3. *slow reader*: server memory while one client reads 64 KiB/s of a
//!    flood.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};

use crate::cove;
use crate::load::{Fleet, Phase, Probe, SlowFigures, slow_reader};
use crate::measure::{echo, prompt_latency, throughput_run};
use crate::peers::{Installed, Peer, PeerProc};
use crate::procs::{self, OwnMem};
use crate::stats::Latency;
use crate::term::{Target, cove_workspace};
use crate::{RUN_TIMEOUT, RunStat, progress};

/// Settings of a comparison run.
#[derive(Debug, Clone)]
pub(crate) struct SuiteConf {
    pub cove: Option<PathBuf>,
    pub serve_args: Vec<String>,
    pub scratch: PathBuf,
    pub peers: Vec<Peer>,
    pub install: bool,
    pub bytes: u64,
    pub runs: u32,
    pub echo_samples: u32,
    pub prompt_samples: u32,
    /// Terminal counts at which memory is read (e.g. 100, 1000).
    pub steps: Vec<usize>,
    pub active: usize,
    pub rate: f64,
    pub active_secs: f64,
    pub slow_secs: f64,
    pub slow_rate: u64,
}

/// Figures of one client path (one row of the main table).
#[derive(Debug)]
pub(crate) struct PathRow {
    pub name: String,
    pub throughput: Result<Vec<RunStat>, String>,
    pub echo: Result<Latency, String>,
    pub prompt: Result<Latency, String>,
}

impl PathRow {
    fn not_measured(name: &str, why: &str) -> Self {
        Self {
            name: name.to_string(),
            throughput: Err(why.to_string()),
            echo: Err(why.to_string()),
            prompt: Err(why.to_string()),
        }
    }

    pub(crate) fn mbps(&self, payload: u64) -> Option<f64> {
        let runs = self.throughput.as_ref().ok()?;
        let t: Vec<f64> = runs.iter().map(|r| r.secs).collect();
        let m = crate::stats::median(&t)?;
        (m > 0.0).then(|| payload as f64 / 1e6 / m)
    }
}

/// Memory at one step of the load.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub terminals: usize,
    pub opened: usize,
    pub failed: usize,
    pub open_secs: f64,
    pub mem: Result<OwnMem, String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Active {
    pub terminals: usize,
    pub latency: Latency,
    pub secs: f64,
    pub keys: u64,
    pub mem_before: Option<OwnMem>,
    pub mem_after: Option<OwnMem>,
}

/// Figures of one server (memory, load).
#[derive(Debug)]
pub(crate) struct ServerRow {
    pub name: String,
    pub not_measured: Option<String>,
    pub idle: Result<OwnMem, String>,
    pub steps: Vec<Step>,
    pub held_errors: Vec<String>,
    pub held_error_count: usize,
    pub lost: usize,
    pub check: Option<(usize, usize)>,
    pub open_ms: Option<Latency>,
    pub active: Result<Active, String>,
    pub notes: Vec<String>,
}

impl ServerRow {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            not_measured: None,
            idle: Err("not measured".into()),
            steps: Vec::new(),
            held_errors: Vec::new(),
            held_error_count: 0,
            lost: 0,
            check: None,
            open_ms: None,
            active: Err("not measured".into()),
            notes: Vec::new(),
        }
    }

    /// KiB per terminal between the first and the last step (or idle and
    /// the only step).
    pub(crate) fn per_terminal_kib(&self) -> Option<f64> {
        let ok: Vec<(usize, u64)> = self
            .steps
            .iter()
            .filter_map(|s| s.mem.as_ref().ok().map(|m| (s.opened, m.kib)))
            .collect();
        match ok.as_slice() {
            [] => None,
            [(n, k)] => {
                let idle = self.idle.as_ref().ok()?.kib;
                (*n > 0).then(|| (*k as f64 - idle as f64) / *n as f64)
            }
            [first, .., last] => {
                let dn = last.0 as f64 - first.0 as f64;
                (dn > 0.0).then(|| (last.1 as f64 - first.1 as f64) / dn)
            }
        }
    }

    /// Whether every requested terminal opened, stayed and answered.
    pub(crate) fn held_all(&self) -> Option<(usize, usize, bool)> {
        let last = self.steps.last()?;
        let (ok, failed) = self.check.unwrap_or((0, 0));
        let clean = last.failed == 0 && self.lost == 0 && failed == 0 && ok == last.opened;
        Some((last.terminals, last.opened, clean))
    }
}

/// The installs of the peers.
#[derive(Debug)]
pub(crate) struct InstallRow {
    pub peer: Peer,
    pub result: Result<Installed, String>,
}

/// Everything one comparison produced.
#[derive(Debug, Default)]
pub(crate) struct SuiteResults {
    pub installs: Vec<InstallRow>,
    pub paths: Vec<PathRow>,
    pub servers: Vec<ServerRow>,
    pub slow: Vec<Result<SlowFigures, (String, String)>>,
    pub notes: Vec<String>,
    /// (phase, seconds).
    pub phase_secs: Vec<(String, f64)>,
    pub code_server_terminal: Option<String>,
    /// The `cove-bench terminal` report, when run.
    pub terminal_details: Option<String>,
}

// ---------------------------------------------------------------------------
// Servers

/// A server started for one phase.
pub(crate) enum Srv {
    Cove { server: cove::Server, ws: String },
    Peer(PeerProc),
}

/// Limits the bench raises so that one workspace can hold 1,000 shells and
/// use the whole machine, as the peers (which have no limits) can: each is
/// added unless given with --serve-arg, and only if this `cove serve` has it.
pub(crate) const COVE_LIMITS: &[(&str, &str)] = &[
    ("--max-terminals", "2000"),
    ("--pids-limit", "4096"),
    ("--memory-limit-mib", "16384"),
    ("--cpu-limit", "2"),
];

/// `cove serve` arguments: the user's, plus [`COVE_LIMITS`] not given.
pub(crate) fn cove_serve_args(bin: &Path, user: &[String]) -> Vec<String> {
    let help = std::process::Command::new(bin)
        .args(["serve", "--help"])
        .stdin(std::process::Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let mut args = user.to_vec();
    for (flag, value) in COVE_LIMITS {
        let given = user
            .iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")));
        if !given && help.contains(flag) {
            args.push(flag.to_string());
            args.push(value.to_string());
        }
    }
    args
}

impl Srv {
    /// Starts cove with exactly `serve_args` (see [`cove_serve_args`]) and
    /// creates the workspace `bench`.
    pub(crate) async fn start_cove(bin: &Path, serve_args: &[String]) -> Result<Self> {
        let server = cove::Server::start(bin, serve_args).await?;
        let ws = match cove_workspace(server.port, "bench").await {
            Ok(ws) => ws,
            Err(e) => {
                let _ = server.shutdown().await;
                return Err(e);
            }
        };
        Ok(Srv::Cove { server, ws })
    }

    pub(crate) async fn start_peer(inst: &Installed) -> Result<Self> {
        Ok(Srv::Peer(PeerProc::start(inst).await?))
    }

    pub(crate) fn pid(&self) -> i32 {
        match self {
            Srv::Cove { server, .. } => server.pid as i32,
            Srv::Peer(p) => p.pid,
        }
    }

    /// The client paths into this server.
    pub(crate) fn targets(&self) -> Vec<Target> {
        match self {
            Srv::Cove { server, ws } => vec![
                Target::CoveRaw {
                    port: server.port,
                    ws: ws.clone(),
                },
                Target::CoveJson {
                    port: server.port,
                    ws: ws.clone(),
                },
            ],
            Srv::Peer(p) => match p.peer {
                Peer::Jupyter => vec![Target::Jupyter {
                    port: p.port,
                    token: p.token.clone(),
                }],
                Peer::Wetty => vec![Target::Wetty { port: p.port }],
                Peer::CodeServer => vec![],
            },
        }
    }

    pub(crate) async fn stop(self) -> Vec<String> {
        match self {
            Srv::Cove { server, .. } => server.shutdown().await,
            Srv::Peer(p) => p.stop().await,
        }
    }
}

/// Which servers take part: cove (when given) and the installed peers.
enum Who {
    Cove(PathBuf),
    Peer(Installed),
}

fn who(conf: &SuiteConf, installs: &[InstallRow]) -> Vec<(String, Result<Who, String>)> {
    let mut v = Vec::new();
    v.push((
        "cove".to_string(),
        conf.cove
            .clone()
            .map(Who::Cove)
            .ok_or_else(|| "no cove binary given (--cove PATH)".to_string()),
    ));
    for i in installs {
        v.push((
            i.peer.title().to_string(),
            i.result
                .clone()
                .map(Who::Peer)
                .map_err(|e| format!("not installed: {e}")),
        ));
    }
    v
}

async fn start(w: &Who, conf: &SuiteConf) -> Result<Srv> {
    match w {
        Who::Cove(bin) => Srv::start_cove(bin, &conf.serve_args).await,
        Who::Peer(inst) => Srv::start_peer(inst).await,
    }
}

// ---------------------------------------------------------------------------
// Installs

pub(crate) fn install_peers(conf: &SuiteConf, res: &mut SuiteResults) {
    for &peer in &conf.peers {
        let result = crate::peers::ensure(peer, &conf.scratch, conf.install).map_err(|e| {
            let msg = format!("{e:#}");
            progress(&format!("{}: not installed: {msg}", peer.title()));
            msg
        });
        if let Ok(i) = &result {
            progress(&format!(
                "{}: {} ({})",
                peer.title(),
                i.versions_text(),
                if i.cached {
                    format!("cached; first install took {:.0} s", i.install_secs)
                } else {
                    format!("installed in {:.0} s", i.install_secs)
                }
            ));
        }
        res.installs.push(InstallRow { peer, result });
    }
}

// ---------------------------------------------------------------------------
// Phase 1: single-terminal figures

async fn path_figures(t: &Target, conf: &SuiteConf, tag: &str) -> PathRow {
    let name = t.name();
    progress(&format!(
        "{name}: time to prompt ({} terminals)",
        conf.prompt_samples
    ));
    let prompt = prompt_latency(t, conf.prompt_samples as usize, &format!("{tag}p"))
        .await
        .map_err(|e| format!("{e:#}"));
    if let Ok(l) = &prompt {
        progress(&format!(
            "{name}: prompt p50 {:.1} ms, p99 {:.1} ms",
            l.p50 / 1e3,
            l.p99 / 1e3
        ));
    }
    let mut runs = Vec::new();
    let mut err = None;
    for i in 0..conf.runs {
        match throughput_run(t, &format!("{tag}t{i}"), conf.bytes, RUN_TIMEOUT).await {
            Ok(r) => {
                progress(&format!(
                    "{name}: throughput run {}/{}: {:.2} s, {:.1} MB/s, {} messages",
                    i + 1,
                    conf.runs,
                    r.secs,
                    conf.bytes as f64 / 1e6 / r.secs,
                    r.chunks
                ));
                runs.push(r);
            }
            Err(e) => {
                progress(&format!("{name}: throughput failed: {e:#}"));
                err = Some(format!("run {}: {e:#}", i + 1));
                break;
            }
        }
    }
    let echo = echo(t, &format!("{tag}e"), conf.echo_samples as usize)
        .await
        .map_err(|e| format!("{e:#}"));
    match &echo {
        Ok(l) => progress(&format!(
            "{name}: echo p50 {:.1} µs, p99 {:.1} µs",
            l.p50, l.p99
        )),
        Err(e) => progress(&format!("{name}: echo failed: {e}")),
    }
    PathRow {
        name: name.to_string(),
        throughput: match err {
            Some(e) => Err(e),
            None => Ok(runs),
        },
        echo,
        prompt,
    }
}

pub(crate) async fn run_figures(conf: &SuiteConf, res: &mut SuiteResults) {
    let t0 = Instant::now();
    res.paths
        .push(path_figures(&Target::Bare, conf, "bare").await);
    let list = who(conf, &res.installs);
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for (name, w) in list {
        let w = match w {
            Ok(w) => w,
            Err(e) => {
                if name == "cove" {
                    rows.push(PathRow::not_measured("cove raw socket", &e));
                    rows.push(PathRow::not_measured("cove JSON socket", &e));
                } else if name != Peer::CodeServer.title() {
                    rows.push(PathRow::not_measured(&name, &e));
                }
                continue;
            }
        };
        if let Who::Peer(i) = &w
            && i.peer == Peer::CodeServer
        {
            continue; // terminal not driven: see code_server_terminal
        }
        progress(&format!("{name}: starting (figures)"));
        let srv = match start(&w, conf).await {
            Ok(s) => s,
            Err(e) => {
                let why = format!("did not start: {e:#}");
                progress(&format!("{name}: {why}"));
                if name == "cove" {
                    rows.push(PathRow::not_measured("cove raw socket", &why));
                    rows.push(PathRow::not_measured("cove JSON socket", &why));
                } else {
                    rows.push(PathRow::not_measured(&name, &why));
                }
                continue;
            }
        };
        for (k, t) in srv.targets().iter().enumerate() {
            rows.push(path_figures(t, conf, &format!("f{k}")).await);
        }
        notes.extend(srv.stop().await);
    }
    res.paths.extend(rows);
    res.notes.extend(notes);
    res.phase_secs
        .push(("figures".into(), t0.elapsed().as_secs_f64()));
}

// ---------------------------------------------------------------------------
// Phase 2: memory with many terminals, echo under load

async fn mem_after_settle(pid: i32, settle: Duration) -> Result<OwnMem, String> {
    tokio::time::sleep(settle).await;
    procs::own_memory(pid).ok_or_else(|| format!("no /proc/{pid}"))
}

async fn load_one(conf: &SuiteConf, srv: Option<&Srv>, target: Target, row: &mut ServerRow) {
    let pid = srv.map(|s| s.pid());
    if let Some(pid) = pid {
        row.idle = mem_after_settle(pid, Duration::from_secs(2)).await;
        if let Ok(m) = &row.idle {
            progress(&format!(
                "{}: idle {:.1} MiB ({})",
                row.name,
                m.mib(),
                m.describe()
            ));
        }
    } else {
        row.idle = Err("no server".into());
    }
    let mut fleet = match Fleet::start(target.clone(), conf.active, conf.rate) {
        Ok(f) => f,
        Err(e) => {
            row.active = Err(format!("fleet: {e:#}"));
            return;
        }
    };
    // Bare PTY: no server memory to read; only the load baseline.
    let steps: Vec<usize> = if pid.is_some() {
        conf.steps.clone()
    } else {
        vec![conf.active]
    };
    for &n in &steps {
        progress(&format!("{}: opening terminals up to {n}", row.name));
        let limit = Duration::from_secs(30 + n as u64 / 5);
        let secs = match fleet.grow_to(n, limit).await {
            Ok(s) => s,
            Err(e) => {
                row.notes.push(format!("{e:#}"));
                limit.as_secs_f64()
            }
        };
        let opened = fleet.stats.opened.load(Ordering::Relaxed);
        let failed = fleet.stats.failed.load(Ordering::Relaxed);
        let mem = match pid {
            Some(pid) => mem_after_settle(pid, Duration::from_secs(2)).await,
            None => Err("no server".into()),
        };
        progress(&format!(
            "{}: {opened} open, {failed} failed in {secs:.1} s{}",
            row.name,
            match &mem {
                Ok(m) => format!(
                    "; server {:.1} MiB ({}), shells {} = {:.1} MiB",
                    m.mib(),
                    m.describe(),
                    m.shells,
                    m.shells_kib as f64 / 1024.0
                ),
                Err(_) => String::new(),
            }
        ));
        row.steps.push(Step {
            terminals: n,
            opened,
            failed,
            open_secs: secs,
            mem,
        });
    }
    // The same terminals after longer idle: cove's runner puts the screens of terminals with
    // no use for 10 s to sleep (their grids dropped, their dump kept; checked every 5 s).
    let opened = row.steps.last().map(|s| s.opened).unwrap_or(0).max(1);
    if let (Some(pid), Ok(idle)) = (pid, &row.idle) {
        let last = opened;
        let asleep = mem_after_settle(pid, Duration::from_secs(25)).await;
        if let Ok(m) = asleep {
            let per = (m.kib.saturating_sub(idle.kib)) as f64 / last as f64;
            progress(&format!(
                "{}: after 25 s more of idle, server {:.1} MiB: {per:.1} KiB per terminal",
                row.name,
                m.mib()
            ));
            row.notes.push(format!(
                "after 25 s more of idle: {:.1} MiB, (RSS − idle RSS) / {last} = {per:.1} KiB per terminal",
                m.mib()
            ));
        }
    }
    // Echo while `active` terminals type.
    let active = conf.active.min(fleet.stats.opened.load(Ordering::Relaxed));
    row.active = async {
        let mut probe = Probe::open(&target, "probe").await?;
        let mem_before = pid.and_then(procs::own_memory);
        let keys0 = fleet.stats.keys.load(Ordering::Relaxed);
        fleet.set_phase(Phase::Active);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let t = Instant::now();
        let k1 = fleet.stats.keys.load(Ordering::Relaxed);
        let samples = probe
            .sample(conf.active_secs, Duration::from_millis(5))
            .await;
        let secs = t.elapsed().as_secs_f64();
        let keys = fleet.stats.keys.load(Ordering::Relaxed) - k1;
        fleet.set_phase(Phase::Hold);
        let mem_after = pid.and_then(procs::own_memory);
        probe.close().await;
        let samples = samples?;
        let latency = Latency::from_durations(&samples).ok_or_else(|| anyhow!("no samples"))?;
        let _ = keys0;
        anyhow::Ok(Active {
            terminals: active,
            latency,
            secs,
            keys,
            mem_before,
            mem_after,
        })
    }
    .await
    .map_err(|e| format!("{e:#}"));
    match &row.active {
        Ok(a) => progress(&format!(
            "{}: echo with {} active terminals: p50 {:.2} ms, p99 {:.2} ms ({} samples; {:.0} keys/s typed)",
            row.name,
            a.terminals,
            a.latency.p50 / 1e3,
            a.latency.p99 / 1e3,
            a.latency.samples,
            a.keys as f64 / a.secs
        )),
        Err(e) => progress(&format!("{}: echo under load failed: {e}", row.name)),
    }
    // Liveness of every terminal.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (ok, failed) = fleet.check(1, Duration::from_secs(30)).await;
    progress(&format!(
        "{}: liveness check: {ok} answered, {failed} failed",
        row.name
    ));
    row.check = Some((ok, failed));
    row.lost = fleet.stats.lost.load(Ordering::Relaxed);
    row.held_error_count = fleet.stats.error_count.load(Ordering::Relaxed);
    row.held_errors = fleet.stats.errors.lock().unwrap().clone();
    let open_us: Vec<Duration> = fleet
        .stats
        .open_us
        .lock()
        .unwrap()
        .iter()
        .map(|&u| Duration::from_micros(u))
        .collect();
    row.open_ms = Latency::from_durations(&open_us);
    fleet.stop().await;
}

pub(crate) async fn run_load(conf: &SuiteConf, res: &mut SuiteResults) {
    let t0 = Instant::now();
    // The bare PTY: the same load without a server, as a baseline.
    let mut bare = ServerRow::new("bare PTY");
    load_one(conf, None, Target::Bare, &mut bare).await;
    res.servers.push(bare);
    for (name, w) in who(conf, &res.installs) {
        let mut row = ServerRow::new(&name);
        let w = match w {
            Ok(w) => w,
            Err(e) => {
                row.not_measured = Some(e);
                res.servers.push(row);
                continue;
            }
        };
        progress(&format!("{name}: starting (load)"));
        let srv = match start(&w, conf).await {
            Ok(s) => s,
            Err(e) => {
                row.not_measured = Some(format!("did not start: {e:#}"));
                res.servers.push(row);
                continue;
            }
        };
        // The raw socket is cove's fast path (what xterm.js uses).
        match srv.targets().into_iter().next() {
            Some(t) => load_one(conf, Some(&srv), t, &mut row).await,
            None => {
                // code-server: idle memory only.
                row.idle = mem_after_settle(srv.pid(), Duration::from_secs(3)).await;
                if let Ok(m) = &row.idle {
                    progress(&format!(
                        "{name}: idle {:.1} MiB ({})",
                        m.mib(),
                        m.describe()
                    ));
                }
            }
        }
        row.notes.extend(srv.stop().await);
        res.servers.push(row);
    }
    res.phase_secs
        .push(("load".into(), t0.elapsed().as_secs_f64()));
}

// ---------------------------------------------------------------------------
// Phase 3: the slow reader

pub(crate) async fn run_slow(conf: &SuiteConf, res: &mut SuiteResults) {
    let t0 = Instant::now();
    for (name, w) in who(conf, &res.installs) {
        let w = match w {
            Ok(w) => w,
            Err(e) => {
                res.slow.push(Err((name, e)));
                continue;
            }
        };
        if let Who::Peer(i) = &w
            && i.peer == Peer::CodeServer
        {
            continue;
        }
        let srv = match start(&w, conf).await {
            Ok(s) => s,
            Err(e) => {
                res.slow.push(Err((name, format!("did not start: {e:#}"))));
                continue;
            }
        };
        for (k, t) in srv.targets().into_iter().enumerate() {
            progress(&format!(
                "{}: slow reader ({} KiB/s) for {:.0} s",
                t.name(),
                conf.slow_rate / 1024,
                conf.slow_secs
            ));
            let r = slow_reader(
                &t,
                &format!("slow{k}"),
                srv.pid(),
                conf.slow_rate,
                conf.slow_secs,
            )
            .await;
            match &r {
                Ok(s) => progress(&format!(
                    "{}: peak {:.1} MiB (before {:.1}), received {:.2} MB{}",
                    s.target,
                    s.peak_kib as f64 / 1024.0,
                    s.before.as_ref().map(|m| m.mib()).unwrap_or(0.0),
                    s.received as f64 / 1e6,
                    s.ended
                        .as_ref()
                        .map(|e| format!("; {e}"))
                        .unwrap_or_default()
                )),
                Err(e) => progress(&format!("{}: slow reader failed: {e:#}", t.name())),
            }
            res.slow
                .push(r.map_err(|e| (t.name().to_string(), format!("{e:#}"))));
        }
        res.notes.extend(srv.stop().await);
    }
    res.phase_secs
        .push(("slow reader".into(), t0.elapsed().as_secs_f64()));
}

/// Why code-server's terminal is not driven.
pub(crate) const CODE_SERVER_TERMINAL: &str = "code-server's terminals are reached only through VS Code's \
    internal remote protocol: a WebSocket carrying `PersistentProtocol` frames (13-byte header, \
    acks, replay), a signed connection handshake, then VS Code's binary IPC/RPC serialisation \
    to the `remoteterminal` channel of the pty host (createProcess, start, input, onProcessData). \
    It is undocumented and changes between VS Code releases, so a faithful client is far beyond \
    a small adapter; only its idle server memory is measured";
