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
use futures_util::StreamExt;
use std::io::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
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

struct Server {
    child: tokio::process::Child,
    port: u16,
    data_dir: std::path::PathBuf,
}

impl Server {
    async fn start(cove: &std::path::Path, sandbox: &str) -> anyhow::Result<Server> {
        let data_dir = std::path::PathBuf::from(format!(
            "/tmp/cove-start-bench-{}-{sandbox}",
            std::process::id()
        ));
        std::fs::create_dir_all(&data_dir)?;
        let mut child = tokio::process::Command::new(cove)
            .args([
                "serve",
                "--bind-addr",
                "127.0.0.1:0",
                "--auth",
                "none",
                "--sandbox",
                sandbox,
                "--data-dir",
            ])
            .arg(&data_dir)
            .env("COVE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start cove serve")?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let port = tokio::time::timeout(WAIT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(addr) = line.strip_prefix("cove listening on http://") {
                    return addr.rsplit(':').next().and_then(|p| p.parse().ok());
                }
            }
            None
        })
        .await
        .context("cove serve did not start in time")?
        .context("cove serve exited before listening")?;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Server {
            child,
            port,
            data_dir,
        })
    }

    async fn http(&self, method: &str, path: &str, body: &str) -> anyhow::Result<(u16, String)> {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
        stream.set_nodelay(true)?;
        let content_type = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/json\r\n"
        };
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{content_type}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        tokio::time::timeout(WAIT, stream.read_to_end(&mut raw)).await??;
        let text = String::from_utf8_lossy(&raw).to_string();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((status, body))
    }

    /// Opens the raw terminal socket and waits for the first byte of terminal output.
    async fn first_prompt_byte(&self, id: &str) -> anyhow::Result<()> {
        let url = format!(
            "ws://127.0.0.1:{}/api/workspaces/{id}/terminals/main/ws?cols=80&rows=24",
            self.port
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

    fn stop(mut self) {
        // Runners outlive the server on purpose: stop them by pid first.
        if let Ok(dir) = std::fs::read_dir(self.data_dir.join("run")) {
            for entry in dir.flatten() {
                if entry.path().extension().is_some_and(|e| e == "pid")
                    && let Some(pid) = std::fs::read_to_string(entry.path())
                        .ok()
                        .and_then(|s| s.trim().parse::<i32>().ok())
                        .and_then(rustix::process::Pid::from_raw)
                {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
                }
            }
        }
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.data_dir);
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
    server.stop();
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
            Err(e) => out.push_str(&format!("| {mode} | failed: {e} | | | | |\n")),
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
