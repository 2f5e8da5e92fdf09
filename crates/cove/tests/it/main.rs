//! Integration tests: the real `cove` binary, real runners, real bash, real sockets.
//!
//! Each test starts its own server on an ephemeral port with a temp data dir, sandboxed when
//! the tests run as root (as CI does) and with `--sandbox none` otherwise. Tests of the
//! sandbox itself then skip and say why (`cove_test_support::needs_sandbox`).

mod control;
mod files;
mod limits;
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
