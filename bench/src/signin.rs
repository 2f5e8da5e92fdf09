//! `cove-bench signin`: whether password sign-ins starve terminals. cove checks passwords
//! with Argon2id on a small pool of low-priority threads (PROTOCOL.md section 7); this
//! measures, against one `cove serve --auth password`, what a storm of right-password
//! sign-ins costs a terminal, how many sign-ins a second the server answers, and how much
//! memory each signed-in session keeps.
//!
//! 1. The bench starts `cove serve --auth password --password <20 random characters>`
//!    (`--sandbox namespaces` when it runs as root, as the other benches run cove with its
//!    default sandbox; `--sandbox none` otherwise) with `--quota-sessions` raised so that no
//!    right sign-in is refused for the quota, and `--trusted-proxy 127.0.0.1`: each sign-in
//!    loop sends its own `X-Forwarded-For` address, as many people behind a reverse proxy
//!    (attempts being checked count with an address's failures, so more than five at once
//!    from one address are told to retry: 503). It signs in (`POST /login`, the
//!    `cove_session` cookie), makes an API token (`POST /api/tokens`), creates and starts a workspace with the
//!    token, and opens a raw terminal socket with `Authorization: Bearer <token>` running
//!    `stty raw -echo; exec cat`.
//! 2. **Echo**: one byte typed, the time until it comes back, the next 5 ms after the
//!    answer (200 warm-ups, then `--echo-samples`; p50/p90/p99/max in µs), first with nothing else running, then on the
//!    same socket while `--signins` concurrent loops sign in with the right password (each
//!    answer a full Argon2id verify). The samples start once every loop has had an answer;
//!    the report gives both, the difference of the p99s (the goal: within 1 ms) and the
//!    sign-ins answered while the samples ran.
//! 3. **Sign-ins per second**: `--signins` concurrent loops for `--seconds`; answers 200
//!    that came within the time, divided by it. 429 (rate limit) and 503 (the password
//!    pool's queue full) answers are counted apart, and the loop that got one waits 1 s.
//! 4. **Memory per session**: the server's RSS (`VmRSS`, the server process only) before and
//!    one second after `--sessions` more sign-ins, kept open (not signed out); the difference
//!    over the sign-ins answered 200, in KiB.
//! 5. The workspace is stopped through the API, then the server by its pid (SIGTERM, SIGKILL
//!    after 10 s). The markdown section goes to `--out` or stdout.
//!
//! The echo client runs on a current-thread tokio runtime; the sign-in loops on another,
//! on a thread of their own, so that their work does not delay the echo client's reads.
//! Every request has a 30 s timeout, every echo sample 5 s, and every load a deadline.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod load;
mod section;

use load::*;
use section::*;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use serde_json::json;

use crate::cove::memory::mem_snapshot;
use crate::cove::raw_socket::{echo_samples, open_echo};
use crate::cove::run::{create_workspace, start_workspace};
use crate::cove::{REQUEST_TIMEOUT, Server, http_with, ws_close};
use crate::pty::ECHO_WARMUP;
use crate::report::{self, Machine};
use crate::stats::Latency;
use crate::{all, progress};

/// The echo goal of the accounts issue: p99 with sign-ins within this of p99 without.
const GOAL_P99_US: f64 = 1000.0;
/// Sessions one user may keep (`--quota-sessions`): more than any run makes.
const QUOTA_SESSIONS: &str = "100000000";
/// How long the loops may take to all have had an answer before the echo samples start.
const RAMP_TIMEOUT: Duration = Duration::from_secs(30);
/// Between an echo and the next keystroke (about 200 keystrokes a second, a fast typist's
/// key repeat), so that the samples span many sign-ins (each a few tens of ms of Argon2id).
const TYPING_GAP: Duration = Duration::from_millis(5);
/// How long a loop waits after a 429 or 503 before it tries again.
const BACK_OFF: Duration = Duration::from_secs(1);
/// Longest the `--sessions` sign-ins may take.
const SESSIONS_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Args, Debug, Clone)]
pub(crate) struct SigninArgs {
    /// The cove binary to start (`<PATH> serve ...`).
    #[arg(long, value_name = "PATH")]
    pub cove: PathBuf,
    /// Echo latency samples, idle and under sign-ins (each after 200 warm-ups).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub echo_samples: u32,
    /// Concurrent sign-in loops.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub signins: u32,
    /// Seconds of the sign-ins-per-second run.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub seconds: u32,
    /// Sign-ins kept open for the memory per session.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub sessions: u32,
    /// Write the markdown section to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Answers to the sign-ins of one load.
#[derive(Debug, Clone, Default)]
struct Counts {
    ok: u64,
    /// 429: rate limited (or a quota).
    limited: u64,
    /// 503: the password pool's queue was full.
    busy: u64,
    other: u64,
    /// No answer (connection error or timeout).
    failed: u64,
    /// Answers that came after the load's end (not counted above).
    late: u64,
    /// The first answer that was not 200, or the first error.
    first_problem: Option<String>,
}

impl Counts {
    fn answered(&self) -> u64 {
        self.ok + self.limited + self.busy + self.other
    }
}

/// What one run measured.
#[derive(Debug, Default)]
struct Measured {
    sandbox: &'static str,
    idle: Option<Latency>,
    loaded: Option<Latency>,
    /// Sign-ins answered while the loaded samples ran, and how long they ran.
    during_echo: Option<(Counts, Duration)>,
    rate: Option<Counts>,
    /// Sessions open before the memory run, RSS before and after (KiB), and its answers.
    memory: Option<(u64, u64, u64, Counts)>,
    notes: Vec<String>,
    error: Option<String>,
    log_tail: Vec<String>,
}

/// `cove-bench signin`.
pub(crate) fn signin(args: SigninArgs) -> Result<()> {
    let command_line = report::command_line();
    let machine = Machine::probe();
    let date = report::utc_now();
    let version = all::cove_version(Some(&args.cove));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let measured = rt.block_on(run(&args));
    let md = render(&args, &measured, &machine, &date, &command_line, &version);
    all::emit(args.out.as_deref(), &md)?;
    progress("done");
    match measured.error {
        Some(e) => bail!("the sign-in bench did not finish: {e}"),
        None => Ok(()),
    }
}

async fn run(args: &SigninArgs) -> Measured {
    let mut m = Measured {
        sandbox: if rustix::process::geteuid().is_root() {
            "namespaces"
        } else {
            "none"
        },
        ..Measured::default()
    };
    let password = match random_password() {
        Ok(p) => p,
        Err(e) => {
            m.error = Some(format!("{e:#}"));
            return m;
        }
    };
    let extra: Vec<String> = [
        "--auth",
        "password",
        "--password",
        &password,
        "--sandbox",
        m.sandbox,
        "--quota-sessions",
        QUOTA_SESSIONS,
        "--trusted-proxy",
        "127.0.0.1",
    ]
    .map(String::from)
    .to_vec();
    progress(&format!(
        "signin: starting {} serve --auth password --sandbox {}",
        args.cove.display(),
        m.sandbox
    ));
    let server = match Server::start(&args.cove, &extra).await {
        Ok(s) => s,
        Err(e) => {
            m.error = Some(format!("cove did not start: {e:#}"));
            return m;
        }
    };
    progress(&format!(
        "signin: listening on port {} (pid {})",
        server.port, server.pid
    ));
    m.notes.extend(server.start_notes());
    let mut workspace = None;
    if let Err(e) = phases(&server, args, &password, &mut m, &mut workspace).await {
        progress(&format!("signin: aborted: {e:#}"));
        m.error = Some(format!("{e:#}"));
        m.log_tail = server.log_tail();
    }
    if let Some((id, bearer)) = workspace {
        progress("signin: stopping the workspace");
        let path = format!("/api/workspaces/{id}/stop");
        match http_with(
            server.port,
            "POST",
            &path,
            &[("Authorization", &bearer)],
            None,
        )
        .await
        {
            Ok(r) if r.status == 200 => {}
            Ok(r) => m.notes.push(format!(
                "POST {path} answered {}: {}",
                r.status,
                r.text().trim()
            )),
            Err(e) => m.notes.push(format!("POST {path}: {e:#}")),
        }
    }
    progress("signin: stopping the server");
    m.notes.extend(server.shutdown().await);
    m
}

async fn phases(
    server: &Server,
    args: &SigninArgs,
    password: &str,
    m: &mut Measured,
    workspace: &mut Option<(String, String)>,
) -> Result<()> {
    let port = server.port;
    let login = Arc::<str>::from(json!({"username": "admin", "password": password}).to_string());

    // 1. Sign in, a token, a running workspace, the echo terminal.
    let r = http_with(port, "POST", "/login", &[], Some(&login)).await?;
    if r.status != 200 {
        bail!("POST /login answered {}: {}", r.status, r.text().trim());
    }
    let cookie = session_cookie(&r.head)
        .ok_or_else(|| anyhow!("POST /login set no cove_session cookie: {}", r.head))?;
    let r = http_with(
        port,
        "POST",
        "/api/tokens",
        &[("Cookie", &cookie)],
        Some(r#"{"name":"bench"}"#),
    )
    .await?;
    if r.status != 201 {
        bail!(
            "POST /api/tokens answered {}: {}",
            r.status,
            r.text().trim()
        );
    }
    let token = r.json()?["token"]
        .as_str()
        .ok_or_else(|| anyhow!("POST /api/tokens: no `token` in {}", r.text()))?
        .to_string();
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    let (id, _) = create_workspace(port, &auth, &mut m.notes).await?;
    *workspace = Some((id.clone(), bearer.clone()));
    start_workspace(port, &id, &auth, &mut m.notes).await;
    let mut ws = open_echo(port, &id, "signin-echo", &auth, &mut m.notes).await?;

    // 2. Echo idle, then under sign-ins.
    let samples = args.echo_samples as usize;
    let loops = args.signins as usize;
    progress("signin: echo latency, idle");
    let idle = echo_samples(&mut ws, samples, TYPING_GAP).await?;
    progress(&format!(
        "signin: idle echo p50 {:.1} µs, p99 {:.1} µs",
        idle.p50, idle.p99
    ));
    m.idle = Some(idle);
    progress(&format!("signin: echo latency, {loops} sign-in loops"));
    let load = Load::start(port, login.clone(), loops, u64::MAX, None)?;
    let ramp_end = Instant::now() + RAMP_TIMEOUT;
    while load.tally.answered() < loops as u64 && Instant::now() < ramp_end {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = load.tally.snapshot();
    let t = Instant::now();
    let loaded = echo_samples(&mut ws, samples, TYPING_GAP).await;
    let took = t.elapsed();
    let after = load.tally.snapshot();
    let whole = load.stop().await?;
    let loaded = loaded?;
    progress(&format!(
        "signin: echo under sign-ins p50 {:.1} µs, p99 {:.1} µs ({} sign-ins during)",
        loaded.p50,
        loaded.p99,
        after.ok - before.ok
    ));
    m.loaded = Some(loaded);
    m.during_echo = Some((difference(&after, &before, &whole), took));
    ws_close(ws).await;

    // 3. Sign-ins per second.
    progress(&format!(
        "signin: sign-ins per second, {loops} loops for {} s",
        args.seconds
    ));
    let window = Duration::from_secs(args.seconds.into());
    let load = Load::start(port, login.clone(), loops, u64::MAX, Some(window))?;
    let rate = load.wait().await?;
    progress(&format!(
        "signin: {} sign-ins in {} s ({:.1}/s)",
        rate.ok,
        args.seconds,
        rate.ok as f64 / window.as_secs_f64()
    ));
    m.rate = Some(rate);

    // 4. Memory per session.
    let open = 1 + whole.ok + m.rate.as_ref().map_or(0, |c| c.ok + c.late);
    progress(&format!(
        "signin: memory, {} sign-ins kept ({open} sessions open before)",
        args.sessions
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = mem_snapshot(server.pid)?.server_kib;
    let load = Load::start(
        port,
        login,
        loops,
        args.sessions.into(),
        Some(SESSIONS_TIMEOUT),
    )?;
    let kept = load.wait().await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = mem_snapshot(server.pid)?.server_kib;
    progress(&format!(
        "signin: RSS {rss_before} KiB -> {rss_after} KiB after {} sessions",
        kept.ok
    ));
    m.memory = Some((open, rss_before, rss_after, kept));
    Ok(())
}

/// The answers of `after` not in `before`; `late` and the first problem from `whole`.
fn difference(after: &Counts, before: &Counts, whole: &Counts) -> Counts {
    Counts {
        ok: after.ok - before.ok,
        limited: after.limited - before.limited,
        busy: after.busy - before.busy,
        other: after.other - before.other,
        failed: after.failed - before.failed,
        late: 0,
        first_problem: whole.first_problem.clone(),
    }
}

/// The `cove_session=...` pair of a response head's `Set-Cookie`.
fn session_cookie(head: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if !name.trim().eq_ignore_ascii_case("set-cookie") {
            return None;
        }
        let pair = value.trim().split(';').next()?.trim();
        pair.starts_with("cove_session=").then(|| pair.to_string())
    })
}

/// 20 letters and digits from `/dev/urandom`.
fn random_password() -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 20];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").context("open /dev/urandom")?,
        &mut bytes,
    )
    .context("read /dev/urandom")?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_in_the_head() {
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                    Set-Cookie: cove_session=abc123; Path=/; HttpOnly; SameSite=Lax\r\n";
        assert_eq!(session_cookie(head).as_deref(), Some("cove_session=abc123"));
        assert_eq!(
            session_cookie("HTTP/1.1 200 OK\r\nset-cookie: other=1\r\n"),
            None
        );
    }

    #[test]
    fn passwords_are_twenty_letters_or_digits() {
        let p = random_password().unwrap();
        assert_eq!(p.len(), 20);
        assert!(p.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(p, random_password().unwrap());
    }

    #[test]
    fn answers_other_than_200_are_listed() {
        let c = Counts {
            ok: 5,
            busy: 2,
            first_problem: Some("503: busy".into()),
            ..Counts::default()
        };
        assert_eq!(not_ok(&c), ", 503: 2, the first: `503: busy`");
        assert_eq!(not_ok(&Counts::default()), ", no other answer");
    }
}
