//! `cove-bench terminal` over the JSON control socket (PROTOCOL.md section 1): the same
//! throughput and echo measurements as `raw_socket.rs`, with `create_terminal`,
//! `terminal_input` and `terminal_output` (counting the UTF-8 bytes of `data`).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::ws::{
    ctl_close_terminal, ctl_connect, ctl_create_terminal, ctl_settle, is_for, msg_type, next_msg,
    text_json, ws_close, ws_send,
};
use super::{ECHO_COMMAND, push_note};
use crate::pty::{
    ECHO_TIMEOUT, ECHO_WARMUP, MARKER, MarkerScanner, SHELL_COMMAND, throughput_command,
};
use crate::stats::Latency;
use crate::{RUN_TIMEOUT, RunStat};

/// One throughput run on a fresh shell: the time from typing the command to the marker.
pub(crate) async fn throughput_run(
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

/// Echo latency of `samples` keystrokes after warm-up.
pub(crate) async fn echo(
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
