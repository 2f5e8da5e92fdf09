//! Who is calling: every request to cove's own routes is resolved to a [`Caller`] from its
//! session cookie or bearer token (or, with `--auth none`, is the administrator) before it
//! reaches a handler. Without one, only sign-in, the IDE's static files, health and
//! `/api/info` answer; a page is redirected to the sign-in page (and back afterwards), an
//! API call gets 401, and a refused WebSocket is written to the audit log.

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use cove_protocol::ErrorCode;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::AppState;
use crate::accounts::{Auth, Caller, SESSION_COOKIE};
use crate::error::ApiError;

/// The client's address (after trusted proxies), for every request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddress(pub(crate) IpAddr);

/// Whether the client reached cove over TLS: cove's own, or a trusted proxy's that says
/// `X-Forwarded-Proto: https`. Cookies are then marked `Secure`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OverTls(pub(crate) bool);

pub(crate) async fn identify(
    State(app): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
    let address = app.proxies.client_address(peer, request.headers());
    request.extensions_mut().insert(ClientAddress(address));
    let proxied_tls = app
        .proxies
        .forwarded_host(peer, request.headers())
        .and_then(|(_, proto)| proto)
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
    request
        .extensions_mut()
        .insert(OverTls(app.tls || proxied_tls));
    let caller = match app.accounts.auth() {
        Auth::None => app.accounts.open_caller(address).await.map(Some),
        Auth::Password => {
            let headers = request.headers();
            app.accounts
                .authenticate(
                    cookie(headers, SESSION_COOKIE).as_deref(),
                    bearer(headers).as_deref(),
                    address,
                )
                .await
        }
    };
    match caller {
        Ok(Some(caller)) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Ok(None) if is_public(request.method(), request.uri().path()) => next.run(request).await,
        Ok(None) => refuse(&app, request, address).await,
        Err(e) => e.into_response(),
    }
}

/// Answers a request that needs a caller and has none.
async fn refuse(app: &AppState, request: Request, address: IpAddr) -> Response {
    let path = request.uri().path().to_string();
    let upgrade = is_upgrade(&request);
    let page = crate::assets::is_page(&path) || crate::preview::is_open_route(&path);
    if request.method() == Method::GET && page && !upgrade {
        let next = request.uri().path_and_query().map_or("/", |p| p.as_str());
        return Redirect::to(&format!("/login?next={}", encode_component(next))).into_response();
    }
    let bearer_given = request.headers().contains_key(header::AUTHORIZATION);
    drop(request);
    if upgrade {
        app.accounts
            .audit_unauthenticated("", "socket.refused", &path, address, "not signed in")
            .await;
        tracing::info!(%address, path, "refused a WebSocket: not signed in");
    }
    ApiError::new(
        ErrorCode::Unauthorized,
        if bearer_given {
            "this token is not valid (revoked, expired, or its user is disabled)"
        } else {
            "sign in first (POST /login), or send an API token as Authorization: Bearer"
        },
    )
    .into_response()
}

/// What answers without a caller: signing in, the IDE's files, health, `/api/info`.
fn is_public(method: &Method, path: &str) -> bool {
    match *method {
        Method::POST => path == "/login",
        Method::GET | Method::HEAD => {
            path == "/login"
                || path.starts_with("/assets/")
                || matches!(path, "/favicon.svg" | "/healthz" | "/health" | "/api/info")
        }
        _ => false,
    }
}

fn is_upgrade(request: &Request) -> bool {
    request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The value of cookie `name`, if the request carries it exactly once. Two of them mean
/// someone planted one (a page that set a cookie with a longer path, sent first): neither is
/// trusted.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string());
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

/// The token of `Authorization: Bearer <token>`.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// Percent-encodes a URL component (for `next=`).
pub(crate) fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Caller, ApiError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "sign in first"))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for OverTls {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<OverTls, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<OverTls>()
            .copied()
            .unwrap_or(OverTls(false)))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _: &S,
    ) -> Result<ClientAddress, std::convert::Infallible> {
        Ok(parts
            .extensions
            .get::<ClientAddress>()
            .copied()
            .unwrap_or(ClientAddress(IpAddr::from([127, 0, 0, 1]))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn cookies_and_bearer_tokens_are_read_exactly() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; cove_session=abc; x_cove_session=evil"),
        );
        assert_eq!(cookie(&h, "cove_session").as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "missing"), None);
        let mut planted = HeaderMap::new();
        planted.insert(
            header::COOKIE,
            HeaderValue::from_static("cove_session=attacker; cove_session=victim"),
        );
        assert_eq!(
            cookie(&planted, "cove_session"),
            None,
            "two are trusted neither"
        );
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer  cove_xyz "),
        );
        assert_eq!(bearer(&h).as_deref(), Some("cove_xyz"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn only_sign_in_static_files_and_health_are_public() {
        assert!(is_public(&Method::POST, "/login"));
        assert!(is_public(&Method::GET, "/assets/index-abc.js"));
        assert!(is_public(&Method::GET, "/api/info"));
        for (method, path) in [
            (Method::GET, "/"),
            (Method::GET, "/api/workspaces"),
            (Method::POST, "/logout"),
            (Method::GET, "/metrics"),
            (Method::GET, "/w/x/proxy/8000/"),
            (Method::DELETE, "/login"),
        ] {
            assert!(!is_public(&method, path), "{method} {path}");
        }
        assert_eq!(encode_component("/w/a b?x=1&y"), "/w/a%20b%3Fx%3D1%26y");
    }
}
