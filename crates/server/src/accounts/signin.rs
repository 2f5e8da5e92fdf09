//! Sign-in and sign-out, and finding the caller of a request from its session cookie or
//! bearer token.

use cove_protocol::ErrorCode;
use cove_protocol::accounts::Outcome;
use std::net::IpAddr;

use super::passwords::{MAX_PASSWORD_BYTES, PasswordError};
use super::ratelimit::Refusal;
use super::{Accounts, Caller, Credential, Quota, secrets};
use crate::db::SessionRow;
use crate::error::ApiError;

/// The session cookie's name (PROTOCOL.md section 0).
pub(crate) const SESSION_COOKIE: &str = "cove_session";

/// A session's last-seen time is written at most this often (a write per request would
/// cost more than it tells).
const TOUCH_EVERY_MS: u64 = 60_000;

/// What a sign-in yields: who, and the cookie's secret (shown to the browser once).
#[derive(Debug)]
pub(crate) struct SignedIn {
    pub(crate) caller: Caller,
    pub(crate) secret: String,
    /// How long the cookie lives, in seconds.
    pub(crate) max_age: u64,
}

impl Accounts {
    /// Checks a password and opens a session. Failures are counted per address and per
    /// username; past the limit the answer is 429 with how long to wait, before any check.
    pub(crate) async fn sign_in(
        &self,
        username: Option<&str>,
        password: &str,
        address: IpAddr,
        user_agent: &str,
    ) -> Result<SignedIn, ApiError> {
        let username = username
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .unwrap_or(&self.settings.admin_username)
            .to_string();
        let address_key = address.to_string();
        let username_key = username.to_lowercase();
        let limits = &self.sign_in_limits;
        // Places are taken before the password is checked (a burst cannot outrun the count)
        // and become failures only for a wrong one. A username past its limit is still open
        // to an address it is signed in from: guessing from elsewhere cannot lock its owner
        // out there.
        let address_place = match limits.per_address.reserve(&address_key) {
            Ok(place) => place,
            Err(refusal) => return Err(self.refuse_sign_in(&username, address, refusal).await),
        };
        let username_place = match limits.per_username.reserve(&username_key) {
            Ok(place) => Some(place),
            Err(_) if self.signed_in_from(&username, address).await? => None,
            Err(refusal) => return Err(self.refuse_sign_in(&username, address, refusal).await),
        };
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(ApiError::bad_request("the password is too long"));
        }
        // By username only: an id (the first administrator's is well known) would be a second
        // key for the per-username count.
        let user = self
            .db
            .find_user(&username)
            .await?
            .filter(|u| u.username.eq_ignore_ascii_case(&username));
        let hash = user
            .as_ref()
            .map(|u| u.password_hash.as_str())
            .filter(|h| !h.is_empty());
        let matches = self
            .passwords
            .verify(password, hash)
            .await
            .map_err(password_error)?;
        let user = match user {
            Some(user) if matches && !user.disabled => user,
            found => {
                address_place.failed();
                if let Some(place) = username_place {
                    place.failed();
                }
                let why = match found {
                    None => "no such user",
                    Some(u) if u.disabled && matches => "the user is disabled",
                    Some(_) => "wrong password",
                };
                self.audit_as(
                    &username,
                    "login",
                    &username,
                    Some(address),
                    Outcome::Failure,
                    why,
                )
                .await;
                tracing::info!(%username, %address, why, "sign-in refused");
                // One answer for every reason, so that it does not tell which usernames exist.
                return Err(ApiError::new(
                    ErrorCode::Unauthorized,
                    "wrong username or password",
                ));
            }
        };
        // A right password counts as nothing.
        drop((address_place, username_place));
        let open = self.db.sessions_of(&user.id).await?.len() as u64;
        self.check_quota(&user, Quota::Sessions, open, 1)?;
        let now = crate::now_ms();
        let secret = secrets::new_secret();
        let session = SessionRow {
            id: secrets::new_id(),
            secret_hash: secrets::hash(&secret),
            user_id: user.id.clone(),
            created_at: crate::rfc3339(now),
            last_seen_at: crate::rfc3339(now),
            expires_at: crate::rfc3339(now + self.settings.session_lifetime.as_millis() as u64),
            address: address.to_string(),
            user_agent: super::clip(user_agent),
        };
        self.db.insert_session(&session).await?;
        let caller = Caller {
            user,
            credential: Credential::Session(session.id.clone()),
            address,
        };
        self.audit(
            &caller,
            "login",
            &caller.user.username,
            Outcome::Success,
            "",
        )
        .await;
        tracing::info!(username = %caller.user.username, %address, "signed in");
        Ok(SignedIn {
            caller,
            secret,
            max_age: self.settings.session_lifetime.as_secs(),
        })
    }

    /// The answer to an attempt the limits turned away.
    async fn refuse_sign_in(&self, username: &str, address: IpAddr, refusal: Refusal) -> ApiError {
        match refusal {
            Refusal::Limited(wait) => {
                let seconds = wait.as_secs().max(1);
                self.audit_unauthenticated(
                    username,
                    "login",
                    username,
                    address,
                    &format!("rate limited for {seconds} s"),
                )
                .await;
                ApiError::new(
                    ErrorCode::LimitExceeded,
                    format!("too many failed sign-ins; try again in {seconds} s"),
                )
                .with_retry_after(seconds)
            }
            Refusal::Busy => {
                ApiError::unavailable("too many sign-ins at once from here; try again in a second")
                    .with_retry_after(1)
            }
        }
    }

    /// Changes the caller's own password after checking the current one; wrong answers count
    /// as failed sign-ins of the username (a stolen session cannot guess it without limit).
    pub(crate) async fn change_own_password(
        &self,
        caller: &Caller,
        current: &str,
        new: &str,
    ) -> Result<cove_protocol::accounts::User, ApiError> {
        let username = caller.user.username.clone();
        if caller.credential != Credential::Open {
            let place = match self
                .sign_in_limits
                .per_username
                .reserve(&username.to_lowercase())
            {
                Ok(place) => place,
                Err(refusal) => {
                    return Err(self
                        .refuse_sign_in(&username, caller.address, refusal)
                        .await);
                }
            };
            if current.len() > MAX_PASSWORD_BYTES {
                return Err(ApiError::bad_request("the password is too long"));
            }
            let hash = Some(caller.user.password_hash.as_str()).filter(|h| !h.is_empty());
            let matches = self
                .passwords
                .verify(current, hash)
                .await
                .map_err(password_error)?;
            if !matches {
                place.failed();
                self.audit(
                    caller,
                    "user.update",
                    &username,
                    Outcome::Failure,
                    "wrong current password",
                )
                .await;
                return Err(ApiError::forbidden("the current password is wrong"));
            }
        }
        let change = cove_protocol::accounts::UpdateUser {
            password: Some(new.to_string()),
            ..Default::default()
        };
        let id = caller.user.id.clone();
        self.update_user(caller, &id, &change).await
    }

    /// Whether `username` has a live session opened from `address`.
    async fn signed_in_from(&self, username: &str, address: IpAddr) -> Result<bool, ApiError> {
        let Some(user) = self.db.find_user(username).await? else {
            return Ok(false);
        };
        let address = address.to_string();
        Ok(self
            .db
            .sessions_of(&user.id)
            .await?
            .iter()
            .any(|s| s.address == address))
    }

    /// Ends the caller's session everywhere it is open (its sockets close).
    pub(crate) async fn sign_out(&self, caller: &Caller) -> Result<(), ApiError> {
        if let Credential::Session(id) = &caller.credential {
            self.db.delete_session(&caller.user.id, id).await?;
            self.connections.close_session(id);
        }
        self.audit(
            caller,
            "logout",
            &caller.user.username,
            Outcome::Success,
            "",
        )
        .await;
        Ok(())
    }

    /// The caller a session cookie or a bearer token names, if it is live and its user is
    /// not disabled. A bearer token wins over a cookie.
    pub(crate) async fn authenticate(
        &self,
        cookie: Option<&str>,
        bearer: Option<&str>,
        address: IpAddr,
    ) -> Result<Option<Caller>, ApiError> {
        match Proof::of(cookie, bearer) {
            Some(proof) => self.authenticate_proof(&proof, address).await,
            None => Ok(None),
        }
    }

    /// Like [`Accounts::authenticate`], from a credential's hash kept earlier (a preview
    /// host's pass stands on the credential it was made from, checked again every time).
    pub(crate) async fn authenticate_proof(
        &self,
        proof: &Proof,
        address: IpAddr,
    ) -> Result<Option<Caller>, ApiError> {
        let now = crate::now_ms();
        let now_text = crate::rfc3339(now);
        let secret_hash =
            match proof {
                Proof::Session(hash) => hash,
                Proof::Token(hash) => {
                    let Some((token, user)) = self.db.token_by_secret(hash).await? else {
                        return Ok(None);
                    };
                    if user.disabled
                        || token
                            .expires_at
                            .as_deref()
                            .is_some_and(|e| e <= now_text.as_str())
                    {
                        return Ok(None);
                    }
                    if token.last_used_at.as_deref().is_none_or(|t| {
                        t < crate::rfc3339(now.saturating_sub(TOUCH_EVERY_MS)).as_str()
                    }) {
                        self.db.touch_token(&token.id, &now_text).await?;
                    }
                    return Ok(Some(Caller {
                        user,
                        credential: Credential::Token(token.id),
                        address,
                    }));
                }
            };
        let Some((session, user)) = self.db.session_by_secret(secret_hash).await? else {
            return Ok(None);
        };
        let idle_since =
            crate::rfc3339(now.saturating_sub(self.settings.session_idle.as_millis() as u64));
        if user.disabled || session.expires_at <= now_text || session.last_seen_at < idle_since {
            self.db.delete_session(&user.id, &session.id).await?;
            return Ok(None);
        }
        if session.last_seen_at < crate::rfc3339(now.saturating_sub(TOUCH_EVERY_MS)) {
            self.db.touch_session(&session.id, &now_text).await?;
        }
        Ok(Some(Caller {
            user,
            credential: Credential::Session(session.id),
            address,
        }))
    }
}

/// A credential as presented, by the hash it is stored as: enough to find it again, useless
/// to anyone who reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Proof {
    Session(String),
    Token(String),
}

impl Proof {
    /// What a request's session cookie or bearer token proves; the token wins.
    pub(crate) fn of(cookie: Option<&str>, bearer: Option<&str>) -> Option<Proof> {
        match (bearer, cookie) {
            (Some(token), _) => Some(Proof::Token(secrets::hash(token))),
            (None, Some(secret)) => Some(Proof::Session(secrets::hash(secret))),
            (None, None) => None,
        }
    }
}

fn password_error(e: PasswordError) -> ApiError {
    match e {
        PasswordError::Busy => ApiError::unavailable(e.to_string()).with_retry_after(1),
        other => ApiError::internal("cannot check passwords", other),
    }
}
