//! `GET /api/events`: a live feed of the caller's workspaces as Server-Sent Events, so that
//! the home page and open IDE tabs learn of creations, starts, stops and deletions at once,
//! whoever caused them.
//!
//! Events: `workspace` (the workspace as `GET /api/workspaces/{id}` shows it) and
//! `workspace_deleted` (`{"id": ...}`); `resync` when this client fell behind and should list
//! again. A comment line every 25 s keeps proxies from closing the stream.

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

use crate::AppState;
use crate::relay::Gauge;
use crate::workspaces::WorkspaceEvent;

pub(crate) async fn events(State(app): State<Arc<AppState>>) -> Response {
    let feed = Feed {
        events: app.manager.events(),
        owner: app.owner.clone(),
        stop: app.shutdown.clone(),
        _gauge: Gauge::enter(&app.metrics.events),
    };
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        let event = feed.next().await?;
        Some((Ok::<_, Infallible>(event), feed))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(25)))
        .into_response()
}

/// One client's feed: its workspaces' events until it leaves or the server stops.
struct Feed {
    events: tokio::sync::broadcast::Receiver<WorkspaceEvent>,
    owner: String,
    stop: tokio_util::sync::CancellationToken,
    _gauge: Gauge,
}

impl Feed {
    async fn next(&mut self) -> Option<Event> {
        loop {
            let received = tokio::select! {
                _ = self.stop.cancelled() => return None,
                received = self.events.recv() => received,
            };
            match received {
                Ok(WorkspaceEvent::Changed(view)) if view.owner == self.owner => {
                    return Event::default().event("workspace").json_data(&view).ok();
                }
                Ok(WorkspaceEvent::Deleted { id, owner }) if owner == self.owner => {
                    return Event::default()
                        .event("workspace_deleted")
                        .json_data(serde_json::json!({ "id": id }))
                        .ok();
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    return Some(Event::default().event("resync").data("{}"));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}
