//! The lifecycle watcher. Every couple of seconds each workspace the store says is running is
//! checked against the backend, so that a runner that died (killed, out of memory) is
//! recorded with the reason within seconds and live views are told; and against its
//! connections, so that one nobody has been connected to for the idle time is stopped, unless
//! it is kept running. The log and the audit say why. A client that connects while the stop
//! runs waits for the workspace's lock and then starts it afresh.

use cove_protocol::accounts::Outcome;
use cove_protocol::rest::WorkspaceState;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Manager;

/// After how long with nobody connected a running workspace is stopped; `None`: never.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleStop(pub Option<Duration>);

impl IdleStop {
    /// How often the watcher looks: every two seconds, more often for a short idle time.
    fn period(self) -> Duration {
        let two = Duration::from_secs(2);
        self.0.map_or(two, |idle| {
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
}

impl Manager {
    /// One look at every running workspace at `now`; the ids it stopped for being idle.
    pub(crate) async fn look(
        &self,
        idle_stop: IdleStop,
        idle: &mut Idle,
        now: Instant,
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
        for row in rows {
            if row.state != WorkspaceState::Running || self.notice_exit(&row).await {
                continue;
            }
            let Some(after) = idle_stop.0 else {
                continue;
            };
            if row.keep_running || self.accounts.connections.connected(&row.id) > 0 {
                continue;
            }
            unattended.insert(row.id.clone());
            let since = *idle.since.entry(row.id.clone()).or_insert(now);
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
pub(crate) async fn watch(app: Arc<crate::AppState>, idle_stop: IdleStop) {
    let mut idle = Idle::default();
    let mut ticks = tokio::time::interval(idle_stop.period());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = app.shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        app.manager.look(idle_stop, &mut idle, Instant::now()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_and_words() {
        assert_eq!(IdleStop(None).period(), Duration::from_secs(2));
        assert_eq!(
            IdleStop(Some(Duration::from_secs(1800))).period(),
            Duration::from_secs(2)
        );
        assert_eq!(
            IdleStop(Some(Duration::from_secs(2))).period(),
            Duration::from_millis(500)
        );
        assert_eq!(human(Duration::from_secs(1800)), "30 min");
        assert_eq!(human(Duration::from_secs(7200)), "2 h");
        assert_eq!(human(Duration::from_secs(90)), "90 s");
    }
}
