//! Port preview for people: `/w/{id}/proxy/{port}/...` (prefix stripped, like code-server's
//! `/proxy/`) and `/w/{id}/absproxy/{port}/...` (prefix kept, for apps that know their base
//! path), relayed through the runner's `/ports/{port}/...`, HTTP and WebSocket alike.
//!
//! A dev server is code the workspace runs, so it is treated as untrusted: cove's own session
//! cookie and `Authorization` header never reach it, and it cannot set cove's cookie.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use hyper_util::rt::TokioIo;
use std::sync::Arc;

use crate::error::ApiError;
use crate::{AppState, api, link};

/// The session cookie's name (PROTOCOL.md section 0).
pub const SESSION_COOKIE: &str = "cove_session";

fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONNECTION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        })
}

/// Removes cove's credentials from a request bound for a workspace's own server.
fn strip_credentials(headers: &mut HeaderMap) {
    headers.remove(header::AUTHORIZATION);
    let kept: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|c| !c.is_empty() && c.split('=').next().map(str::trim) != Some(SESSION_COOKIE))
        .map(str::to_string)
        .collect();
    headers.remove(header::COOKIE);
    if !kept.is_empty()
        && let Ok(value) = HeaderValue::from_str(&kept.join("; "))
    {
        headers.insert(header::COOKIE, value);
    }
}

/// Drops `Set-Cookie` headers that would set cove's own session cookie.
fn strip_session_cookies(headers: &mut HeaderMap) {
    let kept: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter(|v| {
            let name = v
                .to_str()
                .unwrap_or("")
                .split('=')
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            name != SESSION_COOKIE
        })
        .cloned()
        .collect();
    headers.remove(header::SET_COOKIE);
    for value in kept {
        headers.append(header::SET_COOKIE, value);
    }
}

/// `/w/{id}/proxy/{port}` without a slash: relative links need one.
pub async fn add_slash(request: Request) -> Response {
    let uri = request.uri();
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    Redirect::permanent(&format!("{}/{query}", uri.path())).into_response()
}

pub async fn proxy(
    State(app): State<Arc<AppState>>,
    Path(params): Path<Vec<(String, String)>>,
    request: Request,
) -> Result<Response, ApiError> {
    relay(app, params, request, false).await
}

pub async fn absproxy(
    State(app): State<Arc<AppState>>,
    Path(params): Path<Vec<(String, String)>>,
    request: Request,
) -> Result<Response, ApiError> {
    relay(app, params, request, true).await
}

async fn relay(
    app: Arc<AppState>,
    params: Vec<(String, String)>,
    mut request: Request,
    keep_prefix: bool,
) -> Result<Response, ApiError> {
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (id, port) = (param("id"), param("port"));
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| ApiError::bad_request(format!("{port:?} is not a port number")))?;
    let upgrade = wants_upgrade(request.headers());
    if upgrade {
        api::check_origin(request.headers())?;
    }
    let row = app.manager.find(&app.owner, &id).await?;
    let addr = app.manager.ensure_running(&row).await?;
    // The path as the client encoded it, after `/w/{id}/(abs)proxy/{port}` (or all of it).
    let original = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let kind = if keep_prefix { "absproxy" } else { "proxy" };
    let prefix = format!(
        "/w/{}/{kind}/{port}",
        request.uri().path().split('/').nth(2).unwrap_or("")
    );
    let rest = if keep_prefix {
        original.clone()
    } else {
        original.strip_prefix(&prefix).unwrap_or("/").to_string()
    };
    let target = format!(
        "/ports/{port}{}{rest}",
        if rest.starts_with('/') { "" } else { "/" }
    );
    let client_upgrade = if upgrade {
        request
            .extensions_mut()
            .remove::<hyper::upgrade::OnUpgrade>()
    } else {
        None
    };
    let (mut parts, body) = request.into_parts();
    strip_credentials(&mut parts.headers);
    parts.uri = target
        .parse()
        .map_err(|_| ApiError::bad_request("bad preview path"))?;
    let forwarded = hyper::Request::from_parts(parts, body);
    let mut response = link::forward(&addr, forwarded, &app.tasks)
        .await
        .map_err(|e| ApiError::internal("cannot reach the workspace", e))?;
    if response.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client_upgrade) = client_upgrade
    {
        let runner_upgrade = hyper::upgrade::on(&mut response);
        let stop = app.shutdown.clone();
        app.tasks.spawn(async move {
            if let (Ok(client), Ok(runner)) = (client_upgrade.await, runner_upgrade.await) {
                let (mut client, mut runner) = (TokioIo::new(client), TokioIo::new(runner));
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut runner) => {}
                    _ = stop.cancelled() => {}
                }
            }
        });
    }
    let (mut parts, body) = response.into_parts();
    strip_session_cookies(&mut parts.headers);
    Ok(Response::from_parts(parts, Body::new(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_stripped_and_other_cookies_kept() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer secret"),
        );
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; cove_session=abc; csrftoken=x"),
        );
        strip_credentials(&mut headers);
        assert!(headers.get(header::AUTHORIZATION).is_none());
        assert_eq!(
            headers.get(header::COOKIE).unwrap(),
            "theme=dark; csrftoken=x"
        );
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("cove_session=abc"));
        strip_credentials(&mut headers);
        assert!(headers.get(header::COOKIE).is_none());
        let mut headers = HeaderMap::new();
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_static("cove_session=evil; Path=/"),
        );
        headers.append(header::SET_COOKIE, HeaderValue::from_static("app=1"));
        strip_session_cookies(&mut headers);
        assert_eq!(headers.get_all(header::SET_COOKIE).iter().count(), 1);
    }
}
