//! Integration tests: the real `cove` binary, real runners, real bash, real sockets.
//!
//! Each test starts its own server on an ephemeral port with a temp data dir, sandboxed when
//! the tests run as root (as CI does) and with `--sandbox none` otherwise. Tests of the
//! sandbox itself then skip and say why (`cove_test_support::needs_sandbox`).

mod accounts;
mod archive;
mod backup;
mod cli;
mod control;
mod durability;
mod files;
mod git;
mod hibernate;
mod ide;
mod lifecycle;
mod limits;
mod metrics;
mod perimeter;
mod postgres;
mod preview;
mod preview_signin;
mod realtime;
mod replay;
mod restart;
mod robustness;
mod sandbox;
mod search;
mod security;
mod seeds;
mod sharing;
mod templates;
mod terminals;
mod tls_config;
mod view;

use cove_test_support::TestServer;

/// Starts a server from the binary under test.
pub async fn server() -> TestServer {
    TestServer::start(env!("CARGO_BIN_EXE_cove")).await
}

/// The `code` of a JSON error body.
pub fn error_code(body: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("a JSON error body: {}", String::from_utf8_lossy(body)));
    value["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}
