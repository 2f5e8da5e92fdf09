//! Health and metrics (docs/PROTOCOL.md section 5).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::AppState;
use crate::accounts::Caller;
use crate::error::ApiError;
use cove_protocol::rest::{Health, Healthz};

/// How long after the last activity the server still reports itself `alive` (code-server's
/// heartbeat semantics: tools use it to shut idle machines down).
const ALIVE_FOR_MS: u64 = 5 * 60 * 1000;

/// Counters the health routes report.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub control: Arc<AtomicI64>,
    pub terminal: Arc<AtomicI64>,
    pub plain: Arc<AtomicI64>,
    /// Live feeds of `GET /api/events`.
    pub events: Arc<AtomicI64>,
    /// Milliseconds since the epoch of the last request.
    pub last_activity: AtomicU64,
}

impl Metrics {
    pub(crate) fn touch(&self) {
        self.last_activity.store(crate::now_ms(), Ordering::Relaxed);
    }

    pub(crate) fn open(&self) -> [(&'static str, i64); 4] {
        [
            ("control", self.control.load(Ordering::Relaxed)),
            ("terminal", self.terminal.load(Ordering::Relaxed)),
            ("plain", self.plain.load(Ordering::Relaxed)),
            ("events", self.events.load(Ordering::Relaxed)),
        ]
    }
}

/// `GET /healthz`, code-server's shape.
pub(crate) async fn healthz(State(app): State<Arc<AppState>>) -> Response {
    let last = app.metrics.last_activity.load(Ordering::Relaxed);
    let busy = app.metrics.open().iter().any(|(_, n)| *n > 0);
    let alive = busy || crate::now_ms().saturating_sub(last) < ALIVE_FOR_MS;
    let heartbeat = if busy { crate::now_ms() } else { last };
    axum::Json(Healthz {
        status: if alive { "alive" } else { "expired" }.to_string(),
        last_heartbeat: heartbeat,
    })
    .into_response()
}

/// Open connections by kind (control, terminal, plain, events) and Socket.IO namespace.
pub(crate) fn open_connections(app: &AppState) -> BTreeMap<String, i64> {
    let mut open: BTreeMap<String, i64> = app
        .metrics
        .open()
        .iter()
        .map(|(k, n)| (k.to_string(), *n))
        .collect();
    for (namespace, n) in app.realtime.counts() {
        open.insert(namespace.to_string(), n);
    }
    open
}

/// `GET /health`, seed 001's shape: `connections` counts every socket kind and Socket.IO
/// namespace; `activeStreams` the relays and subscriptions that carry data now.
pub(crate) async fn health(State(app): State<Arc<AppState>>) -> Response {
    let connections = open_connections(&app);
    let relays: i64 = app.metrics.open().iter().map(|(_, n)| n).sum();
    axum::Json(Health {
        success: true,
        status: "healthy".to_string(),
        connections,
        active_streams: relays + app.realtime.subscriptions(),
    })
    .into_response()
}

/// `GET /metrics`, Prometheus text format (see `observe.rs`), for administrators (and
/// their tokens, for a scraper).
pub(crate) async fn metrics(State(app): State<Arc<AppState>>, caller: Caller) -> Response {
    if !caller.is_admin() {
        return ApiError::forbidden("only an administrator may read the server's metrics")
            .into_response();
    }
    let connections = open_connections(&app);
    let mut states = Vec::new();
    if let Ok(rows) = app.manager.all().await {
        for state in cove_protocol::rest::WorkspaceState::ALL {
            let n = rows.iter().filter(|w| w.state == state).count();
            states.push((state.to_string(), n as i64));
        }
    }
    let text = app.observer.render(&connections, &states);
    (
        [(
            header::CONTENT_TYPE,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )],
        text,
    )
        .into_response()
}
