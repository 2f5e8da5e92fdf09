//! The markdown report and the facts about the machine it was measured on.

use std::fmt::Write as _;

use crate::cove::{CoveRun, MemSnapshot};
use crate::pty::{COLS, ECHO_WARMUP, ROWS};
use crate::{PathResult, RUN_TIMEOUT, TerminalArgs};

pub(crate) struct Report<'a> {
    pub args: &'a TerminalArgs,
    pub command_line: String,
    pub machine: Machine,
    pub date: String,
    pub bare: PathResult,
    pub cove: Result<CoveRun, String>,
}

pub(crate) struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub mem_total: String,
    /// `/proc/loadavg` (1, 5, 15 min) before the bench started.
    pub load_start: String,
}

/// The 1, 5 and 15 minute load averages.
pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

impl Machine {
    pub(crate) fn probe() -> Self {
        let nproc = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0);
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        let kernel = format!(
            "{} {} ({}) {}",
            read("/proc/sys/kernel/ostype"),
            read("/proc/sys/kernel/osrelease"),
            std::env::consts::ARCH,
            read("/proc/sys/kernel/version")
        );
        let mem_total = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            })
            .map(|kib| format!("{:.1} GiB", kib as f64 / 1024.0 / 1024.0))
            .unwrap_or_else(|| "unknown".into());
        Self {
            nproc,
            cpu_model,
            kernel,
            mem_total,
            load_start: loadavg(),
        }
    }
}

/// The command line as typed, shell-quoted where needed.
pub(crate) fn command_line() -> String {
    std::env::args()
        .map(|a| shell_quote(&a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `s` as `sh` reads it: quoted unless it is only safe characters.
fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The current time in UTC, `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format_utc(secs)
}

fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn cell(r: Option<f64>, digits: usize) -> String {
    match r {
        Some(v) => format!("{v:.digits$}"),
        None => "–".into(),
    }
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ").replace('|', "\\|")
}

pub(crate) fn render(r: &Report) -> String {
    let mut s = String::new();
    let a = r.args;
    let m = &r.machine;
    let _ = writeln!(s, "# cove-bench terminal\n");
    let _ = writeln!(s, "- date: {}", r.date);
    let _ = writeln!(
        s,
        "- machine: {} CPUs (nproc), {}; {} RAM",
        m.nproc, m.cpu_model, m.mem_total
    );
    let _ = writeln!(s, "- kernel: {}", m.kernel);
    let _ = writeln!(
        s,
        "- load average (1/5/15 min): {} before, {} after (other work on the machine \
         skews the numbers)",
        m.load_start,
        loadavg()
    );
    let _ = writeln!(s, "- command: `{}`", r.command_line);
    match &r.cove {
        Ok(c) => {
            let _ = writeln!(
                s,
                "- cove: `{}` serve (pid {}, port {}){}",
                c.binary.display(),
                c.pid,
                c.port,
                if a.serve_args.is_empty() {
                    String::new()
                } else {
                    format!(", extra args `{}`", a.serve_args.join(" "))
                }
            );
        }
        Err(e) => {
            let _ = writeln!(s, "- cove: **not measured**: {}", one_line(e));
        }
    }
    let _ = writeln!(
        s,
        "- workload: `{}` typed into `bash --norc --noprofile -i` ({COLS}x{ROWS}); \
         {} payload bytes, median of {} runs; echo: {ECHO_WARMUP} warm-ups + {} samples",
        crate::pty::throughput_command(a.bytes),
        a.bytes,
        a.runs,
        a.echo_samples
    );

    // Main table.
    let bare_mbps = r.bare.mbps(a.bytes);
    let bare_p99 = r.bare.echo.as_ref().ok().map(|l| l.p99);
    let _ = writeln!(s, "\n## Terminal throughput and keystroke echo\n");
    let _ = writeln!(
        s,
        "| path | throughput MB/s | ratio to bare | echo p50 µs | p90 µs | p99 µs | max µs | p99 − bare p99 µs |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut paths: Vec<&PathResult> = vec![&r.bare];
    if let Ok(c) = &r.cove {
        paths.push(&c.raw);
        paths.push(&c.json);
    }
    for p in &paths {
        let mbps = p.mbps(a.bytes);
        let ratio = match (mbps, bare_mbps) {
            (Some(x), Some(b)) if b > 0.0 => format!("{:.0}%", 100.0 * x / b),
            _ => "–".into(),
        };
        let echo = p.echo.as_ref().ok();
        let diff = match (echo, bare_p99) {
            (Some(l), Some(b)) => format!("{:+.1}", l.p99 - b),
            _ => "–".into(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            p.name,
            cell(mbps, 1),
            ratio,
            cell(echo.map(|l| l.p50), 1),
            cell(echo.map(|l| l.p90), 1),
            cell(echo.map(|l| l.p99), 1),
            cell(echo.map(|l| l.max), 1),
            diff
        );
    }
    if r.cove.is_err() {
        let _ = writeln!(s, "| cove raw socket | not measured | | | | | | |");
        let _ = writeln!(s, "| cove JSON socket | not measured | | | | | | |");
    }
    let _ = writeln!(
        s,
        "\nMB = 10^6 bytes of payload divided by the time from writing the command to \
         seeing the marker. Echo: one byte (or one character) written, time until it \
         comes back."
    );

    // Failures.
    let mut failures = Vec::new();
    for p in &paths {
        if let Err(e) = &p.runs {
            failures.push(format!("{} throughput: {}", p.name, one_line(e)));
        }
        if let Err(e) = &p.echo {
            failures.push(format!("{} echo: {}", p.name, one_line(e)));
        }
    }
    if !failures.is_empty() {
        let _ = writeln!(s, "\n**Failures:**\n");
        for f in failures {
            let _ = writeln!(s, "- {f}");
        }
    }

    // Runs.
    let _ = writeln!(s, "\n### Throughput runs\n");
    let _ = writeln!(
        s,
        "| path | run | seconds | MB/s | bytes received | reads / messages | mean bytes per read / message |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|");
    for p in &paths {
        if let Ok(runs) = &p.runs {
            for (i, run) in runs.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.3} | {:.1} | {} | {} | {:.0} |",
                    p.name,
                    i + 1,
                    run.secs,
                    a.bytes as f64 / 1e6 / run.secs,
                    run.received,
                    run.chunks,
                    run.received as f64 / run.chunks.max(1) as f64
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "\nBytes received include the echoed command line and prompts; for the JSON \
         socket they are the UTF-8 bytes of `data`. Each run uses a fresh shell; timeout \
         {} s per run.",
        RUN_TIMEOUT.as_secs()
    );

    // cove details.
    if let Ok(c) = &r.cove {
        let _ = writeln!(s, "\n## Memory (VmRSS)\n");
        let _ = writeln!(s, "| process | when | RSS MiB |");
        let _ = writeln!(s, "|---|---|---:|");
        match &c.mem_start {
            Ok(m) => {
                let _ = writeln!(
                    s,
                    "| server (pid {}) | right after start, idle, no workspace | {} |",
                    c.pid,
                    mib(m.server_kib)
                );
                if !m.children.is_empty() {
                    let _ = writeln!(
                        s,
                        "| server's children ({}) | right after start | {} |",
                        children_names(m),
                        mib(m.children_kib())
                    );
                }
            }
            Err(e) => {
                let _ = writeln!(s, "| server | right after start | – ({}) |", one_line(e));
            }
        }
        match &c.mem_idle {
            Ok(m) => {
                let _ = writeln!(
                    s,
                    "| server (pid {}) | after the runs, one idle terminal | {} |",
                    c.pid,
                    mib(m.server_kib)
                );
                if m.children.is_empty() {
                    let _ = writeln!(
                        s,
                        "| runner(s) | after the runs | – (the server has no child process) |"
                    );
                } else {
                    let _ = writeln!(
                        s,
                        "| runner(s) (with their sandbox processes): below the server ({}) | after the runs, one idle terminal | {} |",
                        children_names(m),
                        mib(m.children_kib())
                    );
                    let count: usize = m.children.iter().map(|c| c.below_count).sum();
                    let _ = writeln!(
                        s,
                        "| terminal processes below them ({count}: shells, …) | after the runs, one idle terminal | {} |",
                        mib(m.below_kib())
                    );
                    let _ = writeln!(
                        s,
                        "| **server + runners** | after the runs, one idle terminal | **{}** |",
                        mib(m.server_kib + m.children_kib())
                    );
                }
            }
            Err(e) => {
                let _ = writeln!(
                    s,
                    "| server + runners | after the runs, one idle terminal | – ({}) |",
                    one_line(e)
                );
            }
        }
        if let Ok(m) = &c.mem_idle
            && !m.tree.is_empty()
        {
            let _ = writeln!(
                s,
                "\nProcesses below the server after the runs (one idle terminal):\n"
            );
            let _ = writeln!(s, "| process | pid | RSS MiB |");
            let _ = writeln!(s, "|---|---:|---:|");
            for e in &m.tree {
                let _ = writeln!(
                    s,
                    "| {}{} | {} | {} |",
                    "· ".repeat(e.depth - 1),
                    one_line(&e.comm),
                    e.pid,
                    mib(e.rss_kib)
                );
            }
        }
        let _ = writeln!(s, "\n## cove details\n");
        if let Some(id) = &c.workspace_id {
            let _ = writeln!(s, "- workspace id: `{id}`");
        }
        if let Some(ms) = c.create_ms {
            let _ = writeln!(s, "- `POST /api/workspaces`: {ms:.1} ms");
        }
        if let Some(ms) = c.start_ms {
            let _ = writeln!(
                s,
                "- `POST /api/workspaces/{{id}}/start` until `GET` says `running`: {ms:.1} ms"
            );
        }
        if !c.notes.is_empty() {
            let _ = writeln!(s, "\n### Notes and departures from PROTOCOL.md\n");
            for n in &c.notes {
                let _ = writeln!(s, "- {}", one_line(n));
            }
        }
        if c.failed && !c.server_log_tail.is_empty() {
            let _ = writeln!(s, "\n### Last lines of the server's output\n\n```");
            for l in &c.server_log_tail {
                let _ = writeln!(s, "{l}");
            }
            let _ = writeln!(s, "```");
        }
    }
    s
}

fn children_names(m: &MemSnapshot) -> String {
    m.children
        .iter()
        .map(|c| format!("{} {} {} MiB", c.comm, c.pid, mib(c.rss_kib)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("--bytes"), "--bytes");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
