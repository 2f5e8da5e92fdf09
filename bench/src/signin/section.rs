//! The markdown section `cove-bench signin` writes.

use super::*;

/// The markdown section.
pub(super) fn render(
    args: &SigninArgs,
    m: &Measured,
    machine: &Machine,
    date: &str,
    command_line: &str,
    version: &str,
) -> String {
    let mut s = String::new();
    let loops = args.signins;
    let _ = writeln!(s, "## Sign-in under load\n");
    let _ = writeln!(
        s,
        "`cove-bench signin`, {date}. Machine: {} cores (`nproc`), {}, {} RAM, {}; load \
         average {} at the start. cove: {version}, started as `cove serve --auth password \
         --password <20 random characters> --sandbox {} --quota-sessions {QUOTA_SESSIONS} --trusted-proxy 127.0.0.1`; \
         one workspace, one raw terminal socket opened with an API token \
         (`Authorization: Bearer`) running `stty raw -echo; exec cat`.\n",
        machine.nproc,
        machine.cpu_model,
        machine.mem_total,
        machine.kernel,
        machine.load_start,
        m.sandbox,
    );
    let _ = writeln!(s, "```sh\n{command_line}\n```\n");
    if let Some(e) = &m.error {
        let _ = writeln!(s, "**The run did not finish:** {e}\n");
    }

    let _ = writeln!(
        s,
        "### Keystroke echo with and without sign-ins\n\n\
         One byte typed, the time until it comes back, the next {} ms after the answer (µs; \
         {} samples after {ECHO_WARMUP} warm-ups each, on the same socket). Under sign-ins, {loops} concurrent loops sign in \
         with the right password (a full Argon2id verify each); the samples start once each \
         loop has had an answer.\n",
        TYPING_GAP.as_millis(),
        args.echo_samples
    );
    let _ = writeln!(
        s,
        "| | p50 | p90 | p99 | max | sign-ins answered 200 meanwhile |\n|---|---:|---:|---:|---:|---:|"
    );
    let row = |s: &mut String, what: &str, l: Option<&Latency>, during: String| {
        let _ = match l {
            Some(l) => writeln!(
                s,
                "| {what} | {:.0} | {:.0} | {:.0} | {:.0} | {during} |",
                l.p50, l.p90, l.p99, l.max
            ),
            None => writeln!(s, "| {what} | not measured | | | | |"),
        };
    };
    row(&mut s, "idle", m.idle.as_ref(), "0".into());
    let during = match &m.during_echo {
        Some((c, took)) => format!(
            "{} in {:.1} s ({:.1}/s){}",
            c.ok,
            took.as_secs_f64(),
            c.ok as f64 / took.as_secs_f64().max(1e-9),
            not_ok(c)
        ),
        None => String::new(),
    };
    row(
        &mut s,
        &format!("{loops} sign-in loops"),
        m.loaded.as_ref(),
        during,
    );
    if let (Some(idle), Some(loaded)) = (&m.idle, &m.loaded) {
        let d = loaded.p99 - idle.p99;
        let _ = writeln!(
            s,
            "\np99 under sign-ins − p99 idle: **{d:+.0} µs** (goal: within {:.0} ms: {}).\n",
            GOAL_P99_US / 1000.0,
            if d <= GOAL_P99_US { "met" } else { "not met" }
        );
    } else {
        s.push('\n');
    }

    let _ = writeln!(s, "### Sign-ins per second\n");
    match &m.rate {
        Some(c) => {
            let _ = writeln!(
                s,
                "{loops} concurrent loops for {} s, right password: **{:.1} sign-ins/s** ({} \
                 answered 200 within the time){}; {} more were answered after the {} s and are \
                 not counted. Each loop signs in from its own address (`X-Forwarded-For` \
                 through `--trusted-proxy 127.0.0.1`); a loop answered 429 or 503 waits 1 s.\n",
                args.seconds,
                c.ok as f64 / f64::from(args.seconds),
                c.ok,
                not_ok(c),
                c.late,
                args.seconds
            );
        }
        None => {
            let _ = writeln!(s, "Not measured.\n");
        }
    }

    let _ = writeln!(s, "### Server memory per signed-in session\n");
    match &m.memory {
        Some((open, before, after, c)) => {
            let delta = *after as i64 - *before as i64;
            let per = if c.ok > 0 {
                format!("**{:.2} KiB**", delta as f64 / c.ok as f64)
            } else {
                "not measured (no sign-in answered 200)".into()
            };
            let _ = writeln!(
                s,
                "RSS of the server process (`VmRSS`) {:.1} MiB before and {:.1} MiB one second \
                 after {} more sign-ins answered 200 and kept open ({loops} loops){}: {delta:+} \
                 KiB, {per} per session. {open} sessions were already open from the runs above.\n",
                *before as f64 / 1024.0,
                *after as f64 / 1024.0,
                c.ok,
                not_ok(c)
            );
        }
        None => {
            let _ = writeln!(s, "Not measured.\n");
        }
    }

    if !m.notes.is_empty() {
        let _ = writeln!(s, "Notes:\n");
        for n in &m.notes {
            let _ = writeln!(s, "- {n}");
        }
        s.push('\n');
    }
    if !m.log_tail.is_empty() {
        let _ = writeln!(
            s,
            "The server's last lines:\n\n```\n{}\n```\n",
            m.log_tail.join("\n")
        );
    }
    s
}

/// `; 429: n, 503: n, ...` for the answers that were not 200, or nothing.
pub(super) fn not_ok(c: &Counts) -> String {
    let parts: Vec<String> = [
        ("429", c.limited),
        ("503", c.busy),
        ("other answers", c.other),
        ("no answer", c.failed),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .map(|(what, n)| format!("{what}: {n}"))
    .collect();
    if parts.is_empty() {
        return ", no other answer".into();
    }
    let first = c
        .first_problem
        .as_deref()
        .map(|p| format!(", the first: `{}`", crate::cove::ws::truncate(p, 200)))
        .unwrap_or_default();
    format!(", {}{first}", parts.join(", "))
}
