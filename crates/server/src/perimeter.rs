//! The perimeter: which host names cove answers to, which requests may change state, and the
//! headers that keep cove's pages to themselves.
//!
//! Every request passes [`front_door`] before routing:
//! - its `Host` is classified: one of cove's own names, a workspace preview host
//!   (`{port}-{workspaceId}.localhost` or `.{--preview-domain}`), or a stranger. Strangers are
//!   refused, which is what defeats DNS rebinding: a page on `evil.example` whose name was
//!   re-pointed at 127.0.0.1 still sends `Host: evil.example`.
//! - preview hosts go to the preview relay and never reach cove's own routes, so a page a
//!   workspace serves can never call cove's API as same-origin.
//! - requests that change state (`POST`, `PUT`, `PATCH`, `DELETE`) must come from cove's own
//!   origin when a browser sends them (`Origin`, `Sec-Fetch-Site`), so another site cannot
//!   start, stop, create or delete anything with the user's browser.
//! - cove's own answers carry a strict CSP, `nosniff`, no referrer and no framing, and error
//!   answers that a library wrote as plain text are rewritten into the JSON error shape.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cove_protocol::{ErrorCode, RestError};
use http_body_util::BodyExt;
use std::net::IpAddr;
use std::sync::Arc;

use crate::AppState;
use crate::error::ApiError;

pub(crate) mod proxies;
pub use proxies::Cidr;

/// The domain every browser resolves to loopback without asking DNS (RFC 6761): previews of a
/// cove reached on loopback live at `{port}-{id}.localhost`, with no configuration.
pub(crate) const LOOPBACK_PREVIEW_DOMAIN: &str = "localhost";

/// Marks a response that came from a workspace's own server (a preview): cove's headers are
/// not added to it, and its errors are not rewritten.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FromWorkspace;

/// The names cove answers to, and where workspace previews live.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hosts {
    /// Extra names cove is reached by (lowercase, no port), e.g. `cove.example.com`.
    allowed: Vec<String>,
    /// `preview.example.com` when previews are served at `{port}-{id}.preview.example.com`.
    preview_domain: Option<String>,
}

/// What a request's `Host` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Destination {
    /// cove itself.
    Cove,
    /// The preview of `port` in workspace `workspace` (an id).
    Preview { workspace: String, port: u16 },
    /// A name cove does not answer to.
    Refused,
}

/// `name` and optional port of a `Host` value, the name lowercased without a trailing dot.
/// `None` when it does not parse.
pub(crate) fn split_host(value: &str) -> Option<(String, Option<u16>)> {
    let value = value.trim();
    let (name, port) = if let Some(rest) = value.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(parse_port(p.strip_prefix(':')?)?),
        };
        (format!("[{inside}]"), port)
    } else {
        match value.rsplit_once(':') {
            Some((name, port)) => (name.to_string(), Some(parse_port(port)?)),
            None => (value.to_string(), None),
        }
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty()
        || !name.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':')
        })
    {
        return None;
    }
    Some((name, port))
}

/// A port as a URL or a path segment spells it: decimal digits, no sign, no leading zero,
/// 1 to 65535. `+80`, `080` and `0x50` are refused rather than read as something else.
pub(crate) fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty()
        || text.len() > 5
        || text.starts_with('0')
        || !text.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    text.parse::<u16>().ok().filter(|p| *p > 0)
}

fn is_ip_literal(name: &str) -> bool {
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok()
}

/// Whether `id` is a workspace id as cove makes them (32 lowercase hex digits).
fn is_workspace_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Hosts {
    pub(crate) fn new(allowed: &[String], preview_domain: Option<&str>) -> Hosts {
        Hosts {
            allowed: allowed
                .iter()
                .filter_map(|h| split_host(h).map(|(name, _)| name))
                .collect(),
            preview_domain: preview_domain
                .and_then(split_host)
                .map(|(name, _)| name)
                .filter(|d| d != LOOPBACK_PREVIEW_DOMAIN),
        }
    }

    /// Where a request with this `Host` (or URI authority) goes.
    pub(crate) fn classify(&self, host: Option<&str>) -> Destination {
        // HTTP/1.0 clients without Host are scripts, never a browser a rebinding attack
        // could use; they reach cove by address.
        let Some(host) = host else {
            return Destination::Cove;
        };
        let Some((name, _port)) = split_host(host) else {
            return Destination::Refused;
        };
        for domain in std::iter::once(LOOPBACK_PREVIEW_DOMAIN).chain(self.preview_domain.as_deref())
        {
            if let Some(label) = name
                .strip_suffix(domain)
                .and_then(|rest| rest.strip_suffix('.'))
            {
                return match label.split_once('-') {
                    Some((port, id)) if !label.contains('.') && is_workspace_id(id) => {
                        match parse_port(port) {
                            Some(port) => Destination::Preview {
                                workspace: id.to_string(),
                                port,
                            },
                            None => Destination::Refused,
                        }
                    }
                    _ => Destination::Refused,
                };
            }
        }
        if is_ip_literal(&name) || name == "localhost" || self.allowed.contains(&name) {
            Destination::Cove
        } else {
            Destination::Refused
        }
    }

    /// The URL of a preview, as the IDE should link it, for a request that reached cove at
    /// `host` over `scheme`; `None` when previews can only be path-based from there (a public
    /// name without `--preview-domain`).
    pub(crate) fn preview_template(&self, scheme: &str, host: &str) -> Option<String> {
        let (name, port) = split_host(host)?;
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let loopback = name == "localhost"
            || name
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if loopback {
            return Some(format!("{scheme}://{{port}}-{{id}}.localhost{port}/"));
        }
        let domain = self.preview_domain.as_ref()?;
        Some(format!("{scheme}://{{port}}-{{id}}.{domain}{port}/"))
    }

    /// cove's own `host[:port]` as seen from a preview host, where it can be known: `localhost`
    /// beside `*.localhost`, and the one `--allowed-host` beside `--preview-domain`.
    pub(crate) fn cove_host_of_preview(&self, host: &str) -> Option<String> {
        let (name, port) = split_host(host)?;
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        if name.ends_with(&format!(".{LOOPBACK_PREVIEW_DOMAIN}")) {
            return Some(format!("{LOOPBACK_PREVIEW_DOMAIN}{port}"));
        }
        match self.allowed.as_slice() {
            [only] if self.preview_domain.is_some() => Some(format!("{only}{port}")),
            _ => None,
        }
    }

    /// The `frame-src` of cove's pages: where the IDE's embedded preview may come from.
    fn frame_sources(&self, scheme: &str) -> String {
        let mut sources = format!("'self' {scheme}://*.localhost:*");
        if let Some(domain) = &self.preview_domain {
            sources.push_str(&format!(" {scheme}://*.{domain}:* {scheme}://*.{domain}"));
        }
        sources
    }
}

/// The name and port of `origin` (`scheme://name[:port]`), the port made explicit, and
/// whether it was the scheme's default.
fn origin_authority(origin: &str) -> Option<(String, u16, bool)> {
    let (scheme, rest) = origin.split_once("://")?;
    let default = match scheme {
        "http" | "ws" => 80,
        "https" | "wss" => 443,
        _ => return None,
    };
    let (name, port) = split_host(rest.trim_end_matches('/'))?;
    let port = port.unwrap_or(default);
    Some((name, port, port == default))
}

/// Whether a browser sent this request from cove's own origin (or it is not a browser's):
/// the name it used (`Host`, or a trusted proxy's `X-Forwarded-Host`) or one of
/// `--allowed-origin`. The refusal names the values that did not match.
pub(crate) fn check_origin(app: &AppState, request: &Request) -> Result<(), String> {
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
    let host = match app.proxies.forwarded_host(peer, request.headers()) {
        Some((forwarded, _)) => Some(forwarded),
        None => request_host(request),
    };
    let headers = request.headers();
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok())
        && app
            .allowed_origins
            .iter()
            .any(|allowed| same_origin(origin, allowed))
    {
        return Ok(());
    }
    check_same_origin(headers, host.as_deref())
}

/// Whether two origins are the same, default ports made explicit.
fn same_origin(a: &str, b: &str) -> bool {
    let scheme = |o: &str| o.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    let secure = |s: Option<String>| matches!(s.as_deref(), Some("https" | "wss"));
    match (origin_authority(a), origin_authority(b)) {
        (Some((na, pa, _)), Some((nb, pb, _))) => {
            na == nb && pa == pb && secure(scheme(a)) == secure(scheme(b))
        }
        _ => false,
    }
}

/// Whether a browser sent this request from cove's own origin (or it is not a browser's).
/// `host` is the request's `Host`. A `Host` without a port matches an origin on its scheme's
/// default port (behind a TLS-terminating proxy cove sees `http`, the browser `https`).
pub(crate) fn check_same_origin(headers: &HeaderMap, host: Option<&str>) -> Result<(), String> {
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("");
        if !matches!(site, "same-origin" | "none") {
            return Err(format!(
                "a request from another site ({site}) may not change anything here"
            ));
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("null");
    let ours = host.and_then(split_host);
    let same = match (origin_authority(origin), ours) {
        (Some((name, port, default)), Some((our_name, our_port))) => {
            name == our_name && our_port.map_or(default, |p| p == port)
        }
        _ => false,
    };
    if same {
        Ok(())
    } else {
        Err(format!(
            "Origin {origin} is not this server's ({})",
            host.unwrap_or("no Host")
        ))
    }
}

/// The `Host` of a request: the URI's authority (absolute-form requests) or the header.
pub(crate) fn request_host(request: &Request) -> Option<String> {
    if let Some(authority) = request.uri().authority() {
        return Some(authority.as_str().to_string());
    }
    request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Path-based previews carry the workspace's own pages and forms: their requests are the
/// workspace server's business, not cove's.
fn is_path_preview(path: &str) -> bool {
    let mut parts = path.trim_start_matches('/').splitn(4, '/');
    parts.next() == Some("w")
        && parts.next().is_some()
        && matches!(parts.next(), Some("proxy" | "absproxy"))
}

/// The content security policy of cove's own pages: scripts and styles only from cove (no
/// inline script), connections only back to cove, previews framed only from preview hosts.
fn page_policy(frame_sources: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; \
         frame-src {frame_sources}; worker-src 'self' blob:; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// The headers every answer of cove's own carries.
fn harden(headers: &mut HeaderMap, frame_sources: &str) {
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"));
    let policy = if html {
        page_policy(frame_sources)
    } else {
        // JSON, scripts, files: nothing here is ever a page.
        "default-src 'none'; frame-ancestors 'none'; sandbox".to_string()
    };
    if let Ok(value) = HeaderValue::from_str(&policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    // Other sites may not even embed cove's answers as images or scripts.
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
}

/// Errors written by libraries (axum's rejections: 413, 415, a bad path) are plain text;
/// clients of cove's API always get `{"error": {code, message}}`.
async fn json_errors(response: Response) -> Response {
    // Plain text, or nothing at all (axum's 405 has no body).
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|t| t.starts_with("text/plain"));
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match http_body_util::Limited::new(body, 16 * 1024)
        .collect()
        .await
    {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes())
            .trim()
            .to_string(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_string()
    } else {
        text
    };
    let error = RestError {
        error: cove_protocol::ErrorReply::new(
            ErrorCode::from_http_status(status.as_u16()),
            message,
        ),
    };
    let body = serde_json::to_vec(&error).unwrap_or_default();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// The middleware in front of every route; see the module docs.
pub(crate) async fn front_door(
    State(app): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let host = request_host(&request);
    match app.hosts.classify(host.as_deref()) {
        Destination::Refused => {
            let shown: String = host.unwrap_or_default().chars().take(100).collect();
            tracing::warn!(host = %shown, "refused a request for a host name cove does not serve");
            return ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "this server does not answer to the name {shown:?}; if it should, start it with --allowed-host {}",
                    split_host(&shown).map(|(n, _)| n).unwrap_or_default()
                ),
            )
            .with_status(StatusCode::MISDIRECTED_REQUEST)
            .into_response();
        }
        Destination::Preview { workspace, port } => {
            return crate::preview::serve_host(app, workspace, port, request).await;
        }
        Destination::Cove => {}
    }
    let path_preview = is_path_preview(request.uri().path());
    if changes_state(request.method())
        && !path_preview
        && let Err(why) = check_origin(&app, &request)
    {
        tracing::warn!(method = %request.method(), path = %request.uri().path(), "{why}");
        return ApiError::new(ErrorCode::Forbidden, why).into_response();
    }
    let response = next.run(request).await;
    if response.extensions().get::<FromWorkspace>().is_some() {
        return response;
    }
    let mut response = json_errors(response).await;
    let scheme = if app.tls { "https" } else { "http" };
    harden(response.headers_mut(), &app.hosts.frame_sources(scheme));
    response
}

/// Refuses cross-site WebSockets: a page on another origin (or a workspace's preview) must
/// not drive a workspace with the user's browser (cross-site WebSocket hijacking). Clients
/// without `Origin` are not browsers and pass; they authenticate on their own.
pub(crate) fn check_websocket_origin(app: &AppState, request: &Request) -> Result<(), ApiError> {
    if request.headers().get(header::ORIGIN).is_none() {
        return Ok(());
    }
    check_origin(app, request).map_err(|why| {
        tracing::warn!("refused a WebSocket: {why}");
        ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "cross-origin WebSocket refused: {why}; behind a reverse proxy, pass --trusted-proxy for it, or allow the page's origin with --allowed-origin"
            ),
        )
    })
}

#[cfg(test)]
mod tests;
