//! A subscription's own control socket to a workspace's runner, in view mode: it may read,
//! list and watch, and the runner refuses anything that would change the workspace.

use cove_protocol::{ClientMessage, ServerMessage};
use futures_util::{FutureExt as _, SinkExt as _, StreamExt as _};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::AppState;
use crate::error::ApiError;

/// The `requestId` of the one request a subscription makes.
pub(super) const ASKED: &str = "subscription";

/// Read buffer of the socket to the runner.
const READ_BUFFER: usize = 8 * 1024;

/// Largest message taken from a runner (its output events carry at most 64 KiB of text).
const MAX_MESSAGE: usize = 1024 * 1024;

pub(super) struct Upstream {
    socket: WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>,
}

impl Upstream {
    /// Opens a view-mode control socket to the runner of `workspace` and sends `request`.
    pub(super) async fn open(
        app: &AppState,
        workspace: &str,
        request: cove_protocol::Request,
    ) -> Result<Upstream, ApiError> {
        let upgraded = app
            .manager
            .link()
            .websocket(workspace, "/ws?mode=view")
            .await?;
        // tungstenite keeps a 128 KiB read buffer per connection by default: with a
        // subscription per client, most of a client's memory. Output arrives in several
        // reads all the same.
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(0)
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        let mut socket =
            WebSocketStream::from_raw_socket(upgraded, Role::Client, Some(config)).await;
        let message = ClientMessage {
            request,
            request_id: Some(ASKED.to_string()),
        };
        socket
            .send(Message::text(message.encode()))
            .await
            .map_err(|e| ApiError::unavailable(format!("cannot reach the workspace: {e}")))?;
        Ok(Upstream { socket })
    }

    /// The runner's next message; `None` when its socket closed (the workspace stopped).
    pub(super) async fn next(&mut self) -> Option<ServerMessage> {
        loop {
            let message = self.socket.next().await?.ok()?;
            if let Some(decoded) = decode(message)? {
                return Some(decoded);
            }
        }
    }

    /// The next message if one has already arrived, without waiting: `Some(None)` when the
    /// socket closed.
    pub(super) fn ready(&mut self) -> Option<Option<ServerMessage>> {
        loop {
            let message = match self.socket.next().now_or_never()? {
                Some(Ok(message)) => message,
                _ => return Some(None),
            };
            match decode(message) {
                None => return Some(None),
                Some(None) => continue,
                Some(decoded) => return Some(decoded),
            }
        }
    }
}

/// A text frame as a message: `Some(None)` for frames that carry none (pings, a message
/// this server does not know), `None` for a close.
fn decode(message: Message) -> Option<Option<ServerMessage>> {
    match message {
        Message::Text(text) => Some(serde_json::from_str(text.as_str()).ok()),
        Message::Close(_) => None,
        _ => Some(None),
    }
}
