//! Port preview: a workspace's own web server, shown to people.
//!
//! - Host-based, the default: `{port}-{workspaceId}.localhost` (every browser resolves
//!   `*.localhost` to loopback) or `{port}-{workspaceId}.{--preview-domain}`. Each preview is
//!   its own origin, so root-absolute URLs (`/style.css`, `fetch('/api/x')`) reach the app,
//!   and nothing the page does runs with cove's origin.
//! - Path-based, for apps that know their base path and for a cove reached by a public name
//!   without a preview domain: `/w/{id}/proxy/{port}/...` (prefix stripped, like
//!   code-server's `/proxy/`) and `/w/{id}/absproxy/{port}/...` (prefix kept). These share
//!   cove's origin in the address bar, so every answer carries a CSP `sandbox` without
//!   `allow-same-origin`: the page runs with an opaque origin and cannot read cove's answers,
//!   open its sockets as same-origin, or register a service worker over cove's pages.
//!
//! Both relay through the runner's `/ports/{port}/...`, HTTP and WebSocket alike. A dev
//! server is code the workspace runs, so it is treated as untrusted: cove's session cookie
//! and `Authorization` header never reach it, and it cannot set cove's cookie. A preview
//! never starts a stopped workspace (a request from any page could otherwise start one).
//!
//! Who may look: every preview needs a caller (a preview link sent to someone who is not
//! signed in shows nothing), and one with view access may only load pages (GET, HEAD). Path
//! previews are cove's routes and see cove's session; a preview host is another origin that
//! cove's cookie does not reach, and is signed in to through cove (`signin.rs`).

mod signin;

pub(crate) use signin::{PreviewPasses, open};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use hyper_util::rt::TokioIo;
use std::sync::Arc;

use crate::AppState;
use crate::accounts::{Auth, Caller, ConnectionKind, SESSION_COOKIE};
use crate::error::ApiError;
use crate::perimeter::{FromWorkspace, parse_port};
use signin::PREVIEW_COOKIE;

/// The sandbox of path-based previews: scripts, forms and popups work; the origin is opaque.
const PATH_PREVIEW_POLICY: &str = "sandbox allow-scripts allow-forms allow-popups allow-popups-to-escape-sandbox allow-modals allow-downloads";

fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONNECTION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        })
}

/// Removes cove's credentials (and a preview host's pass) from a request bound for a workspace's own server.
fn strip_credentials(headers: &mut HeaderMap) {
    headers.remove(header::AUTHORIZATION);
    let kept: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|c| {
            let name = c.split('=').next().map(str::trim);
            !c.is_empty() && name != Some(SESSION_COOKIE) && name != Some(PREVIEW_COOKIE)
        })
        .map(str::to_string)
        .collect();
    headers.remove(header::COOKIE);
    if !kept.is_empty()
        && let Ok(value) = HeaderValue::from_str(&kept.join("; "))
    {
        headers.insert(header::COOKIE, value);
    }
}

/// Drops `Set-Cookie` headers that could set cove's own session cookie (or a preview pass): named so, and also
/// nameless ones (`=cove_session=...`), which browsers store with an empty name and send
/// back as `cove_session=...`. Whatever mentions the name in its name and value goes.
fn strip_session_cookies(headers: &mut HeaderMap) {
    let kept: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter(|v| {
            let Ok(text) = v.to_str() else {
                return false;
            };
            let pair = text.split(';').next().unwrap_or("");
            let name = pair.split_once('=').map_or("", |(n, _)| n).trim();
            let pair = pair.to_ascii_lowercase();
            !name.is_empty() && !pair.contains(SESSION_COOKIE) && !pair.contains(PREVIEW_COOKIE)
        })
        .cloned()
        .collect();
    headers.remove(header::SET_COOKIE);
    for value in kept {
        headers.append(header::SET_COOKIE, value);
    }
}

/// Which kind of preview a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Its own origin: the workspace's answers pass as they are.
    Host,
    /// Under cove's origin: sandboxed, no service workers.
    Path,
}

/// A readable page for a person (or the JSON error shape for a script).
fn problem(headers: &HeaderMap, status: StatusCode, title: &str, detail: &str) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let mut response = if wants_html {
        let page = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><meta name=\"color-scheme\" content=\"light dark\"><title>{title}</title>\
             <style>body{{font:15px/1.5 system-ui,sans-serif;max-width:36rem;margin:12vh auto;padding:0 1.5rem}}h1{{font-size:1.3rem}}p{{color:#666}}</style></head>\
             <body><h1>{title}</h1><p>{detail}</p></body></html>",
            title = html_escape(title),
            detail = html_escape(detail),
        );
        let mut r = (status, page).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        r
    } else {
        let code = match status {
            StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE => {
                cove_protocol::ErrorCode::Unavailable
            }
            other => cove_protocol::ErrorCode::from_http_status(other.as_u16()),
        };
        ApiError::new(code, format!("{title}. {detail}"))
            .with_status(status)
            .into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.extensions_mut().insert(FromWorkspace);
    response
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The preview host `{port}-{workspace}.…`: everything on it goes to the workspace's port.
pub(crate) async fn serve_host(
    app: Arc<AppState>,
    workspace: String,
    port: u16,
    request: Request,
) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let peer = peer_of(&request);
    let address = app.proxies.client_address(peer, request.headers());
    // A page of another site (another workspace's preview, with `--preview-domain` a
    // same-site one) may load this preview, never send to it or open its sockets.
    if let Err(why) = same_workspace_origin(&app, &workspace, &request) {
        return problem(request.headers(), StatusCode::FORBIDDEN, "Refused", &why);
    }
    let caller = match app.accounts.auth() {
        Auth::None => match app.accounts.open_caller(address).await {
            Ok(caller) => caller,
            Err(e) => return e.into_response(),
        },
        Auth::Password => {
            let tls = app.tls
                || app
                    .proxies
                    .forwarded_host(peer, request.headers())
                    .and_then(|(_, proto)| proto)
                    .is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
            let asked = signin::Asked::of(&request, tls);
            match signin::admit(&app, &workspace, port, asked, address).await {
                Ok(caller) => caller,
                Err(answer) => return answer,
            }
        }
    };
    relay(app, caller, &workspace, port, target, request, Kind::Host).await
}

/// For a request that sends to a preview host (anything but GET and HEAD, and every
/// WebSocket): an `Origin`, when there is one, must be a preview host of the same workspace
/// (its other ports included, for a front end that calls its own back end).
fn same_workspace_origin(app: &AppState, workspace: &str, request: &Request) -> Result<(), String> {
    let sends = wants_upgrade(request.headers())
        || !matches!(*request.method(), Method::GET | Method::HEAD);
    let Some(origin) = request.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    if !sends {
        return Ok(());
    }
    let origin = origin.to_str().unwrap_or("null");
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    match authority.map(|a| app.hosts.classify(Some(a))) {
        Some(crate::perimeter::Destination::Preview { workspace: w, .. }) if w == workspace => {
            Ok(())
        }
        _ => Err(format!(
            "a page from {origin:?} may not send requests or open sockets to this preview"
        )),
    }
}

fn peer_of(request: &Request) -> std::net::IpAddr {
    request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(std::net::IpAddr::from([127, 0, 0, 1]), |c| c.0.ip())
}

/// Whether `path` is `/w/{id}/open/{port}`, the IDE's link to a preview: a page load that
/// sends a signed-out person to sign in first.
pub(crate) fn is_open_route(path: &str) -> bool {
    split_path_preview(path).is_some_and(|(_, kind, _, tail)| kind == "open" && tail.is_empty())
}

/// `/w/{id}/proxy/{port}` or `/absproxy/` without a slash: relative links need one.
pub(crate) async fn add_slash(request: Request) -> Response {
    let uri = request.uri();
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    Redirect::permanent(&format!("{}/{query}", uri.path())).into_response()
}

/// The raw (still percent-encoded) segments `/w/{id}/{kind}/{port}` of a path-based preview
/// and everything after them: taken from the URI as sent, so that `%38000` is not a port
/// and the forwarded path is exactly what the client asked for.
fn split_path_preview(path_and_query: &str) -> Option<(&str, &str, &str, &str)> {
    let rest = path_and_query.strip_prefix("/w/")?;
    let (id, rest) = rest.split_once('/')?;
    let (kind, rest) = rest.split_once('/')?;
    let (port, tail) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    Some((id, kind, port, tail))
}

/// `/w/{id}/proxy/{port}/...` and `/w/{id}/absproxy/{port}/...`.
pub(crate) async fn path_preview(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    request: Request,
) -> Response {
    let original = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let Some((id, kind, port_text, tail)) = split_path_preview(&original) else {
        return ApiError::not_found("no such route").into_response();
    };
    let Some(port) = parse_port(port_text) else {
        return ApiError::bad_request(format!(
            "{port_text:?} is not a port number (1-65535, decimal digits only)"
        ))
        .into_response();
    };
    let id = match percent_decode(id) {
        Some(id) => id,
        None => return ApiError::bad_request("bad workspace name in the path").into_response(),
    };
    let target = if kind == "absproxy" {
        original.clone()
    } else if tail.starts_with('/') {
        tail.to_string()
    } else {
        format!("/{tail}")
    };
    relay(app, caller, &id, port, target, request, Kind::Path).await
}

/// `%XX` escapes of a path segment, as UTF-8.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

async fn relay(
    app: Arc<AppState>,
    caller: Caller,
    workspace: &str,
    port: u16,
    target: String,
    mut request: Request,
    kind: Kind,
) -> Response {
    let headers = request.headers().clone();
    // A page under cove's origin must never install a service worker: it would go on
    // answering for cove's own pages after the workspace is gone.
    if kind == Kind::Path && headers.contains_key("service-worker") {
        return problem(
            &headers,
            StatusCode::FORBIDDEN,
            "Service workers are not allowed here",
            "A path-based preview shares cove's address, so it may not install a service worker. Open the preview on its own host instead.",
        );
    }
    let upgrade = wants_upgrade(&headers);
    if upgrade
        && kind == Kind::Path
        && let Err(e) = crate::perimeter::check_websocket_origin(&app, &request)
    {
        return e.into_response();
    }
    let found = match app.manager.find(&caller, workspace).await {
        // Someone who may only view a workspace may look at its pages, never send to them.
        Ok(found)
            if !found.access.can_edit()
                && (upgrade || !matches!(*request.method(), Method::GET | Method::HEAD)) =>
        {
            return problem(
                &headers,
                StatusCode::FORBIDDEN,
                "You may only view this workspace",
                "Its owner shared it with you to view: pages can be loaded, but nothing can be sent to them.",
            );
        }
        Ok(found) => found,
        Err(_) => {
            return problem(
                &headers,
                StatusCode::NOT_FOUND,
                "No such workspace",
                "This preview belongs to a workspace that does not exist (or that you may not see).",
            );
        }
    };
    let (row, access) = (found.row, found.access);
    if !app.manager.is_running(&row).await {
        return problem(
            &headers,
            StatusCode::SERVICE_UNAVAILABLE,
            "This workspace is stopped",
            &format!(
                "Open the workspace \u{201c}{}\u{201d} in cove to start it, then reload this page.",
                row.name
            ),
        );
    }
    let forwarded_host = crate::perimeter::request_host(&request);
    let client_upgrade = if upgrade {
        request
            .extensions_mut()
            .remove::<hyper::upgrade::OnUpgrade>()
    } else {
        None
    };
    let (mut parts, body) = request.into_parts();
    strip_credentials(&mut parts.headers);
    // The app sees the name the browser used (dev servers check it), not the runner's.
    if let Some(host) = forwarded_host.and_then(|h| HeaderValue::from_str(&h).ok()) {
        parts.headers.insert("x-forwarded-host", host);
    }
    let proto = if app.tls { "https" } else { "http" };
    parts
        .headers
        .insert("x-forwarded-proto", HeaderValue::from_static(proto));
    parts.uri = match format!("/ports/{port}{target}").parse() {
        Ok(uri) => uri,
        Err(_) => return ApiError::bad_request("bad preview path").into_response(),
    };
    let forwarded = hyper::Request::from_parts(parts, body);
    let mut response = match app.manager.link().request(&row.id, forwarded).await {
        Ok(response) => response,
        Err(e) => {
            tracing::warn!(workspace = %row.id, error = %e, "preview: cannot reach the runner");
            return problem(
                &headers,
                StatusCode::BAD_GATEWAY,
                "Cannot reach the workspace",
                "The workspace did not answer. Try again in a moment.",
            );
        }
    };
    if response.status() == StatusCode::BAD_GATEWAY
        && response.headers().get("x-cove-port-closed").is_some()
    {
        return problem(
            &headers,
            StatusCode::BAD_GATEWAY,
            &format!("Nothing is listening on port {port}"),
            &format!(
                "Start a server on port {port} in the workspace \u{201c}{}\u{201d} (bound to 127.0.0.1 or 0.0.0.0), then reload this page.",
                row.name
            ),
        );
    }
    if response.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client_upgrade) = client_upgrade
    {
        let runner_upgrade = hyper::upgrade::on(&mut response);
        // Registered like every socket, so that sign-out, revocation or a lost share ends it.
        let registered = match app.accounts.open_connection(
            &caller,
            Some((&row.id, access)),
            ConnectionKind::Preview,
            &app.shutdown,
        ) {
            Ok(registered) => registered,
            Err(e) => return e.into_response(),
        };
        app.tasks.spawn(async move {
            if let (Ok(client), Ok(runner)) = (client_upgrade.await, runner_upgrade.await) {
                let (mut client, mut runner) = (TokioIo::new(client), TokioIo::new(runner));
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut runner) => {}
                    _ = registered.closed.cancelled() => {}
                }
            }
        });
    }
    let (mut parts, body) = response.into_parts();
    strip_session_cookies(&mut parts.headers);
    if kind == Kind::Path {
        parts.headers.remove("service-worker-allowed");
        parts.headers.append(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PATH_PREVIEW_POLICY),
        );
    }
    parts.extensions.insert(FromWorkspace);
    Response::from_parts(parts, Body::new(body))
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
            HeaderValue::from_static(
                "theme=dark; cove_session=abc; csrftoken=x; cove_preview=pass",
            ),
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
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_static("cove_preview=planted; Path=/"),
        );
        headers.append(header::SET_COOKIE, HeaderValue::from_static("app=1"));
        // Nameless cookies come back from browsers as `cove_session=...`.
        for hostile in [
            "=cove_session=evil; Path=/api",
            "=evil; Path=/",
            "x=cove_session=evil",
        ] {
            headers.append(header::SET_COOKIE, HeaderValue::from_static(hostile));
        }
        strip_session_cookies(&mut headers);
        let kept: Vec<_> = headers.get_all(header::SET_COOKIE).iter().collect();
        assert_eq!(kept, ["app=1"]);
    }

    #[test]
    fn path_previews_split_on_the_raw_path() {
        assert_eq!(
            split_path_preview("/w/demo/proxy/8000/a/b?q=1"),
            Some(("demo", "proxy", "8000", "/a/b?q=1"))
        );
        assert_eq!(
            split_path_preview("/w/demo/proxy/8000?q=1"),
            Some(("demo", "proxy", "8000", "?q=1"))
        );
        assert_eq!(
            split_path_preview("/w/my%20app/absproxy/%38000/"),
            Some(("my%20app", "absproxy", "%38000", "/"))
        );
        assert_eq!(percent_decode("my%20app").as_deref(), Some("my app"));
        assert_eq!(percent_decode("bad%2"), None);
    }
}
