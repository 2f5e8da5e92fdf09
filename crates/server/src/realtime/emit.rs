//! `POST /api/emit {namespace, room?, event, data}`: another service pushes an event to the
//! Socket.IO clients of a namespace.
//!
//! Rooms are workspaces: a room reaches the sockets of that namespace that follow the
//! workspace (joined on `/mcp`, subscribed on the others). The caller must be able to change
//! the workspace (its owner, an editor, an administrator); without a room the event goes to
//! every socket of the namespace, which only an administrator may do. The event name may not
//! be one cove sends itself (a service must not forge `logs` or `stats`) or one Socket.IO
//! reserves. Every emit is written to the audit log.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use cove_protocol::accounts::Outcome;
use cove_protocol::realtime::{EmitReply, EmitRequest, NAMESPACES};
use std::sync::Arc;

use crate::AppState;
use crate::accounts::Caller;
use crate::error::ApiError;

/// Longest event name.
const MAX_EVENT: usize = 64;

/// Largest `data`, as JSON.
pub(crate) const MAX_DATA: usize = 32 * 1024;

/// Names Socket.IO reserves, and the events cove's own namespaces send.
const RESERVED: &[&str] = &[
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
    "error",
    "connected",
    "logs",
    "logs:skipped",
    "stream:closed",
    "stats",
    "change",
    "joined",
];

pub(crate) async fn emit(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<EmitReply>, ApiError> {
    let asked: EmitRequest = crate::api::parse_json(&headers, &body)?;
    let namespace = asked.namespace.trim_start_matches('/');
    if !NAMESPACES.contains(&namespace) {
        return Err(ApiError::bad_request(format!(
            "unknown namespace {:?}: one of /{}",
            asked.namespace,
            NAMESPACES.join(", /")
        )));
    }
    check_event(&asked.event)?;
    let size = serde_json::to_vec(&asked.data).map_or(0, |v| v.len());
    if size > MAX_DATA {
        return Err(ApiError::new(
            cove_protocol::ErrorCode::TooLarge,
            format!("data is {size} bytes as JSON; at most {MAX_DATA} may be emitted"),
        ));
    }
    let room = match &asked.room {
        Some(room) => {
            let found = app.manager.find(&caller, room).await?;
            found.require_edit()?;
            Some(found.row.id)
        }
        None if caller.is_admin() => None,
        None => {
            return Err(ApiError::forbidden(
                "only an administrator may emit to every client of a namespace; name a workspace you can change as the room",
            ));
        }
    };
    let (delivered, dropped) = app
        .realtime
        .broadcast(namespace, room.as_deref(), &asked.event, &asked.data)
        .await;
    for _ in 0..dropped {
        app.observer.dropped(namespace);
    }
    let target = format!("/{namespace} {}", room.as_deref().unwrap_or("*"));
    app.accounts
        .audit(
            &caller,
            "realtime.emit",
            &target,
            Outcome::Success,
            &format!(
                "{} to {delivered} clients ({dropped} too far behind)",
                asked.event
            ),
        )
        .await;
    Ok(axum::Json(EmitReply { delivered, dropped }))
}

/// An event name a service may send: short, printable, not reserved.
fn check_event(event: &str) -> Result<(), ApiError> {
    let printable = event
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-' | '.' | '/'));
    if event.is_empty() || event.len() > MAX_EVENT || !printable {
        return Err(ApiError::bad_request(format!(
            "invalid event name {event:?}: 1 to {MAX_EVENT} of letters, digits and : _ - . /"
        )));
    }
    if RESERVED.contains(&event) {
        return Err(ApiError::bad_request(format!(
            "the event name {event:?} is reserved (Socket.IO's, or one cove sends itself)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_are_checked() {
        for good in ["tool:started", "deployed", "a.b-c_d/e"] {
            assert!(check_event(good).is_ok(), "{good}");
        }
        let long = "x".repeat(MAX_EVENT + 1);
        for bad in [
            "",
            "logs",
            "stats",
            "connect",
            "error",
            "two words",
            "é",
            long.as_str(),
        ] {
            assert!(check_event(bad).is_err(), "{bad:?}");
        }
    }
}
