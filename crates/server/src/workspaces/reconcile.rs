//! After a (re)start of the server: every workspace's recorded state set to what is true,
//! from the backend (which runners run) and the snapshot records (a restore cut short is
//! still hibernated); then the object store is swept of what no workspace records.

use cove_protocol::rest::WorkspaceState;

use super::Manager;
use crate::error::ApiError;

impl Manager {
    /// After a (re)start: records which runners are still running and which are not.
    pub(crate) async fn reconcile(&self) -> Result<(), ApiError> {
        let running = self
            .backend
            .list_running()
            .await
            .map_err(|e| ApiError::internal("cannot list runners", e))?;
        for row in self.db.list_all().await? {
            let alive = running.contains(&row.id);
            let restoring = row.state == WorkspaceState::Starting
                && row.snapshot.is_some()
                && row.state_reason.starts_with("restoring");
            let state = if alive {
                WorkspaceState::Running
            } else if row.state == WorkspaceState::Hibernated || restoring {
                // Its files are in the object store (a restore cut short put nothing in place,
                // or put all of it: the next start finds out which).
                WorkspaceState::Hibernated
            } else {
                WorkspaceState::Stopped
            };
            if row.state != state {
                let reason = match (alive, row.state) {
                    (true, _) => String::new(),
                    // Stopped for good while the server was away: keep what was said.
                    (false, WorkspaceState::Stopped | WorkspaceState::Error) => {
                        row.state_reason.clone()
                    }
                    (false, _) if restoring => {
                        "its restore was cut short by a server restart; its snapshot is kept"
                            .to_string()
                    }
                    (false, _) => "the workspace stopped while the server was down".to_string(),
                };
                tracing::info!(workspace = %row.id, from = %row.state, to = %state, "reconciled");
                self.db
                    .set_state(&row.id, state, &reason, row.stopped_by.as_deref())
                    .await?;
            }
            if alive {
                tracing::info!(workspace = %row.id, "found its runner still running");
            }
        }
        let removed = self.sweep_snapshots().await?;
        if !removed.is_empty() {
            tracing::info!(
                count = removed.len(),
                "swept objects that no workspace records"
            );
        }
        let removed = self.templates.sweep().await?;
        if !removed.is_empty() {
            tracing::info!(
                count = removed.len(),
                "swept template objects that no template records"
            );
        }
        Ok(())
    }
}
