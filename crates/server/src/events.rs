//! `GET /api/events`: a live feed of the workspaces the caller may see, as Server-Sent
//! Events, so that the home page and open IDE tabs learn of creations, starts, stops,
//! deletions and shares at once, whoever caused them.
//!
//! Events: `workspace` (the workspace as `GET /api/workspaces/{id}` shows it to this caller,
//! `access` included) and `workspace_deleted` (`{"id": ...}`, also sent when a share to the
//! caller is taken away); `presence` (`{workspaceId, users: [{username, access}]}`: who has
//! the IDE open on a workspace the caller may see, at the start and on every change);
//! `resync` when this client fell behind and should list again. A
//! comment line every 25 s keeps proxies from closing the stream. Each event is checked
//! against the caller's access when it is sent, never when the feed opened.

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

use cove_protocol::accounts::Presence;

use crate::AppState;
use crate::accounts::{Caller, ConnectionKind, Registered};
use crate::db::Db;
use crate::error::ApiError;
use crate::relay::Gauge;
use crate::workspaces::WorkspaceEvent;

pub(crate) async fn events(
    State(app): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let connections = &app.accounts.connections;
    let registered =
        app.accounts
            .open_connection(&caller, None, ConnectionKind::Events, &app.shutdown)?;
    // Subscribed before the snapshot, so that no change falls between them.
    let presence = connections.presence_changes();
    let snapshot = connections
        .occupied()
        .iter()
        .map(|w| connections.present(w))
        .collect();
    let feed = Feed {
        pending: snapshot,
        presence,
        stop: registered.closed.clone(),
        _registered: registered,
        events: app.manager.events(),
        db: app.accounts.db().clone(),
        caller,
        _gauge: Gauge::enter(&app.metrics.events),
    };
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        let event = feed.next().await?;
        Some((Ok::<_, Infallible>(event), feed))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(25)))
        .into_response())
}

/// One client's feed: its workspaces' events until it leaves or the server stops.
struct Feed {
    events: tokio::sync::broadcast::Receiver<WorkspaceEvent>,
    db: Db,
    caller: Caller,
    /// Presence to send before anything else (the snapshot at the start).
    pending: Vec<Presence>,
    presence: tokio::sync::broadcast::Receiver<Presence>,
    /// Cancelled when the server stops or the caller's session, token or user goes.
    stop: tokio_util::sync::CancellationToken,
    _registered: Registered,
    _gauge: Gauge,
}

impl Feed {
    async fn next(&mut self) -> Option<Event> {
        loop {
            while let Some(present) = self.pending.pop() {
                if let Some(event) = self.presence_event(present).await {
                    return Some(event);
                }
            }
            let received = tokio::select! {
                _ = self.stop.cancelled() => return None,
                present = self.presence.recv() => {
                    match present {
                        Ok(present) => self.pending.push(present),
                        Err(RecvError::Lagged(_)) => return Some(resync()),
                        Err(RecvError::Closed) => return None,
                    }
                    continue;
                }
                received = self.events.recv() => received,
            };
            match received {
                Ok(WorkspaceEvent::Changed(mut view)) => {
                    if let Some(access) = self.access(&view).await {
                        view.access = Some(access);
                        return Event::default().event("workspace").json_data(&view).ok();
                    }
                }
                Ok(WorkspaceEvent::AccessChanged { mut view, user_id })
                    if user_id == self.caller.user.id =>
                {
                    return match self.access(&view).await {
                        Some(access) => {
                            view.access = Some(access);
                            Event::default().event("workspace").json_data(&view).ok()
                        }
                        None => deleted(&view.id),
                    };
                }
                Ok(WorkspaceEvent::Deleted { id, seen_by })
                    if self.caller.is_admin() || seen_by.contains(&self.caller.user.id) =>
                {
                    return deleted(&id);
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => return Some(resync()),
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

impl Feed {
    /// What the caller may do with the workspace now, or `None` if they may not see it.
    async fn access(
        &self,
        view: &cove_protocol::rest::WorkspaceView,
    ) -> Option<cove_protocol::accounts::WorkspaceAccess> {
        let caller = &self.caller;
        let owns = view.owner == caller.user.username;
        let share = if owns || caller.is_admin() {
            None
        } else {
            // A failed read hides the event: the client resyncs when it next lists.
            self.db.share_of(&view.id, &caller.user.id).await.ok()?
        };
        caller.access_given(owns, share)
    }
}

impl Feed {
    /// A `presence` event, if the caller may see the workspace.
    async fn presence_event(&self, present: Presence) -> Option<Event> {
        let db_row = self.db.get(&present.workspace_id).await.ok()??;
        let owns = db_row.owner == self.caller.user.id;
        let share = if owns || self.caller.is_admin() {
            None
        } else {
            self.db
                .share_of(&present.workspace_id, &self.caller.user.id)
                .await
                .ok()?
        };
        self.caller.access_given(owns, share)?;
        Event::default().event("presence").json_data(&present).ok()
    }
}

fn resync() -> Event {
    Event::default().event("resync").data("{}")
}

fn deleted(id: &str) -> Option<Event> {
    Event::default()
        .event("workspace_deleted")
        .json_data(serde_json::json!({ "id": id }))
        .ok()
}
