//! The one link from the server to runners: a pooled HTTP/1 client, over the runner's Unix
//! socket (local) or TCP with a bearer token (Kubernetes), with upgrades for WebSockets.
//!
//! Every way the server talks to a runner goes through [`RunnerLink`]: file requests and
//! previews ([`RunnerLink::request`]) and socket relays ([`RunnerLink::websocket`]).
//! Connections are kept and reused per runner, so a file read costs no new handshake. The
//! link only talks to runners the manager has seen running (it tells the link their
//! addresses, see `Manager::is_running`); a connection that fails makes the link forget
//! the address until the manager looks again.
//!
//! A Unix socket is only used after the checks of [`connect_unix`]: the path is the
//! server's own socket (not a link), and the peer is the runner.

use axum::body::Body;
use cove_backend::{RunnerAddr, RunnerPeer};
use cove_protocol::{ErrorCode, ErrorReply, RestError};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::ApiError;

/// Why the server could not talk to a runner.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkError {
    #[error("the workspace's runner is not known to be running")]
    Unknown,
    #[error("cannot reach the workspace's runner: {0}")]
    Connect(String),
    /// The runner answered, and said no: its status and its own error (a bad query, an
    /// unknown terminal, a limit), to be passed on as it is.
    #[error("the runner refused ({status}): {}", .reply.message)]
    Refused {
        status: hyper::StatusCode,
        reply: ErrorReply,
    },
}

impl From<LinkError> for ApiError {
    fn from(e: LinkError) -> ApiError {
        match e {
            LinkError::Refused { status, reply } => ApiError::from_reply(reply).with_status(status),
            LinkError::Unknown => ApiError::new(
                ErrorCode::Unavailable,
                "the workspace is not running; start it and try again",
            ),
            LinkError::Connect(cause) => {
                tracing::warn!(%cause, "cannot reach a runner");
                ApiError::new(
                    ErrorCode::Unavailable,
                    "cannot reach the workspace; try again in a moment",
                )
                .with_status(hyper::StatusCode::BAD_GATEWAY)
            }
        }
    }
}

/// Longest wait for a runner's figures: a runner that cannot answer this quickly is busy, and
/// its figures can wait for the next round.
const STATS_TIMEOUT: Duration = Duration::from_secs(3);

/// A runner's answer body, at most `max` bytes (more is `too_large`).
async fn read_limited(
    answer: hyper::Response<hyper::body::Incoming>,
    max: usize,
    path: &str,
) -> Result<bytes::Bytes, ApiError> {
    use http_body_util::BodyExt as _;
    Ok(http_body_util::Limited::new(answer.into_body(), max)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ApiError::new(
                    ErrorCode::TooLarge,
                    format!("{path:?} is larger than {max} bytes"),
                )
            } else {
                ApiError::internal("reading from the workspace", e)
            }
        })?
        .to_bytes())
}

/// A runner's error answer, as the API passes it on.
fn refusal(status: hyper::StatusCode, body: &[u8]) -> ApiError {
    let reply = serde_json::from_slice::<RestError>(body)
        .map(|rest| rest.error)
        .unwrap_or_else(|_| {
            ErrorReply::new(
                ErrorCode::Internal,
                String::from_utf8_lossy(body).into_owned(),
            )
        });
    ApiError::from_reply(reply).with_status(status)
}

/// A path for a URI: each segment percent-encoded but for unreserved characters.
pub(crate) fn encode_path(path: &str) -> String {
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

/// How long an unused connection to a runner is kept.
const IDLE: Duration = Duration::from_secs(30);
/// Unused connections kept per runner.
const IDLE_PER_RUNNER: usize = 8;

/// Where each known runner listens, and which of its workspace's runners it is: the pool
/// keys connections by both, so a connection to a runner that was replaced (a restart at
/// the same socket path, a new pod) is never taken for the new one.
type Addresses = Arc<Mutex<HashMap<String, Known>>>;

#[derive(Debug, Clone)]
struct Known {
    addr: RunnerAddr,
    generation: u64,
}

/// See the module docs.
#[derive(Clone)]
pub(crate) struct RunnerLink {
    client: Client<Connector, Body>,
    addrs: Addresses,
    generations: Arc<std::sync::atomic::AtomicU64>,
    /// When each workspace last had a request (files, previews): activity that opens no
    /// socket, for the idle stop.
    used: Arc<std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>>,
}

impl std::fmt::Debug for RunnerLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerLink").finish_non_exhaustive()
    }
}

impl Default for RunnerLink {
    fn default() -> RunnerLink {
        RunnerLink::new()
    }
}

impl RunnerLink {
    pub(crate) fn new() -> RunnerLink {
        let addrs: Addresses = Arc::default();
        let client = Client::builder(TokioExecutor::new())
            // Without a timer the pool drops idle connections only when it next looks.
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(IDLE)
            .pool_max_idle_per_host(IDLE_PER_RUNNER)
            .build(Connector {
                addrs: addrs.clone(),
            });
        RunnerLink {
            client,
            addrs,
            generations: Arc::default(),
            used: Arc::default(),
        }
    }

    /// Remembers where the runner of workspace `id` listens (it was just started or seen).
    pub(crate) fn remember(&self, id: &str, addr: &RunnerAddr) {
        let mut addrs = self.addrs.lock().unwrap();
        if addrs.get(id).is_some_and(|known| known.addr == *addr) {
            return;
        }
        let generation = self
            .generations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        addrs.insert(
            id.to_string(),
            Known {
                addr: addr.clone(),
                generation,
            },
        );
    }

    /// Forgets it (stopped, deleted, or unreachable).
    pub(crate) fn forget(&self, id: &str) {
        self.addrs.lock().unwrap().remove(id);
    }

    /// When the workspace's runner last got a request through this link.
    pub(crate) fn last_used(&self, id: &str) -> Option<std::time::Instant> {
        self.used.lock().unwrap().get(id).copied()
    }

    /// Sends `request` (its URI a path and query on the runner) to the runner of workspace
    /// `id`; bodies stream both ways.
    pub(crate) async fn request(
        &self,
        id: &str,
        request: Request<Body>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, LinkError> {
        self.used
            .lock()
            .unwrap()
            .insert(id.to_string(), std::time::Instant::now());
        self.send(id, request).await
    }

    /// The runner's `GET /stats`. Looking is not using: this does not count as activity for
    /// stopping idle workspaces.
    pub(crate) async fn stats(
        &self,
        id: &str,
    ) -> Result<cove_protocol::realtime::RunnerStats, ApiError> {
        let request = Request::get("/stats")
            .body(Body::empty())
            .map_err(|e| ApiError::internal("asking a runner for its figures", e))?;
        let answer = tokio::time::timeout(STATS_TIMEOUT, self.send(id, request))
            .await
            .map_err(|_| {
                ApiError::unavailable("the workspace did not answer for its figures in time")
            })??;
        let status = answer.status();
        let body = read_limited(answer, 64 * 1024, "/stats").await?;
        if !status.is_success() {
            return Err(refusal(status, &body));
        }
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::internal("reading a runner's figures", e))
    }

    async fn send(
        &self,
        id: &str,
        mut request: Request<Body>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, LinkError> {
        let known = self
            .addrs
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .ok_or(LinkError::Unknown)?;
        let path = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        *request.uri_mut() = format!("http://{}{path}", host_of(id, known.generation))
            .parse()
            .map_err(|_| LinkError::Refused {
                status: hyper::StatusCode::BAD_REQUEST,
                reply: ErrorReply::new(ErrorCode::BadRequest, format!("bad path {path:?}")),
            })?;
        let headers = request.headers_mut();
        headers.insert(
            hyper::header::HOST,
            hyper::header::HeaderValue::from_static("runner"),
        );
        if let RunnerAddr::Tcp { token, .. } = &known.addr
            && let Ok(value) = hyper::header::HeaderValue::from_str(&format!("Bearer {token}"))
        {
            headers.insert(hyper::header::AUTHORIZATION, value);
        }
        // A pooled connection can be closed by the runner just as it is handed out (after an
        // upload it cut short, say); hyper retries only requests it never wrote. A request
        // with no body that cannot change anything (GET, HEAD) is safe to send once more.
        let replay = replayable(&request);
        let first = self.client.request(request).await;
        let answer = match (first, replay) {
            (Err(e), Some(again)) if !e.is_connect() && !body_too_large(&e) => {
                tracing::debug!(error = %e, "a reused runner connection failed; sending again");
                self.client.request(again).await
            }
            (answer, _) => answer,
        };
        answer.map_err(|e| {
            if body_too_large(&e) {
                return LinkError::Refused {
                    status: hyper::StatusCode::PAYLOAD_TOO_LARGE,
                    reply: ErrorReply::new(ErrorCode::TooLarge, "the request body is too large"),
                };
            }
            if e.is_connect() {
                // A runner that went away: forgotten until the manager sees it again.
                self.forget(id);
            }
            let cause = std::error::Error::source(&e)
                .map(|s| s.to_string())
                .unwrap_or_else(|| e.to_string());
            LinkError::Connect(cause)
        })
    }

    /// `GET /files/{path}` on the runner of workspace `id`: a file's bytes or a folder's
    /// listing, at most `max` bytes (more is `too_large`). Anything but a success is the
    /// runner's error (`not_found` for a path that is not there).
    pub(crate) async fn read_file(
        &self,
        id: &str,
        path: &str,
        max: usize,
    ) -> Result<bytes::Bytes, ApiError> {
        let request = Request::get(format!("/files/{}", encode_path(path)))
            .body(Body::empty())
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let answer = self.request(id, request).await?;
        let status = answer.status();
        let body = read_limited(answer, max, path).await?;
        if !status.is_success() {
            return Err(refusal(status, &body));
        }
        Ok(body)
    }

    /// Opens a WebSocket to `path_and_query` on the runner of workspace `id` and returns the
    /// upgraded stream, or the runner's refusal (its status and JSON error) as an error.
    pub(crate) async fn websocket(
        &self,
        id: &str,
        path_and_query: &str,
    ) -> Result<TokioIo<hyper::upgrade::Upgraded>, LinkError> {
        let request = Request::builder()
            .method("GET")
            .uri(path_and_query)
            .header(hyper::header::CONNECTION, "Upgrade")
            .header(hyper::header::UPGRADE, "websocket")
            .header(hyper::header::SEC_WEBSOCKET_VERSION, "13")
            .header(hyper::header::SEC_WEBSOCKET_KEY, websocket_key());
        self.upgrade(id, request).await.map(TokioIo::new)
    }

    /// Asks the runner of workspace `id` to adopt a terminal socket (`path_and_query`, its
    /// `/terminals/{id}/adopt` route, see `handover.rs`). `None` when the runner is not on
    /// this machine (no descriptor can reach it): the caller relays as usual.
    pub(crate) async fn adopt(
        &self,
        id: &str,
        path_and_query: &str,
    ) -> Result<Option<tokio::net::UnixStream>, LinkError> {
        let local = matches!(
            self.addrs.lock().unwrap().get(id).map(|k| &k.addr),
            Some(RunnerAddr::Unix { .. })
        );
        if !local {
            return Ok(None);
        }
        let request = Request::builder()
            .method("GET")
            .uri(path_and_query)
            .header(hyper::header::CONNECTION, "Upgrade")
            .header(hyper::header::UPGRADE, cove_protocol::handover::UPGRADE);
        let upgraded = match self.upgrade(id, request).await {
            Ok(upgraded) => upgraded,
            // A runner started by an older server (runners outlive it) has no such route: it
            // answers 404 outside the API's error shape. Its sockets are relayed.
            Err(LinkError::Refused { status, reply })
                if status == hyper::StatusCode::NOT_FOUND && reply.code == ErrorCode::Internal =>
            {
                tracing::debug!(workspace = %id, "the runner cannot adopt sockets; relaying");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        match upgraded.downcast::<TokioIo<RunnerIo>>() {
            Ok(parts) if parts.read_buf.is_empty() => match parts.io.into_inner() {
                RunnerIo::Unix(stream) => Ok(Some(stream)),
                RunnerIo::Tcp(_) => Err(LinkError::Connect("a hand-over over TCP".into())),
            },
            _ => Err(LinkError::Connect(
                "the runner's hand-over connection is not what was opened".into(),
            )),
        }
    }

    /// Sends an upgrade request and returns the upgraded connection, or the runner's refusal.
    async fn upgrade(
        &self,
        id: &str,
        request: hyper::http::request::Builder,
    ) -> Result<hyper::upgrade::Upgraded, LinkError> {
        let request = request
            .body(Body::empty())
            .map_err(|e| LinkError::Refused {
                status: hyper::StatusCode::BAD_REQUEST,
                reply: ErrorReply::new(ErrorCode::BadRequest, e.to_string()),
            })?;
        let mut response = self.request(id, request).await?;
        if response.status() != hyper::StatusCode::SWITCHING_PROTOCOLS {
            use http_body_util::BodyExt;
            let status = response.status();
            let body = http_body_util::Limited::new(response.into_body(), 16 * 1024)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            // The runner answers refusals in the API's error shape; anything else is a fault.
            let reply = match serde_json::from_slice::<RestError>(&body) {
                Ok(rest) => rest.error,
                Err(_) => ErrorReply::new(
                    ErrorCode::Internal,
                    format!("the workspace answered {status} to a socket"),
                ),
            };
            // A refusal is the runner's to give (4xx, 5xx); anything else, or a 401 (the link's
            // own credentials, not the person's), means the link is broken.
            if !(status.is_client_error() || status.is_server_error())
                || status == hyper::StatusCode::UNAUTHORIZED
            {
                tracing::warn!(workspace = %id, %status, "the runner answered a socket unexpectedly");
                return Err(LinkError::Connect(format!("the runner answered {status}")));
            }
            return Err(LinkError::Refused { status, reply });
        }
        hyper::upgrade::on(&mut response)
            .await
            .map_err(|e| LinkError::Connect(e.to_string()))
    }
}

/// The URI host that names one runner of workspace `id` to the pool.
fn host_of(id: &str, generation: u64) -> String {
    format!("w-{id}.g{generation}.runner")
}

/// A copy of `request` to send again if it is a GET or HEAD without a body, else `None`.
fn replayable(request: &Request<Body>) -> Option<Request<Body>> {
    use hyper::body::Body as _;
    let safe = matches!(*request.method(), hyper::Method::GET | hyper::Method::HEAD);
    if !safe || request.body().size_hint().exact() != Some(0) {
        return None;
    }
    let mut copy = Request::builder()
        .method(request.method().clone())
        .uri(request.uri().clone())
        .version(request.version())
        .body(Body::empty())
        .ok()?;
    *copy.headers_mut() = request.headers().clone();
    Some(copy)
}

/// The request's body was cut by a size limit on its way in (a chunked upload beyond the
/// file size limit, say): the client's fault, not the runner's.
fn body_too_large(e: &hyper_util::client::legacy::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if cause.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = cause.source();
    }
    false
}

fn websocket_key() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes())
}

/// Opens connections for the pool: the runner's address, looked up by the URI's host.
#[derive(Clone)]
struct Connector {
    addrs: Addresses,
}

impl tower_service::Service<hyper::Uri> for Connector {
    type Response = TokioIo<RunnerIo>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TokioIo<RunnerIo>>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: hyper::Uri) -> Self::Future {
        let wanted = uri
            .host()
            .and_then(|h| h.strip_prefix("w-"))
            .and_then(|h| h.strip_suffix(".runner"))
            .and_then(|h| h.rsplit_once(".g"))
            .and_then(|(id, generation)| Some((id.to_string(), generation.parse::<u64>().ok()?)));
        // Only the runner the request was meant for: not one that replaced it since.
        let addr = wanted.and_then(|(id, generation)| {
            self.addrs
                .lock()
                .unwrap()
                .get(&id)
                .filter(|known| known.generation == generation)
                .map(|known| known.addr.clone())
        });
        Box::pin(async move {
            let addr = addr.ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "the runner is not known")
            })?;
            let io = match &addr {
                RunnerAddr::Unix { path, peer } => RunnerIo::Unix(connect_unix(path, peer).await?),
                RunnerAddr::Tcp { authority, .. } => {
                    let stream = tokio::net::TcpStream::connect(authority).await?;
                    stream.set_nodelay(true)?;
                    RunnerIo::Tcp(stream)
                }
            };
            Ok(TokioIo::new(io))
        })
    }
}

/// A connection to a runner, whatever carries it.
enum RunnerIo {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
}

impl Connection for RunnerIo {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for RunnerIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            RunnerIo::Unix(s) => Pin::new(s).poll_read(cx, buf),
            RunnerIo::Tcp(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for RunnerIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            RunnerIo::Unix(s) => Pin::new(s).poll_write(cx, buf),
            RunnerIo::Tcp(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            RunnerIo::Unix(s) => Pin::new(s).poll_flush(cx),
            RunnerIo::Tcp(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            RunnerIo::Unix(s) => Pin::new(s).poll_shutdown(cx),
            RunnerIo::Tcp(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Connects to a runner's Unix socket. Refuses (with `PermissionDenied` and the reason) a
/// path that is not a socket owned by this process's user and closed to everyone else (a
/// link, say), and a socket answered by anyone but the runner: the server runs as root and
/// must never be talked into connecting to something a workspace planted.
pub(crate) async fn connect_unix(
    path: &std::path::Path,
    peer: &RunnerPeer,
) -> io::Result<tokio::net::UnixStream> {
    let stream = cove_backend::connect_unix(path, peer).await;
    if let Err(e) = &stream
        && e.kind() == io::ErrorKind::PermissionDenied
    {
        // Someone else answers (or a link sits) where the runner should be.
        tracing::error!(error = %e, "a runner socket failed its check");
    }
    stream
}
