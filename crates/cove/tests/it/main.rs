//! Integration tests: the real `cove` binary, real runners, real bash, real sockets.
//!
//! Each test starts its own server on an ephemeral port with a temp data dir.

mod control;
mod files;
mod perimeter;
mod preview;
mod restart;
mod robustness;
mod sandbox;
mod security;
mod seeds;
mod terminals;

use cove_test_support::TestServer;

/// Starts a server from the binary under test.
pub async fn server() -> TestServer {
    TestServer::start(env!("CARGO_BIN_EXE_cove")).await
}
