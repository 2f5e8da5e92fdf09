//! Socket.IO at `/socket.io/` (docs/PROTOCOL.md section 4), for clients nobody here wrote:
//! the stock `socket.io-client`, over long-polling or WebSocket.
//!
//! Owns: the namespaces `/processes` (a process's output), `/system` (resource use),
//! `/files` (changes under a folder) and `/mcp` (what agents do in a workspace), who may
//! connect to them, the subscriptions each socket holds, and `POST /api/emit`.
//!
//! A socket is let in only with a caller (the same session cookie or token as every other
//! route, checked by `auth::identify` before the request gets here) and, from a browser, from
//! an allowed origin ([`guard`]). Each namespace socket is a registered connection, held to
//! its owner's connection quota and closed when their session, token or account goes; each
//! subscription to a workspace is registered too, so losing access to the workspace ends it.
//!
//! Each subscription is one task with one view-mode control socket to the workspace's runner
//! (`upstream.rs`): it can read and watch, never change anything. socketioxide keeps
//! [`BUFFER`] packets per connection and then refuses to queue more; a subscription never
//! waits for a slow client and never queues without bound: what does not fit is dropped,
//! counted, and the client is told what it missed before the next thing it gets (`outlet.rs`).

mod client;
mod emit;
mod files;
mod mcp;
mod outlet;
mod processes;
mod system;
mod upstream;

pub(crate) use emit::emit;

use client::{Client, Refused, on, payload, realtime_error};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cove_protocol::realtime::Connected;
use socketioxide::SocketIo;
use socketioxide::extract::SocketRef;
use socketioxide::handler::ConnectHandler as _;
use socketioxide::layer::SocketIoLayer;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::AppState;
use crate::accounts::{Caller, ConnectionKind};

/// Packets socketioxide queues per connection before `emit` is refused.
const BUFFER: usize = 64;

/// Largest packet either way. `logs` events carry at most `processes::BATCH` bytes of
/// text, which JSON can make up to six times larger.
const MAX_PAYLOAD: u64 = 256 * 1024;

/// How long a client has to connect to a namespace after its transport is open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Events of one socket waiting to be handled; more are refused.
const INBOX: usize = 64;

/// One event's handling, queued.
type Job = Box<dyn FnOnce() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// Most subscriptions one socket may hold at once.
const MAX_SUBSCRIPTIONS: usize = 64;

/// The Socket.IO server: its namespaces and their sockets.
#[derive(Debug, Clone)]
pub(crate) struct Realtime {
    io: SocketIo,
    /// Subscriptions running now, for `/health`'s `activeStreams`.
    active: Arc<std::sync::atomic::AtomicI64>,
}

/// The layer that answers `/socket.io/`, and the server behind it (namespaces are added by
/// [`Realtime::register`] once the application state exists).
pub(crate) fn build() -> (SocketIoLayer, Realtime) {
    let (layer, io) = SocketIo::builder()
        .max_buffer_size(BUFFER)
        .max_payload(MAX_PAYLOAD)
        .ws_max_message_size(MAX_PAYLOAD as usize)
        .ws_max_frame_size(MAX_PAYLOAD as usize)
        .ws_read_buffer_size(4096)
        .connect_timeout(CONNECT_TIMEOUT)
        .build_layer();
    (
        layer,
        Realtime {
            io,
            active: Arc::default(),
        },
    )
}

impl Realtime {
    /// Adds the namespaces. They hold the state weakly: the state owns them.
    pub(crate) fn register(&self, app: &Arc<AppState>) {
        for namespace in cove_protocol::realtime::NAMESPACES {
            let admitting = Arc::downgrade(app);
            let starting = Arc::downgrade(app);
            let start = move |socket: SocketRef| {
                let app = starting.clone();
                async move { start(app, socket).await }
            };
            self.io.ns(
                format!("/{namespace}"),
                start.with(move |socket: SocketRef| {
                    let app = admitting.clone();
                    async move { admit(app, socket, namespace).await }
                }),
            );
        }
    }

    /// Open sockets per namespace, by name (`processes`, ...).
    pub(crate) fn counts(&self) -> Vec<(&'static str, i64)> {
        cove_protocol::realtime::NAMESPACES
            .iter()
            .map(|ns| {
                let n = self
                    .io
                    .of(format!("/{ns}"))
                    .map_or(0, |ops| ops.sockets().len());
                (*ns, n as i64)
            })
            .collect()
    }

    /// Emits `event` to the sockets of `namespace` (in `room`, a workspace id, if given):
    /// how many it was queued for, and how many were too far behind to take it.
    pub(crate) async fn broadcast(
        &self,
        namespace: &str,
        room: Option<&str>,
        event: &str,
        data: &serde_json::Value,
    ) -> (u64, u64) {
        let operators = || {
            let all = self.io.of(format!("/{namespace}"))?;
            Some(match room {
                Some(room) => all.to(room.to_string()),
                None => all,
            })
        };
        let (Some(counted), Some(ops)) = (operators(), operators()) else {
            return (0, 0);
        };
        let targets = counted.sockets().len() as u64;
        let dropped = match ops.emit(event, data).await {
            Ok(()) => 0,
            Err(socketioxide::BroadcastError::Socket(errors)) => errors
                .iter()
                .filter(|e| matches!(e, socketioxide::SocketError::InternalChannelFull))
                .count() as u64,
            Err(e) => {
                tracing::warn!(namespace, event, error = %e, "an emitted event could not be sent");
                targets
            }
        };
        (targets.saturating_sub(dropped), dropped)
    }

    /// Subscriptions running now.
    pub(crate) fn subscriptions(&self) -> i64 {
        self.active.load(Ordering::Relaxed)
    }

    /// Disconnects every socket (the server is stopping).
    pub(crate) async fn close(&self) {
        self.io.close().await;
    }
}

/// Refuses a browser's Socket.IO request from another origin, for every request of a
/// session (the long-polling GETs and POSTs, and the WebSocket upgrade): a page elsewhere
/// must not read or drive a signed-in person's sockets with their cookie.
pub(crate) async fn guard(
    State(app): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path().starts_with("/socket.io")
        && let Err(e) = crate::perimeter::check_websocket_origin(&app, &request)
    {
        if let Some(caller) = request.extensions().get::<Caller>() {
            app.accounts
                .audit(
                    caller,
                    "socket.refused",
                    "/socket.io/",
                    cove_protocol::accounts::Outcome::Failure,
                    &e.reply.message,
                )
                .await;
        }
        return e.into_response();
    }
    next.run(request).await
}

/// Whether a new socket on `namespace` may connect, and if so its set-up: run before the
/// client is told it is connected (socketioxide sends the CONNECT packet after this and
/// before the handler), so that its event handlers are there for its first event. A refusal
/// is the client's `connect_error`, with the reason.
async fn admit(
    app: Weak<AppState>,
    socket: SocketRef,
    namespace: &'static str,
) -> Result<(), String> {
    let app = app.upgrade().ok_or("the server is stopping")?;
    // `auth::identify` lets no request here without one; refuse rather than trust that.
    let caller = socket
        .req_parts()
        .extensions
        .get::<Caller>()
        .cloned()
        .ok_or("sign in first")?;
    let registered = app
        .accounts
        .open_connection(&caller, None, ConnectionKind::Realtime, &app.shutdown)
        .map_err(|e| e.reply.message)?;
    let client = Client::new(app.clone(), caller, namespace, registered, socket.clone());
    let gone = client.clone();
    socket.on_disconnect(move || {
        let gone = gone.clone();
        async move { gone.close() }
    });
    match namespace {
        "processes" => processes::on_connect(&client, &socket),
        "system" => system::on_connect(&client, &socket),
        "files" => files::on_connect(&client, &socket),
        _ => mcp::on_connect(&client, &socket),
    }
    socket.extensions.insert(client.clone());
    // Should the connection fail between here and [`start`], nothing would call the
    // disconnect handler: the registration goes after the connect timeout. Held weakly,
    // so that a client that went meanwhile frees its place at once.
    let closed = client.registered.closed.clone();
    let unstarted = Arc::downgrade(&client);
    app.tasks.spawn(async move {
        tokio::select! {
            _ = closed.cancelled() => {}
            _ = tokio::time::sleep(CONNECT_TIMEOUT) => {
                if let Some(client) = unstarted.upgrade()
                    && !client.started.load(Ordering::Relaxed)
                {
                    client.close();
                }
            }
        }
    });
    Ok(())
}

/// A socket that was let in and is now connected: it is greeted, and watched for its
/// caller's session ending.
async fn start(app: Weak<AppState>, socket: SocketRef) {
    let (Some(app), Some(client)) = (app.upgrade(), socket.extensions.get::<Arc<Client>>()) else {
        let _ = socket.disconnect();
        return;
    };
    client.started.store(true, Ordering::Relaxed);
    if !socket.connected() {
        client.close();
        return;
    }
    tracing::debug!(
        namespace = client.namespace,
        user = %client.caller.user.username,
        transport = ?socket.transport_type(),
        "Socket.IO client connected"
    );
    let _ = socket.emit(
        "connected",
        &Connected {
            namespace: format!("/{}", client.namespace),
            username: client.caller.user.username.clone(),
        },
    );
    // Events are handled from now on, in order, after `connected`.
    let jobs = client.jobs.lock().unwrap().take();
    if let Some(mut jobs) = jobs {
        let closed = client.registered.closed.clone();
        app.tasks.spawn(async move {
            loop {
                let job = tokio::select! {
                    _ = closed.cancelled() => return,
                    job = jobs.recv() => job,
                };
                match job {
                    Some(job) => job().await,
                    None => return,
                }
            }
        });
    }
    // The caller's session or token ended, or the server stops: the socket goes too, even
    // when its queue is full (a disconnect packet must fit: retried, bounded).
    let closed = client.registered.closed.clone();
    app.tasks.spawn(async move {
        closed.cancelled().await;
        let socket = client.socket.lock().unwrap().take();
        client.close();
        let Some(socket) = socket else {
            return;
        };
        socket.leave_all();
        for _ in 0..100 {
            match socket.clone().disconnect() {
                Err(socketioxide::SocketError::InternalChannelFull) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                _ => return,
            }
        }
        tracing::debug!("a Socket.IO client that takes nothing could not be told to go");
    });
}
