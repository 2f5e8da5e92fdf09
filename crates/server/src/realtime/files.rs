//! `/files`: `watch {workspaceId, path?}` -> `change {workspaceId, path, kind, to?}` for
//! every change under the folder (the workspace's root by default); `unwatch` with the same
//! payload ends it. A client that falls behind gets an `error` saying how many changes it
//! missed (it should read the folder again) before the next `change`.

use cove_protocol::realtime::{FileChange, RealtimeError, WatchFiles};
use cove_protocol::{ErrorCode, Event, OptionalPath, Request};
use serde_json::Value;
use socketioxide::extract::SocketRef;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use super::outlet::{Missed, Outlet, REST};
use super::upstream::{ASKED, Upstream};
use super::{Client, Refused, on, payload, realtime_error};
use crate::error::ApiError;

pub(super) fn on_connect(client: &Arc<Client>, socket: &SocketRef) {
    on(client, socket, "watch", watch);
    on(client, socket, "unwatch", |client, _, value| async move {
        let mut asked: WatchFiles = payload("unwatch", value)?;
        asked.workspace_id = client.id_of(&asked.workspace_id).await;
        client.unsubscribe(&key(&asked));
        Ok(())
    });
}

fn key(asked: &WatchFiles) -> String {
    format!(
        "{}:{}",
        asked.workspace_id,
        asked.path.as_deref().unwrap_or("")
    )
}

async fn watch(client: Arc<Client>, socket: SocketRef, value: Value) -> Result<(), Refused> {
    let asked: WatchFiles = payload("watch", value)?;
    let found = client
        .running(&asked.workspace_id, "watch its files")
        .await?;
    let app = client.app.clone();
    let watched = WatchFiles {
        workspace_id: found.row.id.clone(),
        path: asked.path.clone(),
    };
    let observer = app.observer.clone();
    client
        .subscribe(key(&watched), Some(&found), move |stop| async move {
            let mut outlet = Outlet::new(socket, "files", observer);
            follow(&app, &watched, &mut outlet, &stop).await;
        })
        .map_err(|e| Refused::about(e, &asked.workspace_id))
}

async fn follow(
    app: &crate::AppState,
    asked: &WatchFiles,
    outlet: &mut Outlet,
    stop: &CancellationToken,
) {
    let request = Request::Watch(OptionalPath {
        path: asked.path.clone(),
    });
    let mut upstream = match Upstream::open(app, &asked.workspace_id, request).await {
        Ok(upstream) => upstream,
        Err(e) => {
            let _ = outlet
                .surely("error", &error(&e, asked), missed(asked), stop)
                .await;
            return;
        }
    };
    loop {
        let message = tokio::select! {
            _ = stop.cancelled() => return,
            message = upstream.next() => message,
            _ = tokio::time::sleep(REST), if outlet.owes() => {
                if outlet.flush(missed(asked)).is_err() {
                    return;
                }
                continue;
            }
        };
        let Some(message) = message else {
            let e = ApiError::unavailable("the workspace stopped; watching its files ended");
            let _ = outlet
                .surely("error", &error(&e, asked), missed(asked), stop)
                .await;
            return;
        };
        match message.event {
            Event::FileChanged(changed) => {
                let change = FileChange {
                    workspace_id: asked.workspace_id.clone(),
                    path: changed.path,
                    kind: changed.kind,
                    to: changed.to,
                };
                if outlet.offer("change", &change, 1, missed(asked)).is_err() {
                    return;
                }
            }
            Event::Error(reply) if message.request_id.as_deref() == Some(ASKED) => {
                let e = ApiError::from_reply(reply);
                let _ = outlet
                    .surely("error", &error(&e, asked), missed(asked), stop)
                    .await;
                return;
            }
            _ => {}
        }
    }
}

/// The notice of changes a client missed.
fn missed(asked: &WatchFiles) -> impl Fn(Missed) -> (&'static str, RealtimeError) + '_ {
    move |missed| {
        (
            "error",
            RealtimeError {
                code: ErrorCode::LimitExceeded,
                message: format!(
                    "{} changes were not sent: this client fell behind; read the folder again",
                    missed.events
                ),
                event: Some("change".into()),
                workspace_id: Some(asked.workspace_id.clone()),
            },
        )
    }
}

fn error(e: &ApiError, asked: &WatchFiles) -> RealtimeError {
    realtime_error(e, Some("watch"), Some(&asked.workspace_id))
}
