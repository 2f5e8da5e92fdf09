//! REST routes of docs/PROTOCOL.md section 0 and the socket routes of sections 1, 2 and 3.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cove_protocol::rest::{CreateWorkspace, ServerInfo};
use cove_protocol::{ErrorCode, ErrorReply, Event, ServerMessage, Status, StatusState};
use hyper_util::rt::TokioIo;
use std::sync::Arc;

use crate::error::ApiError;
use crate::relay::{self, Gauge};
use crate::{AppState, templates};

type Shared = State<Arc<AppState>>;

/// Parses a JSON request body. A body must say it is JSON: a form or `text/plain` body is
/// what another site can make a browser send without asking, so it is refused (415).
fn parse_json<T: serde::de::DeserializeOwned>(
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
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

pub(crate) async fn create_workspace(
    State(app): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: CreateWorkspace = parse_json(&headers, &body)?;
    let limits = request.limits.unwrap_or_default();
    let view = app
        .manager
        .create(
            &app.owner,
            &request.name,
            request.template.as_deref(),
            limits,
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(view)).into_response())
}

pub(crate) async fn list_workspaces(State(app): Shared) -> Result<Response, ApiError> {
    Ok(axum::Json(app.manager.list(&app.owner).await?).into_response())
}

pub(crate) async fn get_workspace(
    State(app): Shared,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    current_view(&app, &id).await
}

/// The workspace as the API shows it now (state read after whatever the handler did).
async fn current_view(app: &AppState, id: &str) -> Result<Response, ApiError> {
    let row = app.manager.find(&app.owner, id).await?;
    Ok(axum::Json(app.manager.view(row).await).into_response())
}

pub(crate) async fn start_workspace(
    State(app): Shared,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let row = app.manager.find(&app.owner, &id).await?;
    app.manager.ensure_running(&row).await?;
    current_view(&app, &id).await
}

pub(crate) async fn stop_workspace(
    State(app): Shared,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let row = app.manager.find(&app.owner, &id).await?;
    app.manager.stop(&row, &app.owner).await?;
    current_view(&app, &id).await
}

pub(crate) async fn delete_workspace(
    State(app): Shared,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let row = app.manager.find(&app.owner, &id).await?;
    app.manager.delete(&row).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn list_templates() -> Response {
    let list: Vec<_> = templates::TEMPLATES.iter().map(|t| t.view()).collect();
    axum::Json(list).into_response()
}

/// `GET /api/info`: what the IDE needs to know about this server: its version and where
/// the previews of workspaces' ports live, as seen from the name the client used.
pub(crate) async fn info(State(app): Shared, request: Request) -> Response {
    let host = crate::perimeter::request_host(&request).unwrap_or_default();
    let scheme = if app.tls { "https" } else { "http" };
    let template = app.hosts.preview_template(scheme, &host);
    axum::Json(ServerInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        preview_url_template: template,
    })
    .into_response()
}

fn take_upgrade(request: &mut Request) -> Result<hyper::upgrade::OnUpgrade, ApiError> {
    request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
        .ok_or_else(ApiError::upgrade_required)
}

fn status_frame(state: StatusState, message: &str) -> String {
    ServerMessage::event(Event::Status(Status {
        state,
        message: message.to_string(),
    }))
    .encode()
}

/// `GET /api/workspaces/{id}/ws`: the control socket, relayed to the runner. The upgrade is
/// answered at once; a stopped workspace is started meanwhile, with `status` messages.
pub(crate) async fn control_socket(
    State(app): Shared,
    Path(id): Path<String>,
    mut request: Request,
) -> Result<Response, ApiError> {
    crate::perimeter::check_websocket_origin(&request)?;
    let accept = relay::accept_key(request.headers())?;
    let row = app.manager.find(&app.owner, &id).await?;
    let on_upgrade = take_upgrade(&mut request)?;
    let task_app = app.clone();
    app.tasks.spawn(async move {
        let app = task_app;
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut client = TokioIo::new(upgraded);
        let _gauge = Gauge::enter(&app.metrics.control);
        if !app.manager.is_running(&row).await {
            let _ = relay::send_text(
                &mut client,
                &status_frame(StatusState::Starting, "starting the workspace"),
            )
            .await;
            match app.manager.ensure_running(&row).await {
                Ok(()) => {
                    let _ = relay::send_text(
                        &mut client,
                        &status_frame(StatusState::Ready, "the workspace is ready"),
                    )
                    .await;
                }
                Err(e) => {
                    let _ = relay::send_text(
                        &mut client,
                        &status_frame(StatusState::Error, &e.reply.message),
                    )
                    .await;
                    let error = ServerMessage::event(Event::Error(e.reply.clone())).encode();
                    let _ = relay::send_text(&mut client, &error).await;
                    let _ =
                        relay::send_close(&mut client, 1011, "the workspace could not start").await;
                    return;
                }
            }
        }
        match app.manager.link().websocket(&row.id, "/ws").await {
            Ok(runner) => relay::pipe(client, runner, app.shutdown.clone()).await,
            Err(e) => {
                tracing::warn!(workspace = %row.id, error = %e, "cannot reach the runner");
                let error = ErrorReply::new(
                    ErrorCode::Unavailable,
                    "cannot reach the workspace; try again",
                );
                let _ = relay::send_text(
                    &mut client,
                    &ServerMessage::event(Event::Error(error)).encode(),
                )
                .await;
                let _ = relay::send_close(&mut client, 1011, "cannot reach the workspace").await;
            }
        }
    });
    Ok(relay::switching_protocols(&accept))
}

/// Terminal ids travel in URL paths: the same rule as the runner's, checked before relaying.
fn valid_terminal_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'@'))
}

/// `GET /api/workspaces/{id}/terminals/{terminalId}/ws`: the raw terminal socket. Its first
/// frame must be the runner's `attached`, so the workspace is started before the upgrade is
/// answered, and refusals are plain HTTP errors.
pub(crate) async fn terminal_socket(
    State(app): Shared,
    Path((id, terminal)): Path<(String, String)>,
    mut request: Request,
) -> Result<Response, ApiError> {
    crate::perimeter::check_websocket_origin(&request)?;
    let accept = relay::accept_key(request.headers())?;
    if !valid_terminal_id(&terminal) {
        return Err(ApiError::bad_request(
            "terminalId must be 1-128 characters of letters, digits and _-.:@",
        ));
    }
    let row = app.manager.find(&app.owner, &id).await?;
    app.manager.ensure_running(&row).await?;
    let query = request
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let runner = app
        .manager
        .link()
        .websocket(&row.id, &format!("/terminals/{terminal}/ws{query}"))
        .await?;
    let on_upgrade = take_upgrade(&mut request)?;
    let task_app = app.clone();
    app.tasks.spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let _gauge = Gauge::enter(&task_app.metrics.terminal);
        relay::pipe(TokioIo::new(upgraded), runner, task_app.shutdown.clone()).await;
    });
    Ok(relay::switching_protocols(&accept))
}

/// `/api/workspaces/{id}/files` and `/files/`: the workspace's root (a listing).
pub(crate) async fn files_root(
    State(app): Shared,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    forward_file(app, &id, "", request).await
}

/// `/api/workspaces/{id}/files/{path}`: forwarded to the runner, bodies streamed.
pub(crate) async fn files(
    State(app): Shared,
    Path((id, path)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    forward_file(app, &id, &path, request).await
}

/// A path for a URI: each segment percent-encoded but for unreserved characters.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        for b in segment.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

async fn forward_file(
    app: Arc<AppState>,
    id: &str,
    path: &str,
    request: Request,
) -> Result<Response, ApiError> {
    let row = app.manager.find(&app.owner, id).await?;
    // Reading never starts a workspace (any page can make a browser send a GET); writing
    // does, having passed the same-origin check that guards every change.
    if request.method() == axum::http::Method::GET || request.method() == axum::http::Method::HEAD {
        if !app.manager.is_running(&row).await {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "workspace {:?} is stopped; start it first (POST /api/workspaces/{}/start)",
                    row.name, row.id
                ),
            ));
        }
    } else {
        app.manager.ensure_running(&row).await?;
    }
    let query = request
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let target = format!("/files/{}{query}", encode_path(path));
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
    let forwarded = forwarded
        .body(body)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let response = app.manager.link().request(&row.id, forwarded).await?;
    let (parts, body) = response.into_parts();
    Ok(Response::from_parts(parts, Body::new(body)))
}

/// `GET /api/terminal/ws/{session_id}` (seed 004): a plain-text socket on the workspace's main
/// terminal. The workspace named `session_id` is created (blank template) when missing.
pub(crate) async fn plain_terminal_socket(
    State(app): Shared,
    Path(session): Path<String>,
    mut request: Request,
) -> Result<Response, ApiError> {
    crate::perimeter::check_websocket_origin(&request)?;
    let accept = relay::accept_key(request.headers())?;
    let on_upgrade = take_upgrade(&mut request)?;
    let task_app = app.clone();
    app.tasks.spawn(async move {
        let app = task_app;
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut client = TokioIo::new(upgraded);
        let _gauge = Gauge::enter(&app.metrics.plain);
        match connect_plain(&app, &session, &mut client).await {
            Ok(runner) => relay::pipe(client, runner, app.shutdown.clone()).await,
            Err(message) => {
                let _ = relay::send_text(&mut client, &format!("Error: {message}\r\n")).await;
                let _ = relay::send_close(&mut client, 1011, "cannot open the terminal").await;
            }
        }
    });
    Ok(relay::switching_protocols(&accept))
}

async fn connect_plain(
    app: &AppState,
    session: &str,
    client: &mut relay::ClientIo,
) -> Result<TokioIo<hyper::upgrade::Upgraded>, String> {
    let row = match app.manager.find(&app.owner, session).await {
        Ok(row) => row,
        Err(e) if e.reply.code == ErrorCode::NotFound => {
            let _ = relay::send_text(client, &format!("Creating workspace {session}...\r\n")).await;
            let view = app
                .manager
                .create(&app.owner, session, None, Default::default())
                .await
                .map_err(|e| e.reply.message)?;
            app.manager
                .find(&app.owner, &view.id)
                .await
                .map_err(|e| e.reply.message)?
        }
        Err(e) => return Err(e.reply.message),
    };
    if !app.manager.is_running(&row).await {
        let _ = relay::send_text(client, "Starting workspace...\r\n").await;
        app.manager
            .ensure_running(&row)
            .await
            .map_err(|e| e.reply.message)?;
        let _ = relay::send_text(client, "Workspace ready.\r\n").await;
    }
    app.manager
        .link()
        .websocket(&row.id, "/terminals/main/ws?format=text")
        .await
        .map_err(|e| ApiError::from(e).reply.message)
}
