//! The socket clients a test speaks through: the control socket's and the raw terminal
//! socket's. Every wait is bounded by [`WAIT`].

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::VecDeque;
use tokio_tungstenite::tungstenite::Message;

use crate::{WAIT, Ws};

/// A control-socket client that keeps messages it was not waiting for.
pub struct Control {
    pub ws: Ws,
    pub(crate) pending: VecDeque<Value>,
    pub(crate) next_id: u64,
}

impl Control {
    /// Sends a raw text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// Sends `{"type", "payload"}` without a request id.
    pub async fn send(&mut self, kind: &str, payload: Value) {
        self.send_text(&json!({"type": kind, "payload": payload}).to_string())
            .await;
    }

    async fn read(&mut self) -> Option<Value> {
        loop {
            match self.ws.next().await? {
                Ok(Message::Text(text)) => {
                    return Some(serde_json::from_str(&text).expect("server sends JSON"));
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// The next message that matches, keeping the others for later waits.
    pub async fn wait_for(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.pending.iter().position(&pred) {
            return self.pending.remove(i).expect("index");
        }
        let result = tokio::time::timeout(WAIT, async {
            loop {
                let message = self.read().await?;
                if pred(&message) {
                    return Some(message);
                }
                self.pending.push_back(message);
            }
        })
        .await;
        match result {
            Ok(Some(message)) => message,
            Ok(None) => panic!("the socket closed; unmatched messages: {:?}", self.pending),
            Err(_) => panic!("timed out; unmatched messages: {:?}", self.pending),
        }
    }

    /// Sends a request with a fresh `requestId` and returns the reply that carries it.
    pub async fn request(&mut self, kind: &str, payload: Value) -> Value {
        self.next_id += 1;
        let id = format!("r{}", self.next_id);
        self.send_text(&json!({"type": kind, "payload": payload, "requestId": id}).to_string())
            .await;
        self.wait_for(|m| m["requestId"] == id.as_str()).await
    }

    /// Collects `terminal_output` of a terminal until the text contains `needle`.
    pub async fn terminal_until(&mut self, terminal: &str, needle: &str) -> String {
        let mut text = String::new();
        while !text.contains(needle) {
            let m = self
                .wait_for(|m| m["type"] == "terminal_output" && m["terminalId"] == terminal)
                .await;
            text.push_str(m["data"].as_str().expect("data"));
        }
        text
    }

    /// Collects `process_output` of a process until it exits; returns (stdout, stderr, exit).
    pub async fn process_until_exit(&mut self, process: &str) -> (String, String, Value) {
        let (mut out, mut err) = (String::new(), String::new());
        loop {
            let m = self
                .wait_for(|m| {
                    (m["type"] == "process_output" || m["type"] == "process_exit")
                        && m["processId"] == process
                })
                .await;
            if m["type"] == "process_exit" {
                return (out, err, m);
            }
            let data = m["data"].as_str().expect("data");
            if m["stream"] == "stderr" {
                err.push_str(data)
            } else {
                out.push_str(data)
            }
        }
    }

    /// Runs a shell command line in the workspace and returns its stdout (stderr appended)
    /// and exit code: how tests look at a workspace's files from inside, through a path that
    /// does not share code with the file API. (A sandboxed workspace's disk is mounted only
    /// inside its sandbox, so the host cannot look.)
    pub async fn sh(&mut self, command: &str) -> (String, i64) {
        self.next_id += 1;
        let id = format!("sh-{}", self.next_id);
        let started = self
            .request("run_command", json!({"command": command, "processId": id}))
            .await;
        assert_eq!(started["type"], "process_started", "{command}: {started}");
        let (out, err, exit) = self.process_until_exit(&id).await;
        (out + &err, exit["exitCode"].as_i64().unwrap_or(-1))
    }

    /// Messages received but not yet matched.
    pub fn pending(&self) -> &VecDeque<Value> {
        &self.pending
    }
}

/// A raw terminal socket client.
pub struct RawTerminal {
    pub ws: Ws,
    /// Every output byte received so far.
    pub output: Vec<u8>,
    /// Control messages received after `attached`.
    pub controls: Vec<Value>,
}

impl RawTerminal {
    pub async fn send(&mut self, bytes: &[u8]) {
        self.ws
            .send(Message::Binary(bytes.to_vec().into()))
            .await
            .expect("send");
    }

    /// Sends a text frame (a control message, or anything a test wants the runner to see).
    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.to_string().into()))
            .await
            .expect("send");
    }

    pub async fn resize(&mut self, cols: u16, rows: u16) {
        let text = json!({"type": "resize", "cols": cols, "rows": rows}).to_string();
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    pub(crate) async fn next_control(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("message in time");
            match message {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(&text).expect("JSON control");
                }
                Some(Ok(Message::Binary(bytes))) => self.output.extend_from_slice(&bytes),
                Some(Ok(_)) => {}
                other => panic!("socket ended before a control message: {other:?}"),
            }
        }
    }

    /// Reads until the output received so far contains `needle`.
    pub async fn until(&mut self, needle: &str) -> String {
        // Only the bytes not searched yet (and a needle's length before them): a flood
        // is megabytes, searched once, not once per message.
        let wanted = needle.as_bytes();
        let mut searched: usize = 0;
        let result = tokio::time::timeout(WAIT, async {
            loop {
                let from = searched.saturating_sub(wanted.len());
                if wanted.is_empty()
                    || self.output[from..]
                        .windows(wanted.len())
                        .any(|w| w == wanted)
                {
                    break;
                }
                searched = self.output.len();
                match self.ws.next().await {
                    Some(Ok(Message::Binary(bytes))) => self.output.extend_from_slice(&bytes),
                    Some(Ok(Message::Text(text))) => self
                        .controls
                        .push(serde_json::from_str(&text).expect("JSON")),
                    Some(Ok(_)) => {}
                    _ => return false,
                }
            }
            true
        })
        .await;
        let text = String::from_utf8_lossy(&self.output).to_string();
        assert!(
            matches!(result, Ok(true)),
            "never saw {needle:?}; got {text:?}"
        );
        text
    }

    /// Reads until nothing has arrived for `quiet` (a full-screen program done drawing), at
    /// most [`WAIT`] in all.
    pub async fn settle(&mut self, quiet: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::time::Instant::now() < deadline {
            match tokio::time::timeout(quiet, self.ws.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Binary(bytes)))) => self.output.extend_from_slice(&bytes),
                Ok(Some(Ok(Message::Text(text)))) => self
                    .controls
                    .push(serde_json::from_str(&text).expect("JSON")),
                Ok(Some(Ok(_))) => {}
                Ok(_) => return,
            }
        }
        panic!("output never settled");
    }

    /// Reads until the socket closes; returns the close code.
    pub async fn until_closed(&mut self) -> Option<u16> {
        tokio::time::timeout(WAIT, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Binary(bytes))) => self.output.extend_from_slice(&bytes),
                    Some(Ok(Message::Text(text))) => self
                        .controls
                        .push(serde_json::from_str(&text).expect("JSON")),
                    Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                    Some(Ok(_)) => {}
                    _ => return None,
                }
            }
        })
        .await
        .expect("socket closes in time")
    }
}
