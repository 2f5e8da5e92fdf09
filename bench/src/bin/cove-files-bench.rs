//! File request latency through a running `cove serve`: what a person (or an agent) waits for
//! each time they open or save a small file through the REST API.
//!
//! One server per `--sandbox` mode, one running workspace; then `--runs` sequential
//! `GET .../files/bench.txt` (1 KiB) and as many `PUT`s of the same size, each a new client
//! connection (`Connection: close`, as curl does) through the server to the workspace's
//! runner. Reports p50, p99, min and max in microseconds as a markdown table. The server's
//! half of each request is the part cove controls: the lookup, the link to the runner
//! (reused or new), the runner's read or durable write.

use anyhow::{Context, ensure};
use cove_test_support::request::request;
use cove_test_support::serve::{Serve, ServeOptions};
use std::io::Write as _;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);
const FILE_BYTES: usize = 1024;

#[derive(Debug, clap::Parser)]
struct Args {
    /// The cove binary to measure.
    #[arg(long)]
    cove: std::path::PathBuf,
    /// Requests per measurement.
    #[arg(long, default_value_t = 2000)]
    runs: usize,
    /// Where to write the markdown (default: stdout).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

struct Samples {
    get: Vec<f64>,
    put: Vec<f64>,
}

async fn measure(cove: &std::path::Path, sandbox: &str, runs: usize) -> anyhow::Result<Samples> {
    let args = ["--sandbox".to_string(), sandbox.to_string()];
    let mut serve = Serve::start(
        cove,
        ServeOptions {
            args: &args,
            env: &[("COVE_LOG", "warn")],
            dir_prefix: &format!("cove-files-bench-{sandbox}-"),
            wait: WAIT,
            ..ServeOptions::default()
        },
    )
    .await?;
    let result = measure_on(&serve, runs).await;
    // Stop the workspace through the API (its sandbox cleans up), then the server.
    if let Ok((_, id)) = &result {
        let _ = request(
            serve.port(),
            "POST",
            &format!("/api/workspaces/{id}/stop"),
            &[],
            None,
            WAIT,
        )
        .await;
    }
    serve.stop(Duration::from_secs(5)).await;
    result.map(|(samples, _)| samples)
}

async fn measure_on(serve: &Serve, runs: usize) -> anyhow::Result<(Samples, String)> {
    let port = serve.port();
    let json = [("Content-Type", "application/json")];
    let created = request(
        port,
        "POST",
        "/api/workspaces",
        &json,
        Some(br#"{"name":"files-bench","template":"blank"}"#),
        WAIT,
    )
    .await?;
    ensure!(created.status == 201, "create answered {}", created.status);
    let id = created.json()?["id"]
        .as_str()
        .context("the workspace's id")?
        .to_string();
    let started = request(
        port,
        "POST",
        &format!("/api/workspaces/{id}/start"),
        &[],
        None,
        WAIT,
    )
    .await?;
    ensure!(started.status == 200, "start answered {}", started.status);
    let path = format!("/api/workspaces/{id}/files/bench.txt");
    let content = vec![b'a'; FILE_BYTES];
    let mut samples = Samples {
        get: Vec::with_capacity(runs),
        put: Vec::with_capacity(runs),
    };
    // The first write creates the file; warm-ups are not counted.
    for _ in 0..20 {
        request(port, "PUT", &path, &[], Some(&content), WAIT).await?;
        request(port, "GET", &path, &[], None, WAIT).await?;
    }
    for i in 0..runs {
        let t0 = Instant::now();
        let put = request(port, "PUT", &path, &[], Some(&content), WAIT).await?;
        samples.put.push(t0.elapsed().as_secs_f64() * 1e6);
        ensure!(
            put.status == 200,
            "PUT answered {}: {}",
            put.status,
            put.text()
        );
        let t0 = Instant::now();
        let got = request(port, "GET", &path, &[], None, WAIT).await?;
        samples.get.push(t0.elapsed().as_secs_f64() * 1e6);
        ensure!(
            got.status == 200 && got.body.len() == FILE_BYTES,
            "GET answered {}",
            got.status
        );
        if i % 100 == 99 {
            eprint!("\r{}/{runs}", i + 1);
        }
    }
    eprintln!();
    Ok((samples, id))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Args = clap::Parser::parse();
    anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
    let mut out =
        String::from("## File requests: a 1 KiB file read and written through the API\n\n");
    out.push_str(&format!(
        "- command: `{}`\n- samples: {} GETs and {} PUTs per row, sequential, each on a new client connection\n\n",
        std::env::args().collect::<Vec<_>>().join(" "),
        args.runs,
        args.runs
    ));
    out.push_str("| sandbox | request | p50 µs | p99 µs | min µs | max µs |\n|---|---|---:|---:|---:|---:|\n");
    for mode in ["namespaces", "none"] {
        match measure(&args.cove, mode, args.runs).await {
            Ok(mut samples) => {
                for (name, values) in [("GET", &mut samples.get), ("PUT", &mut samples.put)] {
                    values.sort_by(|a, b| a.total_cmp(b));
                    out.push_str(&format!(
                        "| {mode} | {name} | {:.0} | {:.0} | {:.0} | {:.0} |\n",
                        percentile(values, 50.0),
                        percentile(values, 99.0),
                        values[0],
                        values[values.len() - 1]
                    ));
                }
            }
            Err(e) => out.push_str(&format!("| {mode} | failed: {e:#} | | | | |\n")),
        }
    }
    out.push('\n');
    match &args.out {
        Some(path) => std::fs::File::create(path)?.write_all(out.as_bytes())?,
        None => print!("{out}"),
    }
    Ok(())
}
