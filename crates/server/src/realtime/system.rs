//! `/system`: `subscribe:stats {workspaceId?}` -> `stats` about once a second, until
//! `unsubscribe:stats`. With a workspace, its figures; without, those of every running
//! workspace the caller may see, and for an administrator the host's and the server's
//! (open connections by kind, start latency, recent errors): what the admin dashboard shows.
//!
//! Figures come from each runner's `GET /stats`, shared between every subscriber and the
//! metrics collector: a runner is asked at most about once a second however many watch it.

use cove_protocol::realtime::{HostStats, StatsEvent, StatsSubscription, WorkspaceStats};
use cove_protocol::rest::WorkspaceState;
use serde_json::Value;
use socketioxide::extract::SocketRef;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use super::outlet::Outlet;
use super::{Client, Refused, on, payload};
use crate::AppState;
use crate::error::ApiError;
use crate::workspaces::Found;

/// How often `stats` is sent.
const EVERY: Duration = Duration::from_secs(1);

/// Figures younger than this are not asked for again.
const FRESH: Duration = Duration::from_millis(900);

/// The one subscription key: subscribing again replaces what the socket follows.
const KEY: &str = "stats";

pub(super) fn on_connect(client: &Arc<Client>, socket: &SocketRef) {
    on(client, socket, "subscribe:stats", subscribe);
    on(
        client,
        socket,
        "unsubscribe:stats",
        |client, _, _| async move {
            client.unsubscribe(KEY);
            Ok(())
        },
    );
}

async fn subscribe(client: Arc<Client>, socket: SocketRef, value: Value) -> Result<(), Refused> {
    // `subscribe:stats` with no payload at all means every workspace.
    let asked: StatsSubscription = if value.is_null() {
        StatsSubscription::default()
    } else {
        payload("subscribe:stats", value)?
    };
    let found = match &asked.workspace_id {
        Some(id) => Some(client.find(id).await?),
        None => None,
    };
    let app = client.app.clone();
    let caller_client = client.clone();
    let observer = app.observer.clone();
    let one = found.as_ref().map(|f| f.row.id.clone());
    client
        .subscribe(KEY.to_string(), found.as_ref(), move |stop| async move {
            // A `stats` that does not fit is not worth a notice: the next one replaces it.
            let mut outlet = Outlet::new(socket, "system", observer).without_notices();
            tick(&app, &caller_client, one.as_deref(), &mut outlet, &stop).await;
        })
        .map_err(|e| Refused(e, asked.workspace_id.clone()))
}

/// Sends `stats` every [`EVERY`] until `stop`.
async fn tick(
    app: &AppState,
    client: &Client,
    one: Option<&str>,
    outlet: &mut Outlet,
    stop: &CancellationToken,
) {
    let mut every = tokio::time::interval(EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        let event = tokio::select! {
            _ = stop.cancelled() => return,
            event = figures(app, client, one) => event,
        };
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                let error = super::realtime_error(&e, Some("subscribe:stats"), one);
                let _ = outlet.surely("error", &error, no_notice, stop).await;
                return;
            }
        };
        if outlet.offer("stats", &event, 0, no_notice).is_err() {
            return;
        }
    }
}

/// Never called: the outlet sends no notices.
fn no_notice(_: super::outlet::Missed) -> (&'static str, Value) {
    ("", Value::Null)
}

/// One `stats` event for this client.
async fn figures(
    app: &AppState,
    client: &Client,
    one: Option<&str>,
) -> Result<StatsEvent, ApiError> {
    let rows: Vec<Found> = match one {
        Some(id) => vec![app.manager.find(&client.caller, id).await?],
        None => app.manager.visible(&client.caller).await?,
    };
    let running = rows
        .iter()
        .filter(|f| f.row.state == WorkspaceState::Running)
        .count() as u64;
    let mut workspaces = Vec::new();
    for found in rows
        .into_iter()
        .filter(|f| f.row.state == WorkspaceState::Running)
    {
        let row = found.row;
        let stats = match app.observer.figures_of(&row.id, FRESH) {
            Some(stats) => stats,
            None => match app.manager.link().stats(&row.id).await {
                Ok(stats) => {
                    app.observer.record_figures(&row.id, stats.clone());
                    stats
                }
                // Not reachable this second (stopping, or not yet known to the link).
                Err(_) => continue,
            },
        };
        workspaces.push(WorkspaceStats {
            workspace_id: row.id,
            name: row.name,
            owner: row.owner_name,
            stats: stats.stats,
            terminals: stats.terminals,
            processes: stats.processes,
        });
    }
    let host = (one.is_none() && client.caller.is_admin()).then(|| host(app, running));
    Ok(StatsEvent { workspaces, host })
}

/// The machine's and the server's figures, for administrators.
fn host(app: &AppState, running: u64) -> HostStats {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| -> u64 {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kib| kib * 1024)
    };
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let (starts, start_mean_ms) = app.observer.start_latency();
    let connections = crate::health::open_connections(app);
    HostStats {
        cpu_count: std::thread::available_parallelism().map_or(1, |n| n.get() as u64),
        load,
        memory_total_bytes: field("MemTotal:"),
        memory_available_bytes: field("MemAvailable:"),
        server_memory_bytes: crate::observe::rss_bytes().unwrap_or(0),
        connections,
        running_workspaces: running,
        starts,
        start_mean_ms,
        recent_errors: app.observer.recent_errors(),
    }
}
