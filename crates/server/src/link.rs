//! The link from the server to a runner: a byte stream over a Unix socket (local) or TCP
//! with a bearer token (Kubernetes), used for WebSocket relays and HTTP forwarding.

use axum::body::Body;
use cove_backend::RunnerAddr;
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::io;
use std::pin::Pin;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A connected byte stream to a runner.
pub(crate) trait RunnerIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> RunnerIo for T {}

pub(crate) type RunnerStream = Pin<Box<dyn RunnerIo>>;

#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkError {
    #[error("cannot reach the workspace's runner: {0}")]
    Connect(#[source] io::Error),
    #[error("the runner refused the connection: {0}")]
    Handshake(String),
    #[error("the runner did not answer: {0}")]
    Http(#[from] hyper::Error),
}

/// Opens a byte stream to the runner.
pub(crate) async fn connect(addr: &RunnerAddr) -> Result<RunnerStream, LinkError> {
    match addr {
        RunnerAddr::Unix { path, peer } => {
            let stream = cove_backend::connect_unix(path, peer).await.map_err(|e| {
                if e.kind() == io::ErrorKind::PermissionDenied {
                    // Someone else answers (or a link sits) where the runner should be.
                    tracing::error!(error = %e, "a runner socket failed its check");
                }
                LinkError::Connect(e)
            })?;
            Ok(Box::pin(stream))
        }
        RunnerAddr::Tcp { authority, .. } => {
            let stream = tokio::net::TcpStream::connect(authority)
                .await
                .map_err(LinkError::Connect)?;
            stream.set_nodelay(true).map_err(LinkError::Connect)?;
            Ok(Box::pin(stream))
        }
    }
}

fn authorization(addr: &RunnerAddr) -> Option<String> {
    match addr {
        RunnerAddr::Tcp { token, .. } => Some(format!("Bearer {token}")),
        RunnerAddr::Unix { .. } => None,
    }
}

/// Opens a WebSocket to `path_and_query` on the runner. Returns the stream right after the
/// handshake, plus any bytes the runner sent past its 101 head (the first frames may arrive
/// in the same packet): the caller must pass those on before relaying.
pub(crate) async fn websocket(
    addr: &RunnerAddr,
    path_and_query: &str,
) -> Result<(RunnerStream, Vec<u8>), LinkError> {
    let mut stream = connect(addr).await?;
    let key = base64_key();
    let mut head = format!(
        "GET {path_and_query} HTTP/1.1\r\nHost: runner\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if let Some(auth) = authorization(addr) {
        head.push_str(&format!("Authorization: {auth}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(LinkError::Connect)?;
    let mut buf = Vec::with_capacity(1024);
    let end = loop {
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await.map_err(LinkError::Connect)?;
        if n == 0 {
            return Err(LinkError::Handshake(
                "the runner closed the connection".into(),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        if buf.len() > 16 * 1024 {
            return Err(LinkError::Handshake(
                "the runner's answer is too long".into(),
            ));
        }
    };
    let status_line =
        String::from_utf8_lossy(&buf[..buf.iter().position(|b| *b == b'\r').unwrap_or(0)])
            .into_owned();
    if !status_line.starts_with("HTTP/1.1 101") {
        // The runner answers refusals (bad query, unknown format) as JSON errors.
        let body = String::from_utf8_lossy(&buf[end..]).into_owned();
        return Err(LinkError::Handshake(
            format!("{status_line} {body}").trim().to_string(),
        ));
    }
    Ok((stream, buf[end..].to_vec()))
}

/// Sends an HTTP request to the runner and returns its response, bodies streamed both ways.
pub(crate) async fn forward(
    addr: &RunnerAddr,
    mut request: Request<Body>,
    tasks: &tokio_util::task::TaskTracker,
) -> Result<hyper::Response<hyper::body::Incoming>, LinkError> {
    let stream = connect(addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // The connection task ends when the response body has been read (or dropped).
    tasks.spawn(async move {
        if let Err(e) = connection.with_upgrades().await {
            tracing::debug!(error = %e, "runner connection ended");
        }
    });
    request.headers_mut().insert(
        hyper::header::HOST,
        hyper::header::HeaderValue::from_static("runner"),
    );
    if let Some(auth) = authorization(addr)
        && let Ok(value) = hyper::header::HeaderValue::from_str(&auth)
    {
        request
            .headers_mut()
            .insert(hyper::header::AUTHORIZATION, value);
    }
    Ok(sender.send_request(request).await?)
}

fn base64_key() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes())
}
