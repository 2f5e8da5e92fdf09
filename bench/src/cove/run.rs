//! `cove-bench terminal` against cove: start the server, create and start a workspace, run
//! the raw socket and JSON socket measurements, and measure memory right after start and with
//! one idle terminal; then stop the server. Failures end up in [`CoveRun`], not in a panic.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use serde_json::json;

use super::http::{http_with, json_id};
use super::memory::{MemSnapshot, mem_snapshot};
use super::server::Server;
use super::ws::{
    ctl_close_terminal, ctl_connect, ctl_create_terminal, ctl_send, ctl_settle, ctl_wait, msg_type,
    ws_close,
};
use super::{REQUEST_TIMEOUT, json_socket, push_note, raw_socket};
use crate::pty::SHELL_COMMAND;
use crate::stats::Latency;
use crate::{PathResult, RunStat, TerminalArgs, progress};

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
        notes: server.start_notes(),
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
    let (id, create_ms) = create_workspace(port, &[], &mut run.notes).await?;
    run.create_ms = Some(create_ms);
    run.workspace_id = Some(id.clone());
    run.start_ms = start_workspace(port, &id, &[], &mut run.notes).await;
    let payload = args.bytes;
    let runs = args.runs as usize;
    let samples = args.echo_samples as usize;

    // Raw socket.
    let mut raw_runs = Vec::new();
    let mut raw_err = None;
    for i in 0..runs {
        progress(&format!("cove raw: throughput run {}/{runs}", i + 1));
        match raw_socket::throughput_run(
            port,
            &id,
            &format!("bt{}", i + 1),
            payload,
            &mut run.notes,
        )
        .await
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
    run.raw.echo = raw_socket::echo(port, &id, samples, &mut run.notes)
        .await
        .map_err(|e| format!("{e:#}"));
    log_echo("cove raw", &run.raw.echo);

    // JSON socket.
    let mut json_runs = Vec::new();
    let mut json_err = None;
    for i in 0..runs {
        progress(&format!("cove json: throughput run {}/{runs}", i + 1));
        match json_socket::throughput_run(
            port,
            &id,
            &format!("bj{}", i + 1),
            payload,
            &mut run.notes,
        )
        .await
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
    run.json.echo = json_socket::echo(port, &id, samples, &mut run.notes)
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

/// `POST /api/workspaces` (a blank workspace `bench`) with `headers` (e.g. a token): its id
/// and how long the request took (ms).
pub(crate) async fn create_workspace(
    port: u16,
    headers: &[(&str, &str)],
    notes: &mut Vec<String>,
) -> Result<(String, f64)> {
    let t = Instant::now();
    let r = http_with(
        port,
        "POST",
        "/api/workspaces",
        headers,
        Some(r#"{"name":"bench","template":"blank"}"#),
    )
    .await?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    if !(200..300).contains(&r.status) {
        bail!(
            "POST /api/workspaces answered {}: {}",
            r.status,
            r.text().trim()
        );
    }
    if r.status != 201 {
        push_note(
            notes,
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
            notes,
            format!(
                "the workspace JSON of POST /api/workspaces lacks {} (PROTOCOL.md section 0): {v}",
                missing.join(", ")
            ),
        );
    }
    Ok((id, ms))
}

/// `POST .../start`, then polls `GET` until `running` (at most 60 s), with `headers` (e.g. a
/// token); the time it took (ms). Best effort: the sockets start the workspace themselves too.
pub(crate) async fn start_workspace(
    port: u16,
    id: &str,
    headers: &[(&str, &str)],
    notes: &mut Vec<String>,
) -> Option<f64> {
    let t = Instant::now();
    let path = format!("/api/workspaces/{id}/start");
    match http_with(port, "POST", &path, headers, None).await {
        Ok(r) if r.status == 200 => {}
        Ok(r) => {
            push_note(
                notes,
                format!(
                    "POST {path} answered {} (expected 200): {}",
                    r.status,
                    r.text().trim()
                ),
            );
            return None;
        }
        Err(e) => {
            push_note(notes, format!("POST {path}: {e:#}"));
            return None;
        }
    }
    let get = format!("/api/workspaces/{id}");
    let end = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    while Instant::now() < end {
        match http_with(port, "GET", &get, headers, None).await {
            Ok(r) if r.status == 200 => {
                let state = r
                    .json()
                    .ok()
                    .and_then(|v| v.get("state").and_then(|s| s.as_str()).map(String::from))
                    .unwrap_or_default();
                if state == "running" {
                    progress(&format!(
                        "cove: workspace {id} running after {:.0} ms",
                        t.elapsed().as_secs_f64() * 1e3
                    ));
                    return Some(t.elapsed().as_secs_f64() * 1e3);
                }
                if state == "error" {
                    push_note(
                        notes,
                        format!("workspace state `error` after start: {}", r.text()),
                    );
                    return None;
                }
                last = state;
            }
            Ok(r) => {
                push_note(
                    notes,
                    format!("GET {get} answered {}: {}", r.status, r.text().trim()),
                );
                return None;
            }
            Err(e) => {
                push_note(notes, format!("GET {get}: {e:#}"));
                return None;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    push_note(
        notes,
        format!("workspace not `running` 60 s after start (last state {last:?})"),
    );
    None
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
