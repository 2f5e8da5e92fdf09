//! Screen replay (docs/PROTOCOL.md section 8): a client that attaches to a terminal where vim,
//! less, tmux or htop runs gets a snapshot that draws exactly what the terminal shows.
//!
//! "Exactly" is checked by an emulator the runner does not use: xterm.js (headless, in Node)
//! renders every byte the terminal printed since it started (the truth), and, separately, what
//! the new client received (the snapshot and the live output after it); the two screens must
//! match cell by cell: characters, colours, attributes, the cursor, the active buffer, the
//! modes.

use base64::Engine;
use cove_test_support::TestServer;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

use crate::server;

/// Output quiet for this long means a program has finished drawing.
const QUIET: Duration = Duration::from_millis(700);

fn data(bytes: &[u8]) -> Value {
    json!({"data": base64::engine::general_purpose::STANDARD.encode(bytes)})
}

/// Renders both streams in xterm.js and returns the comparison.
fn compare(expected: Value, actual: Value) -> Value {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.json");
    std::fs::write(
        &job,
        json!({"expected": expected, "actual": actual}).to_string(),
    )
    .unwrap();
    let out = std::process::Command::new("node")
        .arg("e2e/screen-compare.mjs")
        .arg(&job)
        .current_dir(&web)
        .output()
        .expect("node runs (web/node_modules is installed by cove-server's build)");
    assert!(
        out.status.success(),
        "screen-compare failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from screen-compare")
}

fn assert_same(what: &str, result: &Value) {
    assert_eq!(
        result["equal"],
        true,
        "{what}: the client's screen differs from the terminal's ({} differences): {:#}\n--- expected ---\n{}\n--- actual ---\n{}",
        result["count"],
        result["differences"],
        result["expected"].as_str().unwrap_or_default(),
        result["actual"].as_str().unwrap_or_default(),
    );
}

/// Runs `setup` then types `keys` (each followed by a pause for the program to draw) into a
/// new 80x24 terminal, then attaches new clients: one at the same size and one at 100x30,
/// and compares what each shows with the truth.
async fn check_program(s: &TestServer, name: &str, setup: &str, keys: &[&[u8]]) {
    let id = s.create_workspace(name, "blank").await;
    // The first client reads every byte from the start, raw: the truth.
    let (mut truth, attached) = s.raw(&id, "t", "?cols=80&rows=24&replay=raw").await;
    assert_eq!(attached["offset"], 0);
    truth.send(setup.as_bytes()).await;
    truth.settle(QUIET).await;
    for key in keys {
        truth.send(key).await;
        truth.settle(QUIET).await;
    }

    // A new client at the same size: the snapshot, then nothing.
    let (mut same, attached) = s.raw(&id, "t", "?replay=screen").await;
    let at = attached["offset"].as_u64().unwrap() as usize;
    let snapshot = attached["snapshot"].as_u64().expect("a snapshot") as usize;
    same.settle(QUIET).await;
    assert!(same.output.len() >= snapshot, "the whole snapshot arrives");
    let live = same.output.len() - snapshot;
    truth.settle(QUIET).await;
    assert!(
        truth.output.len() >= at + live,
        "the truth has what followed"
    );
    let result = compare(
        json!({"cols": 80, "rows": 24, "steps": [data(&truth.output[..at + live])]}),
        json!({"cols": 80, "rows": 24, "steps": [data(&same.output)]}),
    );
    assert_same(&format!("{name} at the same size"), &result);
    drop(same);

    // A new client at another size: the terminal is resized as it attaches, the snapshot is
    // at the new size, and the program redraws for it.
    let (mut other, attached) = s.raw(&id, "t", "?cols=100&rows=30").await;
    assert_eq!(
        (attached["cols"].as_u64(), attached["rows"].as_u64()),
        (Some(100), Some(30))
    );
    let at = attached["offset"].as_u64().unwrap() as usize;
    let snapshot = attached["snapshot"].as_u64().expect("a snapshot") as usize;
    other.settle(QUIET).await;
    let live = other.output.len() - snapshot;
    truth.settle(QUIET).await;
    assert!(
        truth.output.len() >= at + live,
        "the truth has what followed"
    );
    let result = compare(
        json!({"cols": 80, "rows": 24, "steps": [
            data(&truth.output[..at]),
            {"resize": [100, 30]},
            data(&truth.output[at..at + live]),
        ]}),
        json!({"cols": 100, "rows": 30, "steps": [data(&other.output)]}),
    );
    assert_same(&format!("{name} at a new size"), &result);
}

#[tokio::test]
async fn vim_comes_back_exactly() {
    let s = server().await;
    check_program(
        &s,
        "vim",
        "for i in $(seq 1 60); do echo \"fn line_$i() { let x = \\\"text $i\\\"; }\"; done > main.rs; \
         vim -N -u NONE -c 'syntax on' -c 'set number' -c 'set hlsearch' main.rs\n",
        &[b"20G", b"12l", b":split\r", b"/let x\r", b"\x17j", b"40G"],
    )
    .await;
}

#[tokio::test]
async fn less_comes_back_exactly() {
    let s = server().await;
    check_program(
        &s,
        "less",
        "seq -f 'row %g of a long file' 1 3000 > long.txt; less long.txt\n",
        &[b" ", b" ", b"/row 150\r", b"G", b"g"],
    )
    .await;
}

#[tokio::test]
async fn tmux_with_two_panes_comes_back_exactly() {
    let s = server().await;
    check_program(
        &s,
        "tmux",
        "tmux -f /dev/null -L replay new-session\n",
        &[
            b"\x02%",
            b"printf '\\033[1;31mred\\033[0m and \\033[42mgreen\\033[0m\\n'; ls -la /\r",
            b"\x02o",
            b"seq 1 40\r",
        ],
    )
    .await;
}

#[tokio::test]
async fn htop_comes_back_exactly() {
    let s = server().await;
    // Frozen (no refresh) so that the screen stays still while it is compared.
    let top = if Path::new("/usr/bin/htop").exists() {
        "htop -d 36000\n"
    } else {
        "top -d 3600\n"
    };
    check_program(&s, "htop", top, &[b"\x1b[B", b"\x1b[B"]).await;
}

#[tokio::test]
async fn both_sockets_replay_the_screen_or_the_scrollback_as_asked() {
    let s = server().await;
    let id = s.create_workspace("replaymodes", "blank").await;
    let (mut first, _) = s.raw(&id, "m", "?cols=80&rows=24").await;
    first
        .send(b"printf '\\033[1;35mMAGENTA\\033[0m\\n'; echo DONE-\"\"1\n")
        .await;
    first.until("DONE-1").await;
    first.settle(QUIET).await;

    // The control socket: the screen as one `terminal_output` without an offset, then live
    // output from the offset `terminal_attached` gave.
    let mut c = s.control(&id).await;
    let attached = c
        .request("attach_terminal", json!({"terminalId": "m"}))
        .await;
    let at = attached["offset"].as_u64().unwrap();
    let screen = c.wait_for(|e| e["type"] == "terminal_output").await;
    assert!(screen.get("offset").is_none(), "{screen}");
    let data = screen["data"].as_str().unwrap();
    assert!(data.contains("\u{1b}[1;35mMAGENTA"), "{data:?}");
    c.send(
        "terminal_input",
        json!({"terminalId": "m", "input": "echo LIVE-\"\"2\n"}),
    )
    .await;
    let live = c.wait_for(|e| e["type"] == "terminal_output").await;
    assert_eq!(live["offset"], at, "{live}");

    // Asked for the raw scrollback: it starts at byte 0, with offsets.
    let mut raw = s.control(&id).await;
    raw.request(
        "attach_terminal",
        json!({"terminalId": "m", "replay": "raw"}),
    )
    .await;
    let replayed = raw.wait_for(|e| e["type"] == "terminal_output").await;
    assert_eq!(replayed["offset"], 0, "{replayed}");

    // A viewer gets the screen at the terminal's size and resizes nothing.
    let (_viewer, attached) = s.raw(&id, "m", "?mode=view&cols=50&rows=10").await;
    assert_eq!(
        (attached["cols"].as_u64(), attached["rows"].as_u64()),
        (Some(80), Some(24))
    );
    assert!(attached["snapshot"].as_u64().unwrap() > 0, "{attached}");

    // An unknown replay is refused before the upgrade.
    let url = format!(
        "ws://127.0.0.1:{}/api/workspaces/{id}/terminals/m/ws?replay=bytes",
        s.port
    );
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 400);
            let body =
                String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).to_string();
            assert!(body.contains("replay must be screen or raw"), "{body}");
        }
        other => panic!("expected a 400 refusal, got {:?}", other.map(|_| ())),
    }
    let bad = c
        .request(
            "attach_terminal",
            json!({"terminalId": "m", "replay": "bytes"}),
        )
        .await;
    assert_eq!(bad["type"], "error", "{bad}");
}
