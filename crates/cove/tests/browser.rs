//! The browser end-to-end tests (`web/e2e/run.mjs`, `web/e2e/accounts.mjs` for signing
//! in, sharing and viewing, `web/e2e/ide.mjs` for language servers, search and the comforts): headless Debian Chromium, driven by
//! playwright-core, against the `cove` binary under test. Part of `cargo test` so that one
//! command runs everything.
//!
//! Without Chromium this test says so and passes, except under CI (`CI` set), where a
//! missing browser is a failure: CI installs it (`.ci/run`).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn browser_end_to_end() {
    run_scenario("e2e/run.mjs");
}

#[test]
fn browser_accounts_end_to_end() {
    run_scenario("e2e/accounts.mjs");
}

#[test]
fn browser_ide_end_to_end() {
    run_scenario("e2e/ide.mjs");
}

fn run_scenario(script: &str) {
    let chromium = Path::new("/usr/bin/chromium");
    if !chromium.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install Debian's chromium (see .ci/run)"
        );
        eprintln!("SKIPPED {script}: /usr/bin/chromium is missing (apt-get install chromium)");
        return;
    }
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
    assert!(
        web.join("node_modules/playwright-core").exists(),
        "web/node_modules is installed by the cargo build of cove-server (build.rs runs npm install)"
    );
    let mut child = Command::new("node")
        .arg(script)
        .current_dir(&web)
        .env("COVE_BIN", env!("CARGO_BIN_EXE_cove"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs");
    // Each line goes on to the real output as it comes (the test harness captures only what
    // `print!` writes); the summary lines of failed steps are kept for the panic message,
    // which ends the CI log, so it names what failed even when three scenarios interleave.
    // Read to the end whatever comes (bytes that are not UTF-8 included): stopping early would
    // close the pipe and lose the rest of the log.
    let mut failures = Vec::new();
    let mut output = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut bytes = Vec::new();
    while output.read_until(b'\n', &mut bytes).unwrap_or(0) > 0 {
        let line = String::from_utf8_lossy(&bytes).trim_end().to_string();
        bytes.clear();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        if line.starts_with("FAILED STEP:") {
            failures.push(line);
        }
    }
    let status = child.wait().expect("node ends");
    assert!(
        status.success(),
        "the browser tests of {script} failed ({status}); screenshots are in web/e2e/screenshots/\n{}",
        failures.join("\n")
    );
}
