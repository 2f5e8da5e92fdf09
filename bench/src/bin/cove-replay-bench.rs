//! Screen replay: what a client that attaches to a terminal where vim runs receives, and how
//! long it waits, with a screen snapshot (`?replay=screen`, the default) against the raw
//! scrollback (`?replay=raw`).
//!
//! One server, one running workspace (sandboxed as by default), a terminal of each size in
//! `--sizes` running vim on a 400-line Rust file with syntax colours, line numbers, a
//! search highlighted and a split window: right away, and after 200,000 lines of log have
//! filled the scrollback (1 MiB kept). Then `--runs` new clients attach in turn, each
//! timed from the start of its connection (TCP, WebSocket handshake, hand-over) to its last
//! byte of replay: the whole snapshot, or every byte of the scrollback.

use anyhow::{Context, anyhow, ensure};
use cove_test_support::request::request;
use cove_test_support::serve::{Serve, ServeOptions};
use futures_util::{SinkExt, StreamExt};
use std::io::Write as _;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, clap::Parser)]
struct Args {
    /// The cove binary to measure.
    #[arg(long)]
    cove: std::path::PathBuf,
    /// Attaches per measurement.
    #[arg(long, default_value_t = 200)]
    runs: usize,
    /// Terminal sizes, COLSxROWS, comma-separated.
    #[arg(long, default_value = "80x24,200x50")]
    sizes: String,
    /// Where to write the markdown (default: stdout).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(port: u16, path: &str) -> anyhow::Result<(Socket, serde_json::Value)> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}{path}"))
        .await
        .with_context(|| format!("connect {path}"))?;
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await? {
            Some(Ok(Message::Text(text))) => return Ok((ws, serde_json::from_str(&text)?)),
            Some(Ok(_)) => {}
            other => return Err(anyhow!("no `attached` on {path}: {other:?}")),
        }
    }
}

/// Reads binary bytes until `want` have arrived, or until quiet for `quiet` when `want` is 0.
async fn read(ws: &mut Socket, want: usize, quiet: Duration) -> anyhow::Result<usize> {
    let mut got = 0;
    while want == 0 || got < want {
        let wait = if want == 0 { quiet } else { WAIT };
        match tokio::time::timeout(wait, ws.next()).await {
            Err(_) if want == 0 => break,
            Err(_) => return Err(anyhow!("only {got} of {want} bytes")),
            Ok(Some(Ok(Message::Binary(bytes)))) => got += bytes.len(),
            Ok(Some(Ok(_))) => {}
            Ok(other) => return Err(anyhow!("the socket ended: {other:?}")),
        }
    }
    Ok(got)
}

struct Row {
    size: String,
    snapshot: usize,
    scrollback: usize,
    screen_ms: Vec<f64>,
    raw_ms: Vec<f64>,
}

async fn measure(
    port: u16,
    id: &str,
    (cols, rows): (u16, u16),
    log_lines: u32,
    runs: usize,
) -> anyhow::Result<Row> {
    let terminal = format!("vim{cols}x{rows}-{log_lines}");
    let base = format!("/api/workspaces/{id}/terminals/{terminal}/ws");
    let (mut first, _) =
        connect(port, &format!("{base}?cols={cols}&rows={rows}&replay=raw")).await?;
    // A file of its own per terminal: a second vim on the same file stops at a swap-file
    // question instead of drawing it.
    let script = format!(
        "seq 1 {log_lines} | grep -v '^0$'; for i in $(seq 1 400); do printf 'fn line_%d(x: u32) -> String {{ let s = \"text %d\"; format!(\"{{s}}{{x}}\") }} // %d\\n' $i $i $i; done > {terminal}.rs; \
         vim -N -u NONE -c 'syntax on' -c 'set number' -c 'set hlsearch' -c split -c '/format' {terminal}.rs\n"
    );
    first
        .send(Message::Binary(script.as_bytes().to_vec().into()))
        .await?;
    let printed = read(&mut first, 0, Duration::from_secs(3)).await?;
    ensure!(printed > 1000, "vim drew only {printed} bytes");
    drop(first);

    let mut row = Row {
        size: format!("{cols}x{rows}, after {log_lines} lines of log"),
        snapshot: 0,
        scrollback: printed,
        screen_ms: Vec::new(),
        raw_ms: Vec::new(),
    };
    for _ in 0..runs {
        let start = Instant::now();
        let (mut ws, attached) = connect(port, &base).await?;
        let snapshot = attached["snapshot"]
            .as_u64()
            .ok_or_else(|| anyhow!("no snapshot in {attached}"))? as usize;
        read(&mut ws, snapshot, Duration::ZERO).await?;
        row.screen_ms.push(start.elapsed().as_secs_f64() * 1e3);
        row.snapshot = snapshot;
        let _ = ws.close(None).await;

        let start = Instant::now();
        let (mut ws, attached) = connect(port, &format!("{base}?replay=raw")).await?;
        // The scrollback kept: from where the replay starts to what was printed.
        let kept = printed - attached["offset"].as_u64().unwrap_or(0) as usize;
        read(&mut ws, kept, Duration::ZERO).await?;
        row.scrollback = kept;
        row.raw_ms.push(start.elapsed().as_secs_f64() * 1e3);
        let _ = ws.close(None).await;
    }
    Ok(row)
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    let at = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[at.min(samples.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Args = clap::Parser::parse();
    let sizes: Vec<(u16, u16)> = args
        .sizes
        .split(',')
        .map(|s| {
            let (c, r) = s.split_once('x').context("a size is COLSxROWS")?;
            Ok((c.trim().parse()?, r.trim().parse()?))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut serve = Serve::start(
        &args.cove,
        ServeOptions {
            env: &[("COVE_LOG", "warn")],
            dir_prefix: "cove-replay-bench-",
            wait: WAIT,
            ..ServeOptions::default()
        },
    )
    .await?;
    let port = serve.port();
    let created = request(
        port,
        "POST",
        "/api/workspaces",
        &[("Content-Type", "application/json")],
        Some(br#"{"name":"replay-bench","template":"blank"}"#),
        WAIT,
    )
    .await?;
    ensure!(created.status == 201, "create answered {}", created.status);
    let id = created.json()?["id"].as_str().context("an id")?.to_string();
    let mut rows = Vec::new();
    let mut failure = None;
    'sizes: for size in sizes {
        // Right after vim starts, and after a long build log has filled the scrollback.
        for log_lines in [0, 200_000] {
            eprintln!(
                "vim at {}x{} after {log_lines} lines: {} attaches each way",
                size.0, size.1, args.runs
            );
            match measure(port, &id, size, log_lines, args.runs).await {
                Ok(row) => rows.push(row),
                Err(e) => {
                    failure = Some(e);
                    break 'sizes;
                }
            }
        }
    }
    let _ = request(
        port,
        "POST",
        &format!("/api/workspaces/{id}/stop"),
        &[],
        None,
        WAIT,
    )
    .await;
    serve.stop(Duration::from_secs(5)).await;
    if let Some(e) = failure {
        return Err(e);
    }

    let mut out = String::from(
        "| terminal | snapshot bytes | raw scrollback bytes | screen: attach to last byte p50 / p99 ms | raw: p50 / p99 ms |\n|---|---:|---:|---:|---:|\n",
    );
    for mut row in rows {
        out.push_str(&format!(
            "| vim, {} | {} | {} | {:.2} / {:.2} | {:.2} / {:.2} |\n",
            row.size,
            row.snapshot,
            row.scrollback,
            percentile(&mut row.screen_ms, 0.5),
            percentile(&mut row.screen_ms, 0.99),
            percentile(&mut row.raw_ms, 0.5),
            percentile(&mut row.raw_ms, 0.99),
        ));
    }
    match args.out {
        Some(path) => std::fs::write(&path, &out)?,
        None => std::io::stdout().write_all(out.as_bytes())?,
    }
    Ok(())
}
