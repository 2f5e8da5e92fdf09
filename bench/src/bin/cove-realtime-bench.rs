//! Socket.IO against cove's own sockets, and `/metrics` under many workspaces, through a
//! running `cove serve`:
//!
//! - **log throughput**: one client follows a process that prints `--mb` MB of 85-character
//!   lines, from the moment the process is let go to its end: the stock `socket.io-client`
//!   on `/processes` (WebSocket transport, through `web/e2e/socketio-bridge.mjs`), the JSON
//!   control socket (`subscribe_process`), and the raw terminal socket (the same generator
//!   in a terminal); and the generator alone inside the workspace, writing to /dev/null.
//! - **memory per connection**: `--clients` clients on each, all following one quiet
//!   process (raw: attached to one terminal): the server's and the runner's resident memory
//!   after, minus before, divided by the clients.
//! - **`/metrics` scrape time** with `--workspaces` running workspaces, once the collector
//!   has their figures.

use anyhow::{Context, bail, ensure};
use cove_test_support::request::request;
use cove_test_support::serve::{Serve, ServeOptions};
use cove_test_support::socketio::Bridge;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::io::Write as _;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const WAIT: Duration = Duration::from_secs(120);
type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Debug, clap::Parser)]
struct Args {
    /// The cove binary to measure (a release build).
    #[arg(long)]
    cove: std::path::PathBuf,
    /// Megabytes each throughput run prints.
    #[arg(long, default_value_t = 50)]
    mb: u64,
    /// Throughput runs of each client.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Clients per kind of socket for memory per connection.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Running workspaces for the scrape time.
    #[arg(long, default_value_t = 100)]
    workspaces: usize,
    /// Where to write the markdown (default: stdout).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

/// The line the generator prints (84 characters and a newline).
const LINE: &str =
    "cove-realtime-bench 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ";

struct Server {
    serve: Serve,
}

impl Server {
    async fn start(cove: &std::path::Path) -> anyhow::Result<Server> {
        let args: Vec<String> = ["--quota-connections", "100000"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let serve = Serve::start(
            cove,
            ServeOptions {
                args: &args,
                env: &[("COVE_LOG", "warn")],
                dir_prefix: "cove-realtime-bench-",
                wait: WAIT,
                ..ServeOptions::default()
            },
        )
        .await?;
        Ok(Server { serve })
    }

    fn port(&self) -> u16 {
        self.serve.port()
    }

    async fn http(&self, method: &str, path: &str, body: &str) -> anyhow::Result<(u16, String)> {
        let headers: &[(&str, &str)] = if body.is_empty() {
            &[]
        } else {
            &[("Content-Type", "application/json")]
        };
        let body = (!body.is_empty()).then_some(body.as_bytes());
        let r = request(self.port(), method, path, headers, body, WAIT).await?;
        Ok((r.status, r.text()))
    }

    async fn create(&self, name: &str) -> anyhow::Result<String> {
        let (status, body) = self
            .http(
                "POST",
                "/api/workspaces",
                &json!({"name": name, "template": "blank"}).to_string(),
            )
            .await?;
        ensure!(status == 201, "create answered {status}: {body}");
        Ok(serde_json::from_str::<Value>(&body)?["id"]
            .as_str()
            .context("id")?
            .to_string())
    }

    async fn put(&self, id: &str, path: &str) -> anyhow::Result<()> {
        let r = request(
            self.port(),
            "PUT",
            &format!("/api/workspaces/{id}/files/{path}"),
            &[],
            Some(b"x"),
            WAIT,
        )
        .await?;
        ensure!(r.status < 300, "PUT {path}: {}", r.status);
        Ok(())
    }

    async fn socket(&self, path: &str) -> anyhow::Result<Ws> {
        let url = format!("ws://127.0.0.1:{}{path}", self.port());
        Ok(tokio_tungstenite::connect_async(url).await?.0)
    }

    /// Resident memory of the server and its runners, in KiB.
    fn rss_kib(&self) -> u64 {
        let mut pids = vec![self.serve.pid() as i32];
        pids.extend(self.serve.runner_pids());
        pids.into_iter().filter_map(rss_kib).sum()
    }

    /// Stops every workspace through the API first (their sandboxes clean up), then the
    /// server.
    async fn stop(mut self, ids: &[String]) {
        for id in ids {
            let _ = self
                .http("POST", &format!("/api/workspaces/{id}/stop"), "")
                .await;
        }
        self.serve.stop(Duration::from_secs(10)).await;
    }
}

fn rss_kib(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

async fn send(ws: &mut Ws, kind: &str, payload: Value) -> anyhow::Result<()> {
    ws.send(Message::text(
        json!({"type": kind, "payload": payload}).to_string(),
    ))
    .await?;
    Ok(())
}

/// The next JSON message that matches.
async fn until(ws: &mut Ws, pred: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
    tokio::time::timeout(WAIT, async {
        while let Some(message) = ws.next().await {
            if let Message::Text(text) = message? {
                let value: Value = serde_json::from_str(&text)?;
                if pred(&value) {
                    return Ok(value);
                }
            }
        }
        bail!("the socket closed")
    })
    .await?
}

/// A shell line that waits for the file `go`, prints `bytes` of [`LINE`]s, then `__END__`.
fn generator(go: &str, bytes: u64) -> String {
    format!(
        "while [ ! -e {go} ]; do sleep 0.01; done; yes '{LINE}' | head -c {bytes}; echo; echo __E\"\"ND__"
    )
}

/// Starts `command` as process `id` from a control socket that then closes (so that only
/// the client under test follows it).
async fn start_process(s: &Server, ws_id: &str, id: &str, command: &str) -> anyhow::Result<()> {
    let mut control = s.socket(&format!("/api/workspaces/{ws_id}/ws")).await?;
    send(
        &mut control,
        "run_command",
        json!({"command": "sh", "args": ["-c", command], "processId": id}),
    )
    .await?;
    until(&mut control, |m| m["type"] == "process_started").await?;
    control.close(None).await.ok();
    Ok(())
}

/// Seconds for the bytes of one run, and the bytes the client got.
struct Run {
    secs: f64,
    bytes: u64,
}

async fn through_socketio(s: &Server, id: &str, bytes: u64, n: usize) -> anyhow::Result<Run> {
    let (process, go) = (format!("sio-{n}"), format!("go-sio-{n}"));
    start_process(s, id, &process, &generator(&go, bytes)).await?;
    let mut bridge = Bridge::start().await;
    let connected = bridge
        .connect("c", s.port(), "/processes", &["websocket"], json!({}))
        .await;
    ensure!(connected["event"] == "connect", "{connected}");
    bridge
        .emit(
            "c",
            "subscribe:logs",
            json!({"workspaceId": id, "processId": process}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.put(id, &go).await?;
    let t0 = Instant::now();
    let mut got = 0;
    loop {
        let e = bridge
            .until("c", |e| {
                ["logs", "logs:skipped", "stream:closed"]
                    .contains(&e["event"].as_str().unwrap_or(""))
            })
            .await;
        match e["event"].as_str() {
            Some("logs") => got += e["data"]["bytes"].as_u64().unwrap_or(0),
            Some("logs:skipped") => bail!("the Socket.IO client was told it missed output: {e}"),
            _ => break,
        }
    }
    Ok(Run {
        secs: t0.elapsed().as_secs_f64(),
        bytes: got,
    })
}

async fn through_json(s: &Server, id: &str, bytes: u64, n: usize) -> anyhow::Result<Run> {
    let (process, go) = (format!("json-{n}"), format!("go-json-{n}"));
    let mut control = s.socket(&format!("/api/workspaces/{id}/ws")).await?;
    send(
        &mut control,
        "run_command",
        json!({"command": "sh", "args": ["-c", generator(&go, bytes)], "processId": process}),
    )
    .await?;
    until(&mut control, |m| m["type"] == "process_started").await?;
    s.put(id, &go).await?;
    let t0 = Instant::now();
    let mut got = 0;
    loop {
        let m = until(&mut control, |m| {
            m["processId"] == process.as_str() || m["type"] == "error"
        })
        .await?;
        match m["type"].as_str() {
            Some("process_output") => got += m["data"].as_str().map_or(0, |d| d.len() as u64),
            Some("process_exit") => break,
            _ => bail!("the JSON socket got {m}"),
        }
    }
    Ok(Run {
        secs: t0.elapsed().as_secs_f64(),
        bytes: got,
    })
}

async fn through_raw(s: &Server, id: &str, bytes: u64, n: usize) -> anyhow::Result<Run> {
    let go = format!("go-raw-{n}");
    let mut raw = s
        .socket(&format!(
            "/api/workspaces/{id}/terminals/bench-{n}/ws?cols=200&rows=50"
        ))
        .await?;
    raw.send(Message::binary(
        format!("{}\n", generator(&go, bytes)).into_bytes(),
    ))
    .await?;
    // Let the shell echo the line before the clock starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.put(id, &go).await?;
    let t0 = Instant::now();
    let mut got = 0u64;
    let mut tail: Vec<u8> = Vec::new();
    tokio::time::timeout(WAIT, async {
        while let Some(message) = raw.next().await {
            if let Message::Binary(data) = message? {
                got += data.len() as u64;
                tail.extend_from_slice(&data);
                if memchr::memmem::find(&tail, b"__END__").is_some() {
                    return Ok(());
                }
                let keep = tail.len().saturating_sub(16);
                tail.drain(..keep);
            }
        }
        bail!("the raw socket closed")
    })
    .await??;
    Ok(Run {
        secs: t0.elapsed().as_secs_f64(),
        bytes: got,
    })
}

/// The generator alone, in the workspace, to /dev/null: the ceiling.
async fn bare(s: &Server, id: &str, bytes: u64, n: usize) -> anyhow::Result<Run> {
    let process = format!("bare-{n}");
    let mut control = s.socket(&format!("/api/workspaces/{id}/ws")).await?;
    let line = format!(
        "a=$(date +%s%N); yes '{LINE}' | head -c {bytes} >/dev/null; b=$(date +%s%N); echo $((b-a))"
    );
    send(
        &mut control,
        "run_command",
        json!({"command": "sh", "args": ["-c", line], "processId": process}),
    )
    .await?;
    let m = until(&mut control, |m| {
        m["type"] == "process_output" && m["processId"] == process.as_str()
    })
    .await?;
    let nanos: f64 = m["data"].as_str().unwrap_or("").trim().parse()?;
    Ok(Run {
        secs: nanos / 1e9,
        bytes,
    })
}

/// Resident memory per client of `n` clients of one kind, in KiB.
async fn memory_per_client(s: &Server, id: &str, kind: &str, n: usize) -> anyhow::Result<f64> {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = s.rss_kib();
    let mut bridge = None;
    let mut sockets = Vec::new();
    match kind {
        "socket.io" => {
            let mut b = Bridge::start().await;
            for i in 0..n {
                let id_i = format!("m{i}");
                let c = b
                    .connect(&id_i, s.port(), "/processes", &["websocket"], json!({}))
                    .await;
                ensure!(c["event"] == "connect", "client {i}: {c}");
                b.emit(
                    &id_i,
                    "subscribe:logs",
                    json!({"workspaceId": id, "processId": "quiet"}),
                )
                .await;
            }
            for i in 0..n {
                b.until(&format!("m{i}"), |e| e["event"] == "logs").await;
            }
            b.seen.retain(|e| e["event"] != "connected");
            bridge = Some(b);
        }
        "json" => {
            for _ in 0..n {
                let mut ws = s.socket(&format!("/api/workspaces/{id}/ws")).await?;
                send(&mut ws, "subscribe_process", json!({"processId": "quiet"})).await?;
                until(&mut ws, |m| m["type"] == "process_output").await?;
                sockets.push(ws);
            }
        }
        _ => {
            for _ in 0..n {
                let mut ws = s
                    .socket(&format!(
                        "/api/workspaces/{id}/terminals/quiet/ws?replay=raw"
                    ))
                    .await?;
                until(&mut ws, |m| m["type"] == "attached").await?;
                sockets.push(ws);
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = s.rss_kib();
    drop(bridge);
    for mut ws in sockets {
        ws.close(None).await.ok();
    }
    // Until the server has let them all go (bounded).
    for _ in 0..300 {
        let (_, health) = s.http("GET", "/health", "").await?;
        let health: Value = serde_json::from_str(&health)?;
        let open: i64 = health["connections"]
            .as_object()
            .map_or(0, |c| c.values().filter_map(Value::as_i64).sum());
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(after.saturating_sub(before) as f64 / n as f64)
}

/// A workspace with a quiet process and terminal on `s`, then [`memory_per_client`].
async fn memory_on_fresh(s: &Server, kind: &str, n: usize) -> anyhow::Result<(String, f64)> {
    let id = s.create("memory").await?;
    start_process(s, &id, "quiet", "echo ready; exec sleep 100000").await?;
    let mut terminal = s
        .socket(&format!("/api/workspaces/{id}/terminals/quiet/ws"))
        .await?;
    until(&mut terminal, |m| m["type"] == "attached").await?;
    terminal.close(None).await.ok();
    let kib = memory_per_client(s, &id, kind, n).await?;
    Ok((id, kib))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Starts `n` more workspaces, waits for the collector to have their figures, then times
/// 50 scrapes of `/metrics`: (p50 ms, p99 ms, bytes).
async fn scrapes(s: &Server, n: usize, ids: &mut Vec<String>) -> anyhow::Result<(f64, f64, usize)> {
    for i in 0..n {
        let id = s.create(&format!("scrape-{i}")).await?;
        let (status, body) = s
            .http("POST", &format!("/api/workspaces/{id}/start"), "")
            .await?;
        ensure!(status == 200, "start {i}: {status} {body}");
        ids.push(id);
        eprint!("\rstarted {}/{n} workspaces", i + 1);
    }
    eprintln!();
    // The collector asks every runner every 10 s.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, text) = s.http("GET", "/metrics", "").await?;
        let figures = text
            .lines()
            .filter(|l| l.starts_with("cove_workspace_memory_bytes{"))
            .count();
        if figures >= ids.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..50 {
        let t0 = Instant::now();
        let (status, text) = s.http("GET", "/metrics", "").await?;
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
        ensure!(status == 200, "/metrics answered {status}");
        size = text.len();
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Ok((percentile(&times, 50.0), percentile(&times, 99.0), size))
}

/// Lets this process (and the Node bridge it starts) hold thousands of sockets.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    let _ = setrlimit(Resource::Nofile, limit);
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Args = clap::Parser::parse();
    raise_fd_limit();
    let s = Server::start(&args.cove).await?;
    let mut ids = Vec::new();
    let result = run(&s, &args, &mut ids).await;
    s.stop(&ids).await;
    let out = result?;
    match &args.out {
        Some(path) => std::fs::File::create(path)?.write_all(out.as_bytes())?,
        None => print!("{out}"),
    }
    Ok(())
}

async fn run(s: &Server, args: &Args, ids: &mut Vec<String>) -> anyhow::Result<String> {
    let bytes = args.mb * 1_000_000;
    let id = s.create("realtime").await?;
    ids.push(id.clone());
    let mut out = String::new();
    out.push_str(&format!(
        "- command: `{}`\n\n",
        std::env::args().collect::<Vec<_>>().join(" ")
    ));
    out.push_str(&format!(
        "Log streaming, one client following a process that prints {} MB of 85-character lines ({} runs of each, alternated):\n\n| client | median seconds | MB/s median (range) | MB received |\n|---|---:|---:|---:|\n",
        args.mb, args.runs
    ));
    // The control socket starts the workspace.
    start_process(s, &id, "warm", "true").await?;
    let names = [
        "generator alone, to /dev/null in the workspace",
        "Socket.IO `/processes` (socket.io-client 4.8, WebSocket)",
        "JSON control socket (`subscribe_process`)",
        "raw terminal socket (through a PTY)",
    ];
    let mut secs: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut received = vec![0u64; names.len()];
    // Alternated, `--runs` times: the machine's load moves between runs.
    for n in 0..args.runs {
        let runs = [
            bare(s, &id, bytes, n).await,
            through_socketio(s, &id, bytes, n).await,
            through_json(s, &id, bytes, n).await,
            through_raw(s, &id, bytes, n).await,
        ];
        for (i, run) in runs.into_iter().enumerate() {
            let run = run.with_context(|| names[i].to_string())?;
            secs[i].push(run.secs);
            received[i] = run.bytes;
            eprintln!("{}: {:.2} s", names[i], run.secs);
        }
    }
    for (i, name) in names.iter().enumerate() {
        let mut times = secs[i].clone();
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let median = percentile(&times, 50.0);
        out.push_str(&format!(
            "| {name} | {median:.2} | {:.1} ({:.1}-{:.1}) | {:.1} |\n",
            bytes as f64 / 1e6 / median,
            bytes as f64 / 1e6 / times[times.len() - 1],
            bytes as f64 / 1e6 / times[0],
            received[i] as f64 / 1e6
        ));
    }
    out.push_str(&format!(
        "\nMemory per connection, {} clients of each kind following one quiet process (raw: attached to one terminal), each kind on a fresh server; resident memory of the server and the runner after, minus before:\n\n| socket | KiB per connection |\n|---|---:|\n",
        args.clients
    ));
    for (kind, name) in [
        ("socket.io", "Socket.IO `/processes` subscribed (WebSocket)"),
        ("json", "JSON control socket, `subscribe_process`"),
        ("raw", "raw terminal socket, attached"),
    ] {
        // A server of its own: memory the allocator kept from an earlier kind would hide
        // this one's.
        let fresh = Server::start(&args.cove).await?;
        let measured = memory_on_fresh(&fresh, kind, args.clients).await;
        let workspace = measured.as_ref().map(|(id, _)| id.clone()).ok();
        fresh.stop(workspace.as_slice()).await;
        let kib = measured.with_context(|| name.to_string())?.1;
        out.push_str(&format!("| {name} | {kib:.1} |\n"));
        eprintln!("{name}: {kib:.1} KiB per connection");
    }
    let (p50, p99, size) = scrapes(s, args.workspaces, ids).await?;
    out.push_str(&format!(
        "\n`GET /metrics` with {} running workspaces (50 scrapes, {} KB each): p50 {p50:.2} ms, p99 {p99:.2} ms.\n",
        ids.len(),
        size / 1000
    ));
    Ok(out)
}
