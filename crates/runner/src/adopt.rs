//! Terminal sockets whose client connection the server hands over, so that a terminal's bytes
//! go from the runner to the client with no relay in between (a hop and a copy less), and the
//! socket outlives a server restart.
//!
//! The exchange, on one connection from the server ([`cove_protocol::handover`]):
//! 1. `GET /terminals/{id}/adopt?...` with the raw socket's query and `Upgrade: cove-adopt`.
//!    The runner checks it as it checks a terminal socket (`http::open_terminal`) and
//!    answers 101, or refuses as it would refuse the socket. The server has already checked
//!    who the caller is and what they may do; view mode is enforced here, where input
//!    reaches the PTY.
//! 2. The server sends a header: [`ADOPT`] with the client's TCP connection attached
//!    (`SCM_RIGHTS`) and the bytes it had read past the upgrade; or [`RELAY`]: no connection
//!    (a TLS one, which only the server can decrypt, or a runner reached over TCP), and the
//!    client's WebSocket is relayed over this connection.
//! 3. After [`ADOPT`] this connection is the socket's lease: the runner closes it when the
//!    socket ends (the server then forgets the socket), the server writes [`REVOKE`] when the
//!    caller's access goes (the socket closes with 1008), and if the server goes away (end of
//!    file) the socket carries on.

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use cove_protocol::handover::{ADOPT, HEADER_LEN, MAX_EARLY_BYTES, RELAY, REVOKE, UPGRADE};
use cove_protocol::rest::TerminalQuery;
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, protocol::frame::coding::CloseCode};
use tokio_util::sync::CancellationToken;

use crate::Workspace;
use crate::http::{ConnectionFd, Opened, open_terminal};
use crate::raw::Ending;

/// `GET /terminals/{id}/adopt`: step 1 above.
pub(crate) async fn adopt(
    State(ws): State<Arc<Workspace>>,
    Path(id): Path<String>,
    query: Result<Query<TerminalQuery>, axum::extract::rejection::QueryRejection>,
    mut request: Request,
) -> Response {
    let upgrading = request
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|u| u.as_bytes().eq_ignore_ascii_case(UPGRADE.as_bytes()));
    // HTTP/1.1 only: the connection's descriptor is this request's alone (HTTP/2 would
    // share it between streams).
    if !upgrading || request.version() != axum::http::Version::HTTP_11 {
        return (
            StatusCode::BAD_REQUEST,
            "expected an HTTP/1.1 request with Upgrade: cove-adopt",
        )
            .into_response();
    }
    let opened = match open_terminal(&ws, id, query) {
        Ok(opened) => opened,
        Err(refusal) => return refusal.into_response(),
    };
    // The connection's descriptor, duplicated now while the connection is sure to be open:
    // the header and the client's connection are received on it (`recvmsg`), the rest is
    // read through the upgraded stream, which nothing else reads meanwhile.
    let Some(fd) = request.extensions().get::<ConnectionFd>().copied() else {
        return (
            StatusCode::BAD_REQUEST,
            "a hand-over needs the runner's Unix socket",
        )
            .into_response();
    };
    // SAFETY: the descriptor is this request's connection, open while the request is served.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd.0) };
    let control = match rustix::io::fcntl_dupfd_cloexec(borrowed, 0) {
        Ok(control) => control,
        Err(e) => {
            tracing::warn!(error = %e, "cannot take a hand-over");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    let shutdown = ws.shutdown.clone();
    ws.tasks.spawn(async move {
        let lease = match on_upgrade.await {
            Ok(upgraded) => TokioIo::new(upgraded),
            Err(e) => {
                tracing::warn!(error = %e, "a hand-over ended before it began");
                return;
            }
        };
        if let Err(e) = take_over(lease, control, opened, shutdown).await {
            tracing::warn!(error = %e, "a terminal socket hand-over failed");
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, UPGRADE)
        .body(axum::body::Body::empty())
        .expect("a valid response")
}

/// Steps 2 and 3: takes the client's connection (or the relay) and serves the socket.
async fn take_over(
    mut lease: TokioIo<hyper::upgrade::Upgraded>,
    control: OwnedFd,
    opened: Opened,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(1024 * 1024))
        .max_frame_size(Some(1024 * 1024))
        .read_buffer_size(crate::http::READ_BUFFER);
    // The whole header within a bound: a server that stalls mid-way does not hold a task.
    let (kind, client, early) = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        receive(&mut lease, control),
    )
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no hand-over header"))??;
    let revoked = CancellationToken::new();
    match (kind, client) {
        (ADOPT, Some(client)) => {
            let client = std::net::TcpStream::from(client);
            client.set_nonblocking(true)?;
            let client = tokio::net::TcpStream::from_std(client)?;
            let socket =
                WebSocketStream::from_partially_read(client, early, Role::Server, Some(config))
                    .await;
            let ending = Ending {
                shutdown,
                revoked: revoked.clone(),
            };
            // The lease: a revocation from the server, or its end (the server went away:
            // the socket carries on). It is dropped with this task, which tells the server
            // the socket ended.
            let watch = async {
                let mut byte = [0u8; 1];
                while let Ok(1) = lease.read(&mut byte).await {
                    if byte[0] == REVOKE {
                        revoked.cancel();
                    }
                }
                std::future::pending::<()>().await
            };
            tokio::select! {
                _ = serve(socket, opened, ending) => {}
                _ = watch => {}
            }
        }
        (RELAY, None) => {
            let socket =
                WebSocketStream::from_partially_read(lease, early, Role::Server, Some(config))
                    .await;
            serve(socket, opened, Ending { shutdown, revoked }).await;
        }
        _ => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "a hand-over header that is neither adopt nor relay",
            ));
        }
    }
    Ok(())
}

/// Reads the header and the descriptor passed with it (on `control`, the connection's
/// descriptor), then the early bytes.
async fn receive(
    lease: &mut TokioIo<hyper::upgrade::Upgraded>,
    control: OwnedFd,
) -> std::io::Result<(u8, Option<OwnedFd>, Vec<u8>)> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, recvmsg};
    use std::io::IoSliceMut;
    use std::mem::MaybeUninit;
    let mut header = [0u8; HEADER_LEN];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut ancillary = RecvAncillaryBuffer::new(&mut space);
    // A second descriptor of the same socket (already non-blocking), to wait on.
    let control = tokio::net::UnixStream::from_std(std::os::unix::net::UnixStream::from(control))?;
    let read = control
        .async_io(tokio::io::Interest::READABLE, || {
            recvmsg(
                &control,
                &mut [IoSliceMut::new(&mut header)],
                &mut ancillary,
                RecvFlags::DONTWAIT | RecvFlags::CMSG_CLOEXEC,
            )
            .map(|message| message.bytes)
            .map_err(std::io::Error::from)
        })
        .await?;
    drop(control);
    if read == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the server left before handing over",
        ));
    }
    let mut client = None;
    for message in ancillary.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            for fd in fds {
                // One is expected; any other is closed as it drops.
                client.get_or_insert(fd);
            }
        }
    }
    if read < HEADER_LEN {
        lease.read_exact(&mut header[read..]).await?;
    }
    let early_len = u32::from_le_bytes(header[1..5].try_into().expect("four bytes")) as usize;
    if early_len > MAX_EARLY_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "too many early bytes in a hand-over",
        ));
    }
    let mut early = vec![0u8; early_len];
    lease.read_exact(&mut early).await?;
    Ok((header[0], client, early))
}

/// Serves the terminal socket on a tungstenite WebSocket, as `raw::serve` does on axum's.
async fn serve<S>(socket: WebSocketStream<S>, opened: Opened, ending: Ending)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let (sink, stream) = socket.split();
    let sink = sink
        .sink_map_err(axum::Error::new)
        .with(|m: Message| std::future::ready(Ok::<_, axum::Error>(to_tungstenite(m))));
    let stream = stream.filter_map(|m| {
        std::future::ready(match m {
            Ok(m) => from_tungstenite(m).map(Ok),
            Err(e) => Some(Err(axum::Error::new(e))),
        })
    });
    let mut sink = Box::pin(sink);
    let stream = Box::pin(stream);
    match opened {
        Opened::Terminal(terminal, attach) => {
            crate::raw::serve(terminal, sink, stream, attach, ending).await
        }
        Opened::Refused(e) => crate::raw::refuse(&mut sink, e.to_reply()).await,
    }
}

fn to_tungstenite(message: Message) -> tungstenite::Message {
    match message {
        Message::Text(text) => tungstenite::Message::Text(text.as_str().into()),
        Message::Binary(bytes) => tungstenite::Message::Binary(bytes),
        Message::Ping(bytes) => tungstenite::Message::Ping(bytes),
        Message::Pong(bytes) => tungstenite::Message::Pong(bytes),
        Message::Close(frame) => {
            tungstenite::Message::Close(frame.map(|f| tungstenite::protocol::CloseFrame {
                code: CloseCode::from(f.code),
                reason: f.reason.as_str().into(),
            }))
        }
    }
}

fn from_tungstenite(message: tungstenite::Message) -> Option<Message> {
    Some(match message {
        tungstenite::Message::Text(text) => Message::Text(Utf8Bytes::from(text.as_str())),
        tungstenite::Message::Binary(bytes) => Message::Binary(bytes),
        tungstenite::Message::Ping(bytes) => Message::Ping(bytes),
        tungstenite::Message::Pong(bytes) => Message::Pong(bytes),
        tungstenite::Message::Close(frame) => Message::Close(frame.map(|f| CloseFrame {
            code: f.code.into(),
            reason: Utf8Bytes::from(f.reason.as_str()),
        })),
        tungstenite::Message::Frame(_) => return None,
    })
}
