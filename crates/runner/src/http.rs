//! The runner's HTTP surface, on a Unix socket (local) or TCP with a bearer token (Kubernetes):
//!
//! | route | what |
//! |---|---|
//! | `GET /ws` | control socket (docs/PROTOCOL.md section 1); `mode=view` to watch and read only |
//! | `GET /terminals/{id}/ws` | raw terminal socket (section 2); `format=text` for section 3, `mode=view` for output only (section 8) |
//! | `GET /terminals/{id}/adopt` | the same socket, its client connection handed over by the server (`adopt.rs`) |
//! | `GET/PUT/DELETE /files/{path}` | file bytes, as the REST routes of section 0 |
//! | `/ports/{port}/...` | port preview: HTTP and WebSocket to `127.0.0.1:{port}` |
//! | `GET /lsp` | the language servers the workspace can run, and its root as a URI |
//! | `GET /lsp/file` | a file outside the workspace a language server points at, read in the sandbox (`outside.rs`) |
//! | `GET /lsp/{language}` | a language server started for this socket, LSP messages both ways (`lsp.rs`) |
//! | `GET /search` | search across files with ripgrep, as newline-delimited JSON (`search.rs`) |
//! | `GET /archive` | a folder as a tar.gz stream, packed by `tar` in the workspace (`archive.rs`) |
//! | `GET /git/status`, `GET /git/show`, `POST /git` | source control with the real `git` (`git.rs`) |
//! | `GET /healthz` | liveness and identity, for the server to find its runners again |
//! | `GET /stats` | resource use against limits, live terminals and processes, OOM kills |
//! | `POST /shutdown` | stop the workspace's programs and exit |

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cove_protocol::rest::{ControlQuery, DeleteQuery, TerminalQuery};
use cove_protocol::{
    AttachMode, DirListing, ErrorCode, ErrorReply, FileWritten, Replay, RestError,
};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::raw::Format;
use crate::terminals::NewTerminal;
use crate::{Listen, Workspace};

/// An error as the REST API answers it.
pub(crate) struct ApiError(pub(crate) ErrorReply);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(RestError { error: self.0 })).into_response()
    }
}

/// A refusal, as the REST routes answer one.
pub(crate) fn refuse(code: ErrorCode, message: impl Into<String>) -> Response {
    ApiError(ErrorReply::new(code, message)).into_response()
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        ApiError(e.to_reply())
    }
}

/// Read buffer of each WebSocket. tungstenite's default (128 KiB) is kept per connection and
/// zero-filled on every read: with many idle terminals it was most of their memory, and with
/// many typing ones a third of the runner's CPU. Keystrokes are tiny; large frames still
/// arrive whole, in several reads.
pub(crate) const READ_BUFFER: usize = 4096;

/// The router over one workspace.
pub(crate) fn router(ws: Arc<Workspace>) -> Router {
    let body_limit = ws.launch.limits.max_file_bytes as usize + 1;
    Router::new()
        .route("/ws", get(control_socket))
        .route("/terminals/{id}/ws", get(terminal_socket))
        .route("/terminals/{id}/adopt", get(crate::adopt::adopt))
        .route("/files", get(get_file).put(put_file).delete(delete_file))
        .route("/files/", get(get_file).put(put_file).delete(delete_file))
        .route(
            "/files/{*path}",
            get(get_file).put(put_file).delete(delete_file),
        )
        .route("/ports/{port}", axum::routing::any(crate::preview::proxy))
        .route("/ports/{port}/", axum::routing::any(crate::preview::proxy))
        .route(
            "/ports/{port}/{*rest}",
            axum::routing::any(crate::preview::proxy),
        )
        .route("/lsp", get(language_servers))
        .route("/lsp/file", get(crate::outside::outside_file))
        .route("/lsp/{language}", get(language_server_socket))
        .route("/search", get(crate::search::search))
        .route("/archive", get(crate::archive::archive))
        .route("/git/status", get(crate::git::status))
        .route("/git/show", get(crate::git::show))
        .route("/git", axum::routing::post(crate::git::run))
        .route("/healthz", get(health))
        .route("/stats", get(stats))
        .route("/shutdown", axum::routing::post(shutdown))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(ws)
}

/// Binds the listener and serves until `shutdown`.
pub(crate) async fn serve(
    ws: Arc<Workspace>,
    listen: Listen,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let app = router(ws);
    let stop = shutdown.clone();
    match listen {
        Listen::Inherited(listener) => {
            let listener = tokio::net::UnixListener::from_std(listener)?;
            tracing::info!("runner listening on the socket the server made for it");
            serve_unix(listener, app, stop).await;
        }
        Listen::Unix(path) => {
            if path.exists() {
                if tokio::net::UnixStream::connect(&path).await.is_ok() {
                    anyhow::bail!("another runner is already serving {}", path.display());
                }
                std::fs::remove_file(&path)?;
            }
            let listener = tokio::net::UnixListener::bind(&path)
                .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", path.display()))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            tracing::info!(socket = %path.display(), "runner listening");
            serve_unix(listener, app, stop).await;
        }
        Listen::Tcp { addr, token } => {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            tracing::info!(%addr, "runner listening on TCP");
            let token = Arc::new(format!("Bearer {token}"));
            let app = app.layer(axum::middleware::from_fn(
                move |mut request: Request, next: Next| {
                    let token = token.clone();
                    async move {
                        let given = request
                            .headers()
                            .get(header::AUTHORIZATION)
                            .map(HeaderValue::as_bytes);
                        if given.is_some_and(|g| constant_time_eq(g, token.as_bytes())) {
                            // Checked, and gone: a preview must never hand the token to the
                            // workspace's own server.
                            request.headers_mut().remove(header::AUTHORIZATION);
                            next.run(request).await
                        } else {
                            ApiError(ErrorReply::new(
                                ErrorCode::Unauthorized,
                                "a valid runner token is required",
                            ))
                            .into_response()
                        }
                    }
                },
            ));
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await?;
        }
    }
    Ok(())
}

/// The descriptor of the Unix connection a request came on, for a hand-over (`adopt.rs`),
/// which receives the client's connection on it. Valid while the request's connection is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionFd(pub(crate) std::os::fd::RawFd);

/// Serves a Unix listener until `stop`, then lets open requests finish: `axum::serve`'s
/// connection handling, plus [`ConnectionFd`] on each request.
async fn serve_unix(listener: tokio::net::UnixListener, app: Router, stop: CancellationToken) {
    let connections = tokio_util::task::TaskTracker::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        connections.spawn(serve_connection(stream, app.clone(), stop.clone()));
    }
    connections.close();
    connections.wait().await;
}

/// One connection of [`serve_unix`].
async fn serve_connection(stream: tokio::net::UnixStream, app: Router, stop: CancellationToken) {
    let fd = ConnectionFd(std::os::fd::AsRawFd::as_raw_fd(&stream));
    let service = hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(fd);
        let mut app = app.clone();
        let request = request.map(axum::body::Body::new);
        async move { <Router as tower_service::Service<_>>::call(&mut app, request).await }
    });
    let builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    let connection =
        builder.serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), connection).await;
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn language_servers(State(ws): State<Arc<Workspace>>) -> Response {
    axum::Json(ws.language_servers.list(&ws.files)).into_response()
}

async fn language_server_socket(
    State(ws): State<Arc<Workspace>>,
    Path(language): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !cove_protocol::ide::valid_language(&language) {
        return ApiError(ErrorReply::new(
            ErrorCode::BadRequest,
            "a language is 1-32 letters, digits, - or _",
        ))
        .into_response();
    }
    // Refused before the upgrade where it can be: the editor then knows why at once.
    let command = match ws.language_servers.command_for(&language, &ws.files) {
        Ok(command) => command,
        Err(e) => return ApiError::from(e).into_response(),
    };
    if ws.language_servers.running() >= crate::lsp::MAX_RUNNING {
        return ApiError::from(Error::TooManyLanguageServers {
            running: ws.language_servers.running(),
        })
        .into_response();
    }
    let limit = ws.launch.limits.max_message_bytes;
    upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |mut socket| async move {
            match ws.language_servers.start(&language, &command) {
                Ok(server) => crate::lsp::bridge(server, socket, ws.shutdown.clone()).await,
                Err(e) => {
                    let reason = e.to_reply().message;
                    let _ = socket.send(crate::lsp::close(1011, &reason)).await;
                }
            }
        })
}

async fn control_socket(
    State(ws): State<Arc<Workspace>>,
    query: Result<Query<ControlQuery>, axum::extract::rejection::QueryRejection>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let mode = match query {
        Ok(Query(q)) => q.mode,
        Err(e) => {
            return ApiError(ErrorReply::new(ErrorCode::BadRequest, e.body_text())).into_response();
        }
    };
    let limit = ws.launch.limits.max_message_bytes;
    upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| crate::control::serve(ws, socket, mode))
}

async fn terminal_socket(
    State(ws): State<Arc<Workspace>>,
    Path(id): Path<String>,
    query: Result<Query<TerminalQuery>, axum::extract::rejection::QueryRejection>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let upgrade = upgrade
        .max_message_size(1024 * 1024)
        .max_frame_size(1024 * 1024)
        .read_buffer_size(READ_BUFFER);
    let (terminal, attach) = match open_terminal(&ws, id, query) {
        Ok(Opened::Terminal(terminal, attach)) => (terminal, attach),
        Ok(Opened::Refused(e)) => {
            // Answer the upgrade, then say why and close, so browsers see the reason.
            return upgrade.on_upgrade(move |mut socket| async move {
                crate::raw::refuse(&mut socket, e.to_reply()).await
            });
        }
        Err(refusal) => return refusal.into_response(),
    };
    let shutdown = ws.shutdown.clone();
    upgrade.on_upgrade(move |socket| {
        use futures_util::StreamExt;
        let (sink, stream) = socket.split();
        let ending = crate::raw::Ending {
            shutdown,
            revoked: CancellationToken::new(),
        };
        crate::raw::serve(terminal, sink, stream, attach, ending)
    })
}

/// What a terminal socket's request comes to: a terminal to attach to and how, or a refusal
/// to say on the socket (the terminal could not be created).
pub(crate) enum Opened {
    Terminal(Arc<crate::terminals::Terminal>, crate::raw::Attach),
    Refused(Error),
}

/// Checks a terminal socket's query and finds (or, in edit mode, creates) its terminal. A
/// refusal that must be an HTTP answer (a bad query, a viewer asking for a missing terminal)
/// is `Err`.
pub(crate) fn open_terminal(
    ws: &Workspace,
    id: String,
    query: Result<Query<TerminalQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Opened, ApiError> {
    let query = match query {
        Ok(Query(q)) => q,
        Err(e) => {
            return Err(ApiError(ErrorReply::new(
                ErrorCode::BadRequest,
                e.body_text(),
            )));
        }
    };
    let format = match query.format.as_deref() {
        None | Some("raw") => Format::Raw,
        Some("text") => Format::Text,
        Some(other) => {
            return Err(ApiError(ErrorReply::new(
                ErrorCode::BadRequest,
                format!("unknown format {other:?}"),
            )));
        }
    };
    let size = match (query.cols, query.rows) {
        (None, None) => None,
        (cols, rows) => Some(cove_pty::Size {
            cols: cols.unwrap_or(80),
            rows: rows.unwrap_or(24),
        }),
    };
    // A viewer's window size is its own business, not the terminal's. A new terminal starts
    // at the size; an existing one is resized as the socket attaches.
    let mut resize = size.filter(|_| query.mode == AttachMode::Edit);
    let terminal = match (ws.terminals.get(&id), query.mode) {
        (Ok(t), _) => Ok(t),
        // A viewer creates nothing: refused before the upgrade, as a missing terminal.
        (Err(e), AttachMode::View) => return Err(ApiError::from(e)),
        (Err(_), AttachMode::Edit) => ws.terminals.create(NewTerminal {
            id: Some(id),
            command: query.command,
            size: resize.take(),
            ..Default::default()
        }),
    };
    // The plain-text socket (seed 004) keeps its raw replay unless asked: its clients may
    // read the scrollback as text.
    let replay = query.replay.unwrap_or(match format {
        Format::Raw => Replay::Screen,
        Format::Text => Replay::Raw,
    });
    Ok(match terminal {
        Ok(terminal) => Opened::Terminal(
            terminal,
            crate::raw::Attach {
                offset: query.offset,
                replay,
                resize,
                format,
                mode: query.mode,
            },
        ),
        Err(e) => Opened::Refused(e),
    })
}

/// Runs a file operation off the async threads.
async fn run_files<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, ApiError> {
    let done = tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Error::Internal("the file operation failed"))?;
    Ok(done?)
}

fn path_of(path: Option<Path<String>>) -> String {
    path.map(|Path(p)| p).unwrap_or_default()
}

async fn get_file(
    State(ws): State<Arc<Workspace>>,
    path: Option<Path<String>>,
) -> Result<Response, ApiError> {
    let path = path_of(path);
    let is_dir = {
        let ws = ws.clone();
        let path = path.clone();
        run_files(move || ws.files.is_dir(&path)).await?
    };
    if is_dir {
        let shown = path.clone();
        let entries = run_files(move || ws.files.list(&path)).await?;
        return Ok(axum::Json(DirListing {
            path: shown,
            entries,
        })
        .into_response());
    }
    let name = path.rsplit('/').find(|c| !c.is_empty()).unwrap_or("file");
    let disposition = HeaderValue::from_str(&content_disposition(name));
    let opened = {
        let ws = ws.clone();
        let path = path.clone();
        run_files(move || ws.files.open_for_download(&path)).await?
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    // Bytes from a workspace are served on cove's own origin: a browser must never sniff
    // them into a page, show them inline or run them, whatever they hold.
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    if let Ok(disposition) = disposition {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    let (file, size) = opened;
    if size > ws.files.max_file_bytes() {
        // Larger than the editor reads whole: streamed, never held in memory, no version.
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
        let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
        return Ok((headers, axum::body::Body::from_stream(stream)).into_response());
    }
    drop(file);
    let data = run_files(move || ws.files.read(&path)).await?;
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", data.version)) {
        headers.insert(header::ETAG, etag);
    }
    Ok((headers, data.bytes).into_response())
}

/// `attachment` with the file's name twice (RFC 6266): a plain ASCII `filename` for old
/// clients, with anything else replaced, and the exact name as UTF-8 in `filename*`.
fn content_disposition(name: &str) -> String {
    let plain: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '_',
        })
        .collect();
    let mut exact = String::with_capacity(name.len());
    for byte in name.bytes() {
        // RFC 5987 attr-char: everything else is percent-encoded.
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            exact.push(byte as char);
        } else {
            exact.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{plain}\"; filename*=UTF-8''{exact}")
}

async fn put_file(
    State(ws): State<Arc<Workspace>>,
    path: Option<Path<String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let path = path_of(path);
    // `If-Match: "<version>"` is the REST form of `baseVersion`.
    let base = headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().trim_matches('"').to_string());
    let shown = path.clone();
    let written = run_files(move || ws.files.write(&path, &body, base.as_deref())).await?;
    let status = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        axum::Json(FileWritten {
            path: shown,
            version: written.version,
            size: written.size,
        }),
    )
        .into_response())
}

async fn delete_file(
    State(ws): State<Arc<Workspace>>,
    path: Option<Path<String>>,
    Query(q): Query<DeleteQuery>,
) -> Result<StatusCode, ApiError> {
    let path = path_of(path);
    run_files(move || ws.files.delete(&path, q.recursive)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /stats`: what the control socket's `stats` answers, with the live programs and the
/// sandbox's OOM kills, for the server's metrics and its `/system` namespace.
async fn stats(State(ws): State<Arc<Workspace>>) -> Result<impl IntoResponse, ApiError> {
    let sampled = ws.clone();
    let stats = tokio::task::spawn_blocking(move || sampled.figures.sample(&sampled.files))
        .await
        .map_err(|_| ApiError::from(Error::Internal("stats failed")))?;
    Ok(axum::Json(cove_protocol::realtime::RunnerStats {
        stats,
        terminals: ws
            .terminals
            .list()
            .iter()
            .filter(|t| t.exit_status().is_none())
            .count() as u64,
        processes: ws
            .processes
            .list()
            .iter()
            .filter(|p| p.exit_status().is_none())
            .count() as u64,
        oom_kills: crate::stats::oom_kills(),
    }))
}

async fn health(State(ws): State<Arc<Workspace>>) -> impl IntoResponse {
    let started = ws
        .started_at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    axum::Json(serde_json::json!({
        "status": "alive",
        "workspaceId": ws.id,
        "pid": std::process::id(),
        "startedAt": started,
        "terminals": ws.terminals.list().iter().filter(|t| t.exit_status().is_none()).count(),
        "processes": ws.processes.list().iter().filter(|p| p.exit_status().is_none()).count(),
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

async fn shutdown(State(ws): State<Arc<Workspace>>) -> StatusCode {
    tracing::info!("shutdown requested by the server");
    ws.shutdown.cancel();
    StatusCode::ACCEPTED
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_quotes_nothing_a_header_could_break_on() {
        assert_eq!(
            content_disposition("report.pdf"),
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
        );
        assert_eq!(
            content_disposition("ä \"b\"\\c\r\n.txt"),
            "attachment; filename=\"_ _b__c__.txt\"; filename*=UTF-8''%C3%A4%20%22b%22%5Cc%0D%0A.txt"
        );
        assert!(HeaderValue::from_str(&content_disposition("x\r\ny")).is_ok());
    }
}
