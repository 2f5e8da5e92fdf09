//! The control socket in view mode, end to end in one process: the runner's own router on a
//! loopback port, real programs, a real WebSocket client.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

use crate::{Config, Limits, Listen, Workspace};

const WAIT: Duration = Duration::from_secs(20);

/// A runner serving a temp directory on a loopback port, stopped on `stop`.
struct Runner {
    ws: std::sync::Arc<Workspace>,
    port: u16,
    shutdown: tokio_util::sync::CancellationToken,
    server: tokio::task::JoinHandle<()>,
    root: tempfile::TempDir,
}

impl Runner {
    async fn start() -> Runner {
        let root = tempfile::tempdir().unwrap();
        let config = Config {
            workspace_id: "view-test".into(),
            root: root.path().into(),
            // Not used: the test serves the router itself.
            listen: Listen::Unix(root.path().join("unused.sock")),
            shell: "/bin/bash".into(),
            home: root.path().into(),
            program_cgroup: None,
            limits: Limits::default(),
        };
        let shutdown = tokio_util::sync::CancellationToken::new();
        let tasks = tokio_util::task::TaskTracker::new();
        let ws = Workspace::new(&config, tasks, shutdown.clone()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = crate::http::router(ws.clone());
        let stop = shutdown.clone();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        Runner {
            ws,
            port,
            shutdown,
            server,
            root,
        }
    }

    async fn socket(&self, query: &str) -> Client {
        let url = format!("ws://127.0.0.1:{}/ws{query}", self.port);
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut client = Client { ws, next_id: 0 };
        let welcome = client.next(|m| m["type"] == "welcome").await;
        assert_eq!(welcome["workspaceId"], "view-test");
        client
    }

    fn file(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.root.path().join(path)).ok()
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.ws.stop_everything().await;
        let _ = self.server.await;
    }
}

struct Client {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u64,
}

impl Client {
    /// The next message that matches; others are dropped.
    async fn next(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        self.next_or(pred, "a message").await
    }

    /// Like `next`; a failure names `what` was awaited.
    async fn next_or(&mut self, pred: impl Fn(&Value) -> bool, what: &str) -> Value {
        let found = tokio::time::timeout(WAIT, async {
            while let Some(Ok(message)) = self.ws.next().await {
                if let Message::Text(text) = message {
                    let value: Value = serde_json::from_str(&text).unwrap();
                    if pred(&value) {
                        return Some(value);
                    }
                }
            }
            None
        })
        .await;
        found
            .unwrap_or_else(|_| panic!("{what} in time"))
            .unwrap_or_else(|| panic!("the socket stays open, for {what}"))
    }

    /// Sends a request; returns its `requestId`.
    async fn send(&mut self, kind: &str, payload: Value) -> String {
        self.next_id += 1;
        let id = format!("r{}", self.next_id);
        let text = json!({"type": kind, "payload": payload, "requestId": id}).to_string();
        self.ws.send(Message::Text(text.into())).await.unwrap();
        id
    }

    async fn request(&mut self, kind: &str, payload: Value) -> Value {
        let id = self.send(kind, payload).await;
        self.next_or(
            |m| m["requestId"] == id.as_str(),
            &format!("the reply to {kind}"),
        )
        .await
    }
}

/// Every request that would change the workspace, aimed at things that exist, is refused
/// with `forbidden` and has no effect; everything that watches or reads works.
#[tokio::test]
async fn a_view_socket_is_refused_every_change_and_changes_nothing() {
    let runner = Runner::start().await;
    let mut edit = runner.socket("").await;
    for (kind, payload, reply) in [
        (
            "write_file",
            json!({"path": "keep.txt", "content": "kept"}),
            "file_written",
        ),
        (
            "run_command",
            json!({"command": "sleep 60", "processId": "p1"}),
            "process_started",
        ),
        (
            // Records every line typed into it.
            "create_terminal",
            json!({"terminalId": "t1", "cols": 80, "rows": 24, "command": "cat > got.txt"}),
            "terminal_created",
        ),
    ] {
        let answer = edit.request(kind, payload).await;
        assert_eq!(answer["type"], reply, "{kind}: {answer}");
    }

    let mut view = runner.socket("?mode=view").await;
    let refused = [
        ("create_terminal", json!({"terminalId": "t2"})),
        (
            "terminal_input",
            json!({"terminalId": "t1", "input": "from-viewer\n"}),
        ),
        (
            "resize_terminal",
            json!({"terminalId": "t1", "cols": 100, "rows": 40}),
        ),
        ("close_terminal", json!({"terminalId": "t1"})),
        (
            "run_command",
            json!({"command": "touch ran.txt", "processId": "p2"}),
        ),
        ("stop_process", json!({"processId": "p1"})),
        (
            "write_file",
            json!({"path": "keep.txt", "content": "changed"}),
        ),
        ("write_file", json!({"path": "new.txt", "content": "x"})),
        ("make_dir", json!({"path": "made"})),
        ("delete_path", json!({"path": "keep.txt"})),
        (
            "rename_path",
            json!({"from": "keep.txt", "to": "moved.txt"}),
        ),
    ];
    for (kind, payload) in refused {
        let answer = view.request(kind, payload).await;
        assert_eq!(
            (answer["type"].as_str(), answer["code"].as_str()),
            (Some("error"), Some("forbidden")),
            "{kind}: {answer}"
        );
        assert_eq!(
            answer["message"],
            format!("this connection is read-only (mode=view): {kind} is not allowed")
        );
    }
    let allowed = [
        ("ping", json!({}), "pong"),
        ("list_terminals", json!({}), "terminals"),
        ("list_processes", json!({}), "processes"),
        (
            "attach_terminal",
            json!({"terminalId": "t1"}),
            "terminal_attached",
        ),
        ("subscribe_process", json!({"processId": "p1"}), "ok"),
        ("read_file", json!({"path": "keep.txt"}), "file_content"),
        ("list_dir", json!({"path": ""}), "dir_listing"),
        ("watch", json!({}), "ok"),
        ("unwatch", json!({}), "ok"),
        ("list_ports", json!({}), "ports"),
        ("stats", json!({}), "stats"),
    ];
    for (kind, payload, reply) in allowed {
        let answer = view.request(kind, payload).await;
        assert_eq!(answer["type"], reply, "{kind}: {answer}");
        if kind == "read_file" {
            assert_eq!(answer["content"], "kept");
        }
    }

    // Nothing changed: the files, the terminal (alive, its size) and the process.
    assert_eq!(runner.file("keep.txt").as_deref(), Some("kept"));
    for gone in ["new.txt", "made", "moved.txt", "ran.txt"] {
        assert!(!runner.root.path().join(gone).exists(), "{gone} exists");
    }
    let terminals = view.request("list_terminals", json!({})).await;
    let terminals = terminals["terminals"].as_array().unwrap().clone();
    assert_eq!(terminals.len(), 1, "{terminals:?}");
    let t1 = &terminals[0];
    assert_eq!(
        (&t1["terminalId"], &t1["alive"], &t1["cols"], &t1["rows"]),
        (&json!("t1"), &json!(true), &json!(80), &json!(24)),
        "{t1}"
    );
    let processes = view.request("list_processes", json!({})).await;
    let processes = processes["processes"].as_array().unwrap().clone();
    assert_eq!(processes.len(), 1, "{processes:?}");
    assert_eq!(
        (&processes[0]["processId"], &processes[0]["running"]),
        (&json!("p1"), &json!(true))
    );

    // The editor's input reaches the terminal, the viewer sees it, and the file the terminal
    // writes holds the editor's line only. (Input is answered only when it fails.)
    edit.send(
        "terminal_input",
        json!({"terminalId": "t1", "input": "from-editor\n"}),
    )
    .await;
    view.next(|m| {
        m["type"] == "terminal_output"
            && m["data"]
                .as_str()
                .unwrap_or_default()
                .contains("from-editor")
    })
    .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while runner.file("got.txt").as_deref() != Some("from-editor\n") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "got.txt: {:?}",
            runner.file("got.txt")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    runner.stop().await;
}

#[tokio::test]
async fn an_unknown_mode_is_refused_before_the_upgrade() {
    let runner = Runner::start().await;
    let url = format!("ws://127.0.0.1:{}/ws?mode=admin", runner.port);
    let err = tokio_tungstenite::connect_async(url).await.unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(response) = err else {
        panic!("expected an HTTP refusal, got {err}");
    };
    assert_eq!(response.status(), 400);
    let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "bad_request", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(r#"mode must be edit or view, not "admin""#),
        "{message}"
    );
    runner.stop().await;
}
