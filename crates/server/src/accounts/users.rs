//! Users and roles: made, changed and removed by administrators (and a user's own
//! password by themselves), through the API and `cove user`.

use cove_protocol::ErrorCode;
use cove_protocol::accounts::{CreateUser, Outcome, Role, UpdateUser, User};

use super::passwords::{MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS};
use super::{Accounts, Caller, Credential, secrets, user_view};
use crate::db::{DbError, UserRow};
use crate::error::ApiError;

/// Longest username.
const MAX_USERNAME_CHARS: usize = 64;

/// Usernames are what people type to sign in and read in lists: letters, digits and
/// `._-`, starting with a letter or digit; unique whatever their case.
pub(crate) fn check_username(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_USERNAME_CHARS
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "a username is 1 to {MAX_USERNAME_CHARS} letters, digits, '.', '_' or '-', starting with a letter or digit"
        )))
    }
}

pub(crate) fn check_new_password(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::bad_request(format!(
            "a password has at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::bad_request("the password is too long"));
    }
    Ok(())
}

fn admin_only(caller: &Caller) -> Result<(), ApiError> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::Forbidden,
            "only an administrator may do this",
        ))
    }
}

impl Accounts {
    /// A user by id or username, as `caller` may see them: themselves, or anyone for an
    /// administrator (others answer 404, as a missing user does).
    pub(crate) async fn find_user_for(
        &self,
        caller: &Caller,
        id_or_name: &str,
    ) -> Result<UserRow, ApiError> {
        let found = self.db.find_user(id_or_name).await?;
        match found {
            Some(user) if caller.is_admin() || user.id == caller.user.id => Ok(user),
            _ => Err(ApiError::not_found(format!("no user {id_or_name:?}"))),
        }
    }

    pub(crate) async fn list_users(&self, caller: &Caller) -> Result<Vec<User>, ApiError> {
        admin_only(caller)?;
        Ok(self.db.list_users().await?.iter().map(user_view).collect())
    }

    /// Makes a user (administrators, or `cove user add` with `caller` the CLI's admin).
    pub(crate) async fn create_user(
        &self,
        caller: &Caller,
        request: &CreateUser,
    ) -> Result<User, ApiError> {
        admin_only(caller)?;
        check_username(&request.username)?;
        check_new_password(&request.password)?;
        let password_hash = self
            .passwords
            .hash(&request.password)
            .await
            .map_err(|e| ApiError::internal("cannot hash the password", e))?;
        let user = UserRow {
            id: secrets::new_id(),
            username: request.username.clone(),
            role: request.role,
            password_hash,
            created_at: crate::now_rfc3339(),
            disabled: false,
            quotas: Default::default(),
        };
        match self.db.insert_user(&user).await {
            Ok(()) => {}
            Err(DbError::UsernameTaken(name)) => {
                return Err(ApiError::new(
                    ErrorCode::Conflict,
                    format!("a user named {name:?} already exists"),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        self.audit(
            caller,
            "user.create",
            &user.username,
            Outcome::Success,
            &format!("role {}", user.role),
        )
        .await;
        Ok(user_view(&user))
    }

    /// Changes a user. Users may change their own password; the rest is for
    /// administrators. The last enabled administrator cannot be demoted or disabled.
    pub(crate) async fn update_user(
        &self,
        caller: &Caller,
        id_or_name: &str,
        change: &UpdateUser,
    ) -> Result<User, ApiError> {
        // One change of users at a time: two administrators demoting each other at once must
        // not both pass the last-administrator check.
        let _turn = self.user_changes.lock().await;
        let mut user = self.find_user_for(caller, id_or_name).await?;
        let only_password =
            change.role.is_none() && change.disabled.is_none() && change.quotas.is_none();
        if !only_password {
            admin_only(caller)?;
        }
        let mut what = Vec::new();
        if let Some(password) = &change.password {
            check_new_password(password)?;
            user.password_hash = self
                .passwords
                .hash(password)
                .await
                .map_err(|e| ApiError::internal("cannot hash the password", e))?;
            what.push("password".to_string());
        }
        let was_admin = user.role == Role::Admin && !user.disabled;
        if let Some(role) = change.role {
            what.push(format!("role {} -> {role}", user.role));
            user.role = role;
        }
        if let Some(disabled) = change.disabled {
            what.push(if disabled { "disabled" } else { "enabled" }.to_string());
            user.disabled = disabled;
        }
        if let Some(quotas) = change.quotas {
            what.push(format!(
                "quotas {}",
                serde_json::to_string(&quotas).unwrap_or_default()
            ));
            user.quotas = quotas;
        }
        let still_admin = user.role == Role::Admin && !user.disabled;
        if was_admin && !still_admin {
            self.keep_an_admin(&user.id).await?;
        }
        self.db.update_user(&user).await?;
        if change.password.is_some() && !user.disabled {
            // Whoever held another of their sessions (a stolen cookie, say) is out.
            self.end_sessions_but(&user.id, &caller.credential).await?;
        }
        if user.disabled {
            self.db.delete_sessions_of(&user.id).await?;
            self.connections.close_user(&user.id);
        } else if change.role.is_some() {
            // What they may do changed: their sockets reconnect with the new role.
            self.connections.close_user(&user.id);
        }
        self.audit(
            caller,
            "user.update",
            &user.username,
            Outcome::Success,
            &what.join(", "),
        )
        .await;
        Ok(user_view(&user))
    }

    /// Removes a user, their sessions, tokens and shares. Refused while they own
    /// workspaces (an administrator deletes those first), and for the last administrator.
    pub(crate) async fn delete_user(
        &self,
        caller: &Caller,
        id_or_name: &str,
    ) -> Result<(), ApiError> {
        admin_only(caller)?;
        let _turn = self.user_changes.lock().await;
        let user = self.find_user_for(caller, id_or_name).await?;
        if user.role == Role::Admin && !user.disabled {
            self.keep_an_admin(&user.id).await?;
        }
        let owned = self.db.list_owned(&user.id).await?;
        if !owned.is_empty() {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "{} owns {} workspace(s) ({}); delete them first",
                    user.username,
                    owned.len(),
                    owned
                        .iter()
                        .map(|w| w.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        self.db.delete_user(&user.id).await?;
        self.connections.close_user(&user.id);
        self.audit(caller, "user.delete", &user.username, Outcome::Success, "")
            .await;
        Ok(())
    }

    /// Ends every session of `user_id` but `keep` (the caller's own, when it is one of them);
    /// their sockets close.
    async fn end_sessions_but(&self, user_id: &str, keep: &Credential) -> Result<(), ApiError> {
        for session in self.db.sessions_of(user_id).await? {
            if *keep == Credential::Session(session.id.clone()) {
                continue;
            }
            self.db.delete_session(user_id, &session.id).await?;
            self.connections.close_session(&session.id);
        }
        Ok(())
    }

    /// Refuses a change that would leave no enabled administrator besides `losing`.
    async fn keep_an_admin(&self, losing: &str) -> Result<(), ApiError> {
        let others = self
            .db
            .list_users()
            .await?
            .into_iter()
            .filter(|u| u.id != losing && u.role == Role::Admin && !u.disabled)
            .count();
        if others == 0 {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "this is the last administrator; make another user an administrator first",
            ));
        }
        Ok(())
    }
}
