//! Watch requests of the control socket: the paths this connection watches, and the
//! `file_changed` events beneath them.
//!
//! A connection holds one subscription to the workspace's watcher while it watches anything
//! (`watch.rs` runs inotify only while someone does), and filters its events by its paths.

use cove_protocol::*;
use tokio::sync::broadcast::error::RecvError;

use super::Session;
use super::files::blocking;
use crate::error::Error;
use crate::watch::{Subscription, is_under};

impl Session {
    pub(super) async fn watch(&mut self, path: Option<String>) -> Result<Event, Error> {
        let raw = path.unwrap_or_default();
        let path = normalize(&raw);
        if !path.is_empty() {
            let ws = self.ws.clone();
            let check = raw.clone();
            blocking(move || ws.files.is_dir(&check)).await?;
        }
        if self.watching.is_none() {
            self.watching = Some(self.ws.watcher.subscribe()?);
        }
        if !self.watches.contains(&path) {
            self.watches.push(path);
        }
        Ok(Event::Ok(Empty {}))
    }

    /// Stops watching `path`, or everything; the last path gives up the subscription.
    pub(super) fn unwatch(&mut self, path: Option<String>) -> Event {
        match path {
            None => self.watches.clear(),
            Some(p) => {
                let p = normalize(&p);
                self.watches.retain(|w| *w != p);
            }
        }
        if self.watches.is_empty() {
            self.watching = None;
        }
        Event::Ok(Empty {})
    }

    /// Sends a change if it lies beneath a watched path.
    pub(super) async fn forward_change(&mut self, change: Result<FileChanged, RecvError>) {
        match change {
            Ok(change) => {
                let watched = |p: &str| self.watches.iter().any(|w| is_under(p, w));
                if watched(&change.path) || change.to.as_deref().is_some_and(watched) {
                    let _ = self.out.event(Event::FileChanged(change)).await;
                }
            }
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "watch events dropped for a slow client");
            }
            Err(RecvError::Closed) => self.watching = None,
        }
    }
}

/// The next change of the workspace, for a connection that watches; never, for one that
/// does not.
pub(super) async fn next_change(
    watching: &mut Option<Subscription>,
) -> Result<FileChanged, RecvError> {
    match watching.as_mut() {
        Some(sub) => sub.events.recv().await,
        None => std::future::pending().await,
    }
}

/// A watch path as it appears in events: relative, no leading or trailing slash.
fn normalize(path: &str) -> String {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}
