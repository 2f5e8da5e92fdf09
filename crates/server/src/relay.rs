//! WebSocket relaying with one hop that does not parse frames.
//!
//! The server answers the client's upgrade itself (so it can report progress while a
//! workspace starts), opens its own WebSocket to the runner, and from then on copies bytes in
//! both directions. Client frames arrive masked, as a server (the runner) expects; runner
//! frames are unmasked, as a client expects; neither side negotiated extensions. So the two
//! byte streams are valid for each other as they are, and terminal output crosses the server
//! with no per-frame work at all.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use prometheus_client::metrics::counter::Counter;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::error::ApiError;

/// Buffer size of each copy direction.
const COPY_BUFFER: usize = 64 * 1024;

/// Checks that the request is a WebSocket upgrade and computes `Sec-WebSocket-Accept`.
pub(crate) fn accept_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if !has_token(header::UPGRADE, "websocket") || !has_token(header::CONNECTION, "upgrade") {
        return Err(ApiError::upgrade_required());
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err(ApiError::bad_request(
            "only WebSocket version 13 is supported",
        ));
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or_else(|| ApiError::bad_request("Sec-WebSocket-Key is missing"))?;
    Ok(tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes()))
}

/// The 101 answer to an upgrade.
pub(crate) fn switching_protocols(accept: &str) -> Response {
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(value) = HeaderValue::from_str(accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    response
}

/// Encodes one unmasked frame (server to client).
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= 0xffff => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

/// Writes a text frame of the server's own (progress, errors) before relaying starts.
pub(crate) async fn send_text(
    io: &mut (impl AsyncWrite + Unpin),
    text: &str,
) -> std::io::Result<()> {
    io.write_all(&frame(0x1, text.as_bytes())).await
}

/// Writes a close frame. Close reasons are at most 123 bytes.
pub(crate) async fn send_close(
    io: &mut (impl AsyncWrite + Unpin),
    code: u16,
    reason: &str,
) -> std::io::Result<()> {
    let mut payload = code.to_be_bytes().to_vec();
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    io.write_all(&frame(0x8, &payload)).await?;
    io.flush().await
}

/// The upgraded client connection.
pub(crate) type ClientIo = TokioIo<hyper::upgrade::Upgraded>;

/// Counts open relays of one kind while alive (for `/health` and `/metrics`).
#[derive(Debug)]
pub(crate) struct Gauge(Arc<AtomicI64>);

impl Gauge {
    pub(crate) fn enter(counter: &Arc<AtomicI64>) -> Gauge {
        counter.fetch_add(1, Ordering::Relaxed);
        Gauge(counter.clone())
    }
}

impl Drop for Gauge {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Copies bytes both ways until either side closes, or `stop` fires (server shutdown: the
/// client sees the connection drop; the runner keeps everything running).
pub(crate) async fn pipe(
    mut client: ClientIo,
    runner: impl tokio::io::AsyncRead + AsyncWrite + Unpin,
    stop: tokio_util::sync::CancellationToken,
    counters: (Counter, Counter),
) {
    let mut runner = Counted {
        inner: runner,
        down: counters.0,
        up: counters.1,
    };
    tokio::select! {
        result = tokio::io::copy_bidirectional_with_sizes(&mut client, &mut runner, COPY_BUFFER, COPY_BUFFER) => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "relay ended");
            }
        }
        _ = stop.cancelled() => {
            let _ = send_close(&mut client, 1001, "the server is restarting").await;
        }
    }
}

/// A runner connection that counts the bytes read from it (`down`, to the client) and
/// written to it (`up`) as they pass, for `cove_relay_bytes_total`.
struct Counted<T> {
    inner: T,
    down: Counter,
    up: Counter,
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Counted<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        self.down.inc_by((buf.filled().len() - before) as u64);
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_write(cx, data);
        if let std::task::Poll::Ready(Ok(n)) = &polled {
            self.up.inc_by(*n as u64);
        }
        polled
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_use_the_right_length_encoding() {
        assert_eq!(frame(1, b"hi"), vec![0x81, 2, b'h', b'i']);
        let mid = frame(1, &[0u8; 200]);
        assert_eq!(&mid[..4], &[0x81, 126, 0, 200]);
        let big = frame(2, &vec![0u8; 70_000]);
        assert_eq!(&big[..2], &[0x82, 127]);
        assert_eq!(u64::from_be_bytes(big[2..10].try_into().unwrap()), 70_000);
    }
}
