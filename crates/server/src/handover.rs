//! Handing a terminal socket's client connection to the workspace's runner, so that the
//! terminal's bytes go runner → client with no relay in between, and the socket outlives a
//! server restart. The exchange is the runner's to describe (its `adopt.rs`; the wire
//! constants are [`cove_protocol::handover`]); this side sends the connection and then holds
//! the lease.
//!
//! Everything that refuses a socket happens before, in `api/sockets.rs`: the caller, the
//! Origin, the quotas, the workspace's access and the socket's mode. Only plain TCP
//! connections can be handed over; a TLS one is relayed over the adopt connection (only the
//! server has its keys), and so is every socket of a runner on another machine.

use cove_protocol::handover::{ADOPT, RELAY, REVOKE, header};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpStream, UnixStream};
use tokio_util::sync::CancellationToken;

/// How a socket went to the runner.
pub(crate) enum HandedOver {
    /// The runner has the client's connection; this is the lease.
    Adopted(UnixStream),
    /// The client's bytes are to be relayed to the runner over this connection.
    Relay(TokioIo<Upgraded>, UnixStream),
}

/// Sends the client's connection (`client`, just upgraded) over `lease`.
pub(crate) async fn hand_over(client: Upgraded, mut lease: UnixStream) -> io::Result<HandedOver> {
    let parts = match client.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => parts,
        Err(client) => {
            lease.write_all(&header(RELAY, 0)).await?;
            return Ok(HandedOver::Relay(TokioIo::new(client), lease));
        }
    };
    let connection = parts.io.into_inner();
    let early = parts.read_buf;
    let head = header(ADOPT, early.len());
    let sent = lease
        .async_io(Interest::WRITABLE, || {
            send_with_descriptor(&lease, &head, &early, &connection)
        })
        .await?;
    // The runner holds the connection now; this copy closes.
    drop(connection);
    let rest: Vec<u8> = head
        .iter()
        .chain(early.iter())
        .skip(sent)
        .copied()
        .collect();
    lease.write_all(&rest).await?;
    Ok(HandedOver::Adopted(lease))
}

fn send_with_descriptor(
    lease: &UnixStream,
    head: &[u8],
    early: &[u8],
    connection: &TcpStream,
) -> io::Result<usize> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sendmsg};
    use std::io::IoSlice;
    use std::mem::MaybeUninit;
    use std::os::fd::AsFd;
    let fds = [connection.as_fd()];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds));
    let sent = sendmsg(
        lease,
        &[IoSlice::new(head), IoSlice::new(early)],
        &mut control,
        SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
    )?;
    Ok(sent)
}

/// Holds an adopted socket's lease until the runner ends the socket, or until `closed`:
/// then, if the server is stopping (`shutdown`), the lease is let go and the socket lives on;
/// otherwise the caller lost access, and the runner is told to close the socket.
pub(crate) async fn hold(
    mut lease: UnixStream,
    closed: CancellationToken,
    shutdown: CancellationToken,
) {
    let mut byte = [0u8; 1];
    tokio::select! {
        // The runner writes nothing: this is its end of the socket.
        _ = lease.read(&mut byte) => {}
        // The server stops: the socket carries on without it.
        _ = shutdown.cancelled() => {}
        _ = closed.cancelled() => {
            if shutdown.is_cancelled() {
                return;
            }
            if lease.write_all(&[REVOKE]).await.is_ok() {
                let _ = tokio::time::timeout(Duration::from_secs(5), lease.read(&mut byte)).await;
            }
        }
    }
}
