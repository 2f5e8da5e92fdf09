//! `/mcp`: `join {workspaceId}` (an id or a name) -> `joined {workspaceId}` (the id), then the events agents cause in
//! that workspace, so a person can watch an agent work; `leave` stops them.
//!
//! Joining puts the socket in the workspace's room; events reach it through
//! `POST /api/emit {namespace: "mcp", room: workspaceId, ...}` (cove's own MCP server, when it
//! comes, emits the same way). Losing access to the workspace leaves the room.

use cove_protocol::realtime::Room;
use serde_json::Value;
use socketioxide::extract::SocketRef;
use std::sync::Arc;

use super::{Client, Refused, on, payload};

pub(super) fn on_connect(client: &Arc<Client>, socket: &SocketRef) {
    on(client, socket, "join", join);
    on(client, socket, "leave", |client, _, value| async move {
        let room: Room = payload("leave", value)?;
        client.unsubscribe(&client.id_of(&room.workspace_id).await);
        Ok(())
    });
}

async fn join(client: Arc<Client>, socket: SocketRef, value: Value) -> Result<(), Refused> {
    let asked: Room = payload("join", value)?;
    let found = client.find(&asked.workspace_id).await?;
    let id = found.row.id.clone();
    // Held until `leave`, disconnect, or lost access: the room is left when it ends.
    client
        .subscribe(id.clone(), Some(&found), move |stop| async move {
            stop.cancelled().await;
        })
        .map_err(|e| Refused::about(e, &id))?;
    let _ = socket.emit("joined", &Room { workspace_id: id });
    Ok(())
}
