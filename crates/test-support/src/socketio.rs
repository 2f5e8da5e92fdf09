//! The stock `socket.io-client` (npm), driven through `web/e2e/socketio-bridge.mjs`: a test
//! sends it commands and reads the events it got, one JSON object per line.

use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::WAIT;

/// One Node process holding any number of Socket.IO sockets, each with a test's own id.
pub struct Bridge {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    /// Events read but not yet matched by a wait.
    pub seen: Vec<Value>,
}

impl Bridge {
    /// Starts the bridge (Node and `web/node_modules` must be there: cove's build installs
    /// them).
    pub async fn start() -> Bridge {
        let web = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web");
        let mut child = tokio::process::Command::new("node")
            .arg("e2e/socketio-bridge.mjs")
            .current_dir(&web)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let stdin = child.stdin.take().expect("stdin");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Bridge {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// Sends one command.
    pub async fn send(&mut self, command: Value) {
        let line = command.to_string() + "\n";
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("the bridge reads");
        self.stdin.flush().await.expect("flush");
    }

    /// Connects socket `id` to `/namespace` of the server on `port` with these transports
    /// and headers, and returns its `connect` (or `connect_error`) event.
    pub async fn connect(
        &mut self,
        id: &str,
        port: u16,
        namespace: &str,
        transports: &[&str],
        headers: Value,
    ) -> Value {
        self.send(json!({
            "op": "connect",
            "id": id,
            "url": format!("http://127.0.0.1:{port}{namespace}"),
            "transports": transports,
            "upgrade": transports.len() > 1,
            "headers": headers,
        }))
        .await;
        self.until(id, |e| {
            e["event"] == "connect" || e["event"] == "connect_error"
        })
        .await
    }

    /// Emits `event` with `data` on socket `id`.
    pub async fn emit(&mut self, id: &str, event: &str, data: Value) {
        self.send(json!({"op": "emit", "id": id, "event": event, "data": data}))
            .await;
    }

    /// Emits `event` with no argument at all on socket `id`.
    pub async fn emit_bare(&mut self, id: &str, event: &str) {
        self.send(json!({"op": "emit", "id": id, "event": event}))
            .await;
    }

    /// The first event of socket `id` that matches, waiting up to [`WAIT`]; it is taken out
    /// of what was seen.
    pub async fn until(&mut self, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.until_within(id, WAIT, pred).await.unwrap_or_else(|| {
            panic!(
                "socket {id}: no matching event in time; seen: {:?}",
                self.seen
            )
        })
    }

    /// Like [`Bridge::until`], `None` after `wait`.
    pub async fn until_within(
        &mut self,
        id: &str,
        wait: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let matches = |e: &Value| e["id"] == id && pred(e);
        if let Some(i) = self.seen.iter().position(matches) {
            return Some(self.seen.remove(i));
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .ok()?
                .expect("the bridge's output")
                .expect("the bridge is running");
            let event: Value = serde_json::from_str(&line).expect("the bridge writes JSON");
            assert_ne!(event["event"], "bridge_error", "{event}");
            if matches(&event) {
                return Some(event);
            }
            self.seen.push(event);
        }
    }

    /// Whether socket `id` got an event that matches within `wait` (used to show that one
    /// did *not* come).
    pub async fn got_within(
        &mut self,
        id: &str,
        wait: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> bool {
        self.until_within(id, wait, pred).await.is_some()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
