//! Signing in to preview hosts.
//!
//! A preview host (`{port}-{id}.localhost`) is its own origin, and cove's session cookie,
//! bound to cove's own host, never reaches it. So a person gets there through cove:
//!
//! 1. The IDE links `/w/{id}/open/{port}?path=/x`, a route of cove's that needs a caller like
//!    any other (signed out, a page is sent to sign in and back). It makes a one-time ticket,
//!    valid for a minute, tied to the workspace, the port and the caller's own credential, and
//!    redirects to `{port}-{id}.localhost/.cove/preview-signin?ticket=…&next=/x`.
//! 2. There the ticket becomes a pass: an `HttpOnly` cookie of that host alone, and the
//!    browser is sent on to `/x`. A preview host without a pass sends a person's browser the
//!    other way, to the open route, so a link to a preview works for whoever may see it.
//! 3. Every request with a pass checks the credential behind it again (and the workspace
//!    access, as every preview request does): signing out, revoking the session or token,
//!    disabling the user or removing the share ends the pass at once.
//!
//! Tickets and passes are kept in memory as hashes and never reach the workspace's server;
//! a restart forgets them, which costs a person one more redirect through cove. Scripts may
//! send `Authorization: Bearer` to a preview host instead.

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::problem;
use crate::AppState;
use crate::accounts::{Auth, Caller, Proof, SESSION_COOKIE, hash_secret, new_secret};
use crate::auth::{OverTls, cookie};
use crate::error::ApiError;
use crate::perimeter::parse_port;

/// The pass's cookie on a preview host.
pub(crate) const PREVIEW_COOKIE: &str = "cove_preview";
/// Where a preview host turns a ticket into a pass (shadows the app's own path of that name).
const SIGNIN_PATH: &str = "/.cove/preview-signin";
/// A ticket is used at once by the redirect that carries it.
const TICKET_LIFETIME: Duration = Duration::from_secs(60);
/// A pass ends after this long even while its credential lives; the next page load goes
/// through cove again.
const PASS_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Bounds on what is kept, so that no caller can grow it without limit.
const MAX_TICKETS: usize = 10_000;
const MAX_PASSES: usize = 100_000;

/// What a ticket or a pass lets in: one port of one workspace, as whoever made it.
#[derive(Debug, Clone)]
struct Entry {
    workspace: String,
    port: u16,
    proof: Proof,
    expires: Instant,
    /// Who asked for the ticket: only the same address may redeem it (a ticket read by the
    /// preview's own code, a service worker say, is no use elsewhere).
    address: IpAddr,
}

/// Tickets (one-time, from the open route) and passes (cookies of preview hosts), by hash.
#[derive(Debug, Default)]
pub(crate) struct PreviewPasses {
    tickets: Mutex<HashMap<String, Entry>>,
    passes: Mutex<HashMap<String, Entry>>,
}

/// Adds `entry` under a new secret's hash; `None` when full even after dropping the expired.
fn insert(map: &Mutex<HashMap<String, Entry>>, max: usize, entry: Entry) -> Option<String> {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    if map.len() >= max {
        let now = Instant::now();
        map.retain(|_, e| e.expires > now);
        if map.len() >= max {
            return None;
        }
    }
    let secret = new_secret();
    map.insert(hash_secret(&secret), entry);
    Some(secret)
}

impl PreviewPasses {
    fn issue_ticket(
        &self,
        workspace: &str,
        port: u16,
        proof: Proof,
        address: IpAddr,
    ) -> Option<String> {
        let entry = Entry {
            workspace: workspace.to_string(),
            port,
            proof,
            expires: Instant::now() + TICKET_LIFETIME,
            address,
        };
        insert(&self.tickets, MAX_TICKETS, entry)
    }

    /// Uses up `ticket` and makes a pass from it, if it is live and meant for this host.
    fn redeem(&self, ticket: &str, workspace: &str, port: u16, address: IpAddr) -> Option<String> {
        let entry = self
            .tickets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&hash_secret(ticket))?;
        if entry.expires <= Instant::now()
            || entry.workspace != workspace
            || entry.port != port
            || entry.address != address
        {
            return None;
        }
        insert(
            &self.passes,
            MAX_PASSES,
            Entry {
                expires: Instant::now() + PASS_LIFETIME,
                ..entry
            },
        )
    }

    /// The credential behind `pass`, if it is live and meant for this host.
    fn proof_of(&self, pass: &str, workspace: &str, port: u16) -> Option<Proof> {
        let mut passes = self.passes.lock().unwrap_or_else(|e| e.into_inner());
        let key = hash_secret(pass);
        let entry = passes.get(&key)?;
        if entry.expires <= Instant::now() {
            passes.remove(&key);
            return None;
        }
        (entry.workspace == workspace && entry.port == port).then(|| entry.proof.clone())
    }

    fn forget(&self, pass: &str) {
        self.passes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&hash_secret(pass));
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct OpenQuery {
    path: Option<String>,
}

/// A path to send a browser on to within one host: absolute, not `//other-host`, printable.
fn local_path(path: &str) -> Option<&str> {
    (path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && !path.chars().any(char::is_control))
    .then_some(path)
}

fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /w/{id}/open/{port}?path=/x`: sends the caller to the preview of that port, on its
/// own host when there is one for the name they reached cove by, signed in there.
pub(crate) async fn open(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    Path((id, port)): Path<(String, String)>,
    Query(query): Query<OpenQuery>,
    request: Request,
) -> Response {
    let Some(port) = parse_port(&port) else {
        return ApiError::bad_request(format!(
            "{port:?} is not a port number (1-65535, decimal digits only)"
        ))
        .into_response();
    };
    let path = query.path.as_deref().unwrap_or("/");
    let Some(path) = local_path(path) else {
        return ApiError::bad_request("`path` must be a path on the preview, starting with /")
            .into_response();
    };
    let workspace = match app.manager.find(&caller, &id).await {
        Ok(found) => found.row.id,
        Err(e) => return e.into_response(),
    };
    let tls = request.extensions().get::<OverTls>().is_some_and(|t| t.0);
    let scheme = if tls || app.tls { "https" } else { "http" };
    let host = crate::perimeter::request_host(&request).unwrap_or_default();
    let Some(template) = app.hosts.preview_template(scheme, &host) else {
        // No preview host for the name the caller used: the path preview, under cove's own.
        return see_other(&format!("/w/{workspace}/proxy/{port}{path}"));
    };
    let base = template
        .replace("{port}", &port.to_string())
        .replace("{id}", &workspace);
    let base = base.trim_end_matches('/');
    if *app.accounts.auth() == Auth::None {
        return see_other(&format!("{base}{path}"));
    }
    let headers = request.headers();
    let Some(proof) = Proof::of(
        cookie(headers, SESSION_COOKIE).as_deref(),
        crate::auth::bearer(headers).as_deref(),
    ) else {
        return ApiError::new(cove_protocol::ErrorCode::Unauthorized, "sign in first")
            .into_response();
    };
    let Some(ticket) = app
        .previews
        .issue_ticket(&workspace, port, proof, caller.address)
    else {
        return ApiError::unavailable("too many preview sign-ins at once; try again")
            .with_retry_after(1)
            .into_response();
    };
    see_other(&format!(
        "{base}{SIGNIN_PATH}?ticket={ticket}&next={}",
        crate::auth::encode_component(path)
    ))
}

/// What [`admit`] looks at of a request (the request itself is not `Sync`).
pub(crate) struct Asked {
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    host: Option<String>,
    /// Whether the browser reached this host over TLS (cove's own, or a trusted proxy's).
    tls: bool,
}

impl Asked {
    pub(crate) fn of(request: &Request, tls: bool) -> Asked {
        Asked {
            method: request.method().clone(),
            uri: request.uri().clone(),
            headers: request.headers().clone(),
            host: crate::perimeter::request_host(request),
            tls,
        }
    }
}

/// Who calls a preview host with sign-in on, or the answer that sends them to sign in.
pub(crate) async fn admit(
    app: &AppState,
    workspace: &str,
    port: u16,
    request: Asked,
    address: IpAddr,
) -> Result<Caller, Response> {
    let headers = &request.headers;
    if request.uri.path() == SIGNIN_PATH {
        return Err(redeem(app, workspace, port, &request, address));
    }
    if let Some(token) = crate::auth::bearer(headers) {
        return match app.accounts.authenticate(None, Some(&token), address).await {
            Ok(Some(caller)) => Ok(caller),
            Ok(None) => Err(ApiError::new(
                cove_protocol::ErrorCode::Unauthorized,
                "this token is not valid (revoked, expired, or its user is disabled)",
            )
            .into_response()),
            Err(e) => Err(e.into_response()),
        };
    }
    if let Some(pass) = cookie(headers, PREVIEW_COOKIE)
        && let Some(proof) = app.previews.proof_of(&pass, workspace, port)
    {
        match app.accounts.authenticate_proof(&proof, address).await {
            Ok(Some(caller)) => return Ok(caller),
            Ok(None) => app.previews.forget(&pass),
            Err(e) => return Err(e.into_response()),
        }
    }
    Err(to_sign_in(app, workspace, port, &request))
}

/// `GET /.cove/preview-signin?ticket=…&next=/x` on a preview host.
fn redeem(
    app: &AppState,
    workspace: &str,
    port: u16,
    request: &Asked,
    address: IpAddr,
) -> Response {
    #[derive(Deserialize)]
    struct Signin {
        ticket: String,
        next: Option<String>,
    }
    let headers = &request.headers;
    let query = request.uri.query().unwrap_or("");
    let Ok(signin) = serde_urlencoded::from_str::<Signin>(query) else {
        return problem(
            headers,
            StatusCode::BAD_REQUEST,
            "This is not a preview link",
            "Open the preview from cove's IDE.",
        );
    };
    if request.method != Method::GET {
        return problem(
            headers,
            StatusCode::METHOD_NOT_ALLOWED,
            "Not here",
            "Signing in to a preview is a GET from cove's link.",
        );
    }
    let Some(pass) = app
        .previews
        .redeem(&signin.ticket, workspace, port, address)
    else {
        return problem(
            headers,
            StatusCode::FORBIDDEN,
            "This preview link has expired",
            "Preview links from cove work once, within a minute. Open the preview again from cove.",
        );
    };
    let next = signin.next.as_deref().and_then(local_path).unwrap_or("/");
    let mut response = see_other(next);
    let secure = if request.tls { "; Secure" } else { "" };
    if let Ok(value) = HeaderValue::from_str(&format!(
        "{PREVIEW_COOKIE}={pass}; Path=/; HttpOnly; SameSite=Lax{secure}"
    )) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// A caller without a pass: a person's page load goes to cove to sign in (and comes back);
/// anything else is told why.
fn to_sign_in(app: &AppState, workspace: &str, port: u16, request: &Asked) -> Response {
    let headers = &request.headers;
    let cove = request
        .host
        .as_deref()
        .and_then(|host| app.hosts.cove_host_of_preview(host));
    if is_page_load(&request.method, headers)
        && let Some(cove) = cove
    {
        let scheme = if request.tls { "https" } else { "http" };
        let path = request.uri.path_and_query().map_or("/", |p| p.as_str());
        return see_other(&format!(
            "{scheme}://{cove}/w/{workspace}/open/{port}?path={}",
            crate::auth::encode_component(path)
        ));
    }
    problem(
        headers,
        StatusCode::UNAUTHORIZED,
        "Sign in to see this preview",
        "This page belongs to a cove workspace. Sign in to cove and open the preview from there.",
    )
}

/// A browser loading a page (not a script's fetch or a socket).
fn is_page_load(method: &Method, headers: &HeaderMap) -> bool {
    *method == Method::GET
        && headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"))
        && !headers.contains_key(header::UPGRADE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proof() -> Proof {
        Proof::Session("hash".into())
    }

    const HERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn a_ticket_works_once_for_its_own_host() {
        let passes = PreviewPasses::default();
        let ticket = passes.issue_ticket("w1", 3000, proof(), HERE).unwrap();
        assert!(
            passes.redeem(&ticket, "w2", 3000, HERE).is_none(),
            "another host"
        );
        let ticket = passes.issue_ticket("w1", 3000, proof(), HERE).unwrap();
        assert!(
            passes.redeem(&ticket, "w1", 3001, HERE).is_none(),
            "another port"
        );
        let ticket = passes.issue_ticket("w1", 3000, proof(), HERE).unwrap();
        let pass = passes.redeem(&ticket, "w1", 3000, HERE).unwrap();
        assert!(
            passes.redeem(&ticket, "w1", 3000, HERE).is_none(),
            "used up"
        );
        let ticket = passes.issue_ticket("w1", 3000, proof(), HERE).unwrap();
        let elsewhere = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
        assert!(
            passes.redeem(&ticket, "w1", 3000, elsewhere).is_none(),
            "another address"
        );
        assert_eq!(passes.proof_of(&pass, "w1", 3000), Some(proof()));
        assert_eq!(passes.proof_of(&pass, "w1", 3001), None);
        assert_eq!(
            passes.proof_of(&ticket, "w1", 3000),
            None,
            "a ticket is no pass"
        );
        passes.forget(&pass);
        assert_eq!(passes.proof_of(&pass, "w1", 3000), None);
    }

    #[test]
    fn only_local_paths_are_followed() {
        for good in ["/", "/a/b?c=1", "/%2F%2Fx"] {
            assert_eq!(local_path(good), Some(good));
        }
        for bad in [
            "",
            "x",
            "//evil.example",
            "/\\evil",
            "https://evil",
            "/a\nb",
        ] {
            assert_eq!(local_path(bad), None, "{bad:?}");
        }
    }
}
