//! Workspaces and their lifecycle: create from a template, start, stop, delete, and finding
//! running runners again after a restart.
//!
//! Lifecycle (the `state` field): `stopped -> starting -> running -> stopping -> stopped`,
//! and `error` when a start fails (a later start may succeed). Starts and stops of one
//! workspace are serialized, so two clients connecting at once start one runner.

use cove_backend::{BackendError, RunnerState, SharedBackend};
use cove_protocol::accounts::WorkspaceAccess;
use cove_protocol::rest::{Limits, WorkspaceState, WorkspaceView};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::accounts::{Accounts, Caller};
use crate::db::{Db, WorkspaceRow};
use crate::error::ApiError;
use crate::link::RunnerLink;
use crate::templates::Catalog;

/// A workspace as the API shows it (its run command and preview port from its template).
fn view_of(row: WorkspaceRow, templates: &Catalog) -> WorkspaceView {
    // Kept from its template when it was made; a workspace older than that asks the template.
    let (run_command, preview_port) = match (&row.run_command, row.preview_port) {
        (Some(command), port) => (
            Some(command.clone()).filter(|c| !c.is_empty()),
            port.and_then(|p| u16::try_from(p).ok()).filter(|p| *p != 0),
        ),
        (None, _) => {
            let template = templates.manifest(&row.template);
            (
                template.as_ref().and_then(|t| t.run_command.clone()),
                template.as_ref().and_then(|t| t.preview_port),
            )
        }
    };
    WorkspaceView {
        limits: Some(row.limits).filter(|l| !l.is_empty()),
        run_command,
        preview_port,
        id: row.id,
        name: row.name,
        template: row.template,
        state: row.state,
        owner: row.owner_name,
        created_at: row.created_at,
        state_changed_at: row.updated_at,
        state_reason: Some(row.state_reason).filter(|r| !r.is_empty()),
        stopped_by: row.stopped_by,
        keep_running: row.keep_running,
        access: None,
    }
}

/// What changed about a workspace, for live views (`GET /api/events`).
#[derive(Debug, Clone)]
pub(crate) enum WorkspaceEvent {
    /// Created, or its state changed: the workspace as it is now.
    Changed(Box<WorkspaceView>),
    /// Deleted: its id, and who could see it (its owner's id, those it was shared with).
    Deleted { id: String, seen_by: Vec<String> },
    /// A share changed: user `user_id` may now see the workspace differently (or not at all).
    AccessChanged {
        view: Box<WorkspaceView>,
        user_id: String,
    },
}

/// A workspace a caller may see, and what they may do with it.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub(crate) row: WorkspaceRow,
    pub(crate) access: WorkspaceAccess,
}

impl Found {
    /// Refuses unless the caller may change things (type, write, run, start, stop).
    pub(crate) fn require_edit(&self) -> Result<(), ApiError> {
        if self.access.can_edit() {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "you may only view the workspace {:?}",
                self.row.name
            )))
        }
    }

    /// Refuses unless the caller owns the workspace (or is an administrator).
    pub(crate) fn require_owner(&self) -> Result<(), ApiError> {
        if self.access == WorkspaceAccess::Owner {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "only the owner of the workspace {:?} may do this",
                self.row.name
            )))
        }
    }
}

#[derive(Debug)]
pub(crate) struct Manager {
    db: Db,
    backend: SharedBackend,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    events: tokio::sync::broadcast::Sender<WorkspaceEvent>,
    link: RunnerLink,
    accounts: Arc<Accounts>,
    /// Where snapshots of hibernated workspaces go.
    objects: cove_objects::Objects,
    /// What new workspaces start with.
    templates: Arc<Catalog>,
    /// Start latency, failures and runner exits are counted here.
    observer: Arc<crate::observe::Observer>,
}

/// Why a workspace whose runner went away without being asked is stopped.
const RUNNER_EXITED: &str = "the workspace stopped on its own (its runner exited)";

impl Manager {
    pub(crate) fn new(
        db: Db,
        backend: SharedBackend,
        accounts: Arc<Accounts>,
        objects: cove_objects::Objects,
        templates: Arc<Catalog>,
        observer: Arc<crate::observe::Observer>,
    ) -> Manager {
        Manager {
            observer,
            objects,
            templates,
            db,
            backend,
            locks: Mutex::new(HashMap::new()),
            events: tokio::sync::broadcast::channel(256).0,
            link: RunnerLink::new(),
            accounts,
        }
    }

    /// Workspace changes from now on.
    pub(crate) fn events(&self) -> tokio::sync::broadcast::Receiver<WorkspaceEvent> {
        self.events.subscribe()
    }

    /// Records a state (and why) and tells the live views. Only the transitions
    /// [`WorkspaceState::can_become`] allows are taken; a refused one is a bug, logged and
    /// answered as an internal error.
    async fn transition(
        &self,
        id: &str,
        state: WorkspaceState,
        reason: &str,
        stopped_by: Option<&str>,
    ) -> Result<(), ApiError> {
        if let Some(row) = self.db.get(id).await?
            && row.state != state
            && !row.state.can_become(state)
        {
            return Err(ApiError::internal(
                "refused a workspace state change",
                format!("{id}: {} cannot become {state}", row.state),
            ));
        }
        self.db.set_state(id, state, reason, stopped_by).await?;
        if let Some(row) = self.db.get(id).await? {
            let _ = self.events.send(WorkspaceEvent::Changed(Box::new(view_of(
                row,
                &self.templates,
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

    /// Creates a workspace of `caller`'s from a template; its files exist when this returns.
    pub(crate) async fn create(
        &self,
        caller: &Caller,
        name: &str,
        template: Option<&str>,
        limits: Limits,
    ) -> Result<WorkspaceView, ApiError> {
        if caller.user.role == cove_protocol::accounts::Role::Viewer {
            return Err(ApiError::forbidden("a viewer cannot create workspaces"));
        }
        let name = validate_name(name)?;
        self.accounts.check_create(&caller.user, &limits).await?;
        let backend_limits = backend_limits(&limits)?;
        self.backend
            .check_limits(&backend_limits)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let template_name = match template {
            Some(name) => name.to_string(),
            None => self
                .templates
                .default_name()
                .ok_or_else(|| ApiError::bad_request("there is no template to create from"))?,
        };
        let manifest = self
            .templates
            .manifest(&template_name)
            .ok_or_else(|| self.templates.unknown(&template_name))?;
        let row = WorkspaceRow {
            id: uuid::Uuid::new_v4().simple().to_string(),
            name,
            owner: caller.user.id.clone(),
            owner_name: caller.user.username.clone(),
            template: manifest.name.clone(),
            state: WorkspaceState::Stopped,
            created_at: crate::now_rfc3339(),
            updated_at: crate::now_rfc3339(),
            limits,
            state_reason: String::new(),
            stopped_by: None,
            keep_running: false,
            snapshot: None,
            // Some until the first start (empty when the template has no init command).
            init_command: Some(manifest.init_command.clone().unwrap_or_default()),
            run_command: Some(manifest.run_command.clone().unwrap_or_default()),
            preview_port: Some(i64::from(manifest.preview_port.unwrap_or(0))),
        };
        // The row reserves the name (and counts against the quota) first; files follow, and
        // a failure undoes the row.
        self.db.insert(&row).await?;
        let files = match self.templates.files(&template_name).await {
            Ok(files) => files,
            Err(e) => {
                let _ = self.db.delete(&row.id).await;
                return Err(e);
            }
        };
        if let Err(e) = self
            .backend
            .provision(&row.id, &files, &backend_limits)
            .await
        {
            let _ = self.db.delete(&row.id).await;
            return Err(ApiError::internal("cannot create the workspace's files", e));
        }
        tracing::info!(workspace = %row.id, name = %row.name, template = %row.template, "workspace created");
        let mut view = view_of(row, &self.templates);
        let _ = self
            .events
            .send(WorkspaceEvent::Changed(Box::new(view.clone())));
        view.access = Some(WorkspaceAccess::Owner);
        Ok(view)
    }

    /// Tells `user_id`'s live views that what they may do with `row` changed.
    pub(crate) fn notify_access_changed(&self, row: &WorkspaceRow, user_id: &str) {
        let _ = self.events.send(WorkspaceEvent::AccessChanged {
            view: Box::new(view_of(row.clone(), &self.templates)),
            user_id: user_id.to_string(),
        });
    }

    /// The workspace `id_or_name` as `caller` may see it: by id, or by name among their
    /// own. One they may not see answers 404, exactly as a missing one.
    pub(crate) async fn find(&self, caller: &Caller, id_or_name: &str) -> Result<Found, ApiError> {
        let missing = || ApiError::not_found(format!("no workspace {id_or_name:?}"));
        let (row, share) = self
            .db
            .find_visible(&caller.user.id, caller.is_admin(), id_or_name)
            .await?
            .ok_or_else(missing)?;
        let access = caller.access_to(&row, share).ok_or_else(missing)?;
        Ok(Found { row, access })
    }

    /// The view of a workspace found for a caller (with what they may do).
    pub(crate) async fn view_for(&self, found: Found) -> WorkspaceView {
        let mut view = self.view(found.row).await;
        view.access = Some(found.access);
        view
    }

    /// The view of a workspace, with its state checked against the backend (a runner may have
    /// died without telling anyone).
    pub(crate) async fn view(&self, row: WorkspaceRow) -> WorkspaceView {
        let mut row = row;
        if self.notice_exit(&row).await
            && let Ok(Some(now)) = self.db.get(&row.id).await
        {
            row = now;
        }
        view_of(row, &self.templates)
    }

    /// Records that a workspace the store says is running has no runner any more (it
    /// exited, was killed, ran out of memory), with the reason, for its live views. Whether
    /// it found that.
    pub(crate) async fn notice_exit(&self, row: &WorkspaceRow) -> bool {
        if row.state != WorkspaceState::Running
            || !matches!(self.backend.status(&row.id).await, Ok(RunnerState::Stopped))
        {
            return false;
        }
        // A start or stop under way owns the workspace's state: leave it to them. Otherwise
        // read the row again under the lock (the one passed in may be old).
        let lock = self.lock(&row.id);
        let Ok(_turn) = lock.try_lock() else {
            return false;
        };
        let Ok(current) = self.reread(row).await else {
            return false;
        };
        if current.state != WorkspaceState::Running
            || !matches!(self.backend.status(&row.id).await, Ok(RunnerState::Stopped))
        {
            return false;
        }
        self.link.forget(&row.id);
        tracing::warn!(workspace = %row.id, name = %row.name, "{RUNNER_EXITED}");
        self.observer.runner_exited(&row.id, RUNNER_EXITED);
        self.transition(&row.id, WorkspaceState::Stopped, RUNNER_EXITED, None)
            .await
            .is_ok()
    }

    /// The workspaces `caller` may see: their own, those shared with them (every one for an
    /// administrator).
    pub(crate) async fn list(&self, caller: &Caller) -> Result<Vec<WorkspaceView>, ApiError> {
        let rows = self
            .db
            .list_visible(&caller.user.id, caller.is_admin())
            .await?;
        let mut views = Vec::with_capacity(rows.len());
        for (row, share) in rows {
            if let Some(access) = caller.access_to(&row, share) {
                views.push(self.view_for(Found { row, access }).await);
            }
        }
        Ok(views)
    }

    /// The workspaces `caller` may see, with what they may do, as stored (no runner is
    /// asked: for views refreshed every second).
    pub(crate) async fn visible(&self, caller: &Caller) -> Result<Vec<Found>, ApiError> {
        let rows = self
            .db
            .list_visible(&caller.user.id, caller.is_admin())
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(row, share)| {
                let access = caller.access_to(&row, share)?;
                Some(Found { row, access })
            })
            .collect())
    }

    /// Every workspace, whoever owns it (for the server's own counts).
    pub(crate) async fn all(&self) -> Result<Vec<WorkspaceRow>, ApiError> {
        Ok(self.db.list_all().await?)
    }

    /// The link to the workspaces' runners.
    pub(crate) fn templates(&self) -> &Catalog {
        &self.templates
    }

    pub(crate) fn link(&self) -> &RunnerLink {
        &self.link
    }

    /// Starts the workspace's runner if needed (within its owner's quotas); afterwards the
    /// link knows where it listens. Whether it started it.
    pub(crate) async fn ensure_running(&self, row: &WorkspaceRow) -> Result<bool, ApiError> {
        if row.state == WorkspaceState::Running && self.is_running(row).await {
            return Ok(false);
        }
        let span = tracing::info_span!("workspace.start", workspace = %row.id, name = %row.name);
        tracing::Instrument::instrument(self.start_now(row), span).await
    }

    /// [`Manager::ensure_running`] past its quick check, in its span.
    async fn start_now(&self, row: &WorkspaceRow) -> Result<bool, ApiError> {
        let lock = self.lock(&row.id);
        let _turn = lock.lock().await;
        let current = self.reread(row).await?;
        if self.is_running(&current).await {
            // A start whose request went away before it finished (the runner came up, nobody
            // recorded it), or a runner found again after a restart: record what is true.
            if current.state != WorkspaceState::Running {
                if !current.state.can_become(WorkspaceState::Running) {
                    self.transition(&row.id, WorkspaceState::Starting, "", None)
                        .await?;
                }
                self.transition(&row.id, WorkspaceState::Running, "", None)
                    .await?;
            }
            return Ok(false);
        }
        // It was running, but its runner is gone (the status above): say so first.
        if current.state == WorkspaceState::Running {
            self.transition(&row.id, WorkspaceState::Stopped, RUNNER_EXITED, None)
                .await?;
        }
        let limits = backend_limits(&current.limits)?;
        if let Err(e) = self.accounts.check_start(&current).await {
            self.observer
                .start_failed(&row.id, "quota", &e.reply.message);
            return Err(e);
        }
        if Self::needs_restore(&current)
            && let Err(e) = self.restore(&current).await
        {
            self.observer
                .start_failed(&row.id, "restore", &e.reply.message);
            return Err(e);
        }
        self.transition(&row.id, WorkspaceState::Starting, "", None)
            .await?;
        let started = std::time::Instant::now();
        match self.backend.start(&row.id, &limits).await {
            Ok(addr) => {
                self.link.remember(&row.id, &addr);
                self.transition(&row.id, WorkspaceState::Running, "", None)
                    .await?;
                tracing::info!(workspace = %row.id, elapsed_ms = started.elapsed().as_millis() as u64, "workspace running");
                self.observer.started(started.elapsed());
                init::after_start(self.db.clone(), self.link.clone(), row.id.clone()).await;
                Ok(true)
            }
            Err(e) => {
                tracing::error!(workspace = %row.id, error = %e, "workspace failed to start");
                let (reason, message) = match e {
                    BackendError::NoStorage(_) => (
                        "no_storage",
                        "the workspace's files are missing".to_string(),
                    ),
                    _ => (
                        "backend",
                        "the workspace could not start; see the server log".to_string(),
                    ),
                };
                self.observer.start_failed(&row.id, reason, &e.to_string());
                self.transition(&row.id, WorkspaceState::Error, &message, None)
                    .await?;
                Err(ApiError::unavailable(message))
            }
        }
    }

    /// The workspace as stored now (another request may have changed it meanwhile).
    async fn reread(&self, row: &WorkspaceRow) -> Result<WorkspaceRow, ApiError> {
        self.db
            .get(&row.id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no workspace {:?}", row.name)))
    }

    /// Whether the workspace's runner is running (without starting it). The backend is the
    /// truth (a runner can die at any moment), and cheap to ask: the local backend looks at
    /// a process, a cluster backend answers from its watch. The link learns the answer.
    pub(crate) async fn is_running(&self, row: &WorkspaceRow) -> bool {
        match self.backend.status(&row.id).await {
            Ok(RunnerState::Running { addr, .. }) => {
                self.link.remember(&row.id, &addr);
                true
            }
            _ => {
                self.link.forget(&row.id);
                false
            }
        }
    }

    /// Stops the workspace on behalf of `by` (a user's name): a decision, recorded and shown.
    pub(crate) async fn stop(&self, row: &WorkspaceRow, by: &str) -> Result<(), ApiError> {
        let lock = self.lock(&row.id);
        let _turn = lock.lock().await;
        self.halt(row, &format!("stopped by {by}"), Some(by)).await
    }

    /// Stops a running workspace nobody is connected to (the idle stop), unless someone
    /// connected or it started to be kept running meanwhile. Whether it stopped it.
    pub(crate) async fn stop_idle(
        &self,
        row: &WorkspaceRow,
        reason: &str,
    ) -> Result<bool, ApiError> {
        let lock = self.lock(&row.id);
        let _turn = lock.lock().await;
        let Some(current) = self.db.get(&row.id).await? else {
            return Ok(false);
        };
        if current.state != WorkspaceState::Running
            || current.keep_running
            || self.accounts.connections.connected(&row.id) > 0
        {
            return Ok(false);
        }
        self.halt(&current, reason, None).await?;
        Ok(true)
    }

    /// Stops the runner and records why; the caller holds the workspace's lock.
    async fn halt(
        &self,
        row: &WorkspaceRow,
        reason: &str,
        by: Option<&str>,
    ) -> Result<(), ApiError> {
        self.link.forget(&row.id);
        self.transition(&row.id, WorkspaceState::Stopping, reason, by)
            .await?;
        if let Err(e) = self.backend.stop(&row.id).await {
            let message = "the workspace could not be stopped; see the server log";
            self.transition(&row.id, WorkspaceState::Error, message, None)
                .await?;
            return Err(ApiError::internal(message, e));
        }
        // A status read while the stop ran may have told the link the old address again.
        self.link.forget(&row.id);
        self.transition(&row.id, WorkspaceState::Stopped, reason, by)
            .await?;
        tracing::info!(workspace = %row.id, name = %row.name, reason, "workspace stopped");
        Ok(())
    }

    /// Keeps a workspace running with nobody connected, or lets the idle stop take it.
    pub(crate) async fn set_keep_running(
        &self,
        row: &WorkspaceRow,
        keep: bool,
    ) -> Result<(), ApiError> {
        self.db.set_keep_running(&row.id, keep).await?;
        if let Some(row) = self.db.get(&row.id).await? {
            let _ = self.events.send(WorkspaceEvent::Changed(Box::new(view_of(
                row,
                &self.templates,
            ))));
        }
        Ok(())
    }

    pub(crate) async fn delete(&self, row: &WorkspaceRow) -> Result<(), ApiError> {
        let lock = self.lock(&row.id);
        let _turn = lock.lock().await;
        self.link.forget(&row.id);
        self.backend
            .destroy(&row.id)
            .await
            .map_err(|e| ApiError::internal("cannot delete the workspace", e))?;
        self.forget_snapshot(row).await;
        self.link.forget(&row.id);
        let mut seen_by: Vec<String> = self
            .db
            .shares_of(&row.id)
            .await?
            .into_iter()
            .map(|(user_id, _, _)| user_id)
            .collect();
        seen_by.push(row.owner.clone());
        self.db.delete(&row.id).await?;
        self.locks.lock().unwrap().remove(&row.id);
        self.accounts.connections.close_workspace(&row.id);
        tracing::info!(workspace = %row.id, "workspace deleted");
        let _ = self.events.send(WorkspaceEvent::Deleted {
            id: row.id.clone(),
            seen_by,
        });
        Ok(())
    }
}

mod devcontainer;
mod init;
mod requests;
use requests::backend_limits;
pub(crate) use requests::validate_name;
mod reconcile;
mod snapshots;
mod watch;
pub use watch::Lifecycle;
pub(crate) use watch::watch;

#[cfg(test)]
mod tests;
