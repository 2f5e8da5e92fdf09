//! The comparison report (`cove-bench peers|load|all`) and the regeneration of
//! BENCHMARKS.md: the new run replaces the old one between the run markers, the old run's
//! main part moves below under "Previous `cove-bench all` run (date)", and everything
//! written by hand around them is kept verbatim.

use std::fmt::Write as _;
use std::path::Path;

use crate::load::SlowFigures;
use crate::peers::Peer;
use crate::report::Machine;
use crate::soak::SoakReport;
use crate::stats::Latency;
use crate::suite::{PathRow, ServerRow, SuiteConf, SuiteResults};

pub(crate) const MAIN_BEGIN: &str = "<!-- cove-bench:main -->";
pub(crate) const MAIN_END: &str = "<!-- /cove-bench:main -->";

/// Goals of the project's issue.
pub(crate) const GOAL_BARE_RATIO: f64 = 0.80;
pub(crate) const GOAL_JUPYTER_RATIO: f64 = 3.0;
pub(crate) const GOAL_ECHO_DELTA_US: f64 = 500.0;
pub(crate) const GOAL_LOAD_P99_US: f64 = 5000.0;
pub(crate) const GOAL_PER_TERMINAL_KIB: f64 = 100.0;
pub(crate) const GOAL_TERMINALS: usize = 1000;

pub(crate) struct Doc<'a> {
    pub title: &'a str,
    pub conf: &'a SuiteConf,
    pub res: &'a SuiteResults,
    pub soak: Option<&'a Result<SoakReport, String>>,
    pub machine: &'a Machine,
    pub date: &'a str,
    pub command_line: &'a str,
    pub cove_version: &'a str,
    pub total_secs: f64,
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ").replace('|', "\\|")
}

fn f1(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "–".into())
}

fn f2(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "–".into())
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn path<'a>(res: &'a SuiteResults, name: &str) -> Option<&'a PathRow> {
    res.paths.iter().find(|p| p.name == name)
}

fn server<'a>(res: &'a SuiteResults, name: &str) -> Option<&'a ServerRow> {
    res.servers.iter().find(|s| s.name == name)
}

fn slow<'a>(res: &'a SuiteResults, target: &str) -> Option<&'a SlowFigures> {
    res.slow
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .find(|s| s.target == target)
}

/// The server a client path belongs to.
fn server_of(path_name: &str) -> &str {
    if path_name.starts_with("cove") {
        "cove"
    } else {
        path_name
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn met(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "**met**",
        Some(false) => "**not met**",
        None => "not measured",
    }
}

fn lat_ms(l: Option<&Latency>, f: fn(&Latency) -> f64) -> String {
    l.map(|l| format!("{:.2}", f(l) / 1e3))
        .unwrap_or_else(|| "–".into())
}

/// Renders the new run (without the previous run or browser sections).
pub(crate) fn render(d: &Doc) -> String {
    let mut s = String::new();
    let conf = d.conf;
    let res = d.res;
    let m = d.machine;
    let _ = writeln!(s, "# {}\n", d.title);
    let _ = writeln!(s, "{MAIN_BEGIN}\n");
    let _ = writeln!(s, "- date: {}", d.date);
    let _ = writeln!(
        s,
        "- machine: {} CPUs (nproc), {}; {} RAM; {}",
        m.nproc, m.cpu_model, m.mem_total, m.kernel
    );
    let _ = writeln!(
        s,
        "- load average (1/5/15 min): {} before, {} after",
        m.load_start,
        crate::report::loadavg()
    );
    let _ = writeln!(s, "- command: `{}`", d.command_line);
    let _ = writeln!(s, "- cove: {}", d.cove_version);
    let _ = writeln!(
        s,
        "- `cove serve` arguments (besides `--bind-addr 127.0.0.1:0 --data-dir <temp> --auth none`): \
         `{}`: cove's default sandbox, with the limits raised so that one workspace can hold \
         1,000 shells and use the whole machine, as the peers (no limits) can",
        conf.serve_args.join(" ")
    );
    for i in &res.installs {
        match &i.result {
            Ok(inst) => {
                let _ = writeln!(
                    s,
                    "- {}: {} (installed by the bench under `{}`; first install {:.0} s{}, not counted)",
                    i.peer.title(),
                    inst.versions_text(),
                    inst.dir.display(),
                    inst.install_secs,
                    if inst.cached {
                        ", reused"
                    } else {
                        ", this run"
                    }
                );
            }
            Err(e) => {
                let _ = writeln!(
                    s,
                    "- {}: **not installed**: {}",
                    i.peer.title(),
                    one_line(e)
                );
            }
        }
    }
    let phases: Vec<String> = res
        .phase_secs
        .iter()
        .map(|(p, t)| format!("{p} {t:.0} s"))
        .collect();
    let _ = writeln!(
        s,
        "- duration: {:.1} min in all ({}), peer installs excluded",
        d.total_secs / 60.0,
        phases.join(", ")
    );
    let _ = writeln!(
        s,
        "- every shell: `bash --norc --noprofile -i`, `PS1='$ '`, 200x50; one client program \
         (this bench, tokio + tungstenite, `TCP_NODELAY`) for every server; everything on 127.0.0.1"
    );

    // Goals.
    let bare = path(res, "bare PTY");
    let raw = path(res, "cove raw socket");
    let json = path(res, "cove JSON socket");
    let jup = path(res, Peer::Jupyter.title());
    let bare_mbps = bare.and_then(|p| p.mbps(conf.bytes));
    let raw_mbps = raw.and_then(|p| p.mbps(conf.bytes));
    let json_mbps = json.and_then(|p| p.mbps(conf.bytes));
    let jup_mbps = jup.and_then(|p| p.mbps(conf.bytes));
    let bare_p99 = bare.and_then(|p| p.echo.as_ref().ok()).map(|l| l.p99);
    let raw_p99 = raw.and_then(|p| p.echo.as_ref().ok()).map(|l| l.p99);
    let json_p99 = json.and_then(|p| p.echo.as_ref().ok()).map(|l| l.p99);
    let cove_srv = server(res, "cove");
    let _ = writeln!(s, "\n## Goals\n");
    let _ = writeln!(s, "| goal | measured | |");
    let _ = writeln!(s, "|---|---|---|");
    let r_bare = ratio(raw_mbps, bare_mbps);
    let _ = writeln!(
        s,
        "| throughput ≥ 80% of the bare PTY | raw socket {} MB/s = {} of {} MB/s (JSON socket {}) | {} |",
        f1(raw_mbps),
        pct(r_bare),
        f1(bare_mbps),
        pct(ratio(json_mbps, bare_mbps)),
        met(r_bare.map(|r| r >= GOAL_BARE_RATIO))
    );
    let r_jup = ratio(raw_mbps, jup_mbps);
    let _ = writeln!(
        s,
        "| throughput ≥ 3× Jupyter's terminals | {} MB/s vs {} MB/s = {}× (JSON socket {}×) | {} |",
        f1(raw_mbps),
        f1(jup_mbps),
        f2(r_jup),
        f2(ratio(json_mbps, jup_mbps)),
        met(r_jup.map(|r| r >= GOAL_JUPYTER_RATIO))
    );
    let delta = raw_p99.zip(bare_p99).map(|(a, b)| a - b);
    let _ = writeln!(
        s,
        "| echo p99 within 0.5 ms of the bare PTY (idle) | raw {} µs vs bare {} µs: +{} µs (JSON {} µs) | {} |",
        f1(raw_p99),
        f1(bare_p99),
        f1(delta),
        f1(json_p99),
        met(delta.map(|x| x <= GOAL_ECHO_DELTA_US))
    );
    let load_p99 = cove_srv
        .and_then(|r| r.active.as_ref().ok())
        .map(|a| a.latency.p99);
    let load_n = cove_srv
        .and_then(|r| r.active.as_ref().ok())
        .map(|a| a.terminals)
        .unwrap_or(0);
    let _ = writeln!(
        s,
        "| echo p99 < 5 ms with {} active terminals | {} ms | {} |",
        conf.active,
        lat_ms(
            cove_srv
                .and_then(|r| r.active.as_ref().ok())
                .map(|a| &a.latency),
            |l| l.p99
        ),
        met(load_p99.map(|x| x < GOAL_LOAD_P99_US && load_n >= conf.active))
    );
    let per = cove_srv.and_then(|r| r.per_terminal_kib());
    let _ = writeln!(
        s,
        "| < 100 KiB of server memory per idle terminal | {} KiB (server + runner, shells excluded) | {} |",
        f1(per),
        met(per.map(|x| x < GOAL_PER_TERMINAL_KIB))
    );
    let held = cove_srv.and_then(|r| r.held_all());
    let _ = writeln!(
        s,
        "| {GOAL_TERMINALS} concurrent terminals, no errors | {} | {} |",
        match (held, cove_srv) {
            (Some((n, opened, _)), Some(r)) => format!(
                "{opened} of {n} open; liveness check {}/{}; {} error(s)",
                r.check.map(|c| c.0).unwrap_or(0),
                opened,
                r.held_error_count
            ),
            _ => "–".into(),
        },
        met(held.map(|(n, opened, clean)| clean && opened >= GOAL_TERMINALS && n >= GOAL_TERMINALS))
    );
    if let Some(soak) = d.soak {
        match soak {
            Ok(r) => {
                let _ = writeln!(
                    s,
                    "| soak: zero errors, flat memory | {} sessions × {:.1} min: {} error(s); server + runners {} → {} MiB | {} |",
                    r.sessions,
                    r.minutes,
                    r.errors,
                    r.baseline_kib().map(mib).unwrap_or_else(|| "–".into()),
                    r.mem_end
                        .as_ref()
                        .map(|m| mib(m.kib))
                        .unwrap_or_else(|| "–".into()),
                    met(r.flat().map(|f| f && r.errors == 0))
                );
            }
            Err(e) => {
                let _ = writeln!(s, "| soak | failed: {} | **not met** |", one_line(e));
            }
        }
    }

    // Main table 1.
    let _ = writeln!(
        s,
        "\n## Terminal: throughput, keystroke echo, new terminal\n"
    );
    let _ = writeln!(
        s,
        "| path | throughput MB/s | vs bare | echo p50 µs | echo p99 µs | p99 − bare µs | new terminal → prompt p50 ms | p99 ms |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for p in &res.paths {
        let mbps = p.mbps(conf.bytes);
        let e = p.echo.as_ref().ok();
        let pr = p.prompt.as_ref().ok();
        let all_failed = p.throughput.is_err() && e.is_none() && pr.is_none();
        if all_failed {
            let _ = writeln!(
                s,
                "| {} | not measured: {} | | | | | | |",
                p.name,
                one_line(
                    p.throughput
                        .as_ref()
                        .err()
                        .map(String::as_str)
                        .unwrap_or("")
                )
            );
            continue;
        }
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            p.name,
            f1(mbps),
            pct(ratio(mbps, bare_mbps)),
            f1(e.map(|l| l.p50)),
            f1(e.map(|l| l.p99)),
            e.zip(bare_p99)
                .map(|(l, b)| format!("{:+.1}", l.p99 - b))
                .unwrap_or_else(|| "–".into()),
            lat_ms(pr, |l| l.p50),
            lat_ms(pr, |l| l.p99),
        );
    }
    if res.code_server_terminal.is_some() {
        let _ = writeln!(s, "| code-server | not measured (see below) | | | | | | |");
    }
    let _ = writeln!(
        s,
        "\nThroughput: `{}` typed into the shell; MB = 10^6 payload bytes over the time from \
         the keystroke to the marker; median of {} runs, each on a fresh terminal. Echo: \
         `stty raw -echo; exec cat` typed into the shell, then one character written and timed \
         until it comes back; 200 warm-ups + {} samples. New terminal → prompt: from the request \
         (cove: the WebSocket/`create_terminal`; Jupyter: `POST /api/terminals` + WebSocket; \
         wetty: the Socket.IO connection; bare: fork) to the first `$ ` of the prompt, {} \
         terminals one after the other.",
        crate::pty::throughput_command(conf.bytes),
        conf.runs,
        conf.echo_samples,
        conf.prompt_samples
    );

    // Main table 2.
    let steps: Vec<usize> = conf.steps.clone();
    let _ = writeln!(s, "\n## Server memory and load\n");
    let mut head = String::from("| server | idle MiB |");
    let mut sep = String::from("|---|---:|");
    for n in &steps {
        let _ = write!(head, " {n} terminals MiB |");
        sep.push_str("---:|");
    }
    let _ = write!(
        head,
        " per terminal KiB | terminals held | echo p50 / p99 ms, {} typing | slow reader: peak MiB |",
        conf.active
    );
    sep.push_str("---:|---|---:|---:|");
    let _ = writeln!(s, "{head}\n{sep}");
    for r in &res.servers {
        if let Some(why) = &r.not_measured {
            let _ = writeln!(s, "| {} | not measured: {} |", r.name, one_line(why));
            continue;
        }
        let mut line = format!(
            "| {} | {} |",
            r.name,
            r.idle
                .as_ref()
                .map(|m| mib(m.kib))
                .unwrap_or_else(|_| "–".into())
        );
        for n in &steps {
            let cell = r
                .steps
                .iter()
                .find(|st| st.terminals == *n)
                .and_then(|st| st.mem.as_ref().ok())
                .map(|m| mib(m.kib))
                .unwrap_or_else(|| "–".into());
            let _ = write!(line, " {cell} |");
        }
        let held = match r.held_all() {
            Some((n, opened, clean)) => format!(
                "{opened}/{n}{}",
                if clean {
                    ", all answered".to_string()
                } else {
                    format!(", {} error(s)", r.held_error_count)
                }
            ),
            None => "–".into(),
        };
        let active = match &r.active {
            Ok(a) => format!("{:.2} / {:.2}", a.latency.p50 / 1e3, a.latency.p99 / 1e3),
            Err(_) => "–".into(),
        };
        let slow_peak = slow_cell(res, &r.name);
        let _ = writeln!(
            line,
            " {} | {held} | {active} | {slow_peak} |",
            f1(r.per_terminal_kib())
        );
        s.push_str(&line);
    }
    let _ = writeln!(
        s,
        "\nMemory: VmRSS of the server's own processes (cove: the server, with one running \
         workspace: its runner and sandbox processes; \
         Jupyter: the Python server; wetty: node; code-server: its node processes), shells and \
         their children excluded, read 2 s after the terminals are open. Per terminal: {}. \
         Terminals are held with a WebSocket \
         each (cove: the raw socket), all read by one client thread; \"all answered\": at the end \
         every terminal got Enter and showed its prompt again. Echo under load: {} terminals \
         each type {} keystrokes a second (`echo hi` + Enter, a builtin) while a separate \
         `cat` terminal is timed for {:.0} s. Slow reader: one client reads {} KiB/s while \
         `head -c 20000000000 /dev/zero | tr '\\0' a` floods for {:.0} s (details below).",
        match steps.as_slice() {
            [n] => format!("(RSS at {n} − idle RSS) / {n}"),
            [first, .., last] =>
                format!("(RSS at {last} − RSS at {first}) / the terminals between"),
            [] => "–".into(),
        },
        conf.active,
        conf.rate,
        conf.active_secs,
        conf.slow_rate / 1024,
        conf.slow_secs
    );

    // Ratios.
    let _ = writeln!(s, "\n## cove against each peer\n");
    let peers: Vec<&str> = res
        .installs
        .iter()
        .map(|i| i.peer.title())
        .filter(|n| *n != Peer::CodeServer.title())
        .collect();
    let mut head = String::from("| figure (cove raw socket) | vs bare PTY |");
    let mut sep = String::from("|---|---:|");
    for p in &peers {
        let _ = write!(head, " vs {p} |");
        sep.push_str("---:|");
    }
    let _ = write!(head, " vs code-server |");
    sep.push_str("---:|");
    let _ = writeln!(s, "{head}\n{sep}");
    let cove_row = |f: &dyn Fn(&str) -> Option<f64>, higher_better: bool, label: &str| {
        let c = f("cove raw socket");
        let mut line = format!("| {label} |");
        let mut cols: Vec<&str> = vec!["bare PTY"];
        cols.extend(peers.iter().copied());
        cols.push(Peer::CodeServer.title());
        for col in cols {
            let r = ratio(c, f(col));
            let cell = match r {
                Some(r) => {
                    let better = if higher_better { r >= 1.0 } else { r <= 1.0 };
                    format!("{r:.2}×{}", if better { "" } else { " (worse)" })
                }
                None => "–".into(),
            };
            let _ = write!(line, " {cell} |");
        }
        line
    };
    let mbps = |n: &str| path(res, n).and_then(|p| p.mbps(conf.bytes));
    let p99 = |n: &str| {
        path(res, n)
            .and_then(|p| p.echo.as_ref().ok())
            .map(|l| l.p99)
    };
    let prompt = |n: &str| {
        path(res, n)
            .and_then(|p| p.prompt.as_ref().ok())
            .map(|l| l.p50)
    };
    let idle = |n: &str| {
        server(res, server_of(n))
            .and_then(|r| r.idle.as_ref().ok())
            .map(|m| m.kib as f64)
    };
    let per_t = |n: &str| server(res, server_of(n)).and_then(|r| r.per_terminal_kib());
    let loadp = |n: &str| {
        server(res, server_of(n))
            .and_then(|r| r.active.as_ref().ok())
            .map(|a| a.latency.p99)
    };
    let slowp = |n: &str| slow(res, n).map(|f| f.peak_kib as f64);
    let _ = writeln!(
        s,
        "{}",
        cove_row(&mbps, true, "throughput (higher is better)")
    );
    let _ = writeln!(
        s,
        "{}",
        cove_row(&p99, false, "echo p99, idle (lower is better)")
    );
    let _ = writeln!(
        s,
        "{}",
        cove_row(&prompt, false, "new terminal → prompt p50")
    );
    let _ = writeln!(s, "{}", cove_row(&idle, false, "server memory, idle"));
    let _ = writeln!(
        s,
        "{}",
        cove_row(&per_t, false, "server memory per terminal")
    );
    let _ = writeln!(s, "{}", cove_row(&loadp, false, "echo p99, 500 typing"));
    let _ = writeln!(
        s,
        "{}",
        cove_row(&slowp, false, "slow reader: peak server memory")
    );
    let _ = writeln!(
        s,
        "\nA ratio is cove's figure divided by the other's (1.50× throughput: cove moves 1.5 \
         times as much; 0.50× memory: cove uses half). For the bare PTY only the figures that \
         exist without a server are compared."
    );
    let _ = writeln!(s, "\n{MAIN_END}");

    details(&mut s, d);
    s
}

fn opt_mib(kib: Option<u64>) -> String {
    kib.map(mib).unwrap_or_else(|| "–".into())
}

fn pct(r: Option<f64>) -> String {
    r.map(|r| format!("{:.0}%", r * 100.0))
        .unwrap_or_else(|| "–".into())
}

fn slow_cell(res: &SuiteResults, server_name: &str) -> String {
    let figs: Vec<&SlowFigures> = res
        .slow
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|f| server_of(&f.target) == server_name)
        .collect();
    if figs.is_empty() {
        return "–".into();
    }
    figs.iter()
        .map(|f| {
            let tag = if f.target.starts_with("cove raw") {
                " (raw)"
            } else if f.target.starts_with("cove JSON") {
                " (JSON)"
            } else {
                ""
            };
            let mark = if f.stopped_early.is_some() {
                " (capped)"
            } else if f.ended.is_some() {
                " (dropped)"
            } else {
                ""
            };
            format!("{}{tag}{mark}", mib(f.peak_kib))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn details(s: &mut String, d: &Doc) {
    let res = d.res;
    let conf = d.conf;
    let _ = writeln!(s, "\n## Details\n");
    if let Some(why) = &res.code_server_terminal {
        let _ = writeln!(s, "**code-server terminals: not measured.** {why}.\n");
    }
    // Throughput runs.
    let _ = writeln!(s, "### Throughput runs\n");
    let _ = writeln!(
        s,
        "| path | run | seconds | MB/s | bytes received | messages | bytes per message |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|");
    for p in &res.paths {
        match &p.throughput {
            Ok(runs) => {
                for (i, r) in runs.iter().enumerate() {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {:.3} | {:.1} | {} | {} | {:.0} |",
                        p.name,
                        i + 1,
                        r.secs,
                        conf.bytes as f64 / 1e6 / r.secs,
                        r.received,
                        r.chunks,
                        r.received as f64 / r.chunks.max(1) as f64
                    );
                }
            }
            Err(e) => {
                let _ = writeln!(s, "| {} | – | failed: {} | | | | |", p.name, one_line(e));
            }
        }
    }
    let mut failures = Vec::new();
    for p in &res.paths {
        if let Err(e) = &p.echo
            && p.throughput.is_ok()
        {
            failures.push(format!("{} echo: {}", p.name, one_line(e)));
        }
        if let Err(e) = &p.prompt
            && p.throughput.is_ok()
        {
            failures.push(format!("{} new terminal: {}", p.name, one_line(e)));
        }
    }
    if !failures.is_empty() {
        let _ = writeln!(s, "\nFailures:\n");
        for f in failures {
            let _ = writeln!(s, "- {f}");
        }
    }
    // Echo detail.
    let _ = writeln!(s, "\n### Keystroke echo (idle), µs\n");
    let _ = writeln!(s, "| path | samples | p50 | p90 | p99 | max |");
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|");
    for p in &res.paths {
        if let Ok(l) = &p.echo {
            let _ = writeln!(
                s,
                "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
                p.name, l.samples, l.p50, l.p90, l.p99, l.max
            );
        }
    }
    // Load detail.
    let _ = writeln!(s, "\n### Load\n");
    let _ = writeln!(
        s,
        "| server | step | open / failed | seconds to open | server MiB | server processes | shells (count, MiB) |"
    );
    let _ = writeln!(s, "|---|---:|---|---:|---:|---|---|");
    for r in &res.servers {
        if r.not_measured.is_some() {
            continue;
        }
        if let Ok(m) = &r.idle {
            let _ = writeln!(
                s,
                "| {} | idle | – | – | {} | {} | {}, {} |",
                r.name,
                mib(m.kib),
                one_line(&m.describe()),
                m.shells,
                mib(m.shells_kib)
            );
        }
        for st in &r.steps {
            let (mem, procs, shells) = match &st.mem {
                Ok(m) => (
                    mib(m.kib),
                    one_line(&m.describe()),
                    format!("{}, {}", m.shells, mib(m.shells_kib)),
                ),
                Err(e) => ("–".into(), one_line(e), "–".into()),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} / {} | {:.1} | {mem} | {procs} | {shells} |",
                r.name, st.terminals, st.opened, st.failed, st.open_secs
            );
        }
    }
    let _ = writeln!(
        s,
        "\n| server | new terminal → prompt while opening, p50 / p99 ms | typing terminals | keystrokes/s achieved | probe samples | echo p50 / p90 / p99 / max ms | server MiB before → after typing | liveness | errors |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---|---|---|---|");
    for r in &res.servers {
        if r.not_measured.is_some() || (r.steps.is_empty() && r.active.is_err()) {
            continue;
        }
        let open = r
            .open_ms
            .as_ref()
            .map(|l| format!("{:.1} / {:.1}", l.p50 / 1e3, l.p99 / 1e3))
            .unwrap_or_else(|| "–".into());
        let (n, rate, samples, echo, memba) = match &r.active {
            Ok(a) => (
                a.terminals.to_string(),
                format!("{:.0}", a.keys as f64 / a.secs.max(0.001)),
                a.latency.samples.to_string(),
                format!(
                    "{:.2} / {:.2} / {:.2} / {:.2}",
                    a.latency.p50 / 1e3,
                    a.latency.p90 / 1e3,
                    a.latency.p99 / 1e3,
                    a.latency.max / 1e3
                ),
                match (&a.mem_before, &a.mem_after) {
                    (Some(b), Some(af)) => format!("{} → {}", mib(b.kib), mib(af.kib)),
                    _ => "–".into(),
                },
            ),
            Err(e) => (
                "–".into(),
                "–".into(),
                "–".into(),
                format!("failed: {}", one_line(e)),
                "–".into(),
            ),
        };
        let live = r
            .check
            .map(|(ok, f)| format!("{ok} answered, {f} failed"))
            .unwrap_or_else(|| "–".into());
        let _ = writeln!(
            s,
            "| {} | {open} | {n} | {rate} | {samples} | {echo} | {memba} | {live} | {} |",
            r.name, r.held_error_count
        );
    }
    for r in &res.servers {
        if !r.held_errors.is_empty() {
            let _ = writeln!(
                s,
                "\n{} errors ({} in all; first ones):\n",
                r.name, r.held_error_count
            );
            for e in &r.held_errors {
                let _ = writeln!(s, "- {}", one_line(e));
            }
        }
        for n in &r.notes {
            let _ = writeln!(s, "- {}: {}", r.name, one_line(n));
        }
    }
    // Slow reader.
    let _ = writeln!(s, "\n### Slow reader\n");
    let _ = writeln!(
        s,
        "| path | server MiB before | peak | at the end | client read KiB/s | client received MB | seconds | outcome |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---|");
    for r in &res.slow {
        match r {
            Ok(f) => {
                let outcome = match (&f.stopped_early, &f.ended) {
                    (Some(e), _) => e.clone(),
                    (None, Some(e)) => e.clone(),
                    (None, None) => "connection kept".into(),
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {:.2} | {:.1} | {} |",
                    f.target,
                    f.before
                        .as_ref()
                        .map(|m| mib(m.kib))
                        .unwrap_or_else(|| "–".into()),
                    mib(f.peak_kib),
                    f.end
                        .as_ref()
                        .map(|m| mib(m.kib))
                        .unwrap_or_else(|| "–".into()),
                    f.rate / 1024,
                    f.received as f64 / 1e6,
                    f.secs,
                    one_line(&outcome)
                );
            }
            Err((name, e)) => {
                let _ = writeln!(s, "| {name} | not measured: {} | | | | | | |", one_line(e));
            }
        }
    }
    // Soak.
    if let Some(soak) = d.soak {
        let _ = writeln!(s, "\n### Soak\n");
        match soak {
            Ok(r) => soak_section(s, r),
            Err(e) => {
                let _ = writeln!(s, "Soak failed: {}", one_line(e));
            }
        }
    }
    if let Some(t) = &res.terminal_details {
        let _ = writeln!(
            s,
            "\n### `cove-bench terminal` (separate runs: bare PTY read synchronously, \
             cove's protocol checks, the process tree)\n"
        );
        let body: String = t
            .lines()
            .skip_while(|l| l.starts_with("# ") || l.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        s.push_str(demote_by(&body, 2).trim_end());
        s.push('\n');
    }
    if !res.notes.is_empty() {
        let _ = writeln!(s, "\n### Notes\n");
        for n in &res.notes {
            let _ = writeln!(s, "- {}", one_line(n));
        }
    }
}

pub(crate) fn soak_section(s: &mut String, r: &SoakReport) {
    let _ = writeln!(
        s,
        "{} sessions in {} workspace(s) for {:.1} min ({:.0} s): each types `echo …` a key at a \
         time (every key's echo timed), prints 100 kB of long lines, and writes then reads back \
         a 4-32 KiB file over the control socket.\n",
        r.sessions, r.workspaces, r.minutes, r.secs
    );
    let _ = writeln!(
        s,
        "- errors: **{}**{}",
        r.errors,
        if r.errors == 0 { "" } else { " (must be zero)" }
    );
    let _ = writeln!(
        s,
        "- server + runners: {} MiB when the sessions had opened, {} MiB after the first \
         minute, {} MiB at the end (sessions open), {} MiB once they closed; the end against \
         {} (the first half is warm-up): {}",
        opt_mib(r.mem_start.as_ref().map(|m| m.kib)),
        opt_mib(r.rows.first().and_then(|m| m.mem_kib)),
        opt_mib(r.mem_end.as_ref().map(|m| m.kib)),
        opt_mib(r.mem_closed.as_ref().map(|m| m.kib)),
        if r.rows.len() >= 2 {
            format!(
                "the end of minute {} ({} MiB)",
                r.rows.len() / 2,
                opt_mib(r.baseline_kib())
            )
        } else {
            "the opening".to_string()
        },
        match r.flat() {
            Some(true) => "flat (within max(2 MiB, 5%))",
            Some(false) => "**grew**",
            None => "not measured",
        }
    );
    if let Some(l) = &r.total_echo {
        let _ = writeln!(
            s,
            "- keystroke echo over the whole soak: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} keys)",
            l.p50 / 1e3,
            l.p99 / 1e3,
            l.max / 1e3,
            l.samples
        );
    }
    if let Some(l) = &r.total_file {
        let _ = writeln!(
            s,
            "- write_file + read_file round trip: p50 {:.2} ms, p99 {:.2} ms ({} files)",
            l.p50 / 1e3,
            l.p99 / 1e3,
            l.samples
        );
    }
    let _ = writeln!(
        s,
        "\n| minute | keys | echo p50 ms | p99 ms | max ms | commands | outputs (MB) | files | file p50 ms | p99 ms | errors | server + runners MiB at the minute's end |"
    );
    let _ = writeln!(
        s,
        "|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"
    );
    for m in &r.rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} ({:.1}) | {} | {} | {} | {} | {} |",
            m.minute,
            m.keys,
            lat_ms(m.echo.as_ref(), |l| l.p50),
            lat_ms(m.echo.as_ref(), |l| l.p99),
            lat_ms(m.echo.as_ref(), |l| l.max),
            m.commands,
            m.outputs,
            m.output_bytes as f64 / 1e6,
            m.files,
            lat_ms(m.file_rtt.as_ref(), |l| l.p50),
            lat_ms(m.file_rtt.as_ref(), |l| l.p99),
            m.errors,
            m.mem_kib.map(mib).unwrap_or_else(|| "–".into())
        );
    }
    if !r.error_samples.is_empty() {
        let _ = writeln!(s, "\nFirst errors:\n");
        for e in &r.error_samples {
            let _ = writeln!(s, "- {}", one_line(e));
        }
    }
    for n in &r.notes {
        let _ = writeln!(s, "- {}", one_line(n));
    }
}

// ---------------------------------------------------------------------------
// BENCHMARKS.md: the generated run between markers, everything else kept

/// The generated run in BENCHMARKS.md sits between these; text before and after them is
/// written by hand and kept verbatim.
pub(crate) const RUN_BEGIN: &str = "<!-- cove-bench:run -->";
pub(crate) const RUN_END: &str = "<!-- /cove-bench:run -->";
/// The previous run's main part, kept below so that a regression shows.
pub(crate) const PREVIOUS_BEGIN: &str = "<!-- cove-bench:previous -->";
pub(crate) const PREVIOUS_END: &str = "<!-- /cove-bench:previous -->";

/// An existing BENCHMARKS.md, split into what the regeneration keeps.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct OldDoc {
    /// Hand-written text before the generated run.
    pub head: String,
    /// Hand-written text after the generated run (the previous run left out).
    pub tail: String,
    /// The old run's main part (between the main markers).
    pub main: String,
    /// The date of the old run (`- date: …`), if found.
    pub date: Option<String>,
}

/// `text` without the block from `begin` to `end` (markers included), if present.
fn cut(text: &str, begin: &str, end: &str) -> String {
    match (text.find(begin), text.find(end)) {
        (Some(a), Some(b)) if b > a => format!("{}{}", &text[..a], &text[b + end.len()..]),
        _ => text.to_string(),
    }
}

pub(crate) fn parse_old(text: &str) -> OldDoc {
    let (head, run, tail) = match (text.find(RUN_BEGIN), text.find(RUN_END)) {
        (Some(a), Some(b)) if b > a => (
            &text[..a],
            &text[a + RUN_BEGIN.len()..b],
            cut(&text[b + RUN_END.len()..], PREVIOUS_BEGIN, PREVIOUS_END),
        ),
        // Before the run markers: the run started at the main marker and ran to the end.
        _ => match text.find(MAIN_BEGIN) {
            Some(a) => (&text[..a], &text[a..], String::new()),
            None => (text, "", String::new()),
        },
    };
    let main = match (run.find(MAIN_BEGIN), run.find(MAIN_END)) {
        (Some(a), Some(b)) if b > a => run[a + MAIN_BEGIN.len()..b].trim().to_string(),
        _ => run.trim().to_string(),
    };
    OldDoc {
        head: head.trim_end().to_string(),
        tail: tail.trim().to_string(),
        date: main
            .lines()
            .find_map(|l| l.trim().strip_prefix("- date:"))
            .map(|d| d.trim().to_string()),
        main,
    }
}

/// The level of the biggest heading in `text` (outside code blocks).
fn top_heading(text: &str) -> Option<usize> {
    lines_with_headings(text)
        .filter_map(|(_, level)| level)
        .min()
}

/// Pushes every heading of `text` down by `n` levels (at most `######`).
pub(crate) fn demote_by(text: &str, n: usize) -> String {
    let mut out = String::new();
    for (line, level) in lines_with_headings(text) {
        match level {
            Some(hashes) => {
                out.push_str(&"#".repeat((hashes + n).min(6)));
                out.push_str(&line[hashes..]);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Each line of `text` with its heading level (`## x` is 2), `None` for other lines and
/// for anything inside a code fence.
fn lines_with_headings(text: &str) -> impl Iterator<Item = (&str, Option<usize>)> {
    let mut in_code = false;
    text.lines().map(move |line| {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        }
        let hashes = line.bytes().take_while(|&b| b == b'#').count();
        let heading = !in_code && hashes > 0 && line[hashes..].starts_with(' ');
        (line, heading.then_some(hashes))
    })
}

/// Demotes `text` so that its biggest heading has `level`.
fn headings_from(text: &str, level: usize) -> String {
    let n = top_heading(text).map_or(0, |top| level.saturating_sub(top));
    demote_by(text, n)
}

/// The new BENCHMARKS.md: the hand-written head, the new run (its headings under level 2),
/// the hand-written tail, then the previous run's main part.
pub(crate) fn assemble(new_run: &str, old: Option<&OldDoc>) -> String {
    let head = old
        .map(|o| o.head.as_str())
        .filter(|h| !h.trim().is_empty())
        .unwrap_or("# cove benchmarks");
    let mut s = format!("{head}\n\n{RUN_BEGIN}\n\n");
    s.push_str(headings_from(new_run, 2).trim());
    let _ = write!(s, "\n\n{RUN_END}\n");
    if let Some(old) = old {
        if !old.tail.is_empty() {
            let _ = write!(s, "\n{}\n", old.tail);
        }
        if !old.main.is_empty() {
            let _ = writeln!(
                s,
                "\n{PREVIOUS_BEGIN}\n\n## Previous `cove-bench all` run ({})\n",
                old.date.as_deref().unwrap_or("date unknown")
            );
            s.push_str(headings_from(&old.main, 3).trim());
            let _ = writeln!(s, "\n\n{PREVIOUS_END}");
        }
    }
    s
}

/// Reads the old file (if any) and writes the new one.
pub(crate) fn write_benchmarks(path: &Path, new_run: &str) -> anyhow::Result<()> {
    let old = std::fs::read_to_string(path).ok().map(|t| parse_old(&t));
    let text = assemble(new_run, old.as_ref());
    std::fs::write(path, text)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HAND_HEAD: &str =
        "# cove benchmarks\n\nWritten by hand.\n\n## Browser\n\nbrowser figures\n";

    fn run(date: &str, figure: &str) -> String {
        format!(
            "# Peers and load\n\n{MAIN_BEGIN}\n\n- date: {date}\n\n## Goals\n\n{figure}\n\n{MAIN_END}\n\n## Details\n\ndetails of {date}\n"
        )
    }

    #[test]
    fn regenerating_keeps_the_hand_written_parts_and_one_previous_run() {
        let first = assemble(&run("D1", "g1"), Some(&parse_old(HAND_HEAD)));
        assert!(first.starts_with(HAND_HEAD.trim_end()));
        assert!(first.contains("## Peers and load\n"), "{first}");
        assert!(first.contains("### Goals\n"), "{first}");
        let with_tail = first.replace(
            &format!("{RUN_END}\n"),
            &format!("{RUN_END}\n\n## Notes by hand\n\nkept\n"),
        );
        let second = assemble(&run("D2", "g2"), Some(&parse_old(&with_tail)));
        let third = assemble(&run("D3", "g3"), Some(&parse_old(&second)));
        for doc in [&second, &third] {
            assert_eq!(doc.matches("Written by hand.").count(), 1, "{doc}");
            assert_eq!(doc.matches("browser figures").count(), 1, "{doc}");
            assert_eq!(doc.matches("## Notes by hand").count(), 1, "{doc}");
            assert_eq!(doc.matches(RUN_BEGIN).count(), 1, "{doc}");
            assert_eq!(
                doc.matches("## Previous `cove-bench all` run").count(),
                1,
                "{doc}"
            );
        }
        assert!(third.contains("g3") && third.contains("g2") && !third.contains("g1"));
        assert!(third.contains("run (D2)"));
        let previous = &third[third.find("## Previous").unwrap()..];
        assert!(
            previous.contains("\n### Goals\n"),
            "under the previous run's heading"
        );
        assert!(
            !third.contains("details of D2"),
            "only the main part is kept"
        );
    }

    #[test]
    fn a_file_from_before_the_run_markers_is_migrated() {
        let old_run = run("D0", "g0").replace("# Peers and load\n\n", "");
        let old = format!("{HAND_HEAD}\n{old_run}");
        let doc = parse_old(&old);
        assert_eq!(doc.head, HAND_HEAD.trim_end());
        assert_eq!(doc.date.as_deref(), Some("D0"));
        assert!(doc.main.contains("g0") && !doc.main.contains("details"));
        let new = assemble(&run("D1", "g1"), Some(&doc));
        assert_eq!(new.matches("Written by hand.").count(), 1);
        assert!(new.contains("run (D0)"));
        assert_eq!(
            assemble("x\n", None),
            format!("# cove benchmarks\n\n{RUN_BEGIN}\n\nx\n\n{RUN_END}\n")
        );
    }

    #[test]
    fn demote_levels() {
        assert_eq!(
            demote_by("```\n# in code\n```\n", 2),
            "```\n# in code\n```\n"
        );
        assert_eq!(
            demote_by("# a\n## b\n#### c\n#nope\n", 2),
            "### a\n#### b\n###### c\n#nope\n"
        );
        assert_eq!(headings_from("## a\n### b\n", 3), "### a\n#### b\n");
    }
}
