//! `/processes`: a process's output as `logs`, then `stream:closed` with its exit.
//!
//! `subscribe:logs {workspaceId, processId}` first sends what the runner kept of the output
//! (as `subscribe_process` does), then live output. Reads that arrive together are sent as
//! one `logs` event of up to [`BATCH`] bytes: a process printing fast costs a few packets a
//! second, not one per read. A client that is briefly slower holds the process back (its
//! subscription stops reading the runner, whose own backpressure applies); one that takes
//! nothing for 5 s gets `logs:skipped` (with how much it missed) before the output that
//! follows.

use cove_protocol::realtime::{Logs, LogsSkipped, LogsSubscription, StreamClosed};
use cove_protocol::{ErrorCode, Event, ProcessRef, Request, Stream};
use serde_json::Value;
use socketioxide::extract::SocketRef;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use super::outlet::{Missed, Outlet, REST};
use super::upstream::{ASKED, Upstream};
use super::{Client, Refused, on, payload};
use crate::error::ApiError;

/// Most text in one `logs` event.
pub(super) const BATCH: usize = 32 * 1024;

pub(super) fn on_connect(client: &Arc<Client>, socket: &SocketRef) {
    on(client, socket, "subscribe:logs", subscribe);
    on(
        client,
        socket,
        "unsubscribe:logs",
        |client, _, value| async move {
            let mut asked: LogsSubscription = payload("unsubscribe:logs", value)?;
            asked.workspace_id = client.id_of(&asked.workspace_id).await;
            client.unsubscribe(&key(&asked));
            Ok(())
        },
    );
}

fn key(asked: &LogsSubscription) -> String {
    format!("{}/{}", asked.workspace_id, asked.process_id)
}

async fn subscribe(client: Arc<Client>, socket: SocketRef, value: Value) -> Result<(), Refused> {
    let asked: LogsSubscription = payload("subscribe:logs", value)?;
    let found = client
        .running(&asked.workspace_id, "follow its processes")
        .await?;
    let app = client.app.clone();
    let subscribed = LogsSubscription {
        workspace_id: found.row.id.clone(),
        process_id: asked.process_id.clone(),
    };
    let observer = app.observer.clone();
    client
        .subscribe(key(&subscribed), Some(&found), move |stop| async move {
            let mut outlet = Outlet::new(socket, "processes", observer);
            follow(&app, &subscribed, &mut outlet, &stop).await;
        })
        .map_err(|e| Refused::about(e, &asked.workspace_id))
}

/// Sends the process's output until it ends, the client leaves or `stop`.
async fn follow(
    app: &crate::AppState,
    asked: &LogsSubscription,
    outlet: &mut Outlet,
    stop: &CancellationToken,
) {
    let request = Request::SubscribeProcess(ProcessRef {
        process_id: asked.process_id.clone(),
    });
    let mut upstream = match Upstream::open(app, &asked.workspace_id, request).await {
        Ok(upstream) => upstream,
        Err(e) => {
            let _ = outlet
                .surely("error", &error(&e, asked), skipped(asked), stop)
                .await;
            return;
        }
    };
    let mut held = None;
    loop {
        let message = match held.take() {
            Some(message) => Some(message),
            None => tokio::select! {
                _ = stop.cancelled() => return,
                message = upstream.next() => message,
                _ = tokio::time::sleep(REST), if outlet.owes() => {
                    if outlet.flush(skipped(asked)).is_err() {
                        return;
                    }
                    continue;
                }
            },
        };
        let Some(message) = message else {
            let e = ApiError::unavailable("the workspace stopped; its processes' logs ended");
            let _ = outlet
                .surely("error", &error(&e, asked), skipped(asked), stop)
                .await;
            return;
        };
        match message.event {
            Event::ProcessOutput(output) if output.process_id == asked.process_id => {
                let (data, next) = batch(&mut upstream, asked, output.stream, output.data);
                held = next;
                let bytes = data.len() as u64;
                let logs = Logs {
                    workspace_id: asked.workspace_id.clone(),
                    process_id: asked.process_id.clone(),
                    stream: output.stream,
                    data,
                };
                if outlet
                    .patiently("logs", &logs, bytes, skipped(asked), stop)
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Event::ProcessExit(exit) if exit.process_id == asked.process_id => {
                let closed = StreamClosed {
                    workspace_id: asked.workspace_id.clone(),
                    process_id: asked.process_id.clone(),
                    exit_code: exit.exit_code,
                    signal: exit.signal,
                };
                let _ = outlet
                    .surely("stream:closed", &closed, skipped(asked), stop)
                    .await;
                return;
            }
            Event::Error(reply) if message.request_id.as_deref() == Some(ASKED) => {
                // The runner refused the subscription (no such process).
                let e = ApiError::from_reply(reply);
                let _ = outlet
                    .surely("error", &error(&e, asked), skipped(asked), stop)
                    .await;
                return;
            }
            Event::Error(reply) if reply.code == ErrorCode::LimitExceeded => {
                // The runner's own notice: this subscription fell behind its kept log. The
                // client hears of it with the next notice.
                outlet.lost_upstream();
                if outlet.flush(skipped(asked)).is_err() {
                    return;
                }
            }
            _ => {}
        }
    }
}

/// Joins `data` with the output of the same stream that has already arrived, up to
/// [`BATCH`] bytes; the first message that does not belong is handed back.
fn batch(
    upstream: &mut Upstream,
    asked: &LogsSubscription,
    stream: Stream,
    mut data: String,
) -> (String, Option<cove_protocol::ServerMessage>) {
    while data.len() < BATCH {
        let Some(Some(message)) = upstream.ready() else {
            return (data, None);
        };
        match &message.event {
            Event::ProcessOutput(more)
                if more.process_id == asked.process_id
                    && more.stream == stream
                    && data.len() + more.data.len() <= BATCH =>
            {
                data.push_str(&more.data);
            }
            _ => return (data, Some(message)),
        }
    }
    (data, None)
}

/// The notice of what a client missed, made when it has room again.
fn skipped(asked: &LogsSubscription) -> impl Fn(Missed) -> (&'static str, LogsSkipped) + '_ {
    move |missed| {
        (
            "logs:skipped",
            LogsSkipped {
                workspace_id: asked.workspace_id.clone(),
                process_id: asked.process_id.clone(),
                bytes: missed.bytes,
                message: if missed.more && missed.bytes == 0 {
                    "output was not sent: this client fell behind by more than the runner keeps"
                        .to_string()
                } else if missed.more {
                    format!(
                        "at least {} bytes of output were not sent: this client fell behind by more than the runner keeps",
                        missed.bytes
                    )
                } else {
                    format!(
                        "{} bytes of output in {} events were not sent: this client fell behind",
                        missed.bytes, missed.events
                    )
                },
            },
        )
    }
}

fn error(e: &ApiError, asked: &LogsSubscription) -> cove_protocol::realtime::RealtimeError {
    super::realtime_error(e, Some("subscribe:logs"), Some(&asked.workspace_id))
}
