//! Payloads of the Socket.IO namespaces (docs/PROTOCOL.md section 4), of `POST /api/emit`,
//! and of a runner's `GET /stats` (section 6).
//!
//! Event names are seed 001's: `/processes` (`subscribe:logs` -> `logs`, `stream:closed`),
//! `/system` (`subscribe:stats` -> `stats`), `/files` (`watch` -> `change`), `/mcp`
//! (`join` -> `joined`). Every payload names its workspace, so that one client can follow
//! several.

use serde::{Deserialize, Serialize};

use crate::{ChangeKind, ErrorCode, Stats, Stream};

/// The namespaces cove serves, without the leading `/`.
pub const NAMESPACES: &[&str] = &["processes", "system", "files", "mcp"];

/// `subscribe:logs` / `unsubscribe:logs` on `/processes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct LogsSubscription {
    pub workspace_id: String,
    pub process_id: String,
}

/// `logs`: output of a process, in order; one event may carry several reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct Logs {
    pub workspace_id: String,
    pub process_id: String,
    pub stream: Stream,
    pub data: String,
}

/// `logs:skipped`: this client fell behind and `bytes` of output (at least) were not sent to
/// it; what follows is live again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct LogsSkipped {
    pub workspace_id: String,
    pub process_id: String,
    /// Bytes dropped on the way to this client; a lower bound when the runner's kept log was
    /// outrun too (the message then says "at least").
    pub bytes: u64,
    pub message: String,
}

/// `stream:closed`: the process ended (or its workspace stopped: then `exitCode` is `null`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct StreamClosed {
    pub workspace_id: String,
    pub process_id: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
}

/// `subscribe:stats` / `unsubscribe:stats` on `/system`: one workspace, or (without
/// `workspaceId`) every running workspace the caller may see, plus host totals for an
/// administrator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct StatsSubscription {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
}

/// One running workspace's figures in a `stats` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceStats {
    pub workspace_id: String,
    pub name: String,
    pub owner: String,
    #[serde(flatten)]
    pub stats: Stats,
    pub terminals: u64,
    pub processes: u64,
}

/// The whole machine and server, for administrators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct HostStats {
    pub cpu_count: u64,
    /// 1-minute load average.
    pub load: f64,
    pub memory_total_bytes: u64,
    pub memory_available_bytes: u64,
    pub server_memory_bytes: u64,
    /// Open connections by kind: control, terminal, plain, events, preview, and each
    /// Socket.IO namespace.
    pub connections: std::collections::BTreeMap<String, i64>,
    pub running_workspaces: u64,
    /// Workspace start latency: how many starts, and their mean, in milliseconds.
    pub starts: u64,
    pub start_mean_ms: f64,
    /// The last few failures the server logged (starts, runners), newest first.
    pub recent_errors: Vec<RecentError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct RecentError {
    /// RFC 3339.
    pub at: String,
    pub workspace_id: Option<String>,
    pub message: String,
}

/// `stats`: sent about once a second while subscribed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct StatsEvent {
    pub workspaces: Vec<WorkspaceStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostStats>,
}

/// `watch` / `unwatch` on `/files`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct WatchFiles {
    pub workspace_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// `change`: a file or directory under a watched path changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct FileChange {
    pub workspace_id: String,
    pub path: String,
    pub kind: ChangeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// `join` / `leave` on `/mcp`, and `joined`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct Room {
    pub workspace_id: String,
}

/// `connected`: the first event on every namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct Connected {
    pub namespace: String,
    pub username: String,
}

/// `error` on any namespace: a request that was refused, or a subscription that ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct RealtimeError {
    pub code: ErrorCode,
    pub message: String,
    /// The event that was refused, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
}

/// `POST /api/emit`: another service pushes `event` with `data` to the clients of a
/// namespace that follow workspace `room` (every client of it, without `room`: admins only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmitRequest {
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    pub event: String,
    #[cfg_attr(test, ts(type = "unknown"))]
    pub data: serde_json::Value,
}

/// The answer to `POST /api/emit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct EmitReply {
    /// Clients the event was queued for.
    pub delivered: u64,
    /// Clients that were too far behind to take it.
    pub dropped: u64,
}

/// A runner's `GET /stats`: its figures, for the server's metrics and `/system`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunnerStats {
    #[serde(flatten)]
    pub stats: Stats,
    /// Live terminals and processes.
    pub terminals: u64,
    pub processes: u64,
    /// Processes the kernel killed for memory since the sandbox began (`None` outside one).
    pub oom_kills: Option<u64>,
}
