//! How the server hands a terminal socket's client connection to a runner (the runner's
//! `adopt.rs` says the whole exchange). After the runner answers `GET
//! /terminals/{id}/adopt` with 101 and `Upgrade: cove-adopt`, the server sends a header of
//! [`HEADER_LEN`] bytes: the kind ([`ADOPT`] or [`RELAY`]), then the length of the early
//! bytes as a little-endian u32, then the early bytes (what the client sent past its
//! upgrade request, already read by the server). With [`ADOPT`] the client's connection
//! travels with the header's first byte (`SCM_RIGHTS`).

/// The `Upgrade` token of the adopt request.
pub const UPGRADE: &str = "cove-adopt";

/// The client's connection is attached: the runner serves it directly.
pub const ADOPT: u8 = b'F';

/// No connection: the WebSocket is relayed over the adopt connection itself.
pub const RELAY: u8 = b'P';

/// From the server on an adopted socket's lease: the caller's access was revoked.
pub const REVOKE: u8 = b'X';

/// The header: kind, then the early bytes' length.
pub const HEADER_LEN: usize = 5;

/// Most early bytes a header may announce (a client does not send much before it has read
/// `attached`; a larger figure is a broken server).
pub const MAX_EARLY_BYTES: usize = 4 * 1024 * 1024;

/// The header for `kind` and `early` bytes.
pub fn header(kind: u8, early: usize) -> [u8; HEADER_LEN] {
    let len = u32::try_from(early).unwrap_or(u32::MAX).to_le_bytes();
    [kind, len[0], len[1], len[2], len[3]]
}
