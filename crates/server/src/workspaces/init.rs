//! A template's init command: run once, when a workspace made from the template first
//! starts, as the process `init` (so the Processes panel shows it and its output, like any
//! program the person started), through the runner's own control socket.

use super::Manager;
use cove_protocol::{ClientMessage, Request, RunCommand};
use futures_util::{SinkExt as _, StreamExt as _};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// The process id the init command runs as.
pub(crate) const INIT_PROCESS: &str = "init";
/// Longest wait for the runner to take the command.
const TAKE_TIMEOUT: Duration = Duration::from_secs(15);

impl Manager {
    /// Starts the workspace's pending init command, if it has one, and forgets it: it runs
    /// once whatever its outcome (a failing install is for the person to see and re-run,
    /// not for every start to repeat).
    pub(super) async fn run_pending_init(&self, id: &str) {
        let Ok(Some(row)) = self.db.get(id).await else {
            return;
        };
        let Some(command) = row.init_command else {
            return;
        };
        if let Err(e) = self.db.clear_init_command(id).await {
            tracing::warn!(workspace = %id, "cannot record that the init command ran: {e}");
            return;
        }
        match tokio::time::timeout(TAKE_TIMEOUT, self.start_process(id, &command)).await {
            Ok(Ok(())) => {
                tracing::info!(workspace = %id, "started the template's init command");
            }
            Ok(Err(why)) => {
                tracing::warn!(workspace = %id, "the template's init command did not start: {why}");
            }
            Err(_) => tracing::warn!(workspace = %id, "the runner did not take the init command"),
        }
    }

    /// `run_command` on the runner's control socket, waiting for `process_started`.
    async fn start_process(&self, id: &str, command: &str) -> Result<(), String> {
        let upgraded = self
            .link
            .websocket(id, "/ws")
            .await
            .map_err(|e| e.to_string())?;
        let mut socket = tokio_tungstenite::WebSocketStream::from_raw_socket(
            upgraded,
            tokio_tungstenite::tungstenite::protocol::Role::Client,
            None,
        )
        .await;
        let request = ClientMessage {
            request: Request::RunCommand(RunCommand {
                command: command.to_string(),
                args: None,
                cwd: None,
                env: None,
                process_id: Some(INIT_PROCESS.to_string()),
            }),
            request_id: Some("init".into()),
        };
        socket
            .send(Message::text(request.encode()))
            .await
            .map_err(|e| e.to_string())?;
        while let Some(frame) = socket.next().await {
            let Message::Text(text) = frame.map_err(|e| e.to_string())? else {
                continue;
            };
            let Ok(reply) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            if reply["requestId"] != "init" {
                continue;
            }
            let _ = socket.close(None).await;
            return match reply["type"].as_str() {
                Some("process_started") => Ok(()),
                _ => Err(reply["message"].as_str().unwrap_or("refused").to_string()),
            };
        }
        Err("the runner closed the socket".into())
    }
}
