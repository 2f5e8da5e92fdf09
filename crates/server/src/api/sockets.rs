//! The socket routes: the control socket (PROTOCOL.md section 1), the raw terminal socket
//! (section 2) and the plain-text terminal socket of seed 004 (section 3), relayed to the
//! workspace's runner.
//!
//! Each socket belongs to its caller: it is refused before any upgrade when its origin is
//! foreign (and the refusal audited with the values that did not match) or the caller's
//! connection quota is full, it is registered so that revoking the caller's credential or
//! access closes it at once, and a caller with view access reaches the runner in view mode
//! (the runner refuses every input, PROTOCOL.md section 8).

use axum::extract::{Path, Request, State};
use axum::response::Response;
use cove_protocol::accounts::{Outcome, WorkspaceAccess};
use cove_protocol::rest::{ControlQuery, TerminalQuery};
use cove_protocol::{AttachMode, ErrorCode, ErrorReply, Event, ServerMessage, Status, StatusState};
use hyper_util::rt::TokioIo;
use tracing::Instrument as _;

use super::{Shared, start};
use crate::AppState;
use crate::accounts::{Caller, ConnectionKind, Registered};
use crate::error::ApiError;
use crate::handover::{self, HandedOver};
use crate::relay::{self, Gauge};

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

/// Starts a workspace for a socket that is already open, passing each step it reports on the
/// way (a restore's bytes and percent, from its state reason) to the client as `frame` makes
/// it; a client that went away only stops the reports, not the start.
async fn start_reporting(
    app: &AppState,
    caller: &Caller,
    row: &crate::db::WorkspaceRow,
    client: &mut (impl tokio::io::AsyncWrite + Unpin),
    frame: impl Fn(&str) -> String,
) -> Result<(), ApiError> {
    use crate::workspaces::WorkspaceEvent;
    let mut events = app.manager.events();
    let starting = start(app, caller, row);
    tokio::pin!(starting);
    let mut last = String::new();
    loop {
        tokio::select! {
            result = &mut starting => return result,
            event = events.recv() => {
                let Ok(WorkspaceEvent::Changed(view)) = event else { continue };
                // Progress only: a failure's reason comes as the error it is, after this.
                let Some(reason) = view
                    .state_reason
                    .filter(|r| view.id == row.id && r.starts_with("restoring") && *r != last)
                else {
                    continue;
                };
                let _ = relay::send_text(client, &frame(&reason)).await;
                last = reason;
            }
        }
    }
}

/// Admits a socket of `caller` on a workspace: its origin, then its place among the
/// caller's connections. The request is only read before the first await (a request is not
/// `Sync`, so a handler holding a reference to it across one would not be `Send`).
pub(crate) fn admit<'a>(
    app: &'a AppState,
    caller: &'a Caller,
    request: &Request,
    workspace: Option<(&'a str, WorkspaceAccess)>,
    kind: ConnectionKind,
) -> impl Future<Output = Result<Registered, ApiError>> + Send + use<'a> {
    let refused = crate::perimeter::check_websocket_origin(app, request)
        .map_err(|e| (e, request.uri().path().to_string()));
    async move {
        if let Err((e, path)) = refused {
            app.accounts
                .audit(
                    caller,
                    "socket.refused",
                    &path,
                    Outcome::Failure,
                    &e.reply.message,
                )
                .await;
            return Err(e);
        }
        app.accounts
            .open_connection(caller, workspace, kind, &app.shutdown)
    }
}

/// The mode a socket to a workspace's runner is opened in (docs/PROTOCOL.md section 8): the
/// one place it is decided. `asked` is the client's own choice (the `mode` of its query); a
/// caller who may not edit the workspace gets `view` whatever it asked, and the runner then
/// refuses its input.
fn attach_mode(asked: AttachMode, access: WorkspaceAccess) -> AttachMode {
    if access.can_edit() {
        asked
    } else {
        AttachMode::View
    }
}

/// What the runner's control socket is asked: the client's query, parsed (`mode` is its only
/// field; others are ignored), with the mode the server decides.
fn control_query(client: Option<&str>, access: WorkspaceAccess) -> Result<ControlQuery, ApiError> {
    let asked: ControlQuery = serde_urlencoded::from_str(client.unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))?;
    Ok(ControlQuery {
        mode: attach_mode(asked.mode, access),
    })
}

/// What the runner's raw socket is asked: the client's query, parsed and encoded again (never
/// passed on as it came), so that the mode decided here is the only one the runner sees
/// (`?mode=view&mode=edit` is refused as a duplicate).
fn terminal_query(
    client: Option<&str>,
    access: WorkspaceAccess,
) -> Result<TerminalQuery, ApiError> {
    let asked: TerminalQuery = serde_urlencoded::from_str(client.unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))?;
    Ok(TerminalQuery {
        mode: attach_mode(asked.mode, access),
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
/// answered at once; a stopped workspace is started meanwhile (when the caller may), with
/// `status` messages.
pub(crate) async fn control_socket(
    State(app): Shared,
    caller: Caller,
    Path(id): Path<String>,
    mut request: Request,
) -> Result<Response, ApiError> {
    let accept = relay::accept_key(request.headers())?;
    let found = app.manager.find(&caller, &id).await?;
    // Refused before the upgrade, as the runner's own route would.
    let query = control_query(request.uri().query(), found.access)?;
    let registered = admit(
        &app,
        &caller,
        &request,
        Some((&found.row.id, found.access)),
        ConnectionKind::Control,
    )
    .await?;
    let on_upgrade = take_upgrade(&mut request)?;
    let task_app = app.clone();
    let span = socket_span("control", Some(&found.row.id), &caller);
    let life = async move {
        let app = task_app;
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let row = &found.row;
        let mut client = TokioIo::new(upgraded);
        let _gauge = Gauge::enter(&app.metrics.control);
        if !app.manager.is_running(row).await {
            let started = match found.require_edit() {
                Err(e) => Err(ApiError::new(
                    ErrorCode::Unavailable,
                    format!(
                        "{}: it is stopped, and only its owner or an editor can start it",
                        e.reply.message
                    ),
                )),
                Ok(()) => {
                    let _ = relay::send_text(
                        &mut client,
                        &status_frame(StatusState::Starting, "starting the workspace"),
                    )
                    .await;
                    start_reporting(&app, &caller, row, &mut client, |step| {
                        status_frame(StatusState::Starting, step)
                    })
                    .await
                }
            };
            match started {
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
        let path = runner_path("/ws", &query);
        match app.manager.link().websocket(&row.id, &path).await {
            Ok(runner) => {
                let counters = app.observer.relay_counters("control");
                relay::pipe(client, runner, registered.closed.clone(), counters).await
            }
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
        drop(registered);
    };
    app.tasks.spawn(life.instrument(span));
    Ok(relay::switching_protocols(&accept))
}

/// The span of one socket's life: its log lines carry what it is, where and whose.
fn socket_span(kind: &'static str, workspace: Option<&str>, caller: &Caller) -> tracing::Span {
    tracing::info_span!(
        "socket",
        kind,
        workspace = workspace.unwrap_or(""),
        user = %caller.user.username
    )
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
    caller: Caller,
    Path((id, terminal)): Path<(String, String)>,
    mut request: Request,
) -> Result<Response, ApiError> {
    let accept = relay::accept_key(request.headers())?;
    if !valid_terminal_id(&terminal) {
        return Err(ApiError::bad_request(
            "terminalId must be 1-128 characters of letters, digits and _-.:@",
        ));
    }
    let found = app.manager.find(&caller, &id).await?;
    let query = terminal_query(request.uri().query(), found.access)?;
    let registered = admit(
        &app,
        &caller,
        &request,
        Some((&found.row.id, found.access)),
        ConnectionKind::Terminal,
    )
    .await?;
    if found.access.can_edit() {
        start(&app, &caller, &found.row).await?;
    } else if !app.manager.is_running(&found.row).await {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            format!("the workspace {:?} is stopped", found.row.name),
        ));
    }
    // Local runners take the client's connection itself (`handover.rs`); others are relayed.
    let adopt = runner_path(&format!("/terminals/{terminal}/adopt"), &query);
    let runner = match app.manager.link().adopt(&found.row.id, &adopt).await? {
        Some(lease) => Runner::Adopt(lease),
        None => {
            let path = runner_path(&format!("/terminals/{terminal}/ws"), &query);
            Runner::Relay(app.manager.link().websocket(&found.row.id, &path).await?)
        }
    };
    let on_upgrade = take_upgrade(&mut request)?;
    let task_app = app.clone();
    let span = socket_span("terminal", Some(&found.row.id), &caller);
    let life = async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let _gauge = Gauge::enter(&task_app.metrics.terminal);
        let closed = registered.closed.clone();
        match runner {
            Runner::Relay(runner) => {
                let counters = task_app.observer.relay_counters("terminal");
                relay::pipe(TokioIo::new(upgraded), runner, closed, counters).await
            }
            Runner::Adopt(lease) => match handover::hand_over(upgraded, lease).await {
                Ok(HandedOver::Adopted(lease)) => {
                    handover::hold(lease, closed, task_app.shutdown.clone()).await
                }
                Ok(HandedOver::Relay(client, lease)) => {
                    let counters = task_app.observer.relay_counters("terminal");
                    relay::pipe(client, lease, closed, counters).await
                }
                Err(e) => tracing::warn!(error = %e, "could not hand a terminal socket over"),
            },
        }
        drop(registered);
    };
    app.tasks.spawn(life.instrument(span));
    Ok(relay::switching_protocols(&accept))
}

/// Where a terminal socket's bytes go.
enum Runner {
    /// The runner takes the client's connection over this lease.
    Adopt(tokio::net::UnixStream),
    /// Relayed through the server.
    Relay(TokioIo<hyper::upgrade::Upgraded>),
}

/// `GET /api/terminal/ws/{session_id}` (seed 004): a plain-text socket on the workspace's main
/// terminal. The caller's workspace named `session_id` is created (blank template) when
/// missing.
pub(crate) async fn plain_terminal_socket(
    State(app): Shared,
    caller: Caller,
    Path(session): Path<String>,
    mut request: Request,
) -> Result<Response, ApiError> {
    let accept = relay::accept_key(request.headers())?;
    let registered = admit(&app, &caller, &request, None, ConnectionKind::Plain).await?;
    let on_upgrade = take_upgrade(&mut request)?;
    let task_app = app.clone();
    app.tasks.spawn(async move {
        let app = task_app;
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut client = TokioIo::new(upgraded);
        let _gauge = Gauge::enter(&app.metrics.plain);
        match connect_plain(&app, &caller, &session, &registered, &mut client).await {
            Ok(runner) => {
                let counters = app.observer.relay_counters("plain");
                relay::pipe(client, runner, registered.closed.clone(), counters).await
            }
            Err(message) => {
                let _ = relay::send_text(&mut client, &format!("Error: {message}\r\n")).await;
                let _ = relay::send_close(&mut client, 1011, "cannot open the terminal").await;
            }
        }
        drop(registered);
    });
    Ok(relay::switching_protocols(&accept))
}

async fn connect_plain(
    app: &AppState,
    caller: &Caller,
    session: &str,
    registered: &Registered,
    client: &mut relay::ClientIo,
) -> Result<TokioIo<hyper::upgrade::Upgraded>, String> {
    let found = match app.manager.find(caller, session).await {
        Ok(found) => found,
        Err(e) if e.reply.code == ErrorCode::NotFound => {
            let _ = relay::send_text(client, &format!("Creating workspace {session}...\r\n")).await;
            let view = app
                .manager
                .create(caller, session, None, Default::default())
                .await
                .map_err(|e| e.reply.message)?;
            app.accounts
                .audit(
                    caller,
                    "workspace.create",
                    &view.id,
                    Outcome::Success,
                    &view.name,
                )
                .await;
            app.manager
                .find(caller, &view.id)
                .await
                .map_err(|e| e.reply.message)?
        }
        Err(e) => return Err(e.reply.message),
    };
    registered.attach_to(&found.row.id, found.access);
    if !app.manager.is_running(&found.row).await {
        found.require_edit().map_err(|e| e.reply.message)?;
        let _ = relay::send_text(client, "Starting workspace...\r\n").await;
        start_reporting(app, caller, &found.row, client, |step| {
            let mut line = step.to_string();
            // Capitalised, as the lines around it ("Restoring its files: 40% ...").
            if let Some(first) = line.get(..1) {
                line.replace_range(..1, &first.to_uppercase());
            }
            format!("{line}\r\n")
        })
        .await
        .map_err(|e| e.reply.message)?;
        let _ = relay::send_text(client, "Workspace ready.\r\n").await;
    }
    let query = TerminalQuery {
        format: Some("text".into()),
        mode: attach_mode(AttachMode::Edit, found.access),
        ..Default::default()
    };
    let path = runner_path("/terminals/main/ws", &query);
    app.manager
        .link()
        .websocket(&found.row.id, &path)
        .await
        .map_err(|e| ApiError::from(e).reply.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewers_reach_runners_in_view_mode_whatever_they_ask() {
        let (view, owner) = (WorkspaceAccess::View, WorkspaceAccess::Owner);
        let path = |q: &TerminalQuery| runner_path("/terminals/t/ws", q);
        assert_eq!(
            path(&terminal_query(None, owner).unwrap()),
            "/terminals/t/ws"
        );
        assert_eq!(
            path(&terminal_query(None, view).unwrap()),
            "/terminals/t/ws?mode=view"
        );
        assert_eq!(
            path(&terminal_query(Some("mode=edit&cols=80"), view).unwrap()),
            "/terminals/t/ws?cols=80&mode=view"
        );
        // An owner may choose to watch; a second `mode` is refused, one hidden in a value
        // stays in that value.
        assert_eq!(
            path(&terminal_query(Some("mode=view"), owner).unwrap()),
            "/terminals/t/ws?mode=view"
        );
        let err = terminal_query(Some("mode=view&mode=edit"), owner).unwrap_err();
        assert_eq!(err.reply.code, ErrorCode::BadRequest);
        assert_eq!(
            path(&terminal_query(Some("command=a%26mode%3Dedit"), view).unwrap()),
            "/terminals/t/ws?command=a%26mode%3Dedit&mode=view"
        );
        assert_eq!(
            runner_path("/ws", &control_query(Some("mode=edit"), view).unwrap()),
            "/ws?mode=view"
        );
        assert_eq!(
            runner_path("/ws", &control_query(None, owner).unwrap()),
            "/ws"
        );
        let err = control_query(Some("mode=admin"), owner).unwrap_err();
        assert_eq!(err.reply.code, ErrorCode::BadRequest);
    }
}
