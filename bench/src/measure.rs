//! The single-terminal measurements, written once against [`Term`] so that
//! every target (bare PTY, cove, the peers) is measured by the same code:
//! time from a new-terminal request to the prompt, output throughput of long
//! lines, keystroke echo latency.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};

use crate::RunStat;
use crate::pty::{ECHO_TIMEOUT, ECHO_WARMUP, MARKER, MarkerScanner, throughput_command};
use crate::stats::Latency;
use crate::term::{ECHO_LINE, Event, PROMPT, Target, Term};

/// How long a new terminal may take to show its prompt.
pub(crate) const PROMPT_TIMEOUT: Duration = Duration::from_secs(20);

/// A terminal whose prompt has been seen.
pub(crate) struct Ready {
    pub term: Term,
    /// From the start of the request to the first prompt byte.
    pub to_prompt: Duration,
}

/// Opens a terminal and waits for its prompt.
pub(crate) async fn open_ready(target: &Target, tid: &str) -> Result<Ready> {
    let start = Instant::now();
    let deadline = start + PROMPT_TIMEOUT;
    let mut term = tokio::time::timeout(PROMPT_TIMEOUT, target.open(tid))
        .await
        .map_err(|_| anyhow!("opening the terminal took over {PROMPT_TIMEOUT:?}"))??;
    let mut scanner = MarkerScanner::new(PROMPT);
    let mut seen = 0usize;
    loop {
        match term.recv(deadline).await? {
            None => bail!("no prompt within {PROMPT_TIMEOUT:?} ({seen} bytes of output)"),
            Some(Event::Exit(why)) => bail!("the terminal ended before its prompt: {why}"),
            Some(Event::Data(b)) => {
                seen += b.len();
                if scanner.feed(&b) {
                    return Ok(Ready {
                        term,
                        to_prompt: start.elapsed(),
                    });
                }
            }
        }
    }
}

/// Reads until nothing has come for `quiet` (at most `max`). Returns the
/// bytes read.
pub(crate) async fn settle(term: &mut Term, quiet: Duration, max: Duration) -> Result<u64> {
    let end = Instant::now() + max;
    let mut bytes = 0u64;
    loop {
        let now = Instant::now();
        if now >= end {
            return Ok(bytes);
        }
        match term.recv((now + quiet).min(end)).await? {
            None => return Ok(bytes),
            Some(Event::Data(b)) => bytes += b.len() as u64,
            Some(Event::Exit(why)) => bail!("the terminal ended: {why}"),
        }
    }
}

/// Time from the request to the prompt, `n` fresh terminals one after the
/// other (each closed before the next).
pub(crate) async fn prompt_latency(target: &Target, n: usize, prefix: &str) -> Result<Latency> {
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let r = open_ready(target, &format!("{prefix}{i}")).await?;
        times.push(r.to_prompt);
        r.term.close().await;
    }
    Latency::from_durations(&times).ok_or_else(|| anyhow!("no samples"))
}

/// One throughput run on a fresh terminal: type the long-lines command and
/// time it until the marker.
pub(crate) async fn throughput_run(
    target: &Target,
    tid: &str,
    payload: u64,
    timeout: Duration,
) -> Result<RunStat> {
    let Ready { mut term, .. } = open_ready(target, tid).await?;
    let result = async {
        settle(
            &mut term,
            Duration::from_millis(200),
            Duration::from_secs(5),
        )
        .await?;
        let line = format!("{}\n", throughput_command(payload));
        let mut scanner = MarkerScanner::new(MARKER);
        let mut received = 0u64;
        let mut chunks = 0u64;
        let start = Instant::now();
        let deadline = start + timeout;
        term.send(&line).await?;
        loop {
            match term.recv(deadline).await? {
                None => bail!(
                    "timed out after {timeout:?} ({received} bytes in {chunks} messages, no marker)"
                ),
                Some(Event::Exit(why)) => {
                    bail!("the terminal ended during the run ({received} bytes): {why}")
                }
                Some(Event::Data(b)) => {
                    received += b.len() as u64;
                    chunks += 1;
                    if scanner.feed(&b) {
                        break;
                    }
                }
            }
        }
        Ok(RunStat {
            secs: start.elapsed().as_secs_f64(),
            received,
            chunks,
        })
    }
    .await;
    term.close().await;
    result
}

/// Turns a ready shell into the echo terminal (`stty raw -echo; exec cat`)
/// and waits until it echoes.
pub(crate) async fn make_echo_terminal(term: &mut Term) -> Result<()> {
    settle(term, Duration::from_millis(150), Duration::from_secs(5)).await?;
    term.send(ECHO_LINE).await?;
    settle(term, Duration::from_millis(300), Duration::from_secs(5)).await?;
    for _ in 0..40 {
        term.send("r").await?;
        let end = Instant::now() + Duration::from_millis(250);
        while let Some(ev) = term.recv(end).await? {
            match ev {
                Event::Data(b) if b.contains(&b'r') => {
                    settle(term, Duration::from_millis(200), Duration::from_secs(5)).await?;
                    return Ok(());
                }
                Event::Data(_) => {}
                Event::Exit(why) => bail!("the echo terminal ended: {why}"),
            }
        }
    }
    bail!(
        "the echo terminal (`{}`) never echoed within 10 s",
        ECHO_LINE.trim()
    )
}

/// One echo sample: type a character, wait until it comes back.
pub(crate) async fn echo_once(term: &mut Term, c: u8) -> Result<Duration> {
    let s = [c];
    let s = std::str::from_utf8(&s).map_err(|_| anyhow!("not ASCII"))?;
    let start = Instant::now();
    let deadline = start + ECHO_TIMEOUT;
    term.send(s).await?;
    loop {
        match term.recv(deadline).await? {
            None => bail!("no echo within {ECHO_TIMEOUT:?}"),
            Some(Event::Data(b)) if b.contains(&c) => return Ok(start.elapsed()),
            Some(Event::Data(_)) => {}
            Some(Event::Exit(why)) => bail!("the echo terminal ended: {why}"),
        }
    }
}

/// Echo latency on a fresh terminal: warm-ups, then `samples` samples.
pub(crate) async fn echo(target: &Target, tid: &str, samples: usize) -> Result<Latency> {
    let Ready { mut term, .. } = open_ready(target, tid).await?;
    let result = async {
        make_echo_terminal(&mut term).await?;
        let mut times = Vec::with_capacity(samples);
        for i in 0..ECHO_WARMUP + samples {
            let c = b'a' + (i % 26) as u8;
            let t = echo_once(&mut term, c)
                .await
                .map_err(|e| anyhow!("echo sample {i}: {e:#}"))?;
            if i >= ECHO_WARMUP {
                times.push(t);
            }
        }
        Latency::from_durations(&times).ok_or_else(|| anyhow!("no samples"))
    }
    .await;
    term.close().await;
    result
}
