//! Health and metrics (docs/PROTOCOL.md section 5).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
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
    pub requests: AtomicU64,
    /// Milliseconds since the epoch of the last request.
    pub last_activity: AtomicU64,
}

impl Metrics {
    pub(crate) fn touch(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.last_activity.store(crate::now_ms(), Ordering::Relaxed);
    }

    fn open(&self) -> [(&'static str, i64); 4] {
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

/// `GET /health`, seed 001's shape.
pub(crate) async fn health(State(app): State<Arc<AppState>>) -> Response {
    let open = app.metrics.open();
    axum::Json(Health {
        success: true,
        status: "healthy".to_string(),
        connections: open.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        active_streams: open.iter().map(|(_, n)| n).sum(),
    })
    .into_response()
}

/// `GET /metrics`, Prometheus text format: server-wide counts, for administrators (and
/// their tokens, for a scraper).
pub(crate) async fn metrics(State(app): State<Arc<AppState>>, caller: Caller) -> Response {
    if !caller.is_admin() {
        return ApiError::forbidden("only an administrator may read the server's metrics")
            .into_response();
    }
    let mut out = String::new();
    out.push_str("# HELP cove_open_sockets WebSocket relays open now, by kind.\n# TYPE cove_open_sockets gauge\n");
    for (kind, n) in app.metrics.open() {
        out.push_str(&format!("cove_open_sockets{{kind=\"{kind}\"}} {n}\n"));
    }
    out.push_str("# HELP cove_http_requests_total HTTP requests served.\n# TYPE cove_http_requests_total counter\n");
    out.push_str(&format!(
        "cove_http_requests_total {}\n",
        app.metrics.requests.load(Ordering::Relaxed)
    ));
    if let Ok(rows) = app.manager.all().await {
        out.push_str("# HELP cove_workspaces Workspaces by state.\n# TYPE cove_workspaces gauge\n");
        for state in cove_protocol::rest::WorkspaceState::ALL {
            let n = rows.iter().filter(|w| w.state == state).count();
            out.push_str(&format!("cove_workspaces{{state=\"{state}\"}} {n}\n"));
        }
    }
    if let Some(rss) = rss_bytes() {
        out.push_str("# HELP cove_server_resident_memory_bytes Resident memory of the server process.\n# TYPE cove_server_resident_memory_bytes gauge\n");
        out.push_str(&format!("cove_server_resident_memory_bytes {rss}\n"));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
