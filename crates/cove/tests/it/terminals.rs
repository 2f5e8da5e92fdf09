//! The raw terminal socket (docs/PROTOCOL.md section 2): attach, replay, resume by offset, shared
//! terminals, resize, exit.

use serde_json::json;

use crate::server;

#[tokio::test]
async fn raw_socket_creates_replays_and_resumes_without_loss_or_duplicates() {
    let s = server().await;
    let id = s.create_workspace("raw", "blank").await;
    let (mut a, attached) = s.raw(&id, "r1", "?cols=90&rows=20").await;
    assert_eq!(attached["offset"], 0, "{attached}");
    assert_eq!(
        (attached["cols"].as_u64(), attached["rows"].as_u64()),
        (Some(90), Some(20))
    );
    a.send(b"stty size; for i in $(seq 1 50); do echo line-$i; done; echo END-\"\"1\n")
        .await;
    let first = a.until("END-1").await;
    assert!(first.contains("20 90"), "{first}");
    let seen = a.output.len() as u64;
    drop(a);

    // More output while nobody is attached.
    let mut c = s.control(&id).await;
    c.send(
        "terminal_input",
        json!({"terminalId": "r1", "input": "echo while-away; echo END-\"\"2\n"}),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    // Resume exactly at the byte counted: nothing shown twice, nothing lost.
    let (mut b, attached) = s.raw(&id, "r1", &format!("?offset={seen}")).await;
    assert_eq!(attached["offset"], seen, "{attached}");
    assert!(attached.get("gap").is_none(), "{attached}");
    let resumed = b.until("END-2").await;
    assert!(resumed.contains("while-away"), "{resumed}");
    assert!(
        !resumed.contains("line-50"),
        "bytes before the offset are not sent again: {resumed}"
    );

    // Without an offset, a screen snapshot first (not counted in offsets), then live output.
    let (mut screen, attached) = s.raw(&id, "r1", "").await;
    let snapshot = attached["snapshot"]
        .as_u64()
        .expect("a snapshot by default") as usize;
    assert!(
        attached["offset"].as_u64().unwrap() >= seen + b.output.len() as u64,
        "live output starts after what was printed: {attached}"
    );
    screen.until("END-2").await;
    assert!(screen.output.len() >= snapshot);
    drop(screen);

    // With `replay=raw`, the scrollback is replayed from the start.
    let (mut replay, attached) = s.raw(&id, "r1", "?replay=raw").await;
    assert!(attached.get("snapshot").is_none(), "{attached}");
    assert_eq!(attached["offset"], 0);
    let all = replay.until("END-2").await;
    assert!(
        all.contains("line-1\r\n") && all.contains("while-away"),
        "{all}"
    );
    let mut whole = first.into_bytes();
    whole.extend_from_slice(&b.output);
    assert_eq!(
        &replay.output[..whole.len().min(replay.output.len())],
        &whole[..whole.len().min(replay.output.len())]
    );
}

#[tokio::test]
async fn offset_older_than_the_scrollback_reports_a_gap() {
    let s = cove_test_support::TestServer::start_with(
        env!("CARGO_BIN_EXE_cove"),
        &["--scrollback", "65536"],
    )
    .await;
    let id = s.create_workspace("gap", "blank").await;
    let (mut a, _) = s.raw(&id, "g", "").await;
    // 300 KB of output: far more than the 64 KiB scrollback.
    a.send(b"head -c 300000 /dev/zero | tr '\\0' x; echo; echo DONE\"\"X\n")
        .await;
    a.until("DONEX").await;
    drop(a);
    let (mut b, attached) = s.raw(&id, "g", "?offset=10").await;
    assert_eq!(attached["gap"], true, "{attached}");
    let start = attached["offset"].as_u64().unwrap();
    assert!(start > 10, "{attached}");
    b.until("DONEX").await;
    assert!(
        b.output.len() <= 65536 + 300_000 / 4,
        "replay bounded by the scrollback: {}",
        b.output.len()
    );
}

#[tokio::test]
async fn shared_terminal_input_from_any_output_to_all_last_resize_wins() {
    let s = server().await;
    let id = s.create_workspace("shared", "blank").await;
    let (mut a, _) = s.raw(&id, "sh", "?cols=80&rows=24").await;
    let (mut b, _) = s.raw(&id, "sh", "").await;
    a.send(b"echo from-\"\"a\n").await;
    b.until("from-a").await;
    b.send(b"echo from-\"\"b\n").await;
    a.until("from-b").await;
    // Resizes from two sockets, one after the other: the later one is in force.
    a.resize(100, 30).await;
    a.send(b"stty size\n").await;
    b.until("30 100").await;
    b.resize(132, 43).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    a.send(b"stty size\n").await;
    a.until("43 132").await;
    b.until("43 132").await;
}

#[tokio::test]
async fn exit_sends_exit_and_closes_every_socket_with_1000() {
    let s = server().await;
    let id = s.create_workspace("rawexit", "blank").await;
    let (mut a, _) = s.raw(&id, "x", "").await;
    let (mut b, _) = s.raw(&id, "x", "").await;
    a.send(b"exit 5\n").await;
    for sock in [&mut a, &mut b] {
        let code = sock.until_closed().await;
        assert_eq!(code, Some(1000));
        let exit = sock
            .controls
            .iter()
            .find(|c| c["type"] == "exit")
            .cloned()
            .unwrap_or_else(|| panic!("{:?}", sock.controls));
        assert_eq!(exit["exitCode"], 5, "{exit}");
    }
}

#[tokio::test]
async fn closing_the_socket_leaves_the_terminal_running() {
    let s = server().await;
    let id = s.create_workspace("keep", "blank").await;
    let (mut a, _) = s.raw(&id, "k", "").await;
    a.send(b"sleep 1; echo still-\"\"here\n").await;
    drop(a);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (mut b, _) = s.raw(&id, "k", "").await;
    b.until("still-here").await;
}

#[tokio::test]
async fn bad_terminal_requests_are_refused_clearly() {
    let s = server().await;
    let id = s.create_workspace("badraw", "blank").await;
    let (status, body) = s
        .json("GET", &format!("/api/workspaces/{id}/terminals/x/ws"), None)
        .await;
    assert_eq!(status, 426, "a plain GET is told to upgrade: {body}");
    let url = format!(
        "ws://127.0.0.1:{}/api/workspaces/{id}/terminals/bad%20id/ws",
        s.port
    );
    let err = tokio_tungstenite::connect_async(url).await.unwrap_err();
    assert!(err.to_string().contains("400"), "{err}");
    let url = format!(
        "ws://127.0.0.1:{}/api/workspaces/nope/terminals/t/ws",
        s.port
    );
    let err = tokio_tungstenite::connect_async(url).await.unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    // The runner's own refusal comes through as it said it: its status, code and message.
    let url = format!(
        "ws://127.0.0.1:{}/api/workspaces/{id}/terminals/t/ws?format=bogus",
        s.port
    );
    let err = tokio_tungstenite::connect_async(url).await.unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(response) = err else {
        panic!("expected an HTTP refusal, got {err}");
    };
    assert_eq!(response.status(), 400);
    let body: serde_json::Value =
        serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
    assert_eq!(body["error"]["code"], "bad_request", "{body}");
    assert_eq!(
        body["error"]["message"], "unknown format \"bogus\"",
        "{body}"
    );
}

/// A page reload replays the scrollback, and the client's emulator answers every query in
/// it (vim's "what terminal are you", a prompt's "where is the cursor", "what is your
/// background"). Those answers must never reach what runs now; live typing must.
#[tokio::test]
async fn answers_to_replayed_queries_never_reach_the_program() {
    let s = server().await;
    let id = s.create_workspace("replay", "blank").await;
    let (mut live, _) = s.raw(&id, "q", "").await;
    // Queries in the output (the live client does not answer them), then a program that
    // records every byte of input it gets, raw.
    live.send(b"printf '\\033[>c\\033[6n\\033]11;?\\007'; stty raw -echo; head -c 9 > got.txt; stty sane; echo DONE-\"\"1\n")
        .await;
    live.until("\x1b]11;?").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    drop(live);

    // A reload with a raw replay: read it, answer as xterm.js does. (A screen replay holds
    // no queries at all.)
    let (mut reload, _) = s.raw(&id, "q", "?replay=raw").await;
    reload.until("\x1b]11;?").await;
    for answer in [
        &b"\x1b[>0;276;0c"[..],
        b"\x1b[24;80R",
        b"\x1b]11;rgb:1f1f/2323/2828\x1b\\",
    ] {
        reload.send(answer).await;
    }
    reload.send(b"typed-ok\n").await;
    reload.until("DONE-1").await;

    // The same through the control socket's attach_terminal.
    let mut c = s.control(&id).await;
    c.request("attach_terminal", json!({"terminalId": "q"}))
        .await;
    c.send(
        "terminal_input",
        json!({"terminalId": "q", "input": "printf '\\033[6n'; stty raw -echo; head -c 6 > got2.txt; stty sane; echo DONE-\"\"2\n"}),
    )
    .await;
    c.terminal_until("q", "\u{1b}[6n").await;
    drop(c);
    let mut c = s.control(&id).await;
    let attached = c
        .request(
            "attach_terminal",
            json!({"terminalId": "q", "replay": "raw"}),
        )
        .await;
    assert_eq!(attached["type"], "terminal_attached", "{attached}");
    for input in ["\u{1b}[3;1R", "again\n"] {
        c.send("terminal_input", json!({"terminalId": "q", "input": input}))
            .await;
    }
    c.terminal_until("q", "DONE-2").await;
    let (got, _) = c.sh("cat got.txt; echo '|'; cat got2.txt").await;
    assert_eq!(got, "typed-ok\n|\nagain\n", "only what was typed arrived");
}
