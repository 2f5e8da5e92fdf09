//! Users, sessions, API tokens and shares in the store (migration 0005).

use cove_protocol::accounts::{Quotas, Role, ShareAccess};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{Db, DbError};

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
    fn user(row: &SqliteRow) -> Result<UserRow, DbError> {
        let id: String = row.try_get("id")?;
        let role: String = row.try_get("role")?;
        let quotas: String = row.try_get("quotas")?;
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
            username: row.try_get("username")?,
            password_hash: row.try_get("password_hash")?,
            created_at: row.try_get("created_at")?,
            disabled: row.try_get::<i64, _>("disabled")? != 0,
            id,
        })
    }

    pub(crate) async fn user_count(&self) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM users")
            .fetch_one(&self.pool)
            .await?)
    }

    pub(crate) async fn insert_user(&self, user: &UserRow) -> Result<(), DbError> {
        let result = sqlx::query(
            "INSERT INTO users (id, username, role, password_hash, created_at, disabled, quotas) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&user.id)
        .bind(&user.username)
        .bind(user.role.as_str())
        .bind(&user.password_hash)
        .bind(&user.created_at)
        .bind(i64::from(user.disabled))
        .bind(serde_json::to_string(&user.quotas).expect("quotas serialize"))
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(DbError::UsernameTaken(user.username.clone()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Writes every field of `user` but its id and creation time.
    pub(crate) async fn update_user(&self, user: &UserRow) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE users SET username = ?, role = ?, password_hash = ?, disabled = ?, quotas = ? WHERE id = ?",
        )
        .bind(&user.username)
        .bind(user.role.as_str())
        .bind(&user.password_hash)
        .bind(i64::from(user.disabled))
        .bind(serde_json::to_string(&user.quotas).expect("quotas serialize"))
        .bind(&user.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A user by id or by username (whatever its case).
    pub(crate) async fn find_user(&self, id_or_name: &str) -> Result<Option<UserRow>, DbError> {
        let row = sqlx::query(
            "SELECT * FROM users WHERE id = ?1 OR username = ?1 COLLATE NOCASE ORDER BY id = ?1 DESC LIMIT 1",
        )
        .bind(id_or_name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Self::user).transpose()
    }

    pub(crate) async fn list_users(&self) -> Result<Vec<UserRow>, DbError> {
        let rows = sqlx::query("SELECT * FROM users ORDER BY created_at, username")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::user).collect()
    }

    /// Deletes a user with their sessions, tokens and shares (the workspaces they own must
    /// be gone first).
    pub(crate) async fn delete_user(&self, id: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM users WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    fn session(row: &SqliteRow) -> Result<SessionRow, DbError> {
        Ok(SessionRow {
            id: row.try_get("id")?,
            secret_hash: row.try_get("secret_hash")?,
            user_id: row.try_get("user_id")?,
            created_at: row.try_get("created_at")?,
            last_seen_at: row.try_get("last_seen_at")?,
            expires_at: row.try_get("expires_at")?,
            address: row.try_get("address")?,
            user_agent: row.try_get("user_agent")?,
        })
    }

    pub(crate) async fn insert_session(&self, s: &SessionRow) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO sessions (id, secret_hash, user_id, created_at, last_seen_at, expires_at, address, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&s.id)
        .bind(&s.secret_hash)
        .bind(&s.user_id)
        .bind(&s.created_at)
        .bind(&s.last_seen_at)
        .bind(&s.expires_at)
        .bind(&s.address)
        .bind(&s.user_agent)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session whose secret hashes to `secret_hash`, with its user.
    pub(crate) async fn session_by_secret(
        &self,
        secret_hash: &str,
    ) -> Result<Option<(SessionRow, UserRow)>, DbError> {
        let Some(row) = sqlx::query("SELECT * FROM sessions WHERE secret_hash = ?")
            .bind(secret_hash)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let session = Self::session(&row)?;
        let Some(user) = self.find_user(&session.user_id).await? else {
            return Ok(None);
        };
        Ok(Some((session, user)))
    }

    pub(crate) async fn touch_session(&self, id: &str, at: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE sessions SET last_seen_at = ? WHERE id = ?")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(crate) async fn sessions_of(&self, user_id: &str) -> Result<Vec<SessionRow>, DbError> {
        let rows = sqlx::query("SELECT * FROM sessions WHERE user_id = ? ORDER BY created_at")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::session).collect()
    }

    /// Ends a session of `user_id`; whether there was one.
    pub(crate) async fn delete_session(&self, user_id: &str, id: &str) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM sessions WHERE id = ? AND user_id = ?")
            .bind(id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Ends every session of a user.
    pub(crate) async fn delete_sessions_of(&self, user_id: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM sessions WHERE user_id = ?")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removes sessions past their absolute expiry or idle since before `idle_since`.
    pub(crate) async fn delete_expired_sessions(
        &self,
        now: &str,
        idle_since: &str,
    ) -> Result<u64, DbError> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at < ?")
            .bind(now)
            .bind(idle_since)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    fn token(row: &SqliteRow) -> Result<TokenRow, DbError> {
        Ok(TokenRow {
            id: row.try_get("id")?,
            secret_hash: row.try_get("secret_hash")?,
            user_id: row.try_get("user_id")?,
            name: row.try_get("name")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            last_used_at: row.try_get("last_used_at")?,
        })
    }

    pub(crate) async fn insert_token(&self, t: &TokenRow) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO tokens (id, secret_hash, user_id, name, created_at, expires_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, NULL)",
        )
        .bind(&t.id)
        .bind(&t.secret_hash)
        .bind(&t.user_id)
        .bind(&t.name)
        .bind(&t.created_at)
        .bind(&t.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The token whose secret hashes to `secret_hash`, with its user.
    pub(crate) async fn token_by_secret(
        &self,
        secret_hash: &str,
    ) -> Result<Option<(TokenRow, UserRow)>, DbError> {
        let Some(row) = sqlx::query("SELECT * FROM tokens WHERE secret_hash = ?")
            .bind(secret_hash)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let token = Self::token(&row)?;
        let Some(user) = self.find_user(&token.user_id).await? else {
            return Ok(None);
        };
        Ok(Some((token, user)))
    }

    pub(crate) async fn touch_token(&self, id: &str, at: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE tokens SET last_used_at = ? WHERE id = ?")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(crate) async fn tokens_of(&self, user_id: &str) -> Result<Vec<TokenRow>, DbError> {
        let rows = sqlx::query("SELECT * FROM tokens WHERE user_id = ? ORDER BY created_at")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::token).collect()
    }

    /// Revokes a token of `user_id`; whether there was one.
    pub(crate) async fn delete_token(&self, user_id: &str, id: &str) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM tokens WHERE id = ? AND user_id = ?")
            .bind(id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Shares (or changes the share of) a workspace with a user.
    pub(crate) async fn set_share(
        &self,
        workspace_id: &str,
        user_id: &str,
        access: ShareAccess,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO shares (workspace_id, user_id, access, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (workspace_id, user_id) DO UPDATE SET access = excluded.access",
        )
        .bind(workspace_id)
        .bind(user_id)
        .bind(access.as_str())
        .bind(crate::now_rfc3339())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether there was a share to remove.
    pub(crate) async fn delete_share(
        &self,
        workspace_id: &str,
        user_id: &str,
    ) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM shares WHERE workspace_id = ? AND user_id = ?")
            .bind(workspace_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Who a workspace is shared with: (user id, username, access).
    pub(crate) async fn shares_of(
        &self,
        workspace_id: &str,
    ) -> Result<Vec<(String, String, ShareAccess)>, DbError> {
        let rows = sqlx::query(
            "SELECT s.user_id, u.username, s.access FROM shares s JOIN users u ON u.id = s.user_id WHERE s.workspace_id = ? ORDER BY u.username",
        )
        .bind(workspace_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let access: String = row.try_get("access")?;
                let access = ShareAccess::parse(&access).ok_or_else(|| DbError::Unreadable {
                    id: workspace_id.to_string(),
                    column: "shares.access",
                    problem: format!("unknown access {access:?}"),
                })?;
                Ok((row.try_get("user_id")?, row.try_get("username")?, access))
            })
            .collect()
    }

    /// What a share gives `user_id` on a workspace, if it is shared with them.
    pub(crate) async fn share_of(
        &self,
        workspace_id: &str,
        user_id: &str,
    ) -> Result<Option<ShareAccess>, DbError> {
        let access: Option<String> =
            sqlx::query_scalar("SELECT access FROM shares WHERE workspace_id = ? AND user_id = ?")
                .bind(workspace_id)
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(access.as_deref().and_then(ShareAccess::parse))
    }
}
