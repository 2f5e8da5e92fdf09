//! API tokens for scripts and agents: `Authorization: Bearer <token>`, stored hashed,
//! shown once, with an optional expiry.

use cove_protocol::ErrorCode;
use cove_protocol::accounts::{CreateToken, Outcome, Role, TokenCreated, TokenView};

use super::{Accounts, Caller, Credential, secrets};
use crate::db::TokenRow;
use crate::error::ApiError;

/// Longest token name.
const MAX_NAME_CHARS: usize = 100;
/// Longest lifetime that can be asked for.
const MAX_DAYS: u32 = 3650;

impl Accounts {
    pub(crate) async fn create_token(
        &self,
        caller: &Caller,
        request: &CreateToken,
    ) -> Result<TokenCreated, ApiError> {
        if caller.user.role == Role::Viewer {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "a viewer cannot make API tokens",
            ));
        }
        let name = request.name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(ApiError::bad_request(format!(
                "a token's name is 1 to {MAX_NAME_CHARS} printable characters"
            )));
        }
        if request
            .expires_in_days
            .is_some_and(|d| d == 0 || d > MAX_DAYS)
        {
            return Err(ApiError::bad_request(format!(
                "expiresInDays is 1 to {MAX_DAYS}, or left out for a token that does not expire"
            )));
        }
        let now = crate::now_ms();
        let secret = secrets::new_token();
        let row = TokenRow {
            id: secrets::new_id(),
            secret_hash: secrets::hash(&secret),
            user_id: caller.user.id.clone(),
            name: name.to_string(),
            created_at: crate::rfc3339(now),
            expires_at: request
                .expires_in_days
                .map(|d| crate::rfc3339(now + u64::from(d) * 86_400_000)),
            last_used_at: None,
        };
        self.db.insert_token(&row).await?;
        self.audit(caller, "token.create", &row.id, Outcome::Success, &row.name)
            .await;
        Ok(TokenCreated {
            id: row.id,
            name: row.name,
            token: secret,
            expires_at: row.expires_at,
        })
    }

    pub(crate) async fn list_tokens(&self, caller: &Caller) -> Result<Vec<TokenView>, ApiError> {
        Ok(self
            .db
            .tokens_of(&caller.user.id)
            .await?
            .into_iter()
            .map(|t| TokenView {
                id: t.id,
                name: t.name,
                created_at: t.created_at,
                expires_at: t.expires_at,
                last_used_at: t.last_used_at,
            })
            .collect())
    }

    /// Revokes one of the caller's tokens; its open sockets close.
    pub(crate) async fn revoke_token(&self, caller: &Caller, id: &str) -> Result<(), ApiError> {
        if !self.db.delete_token(&caller.user.id, id).await? {
            return Err(ApiError::not_found(format!("no token {id:?}")));
        }
        self.connections.close_token(id);
        self.audit(caller, "token.revoke", id, Outcome::Success, "")
            .await;
        Ok(())
    }

    /// Ends one of the caller's sessions; its open sockets close.
    pub(crate) async fn revoke_session(&self, caller: &Caller, id: &str) -> Result<(), ApiError> {
        if !self.db.delete_session(&caller.user.id, id).await? {
            return Err(ApiError::not_found(format!("no session {id:?}")));
        }
        self.connections.close_session(id);
        let current = caller.credential == Credential::Session(id.to_string());
        self.audit(
            caller,
            "session.revoke",
            id,
            Outcome::Success,
            if current { "the current session" } else { "" },
        )
        .await;
        Ok(())
    }
}
