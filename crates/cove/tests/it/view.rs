//! Read-only attach (docs/PROTOCOL.md section 8): a raw terminal socket or a control socket
//! with `?mode=view`, through the real server, sees a terminal's output live and changes
//! nothing, and what it sends is proven, at the terminal itself, never to arrive. (Every
//! request type of a view control socket is checked in the runner's own tests.)

use cove_test_support::{RawTerminal, TestServer, WAIT};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::server;

/// Reads the raw socket until its next `error` control message (output is kept).
async fn next_error(raw: &mut RawTerminal) -> Value {
    if let Some(i) = raw.controls.iter().position(|c| c["type"] == "error") {
        return raw.controls.remove(i);
    }
    let found = tokio::time::timeout(WAIT, async {
        loop {
            match raw.ws.next().await {
                Some(Ok(Message::Binary(bytes))) => raw.output.extend_from_slice(&bytes),
                Some(Ok(Message::Text(text))) => {
                    let control: Value = serde_json::from_str(&text).expect("JSON");
                    if control["type"] == "error" {
                        return control;
                    }
                    raw.controls.push(control);
                }
                Some(Ok(_)) => {}
                other => panic!("the socket ended: {other:?}"),
            }
        }
    })
    .await;
    found.expect("an error message in time")
}

/// Stops a workspace through the API, as a user would.
async fn stop(s: &TestServer, id: &str) {
    let (status, body) = s
        .json("POST", &format!("/api/workspaces/{id}/stop"), None)
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("stopped")),
        "{body}"
    );
}

/// The editor's command that records, raw, the next 5 bytes the terminal reads into
/// `got.txt`, then says `DONE-1`. `READY` is printed once it reads (the quotes keep the echo
/// of the command line itself from matching).
const RECORD_5: &[u8] =
    b"stty raw -echo; echo READ\"\"Y; head -c 5 > got.txt; stty sane; echo DONE-\"\"1\n";

fn assert_read_only(error: &Value, action: &str) {
    assert_eq!(error["code"], "forbidden", "{error}");
    assert_eq!(
        error["message"],
        format!("this connection is read-only (mode=view): {action} is not allowed"),
    );
}

#[tokio::test]
async fn a_viewer_sees_the_terminal_but_its_input_and_resizes_never_reach_it() {
    let s = server().await;
    let id = s.create_workspace("viewer", "blank").await;
    let (mut editor, _) = s.raw(&id, "v", "?cols=80&rows=24").await;
    // The viewer's size in its query is not the terminal's.
    let (mut viewer, attached) = s.raw(&id, "v", "?mode=view&cols=132&rows=50").await;
    assert_eq!(
        (attached["cols"].as_u64(), attached["rows"].as_u64()),
        (Some(80), Some(24)),
        "{attached}"
    );
    // A program that records every byte it reads, raw, started by the editor.
    editor.send(RECORD_5).await;
    viewer.until("READY").await;
    viewer.send(b"VIEW!").await;
    assert_read_only(&next_error(&mut viewer).await, "input");
    editor.send(b"EDIT!").await;
    viewer.until("DONE-1").await;

    // Resizes from the viewer are refused too; the terminal keeps the editor's size.
    viewer.resize(132, 50).await;
    assert_read_only(&next_error(&mut viewer).await, "resize");
    editor.send(b"stty size; echo SIZE-\"\"2\n").await;
    let seen = viewer.until("SIZE-2").await;
    assert!(seen.contains("24 80\r\n"), "{seen}");

    let mut c = s.control(&id).await;
    let (got, _) = c.sh("cat got.txt").await;
    assert_eq!(got, "EDIT!", "only the editor's bytes reached the program");
    stop(&s, &id).await;
}

#[tokio::test]
async fn a_view_control_socket_watches_a_terminal_but_never_types_into_it() {
    let s = server().await;
    let id = s.create_workspace("viewcontrol", "blank").await;
    let (mut editor, _) = s.raw(&id, "c", "?cols=80&rows=24").await;
    let mut viewer = s.control_with(&id, "?mode=view").await;
    let attached = viewer
        .request("attach_terminal", json!({"terminalId": "c"}))
        .await;
    assert_eq!(attached["type"], "terminal_attached", "{attached}");

    editor.send(RECORD_5).await;
    viewer.terminal_until("c", "READY").await;
    // Every way a control socket could reach the terminal, or make another, is refused.
    for (kind, payload) in [
        (
            "terminal_input",
            json!({"terminalId": "c", "input": "VIEW!"}),
        ),
        (
            "resize_terminal",
            json!({"terminalId": "c", "cols": 132, "rows": 50}),
        ),
        ("close_terminal", json!({"terminalId": "c"})),
        (
            "create_terminal",
            json!({"terminalId": "v2", "command": "touch made-by-viewer"}),
        ),
        (
            "run_command",
            json!({"command": "touch ran-by-viewer", "processId": "v"}),
        ),
        (
            "write_file",
            json!({"path": "written-by-viewer", "content": "x"}),
        ),
    ] {
        let reply = viewer.request(kind, payload).await;
        assert_eq!(reply["type"], "error", "{kind}: {reply}");
        assert_read_only(&reply, kind);
    }
    // Output stays live on the viewer: the editor's bytes end the recorder.
    editor.send(b"EDIT!").await;
    viewer.terminal_until("c", "DONE-1").await;

    let mut c = s.control(&id).await;
    let (got, _) = c.sh("cat got.txt").await;
    assert_eq!(got, "EDIT!", "only the editor's bytes reached the program");
    let (listing, _) = c.sh("ls").await;
    assert!(!listing.contains("by-viewer"), "{listing}");
    let list = c.request("list_terminals", json!({})).await;
    let terminals = list["terminals"].as_array().expect("terminals");
    assert_eq!(terminals.len(), 1, "{list}");
    assert_eq!(
        (&terminals[0]["terminalId"], &terminals[0]["alive"]),
        (&json!("c"), &json!(true)),
        "{list}"
    );
    assert_eq!(
        (&terminals[0]["cols"], &terminals[0]["rows"]),
        (&json!(80), &json!(24)),
        "{list}"
    );
    stop(&s, &id).await;
}

#[tokio::test]
async fn a_plain_text_viewer_types_nothing() {
    let s = server().await;
    let id = s.create_workspace("textview", "blank").await;
    let (mut editor, _) = s.raw(&id, "p", "").await;
    let mut viewer = s
        .websocket(&format!(
            "/api/workspaces/{id}/terminals/p/ws?format=text&mode=view"
        ))
        .await;
    for frame in [
        Message::Text("touch leaked-text\n".into()),
        Message::Binary(b"touch leaked-binary\n".to_vec().into()),
    ] {
        viewer.send(frame).await.expect("send");
        let refusal = tokio::time::timeout(WAIT, async {
            loop {
                match viewer.next().await {
                    Some(Ok(Message::Text(text))) if text.starts_with("Error: ") => return text,
                    Some(Ok(_)) => {}
                    other => panic!("the socket ended: {other:?}"),
                }
            }
        })
        .await
        .expect("a refusal in time");
        assert_eq!(
            refusal.as_str(),
            "Error: this connection is read-only (mode=view): input is not allowed\r\n"
        );
    }
    editor.send(b"ls leaked-*; echo LS-\"\"DONE\n").await;
    let out = editor.until("LS-DONE").await;
    assert!(out.contains("No such file"), "{out}");
    stop(&s, &id).await;
}

#[tokio::test]
async fn view_mode_creates_no_terminal_and_takes_no_unknown_mode() {
    let s = server().await;
    let id = s.create_workspace("viewmissing", "blank").await;
    let refusal = |query: &str| {
        let url = format!(
            "ws://127.0.0.1:{}/api/workspaces/{id}/terminals/ghost/ws{query}",
            s.port
        );
        async move {
            let err = tokio_tungstenite::connect_async(url).await.unwrap_err();
            let tokio_tungstenite::tungstenite::Error::Http(response) = err else {
                panic!("expected an HTTP refusal, got {err}");
            };
            let body: Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
            (response.status().as_u16(), body)
        }
    };
    let (status, body) = refusal("?mode=view").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found", "{body}");
    let (status, body) = refusal("?mode=admin").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(r#"mode must be edit or view, not "admin""#),
        "{body}"
    );
    // A second `mode` cannot undo the first.
    let (status, body) = refusal("?mode=view&mode=edit").await;
    assert_eq!(status, 400, "{body}");
    // The control socket takes no unknown mode either.
    let url = format!(
        "ws://127.0.0.1:{}/api/workspaces/{id}/ws?mode=admin",
        s.port
    );
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 400)
        }
        other => panic!("expected a 400 refusal, got {:?}", other.map(|_| ())),
    }

    let mut c = s.control(&id).await;
    let list = c.request("list_terminals", json!({})).await;
    assert_eq!(list["terminals"], json!([]), "{list}");
    stop(&s, &id).await;
}
