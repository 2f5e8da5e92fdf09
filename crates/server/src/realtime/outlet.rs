//! Sending to one Socket.IO socket without waiting for it and without losing track.
//!
//! socketioxide queues a fixed number of packets per connection and then refuses more. What
//! does not fit is not queued here either: the newest such event is held (one, so memory
//! stays bounded), older ones are dropped and counted. When the client has room again it
//! gets, in order, a notice of what it missed, the held event, and what comes next: after a
//! stall a client sees the latest output, not output from long ago.

use serde::Serialize;
use serde_json::Value;
use socketioxide::extract::SocketRef;
use socketioxide::{SendError, SocketError};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::observe::Observer;

/// The socket is gone: stop sending to it.
#[derive(Debug)]
pub(super) struct Gone;

/// What was dropped since the client last got something.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Missed {
    pub(super) events: u64,
    pub(super) bytes: u64,
}

/// An event that did not fit, kept to be sent when there is room.
struct Held {
    event: String,
    data: Value,
    bytes: u64,
}

/// One subscription's way to its socket.
pub(super) struct Outlet {
    socket: SocketRef,
    namespace: &'static str,
    observer: Arc<Observer>,
    missed: Missed,
    held: Option<Held>,
}

/// Longest a last event (an exit) waits for room before the client is given up.
const LAST_WAIT: Duration = Duration::from_secs(30);

impl Outlet {
    pub(super) fn new(
        socket: SocketRef,
        namespace: &'static str,
        observer: Arc<Observer>,
    ) -> Outlet {
        Outlet {
            socket,
            namespace,
            observer,
            missed: Missed::default(),
            held: None,
        }
    }

    /// Queues `event` if the socket has room for it after what is owed (the notice made by
    /// `notice`, the held event); otherwise holds it in place of the held one, which is
    /// counted as missed. `bytes` is what it carries, for that count.
    pub(super) fn offer<T, N, M>(
        &mut self,
        event: &str,
        data: &T,
        bytes: u64,
        notice: N,
    ) -> Result<(), Gone>
    where
        T: Serialize + ?Sized,
        N: Fn(Missed) -> (&'static str, M),
        M: Serialize,
    {
        if self.catch_up(&notice)? && self.try_emit(event, data)? {
            return Ok(());
        }
        self.hold(event, data, bytes);
        Ok(())
    }

    /// Queues `event` after what is owed, waiting (up to [`LAST_WAIT`], or until `stop`)
    /// for room: for the few events that must not be dropped, such as the end of a stream.
    pub(super) async fn surely<T, N, M>(
        &mut self,
        event: &str,
        data: &T,
        notice: N,
        stop: &CancellationToken,
    ) -> Result<(), Gone>
    where
        T: Serialize + ?Sized,
        N: Fn(Missed) -> (&'static str, M),
        M: Serialize,
    {
        let deadline = tokio::time::Instant::now() + LAST_WAIT;
        let mut pause = Duration::from_millis(5);
        loop {
            if self.catch_up(&notice)? && self.try_emit(event, data)? {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::debug!(
                    namespace = self.namespace,
                    event,
                    "a client took nothing for 30 s; giving up on it"
                );
                return Err(Gone);
            }
            tokio::select! {
                _ = stop.cancelled() => return Err(Gone),
                _ = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }

    /// Sends what is owed: the notice of what was missed, then the held event. Whether all
    /// of it went.
    fn catch_up<N, M>(&mut self, notice: &N) -> Result<bool, Gone>
    where
        N: Fn(Missed) -> (&'static str, M),
        M: Serialize,
    {
        if self.missed.events > 0 {
            let (name, payload) = notice(self.missed);
            if !self.try_emit(name, &payload)? {
                return Ok(false);
            }
            self.missed = Missed::default();
        }
        if let Some(held) = self.held.take()
            && !self.try_emit(&held.event, &held.data)?
        {
            self.held = Some(held);
            return Ok(false);
        }
        Ok(true)
    }

    /// Keeps `event` as the newest that did not fit; the one it replaces is missed.
    fn hold<T: Serialize + ?Sized>(&mut self, event: &str, data: &T, bytes: u64) {
        let Ok(data) = serde_json::to_value(data) else {
            return;
        };
        if let Some(older) = self.held.replace(Held {
            event: event.to_string(),
            data,
            bytes,
        }) {
            self.missed.events += 1;
            self.missed.bytes += older.bytes;
            self.observer.dropped(self.namespace);
        }
    }

    /// Whether the event was queued; `Gone` if the socket is.
    fn try_emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<bool, Gone> {
        match self.socket.emit(event, data) {
            Ok(()) => Ok(true),
            Err(SendError::Socket(SocketError::InternalChannelFull)) => Ok(false),
            Err(SendError::Socket(SocketError::Closed)) => Err(Gone),
            Err(SendError::Serialize(e)) => {
                tracing::warn!(namespace = self.namespace, event, error = %e, "an event could not be encoded");
                Ok(true)
            }
        }
    }
}
