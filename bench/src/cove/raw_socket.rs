//! `cove-bench terminal` over the raw terminal socket (PROTOCOL.md section 2): throughput
//! (a payload printed by the shell, timed to the marker after it) and keystroke echo latency
//! (one byte to `cat` in raw mode and back).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

use super::ws::{
    Ws, expect_attached, msg_type, next_msg, raw_path, raw_settle, text_json, wait_exit_and_close,
    ws_close, ws_connect, ws_connect_with, ws_send,
};
use super::{ECHO_COMMAND, push_note};
use crate::pty::{
    ECHO_TIMEOUT, ECHO_WARMUP, MARKER, MarkerScanner, SHELL_COMMAND, throughput_command,
};
use crate::stats::Latency;
use crate::{RUN_TIMEOUT, RunStat, progress};

/// One throughput run on a fresh shell: the time from typing the command to the marker.
pub(crate) async fn throughput_run(
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

/// Echo latency of `samples` keystrokes after warm-up.
pub(crate) async fn echo(
    port: u16,
    id: &str,
    samples: usize,
    notes: &mut Vec<String>,
) -> Result<Latency> {
    let mut ws = open_echo(port, id, "be", &[], notes).await?;
    let latency = echo_samples(&mut ws, samples, Duration::ZERO).await?;
    ws_close(ws).await;
    Ok(latency)
}

/// Opens the echo terminal `tid` (`stty raw -echo; exec cat`) over the raw socket, with extra
/// handshake `headers` (e.g. a token), and waits until it echoes.
pub(crate) async fn open_echo(
    port: u16,
    id: &str,
    tid: &str,
    headers: &[(&str, &str)],
    notes: &mut Vec<String>,
) -> Result<Ws> {
    let mut ws = ws_connect_with(port, &raw_path(id, tid, ECHO_COMMAND), headers).await?;
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
    Ok(ws)
}

/// `samples` keystrokes on an echo terminal from [`open_echo`], after [`ECHO_WARMUP`]
/// warm-ups: one byte sent, the time until it comes back; `gap` between an answer and the
/// next keystroke (zero: back to back).
pub(crate) async fn echo_samples(ws: &mut Ws, samples: usize, gap: Duration) -> Result<Latency> {
    let frames: Vec<Message> = (0..26u8).map(|i| Message::binary(vec![b'a' + i])).collect();
    let mut times = Vec::with_capacity(samples);
    for i in 0..ECHO_WARMUP + samples {
        let byte = b'a' + (i % 26) as u8;
        let start = Instant::now();
        let deadline = start + ECHO_TIMEOUT;
        ws.send(frames[i % 26].clone()).await.context("send")?;
        loop {
            match next_msg(ws, deadline).await? {
                None => bail!("echo sample {i}: no answer within {ECHO_TIMEOUT:?}"),
                Some(Message::Binary(b)) if b.contains(&byte) => break,
                Some(_) => {}
            }
        }
        if i >= ECHO_WARMUP {
            times.push(start.elapsed());
        }
        if !gap.is_zero() {
            tokio::time::sleep(gap).await;
        }
    }
    Latency::from_durations(&times).ok_or_else(|| anyhow!("no samples"))
}
