//! Sending to one Socket.IO socket without waiting on it for long and without losing track.
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
    /// Some of it was lost before it reached this server (the runner's kept log was
    /// outrun): `bytes` is a lower bound.
    pub(super) more: bool,
}

impl Missed {
    fn any(&self) -> bool {
        self.events > 0 || self.more
    }
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
    /// Whether the client is told what it missed (not for events the next one replaces).
    notices: bool,
    /// After a full queue, nothing more is tried until then: the queue drains meanwhile, so
    /// that Engine.IO's own ping (which shares it, and closes the connection when it does
    /// not fit) finds room.
    resting_until: Option<tokio::time::Instant>,
    /// Set when a client took nothing for [`PATIENCE`]; cleared when it catches up.
    slow: bool,
}

/// How long output waits for a client's queue to have room before the client counts as
/// slow: the runner holds a process back for a reader as long.
const PATIENCE: Duration = Duration::from_secs(5);

/// How long an outlet leaves a full queue alone before it tries again.
pub(super) const REST: Duration = Duration::from_millis(200);

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
            notices: true,
            resting_until: None,
            slow: false,
        }
    }

    /// An outlet whose missed events are just replaced by the next ones.
    pub(super) fn without_notices(mut self) -> Outlet {
        self.notices = false;
        self
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
        let resting = self
            .resting_until
            .is_some_and(|until| tokio::time::Instant::now() < until);
        if !resting && self.catch_up(&notice)? && self.try_emit(event, data)? {
            self.resting_until = None;
            return Ok(());
        }
        if !resting {
            self.resting_until = Some(tokio::time::Instant::now() + REST);
        }
        self.hold(event, data, bytes);
        Ok(())
    }

    /// Like [`Outlet::offer`], but first waits up to [`PATIENCE`] for room (or until `stop`):
    /// for output, whose producer is held back meanwhile through the runner's socket (this
    /// subscription stops reading it), so that a client that is only briefly slower misses
    /// nothing. A client that takes nothing for that long is slow: from then on until it
    /// takes something again, events are held and counted at once, as `offer` does.
    pub(super) async fn patiently<T, N, M>(
        &mut self,
        event: &str,
        data: &T,
        bytes: u64,
        notice: N,
        stop: &CancellationToken,
    ) -> Result<(), Gone>
    where
        T: Serialize + ?Sized,
        N: Fn(Missed) -> (&'static str, M),
        M: Serialize,
    {
        if self.slow {
            self.offer(event, data, bytes, &notice)?;
            if !self.owes() {
                self.slow = false;
            }
            return Ok(());
        }
        if self
            .send_within(event, data, &notice, PATIENCE, stop)
            .await?
        {
            return Ok(());
        }
        self.slow = true;
        self.resting_until = Some(tokio::time::Instant::now() + REST);
        self.hold(event, data, bytes);
        Ok(())
    }

    /// Sends what is owed and then `event`, trying again (backing off to 50 ms) for up to
    /// `wait` or until `stop`: whether it went.
    async fn send_within<T, N, M>(
        &mut self,
        event: &str,
        data: &T,
        notice: &N,
        wait: Duration,
        stop: &CancellationToken,
    ) -> Result<bool, Gone>
    where
        T: Serialize + ?Sized,
        N: Fn(Missed) -> (&'static str, M),
        M: Serialize,
    {
        let started = tokio::time::Instant::now();
        let deadline = started + wait;
        let mut pause = Duration::from_millis(1);
        loop {
            if self.catch_up(notice)? && self.try_emit(event, data)? {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::select! {
                _ = stop.cancelled() => return Err(Gone),
                _ = tokio::time::sleep(pause) => {}
            }
            // Quick tries at first (a client that is only a moment behind); past that, the
            // queue is left to drain for REST at a time, so that Engine.IO's ping fits.
            pause = if started.elapsed() < REST {
                (pause * 2).min(Duration::from_millis(50))
            } else {
                REST
            };
        }
    }

    /// Counts a loss the runner reported (its kept log was outrun): the client is told with
    /// the next notice.
    pub(super) fn lost_upstream(&mut self) {
        self.missed.more = true;
    }

    /// Whether something is owed to the client (a notice, a held event).
    pub(super) fn owes(&self) -> bool {
        self.held.is_some() || (self.notices && self.missed.any())
    }

    /// Sends what is owed if the queue has room again (for a stream that went quiet after
    /// its client fell behind: the last of it must not wait for more).
    pub(super) fn flush<N, M>(&mut self, notice: N) -> Result<(), Gone>
    where
        N: Fn(Missed) -> (&'static str, M),
        M: Serialize,
    {
        if self.catch_up(&notice)? {
            self.resting_until = None;
            self.slow = false;
        } else {
            self.resting_until = Some(tokio::time::Instant::now() + REST);
        }
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
        if self
            .send_within(event, data, &notice, LAST_WAIT, stop)
            .await?
        {
            return Ok(());
        }
        tracing::debug!(
            namespace = self.namespace,
            event,
            "a client took nothing for 30 s; giving up on it"
        );
        Err(Gone)
    }

    /// Sends what is owed: the notice of what was missed, then the held event. Whether all
    /// of it went.
    fn catch_up<N, M>(&mut self, notice: &N) -> Result<bool, Gone>
    where
        N: Fn(Missed) -> (&'static str, M),
        M: Serialize,
    {
        if self.missed.any() && !self.notices {
            self.missed = Missed::default();
        }
        if self.missed.any() {
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
