//! REST routes of docs/PROTOCOL.md section 0 (workspaces and files); the sockets of sections
//! 1 to 3 are in `api/sockets.rs`, the account routes of section 7 in `api/accounts.rs`.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cove_protocol::ErrorCode;
use cove_protocol::accounts::Outcome;
use cove_protocol::rest::{CreateWorkspace, ServerInfo, UpdateWorkspace};
use std::sync::Arc;

use crate::AppState;
use crate::accounts::{Auth, Caller};
use crate::db::WorkspaceRow;
use crate::error::ApiError;

mod accounts;
mod ide;
mod sockets;
mod templates;

pub(crate) use accounts::*;
pub(crate) use ide::*;
pub(crate) use sockets::*;
pub(crate) use templates::*;

type Shared = State<Arc<AppState>>;

/// Parses a JSON request body. A body must say it is JSON: a form or `text/plain` body is
/// what another site can make a browser send without asking, so it is refused (415).
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::bad_request(format!(
            "the body must be JSON with Content-Type: application/json (got {:?})",
            if content_type.is_empty() {
                "none"
            } else {
                content_type
            }
        ))
        .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
    // serde reads a struct from an array too (`["a", "b"]` fills its fields in order):
    // every body of this API is an object, and anything else is a mistake to name.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

pub(crate) async fn create_workspace(
    State(app): Shared,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: CreateWorkspace = parse_json(&headers, &body)?;
    let limits = request.limits.unwrap_or_default();
    let view = app
        .manager
        .create(&caller, &request.name, request.template.as_deref(), limits)
        .await?;
    app.accounts
        .audit(
            &caller,
            "workspace.create",
            &view.id,
            Outcome::Success,
            &view.name,
        )
        .await;
    Ok((StatusCode::CREATED, axum::Json(view)).into_response())
}

pub(crate) async fn list_workspaces(
    State(app): Shared,
    caller: Caller,
) -> Result<Response, ApiError> {
    Ok(axum::Json(app.manager.list(&caller).await?).into_response())
}

pub(crate) async fn get_workspace(
    State(app): Shared,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    current_view(&app, &caller, &id).await
}

/// The workspace as the API shows it now (state read after whatever the handler did).
async fn current_view(app: &AppState, caller: &Caller, id: &str) -> Result<Response, ApiError> {
    let found = app.manager.find(caller, id).await?;
    Ok(axum::Json(app.manager.view_for(found).await).into_response())
}

/// `PATCH /api/workspaces/{id}`: keep it running with nobody connected, or not.
pub(crate) async fn update_workspace(
    State(app): Shared,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let change: UpdateWorkspace = parse_json(&headers, &body)?;
    let found = app.manager.find(&caller, &id).await?;
    found.require_edit()?;
    if let Some(keep) = change.keep_running {
        app.manager.set_keep_running(&found.row, keep).await?;
        let detail = format!(
            "{}: keep running {}",
            found.row.name,
            if keep { "on" } else { "off" }
        );
        app.accounts
            .audit(
                &caller,
                "workspace.update",
                &found.row.id,
                Outcome::Success,
                &detail,
            )
            .await;
    }
    current_view(&app, &caller, &id).await
}

pub(crate) async fn start_workspace(
    State(app): Shared,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let found = app.manager.find(&caller, &id).await?;
    found.require_edit()?;
    start(&app, &caller, &found.row).await?;
    current_view(&app, &caller, &id).await
}

/// Starts a workspace if it is not running, and audits the start when it happened.
pub(crate) async fn start(
    app: &AppState,
    caller: &Caller,
    row: &WorkspaceRow,
) -> Result<(), ApiError> {
    if app.manager.ensure_running(row).await? {
        audit_workspace(app, caller, "workspace.start", row).await;
    }
    Ok(())
}

/// An audit row of a successful action on a workspace: its id, and its name as detail.
async fn audit_workspace(app: &AppState, caller: &Caller, action: &str, row: &WorkspaceRow) {
    app.accounts
        .audit(caller, action, &row.id, Outcome::Success, &row.name)
        .await;
}

pub(crate) async fn stop_workspace(
    State(app): Shared,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let found = app.manager.find(&caller, &id).await?;
    found.require_edit()?;
    app.manager.stop(&found.row, &caller.user.username).await?;
    audit_workspace(&app, &caller, "workspace.stop", &found.row).await;
    current_view(&app, &caller, &id).await
}

/// `POST /api/workspaces/{id}/hibernate`: snapshot to the object store, then free the disk.
pub(crate) async fn hibernate_workspace(
    State(app): Shared,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let found = app.manager.find(&caller, &id).await?;
    found.require_edit()?;
    app.manager
        .hibernate(&found.row, &caller.user.username)
        .await?;
    audit_workspace(&app, &caller, "workspace.hibernate", &found.row).await;
    current_view(&app, &caller, &id).await
}

pub(crate) async fn delete_workspace(
    State(app): Shared,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let found = app.manager.find(&caller, &id).await?;
    found.require_owner()?;
    app.manager.delete(&found.row).await?;
    audit_workspace(&app, &caller, "workspace.delete", &found.row).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/info`: what the IDE needs to know about this server: its version and where
/// the previews of workspaces' ports live, as seen from the name the client used.
pub(crate) async fn info(State(app): Shared, request: Request) -> Response {
    let host = crate::perimeter::request_host(&request).unwrap_or_default();
    let scheme = if app.tls { "https" } else { "http" };
    // With sign-in on, a preview host is signed in to through `/w/{id}/open/{port}`.
    let template = app.hosts.preview_template(scheme, &host);
    axum::Json(ServerInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        preview_url_template: template,
        auth: match app.accounts.auth() {
            Auth::None => "none",
            Auth::Password => "password",
        }
        .to_string(),
    })
    .into_response()
}

/// `/api/workspaces/{id}/files` and `/files/`: the workspace's root (a listing).
pub(crate) async fn files_root(
    State(app): Shared,
    caller: Caller,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    forward_file(app, &caller, &id, "", request).await
}

/// `/api/workspaces/{id}/files/{path}`: forwarded to the runner, bodies streamed.
pub(crate) async fn files(
    State(app): Shared,
    caller: Caller,
    Path((id, path)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    forward_file(app, &caller, &id, &path, request).await
}

async fn forward_file(
    app: Arc<AppState>,
    caller: &Caller,
    id: &str,
    path: &str,
    request: Request,
) -> Result<Response, ApiError> {
    let found = app.manager.find(caller, id).await?;
    let row = &found.row;
    // Reading never starts a workspace (any page can make a browser send a GET); writing
    // does, having passed the same-origin check that guards every change.
    if request.method() == axum::http::Method::GET || request.method() == axum::http::Method::HEAD {
        if !app.manager.is_running(row).await {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "workspace {:?} is stopped; start it first (POST /api/workspaces/{}/start)",
                    row.name, row.id
                ),
            ));
        }
    } else {
        found.require_edit()?;
        start(&app, caller, row).await?;
    }
    let query = request
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let target = format!("/files/{}{query}", crate::link::encode_path(path));
    let (parts, body) = request.into_parts();
    // Refused here, before a byte reaches the runner: a body the runner would refuse
    // mid-upload ends as a reset connection the client cannot read.
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = declared.filter(|l| *l > app.max_file_bytes) {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!(
                "the file is {length} bytes; files up to {} bytes are written whole",
                app.max_file_bytes
            ),
        ));
    }
    let mut forwarded = hyper::Request::builder().method(parts.method).uri(target);
    for name in [
        header::CONTENT_TYPE,
        header::CONTENT_LENGTH,
        header::IF_MATCH,
    ] {
        if let Some(value) = parts.headers.get(&name) {
            forwarded = forwarded.header(name, value);
        }
    }
    // A body without a declared length is counted on its way through and cut past the limit.
    // Which side notices first (this cut, or the runner's own limit) is a race; the answer is
    // 413 either way, never the broken connection to the runner that the cut leaves behind.
    let limit = app.max_file_bytes;
    let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let counted = {
        let cut = cut.clone();
        let mut seen = 0u64;
        futures_util::StreamExt::map(body.into_data_stream(), move |chunk| {
            let chunk = chunk?;
            seen += chunk.len() as u64;
            if seen > limit {
                cut.store(true, std::sync::atomic::Ordering::Relaxed);
                return Err(axum::Error::new(std::io::Error::other(
                    "the file is larger than the limit",
                )));
            }
            Ok(chunk)
        })
    };
    let forwarded = forwarded
        .body(Body::from_stream(counted))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let answered = app.manager.link().request(&row.id, forwarded).await;
    let runner_refused = matches!(&answered, Ok(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE);
    if cut.load(std::sync::atomic::Ordering::Relaxed) && !runner_refused {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!("files up to {limit} bytes are written whole"),
        ));
    }
    let (parts, body) = answered?.into_parts();
    Ok(Response::from_parts(parts, Body::new(body)))
}
