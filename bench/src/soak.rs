//! `cove-bench soak`: N sessions for T minutes against one cove server.
//!
//! Each session has a shell on the raw terminal socket and a JSON control
//! socket, and loops (until the time is up) over a deterministic
//! pseudo-random mix of:
//! - typing (60%): `echo soak…` typed one key every 30-80 ms, each key's
//!   echo timed, then Enter and the prompt;
//! - output (20%): 100 kB of long lines and a marker;
//! - files (20%): `write_file` of 4-32 KiB, then `read_file`, compared byte
//!   for byte, the round trip timed.
//!
//! Every error is counted (the goal is zero). The server's memory (server +
//! runners, shells excluded) is read when the sessions are open, at each
//! minute and at the end; keystroke echo and file round-trip percentiles are
//! reported per minute.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use serde_json::{Value, json};

use crate::cove;
use crate::measure::{Ready, open_ready};
use crate::procs::{self, OwnMem};
use crate::progress;
use crate::pty::MarkerScanner;
use crate::stats::Latency;
use crate::suite::Srv;
use crate::term::{Event, PROMPT, Target, Term};

const SESSIONS_PER_WORKSPACE: usize = 32;
const KEEP_ERRORS: usize = 20;

#[derive(Debug, Clone)]
pub(crate) struct SoakConf {
    pub minutes: f64,
    pub sessions: usize,
}

#[derive(Debug, Default, Clone)]
struct Bucket {
    echo: Vec<Duration>,
    file_rtt: Vec<Duration>,
    outputs: u64,
    output_bytes: u64,
    commands: u64,
    errors: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct MinuteRow {
    pub minute: usize,
    pub echo: Option<Latency>,
    pub file_rtt: Option<Latency>,
    pub keys: usize,
    pub commands: u64,
    pub files: usize,
    pub outputs: u64,
    pub output_bytes: u64,
    pub errors: u64,
    pub mem_kib: Option<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct SoakReport {
    pub minutes: f64,
    pub sessions: usize,
    pub workspaces: usize,
    pub secs: f64,
    pub errors: u64,
    pub error_samples: Vec<String>,
    pub mem_start: Option<OwnMem>,
    /// At the end, the sessions still open.
    pub mem_end: Option<OwnMem>,
    /// After every session closed its terminal.
    pub mem_closed: Option<OwnMem>,
    pub rows: Vec<MinuteRow>,
    pub total_echo: Option<Latency>,
    pub total_file: Option<Latency>,
    pub notes: Vec<String>,
}

impl SoakReport {
    /// The memory the end is compared with: at the end of the run's first half when it
    /// lasted two minutes or more, else the start. Scrollbacks fill and allocators warm up
    /// first: a 6-minute soak of 20 sessions measured 65.3, 70.0, 69.7, 70.1, 70.2 and
    /// 71.3 MiB at its minutes' ends, so the second half is what must stay flat.
    pub(crate) fn baseline_kib(&self) -> Option<u64> {
        let half = self.rows.len() / 2;
        if half >= 1
            && let Some(k) = self.rows[half - 1].mem_kib
        {
            return Some(k);
        }
        self.mem_start.as_ref().map(|m| m.kib)
    }

    /// Flat: the end is within max(2 MiB, 5%) of the baseline.
    pub(crate) fn flat(&self) -> Option<bool> {
        let base = self.baseline_kib()? as f64;
        let end = self.mem_end.as_ref()?.kib as f64;
        Some(end <= base + (2048.0f64).max(base * 0.05))
    }
}

struct Shared {
    start: Instant,
    /// Minute buckets; a sample after the last minute counts in the last.
    minutes: usize,
    buckets: Mutex<Vec<Bucket>>,
    errors: Mutex<(u64, Vec<String>)>,
}

impl Shared {
    fn with<F: FnOnce(&mut Bucket)>(&self, f: F) {
        let m = ((self.start.elapsed().as_secs() / 60) as usize).min(self.minutes - 1);
        let mut b = self.buckets.lock().unwrap();
        if b.len() <= m {
            b.resize(m + 1, Bucket::default());
        }
        f(&mut b[m]);
    }

    fn error(&self, e: String) {
        self.with(|b| b.errors += 1);
        let mut g = self.errors.lock().unwrap();
        g.0 += 1;
        if g.1.len() < KEEP_ERRORS {
            g.1.push(format!("[{:.1} s] {e}", self.start.elapsed().as_secs_f64()));
        }
    }
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

pub(crate) async fn run(
    bin: &std::path::Path,
    serve_args: &[String],
    conf: &SoakConf,
) -> Result<SoakReport> {
    let srv = Srv::start_cove(bin, serve_args).await?;
    let res = soak_on(&srv, conf).await;
    let stop_notes = srv.stop().await;
    let mut r = res?;
    r.notes.extend(stop_notes);
    Ok(r)
}

async fn soak_on(srv: &Srv, conf: &SoakConf) -> Result<SoakReport> {
    let Srv::Cove { server, ws } = srv else {
        bail!("soak runs against cove only");
    };
    let port = server.port;
    let pid = srv.pid();
    let nws = conf.sessions.div_ceil(SESSIONS_PER_WORKSPACE).max(1);
    let mut workspaces = vec![ws.clone()];
    for k in 1..nws {
        workspaces.push(crate::term::cove_workspace(port, &format!("soak{k}")).await?);
    }
    let total = Duration::from_secs_f64(conf.minutes * 60.0);
    progress(&format!(
        "soak: {} sessions over {nws} workspace(s) for {:.1} min",
        conf.sessions, conf.minutes
    ));
    // Open every session first, then start the clock.
    let mut sessions = Vec::new();
    for i in 0..conf.sessions {
        let wsid = workspaces[i / SESSIONS_PER_WORKSPACE].clone();
        let target = Target::CoveRaw {
            port,
            ws: wsid.clone(),
        };
        let Ready { term, .. } = open_ready(&target, &format!("soak{i}")).await?;
        let mut notes = Vec::new();
        let ctl = cove::ctl_connect(port, &wsid, &mut notes).await?;
        sessions.push((i, target, term, ctl));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mem_start = procs::own_memory(pid);
    let minutes = (conf.minutes.ceil() as usize).max(1);
    let shared = Arc::new(Shared {
        start: Instant::now(),
        minutes,
        buckets: Mutex::new(Vec::new()),
        errors: Mutex::new((0, Vec::new())),
    });
    let end = shared.start + total;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, target, term, ctl) in sessions {
        let sh = shared.clone();
        tasks.spawn(session(i, target, term, ctl, sh, end));
    }
    // Memory at the end of each minute; the last reading 1.5 s before the
    // end, while every session is still open.
    let mut mem_by_minute: Vec<Option<u64>> = Vec::new();
    let last_reading = end - Duration::from_millis(1500).min(total / 4);
    for k in 1..=minutes {
        let at = (shared.start + Duration::from_secs(60 * k as u64)).min(last_reading);
        tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
        let m = procs::own_memory(pid).map(|m| m.kib);
        progress(&format!(
            "soak: minute {k}: server + runners {:.1} MiB, {} errors so far",
            m.unwrap_or(0) as f64 / 1024.0,
            shared.errors.lock().unwrap().0
        ));
        mem_by_minute.push(m);
    }
    let mem_end = procs::own_memory(pid);
    // Sessions stop by themselves at `end` (each step is bounded).
    let waited = tokio::time::timeout(Duration::from_secs(90), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    let mut notes = Vec::new();
    if waited.is_err() {
        notes.push("some sessions had not finished 90 s after the end; aborted".into());
        tasks.abort_all();
    }
    let secs = shared.start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mem_closed = procs::own_memory(pid);
    let buckets = shared.buckets.lock().unwrap().clone();
    let (errors, error_samples) = shared.errors.lock().unwrap().clone();
    let mut all_echo = Vec::new();
    let mut all_file = Vec::new();
    let rows = buckets
        .iter()
        .enumerate()
        .map(|(m, b)| {
            all_echo.extend_from_slice(&b.echo);
            all_file.extend_from_slice(&b.file_rtt);
            MinuteRow {
                minute: m + 1,
                echo: Latency::from_durations(&b.echo),
                file_rtt: Latency::from_durations(&b.file_rtt),
                keys: b.echo.len(),
                commands: b.commands,
                files: b.file_rtt.len(),
                outputs: b.outputs,
                output_bytes: b.output_bytes,
                errors: b.errors,
                mem_kib: mem_by_minute.get(m).copied().flatten(),
            }
        })
        .collect();
    Ok(SoakReport {
        minutes: conf.minutes,
        sessions: conf.sessions,
        workspaces: nws,
        secs,
        errors,
        error_samples,
        mem_start,
        mem_end,
        mem_closed,
        rows,
        total_echo: Latency::from_durations(&all_echo),
        total_file: Latency::from_durations(&all_file),
        notes,
    })
}

async fn session(
    i: usize,
    target: Target,
    mut term: Term,
    mut ctl: cove::Ws,
    sh: Arc<Shared>,
    end: Instant,
) {
    let mut rng = Rng::new(i as u64 + 1);
    let mut n = 0u64;
    let mut reopened = 0;
    while Instant::now() < end && n < 1_000_000 {
        n += 1;
        let pick = rng.below(10);
        let r = if pick < 6 {
            typing(&mut term, &mut rng, i, n, &sh).await
        } else if pick < 8 {
            output(&mut term, &sh).await
        } else {
            files(&mut ctl, &mut rng, i, n, &sh).await
        };
        if let Err(e) = r {
            sh.error(format!("session {i}: {e:#}"));
            // Start over with a fresh terminal and control socket (bounded).
            if reopened >= 5 {
                break;
            }
            reopened += 1;
            let old = std::mem::replace(
                &mut term,
                match open_ready(&target, &format!("soak{i}r{reopened}")).await {
                    Ok(r) => r.term,
                    Err(e) => {
                        sh.error(format!("session {i}: reopen: {e:#}"));
                        break;
                    }
                },
            );
            old.close().await;
            if let Target::CoveRaw { port, ws } = &target {
                let mut notes = Vec::new();
                match cove::ctl_connect(*port, ws, &mut notes).await {
                    Ok(c) => ctl = c,
                    Err(e) => {
                        sh.error(format!("session {i}: reconnect control: {e:#}"));
                        break;
                    }
                }
            }
        }
        // Think time.
        let pause = Duration::from_millis(100 + rng.below(400));
        if Instant::now() + pause >= end {
            break;
        }
        tokio::time::sleep(pause).await;
    }
    term.close().await;
    cove::ws_close(ctl).await;
}

/// Reads until `marker` has been seen (or the timeout); returns the bytes read.
async fn wait_for(term: &mut Term, marker: &[u8], timeout: Duration) -> Result<u64> {
    let mut sc = MarkerScanner::new(marker);
    let deadline = Instant::now() + timeout;
    let mut bytes = 0u64;
    loop {
        match term.recv(deadline).await? {
            None => bail!(
                "no {:?} within {timeout:?} ({bytes} bytes)",
                String::from_utf8_lossy(marker)
            ),
            Some(Event::Exit(why)) => bail!("the terminal ended: {why}"),
            Some(Event::Data(b)) => {
                bytes += b.len() as u64;
                if sc.feed(&b) {
                    return Ok(bytes);
                }
            }
        }
    }
}

/// Reads until `marker` and then the prompt after it (often in the same
/// chunk); returns the bytes read.
async fn wait_marker_then_prompt(term: &mut Term, marker: &[u8], timeout: Duration) -> Result<u64> {
    let deadline = Instant::now() + timeout;
    let mut tail: Vec<u8> = Vec::new();
    let mut bytes = 0u64;
    loop {
        match term.recv(deadline).await? {
            None => bail!(
                "no {:?} and prompt within {timeout:?} ({bytes} bytes)",
                String::from_utf8_lossy(marker)
            ),
            Some(Event::Exit(why)) => bail!("the terminal ended: {why}"),
            Some(Event::Data(b)) => {
                bytes += b.len() as u64;
                tail.extend_from_slice(&b);
                if tail.len() > 8192 {
                    tail.drain(..tail.len() - 4096);
                }
                if let Some(p) = memchr::memmem::find(&tail, marker)
                    && memchr::memmem::find(&tail[p + marker.len()..], PROMPT).is_some()
                {
                    return Ok(bytes);
                }
            }
        }
    }
}

async fn typing(term: &mut Term, rng: &mut Rng, i: usize, n: u64, sh: &Shared) -> Result<()> {
    let line = format!("echo soak{i}x{n}");
    for c in line.bytes() {
        let s = [c];
        let s = std::str::from_utf8(&s)?;
        let t = Instant::now();
        term.send(s).await?;
        let deadline = t + Duration::from_secs(5);
        loop {
            match term.recv(deadline).await? {
                None => bail!("typing: no echo of {:?} within 5 s", c as char),
                Some(Event::Exit(why)) => bail!("typing: the terminal ended: {why}"),
                Some(Event::Data(b)) if b.contains(&c) => break,
                Some(Event::Data(_)) => {}
            }
        }
        let d = t.elapsed();
        sh.with(|b| b.echo.push(d));
        tokio::time::sleep(Duration::from_millis(30 + rng.below(50))).await;
    }
    term.send("\n").await?;
    // The output has no `$ `: the next one is the new prompt.
    wait_for(term, PROMPT, Duration::from_secs(10)).await?;
    sh.with(|b| b.commands += 1);
    Ok(())
}

async fn output(term: &mut Term, sh: &Shared) -> Result<()> {
    let bytes = 100_000u64;
    term.send(&format!(
        "head -c {bytes} /dev/zero | tr '\\0' b; echo __SOAK\"\"DONE__\n"
    ))
    .await?;
    let got = wait_marker_then_prompt(term, b"__SOAKDONE__", Duration::from_secs(30)).await?;
    if got < bytes {
        bail!("output: {got} bytes before the prompt, expected at least {bytes}");
    }
    sh.with(|b| {
        b.outputs += 1;
        b.output_bytes += got;
    });
    Ok(())
}

async fn ctl_request(
    ctl: &mut cove::Ws,
    ty: &str,
    payload: Value,
    id: &str,
    want: &str,
) -> Result<Value> {
    cove::ctl_send(
        ctl,
        json!({"type": ty, "payload": payload, "requestId": id}),
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = cove::next_msg(ctl, deadline)
            .await?
            .ok_or_else(|| anyhow!("{ty}: no {want} within 10 s"))?;
        let Some(v) = cove::text_json(&m) else {
            continue;
        };
        let rid = v.get("requestId").and_then(|r| r.as_str());
        if cove::msg_type(&v) == "error" && (rid == Some(id) || rid.is_none()) {
            bail!("{ty}: error reply: {v}");
        }
        if cove::msg_type(&v) == want && rid.is_none_or(|r| r == id) {
            return Ok(v);
        }
    }
}

async fn files(ctl: &mut cove::Ws, rng: &mut Rng, i: usize, n: u64, sh: &Shared) -> Result<()> {
    let path = format!("soak/s{i}/f{}.txt", n % 4);
    let line = format!("session {i} write {n} {:016x}\n", rng.next());
    let reps = (4096 + rng.below(28 * 1024) as usize) / line.len() + 1;
    let content = line.repeat(reps);
    let t = Instant::now();
    let w = ctl_request(
        ctl,
        "write_file",
        json!({"path": path, "content": content}),
        &format!("w{i}-{n}"),
        "file_written",
    )
    .await?;
    if w.get("size").and_then(|s| s.as_u64()) != Some(content.len() as u64) {
        bail!(
            "write_file {path}: size {:?}, wrote {}",
            w.get("size"),
            content.len()
        );
    }
    let r = ctl_request(
        ctl,
        "read_file",
        json!({"path": path}),
        &format!("r{i}-{n}"),
        "file_content",
    )
    .await?;
    let d = t.elapsed();
    if r.get("content").and_then(|c| c.as_str()) != Some(content.as_str()) {
        bail!("read_file {path}: the content differs from what was written");
    }
    sh.with(|b| b.file_rtt.push(d));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_spread() {
        let mut a = Rng::new(1);
        let mut b = Rng::new(1);
        let xs: Vec<u64> = (0..100).map(|_| a.below(10)).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.below(10)).collect();
        assert_eq!(xs, ys);
        for k in 0..10 {
            assert!(xs.contains(&k), "{k} never drawn");
        }
        assert_ne!(Rng::new(2).next(), Rng::new(1).next());
    }

    #[test]
    fn flatness() {
        let mem = |kib| OwnMem {
            kib,
            ..OwnMem::default()
        };
        let row = |m: usize, kib: Option<u64>| MinuteRow {
            minute: m,
            echo: None,
            file_rtt: None,
            keys: 0,
            commands: 0,
            files: 0,
            outputs: 0,
            output_bytes: 0,
            errors: 0,
            mem_kib: kib,
        };
        let mut r = SoakReport {
            minutes: 1.0,
            sessions: 1,
            workspaces: 1,
            secs: 60.0,
            errors: 0,
            error_samples: vec![],
            mem_start: Some(mem(100_000)),
            mem_end: Some(mem(101_000)),
            mem_closed: None,
            rows: vec![row(1, Some(120_000))],
            total_echo: None,
            total_file: None,
            notes: vec![],
        };
        // One minute: compared with the start.
        assert_eq!(r.baseline_kib(), Some(100_000));
        assert_eq!(r.flat(), Some(true));
        r.mem_end = Some(mem(110_000));
        assert_eq!(r.flat(), Some(false));
        // Two minutes: compared with the end of the first minute.
        r.rows.push(row(2, Some(121_000)));
        r.mem_end = Some(mem(122_000));
        assert_eq!(r.baseline_kib(), Some(120_000));
        assert_eq!(r.flat(), Some(true));
        // Four minutes: with the end of the second (the warm-up is the first half).
        r.rows.push(row(3, Some(131_000)));
        r.rows.push(row(4, Some(131_500)));
        r.mem_end = Some(mem(131_800));
        assert_eq!(r.baseline_kib(), Some(121_000));
        assert_eq!(r.flat(), Some(false), "10 MiB more than halfway");
        r.rows[1].mem_kib = Some(130_000);
        assert_eq!(r.flat(), Some(true));
    }
}
