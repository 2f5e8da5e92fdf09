//! The `peers`, `load`, `soak` and `all` subcommands: arguments, the order
//! of the phases, and where the report goes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::benchmarks::{self, Doc};
use crate::peers::Peer;
use crate::progress;
use crate::report::{self, Machine};
use crate::soak::{self, SoakConf, SoakReport};
use crate::suite::{self, CODE_SERVER_TERMINAL, SuiteConf, SuiteResults};

#[derive(Args, Debug, Clone)]
pub(crate) struct CommonArgs {
    /// The cove binary to start (`<PATH> serve ...`).
    #[arg(long, value_name = "PATH")]
    pub cove: Option<PathBuf>,

    /// An extra argument for `cove serve` (repeat for several). Without
    /// `--max-terminals`, the bench adds `--max-terminals 2000`.
    #[arg(long = "serve-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub serve_args: Vec<String>,

    /// Where the peers are installed (kept between runs).
    #[arg(long, value_name = "DIR", default_value = "/tmp/cove-bench-peers")]
    pub scratch: PathBuf,

    /// Peers to compare with (comma-separated): jupyter, wetty, code-server.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "jupyter,wetty,code-server"
    )]
    pub peers: Vec<String>,

    /// Never install: use what is in --scratch, report missing peers.
    #[arg(long)]
    pub no_install: bool,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct FigureArgs {
    /// Payload bytes per throughput run.
    #[arg(long, default_value_t = 200_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub bytes: u64,

    /// Throughput runs per path (the median is reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: u32,

    /// Echo latency samples per path (after 200 warm-ups).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub echo_samples: u32,

    /// New terminals timed from request to prompt, per path.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub prompt_samples: u32,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct LoadOpts {
    /// Terminal counts at which server memory is read (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    pub steps: Vec<usize>,

    /// Terminals that type during the echo-under-load test.
    #[arg(long, default_value_t = 500)]
    pub active: usize,

    /// Keystrokes per second per typing terminal.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,

    /// Seconds the echo probe samples while the terminals type.
    #[arg(long, default_value_t = 15.0)]
    pub active_secs: f64,

    /// Seconds of flood for the slow reader.
    #[arg(long, default_value_t = 15.0)]
    pub slow_secs: f64,

    /// Bytes per second the slow reader reads.
    #[arg(long, default_value_t = 65536)]
    pub slow_rate: u64,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct PeersArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub figures: FigureArgs,
    /// Write the markdown report to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct LoadArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub load: LoadOpts,
    /// Write the markdown report to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct SoakArgs {
    /// The cove binary to start.
    #[arg(long, value_name = "PATH")]
    pub cove: PathBuf,
    /// An extra argument for `cove serve` (repeat for several).
    #[arg(long = "serve-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub serve_args: Vec<String>,
    /// Minutes to run (fractions allowed).
    #[arg(long, default_value_t = 10.0)]
    pub minutes: f64,
    /// Concurrent sessions.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=2000))]
    pub sessions: u32,
    /// Write the markdown report to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct AllArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub figures: FigureArgs,
    #[command(flatten)]
    pub load: LoadOpts,
    /// Minutes of the soak; memory must stay flat over its second half.
    #[arg(long, default_value_t = 4.0)]
    pub soak_minutes: f64,
    /// Sessions of the soak.
    #[arg(long, default_value_t = 20)]
    pub soak_sessions: u32,
    /// Skip the `cove-bench terminal` details (bare PTY vs cove raw/JSON
    /// with protocol checks and the process tree).
    #[arg(long)]
    pub no_terminal_details: bool,
    /// The file to regenerate (the previous run is kept below the new one,
    /// and `## Browser…` sections are kept).
    #[arg(long, value_name = "FILE", default_value = "BENCHMARKS.md")]
    pub out: PathBuf,
}

fn conf(
    common: &CommonArgs,
    figures: Option<&FigureArgs>,
    load: Option<&LoadOpts>,
) -> Result<SuiteConf> {
    let mut peers = Vec::new();
    for p in &common.peers {
        if p.trim().is_empty() || p == "none" {
            continue;
        }
        match Peer::parse(p) {
            Some(x) if !peers.contains(&x) => peers.push(x),
            Some(_) => {}
            None => bail!("unknown peer {p:?} (jupyter, wetty, code-server)"),
        }
    }
    let f = figures.cloned().unwrap_or(FigureArgs {
        bytes: 200_000_000,
        runs: 3,
        echo_samples: 2000,
        prompt_samples: 20,
    });
    let l = load.cloned().unwrap_or(LoadOpts {
        steps: vec![100, 1000],
        active: 500,
        rate: 10.0,
        active_secs: 15.0,
        slow_secs: 15.0,
        slow_rate: 65536,
    });
    let mut steps = l.steps.clone();
    steps.sort_unstable();
    steps.dedup();
    steps.retain(|&n| n > 0);
    if steps.is_empty() {
        bail!("--steps needs at least one terminal count");
    }
    if l.active > *steps.last().unwrap_or(&0) {
        bail!("--active must not exceed the largest --steps count");
    }
    let serve_args = match &common.cove {
        Some(bin) => suite::cove_serve_args(bin, &common.serve_args),
        None => common.serve_args.clone(),
    };
    Ok(SuiteConf {
        cove: common.cove.clone(),
        serve_args,
        scratch: common.scratch.clone(),
        peers,
        install: !common.no_install,
        bytes: f.bytes,
        runs: f.runs,
        echo_samples: f.echo_samples,
        prompt_samples: f.prompt_samples,
        steps,
        active: l.active,
        rate: l.rate.clamp(0.1, 1000.0),
        active_secs: l.active_secs.clamp(1.0, 600.0),
        slow_secs: l.slow_secs.clamp(1.0, 600.0),
        slow_rate: l.slow_rate.max(1024),
    })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")
}

/// The cove binary's version and the git commit of the tree it was built
/// from (the repository this bench belongs to).
pub(crate) fn cove_version(bin: Option<&Path>) -> String {
    let Some(bin) = bin else {
        return "not given".into();
    };
    let version = std::process::Command::new(bin)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "version unknown".into());
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["log", "-1", "--format=%h %s (%cs)"]).unwrap_or_else(|| "unknown".into());
    let dirty = git(&[
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        "crates",
        "web",
    ])
    .unwrap_or_default();
    let dirty_n = dirty.lines().count();
    format!(
        "`{}` ({version}), git commit {commit}{}",
        bin.display(),
        if dirty_n > 0 {
            format!(" plus {dirty_n} uncommitted change(s) under crates/ or web/")
        } else {
            String::new()
        }
    )
}

/// Writes a report to `out`, or to stdout.
pub(crate) fn emit(out: Option<&Path>, text: &str) -> Result<()> {
    match out {
        Some(p) => {
            std::fs::write(p, text).with_context(|| format!("write {}", p.display()))?;
            progress(&format!("report written to {}", p.display()));
        }
        None => {
            let mut o = std::io::stdout().lock();
            o.write_all(text.as_bytes())?;
            o.flush()?;
        }
    }
    Ok(())
}

fn prepare() {
    let (soft, hard) = crate::procs::raise_nofile();
    progress(&format!("open files limit: soft {soft}, hard {hard}"));
}

struct Ctx {
    machine: Machine,
    date: String,
    command_line: String,
    start: Instant,
}

impl Ctx {
    fn new() -> Self {
        Self {
            machine: Machine::probe(),
            date: report::utc_now(),
            command_line: report::command_line(),
            start: Instant::now(),
        }
    }
}

fn render(
    ctx: &Ctx,
    title: &str,
    conf: &SuiteConf,
    res: &SuiteResults,
    soak: Option<&Result<SoakReport, String>>,
    measured_secs: f64,
) -> String {
    benchmarks::render(&Doc {
        title,
        conf,
        res,
        soak,
        machine: &ctx.machine,
        date: &ctx.date,
        command_line: &ctx.command_line,
        cove_version: &cove_version(conf.cove.as_deref()),
        total_secs: measured_secs,
    })
}

fn note_code_server(conf: &SuiteConf, res: &mut SuiteResults) {
    if conf.peers.contains(&Peer::CodeServer) {
        res.code_server_terminal = Some(CODE_SERVER_TERMINAL.to_string());
    }
}

pub(crate) fn peers(args: PeersArgs) -> Result<()> {
    prepare();
    let ctx = Ctx::new();
    let conf = conf(&args.common, Some(&args.figures), None)?;
    let mut res = SuiteResults::default();
    suite::install_peers(&conf, &mut res);
    note_code_server(&conf, &mut res);
    let t = Instant::now();
    runtime()?.block_on(suite::run_figures(&conf, &mut res));
    let md = render(
        &ctx,
        "cove-bench peers",
        &conf,
        &res,
        None,
        t.elapsed().as_secs_f64(),
    );
    emit(args.out.as_deref(), &md)
}

pub(crate) fn load(args: LoadArgs) -> Result<()> {
    prepare();
    let ctx = Ctx::new();
    let conf = conf(&args.common, None, Some(&args.load))?;
    let mut res = SuiteResults::default();
    suite::install_peers(&conf, &mut res);
    note_code_server(&conf, &mut res);
    let t = Instant::now();
    let rt = runtime()?;
    rt.block_on(suite::run_load(&conf, &mut res));
    rt.block_on(suite::run_slow(&conf, &mut res));
    let md = render(
        &ctx,
        "cove-bench load",
        &conf,
        &res,
        None,
        t.elapsed().as_secs_f64(),
    );
    emit(args.out.as_deref(), &md)
}

pub(crate) fn soak(args: SoakArgs) -> Result<()> {
    prepare();
    let ctx = Ctx::new();
    let sc = SoakConf {
        minutes: args.minutes.clamp(0.05, 24.0 * 60.0),
        sessions: args.sessions as usize,
    };
    let serve_args = suite::cove_serve_args(&args.cove, &args.serve_args);
    let r = runtime()?
        .block_on(soak::run(&args.cove, &serve_args, &sc))
        .map_err(|e| format!("{e:#}"));
    let mut s = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(s, "# cove-bench soak\n");
    let _ = writeln!(s, "- date: {}", ctx.date);
    let _ = writeln!(
        s,
        "- machine: {} CPUs, {}; {} RAM",
        ctx.machine.nproc, ctx.machine.cpu_model, ctx.machine.mem_total
    );
    let _ = writeln!(s, "- command: `{}`", ctx.command_line);
    let _ = writeln!(s, "- cove: {}", cove_version(Some(&args.cove)));
    let _ = writeln!(s, "- `cove serve` arguments: `{}`\n", serve_args.join(" "));
    match &r {
        Ok(rep) => benchmarks::soak_section(&mut s, rep),
        Err(e) => {
            let _ = writeln!(s, "Soak failed: {e}");
        }
    }
    emit(args.out.as_deref(), &s)?;
    let _ = ctx.start;
    match r {
        Ok(rep) if rep.errors == 0 && rep.flat() != Some(false) => Ok(()),
        Ok(rep) => bail!(
            "soak: {} error(s), memory {}",
            rep.errors,
            if rep.flat() == Some(false) {
                "grew"
            } else {
                "flat"
            }
        ),
        Err(e) => bail!("soak failed: {e}"),
    }
}

pub(crate) fn all(args: AllArgs) -> Result<()> {
    prepare();
    let ctx = Ctx::new();
    let conf = conf(&args.common, Some(&args.figures), Some(&args.load))?;
    let mut res = SuiteResults::default();
    let ti = Instant::now();
    suite::install_peers(&conf, &mut res);
    progress(&format!(
        "peers ready in {:.0} s (not counted)",
        ti.elapsed().as_secs_f64()
    ));
    note_code_server(&conf, &mut res);
    let t = Instant::now();
    let rt = runtime()?;
    rt.block_on(suite::run_figures(&conf, &mut res));
    rt.block_on(suite::run_load(&conf, &mut res));
    rt.block_on(suite::run_slow(&conf, &mut res));
    let soak = match &conf.cove {
        Some(bin) if args.soak_minutes > 0.0 && args.soak_sessions > 0 => {
            let ts = Instant::now();
            let sc = SoakConf {
                minutes: args.soak_minutes.clamp(0.05, 60.0),
                sessions: args.soak_sessions as usize,
            };
            let r = rt
                .block_on(soak::run(bin, &conf.serve_args, &sc))
                .map_err(|e| format!("{e:#}"));
            res.phase_secs
                .push(("soak".into(), ts.elapsed().as_secs_f64()));
            Some(r)
        }
        _ => None,
    };
    if !args.no_terminal_details {
        let ts = Instant::now();
        let targs = crate::TerminalArgs {
            cove: conf.cove.clone(),
            serve_args: conf.serve_args.clone(),
            bytes: conf.bytes,
            runs: conf.runs,
            echo_samples: conf.echo_samples,
            out: None,
        };
        res.terminal_details = Some(crate::terminal_report(&targs));
        res.phase_secs
            .push(("terminal details".into(), ts.elapsed().as_secs_f64()));
    }
    let md = render(
        &ctx,
        "Peers and load: `cove-bench all`",
        &conf,
        &res,
        soak.as_ref(),
        t.elapsed().as_secs_f64(),
    );
    benchmarks::write_benchmarks(&args.out, &md)?;
    progress(&format!(
        "{} regenerated; measuring took {:.1} min",
        args.out.display(),
        t.elapsed().as_secs_f64() / 60.0
    ));
    Ok(())
}
