//! The lifecycle watcher. Every couple of seconds each workspace the store says is running is
//! checked against the backend, so that a runner that died (killed, out of memory) is
//! recorded with the reason within seconds and live views are told; and against its
//! connections and requests, so that one nobody has been connected to or asked anything of
//! for the idle time is stopped, unless it is kept running. A workspace stopped for longer than `--hibernate-after` is hibernated
//! (one per look, so a big one delays the next look, never the others' safety). The log and
//! the audit say why. A client that connects while a stop runs waits for the workspace's
//! lock and then starts it afresh.

use cove_protocol::accounts::Outcome;
use cove_protocol::rest::WorkspaceState;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Manager;

/// When the watcher stops and hibernates workspaces by itself; `None`: never.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lifecycle {
    /// A running workspace with nobody connected this long is stopped (`--idle-stop`).
    pub idle_stop: Option<Duration>,
    /// A workspace stopped this long is hibernated (`--hibernate-after`).
    pub hibernate_after: Option<Duration>,
}

impl Lifecycle {
    /// How often the watcher looks: every two seconds, more often for a short idle time.
    fn period(self) -> Duration {
        let two = Duration::from_secs(2);
        self.idle_stop.map_or(two, |idle| {
            (idle / 4).clamp(Duration::from_millis(100), two)
        })
    }
}

/// `30 min`, `45 s`, `2 h` (whole units only where exact).
fn human(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// What the watcher remembers between looks: since when each running workspace has had
/// nobody connected.
#[derive(Debug, Default)]
pub(crate) struct Idle {
    since: HashMap<String, Instant>,
    /// When an automatic hibernation of a workspace last failed: it waits an hour before
    /// the next try, and the others go first.
    failed_hibernation: HashMap<String, Instant>,
}

/// How long a workspace whose hibernation failed is passed by.
const RETRY_HIBERNATION: Duration = Duration::from_secs(3600);

impl Manager {
    /// One look at every workspace at `now` (`wall_ms`: the same moment as Unix time in ms);
    /// the ids it stopped for being idle, and the one it hibernated.
    pub(crate) async fn look(
        &self,
        policy: Lifecycle,
        idle: &mut Idle,
        now: Instant,
        wall_ms: u64,
    ) -> Vec<String> {
        let rows = match self.db.list_all().await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "the lifecycle watcher cannot read the workspaces");
                return Vec::new();
            }
        };
        let mut stopped = Vec::new();
        let mut unattended = HashSet::new();
        let mut hibernated = false;
        // Stopped before this moment (RFC 3339 text compares in time order).
        let hibernate_before = policy
            .hibernate_after
            .map(|after| crate::rfc3339(wall_ms.saturating_sub(after.as_millis() as u64)));
        for row in rows {
            if let (Some(after), Some(before)) = (policy.hibernate_after, &hibernate_before)
                && !hibernated
                && row.state == WorkspaceState::Stopped
                && idle
                    .failed_hibernation
                    .get(&row.id)
                    .is_none_or(|at| now.saturating_duration_since(*at) >= RETRY_HIBERNATION)
                && row.updated_at < *before
            {
                hibernated = true;
                match self.hibernate(&row, "cove").await {
                    Ok(()) => {
                        self.accounts
                            .audit_as(
                                "cove",
                                "workspace.hibernate",
                                &row.id,
                                None,
                                Outcome::Success,
                                &format!("{}: stopped for {}", row.name, human(after)),
                            )
                            .await;
                        stopped.push(row.id.clone());
                    }
                    Err(e) => {
                        tracing::warn!(workspace = %row.id, error = %e.reply.message, "the automatic hibernation failed; the next try is in an hour");
                        idle.failed_hibernation.insert(row.id.clone(), now);
                    }
                }
                continue;
            }
            if row.state != WorkspaceState::Running || self.notice_exit(&row).await {
                continue;
            }
            let Some(after) = policy.idle_stop else {
                continue;
            };
            if row.keep_running || self.accounts.connections.connected(&row.id) > 0 {
                continue;
            }
            unattended.insert(row.id.clone());
            let since = idle.since.entry(row.id.clone()).or_insert(now);
            // A request without a socket (a file read, a preview page) is activity too.
            if let Some(used) = self.link.last_used(&row.id)
                && used > *since
            {
                *since = used;
            }
            let since = *since;
            if now.saturating_duration_since(since) < after {
                continue;
            }
            let reason = format!("stopped after {} with nobody connected", human(after));
            match self.stop_idle(&row, &reason).await {
                Ok(true) => {
                    self.accounts
                        .audit_as(
                            "cove",
                            "workspace.stop",
                            &row.id,
                            None,
                            Outcome::Success,
                            &format!("{}: {reason}", row.name),
                        )
                        .await;
                    stopped.push(row.id.clone());
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(workspace = %row.id, error = %e.reply.message, "the idle stop failed");
                }
            }
        }
        idle.since.retain(|id, _| unattended.contains(id));
        for id in &stopped {
            idle.since.remove(id);
        }
        stopped
    }
}

/// Watches until the server shuts down.
pub(crate) async fn watch(app: Arc<crate::AppState>, policy: Lifecycle) {
    let mut idle = Idle::default();
    let mut ticks = tokio::time::interval(policy.period());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = app.shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        app.manager
            .look(policy, &mut idle, Instant::now(), crate::now_ms())
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_and_words() {
        let idle = |secs| Lifecycle {
            idle_stop: Some(Duration::from_secs(secs)),
            hibernate_after: None,
        };
        assert_eq!(Lifecycle::default().period(), Duration::from_secs(2));
        assert_eq!(idle(1800).period(), Duration::from_secs(2));
        assert_eq!(idle(2).period(), Duration::from_millis(500));
        assert_eq!(human(Duration::from_secs(1800)), "30 min");
        assert_eq!(human(Duration::from_secs(7200)), "2 h");
        assert_eq!(human(Duration::from_secs(90)), "90 s");
    }
}
