//! Many terminals at once, and the slow reader.
//!
//! A [`Fleet`] holds terminals open on its own thread (a current-thread
//! tokio runtime), one task per terminal that reads everything the terminal
//! says (answering Engine.IO pings and wetty's flow control as a browser
//! would). Terminals are opened in steps (100, then 1,000) so that the
//! server's memory can be read at each step. In the active phase the first
//! `active` terminals each type one keystroke every `1/rate` seconds (the
//! line `echo hi` and Enter, over and over: a bash builtin, so nothing
//! forks), while the main thread measures keystroke echo on a separate
//! `cat` terminal. Every loop is bounded in time.
//!
//! The slow reader opens one terminal, slows its socket's reads to
//! 64 KiB/s, starts a flood of long lines, and watches the server's memory.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::measure::{self, echo_once, make_echo_terminal, open_ready};
use crate::procs::{self, OwnMem};
use crate::pty::MarkerScanner;
use crate::term::{Event, PROMPT, Target};

/// At most this many terminals are being opened at once.
const OPEN_CONCURRENCY: usize = 8;
/// Errors kept verbatim (the rest are counted).
const KEEP_ERRORS: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Hold,
    Active,
    /// Every terminal types Enter and waits for its prompt.
    Check(u32),
    Stop,
}

#[derive(Default)]
pub(crate) struct FleetStats {
    pub opened: AtomicUsize,
    pub failed: AtomicUsize,
    /// Terminals that ended or failed after they were open.
    pub lost: AtomicUsize,
    pub keys: AtomicU64,
    pub bytes: AtomicU64,
    pub check_ok: AtomicUsize,
    pub check_failed: AtomicUsize,
    pub errors: Mutex<Vec<String>>,
    pub error_count: AtomicUsize,
    /// Microseconds from request to prompt of every terminal opened.
    pub open_us: Mutex<Vec<u64>>,
}

impl FleetStats {
    fn error(&self, e: String) {
        self.error_count.fetch_add(1, Ordering::Relaxed);
        let mut v = self.errors.lock().unwrap();
        if v.len() < KEEP_ERRORS {
            v.push(e);
        }
    }
}

/// Terminals held open on their own thread.
pub(crate) struct Fleet {
    phase: watch::Sender<Phase>,
    open_tx: mpsc::UnboundedSender<usize>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub stats: Arc<FleetStats>,
    requested: usize,
}

struct FleetConf {
    target: Target,
    active: usize,
    rate: f64,
}

impl Fleet {
    /// Starts the fleet's thread (no terminal yet).
    pub(crate) fn start(target: Target, active: usize, rate: f64) -> Result<Self> {
        let (phase, phase_rx) = watch::channel(Phase::Hold);
        let (open_tx, open_rx) = mpsc::unbounded_channel::<usize>();
        let stats = Arc::new(FleetStats::default());
        let st = stats.clone();
        let conf = Arc::new(FleetConf {
            target,
            active,
            rate,
        });
        let thread = std::thread::Builder::new()
            .name("fleet".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        st.error(format!("fleet runtime: {e}"));
                        return;
                    }
                };
                rt.block_on(fleet_main(conf, phase_rx, open_rx, st));
            })?;
        Ok(Self {
            phase,
            open_tx,
            thread: Some(thread),
            stats,
            requested: 0,
        })
    }

    /// Opens terminals until `total` have been asked for, and waits (at most
    /// `limit`) until each is open or has failed. Returns the seconds taken.
    pub(crate) async fn grow_to(&mut self, total: usize, limit: Duration) -> Result<f64> {
        let start = Instant::now();
        if total > self.requested {
            self.open_tx
                .send(total - self.requested)
                .map_err(|_| anyhow!("the fleet thread is gone"))?;
            self.requested = total;
        }
        let end = start + limit;
        loop {
            let done = self.stats.opened.load(Ordering::Relaxed)
                + self.stats.failed.load(Ordering::Relaxed);
            if done >= self.requested {
                return Ok(start.elapsed().as_secs_f64());
            }
            if Instant::now() >= end {
                bail!(
                    "only {done} of {} terminals open or failed after {limit:?}",
                    self.requested
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) fn set_phase(&self, p: Phase) {
        let _ = self.phase.send(p);
    }

    /// Every terminal types Enter and must show its prompt again within
    /// `limit`. Returns (ok, failed).
    pub(crate) async fn check(&self, generation: u32, limit: Duration) -> (usize, usize) {
        let before_ok = self.stats.check_ok.load(Ordering::Relaxed);
        let before_failed = self.stats.check_failed.load(Ordering::Relaxed);
        self.set_phase(Phase::Check(generation));
        let end = Instant::now() + limit + Duration::from_secs(2);
        let open =
            self.stats.opened.load(Ordering::Relaxed) - self.stats.lost.load(Ordering::Relaxed);
        loop {
            let ok = self.stats.check_ok.load(Ordering::Relaxed) - before_ok;
            let failed = self.stats.check_failed.load(Ordering::Relaxed) - before_failed;
            if ok + failed >= open || Instant::now() >= end {
                self.set_phase(Phase::Hold);
                return (ok, failed);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Ends every task (connections are dropped) and joins the thread.
    pub(crate) async fn stop(mut self) {
        self.set_phase(Phase::Stop);
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

async fn fleet_main(
    conf: Arc<FleetConf>,
    phase: watch::Receiver<Phase>,
    mut open_rx: mpsc::UnboundedReceiver<usize>,
    stats: Arc<FleetStats>,
) {
    let sem = Arc::new(Semaphore::new(OPEN_CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = 0usize;
    let mut stop_rx = phase.clone();
    loop {
        tokio::select! {
            n = open_rx.recv() => {
                let Some(n) = n else { break };
                for _ in 0..n {
                    let i = next;
                    next += 1;
                    tasks.spawn(holder(
                        conf.clone(),
                        i,
                        sem.clone(),
                        phase.clone(),
                        stats.clone(),
                    ));
                }
            }
            r = stop_rx.changed() => {
                if r.is_err() || *stop_rx.borrow() == Phase::Stop {
                    break;
                }
            }
        }
    }
    // Every task sees Stop; give them a bounded time to finish.
    let _ = tokio::time::timeout(Duration::from_secs(60), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
}

async fn holder(
    conf: Arc<FleetConf>,
    i: usize,
    sem: Arc<Semaphore>,
    mut phase: watch::Receiver<Phase>,
    stats: Arc<FleetStats>,
) {
    let permit = sem.acquire_owned().await;
    if *phase.borrow() == Phase::Stop {
        return;
    }
    let opened = open_ready(&conf.target, &format!("h{i}")).await;
    drop(permit);
    let mut term = match opened {
        Ok(r) => {
            stats.opened.fetch_add(1, Ordering::Relaxed);
            stats
                .open_us
                .lock()
                .unwrap()
                .push(r.to_prompt.as_micros() as u64);
            r.term
        }
        Err(e) => {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            stats.error(format!("terminal {i}: open: {e:#}"));
            return;
        }
    };
    let active = i < conf.active;
    let period = Duration::from_secs_f64(1.0 / conf.rate.max(0.001));
    let line = b"echo hi\n";
    let mut k = 0usize;
    let far = || Instant::now() + Duration::from_secs(3600);
    let fail = |what: String| {
        stats.lost.fetch_add(1, Ordering::Relaxed);
        stats.error(format!("terminal {i}: {what}"));
    };
    let mut last_check = 0u32;
    loop {
        let p = *phase.borrow_and_update();
        match p {
            Phase::Stop => break,
            Phase::Check(g) if g != last_check => {
                last_check = g;
                // Enter, then the prompt within 15 s.
                let res = async {
                    term.send("\n").await?;
                    let mut sc = MarkerScanner::new(PROMPT);
                    let end = Instant::now() + Duration::from_secs(15);
                    loop {
                        match term.recv(end).await? {
                            None => bail!("no prompt within 15 s after Enter"),
                            Some(Event::Exit(why)) => bail!("ended: {why}"),
                            Some(Event::Data(b)) => {
                                stats.bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                                if sc.feed(&b) {
                                    return Ok(());
                                }
                            }
                        }
                    }
                }
                .await;
                match res {
                    Ok(()) => {
                        stats.check_ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        stats.check_failed.fetch_add(1, Ordering::Relaxed);
                        fail(format!("liveness check: {e:#}"));
                        break;
                    }
                }
            }
            Phase::Active if active => {
                // Staggered so that keystrokes are spread evenly.
                let offset =
                    period.mul_f64((i % conf.active.max(1)) as f64 / conf.active.max(1) as f64);
                let mut tick = Instant::now() + offset;
                loop {
                    tokio::select! {
                        r = term.recv(tick) => match r {
                            Ok(None) => {
                                if let Err(e) = term.send(std::str::from_utf8(&line[k % line.len()..k % line.len() + 1]).unwrap_or("x")).await {
                                    fail(format!("type: {e:#}"));
                                    return;
                                }
                                k += 1;
                                stats.keys.fetch_add(1, Ordering::Relaxed);
                                tick += period;
                                let now = Instant::now();
                                if tick < now {
                                    tick = now + period / 2;
                                }
                            }
                            Ok(Some(Event::Data(b))) => {
                                stats.bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                            }
                            Ok(Some(Event::Exit(why))) => {
                                fail(format!("ended while active: {why}"));
                                return;
                            }
                            Err(e) => {
                                fail(format!("while active: {e:#}"));
                                return;
                            }
                        },
                        r = phase.changed() => {
                            if r.is_err() {
                                return;
                            }
                            break;
                        }
                    }
                }
            }
            _ => {
                tokio::select! {
                    r = term.recv(far()) => match r {
                        Ok(None) => {}
                        Ok(Some(Event::Data(b))) => {
                            stats.bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                        }
                        Ok(Some(Event::Exit(why))) => {
                            fail(format!("ended while held: {why}"));
                            return;
                        }
                        Err(e) => {
                            fail(format!("while held: {e:#}"));
                            return;
                        }
                    },
                    r = phase.changed() => {
                        if r.is_err() {
                            break;
                        }
                    }
                }
            }
        }
    }
    term.abandon();
}

/// A probe terminal kept ready for sampling while something else runs.
pub(crate) struct Probe {
    term: crate::term::Term,
}

impl Probe {
    pub(crate) async fn open(target: &Target, tid: &str) -> Result<Self> {
        let r = open_ready(target, tid).await?;
        let mut term = r.term;
        make_echo_terminal(&mut term).await?;
        for i in 0..50 {
            echo_once(&mut term, b'a' + (i % 26) as u8).await?;
        }
        Ok(Self { term })
    }

    /// Samples for `secs`, `gap` apart.
    pub(crate) async fn sample(&mut self, secs: f64, gap: Duration) -> Result<Vec<Duration>> {
        let end = Instant::now() + Duration::from_secs_f64(secs);
        let mut times = Vec::new();
        let mut i = 0usize;
        while Instant::now() < end && times.len() < 1_000_000 {
            let t = echo_once(&mut self.term, b'a' + (i % 26) as u8)
                .await
                .map_err(|e| anyhow!("echo sample {i}: {e:#}"))?;
            times.push(t);
            i += 1;
            tokio::time::sleep(gap).await;
        }
        Ok(times)
    }

    pub(crate) async fn close(self) {
        self.term.close().await;
    }
}

/// What the slow reader saw.
#[derive(Debug, Clone)]
pub(crate) struct SlowFigures {
    pub target: String,
    pub secs: f64,
    pub rate: u64,
    pub before: Option<OwnMem>,
    pub peak_kib: u64,
    pub end: Option<OwnMem>,
    pub received: u64,
    /// Set when the connection ended during the flood.
    pub ended: Option<String>,
    pub stopped_early: Option<String>,
}

/// Memory cap for the slow-reader test: past this the flood is stopped.
pub(crate) const SLOW_MEM_CAP_KIB: u64 = 4 * 1024 * 1024;

/// One slow reader: opens a terminal, slows its reads to `rate` bytes/s,
/// floods it with long lines for `secs`, sampling the server's memory.
pub(crate) async fn slow_reader(
    target: &Target,
    tid: &str,
    server_pid: i32,
    rate: u64,
    secs: f64,
) -> Result<SlowFigures> {
    let r = open_ready(target, tid).await?;
    let mut term = r.term;
    measure::settle(
        &mut term,
        Duration::from_millis(200),
        Duration::from_secs(5),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = procs::own_memory(server_pid);
    let mut peak = before.as_ref().map(|m| m.kib).unwrap_or(0);
    match term.net_mut() {
        Some(net) => net.set_read_limit(Some(rate)),
        None => bail!("the bare PTY has no socket to slow down"),
    }
    // Bounded: 20 GB of output at most, and the server is stopped after.
    term.send("head -c 20000000000 /dev/zero | tr '\\0' a\n")
        .await?;
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut received = 0u64;
    let mut ended = None;
    let mut stopped_early = None;
    let mut next_sample = Instant::now();
    while Instant::now() < end {
        let now = Instant::now();
        if now >= next_sample {
            if let Some(m) = procs::own_memory(server_pid) {
                peak = peak.max(m.kib);
                if m.kib > SLOW_MEM_CAP_KIB {
                    stopped_early = Some(format!(
                        "server memory passed {} MiB after {:.1} s: flood stopped",
                        SLOW_MEM_CAP_KIB / 1024,
                        start.elapsed().as_secs_f64()
                    ));
                    break;
                }
            }
            next_sample = now + Duration::from_millis(250);
        }
        match term.recv(next_sample.min(end)).await {
            Ok(None) => {}
            Ok(Some(Event::Data(b))) => received += b.len() as u64,
            Ok(Some(Event::Exit(why))) => {
                ended = Some(format!(
                    "connection ended after {:.1} s: {why}",
                    start.elapsed().as_secs_f64()
                ));
                break;
            }
            Err(e) => {
                ended = Some(format!(
                    "error after {:.1} s: {e:#}",
                    start.elapsed().as_secs_f64()
                ));
                break;
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let end_mem = procs::own_memory(server_pid);
    if let Some(m) = &end_mem {
        peak = peak.max(m.kib);
    }
    term.abandon();
    Ok(SlowFigures {
        target: target.name().to_string(),
        secs: elapsed,
        rate,
        before,
        peak_kib: peak,
        end: end_mem,
        received,
        ended,
        stopped_early,
    })
}
