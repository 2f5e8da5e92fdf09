//! `cove-bench`: benchmarks for cove, the self-hosted cloud dev environment.
//!
//! Owns: starting cove and its peers, measuring them all through one client, and writing
//! the reports and BENCHMARKS.md.
//! Must not know: cove's internals: it measures the real binary from outside, through its
//! HTTP and sockets, as a browser or a script would.
//!
//! Subcommands:
//! - `terminal`: bare PTY vs cove's raw and JSON sockets (below);
//! - `peers`: cove against Jupyter Server's terminals, wetty and code-server,
//!   installed by the bench from PyPI / npm / Debian into `--scratch`
//!   (`peers.rs`), all driven by one client (`term.rs`, `measure.rs`):
//!   throughput, keystroke echo, new terminal to prompt;
//! - `load`: server memory idle and with 100 / 1,000 idle terminals, echo
//!   while 500 terminals type, memory under a slow reader (`load.rs`,
//!   `suite.rs`);
//! - `soak`: N cove sessions for T minutes (`soak.rs`);
//! - `signin`: keystroke echo idle and while sign-ins (Argon2id) run, sign-ins per second,
//!   server memory per signed-in session, against `cove serve --auth password` (`signin.rs`);
//! - `all`: all of the above and BENCHMARKS.md (`all.rs`, `benchmarks.rs`).
//!
//! `cove-bench terminal` measures, in one run, how fast a terminal is over
//! cove compared with the physical limit of the machine, and writes a
//! markdown report:
//!
//! 1. **Bare PTY** (no server): a PTY pair opened with rustix, `bash --norc
//!    --noprofile -i` on the slave (`setsid` + `TIOCSCTTY`, `PS1='$ '`,
//!    `TERM=xterm-256color`), the master read directly into a 64 KiB buffer.
//!    - *Throughput*: the command `head -c N /dev/zero | tr '\0' a; echo
//!      __BENCH""DONE__` is typed; the time runs from its write to the marker
//!      `__BENCHDONE__` in the output (found even when it is split across
//!      reads). MB/s = N / time (payload bytes, 10^6 bytes per MB), median
//!      of `--runs`, each run on a fresh shell.
//!    - *Echo latency*: `cat` on a slave in raw mode (`cfmakeraw`); write one
//!      byte, wait until it comes back. 200 warm-ups, then `--echo-samples`
//!      samples; p50/p90/p99/max in µs.
//! 2. **cove raw socket** (PROTOCOL.md section 2): the bench starts
//!    `cove serve --bind-addr 127.0.0.1:0 --data-dir <temp> --auth none` as a
//!    child process, creates a workspace over REST, and runs the same two
//!    tests over `ws://…/api/workspaces/{id}/terminals/{tid}/ws` (binary
//!    frames carry PTY bytes; the echo terminal runs `stty raw -echo; exec
//!    cat`).
//! 3. **cove JSON socket** (PROTOCOL.md section 1): the same over
//!    `ws://…/api/workspaces/{id}/ws` with `create_terminal`,
//!    `terminal_input` and `terminal_output` (counting the UTF-8 bytes of
//!    `data`).
//! 4. **Memory**: VmRSS of the server right after start, and of the server
//!    and its child processes (the runners) after the runs with one idle
//!    terminal open.
//!
//! The client side runs on a current-thread tokio runtime (one core), with
//! `TCP_NODELAY`. Every wait has a timeout (120 s per throughput run, 5 s per
//! echo sample). The server is ended by its pid at the end (SIGTERM, then
//! SIGKILL) and its temporary data directory is removed. When no cove binary
//! is given, or it fails, the report still has the bare PTY numbers and says
//! why cove is missing.

mod all;
mod benchmarks;
mod cove;
mod load;
mod measure;
mod peers;
mod procs;
mod pty;
mod report;
mod signin;
mod sio;
mod soak;
mod stats;
mod suite;
mod term;
mod terminado;

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::stats::Latency;

/// Timeout of one throughput run (bare or cove).
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Parser, Debug)]
#[command(name = "cove-bench", version, about = "Benchmarks for cove")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Terminal throughput, keystroke echo latency and memory: bare PTY vs
    /// cove's raw and JSON terminal sockets.
    Terminal(TerminalArgs),
    /// cove against its peers (Jupyter Server terminals, wetty, code-server,
    /// installed by the bench into --scratch) and the bare PTY: throughput,
    /// keystroke echo, new terminal to prompt.
    Peers(all::PeersArgs),
    /// Server memory idle and with 100 / 1,000 idle terminals, echo while
    /// 500 terminals type, memory under a slow reader; cove, peers, bare PTY.
    Load(all::LoadArgs),
    /// N cove sessions for T minutes of typing, output and file writes:
    /// errors, memory at start and end, latency per minute.
    Soak(all::SoakArgs),
    /// Keystroke echo idle and while concurrent password sign-ins run, sign-ins per
    /// second, and server memory per signed-in session (`cove serve --auth password`).
    Signin(signin::SigninArgs),
    /// Everything (terminal comparison, peers, load, a short soak), written
    /// as BENCHMARKS.md with the previous run kept below.
    All(all::AllArgs),
}

#[derive(Args, Debug, Clone)]
pub struct TerminalArgs {
    /// The cove binary to start (`<PATH> serve ...`). Without it only the
    /// bare PTY is measured.
    #[arg(long, value_name = "PATH")]
    pub cove: Option<PathBuf>,

    /// An extra argument for `cove serve` (repeat for several).
    #[arg(long = "serve-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub serve_args: Vec<String>,

    /// Payload bytes per throughput run.
    #[arg(long, default_value_t = 200_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub bytes: u64,

    /// Throughput runs per path (the median is reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: u32,

    /// Echo latency samples per path (after 200 warm-ups).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub echo_samples: u32,

    /// Write the markdown report to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// One throughput run.
#[derive(Debug, Clone)]
pub struct RunStat {
    /// Seconds from the write of the command to the marker.
    pub secs: f64,
    /// Bytes received (PTY bytes, or UTF-8 bytes of `data` on JSON).
    pub received: u64,
    /// Reads (bare) or messages (cove) that carried output.
    pub chunks: u64,
}

/// Results of one path (bare PTY, cove raw, cove JSON).
#[derive(Debug)]
pub struct PathResult {
    pub name: &'static str,
    pub runs: Result<Vec<RunStat>, String>,
    pub echo: Result<Latency, String>,
}

impl PathResult {
    pub fn not_run(name: &'static str, why: &str) -> Self {
        Self {
            name,
            runs: Err(why.to_string()),
            echo: Err(why.to_string()),
        }
    }

    /// Median payload throughput in MB/s (10^6 bytes).
    pub fn mbps(&self, payload: u64) -> Option<f64> {
        let runs = self.runs.as_ref().ok()?;
        let times: Vec<f64> = runs.iter().map(|r| r.secs).collect();
        let t = stats::median(&times)?;
        (t > 0.0).then(|| payload as f64 / 1e6 / t)
    }
}

static START: OnceLock<Instant> = OnceLock::new();

/// Prints a progress line with the elapsed time to stderr.
pub fn progress(msg: &str) {
    let t = START.get_or_init(Instant::now).elapsed().as_secs_f64();
    eprintln!("[{t:>7.1}s] {msg}");
}

fn main() -> Result<()> {
    START.get_or_init(Instant::now);
    let cli = Cli::parse();
    match cli.command {
        Cmd::Terminal(args) => terminal(args),
        Cmd::Peers(args) => all::peers(args),
        Cmd::Load(args) => all::load(args),
        Cmd::Soak(args) => all::soak(args),
        Cmd::Signin(args) => signin::signin(args),
        Cmd::All(args) => all::all(args),
    }
}

fn terminal(args: TerminalArgs) -> Result<()> {
    let md = terminal_report(&args);
    match &args.out {
        Some(path) => {
            std::fs::write(path, &md).with_context(|| format!("write {}", path.display()))?;
            progress(&format!("report written to {}", path.display()));
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(md.as_bytes())?;
            out.flush()?;
        }
    }
    progress("done");
    Ok(())
}

/// Runs the `terminal` measurements and returns the markdown report.
pub fn terminal_report(args: &TerminalArgs) -> String {
    let command_line = report::command_line();
    let machine = report::Machine::probe();
    let date = report::utc_now();
    progress(&format!(
        "terminal bench: {} bytes x {} runs, {} echo samples",
        args.bytes, args.runs, args.echo_samples
    ));

    // 1. Bare PTY.
    progress("bare pty: throughput");
    let bare_runs =
        pty::throughput(args.bytes, args.runs as usize, RUN_TIMEOUT).map_err(|e| format!("{e:#}"));
    if let Err(e) = &bare_runs {
        progress(&format!("bare pty throughput failed: {e}"));
    }
    progress("bare pty: echo latency");
    let bare_echo = pty::echo(args.echo_samples as usize).map_err(|e| format!("{e:#}"));
    match &bare_echo {
        Ok(l) => progress(&format!(
            "bare pty echo: p50 {:.1} µs, p99 {:.1} µs",
            l.p50, l.p99
        )),
        Err(e) => progress(&format!("bare pty echo failed: {e}")),
    }
    let bare = PathResult {
        name: "bare PTY",
        runs: bare_runs,
        echo: bare_echo,
    };

    // 2-4. cove.
    let cove = match &args.cove {
        None => Err("no cove binary given (--cove PATH)".to_string()),
        Some(bin) => cove::run(args, bin),
    };
    if let Err(e) = &cove {
        progress(&format!("cove not measured: {e}"));
    }

    report::render(&report::Report {
        args,
        command_line,
        machine,
        date,
        bare,
        cove,
    })
}
