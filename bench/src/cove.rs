//! The cove side of the benchmarks: the server as a child process, its HTTP and WebSocket
//! clients, and `cove-bench terminal`'s measurements through it.
//!
//! - [`server`]: `cove serve` started and stopped by the bench (on `cove_test_support::serve`);
//! - [`mod@http`]: REST requests (on `cove_test_support::request`);
//! - [`ws`]: WebSocket clients for the raw terminal socket (PROTOCOL.md section 2) and the
//!   JSON control socket (section 1), also used by the peers' suite (`term.rs`) and the soak;
//! - [`mod@run`]: `cove-bench terminal` against cove: a workspace, then [`raw_socket`] and
//!   [`json_socket`] (throughput and echo latency), then [`memory`].
//!
//! Everything here runs on one current-thread tokio runtime, so the client uses one core.

pub(crate) mod http;
pub(crate) mod json_socket;
pub(crate) mod memory;
pub(crate) mod raw_socket;
pub(crate) mod run;
pub(crate) mod server;
pub(crate) mod ws;

use std::time::Duration;

pub(crate) use http::{http, http_with, json_id};
pub(crate) use memory::MemSnapshot;
pub(crate) use run::{CoveRun, run};
pub(crate) use server::Server;
pub(crate) use ws::{
    Ws, ctl_close_terminal, ctl_connect, ctl_send, describe, expect_attached, msg_type, next_msg,
    raw_path, text_json, urlencode, ws_close, ws_send,
};

/// Timeout of one HTTP request, of a WebSocket handshake, of a reply.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The echo terminal's command (raw mode, no echo, then `cat`).
const ECHO_COMMAND: &str = "stty raw -echo; exec cat";

/// Adds a note once.
pub(crate) fn push_note(notes: &mut Vec<String>, note: String) {
    if !notes.contains(&note) {
        notes.push(note);
    }
}
