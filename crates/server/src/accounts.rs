//! Who is calling and what they may do: users and roles, sign-in sessions, API tokens,
//! shares, quotas and the audit log (PROTOCOL.md section 7).
//!
//! Every request is resolved to a [`Caller`] (see `auth.rs`) before it reaches a handler:
//! with `--auth none` every caller is the first administrator; otherwise the session cookie
//! or bearer token must name a live session or token of a user who is not disabled.
//! Single-user mode is multi-user mode with one administrator, whose password the server's
//! settings give (`--password`, `$PASSWORD`, `hashed-password`, or one generated at first
//! start).
//!
//! - `passwords.rs`: Argon2id on a bounded pool of low-priority threads;
//! - `secrets.rs`: random secrets and the hashes they are stored as;
//! - `ratelimit.rs`: failed sign-ins per address and per username;
//! - `connections.rs`: open sockets by who opened them (closing on revocation, presence);
//! - `signin.rs`, `users.rs`, `tokens.rs`, `quotas.rs`: the operations behind the routes.

mod connections;
mod passwords;
mod quotas;
mod ratelimit;
mod secrets;
mod signin;
mod tokens;
mod users;

pub(crate) use connections::{Connections, Kind as ConnectionKind, Opener, Registered};
pub(crate) use quotas::Quota;
pub(crate) use secrets::{hash as hash_secret, new_secret};
pub(crate) use signin::{Proof, SESSION_COOKIE};

use cove_protocol::accounts::{
    AuditEntry, Outcome, Quotas, Role, ShareAccess, User, WorkspaceAccess,
};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::db::{Db, UserRow, WorkspaceRow};
use crate::error::ApiError;

/// Audit rows per address and minute that callers without credentials may cause.
const UNAUTHENTICATED_ROWS_PER_MINUTE: usize = 30;

/// The id of the first administrator (workspaces from before accounts belong to it).
pub(crate) const FIRST_ADMIN_ID: &str = "admin";

/// How clients prove who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Nobody signs in: every caller is the first administrator. Meant for loopback.
    None,
    /// Sessions (after `POST /login`) and API tokens.
    Password,
}

/// The administrator's password as the server's settings give it.
#[derive(Clone, PartialEq, Eq)]
pub enum AdminPassword {
    /// In clear (from `--password`, `$PASSWORD`, the config file, or generated); hashed at
    /// start, never stored as it is.
    Plain(String),
    /// An Argon2 PHC string (`hashed-password`, `$HASHED_PASSWORD`), stored as it is.
    Hashed(String),
}

impl std::fmt::Debug for AdminPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminPassword::Plain(_) => f.write_str("Plain(********)"),
            AdminPassword::Hashed(_) => f.write_str("Hashed(********)"),
        }
    }
}

/// Settings of accounts, from `cove serve`'s flags and config file.
#[derive(Debug, Clone)]
pub struct AccountSettings {
    pub auth: Auth,
    /// The single-user password: it is the first administrator's, applied at every start.
    pub admin_password: Option<AdminPassword>,
    /// The first administrator's username (`$ADMIN_USERNAME`, default `admin`).
    pub admin_username: String,
    /// A session ends after this long without a request.
    pub session_idle: Duration,
    /// A session ends this long after sign-in, however active.
    pub session_lifetime: Duration,
    /// Every user's quotas unless their own say otherwise.
    pub default_quotas: Quotas,
    /// A workspace's memory and storage when it asks for none (the server's limits), for
    /// the memory and storage quotas.
    pub workspace_defaults: cove_protocol::rest::Limits,
}

impl Default for AccountSettings {
    fn default() -> AccountSettings {
        AccountSettings {
            auth: Auth::None,
            admin_password: None,
            admin_username: "admin".into(),
            session_idle: Duration::from_secs(7 * 24 * 3600),
            session_lifetime: Duration::from_secs(30 * 24 * 3600),
            default_quotas: Quotas {
                sessions: Some(50),
                connections: Some(500),
                ..Quotas::default()
            },
            workspace_defaults: cove_protocol::rest::Limits::default(),
        }
    }
}

/// How a caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Credential {
    /// A sign-in session, by its public id.
    Session(String),
    /// An API token, by its id.
    Token(String),
    /// `--auth none`.
    Open,
}

/// Who is calling, resolved once per request.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) user: UserRow,
    pub(crate) credential: Credential,
    /// The client's address (from the socket, or a trusted proxy's `X-Forwarded-For`).
    pub(crate) address: IpAddr,
}

impl Caller {
    pub(crate) fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }

    /// What this caller may do with a workspace it can see (`share`: what a share gives).
    pub(crate) fn access_to(
        &self,
        workspace: &WorkspaceRow,
        share: Option<ShareAccess>,
    ) -> Option<WorkspaceAccess> {
        self.access_given(workspace.owner == self.user.id, share)
    }

    /// What this caller may do with a workspace they own (or not), given a share.
    pub(crate) fn access_given(
        &self,
        owns: bool,
        share: Option<ShareAccess>,
    ) -> Option<WorkspaceAccess> {
        let access = if owns || self.is_admin() {
            WorkspaceAccess::Owner
        } else {
            match share? {
                ShareAccess::Edit => WorkspaceAccess::Edit,
                ShareAccess::View => WorkspaceAccess::View,
            }
        };
        // A viewer only ever watches, whatever a share says.
        Some(if self.user.role == Role::Viewer {
            WorkspaceAccess::View
        } else {
            access
        })
    }

    pub(crate) fn opener(&self) -> Opener<'_> {
        Opener {
            user_id: &self.user.id,
            username: &self.user.username,
            credential: &self.credential,
        }
    }
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Accounts {
    db: Db,
    passwords: passwords::Passwords,
    sign_in_limits: ratelimit::SignInLimits,
    /// Audit rows that anyone may cause without signing in, per address: bounded, so that
    /// the append-only log cannot be used to fill the disk.
    unauthenticated_rows: ratelimit::FailureLimit,
    pub(crate) connections: Arc<Connections>,
    settings: AccountSettings,
    /// Held while a user is changed or deleted (see `users.rs`).
    user_changes: tokio::sync::Mutex<()>,
}

impl Accounts {
    pub(crate) fn new(db: Db, settings: AccountSettings) -> Accounts {
        Accounts {
            db,
            passwords: passwords::Passwords::for_this_host(),
            sign_in_limits: ratelimit::SignInLimits::default(),
            unauthenticated_rows: ratelimit::FailureLimit::new(
                UNAUTHENTICATED_ROWS_PER_MINUTE,
                Duration::from_secs(60),
            ),
            connections: Arc::new(Connections::default()),
            settings,
            user_changes: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn auth(&self) -> &Auth {
        &self.settings.auth
    }

    /// Makes the first administrator if there is no user, and gives the administrator the
    /// password the settings name (single-user mode). Run once at start.
    pub(crate) async fn bootstrap(&self) -> Result<(), ApiError> {
        if self.db.user_count().await? == 0 {
            let username = self.settings.admin_username.clone();
            users::check_username(&username)?;
            self.db
                .insert_user(&UserRow {
                    id: FIRST_ADMIN_ID.into(),
                    username: username.clone(),
                    role: Role::Admin,
                    password_hash: String::new(),
                    created_at: crate::now_rfc3339(),
                    disabled: false,
                    quotas: Quotas::default(),
                })
                .await?;
            tracing::info!(%username, "first administrator created");
            self.audit_as(
                &username,
                "user.create",
                &username,
                None,
                Outcome::Success,
                "first administrator, at start",
            )
            .await;
        }
        if let Some(password) = &self.settings.admin_password {
            let Some(mut admin) = self.db.find_user(&self.settings.admin_username).await? else {
                return Err(ApiError::bad_request(format!(
                    "there is no user {:?} to give the configured password to",
                    self.settings.admin_username
                )));
            };
            let hash = match password {
                AdminPassword::Hashed(hash) => {
                    if !passwords::is_checkable(hash) {
                        return Err(ApiError::bad_request(
                            "the hashed password is not an Argon2 PHC string ($argon2id$... or $argon2i$...)",
                        ));
                    }
                    hash.clone()
                }
                AdminPassword::Plain(plain) => {
                    users::check_new_password(plain).map_err(|e| {
                        ApiError::bad_request(format!(
                            "the configured administrator password is refused: {}",
                            e.reply.message
                        ))
                    })?;
                    // Only hash again when it changed (hashing costs; the stored salt stays).
                    if !admin.password_hash.is_empty()
                        && self
                            .passwords
                            .verify(plain, Some(&admin.password_hash))
                            .await
                            .unwrap_or(false)
                    {
                        admin.password_hash.clone()
                    } else {
                        self.passwords.hash(plain).await.map_err(|e| {
                            ApiError::internal("cannot hash the administrator's password", e)
                        })?
                    }
                }
            };
            if hash != admin.password_hash {
                admin.password_hash = hash;
                self.db.update_user(&admin).await?;
                tracing::info!(username = %admin.username, "the administrator's password is the configured one");
            }
        }
        // Sessions that ended while the server was down.
        let now = crate::now_ms();
        let idle_since = now.saturating_sub(self.settings.session_idle.as_millis() as u64);
        self.db
            .delete_expired_sessions(&crate::rfc3339(now), &crate::rfc3339(idle_since))
            .await?;
        Ok(())
    }

    /// The first administrator: who every caller is with `--auth none`.
    pub(crate) async fn open_caller(&self, address: IpAddr) -> Result<Caller, ApiError> {
        let user = match self.db.find_user(FIRST_ADMIN_ID).await? {
            Some(user) => user,
            None => self
                .db
                .list_users()
                .await?
                .into_iter()
                .find(|u| u.role == Role::Admin)
                .ok_or_else(|| {
                    ApiError::internal("no administrator", "the users table has none")
                })?,
        };
        Ok(Caller {
            user,
            credential: Credential::Open,
            address,
        })
    }

    /// Registers a connection of `caller` (on `workspace`, if any) within their connections
    /// quota; it closes when `parent` is cancelled or the caller's credential or access goes.
    pub(crate) fn open_connection(
        &self,
        caller: &Caller,
        workspace: Option<(&str, WorkspaceAccess)>,
        kind: ConnectionKind,
        parent: &tokio_util::sync::CancellationToken,
    ) -> Result<Registered, ApiError> {
        let limit = self.quotas_of(&caller.user).connections;
        self.connections
            .open(caller.opener(), workspace, kind, limit, parent)
            .map_err(|open| {
                self.check_quota(&caller.user, Quota::Connections, open, 1)
                    .err()
                    .unwrap_or_else(|| {
                        ApiError::new(
                            cove_protocol::ErrorCode::LimitExceeded,
                            "too many connections",
                        )
                    })
            })
    }

    /// Appends to the audit log. A failure to write is logged, never hidden: the action has
    /// already happened.
    pub(crate) async fn audit(
        &self,
        caller: &Caller,
        action: &str,
        target: &str,
        outcome: Outcome,
        detail: &str,
    ) {
        self.audit_as(
            &caller.user.username,
            action,
            target,
            Some(caller.address),
            outcome,
            detail,
        )
        .await;
    }

    /// Appends to the audit log for someone who is not signed in (a rate-limited sign-in, a
    /// socket without credentials), at most [`UNAUTHENTICATED_ROWS_PER_MINUTE`] per address;
    /// past that, the refusal is only logged.
    pub(crate) async fn audit_unauthenticated(
        &self,
        username: &str,
        action: &str,
        target: &str,
        address: IpAddr,
        detail: &str,
    ) {
        match self.unauthenticated_rows.reserve(&address.to_string()) {
            // Every row counts against the address's budget.
            Ok(place) => place.failed(),
            Err(_) => {
                tracing::debug!(%address, action, "audit row dropped: too many from this address");
                return;
            }
        }
        self.audit_as(
            username,
            action,
            target,
            Some(address),
            Outcome::Failure,
            detail,
        )
        .await;
    }

    /// Appends to the audit log for someone who may not be signed in (a failed sign-in, a
    /// refused socket).
    pub(crate) async fn audit_as(
        &self,
        username: &str,
        action: &str,
        target: &str,
        address: Option<IpAddr>,
        outcome: Outcome,
        detail: &str,
    ) {
        let entry = AuditEntry {
            id: 0,
            at: crate::now_rfc3339(),
            user: clip(username),
            action: action.to_string(),
            target: clip(target),
            address: address.map(|a| a.to_string()).unwrap_or_default(),
            outcome,
            detail: clip(detail),
        };
        if let Err(e) = self.db.append_audit(&entry).await {
            tracing::error!(error = %e, ?entry, "cannot write to the audit log");
        }
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }
}

/// A user as the API shows it.
pub(crate) fn user_view(user: &UserRow) -> User {
    User {
        id: user.id.clone(),
        username: user.username.clone(),
        role: user.role,
        created_at: user.created_at.clone(),
        disabled: user.disabled,
        quotas: Some(user.quotas).filter(|q| *q != Quotas::default()),
    }
}

/// Text a client chose, bounded for the log and the audit table, with control characters
/// (newlines, escapes) shown as `\u{..}` so that a row cannot pass for several or
/// restyle the terminal that reads it.
fn clip(text: &str) -> String {
    const MAX: usize = 500;
    let mut out = String::with_capacity(text.len().min(MAX + 4));
    for c in text.chars() {
        if out.len() >= MAX {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::TokenRow;

    #[tokio::test]
    async fn an_expired_token_names_nobody_and_a_live_one_its_user() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).await.unwrap();
        let accounts = Accounts::new(db.clone(), AccountSettings::default());
        accounts.bootstrap().await.unwrap();
        let address = IpAddr::from([127, 0, 0, 1]);
        let now = crate::now_ms();
        for (id, expires) in [("old", now - 1000), ("live", now + 60_000)] {
            db.insert_token(&TokenRow {
                id: id.into(),
                secret_hash: secrets::hash(&format!("cove_{id}")),
                user_id: FIRST_ADMIN_ID.into(),
                name: id.into(),
                created_at: crate::rfc3339(now - 5000),
                expires_at: Some(crate::rfc3339(expires)),
                last_used_at: None,
            })
            .await
            .unwrap();
        }
        let who = |secret: &'static str| accounts.authenticate(None, Some(secret), address);
        assert!(who("cove_old").await.unwrap().is_none(), "expired");
        let live = who("cove_live").await.unwrap().expect("a live token");
        assert_eq!(live.credential, Credential::Token("live".into()));
        assert!(who("cove_unknown").await.unwrap().is_none());
        db.close().await;
    }

    #[test]
    fn audit_text_is_bounded_and_cannot_pass_for_two_rows() {
        assert_eq!(super::clip("a\nb\u{1b}[31m"), "a\\u{a}b\\u{1b}[31m");
        let long = super::clip(&"é".repeat(1000));
        assert!(long.len() <= 504 && long.ends_with('…'), "{}", long.len());
    }
}
