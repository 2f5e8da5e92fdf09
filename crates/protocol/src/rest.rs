//! Bodies of the REST routes (docs/PROTOCOL.md section 0), of `/health` and `/healthz`
//! (section 5), of `GET /api/info`, and the query strings the runner's routes take (with the
//! attach mode of section 8).

use serde::{Deserialize, Serialize};

use crate::{AttachMode, Replay};

#[cfg(test)]
use ts_rs::TS;

/// Where a workspace is in its life. Transitions only go forward around the cycle
/// `stopped → starting → running → stopping → stopped`; `error` is reached when a start or a
/// stop fails and is left by the next start or stop (see [`WorkspaceState::can_become`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
#[serde(rename_all = "lowercase")]
pub enum WorkspaceState {
    Stopped,
    Starting,
    Running,
    Stopping,
    Error,
    /// Stopped, with its files only in the object store (a snapshot); a start restores them.
    Hibernated,
}

impl WorkspaceState {
    pub const ALL: [WorkspaceState; 6] = [
        WorkspaceState::Stopped,
        WorkspaceState::Starting,
        WorkspaceState::Running,
        WorkspaceState::Stopping,
        WorkspaceState::Error,
        WorkspaceState::Hibernated,
    ];

    /// The name on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkspaceState::Stopped => "stopped",
            WorkspaceState::Starting => "starting",
            WorkspaceState::Running => "running",
            WorkspaceState::Stopping => "stopping",
            WorkspaceState::Error => "error",
            WorkspaceState::Hibernated => "hibernated",
        }
    }

    /// The state named `name`, if it is one.
    pub fn parse(name: &str) -> Option<WorkspaceState> {
        WorkspaceState::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether a workspace in this state may move to `next`. A running workspace may stop
    /// without being asked (its runner died); stopping a stopped one passes through
    /// `stopping` again, and so may a start that nobody saw finish (its request went away). Nothing moves backwards (`running → starting`), so a workspace
    /// can never sit in `stopping` or `starting` for good: each ends in a state a person
    /// can act on.
    pub fn can_become(self, next: WorkspaceState) -> bool {
        use WorkspaceState::*;
        matches!(
            (self, next),
            (Stopped, Starting | Stopping | Hibernated)
                | (Starting, Running | Error | Stopped | Stopping | Hibernated)
                | (Running, Stopping | Stopped | Error)
                | (Stopping, Stopped | Error)
                | (Error, Starting | Stopping | Stopped | Hibernated)
                | (Hibernated, Starting)
        )
    }
}

impl std::fmt::Display for WorkspaceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Limits a workspace asks for (`limits` of `POST /api/workspaces`, a cove addition): each
/// may be left out for the server's default, none may exceed the server's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub memory_mib: Option<u64>,
    /// Cores (0.25 = a quarter of one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub cpu: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub pids: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub disk_mib: Option<u64>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }
}

/// `POST /api/workspaces`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
pub struct CreateWorkspace {
    pub name: String,
    /// Default: `blank`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub limits: Option<Limits>,
}

/// A workspace as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceView {
    pub id: String,
    pub name: String,
    pub template: String,
    pub state: WorkspaceState,
    /// The owner's username.
    pub owner: String,
    pub created_at: String,
    /// When `state` last changed.
    pub state_changed_at: String,
    /// Why it is in its state, for people ("stopped by admin", "its runner exited").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub state_reason: Option<String>,
    /// Who stopped it, when a person did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub stopped_by: Option<String>,
    /// What the Processes panel offers to run (from its template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub run_command: Option<String>,
    /// The port its run command serves, for the preview.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub preview_port: Option<u16>,
    /// The limits it asked for at creation (absent: the server's defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub limits: Option<Limits>,
    /// What the caller may do with it (a cove addition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub access: Option<crate::accounts::WorkspaceAccess>,
    /// Kept running with nobody connected: the server's idle stop passes it by.
    #[serde(default)]
    pub keep_running: bool,
}

/// `PATCH /api/workspaces/{id}` (a cove addition): what to change about a workspace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateWorkspace {
    /// Keep it running with nobody connected (background jobs), or let the idle stop take it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub keep_running: Option<bool>,
}

/// An entry of `GET /api/templates`: what a new workspace starts with (its files are in the
/// object store; the built-in ones are published there at first start).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
#[serde(rename_all = "camelCase")]
pub struct Template {
    pub name: String,
    pub description: String,
    /// A short symbol shown beside the name (an emoji, or a few letters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub icon: Option<String>,
    /// What the Processes panel offers to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub run_command: Option<String>,
    /// The port the run command serves, for the preview.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub preview_port: Option<u16>,
    /// A shell command run once, as the process `init`, when a workspace made from this
    /// template first starts (installing dependencies, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub init_command: Option<String>,
    /// How many files it holds, and their bytes.
    #[serde(default)]
    pub files: u64,
    #[serde(default)]
    pub bytes: u64,
    /// Who published it (`cove` for the built-in ones), and when (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub published_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub published_at: Option<String>,
}

/// `POST /api/templates` (a cove addition, administrators only): publish the files of a
/// workspace as a template. Publishing under an existing name replaces that template; the
/// workspaces made from it before keep their files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PublishTemplate {
    /// The workspace (id, or a name of the caller's) whose files become the template.
    pub workspace: String,
    /// Lowercase letters, digits and `-`, at most 40.
    pub name: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub icon: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub run_command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub preview_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub init_command: Option<String>,
}

/// `GET /api/info` (a cove addition): what a client needs to know about this server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
#[serde(rename_all = "camelCase")]
pub struct ServerInfo {
    pub version: String,
    /// `http://{port}-{id}.localhost:8080/`: where previews live, from the name the client
    /// used; `null` when they are only path-based from there.
    pub preview_url_template: Option<String>,
    /// How clients sign in: `password` (sessions and API tokens) or `none`.
    pub auth: String,
}

/// `GET /healthz`, as code-server answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
#[serde(rename_all = "camelCase")]
pub struct Healthz {
    /// `alive` or `expired`.
    pub status: String,
    /// Milliseconds since the epoch of the last activity.
    pub last_heartbeat: u64,
}

/// `GET /health`, as seed 001 answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub success: bool,
    pub status: String,
    /// Open sockets by kind (`control`, `terminal`, `plain`, `events`).
    pub connections: std::collections::BTreeMap<String, i64>,
    pub active_streams: i64,
}

/// The query of the runner's `GET /terminals/{id}/ws` (and of the server's route).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
pub struct TerminalQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub cols: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub rows: Option<u16>,
    /// Used only when the terminal does not exist yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub command: Option<String>,
    /// Resume at this byte of the terminal's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub offset: Option<u64>,
    /// Without `offset`: `screen` (default on the raw socket) or `raw` (default with
    /// `format=text`), see [`Replay`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub replay: Option<Replay>,
    /// `raw` (default) or `text` (the plain-text socket of seed 004).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub format: Option<String>,
    /// `edit` (default) or `view`: output only; input and resizes are refused, and a missing
    /// terminal is not created.
    #[serde(default, skip_serializing_if = "AttachMode::is_edit")]
    pub mode: AttachMode,
}

/// The query of the runner's control socket, `GET /ws`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
pub struct ControlQuery {
    /// `edit` (default) or `view`: every request that changes the workspace is refused.
    #[serde(default, skip_serializing_if = "AttachMode::is_edit")]
    pub mode: AttachMode,
}

/// The query of `DELETE .../files/{path}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
pub struct DeleteQuery {
    #[serde(default)]
    pub recursive: bool,
}
