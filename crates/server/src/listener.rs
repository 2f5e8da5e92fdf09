//! Accepting connections: HTTP/1.1 (over TLS with `--cert`) with a deadline for request heads and a cap on open
//! connections, so slow or abandoned clients cannot take the server's descriptors.
//!
//! A client that has not sent a whole request head within `header_timeout` (slowloris) is
//! disconnected; so is an idle keep-alive connection after the same time. Past
//! `max_connections` HTTP connections, new ones are closed at once (and logged, at most once
//! a minute) rather than queued until the process runs out of descriptors. Upgraded
//! connections (WebSockets) leave the count when they upgrade: they are sockets of the
//! protocol, counted and bounded where they are made.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How connections are accepted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Longest time to receive a request head (and longest idle keep-alive).
    pub header_timeout: Duration,
    /// Most HTTP connections open at once.
    pub max_connections: usize,
}

/// How long in-flight requests get to finish after shutdown begins.
const DRAIN: Duration = Duration::from_secs(5);

/// Serves `router` on `listener` until `shutdown`, then lets open requests finish (for at
/// most a few seconds). With `tls`, each connection first completes a TLS handshake, within
/// `header_timeout`. Connection tasks are tracked by `tasks`.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let last_warning = Arc::new(AtomicU64::new(0));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(100);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: wait a little
                    // instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            let now = crate::now_ms();
            let last = last_warning.load(Ordering::Relaxed);
            if now.saturating_sub(last) > 60_000 {
                last_warning.store(now, Ordering::Relaxed);
                tracing::warn!(
                    max = limits.max_connections,
                    "too many open connections; closing new ones until some end (see --max-connections)"
                );
            }
            drop(stream);
            continue;
        };
        // Nagle's algorithm would hold a small frame that follows another (a prompt right
        // after `terminal_created`) for up to 40 ms waiting for an ACK.
        let _ = stream.set_nodelay(true);
        let (router, http, tls, stop) =
            (router.clone(), http.clone(), tls.clone(), shutdown.clone());
        tasks.spawn(async move {
            let _slot = slot;
            let Some(tls) = tls else {
                return drive(&http, stream, router, peer, stop).await;
            };
            let handshake = tokio::time::timeout(limits.header_timeout, tls.accept(stream));
            let stream = tokio::select! {
                done = handshake => match done {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake took too long");
                        return;
                    }
                },
                _ = stop.cancelled() => return,
            };
            drive(&http, stream, router, peer, stop).await
        });
    }
}

/// Serves HTTP/1.1 on one connection until it ends, or until `stop` (then open requests get
/// [`DRAIN`] to finish).
async fn drive<I>(
    http: &hyper::server::conn::http1::Builder,
    io: I,
    router: Router,
    peer: SocketAddr,
    stop: CancellationToken,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let mut router = router.clone();
        async move { <Router as tower_service::Service<_>>::call(&mut router, request).await }
    });
    let connection = http
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
            return;
        }
        _ = stop.cancelled() => {}
    }
    connection.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(DRAIN, connection).await;
}

/// Raises this process's descriptor limit to the hard limit (systemd and shells often start
/// services with 1024) and returns it.
pub(crate) fn raise_fd_limit() -> u64 {
    let limits = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let mut raised = limits;
    raised.current = limits.maximum;
    if raised.current != limits.current {
        let _ = rustix::process::setrlimit(rustix::process::Resource::Nofile, raised);
    }
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX)
}
