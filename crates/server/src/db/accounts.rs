//! Users, sessions, API tokens and shares in the store (migration 0005).

use super::{Columns, Db, DbError, taken_if_unique, with_pool};
use cove_protocol::accounts::{Quotas, Role, ShareAccess};

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserRow {
    pub id: String,
    pub username: String,
    pub role: Role,
    /// An Argon2 PHC string; empty when the user cannot sign in with a password.
    pub password_hash: String,
    pub created_at: String,
    pub disabled: bool,
    /// Overrides of the server's default quotas.
    pub quotas: Quotas,
}

/// A sign-in session as stored (its secret only as a hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionRow {
    pub id: String,
    pub secret_hash: String,
    pub user_id: String,
    pub created_at: String,
    pub last_seen_at: String,
    pub expires_at: String,
    pub address: String,
    pub user_agent: String,
}

/// An API token as stored (its secret only as a hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenRow {
    pub id: String,
    pub secret_hash: String,
    pub user_id: String,
    pub name: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
}

impl Db {
    fn user(row: &impl Columns) -> Result<UserRow, DbError> {
        let id = row.text("id")?;
        let role = row.text("role")?;
        let quotas = row.text("quotas")?;
        let unreadable = |column, problem: String| DbError::Unreadable {
            id: id.clone(),
            column,
            problem,
        };
        Ok(UserRow {
            role: Role::parse(&role)
                .ok_or_else(|| unreadable("role", format!("unknown role {role:?}")))?,
            quotas: serde_json::from_str(&quotas)
                .map_err(|e| unreadable("quotas", e.to_string()))?,
            username: row.text("username")?,
            password_hash: row.text("password_hash")?,
            created_at: row.text("created_at")?,
            disabled: row.int("disabled")? != 0,
            id,
        })
    }

    pub(crate) async fn user_count(&self) -> Result<i64, DbError> {
        Ok(
            with_pool!(self, pool => sqlx::query_scalar("SELECT count(*) FROM users")
            .fetch_one(pool)
            .await?),
        )
    }

    pub(crate) async fn insert_user(&self, user: &UserRow) -> Result<(), DbError> {
        let quotas = serde_json::to_string(&user.quotas).expect("quotas serialize");
        let result = with_pool!(self, pool => sqlx::query(
            "INSERT INTO users (id, username, role, password_hash, created_at, disabled, quotas) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&user.id)
        .bind(&user.username)
        .bind(user.role.as_str())
        .bind(&user.password_hash)
        .bind(&user.created_at)
        .bind(i64::from(user.disabled))
        .bind(&quotas)
        .execute(pool)
        .await
        .map(|_| ()));
        taken_if_unique(result, || DbError::UsernameTaken(user.username.clone()))
    }

    /// Writes every field of `user` but its id and creation time.
    pub(crate) async fn update_user(&self, user: &UserRow) -> Result<(), DbError> {
        let quotas = serde_json::to_string(&user.quotas).expect("quotas serialize");
        let result = with_pool!(self, pool => sqlx::query(
            "UPDATE users SET username = $1, role = $2, password_hash = $3, disabled = $4, quotas = $5 WHERE id = $6",
        )
        .bind(&user.username)
        .bind(user.role.as_str())
        .bind(&user.password_hash)
        .bind(i64::from(user.disabled))
        .bind(&quotas)
        .bind(&user.id)
        .execute(pool)
        .await
        .map(|_| ()));
        taken_if_unique(result, || DbError::UsernameTaken(user.username.clone()))
    }

    /// A user by id or by username (whatever its case).
    pub(crate) async fn find_user(&self, id_or_name: &str) -> Result<Option<UserRow>, DbError> {
        with_pool!(self, pool => sqlx::query(
            "SELECT * FROM users WHERE id = $1 OR lower(username) = lower($1) ORDER BY id = $1 DESC LIMIT 1",
        )
        .bind(id_or_name)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(Self::user)
        .transpose())
    }

    pub(crate) async fn list_users(&self) -> Result<Vec<UserRow>, DbError> {
        with_pool!(self, pool => sqlx::query("SELECT * FROM users ORDER BY created_at, username")
            .fetch_all(pool)
            .await?
            .iter()
            .map(Self::user)
            .collect())
    }

    /// Deletes a user with their sessions, tokens and shares (the workspaces they own must
    /// be gone first).
    pub(crate) async fn delete_user(&self, id: &str) -> Result<(), DbError> {
        self.execute("DELETE FROM users WHERE id = $1", &[id])
            .await?;
        Ok(())
    }

    /// A user's IDE settings as stored (a JSON object), if they saved any.
    pub(crate) async fn settings_of(&self, user_id: &str) -> Result<Option<String>, DbError> {
        with_pool!(self, pool => sqlx::query("SELECT settings FROM user_settings WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(pool)
            .await?
            .as_ref()
            .map(|row| row.text("settings").map_err(DbError::from))
            .transpose())
    }

    /// Stores a user's IDE settings (checked JSON), replacing what was there.
    pub(crate) async fn set_settings(
        &self,
        user_id: &str,
        settings: &str,
        at: &str,
    ) -> Result<(), DbError> {
        self.execute(
            "INSERT INTO user_settings (user_id, settings, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at",
            &[user_id, settings, at],
        )
        .await?;
        Ok(())
    }

    fn session(row: &impl Columns) -> Result<SessionRow, DbError> {
        Ok(SessionRow {
            id: row.text("id")?,
            secret_hash: row.text("secret_hash")?,
            user_id: row.text("user_id")?,
            created_at: row.text("created_at")?,
            last_seen_at: row.text("last_seen_at")?,
            expires_at: row.text("expires_at")?,
            address: row.text("address")?,
            user_agent: row.text("user_agent")?,
        })
    }

    pub(crate) async fn insert_session(&self, s: &SessionRow) -> Result<(), DbError> {
        self.execute(
            "INSERT INTO sessions (id, secret_hash, user_id, created_at, last_seen_at, expires_at, address, user_agent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &s.id,
                &s.secret_hash,
                &s.user_id,
                &s.created_at,
                &s.last_seen_at,
                &s.expires_at,
                &s.address,
                &s.user_agent,
            ],
        )
        .await?;
        Ok(())
    }

    /// The session whose secret hashes to `secret_hash`, with its user.
    pub(crate) async fn session_by_secret(
        &self,
        secret_hash: &str,
    ) -> Result<Option<(SessionRow, UserRow)>, DbError> {
        let session = with_pool!(self, pool => sqlx::query("SELECT * FROM sessions WHERE secret_hash = $1")
            .bind(secret_hash)
            .fetch_optional(pool)
            .await?
            .as_ref()
            .map(Self::session)
            .transpose())?;
        let Some(session) = session else {
            return Ok(None);
        };
        let Some(user) = self.find_user(&session.user_id).await? else {
            return Ok(None);
        };
        Ok(Some((session, user)))
    }

    pub(crate) async fn touch_session(&self, id: &str, at: &str) -> Result<(), DbError> {
        self.execute(
            "UPDATE sessions SET last_seen_at = $1 WHERE id = $2",
            &[at, id],
        )
        .await?;
        Ok(())
    }

    pub(crate) async fn sessions_of(&self, user_id: &str) -> Result<Vec<SessionRow>, DbError> {
        with_pool!(self, pool => sqlx::query("SELECT * FROM sessions WHERE user_id = $1 ORDER BY created_at")
            .bind(user_id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(Self::session)
            .collect())
    }

    /// Ends a session of `user_id`; whether there was one.
    pub(crate) async fn delete_session(&self, user_id: &str, id: &str) -> Result<bool, DbError> {
        let done = self
            .execute(
                "DELETE FROM sessions WHERE id = $1 AND user_id = $2",
                &[id, user_id],
            )
            .await?;
        Ok(done > 0)
    }

    /// Ends every session of a user.
    pub(crate) async fn delete_sessions_of(&self, user_id: &str) -> Result<(), DbError> {
        self.execute("DELETE FROM sessions WHERE user_id = $1", &[user_id])
            .await?;
        Ok(())
    }

    /// Removes sessions past their absolute expiry or idle since before `idle_since`.
    pub(crate) async fn delete_expired_sessions(
        &self,
        now: &str,
        idle_since: &str,
    ) -> Result<u64, DbError> {
        self.execute(
            "DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at < $2",
            &[now, idle_since],
        )
        .await
    }

    fn token(row: &impl Columns) -> Result<TokenRow, DbError> {
        Ok(TokenRow {
            id: row.text("id")?,
            secret_hash: row.text("secret_hash")?,
            user_id: row.text("user_id")?,
            name: row.text("name")?,
            created_at: row.text("created_at")?,
            expires_at: row.maybe_text("expires_at")?,
            last_used_at: row.maybe_text("last_used_at")?,
        })
    }

    pub(crate) async fn insert_token(&self, t: &TokenRow) -> Result<(), DbError> {
        with_pool!(self, pool => sqlx::query(
            "INSERT INTO tokens (id, secret_hash, user_id, name, created_at, expires_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, NULL)",
        )
        .bind(&t.id)
        .bind(&t.secret_hash)
        .bind(&t.user_id)
        .bind(&t.name)
        .bind(&t.created_at)
        .bind(&t.expires_at)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// The token whose secret hashes to `secret_hash`, with its user.
    pub(crate) async fn token_by_secret(
        &self,
        secret_hash: &str,
    ) -> Result<Option<(TokenRow, UserRow)>, DbError> {
        let token = with_pool!(self, pool => sqlx::query("SELECT * FROM tokens WHERE secret_hash = $1")
            .bind(secret_hash)
            .fetch_optional(pool)
            .await?
            .as_ref()
            .map(Self::token)
            .transpose())?;
        let Some(token) = token else {
            return Ok(None);
        };
        let Some(user) = self.find_user(&token.user_id).await? else {
            return Ok(None);
        };
        Ok(Some((token, user)))
    }

    pub(crate) async fn touch_token(&self, id: &str, at: &str) -> Result<(), DbError> {
        self.execute(
            "UPDATE tokens SET last_used_at = $1 WHERE id = $2",
            &[at, id],
        )
        .await?;
        Ok(())
    }

    pub(crate) async fn tokens_of(&self, user_id: &str) -> Result<Vec<TokenRow>, DbError> {
        with_pool!(self, pool => sqlx::query("SELECT * FROM tokens WHERE user_id = $1 ORDER BY created_at")
            .bind(user_id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(Self::token)
            .collect())
    }

    /// Revokes a token of `user_id`; whether there was one.
    pub(crate) async fn delete_token(&self, user_id: &str, id: &str) -> Result<bool, DbError> {
        let done = self
            .execute(
                "DELETE FROM tokens WHERE id = $1 AND user_id = $2",
                &[id, user_id],
            )
            .await?;
        Ok(done > 0)
    }

    /// Shares (or changes the share of) a workspace with a user.
    pub(crate) async fn set_share(
        &self,
        workspace_id: &str,
        user_id: &str,
        access: ShareAccess,
    ) -> Result<(), DbError> {
        self.execute(
            "INSERT INTO shares (workspace_id, user_id, access, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (workspace_id, user_id) DO UPDATE SET access = excluded.access",
            &[workspace_id, user_id, access.as_str(), &crate::now_rfc3339()],
        )
        .await?;
        Ok(())
    }

    /// Whether there was a share to remove.
    pub(crate) async fn delete_share(
        &self,
        workspace_id: &str,
        user_id: &str,
    ) -> Result<bool, DbError> {
        let done = self
            .execute(
                "DELETE FROM shares WHERE workspace_id = $1 AND user_id = $2",
                &[workspace_id, user_id],
            )
            .await?;
        Ok(done > 0)
    }

    /// Who a workspace is shared with: (user id, username, access).
    pub(crate) async fn shares_of(
        &self,
        workspace_id: &str,
    ) -> Result<Vec<(String, String, ShareAccess)>, DbError> {
        let read = |row: &dyn Columns| -> Result<(String, String, ShareAccess), DbError> {
            let access = row.text("access")?;
            let access = ShareAccess::parse(&access).ok_or_else(|| DbError::Unreadable {
                id: workspace_id.to_string(),
                column: "shares.access",
                problem: format!("unknown access {access:?}"),
            })?;
            Ok((row.text("user_id")?, row.text("username")?, access))
        };
        with_pool!(self, pool => sqlx::query(
            "SELECT s.user_id, u.username, s.access FROM shares s JOIN users u ON u.id = s.user_id WHERE s.workspace_id = $1 ORDER BY u.username",
        )
        .bind(workspace_id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| read(row))
        .collect())
    }

    /// What a share gives `user_id` on a workspace, if it is shared with them.
    pub(crate) async fn share_of(
        &self,
        workspace_id: &str,
        user_id: &str,
    ) -> Result<Option<ShareAccess>, DbError> {
        let access: Option<String> = with_pool!(self, pool => sqlx::query_scalar(
            "SELECT access FROM shares WHERE workspace_id = $1 AND user_id = $2",
        )
        .bind(workspace_id)
        .bind(user_id)
        .fetch_optional(pool)
        .await?);
        Ok(access.as_deref().and_then(ShareAccess::parse))
    }
}
