//! The reference documents' own examples, verbatim.

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::server;

/// seeds/000: every request example, as written there, against `/api/workspaces/{id}/ws`.
#[tokio::test]
async fn seed_000_messages_work_verbatim() {
    let s = server().await;
    let id = s.create_workspace("seed0", "blank").await;
    let mut c = s.control(&id).await;

    c.send_text(r#"{ "type": "create_terminal", "payload": { "terminalId": "main-terminal" } }"#)
        .await;
    let created = c.wait_for(|m| m["type"] == "terminal_created").await;
    assert_eq!(created["terminalId"], "main-terminal");
    c.send_text(r#"{ "type": "terminal_input", "payload": { "terminalId": "main-terminal", "input": "ls -la\n" } }"#).await;
    let out = c.terminal_until("main-terminal", "README.md").await;
    assert!(out.contains("ls -la"), "{out}");

    // The seed's run_command: npm install in /tmp with NODE_ENV. npm's own result does not
    // matter (there is no package.json in /tmp); starting and reporting it does. Without the
    // sandbox (tests not run as root) that /tmp is the host's, where npm leaves a lock file:
    // the test removes it again unless it was there before.
    let lock = std::path::Path::new("/tmp/package-lock.json");
    let lock_was_there = lock.exists();
    c.send_text(r#"{
        "type": "run_command",
        "payload": { "command": "npm", "args": ["install"], "cwd": "/tmp", "env": { "NODE_ENV": "development" } }
    }"#)
    .await;
    let started = c.wait_for(|m| m["type"] == "process_started").await;
    assert_eq!(started["command"], "npm");
    assert_eq!(started["args"], json!(["install"]));
    let npm = started["processId"].as_str().unwrap().to_string();
    let (_, _, exit) = c.process_until_exit(&npm).await;
    assert!(
        exit["exitCode"].is_number() || exit["signal"].is_number(),
        "{exit}"
    );
    if !cove_test_support::can_sandbox() && !lock_was_there {
        let _ = std::fs::remove_file(lock);
    }

    // stop_process with the seed's id: start a long process under that id first.
    c.send_text(r#"{"type":"run_command","payload":{"command":"sleep","args":["60"],"processId":"proc_123"}}"#).await;
    c.wait_for(|m| m["type"] == "process_started" && m["processId"] == "proc_123")
        .await;
    c.send_text(r#"{ "type": "stop_process", "payload": { "processId": "proc_123" } }"#)
        .await;
    let exit = c
        .wait_for(|m| m["type"] == "process_exit" && m["processId"] == "proc_123")
        .await;
    assert_eq!(exit["signal"], 15, "{exit}");

    c.send_text(r#"{ "type": "write_file", "payload": { "path": "/src/App.jsx", "content": "console.log('Hello World');" } }"#).await;
    let written = c.wait_for(|m| m["type"] == "file_written").await;
    assert_eq!(written["size"], 27);
    c.send_text(r#"{ "type": "read_file", "payload": { "path": "/src/App.jsx" } }"#)
        .await;
    let content = c.wait_for(|m| m["type"] == "file_content").await;
    assert_eq!(content["path"], "/src/App.jsx");
    assert_eq!(content["content"], "console.log('Hello World');");
    assert_eq!(content["version"], written["version"]);
    assert_eq!(
        c.sh("cat src/App.jsx").await.0,
        "console.log('Hello World');"
    );
}

/// seeds/004: `ws.send('ls -la\n')` on `/api/terminal/ws/{session_id}`, plain text both ways.
#[tokio::test]
async fn seed_004_plain_socket_works_verbatim() {
    let s = server().await;
    let session = "user_1_ws_abc123_1234567890_uuid";
    let mut ws = s.websocket(&format!("/api/terminal/ws/{session}")).await;
    ws.send(Message::Text("ls -la\n".into())).await.unwrap();
    ws.send(Message::Text("echo done-$((6*7))\n".into()))
        .await
        .unwrap();
    let mut text = String::new();
    tokio::time::timeout(cove_test_support::WAIT, async {
        while !text.contains("done-42") {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => text.push_str(&t),
                Some(Ok(Message::Binary(_))) => panic!("seed 004 clients get text frames only"),
                Some(Ok(_)) => {}
                other => panic!("socket ended: {other:?} after {text:?}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no output in time: {text:?}"));
    assert!(
        text.contains("README.md"),
        "the workspace was created from the default template: {text}"
    );
    assert!(
        !text.contains("\"type\""),
        "no JSON control messages on the plain socket: {text}"
    );
    // The workspace now exists under that name, and a second socket reaches the same terminal.
    let (status, body) = s
        .json("GET", &format!("/api/workspaces/{session}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let mut again = s.websocket(&format!("/api/terminal/ws/{session}")).await;
    let mut replay = String::new();
    tokio::time::timeout(cove_test_support::WAIT, async {
        while !replay.contains("done-42") {
            if let Some(Ok(Message::Text(t))) = again.next().await {
                replay.push_str(&t);
            }
        }
    })
    .await
    .expect("a second plain socket replays the main terminal's scrollback");
}
