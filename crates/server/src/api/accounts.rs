//! The account routes of docs/PROTOCOL.md section 7: signing in and out, users, sessions,
//! tokens, usage, shares and the audit log. Each handler checks the body, then calls one
//! `Accounts` operation, which checks who may do it and writes the audit row.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cove_protocol::accounts::{
    AuditPage, AuditQuery, ChangePassword, CreateToken, CreateUser, LoginRequest, LoginResponse,
    Outcome, SessionView, Share, ShareRequest, UpdateUser,
};
use cove_protocol::ide::Settings;

use super::{Shared, parse_json};
use crate::accounts::{Caller, Credential, SESSION_COOKIE, user_view};
use crate::auth::{ClientAddress, OverTls};
use crate::error::ApiError;

/// `POST /login`: JSON `{username?, password}` answers 200 `{user}`; a form (the sign-in
/// page without script) answers 303 to `next` (a path on this server) or `/`. Both set the
/// session cookie.
pub(crate) async fn login(
    State(app): Shared,
    ClientAddress(address): ClientAddress,
    OverTls(tls): OverTls,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    let (request, next) = if is_form {
        let form: LoginForm = serde_urlencoded::from_bytes(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid sign-in form: {e}")))?;
        (
            LoginRequest {
                username: form.username,
                password: form.password,
            },
            Some(form.next.unwrap_or_default()),
        )
    } else {
        (parse_json::<LoginRequest>(&headers, &body)?, None)
    };
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let signed_in = app
        .accounts
        .sign_in(
            request.username.as_deref(),
            &request.password,
            address,
            user_agent,
        )
        .await;
    app.observer.sign_in(match &signed_in {
        Ok(_) => "success",
        Err(e)
            if matches!(
                e.reply.code,
                cove_protocol::ErrorCode::LimitExceeded | cove_protocol::ErrorCode::Unavailable
            ) =>
        {
            "throttled"
        }
        Err(_) => "failure",
    });
    let signed_in = signed_in?;
    let cookie = session_cookie(tls, &signed_in.secret, signed_in.max_age);
    let mut response = match next {
        Some(next) => {
            let mut r = StatusCode::SEE_OTHER.into_response();
            if let Ok(location) = HeaderValue::from_str(local_path(&next)) {
                r.headers_mut().insert(header::LOCATION, location);
            }
            r
        }
        None => axum::Json(LoginResponse {
            user: user_view(&signed_in.caller.user),
        })
        .into_response(),
    };
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[derive(serde::Deserialize)]
struct LoginForm {
    username: Option<String>,
    password: String,
    next: Option<String>,
}

/// Where to go after a form sign-in: a path on this server, never another site (`//evil`,
/// `/\evil` and `https://evil` all become `/`).
fn local_path(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control());
    if local { next } else { "/" }
}

/// The session cookie: not readable by script, not sent on other sites' subrequests, and
/// only over TLS when the client reached cove over TLS (its own, or a trusted proxy's).
fn session_cookie(tls: bool, secret: &str, max_age: u64) -> HeaderValue {
    let secure = if tls { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `POST /logout`: ends the session everywhere it is open, and clears the cookie.
pub(crate) async fn logout(
    State(app): Shared,
    OverTls(tls): OverTls,
    caller: Caller,
) -> Result<Response, ApiError> {
    app.accounts.sign_out(&caller).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie(tls, "", 0));
    Ok(response)
}

pub(crate) async fn me(caller: Caller) -> Response {
    axum::Json(user_view(&caller.user)).into_response()
}

pub(crate) async fn list_users(State(app): Shared, caller: Caller) -> Result<Response, ApiError> {
    Ok(axum::Json(app.accounts.list_users(&caller).await?).into_response())
}

pub(crate) async fn create_user(
    State(app): Shared,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: CreateUser = parse_json(&headers, &body)?;
    let user = app.accounts.create_user(&caller, &request).await?;
    Ok((StatusCode::CREATED, axum::Json(user)).into_response())
}

pub(crate) async fn update_user(
    State(app): Shared,
    caller: Caller,
    Path(user): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let change: UpdateUser = parse_json(&headers, &body)?;
    let user = app.accounts.update_user(&caller, &user, &change).await?;
    Ok(axum::Json(user).into_response())
}

/// `PUT /api/users/me`: the caller's own password (the rest is an administrator's).
pub(crate) async fn update_me(
    State(app): Shared,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let change: ChangePassword = parse_json(&headers, &body)?;
    let user = app
        .accounts
        .change_own_password(&caller, &change.current_password, &change.password)
        .await?;
    Ok(axum::Json(user).into_response())
}

/// `GET /api/users/me/settings`: the caller's IDE settings (`{}` until they save some).
pub(crate) async fn my_settings(State(app): Shared, caller: Caller) -> Result<Response, ApiError> {
    let stored = app.accounts.db().settings_of(&caller.user.id).await?;
    // Stored only after the same checks; a row that no longer reads is the defaults.
    let settings: Settings = stored
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    Ok(axum::Json(settings).into_response())
}

/// `PUT /api/users/me/settings`: replaces the caller's IDE settings.
pub(crate) async fn update_my_settings(
    State(app): Shared,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if body.len() > 4096 {
        return Err(ApiError::bad_request("settings are at most 4 KiB"));
    }
    let settings: Settings = parse_json(&headers, &body)?;
    if let Some(problem) = settings.problem() {
        return Err(ApiError::bad_request(problem));
    }
    let json = serde_json::to_string(&settings).expect("settings encode");
    let now = crate::now_rfc3339();
    app.accounts
        .db()
        .set_settings(&caller.user.id, &json, &now)
        .await?;
    Ok(axum::Json(settings).into_response())
}

pub(crate) async fn delete_user(
    State(app): Shared,
    caller: Caller,
    Path(user): Path<String>,
) -> Result<Response, ApiError> {
    app.accounts.delete_user(&caller, &user).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn list_sessions(
    State(app): Shared,
    caller: Caller,
) -> Result<Response, ApiError> {
    let current = match &caller.credential {
        Credential::Session(id) => Some(id.as_str()),
        _ => None,
    };
    let sessions: Vec<SessionView> = app
        .accounts
        .db()
        .sessions_of(&caller.user.id)
        .await?
        .into_iter()
        .map(|s| SessionView {
            current: current == Some(s.id.as_str()),
            id: s.id,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            address: s.address,
            user_agent: s.user_agent,
        })
        .collect();
    Ok(axum::Json(sessions).into_response())
}

pub(crate) async fn revoke_session(
    State(app): Shared,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    app.accounts.revoke_session(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn usage(State(app): Shared, caller: Caller) -> Result<Response, ApiError> {
    Ok(axum::Json(app.accounts.usage(&caller).await?).into_response())
}

pub(crate) async fn create_token(
    State(app): Shared,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: CreateToken = parse_json(&headers, &body)?;
    let created = app.accounts.create_token(&caller, &request).await?;
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

pub(crate) async fn list_tokens(State(app): Shared, caller: Caller) -> Result<Response, ApiError> {
    Ok(axum::Json(app.accounts.list_tokens(&caller).await?).into_response())
}

pub(crate) async fn revoke_token(
    State(app): Shared,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    app.accounts.revoke_token(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/workspaces/{id}/shares`: owner or administrator.
pub(crate) async fn list_shares(
    State(app): Shared,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let found = app.manager.find(&caller, &id).await?;
    found.require_owner()?;
    let shares: Vec<Share> = app
        .accounts
        .db()
        .shares_of(&found.row.id)
        .await?
        .into_iter()
        .map(|(_, username, access)| Share {
            user: username,
            access,
        })
        .collect();
    Ok(axum::Json(shares).into_response())
}

/// `PUT /api/workspaces/{id}/shares/{user}`. Changing a share closes the user's open
/// sockets on the workspace, so that they come back with what the new share gives.
pub(crate) async fn put_share(
    State(app): Shared,
    caller: Caller,
    Path((id, user)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: ShareRequest = parse_json(&headers, &body)?;
    let found = app.manager.find(&caller, &id).await?;
    found.require_owner()?;
    let Some(target) = app.accounts.db().find_user(&user).await? else {
        return Err(ApiError::not_found(format!("no user {user:?}")));
    };
    if target.id == found.row.owner {
        return Err(ApiError::bad_request(
            "the owner of a workspace already has every access to it",
        ));
    }
    let db = app.accounts.db();
    let before = db.share_of(&found.row.id, &target.id).await?;
    db.set_share(&found.row.id, &target.id, request.access)
        .await?;
    if before.is_some_and(|b| b != request.access) {
        app.accounts
            .connections
            .close_user_on(&target.id, &found.row.id);
    }
    app.accounts
        .audit(
            &caller,
            "share.set",
            &found.row.id,
            Outcome::Success,
            &format!("{} may {}", target.username, request.access.as_str()),
        )
        .await;
    app.manager.notify_access_changed(&found.row, &target.id);
    Ok(axum::Json(Share {
        user: target.username,
        access: request.access,
    })
    .into_response())
}

/// `DELETE /api/workspaces/{id}/shares/{user}`: the user's open sockets on it close.
pub(crate) async fn delete_share(
    State(app): Shared,
    caller: Caller,
    Path((id, user)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let found = app.manager.find(&caller, &id).await?;
    found.require_owner()?;
    let db = app.accounts.db();
    let target = db.find_user(&user).await?;
    let removed = match &target {
        Some(target) => db.delete_share(&found.row.id, &target.id).await?,
        None => false,
    };
    let Some(target) = target.filter(|_| removed) else {
        return Err(ApiError::not_found(format!(
            "the workspace is not shared with {user:?}"
        )));
    };
    let closed = app
        .accounts
        .connections
        .close_user_on(&target.id, &found.row.id);
    app.accounts
        .audit(
            &caller,
            "share.delete",
            &found.row.id,
            Outcome::Success,
            &format!("{} ({closed} sockets closed)", target.username),
        )
        .await;
    app.manager.notify_access_changed(&found.row, &target.id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/audit`: administrators only; newest first, paged by `before`.
pub(crate) async fn audit(
    State(app): Shared,
    caller: Caller,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    if !caller.is_admin() {
        return Err(ApiError::forbidden(
            "only an administrator may read the audit log",
        ));
    }
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let (entries, next) = app.accounts.db().audit(&query).await?;
    Ok(axum::Json(AuditPage { entries, next }).into_response())
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn sign_in_only_sends_people_to_paths_on_this_server() {
        assert_eq!(local_path("/w/demo?x=1"), "/w/demo?x=1");
        for hostile in [
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example",
            "",
            "/\nx",
        ] {
            assert_eq!(local_path(hostile), "/", "{hostile:?}");
        }
    }
}
