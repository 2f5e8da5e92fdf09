//! Workspaces and their lifecycle: create from a template, start, stop, delete, and finding
//! running runners again after a restart.
//!
//! Lifecycle (the `state` field): `stopped -> starting -> running -> stopping -> stopped`,
//! and `error` when a start fails (a later start may succeed). Starts and stops of one
//! workspace are serialized, so two clients connecting at once start one runner.

use cove_backend::{BackendError, RunnerAddr, RunnerState, SharedBackend, WorkspaceLimits};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::db::{Db, WorkspaceRow};
use crate::error::ApiError;
use crate::templates;

/// Limits a workspace asks for when it is created (`limits` in `POST /api/workspaces`); each
/// may be left out for the server's default, and none may exceed the server's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct LimitsRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    /// Cores (0.25 = a quarter of one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_mib: Option<u64>,
}

impl LimitsRequest {
    fn is_empty(&self) -> bool {
        *self == LimitsRequest::default()
    }

    fn to_backend(self) -> Result<WorkspaceLimits, ApiError> {
        const MIB: u64 = 1024 * 1024;
        let mib = |v: u64| {
            v.checked_mul(MIB)
                .ok_or_else(|| ApiError::bad_request("limit too large"))
        };
        let cpu_millis = match self.cpu {
            Some(cpu) if !cpu.is_finite() || cpu <= 0.0 || cpu > 1e6 => {
                return Err(ApiError::bad_request(
                    "cpu must be a positive number of cores",
                ));
            }
            cpu => cpu.map(|c| (c * 1000.0).round() as u64),
        };
        Ok(WorkspaceLimits {
            memory_bytes: self.memory_mib.map(mib).transpose()?,
            cpu_millis,
            pids: self.pids,
            disk_bytes: self.disk_mib.map(mib).transpose()?,
        })
    }

    /// The limits stored with a workspace (`{}` for rows from before limits existed).
    fn from_row(row: &WorkspaceRow) -> LimitsRequest {
        serde_json::from_str(&row.limits).unwrap_or_else(|e| {
            tracing::warn!(workspace = %row.id, "unreadable stored limits, using defaults: {e}");
            LimitsRequest::default()
        })
    }
}

/// A workspace as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WorkspaceView {
    pub id: String,
    pub name: String,
    pub template: String,
    pub state: String,
    pub owner: String,
    pub created_at: String,
    /// When `state` last changed.
    pub state_changed_at: String,
    /// Why it is in its state, for people ("stopped by admin", "its runner exited").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_reason: Option<String>,
    /// Who stopped it, when a person did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_command: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview_port: Option<u16>,
    /// The limits it asked for at creation (absent: the server's defaults).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsRequest>,
}

impl WorkspaceView {
    fn from_row(row: WorkspaceRow) -> WorkspaceView {
        let template = templates::find(&row.template);
        let limits = Some(LimitsRequest::from_row(&row)).filter(|l| !l.is_empty());
        WorkspaceView {
            limits,
            run_command: template.and_then(|t| t.run_command),
            preview_port: template.and_then(|t| t.preview_port),
            id: row.id,
            name: row.name,
            template: row.template,
            state: row.state,
            owner: row.owner,
            created_at: row.created_at,
            state_changed_at: row.updated_at,
            state_reason: Some(row.state_reason).filter(|r| !r.is_empty()),
            stopped_by: row.stopped_by,
        }
    }
}

/// What changed about a workspace, for live views (`GET /api/events`).
#[derive(Debug, Clone)]
pub(crate) enum WorkspaceEvent {
    /// Created, or its state changed: the workspace as it is now.
    Changed(Box<WorkspaceView>),
    /// Deleted: its id and owner.
    Deleted { id: String, owner: String },
}

#[derive(Debug)]
pub(crate) struct Manager {
    db: Db,
    backend: SharedBackend,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    events: tokio::sync::broadcast::Sender<WorkspaceEvent>,
}

/// Longest workspace name.
pub(crate) const MAX_NAME_CHARS: usize = 64;

/// Checks a workspace name. Names are what people read in lists and type in URLs, so they
/// are plain: ASCII letters, digits, spaces and `-_.`, starting and ending with a letter or a
/// digit, at most [`MAX_NAME_CHARS`]. That leaves out look-alikes (`a` and `a` + a zero-width
/// space, right-to-left overrides), `.` and `..`, and anything that needs escaping in a path.
/// Names are unique per owner whatever their case: `Demo` and `demo` are one name.
pub(crate) fn validate_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    let rule = "names are 1 to 64 characters: letters, digits, spaces and - _ . (ASCII), starting and ending with a letter or a digit";
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if name.is_empty()
        || name.len() > MAX_NAME_CHARS
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.'))
        || !edge_ok(name.chars().next())
        || !edge_ok(name.chars().last())
    {
        return Err(ApiError::bad_request(format!(
            "invalid name {name:?}: {rule}"
        )));
    }
    if name.len() == 32 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(
            "name must not look like a workspace id",
        ));
    }
    Ok(name.to_string())
}

impl Manager {
    pub(crate) fn new(db: Db, backend: SharedBackend) -> Manager {
        Manager {
            db,
            backend,
            locks: Mutex::new(HashMap::new()),
            events: tokio::sync::broadcast::channel(256).0,
        }
    }

    /// Workspace changes from now on.
    pub(crate) fn events(&self) -> tokio::sync::broadcast::Receiver<WorkspaceEvent> {
        self.events.subscribe()
    }

    /// Records a state (and why) and tells the live views.
    async fn transition(
        &self,
        id: &str,
        state: &str,
        reason: &str,
        stopped_by: Option<&str>,
    ) -> Result<(), ApiError> {
        self.db.set_state(id, state, reason, stopped_by).await?;
        if let Some(row) = self.db.get(id).await? {
            let _ = self
                .events
                .send(WorkspaceEvent::Changed(Box::new(WorkspaceView::from_row(
                    row,
                ))));
        }
        Ok(())
    }

    fn lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap()
            .entry(id.to_string())
            .or_default()
            .clone()
    }

    /// Creates a workspace from a template; its files exist when this returns.
    pub(crate) async fn create(
        &self,
        owner: &str,
        name: &str,
        template: Option<&str>,
        limits: LimitsRequest,
    ) -> Result<WorkspaceView, ApiError> {
        let name = validate_name(name)?;
        let backend_limits = limits.to_backend()?;
        self.backend
            .check_limits(&backend_limits)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let template_name = template.unwrap_or(templates::TEMPLATES[0].name);
        let template = templates::find(template_name).ok_or_else(|| {
            let known: Vec<_> = templates::TEMPLATES.iter().map(|t| t.name).collect();
            ApiError::bad_request(format!(
                "unknown template {template_name:?}; known: {}",
                known.join(", ")
            ))
        })?;
        let row = WorkspaceRow {
            id: uuid::Uuid::new_v4().simple().to_string(),
            name,
            owner: owner.to_string(),
            template: template.name.to_string(),
            state: "stopped".into(),
            created_at: crate::now_rfc3339(),
            updated_at: crate::now_rfc3339(),
            limits: serde_json::to_string(&limits).expect("limits serialize"),
            state_reason: String::new(),
            stopped_by: None,
        };
        // The row reserves the name first; files follow, and a failure undoes the row.
        self.db.insert(&row).await?;
        if let Err(e) = self
            .backend
            .provision(&row.id, &template.seed(), &backend_limits)
            .await
        {
            let _ = self.db.delete(&row.id).await;
            return Err(ApiError::internal("cannot create the workspace's files", e));
        }
        tracing::info!(workspace = %row.id, name = %row.name, template = %row.template, "workspace created");
        let view = WorkspaceView::from_row(row);
        let _ = self
            .events
            .send(WorkspaceEvent::Changed(Box::new(view.clone())));
        Ok(view)
    }

    /// The workspace `id_or_name` of `owner`, or 404.
    pub(crate) async fn find(
        &self,
        owner: &str,
        id_or_name: &str,
    ) -> Result<WorkspaceRow, ApiError> {
        self.db
            .find(owner, id_or_name)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no workspace {id_or_name:?}")))
    }

    /// The view of a workspace, with its state checked against the backend (a runner may have
    /// died without telling anyone).
    pub(crate) async fn view(&self, row: WorkspaceRow) -> WorkspaceView {
        let mut row = row;
        if row.state == "running"
            && let Ok(RunnerState::Stopped) = self.backend.status(&row.id).await
        {
            let reason = "the workspace stopped on its own (its runner exited)";
            tracing::warn!(workspace = %row.id, "{reason}");
            if self
                .transition(&row.id, "stopped", reason, None)
                .await
                .is_ok()
                && let Ok(Some(now)) = self.db.get(&row.id).await
            {
                row = now;
            }
        }
        WorkspaceView::from_row(row)
    }

    pub(crate) async fn list(&self, owner: &str) -> Result<Vec<WorkspaceView>, ApiError> {
        let rows = self.db.list(owner).await?;
        let mut views = Vec::with_capacity(rows.len());
        for row in rows {
            views.push(self.view(row).await);
        }
        Ok(views)
    }

    /// Starts the workspace's runner if needed and returns its address.
    pub(crate) async fn ensure_running(&self, row: &WorkspaceRow) -> Result<RunnerAddr, ApiError> {
        if let Ok(RunnerState::Running { addr, .. }) = self.backend.status(&row.id).await {
            return Ok(addr);
        }
        let lock = self.lock(&row.id);
        let _turn = lock.lock().await;
        if let Ok(RunnerState::Running { addr, .. }) = self.backend.status(&row.id).await {
            return Ok(addr);
        }
        self.transition(&row.id, "starting", "", None).await?;
        let started = std::time::Instant::now();
        let limits = LimitsRequest::from_row(row)
            .to_backend()
            .unwrap_or_default();
        match self.backend.start(&row.id, &limits).await {
            Ok(addr) => {
                self.transition(&row.id, "running", "", None).await?;
                tracing::info!(workspace = %row.id, elapsed_ms = started.elapsed().as_millis() as u64, "workspace running");
                Ok(addr)
            }
            Err(e) => {
                tracing::error!(workspace = %row.id, error = %e, "workspace failed to start");
                let message = match e {
                    BackendError::NoStorage(_) => "the workspace's files are missing".to_string(),
                    _ => "the workspace could not start; see the server log".to_string(),
                };
                self.transition(&row.id, "error", &message, None).await?;
                Err(ApiError::unavailable(message))
            }
        }
    }

    /// The runner's address when it is running, without starting it.
    pub(crate) async fn running_addr(&self, row: &WorkspaceRow) -> Option<RunnerAddr> {
        match self.backend.status(&row.id).await {
            Ok(RunnerState::Running { addr, .. }) => Some(addr),
            _ => None,
        }
    }

    /// Stops the workspace on behalf of `by` (a user's name): a decision, recorded and shown.
    pub(crate) async fn stop(&self, row: &WorkspaceRow, by: &str) -> Result<(), ApiError> {
        let lock = self.lock(&row.id);
        let _turn = lock.lock().await;
        let reason = format!("stopped by {by}");
        self.transition(&row.id, "stopping", &reason, Some(by))
            .await?;
        if let Err(e) = self.backend.stop(&row.id).await {
            let message = "the workspace could not be stopped; see the server log";
            self.transition(&row.id, "error", message, None).await?;
            return Err(ApiError::internal(message, e));
        }
        self.transition(&row.id, "stopped", &reason, Some(by))
            .await?;
        Ok(())
    }

    pub(crate) async fn delete(&self, row: &WorkspaceRow) -> Result<(), ApiError> {
        let lock = self.lock(&row.id);
        let _turn = lock.lock().await;
        self.backend
            .destroy(&row.id)
            .await
            .map_err(|e| ApiError::internal("cannot delete the workspace", e))?;
        self.db.delete(&row.id).await?;
        self.locks.lock().unwrap().remove(&row.id);
        tracing::info!(workspace = %row.id, "workspace deleted");
        let _ = self.events.send(WorkspaceEvent::Deleted {
            id: row.id.clone(),
            owner: row.owner.clone(),
        });
        Ok(())
    }

    /// After a (re)start: records which runners are still running and which are not.
    pub(crate) async fn reconcile(&self) -> Result<(), ApiError> {
        let running = self
            .backend
            .list_running()
            .await
            .map_err(|e| ApiError::internal("cannot list runners", e))?;
        for row in self.db.list_all().await? {
            let alive = running.contains(&row.id);
            let state = if alive { "running" } else { "stopped" };
            if row.state != state {
                let reason = match (alive, row.state.as_str()) {
                    (true, _) => String::new(),
                    // Stopped for good while the server was away: keep what was said.
                    (false, "stopped" | "error") => row.state_reason.clone(),
                    (false, _) => "the workspace stopped while the server was down".to_string(),
                };
                tracing::info!(workspace = %row.id, from = %row.state, to = state, "reconciled");
                self.db
                    .set_state(&row.id, state, &reason, row.stopped_by.as_deref())
                    .await?;
            }
            if alive {
                tracing::info!(workspace = %row.id, "found its runner still running");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::validate_name;

    #[test]
    fn names_are_plain_and_readable() {
        for good in [
            "demo",
            "My project 2",
            "py-demo",
            "a.b_c",
            "x",
            &"n".repeat(64),
        ] {
            assert_eq!(validate_name(good).unwrap(), good.trim(), "{good:?}");
        }
        assert_eq!(validate_name("  padded  ").unwrap(), "padded");
        for bad in [
            "",
            ".",
            "..",
            "-lead",
            "trail.",
            "a\u{200b}",
            "\u{202e}evil",
            "caf\u{e9}",
            "a/b",
            "a%2f",
            "tab\there",
            &"n".repeat(65),
            "0123456789abcdef0123456789abcdef",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
