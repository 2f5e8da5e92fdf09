//! Bodies of the account routes (docs/PROTOCOL.md section 7): sign-in, users and roles,
//! sessions, API tokens, shares, quotas and usage, the audit log; and the presence event.

use serde::{Deserialize, Serialize};

#[cfg(test)]
use ts_rs::TS;

/// What a user may do (PROTOCOL.md section 7): `admin` everything; `user` their own
/// workspaces and those shared with them; `viewer` only what is shared with them, read-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::User, Role::Viewer];

    /// The name on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a share grants: `view` (watch and read) or `edit` (everything but delete and share).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
#[serde(rename_all = "lowercase")]
pub enum ShareAccess {
    View,
    Edit,
}

impl ShareAccess {
    pub fn as_str(self) -> &'static str {
        match self {
            ShareAccess::View => "view",
            ShareAccess::Edit => "edit",
        }
    }

    pub fn parse(name: &str) -> Option<ShareAccess> {
        [ShareAccess::View, ShareAccess::Edit]
            .into_iter()
            .find(|a| a.as_str() == name)
    }
}

/// What the caller may do with one workspace (`access` of a workspace, a cove addition):
/// `owner` (or an admin), `edit` or `view` through a share (a viewer always gets `view`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
#[serde(rename_all = "lowercase")]
pub enum WorkspaceAccess {
    View,
    Edit,
    Owner,
}

impl WorkspaceAccess {
    /// May change things: type, resize, write, run, stop.
    pub fn can_edit(self) -> bool {
        self >= WorkspaceAccess::Edit
    }
}

/// `POST /login` as JSON (a form posts the same fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Left out in single-user mode: the admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub username: Option<String>,
    pub password: String,
}

/// The answer to a JSON `POST /login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
pub struct LoginResponse {
    pub user: User,
}

/// Per-user limits in real units. In a user's overrides a field left out takes the server's
/// default; in usage, `null` means no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Quotas {
    /// Workspaces the user may own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub workspaces: Option<u64>,
    /// Workspaces of theirs running at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub running: Option<u64>,
    /// Signed-in sessions at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub sessions: Option<u64>,
    /// Open sockets at once (control, terminal, events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub connections: Option<u64>,
    /// The sum of their workspaces' storage limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub storage_mib: Option<u64>,
    /// The sum of the memory limits of their running workspaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub memory_mib: Option<u64>,
}

/// A user as the API shows it (never a password or its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub username: String,
    pub role: Role,
    pub created_at: String,
    /// A disabled user cannot sign in, and their sessions and tokens are ended.
    #[serde(default)]
    pub disabled: bool,
    /// Their own quotas, where they differ from the server's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub quotas: Option<Quotas>,
}

/// `POST /api/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub username: String,
    pub password: String,
    pub role: Role,
}

/// `PUT /api/users/{user}`: only what is given changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub disabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub quotas: Option<Quotas>,
}

/// `PUT /api/users/me`: a user's new password, with the one it replaces (so that a stolen
/// session cannot lock its owner out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangePassword {
    pub password: String,
    pub current_password: String,
}

/// An entry of `GET /api/users/me/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub id: String,
    pub created_at: String,
    pub last_seen_at: String,
    pub address: String,
    pub user_agent: String,
    /// The session this request came with.
    pub current: bool,
}

/// `POST /api/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateToken {
    pub name: String,
    /// Default: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub expires_in_days: Option<u32>,
}

/// The answer to `POST /api/tokens`: the only time the secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
#[serde(rename_all = "camelCase")]
pub struct TokenCreated {
    pub id: String,
    pub name: String,
    pub token: String,
    pub expires_at: Option<String>,
}

/// An entry of `GET /api/tokens` (no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
}

/// An entry of `GET /api/workspaces/{id}/shares`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
pub struct Share {
    /// The username.
    pub user: String,
    pub access: ShareAccess,
}

/// `PUT /api/workspaces/{id}/shares/{user}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
#[serde(deny_unknown_fields)]
pub struct ShareRequest {
    pub access: ShareAccess,
}

/// `GET /api/users/me/usage`: what the caller uses, against `quotas` (their effective
/// quotas; `null` fields are unlimited).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub workspaces: u64,
    pub running: u64,
    pub storage_bytes: u64,
    pub memory_bytes: u64,
    pub sessions: u64,
    pub connections: u64,
    pub quotas: Quotas,
}

/// Whether an audited action went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// One row of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
pub struct AuditEntry {
    pub id: i64,
    /// RFC 3339, UTC.
    pub at: String,
    /// The username who acted (or tried to), empty when unknown.
    pub user: String,
    /// What was done, e.g. `login`, `workspace.delete`, `socket.refused`.
    pub action: String,
    /// What it was done to (a workspace id, a username, a token id), or empty.
    pub target: String,
    /// The client's address.
    pub address: String,
    pub outcome: Outcome,
    /// Anything else worth knowing (why it was refused, the values that did not match).
    pub detail: String,
}

/// `GET /api/audit`: newest first; `next` is the `before` of the next page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub next: Option<i64>,
}

/// The query of `GET /api/audit`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// A username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub action: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub since: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub until: Option<String>,
    /// At most 500; default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub limit: Option<u32>,
    /// Only entries older than this id (paging).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub before: Option<i64>,
}

/// Who has one workspace open (the `presence` event of `GET /api/events`, a cove addition).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
#[serde(rename_all = "camelCase")]
pub struct Presence {
    pub workspace_id: String,
    pub users: Vec<PresentUser>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
pub struct PresentUser {
    pub username: String,
    pub access: WorkspaceAccess,
}
