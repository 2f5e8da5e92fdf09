//! Hibernation and the metadata store, through a running `cove serve`:
//!
//! - snapshot and restore of a project of 10,000 files and 100 MB (written inside the
//!   workspace by a script: 100 directories of 100 files of 10,000 bytes, base64 of random
//!   bytes, so about 3/4 compressible): `POST .../hibernate` of the stopped workspace
//!   (archive, zstd, upload, read back, check) and `POST .../start` of the hibernated one
//!   (download, check, unpack, start), in MB/s of the files; against the floor of
//!   `tar -c | zstd -3` and `zstd -d | tar -x` of the same tree on this machine's disk;
//! - resume: a hibernated workspace from the raw terminal socket's open to the first byte of
//!   its shell's prompt;
//! - the same hibernate and restore with the snapshots in an S3 bucket (`--s3`: moto, the
//!   S3 server the tests use, on loopback);
//! - create from a template (`POST /api/workspaces`) on SQLite and on PostgreSQL (a
//!   throwaway cluster the bench starts), p50 and p99.
//!
//! Reports markdown.

use anyhow::{Context, bail, ensure};
use cove_test_support::request::request;
use cove_test_support::serve::{Serve, ServeOptions};
use futures_util::{SinkExt as _, StreamExt as _};
use std::io::Write as _;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(300);
/// Bytes of files in the project.
const PROJECT_BYTES: f64 = 100e6;

/// Writes the project into the current directory (python3, inside the workspace or here).
const MAKE_PROJECT: &str = r#"import base64, os
for d in range(100):
    os.makedirs(f'src/pkg{d:03}', exist_ok=True)
    for f in range(100):
        with open(f'src/pkg{d:03}/mod{f:03}.py', 'wb') as out:
            out.write(base64.b64encode(os.urandom(7500)))
"#;

#[derive(Debug, clap::Parser)]
struct Args {
    /// The cove binary to measure.
    #[arg(long)]
    cove: std::path::PathBuf,
    /// Hibernate/restore rounds.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Workspaces created per store for the create timings.
    #[arg(long, default_value_t = 50)]
    creates: usize,
    /// Also hibernate and restore with the snapshots in S3 (moto_server, on PATH or in
    /// $COVE_MOTO_SERVER).
    #[arg(long)]
    s3: bool,
    /// Where to write the markdown (default: stdout).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

struct Server {
    serve: Serve,
}

impl Server {
    async fn start(cove: &std::path::Path, extra: &[&str], prefix: &str) -> anyhow::Result<Server> {
        let args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let serve = Serve::start(
            cove,
            ServeOptions {
                args: &args,
                env: &[("COVE_LOG", "warn")],
                dir_prefix: prefix,
                wait: Duration::from_secs(60),
                ..ServeOptions::default()
            },
        )
        .await?;
        Ok(Server { serve })
    }

    async fn http(
        &self,
        method: &str,
        path: &str,
        body: &str,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
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
        Ok((
            r.status,
            serde_json::from_slice(&r.body).unwrap_or_default(),
        ))
    }

    async fn create(&self, name: &str) -> anyhow::Result<String> {
        let (status, body) = self
            .http(
                "POST",
                "/api/workspaces",
                &format!(r#"{{"name":"{name}","template":"blank"}}"#),
            )
            .await?;
        ensure!(status == 201, "create answered {status}: {body}");
        Ok(body["id"].as_str().context("id")?.to_string())
    }

    /// `POST /api/workspaces/{id}/{action}`, expecting 200; seconds taken.
    async fn act(&self, id: &str, action: &str) -> anyhow::Result<f64> {
        let t0 = Instant::now();
        let (status, body) = self
            .http("POST", &format!("/api/workspaces/{id}/{action}"), "")
            .await?;
        ensure!(status == 200, "{action} answered {status}: {body}");
        Ok(t0.elapsed().as_secs_f64())
    }

    /// Runs `python3 -c script` in the workspace through the control socket, to its exit.
    async fn run_python(&self, id: &str, script: &str) -> anyhow::Result<()> {
        let url = format!(
            "ws://127.0.0.1:{}/api/workspaces/{id}/ws",
            self.serve.port()
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
        let run = serde_json::json!({"type": "run_command", "requestId": "gen",
            "payload": {"command": "python3", "args": ["-c", script], "processId": "gen"}});
        ws.send(Message::Text(run.to_string().into())).await?;
        tokio::time::timeout(WAIT, async {
            while let Some(message) = ws.next().await {
                let Message::Text(text) = message? else {
                    continue;
                };
                let m: serde_json::Value = serde_json::from_str(&text)?;
                match m["type"].as_str() {
                    Some("process_exit") if m["processId"] == "gen" => {
                        ensure!(m["exitCode"] == 0, "the project script failed: {m}");
                        return Ok(());
                    }
                    Some("error") => bail!("{m}"),
                    _ => {}
                }
            }
            bail!("the control socket closed")
        })
        .await?
    }

    async fn first_prompt_byte(&self, id: &str) -> anyhow::Result<f64> {
        let t0 = Instant::now();
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
                    return Ok(t0.elapsed().as_secs_f64());
                }
            }
            bail!("the socket closed before any output")
        })
        .await?
    }

    async fn stop(mut self) {
        for pid in self.serve.runner_pids() {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
        }
        self.serve.stop(Duration::from_secs(5)).await;
    }
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    samples[samples.len() / 2]
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Seconds of `sh -c command` (which must succeed).
fn timed_shell(command: &str) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    let status = std::process::Command::new("sh")
        .args(["-c", command])
        .status()?;
    ensure!(status.success(), "{command} failed");
    Ok(t0.elapsed().as_secs_f64())
}

/// The floor: the same tree through `tar | zstd -3` and back, on this machine's disk.
fn floor(runs: usize) -> anyhow::Result<(f64, f64)> {
    let dir = tempfile::tempdir()?;
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree)?;
    let status = std::process::Command::new("python3")
        .args(["-c", MAKE_PROJECT])
        .current_dir(&tree)
        .status()?;
    ensure!(status.success(), "the project script failed here");
    let (mut pack, mut unpack) = (Vec::new(), Vec::new());
    let d = dir.path().display();
    for _ in 0..runs {
        pack.push(timed_shell(&format!(
            "tar -C {d}/tree -cf - . | zstd -3 -q -T1 > {d}/tree.tar.zst && sync {d}/tree.tar.zst"
        ))?);
        let _ = std::fs::remove_dir_all(dir.path().join("out"));
        std::fs::create_dir(dir.path().join("out"))?;
        unpack.push(timed_shell(&format!(
            "zstd -d -q -c {d}/tree.tar.zst | tar -C {d}/out -xf - && sync"
        ))?);
    }
    Ok((median(pack), median(unpack)))
}

/// Medians of hibernate, start-from-hibernated and resume seconds, and the snapshot's bytes
/// when it is in the data dir. `extra` are more `cove serve` flags (another object store).
async fn hibernation(
    cove: &std::path::Path,
    runs: usize,
    extra: &[String],
) -> anyhow::Result<(f64, f64, f64, u64)> {
    let mut flags = vec!["--disk-limit-mib", "512"];
    flags.extend(extra.iter().map(String::as_str));
    let server = Server::start(cove, &flags, "cove-snapshot-bench-").await?;
    let id = server.create("project").await?;
    server.run_python(&id, MAKE_PROJECT).await?;
    let (mut snapshot, mut restore, mut resume) = (Vec::new(), Vec::new(), Vec::new());
    let mut stored = 0;
    for i in 0..runs {
        server.act(&id, "stop").await?;
        snapshot.push(server.act(&id, "hibernate").await?);
        let (_, view) = server
            .http("GET", &format!("/api/workspaces/{id}"), "")
            .await?;
        eprintln!("{}", view["stateReason"].as_str().unwrap_or_default());
        stored = std::fs::read_dir(server.serve.data_dir().join("objects/snapshots").join(&id))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tar.zst"))
            .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
            .sum();
        restore.push(server.act(&id, "start").await?);
        server.act(&id, "stop").await?;
        server.act(&id, "hibernate").await?;
        resume.push(server.first_prompt_byte(&id).await?);
        eprint!("\rhibernation: {}/{runs}", i + 1);
    }
    eprintln!();
    server.stop().await;
    Ok((median(snapshot), median(restore), median(resume), stored))
}

async fn creates(cove: &std::path::Path, store: &[&str], count: usize) -> anyhow::Result<Vec<f64>> {
    let server = Server::start(cove, store, "cove-create-bench-").await?;
    let mut samples = Vec::with_capacity(count);
    for i in 0..count {
        let t0 = Instant::now();
        server.create(&format!("c{i}")).await?;
        samples.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    server.stop().await;
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Ok(samples)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Args = clap::Parser::parse();
    let mut out = String::new();
    out.push_str("## Hibernate, restore, and creating workspaces on SQLite and PostgreSQL\n\n");
    out.push_str(&format!(
        "- date: {}\n- command: `{}`\n- project: 10,000 files, 100 MB (100 dirs x 100 files of 10,000 bytes, base64 of random bytes); the workspace's disk image is 512 MiB\n- medians of {} rounds; MB/s = 100 MB of files / seconds\n\n",
        now(),
        std::env::args().collect::<Vec<_>>().join(" "),
        args.runs
    ));
    let (pack, unpack) = floor(args.runs)?;
    let (snapshot, restore, resume, stored) = hibernation(&args.cove, args.runs, &[]).await?;
    let on_s3 = match args.s3 {
        true => {
            let moto = cove_test_support::s3::S3Server::shared()
                .context("--s3 needs moto_server (PyPI moto[server])")?;
            let flags = moto.cove_args(&format!("s3://{}/bench", moto.bucket()));
            Some(hibernation(&args.cove, args.runs, &flags).await?)
        }
        false => None,
    };
    out.push_str("| what | seconds | MB/s of files |\n|---|---:|---:|\n");
    for (what, seconds) in [
        (
            "cove: hibernate (archive the disk, zstd, upload, read back and check, evict)",
            snapshot,
        ),
        (
            "floor: `tar -c \\| zstd -3` of the same tree, to disk",
            pack,
        ),
        (
            "cove: start a hibernated workspace (download, check, unpack, start)",
            restore,
        ),
        (
            "floor: `zstd -d \\| tar -x` of the same tree, from disk",
            unpack,
        ),
    ]
    .into_iter()
    .chain(on_s3.iter().flat_map(|(snapshot, restore, _, _)| {
        [
            (
                "cove, snapshots in S3 (moto on loopback): hibernate",
                *snapshot,
            ),
            (
                "cove, snapshots in S3 (moto on loopback): start a hibernated workspace",
                *restore,
            ),
        ]
    })) {
        out.push_str(&format!(
            "| {what} | {seconds:.2} | {:.0} |\n",
            PROJECT_BYTES / 1e6 / seconds
        ));
    }
    out.push_str(&format!(
        "\nStored snapshot: {:.1} MB. Resume, hibernated to the first byte of the shell's prompt (raw terminal socket): {:.0} ms.\n\n",
        stored as f64 / 1e6,
        resume * 1000.0
    ));
    if let Some((_, _, resume, _)) = on_s3 {
        out.push_str(&format!(
            "Resume with the snapshot in S3 (moto): {:.0} ms.\n\n",
            resume * 1000.0
        ));
    }
    out.push_str("| store | creates | p50 ms | p99 ms |\n|---|---:|---:|---:|\n");
    let cluster = cove_test_support::postgres::Cluster::shared();
    let postgres = cluster.map(|c| c.database());
    let mut stores: Vec<(&str, Vec<&str>)> = vec![("SQLite (data dir)", vec![])];
    if let Some(url) = &postgres {
        stores.push(("PostgreSQL 15 (loopback)", vec!["--database-url", url]));
    }
    for (name, flags) in stores {
        let samples = creates(&args.cove, &flags, args.creates).await?;
        out.push_str(&format!(
            "| {name} | {} | {:.1} | {:.1} |\n",
            samples.len(),
            percentile(&samples, 50.0),
            percentile(&samples, 99.0)
        ));
    }
    out.push('\n');
    match &args.out {
        Some(path) => std::fs::File::create(path)?.write_all(out.as_bytes())?,
        None => print!("{out}"),
    }
    Ok(())
}

fn now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
