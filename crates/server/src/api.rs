//! REST routes of docs/PROTOCOL.md section 0 and the socket routes of sections 1, 2 and 3.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cove_protocol::accounts::WorkspaceAccess;
use cove_protocol::rest::{ControlQuery, CreateWorkspace, ServerInfo, TerminalQuery};
use cove_protocol::{AttachMode, ErrorCode, ErrorReply, Event, ServerMessage, Status, StatusState};
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

/// The mode a socket to a workspace's runner is opened in (docs/PROTOCOL.md section 8): the
/// one place it is decided. `asked` is the client's own choice, from the `mode` of its query
/// (control socket and raw socket alike). A caller who may not edit the workspace gets `view`
/// whatever it asked; the runner then refuses its input. Until accounts exist every caller
/// owns every workspace.
fn attach_mode(asked: AttachMode) -> AttachMode {
    let access = WorkspaceAccess::Owner; // With accounts: the caller's access to the workspace.
    if access.can_edit() {
        asked
    } else {
        AttachMode::View
    }
}

/// The runner's control socket, in `mode`.
fn control_path(mode: AttachMode) -> String {
    runner_path("/ws", &ControlQuery { mode })
}

/// What the runner's control socket is asked: the client's query, parsed (`mode` is its only
/// field; others are ignored), with the mode the server decides.
fn control_query(client: Option<&str>) -> Result<ControlQuery, ApiError> {
    let asked: ControlQuery = serde_urlencoded::from_str(client.unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))?;
    Ok(ControlQuery {
        mode: attach_mode(asked.mode),
    })
}

/// The runner's raw terminal socket of `terminal`. The query is encoded from its type, never
/// copied from the client, so what the runner reads is exactly what the server decided.
fn terminal_path(terminal: &str, query: &TerminalQuery) -> String {
    runner_path(&format!("/terminals/{terminal}/ws"), query)
}

/// What the runner's raw socket is asked: the client's query, parsed, with the mode the server
/// decides. Parsed and encoded again, never passed on as it came, so that the mode decided
/// here is the only one the runner sees (`?mode=view&mode=edit` is refused as a duplicate).
fn terminal_query(client: Option<&str>) -> Result<TerminalQuery, ApiError> {
    let asked: TerminalQuery = serde_urlencoded::from_str(client.unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))?;
    Ok(TerminalQuery {
        mode: attach_mode(asked.mode),
        ..asked
    })
}

fn runner_path(path: &str, query: &impl serde::Serialize) -> String {
    // The query types are flat structs of strings and numbers, which always encode.
    let query = serde_urlencoded::to_string(query).expect("a runner query encodes");
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
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
    // Refused before the upgrade, as the runner's own route would.
    let query = control_query(request.uri().query())?;
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
        let path = control_path(query.mode);
        match app.manager.link().websocket(&row.id, &path).await {
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
    let query = terminal_query(request.uri().query())?;
    let row = app.manager.find(&app.owner, &id).await?;
    app.manager.ensure_running(&row).await?;
    let runner = app
        .manager
        .link()
        .websocket(&row.id, &terminal_path(&terminal, &query))
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
    let query = TerminalQuery {
        format: Some("text".into()),
        mode: attach_mode(AttachMode::Edit),
        ..Default::default()
    };
    app.manager
        .link()
        .websocket(&row.id, &terminal_path("main", &query))
        .await
        .map_err(|e| ApiError::from(e).reply.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runner_paths_carry_the_decided_mode_and_nothing_smuggled() {
        assert_eq!(control_path(AttachMode::Edit), "/ws");
        assert_eq!(control_path(AttachMode::View), "/ws?mode=view");
        assert_eq!(control_query(None).unwrap().mode, AttachMode::Edit);
        assert_eq!(
            control_query(Some("mode=view&x=1")).unwrap().mode,
            AttachMode::View
        );
        for bad in ["mode=view&mode=edit", "mode=admin"] {
            let err = control_query(Some(bad)).unwrap_err();
            assert_eq!(err.reply.code, ErrorCode::BadRequest, "{bad}");
        }
        let query = terminal_query(None).unwrap();
        assert_eq!(terminal_path("t", &query), "/terminals/t/ws");
        // The client's own choice of view passes; its values come through re-encoded.
        let query = terminal_query(Some("cols=90&command=ls%20-la&mode=view&replay=x")).unwrap();
        assert_eq!(
            terminal_path("t", &query),
            "/terminals/t/ws?cols=90&command=ls+-la&mode=view"
        );
        // A mode forced on a caller cannot be undone by the client's query: a second `mode`
        // is refused, and one hidden in a value stays in that value.
        let err = terminal_query(Some("mode=view&mode=edit")).unwrap_err();
        assert!(
            err.reply.message.contains("duplicate field `mode`"),
            "{err:?}"
        );
        let asked = terminal_query(Some("mode=edit&command=a%26mode%3Dedit")).unwrap();
        let forced = TerminalQuery {
            mode: AttachMode::View,
            ..asked
        };
        assert_eq!(
            terminal_path("t", &forced),
            "/terminals/t/ws?command=a%26mode%3Dedit&mode=view"
        );
        let err = terminal_query(Some("mode=admin")).unwrap_err();
        assert_eq!(err.reply.code, ErrorCode::BadRequest);
        assert!(
            err.reply
                .message
                .contains(r#"mode must be edit or view, not "admin""#),
            "{err:?}"
        );
    }
}
