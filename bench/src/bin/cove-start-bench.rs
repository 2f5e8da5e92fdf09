//! Workspace start times: how long from "I want a workspace" to the first byte of its shell's
//! prompt, through a running `cove serve`.
//!
//! - cold: `POST /api/workspaces`, then open the raw terminal socket (which starts the
//!   workspace's runner, in its sandbox, and its shell) until the first binary frame;
//! - warm: the same workspace stopped (`POST .../stop`), then the socket again.
//!
//! Each mode (`--sandbox namespaces` and `--sandbox none`) gets its own server. Reports p50,
//! p99, min and max in milliseconds as a markdown table.

use anyhow::{Context, bail};
use cove_test_support::request::request;
use cove_test_support::serve::{Serve, ServeOptions};
use futures_util::StreamExt;
use std::io::Write as _;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, clap::Parser)]
struct Args {
    /// The cove binary to measure.
    #[arg(long)]
    cove: std::path::PathBuf,
    /// Samples per measurement.
    #[arg(long, default_value_t = 50)]
    runs: usize,
    /// Where to write the markdown (default: stdout).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

/// `cove serve` with one `--sandbox` mode (`cove_test_support::serve`), quiet logs.
struct Server {
    serve: Serve,
}

impl Server {
    async fn start(cove: &std::path::Path, sandbox: &str) -> anyhow::Result<Server> {
        let args = ["--sandbox".to_string(), sandbox.to_string()];
        let serve = Serve::start(
            cove,
            ServeOptions {
                args: &args,
                env: &[("COVE_LOG", "warn")],
                dir_prefix: &format!("cove-start-bench-{sandbox}-"),
                wait: WAIT,
                ..ServeOptions::default()
            },
        )
        .await?;
        Ok(Server { serve })
    }

    /// One request; a body is JSON. Returns (status, body).
    async fn http(&self, method: &str, path: &str, body: &str) -> anyhow::Result<(u16, String)> {
        let headers: &[(&str, &str)] = if body.is_empty() {
            &[]
        } else {
            &[("Content-Type", "application/json")]
        };
        let r = request(
            self.serve.port(),
            method,
            path,
            headers,
            Some(body.as_bytes()),
            WAIT,
        )
        .await?;
        Ok((r.status, r.text()))
    }

    /// Opens the raw terminal socket and waits for the first byte of terminal output.
    async fn first_prompt_byte(&self, id: &str) -> anyhow::Result<()> {
        let url = format!(
            "ws://127.0.0.1:{}/api/workspaces/{id}/terminals/main/ws?cols=80&rows=24",
            self.serve.port()
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
        tokio::time::timeout(WAIT, async {
            while let Some(message) = ws.next().await {
                if let Message::Binary(bytes) = message?
                    && !bytes.is_empty()
                {
                    return Ok(());
                }
            }
            bail!("the socket closed before any output")
        })
        .await?
    }

    /// Runners outlive the server on purpose: SIGTERM them by pid first, then stop the
    /// server; the data dir goes with it. What it logged (warnings, with `COVE_LOG=warn`) is
    /// printed.
    async fn stop(mut self) {
        for pid in self.serve.runner_pids() {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
        }
        self.serve.stop(Duration::from_secs(5)).await;
        for line in self.serve.log_tail() {
            if let Some(line) = line.strip_prefix("stderr: ") {
                eprintln!("{line}");
            }
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn measure(
    cove: &std::path::Path,
    sandbox: &str,
    runs: usize,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let server = Server::start(cove, sandbox).await?;
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let t0 = Instant::now();
        let (status, body) = server
            .http(
                "POST",
                "/api/workspaces",
                &format!(r#"{{"name":"start-{i}","template":"blank"}}"#),
            )
            .await?;
        anyhow::ensure!(status == 201, "create answered {status}: {body}");
        let id: String = serde_json::from_str::<serde_json::Value>(&body)?["id"]
            .as_str()
            .context("id")?
            .to_string();
        server.first_prompt_byte(&id).await?;
        cold.push(t0.elapsed().as_secs_f64() * 1000.0);
        let (status, body) = server
            .http("POST", &format!("/api/workspaces/{id}/stop"), "")
            .await?;
        anyhow::ensure!(status == 200, "stop answered {status}: {body}");
        let t0 = Instant::now();
        server.first_prompt_byte(&id).await?;
        warm.push(t0.elapsed().as_secs_f64() * 1000.0);
        let (status, _) = server
            .http("DELETE", &format!("/api/workspaces/{id}"), "")
            .await?;
        anyhow::ensure!(status == 204, "delete answered {status}");
        eprint!("\r{sandbox}: {}/{runs}", i + 1);
    }
    eprintln!();
    server.stop().await;
    Ok((cold, warm))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Args = clap::Parser::parse();
    let mut out = String::new();
    out.push_str("## Workspace start: request to the first byte of the shell's prompt\n\n");
    out.push_str(&format!(
        "- date: {}\n- command: `{}`\n- samples: {} per row; each run creates a workspace (template blank), opens its raw terminal socket and waits for the first output byte (cold), stops it, opens the socket again (warm), deletes it\n\n",
        chrono_like_now(),
        std::env::args().collect::<Vec<_>>().join(" "),
        args.runs
    ));
    out.push_str(
        "| sandbox | start | p50 ms | p99 ms | min ms | max ms |\n|---|---|---:|---:|---:|---:|\n",
    );
    for mode in ["namespaces", "none"] {
        match measure(&args.cove, mode, args.runs).await {
            Ok((mut cold, mut warm)) => {
                for (name, samples) in [
                    ("cold (create + start)", &mut cold),
                    ("warm (start a stopped one)", &mut warm),
                ] {
                    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
                    out.push_str(&format!(
                        "| {mode} | {name} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
                        percentile(samples, 50.0),
                        percentile(samples, 99.0),
                        samples[0],
                        samples[samples.len() - 1]
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

/// UTC now as `YYYY-MM-DD HH:MM UTC`, via date(1) to keep this program dependency-light.
fn chrono_like_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
