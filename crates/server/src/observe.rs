//! What the server measures, and how it is read: Prometheus metrics in a registry the server
//! owns (`prometheus-client`, no global recorder), each runner's latest figures, and the last
//! failures, for `GET /metrics`, `GET /health` and the `/system` namespace.
//!
//! Counters move where things happen (a request, a start, a sign-in, a dropped packet).
//! Levels (open sockets, workspaces by state, each runner's CPU, memory and disk) are read
//! from their source when a scrape asks. A runner's figures come from a background
//! collector that asks each running workspace every [`COLLECT_EVERY`]: a scrape asks no
//! runner, however many are running.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cove_protocol::realtime::{RecentError, RunnerStats};

/// How often the collector asks every running runner for its figures.
pub(crate) const COLLECT_EVERY: Duration = Duration::from_secs(10);

/// How many failures the dashboard shows.
const RECENT_ERRORS: usize = 20;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RelayLabels {
    kind: String,
    direction: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NamespaceLabels {
    namespace: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkspaceLabels {
    workspace: String,
}

type Levels = Family<WorkspaceLabels, Gauge>;
type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Latency buckets for HTTP requests: 1 ms to about 16 s.
fn request_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// One runner's figures and when they were read.
#[derive(Debug, Clone)]
pub(crate) struct Figures {
    pub(crate) at: Instant,
    pub(crate) stats: RunnerStats,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Observer {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Histograms<RouteLabels>,
    open_connections: Family<KindLabels, Gauge>,
    relay_bytes: Family<RelayLabels, Counter>,
    starts: Counter,
    start_seconds: Histogram,
    start_failures: Family<ReasonLabels, Counter>,
    workspaces: Family<StateLabels, Gauge>,
    runner_exits: Counter,
    sign_ins: Family<OutcomeLabels, Counter>,
    dropped: Family<NamespaceLabels, Counter>,
    server_memory: Gauge,
    cpu_millipercent: Levels,
    memory: Levels,
    memory_limit: Levels,
    disk: Levels,
    disk_limit: Levels,
    pids: Levels,
    terminals: Levels,
    processes: Levels,
    oom_kills: Levels,
    /// Start latency for the dashboard's mean (the histogram keeps buckets, not a sum it
    /// lends out).
    start_count: AtomicU64,
    start_total_ms: AtomicU64,
    figures: Mutex<HashMap<String, Figures>>,
    errors: Mutex<VecDeque<RecentError>>,
    /// One scrape at a time: each sets the levels it then reads.
    rendering: Mutex<()>,
}

impl Default for Observer {
    fn default() -> Observer {
        Observer::new()
    }
}

impl Observer {
    pub(crate) fn new() -> Observer {
        let mut registry = Registry::with_prefix("cove");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        let request_seconds: Histograms<RouteLabels> =
            Family::new_with_constructor(request_buckets);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request (to its head, for sockets and streams), by route",
            request_seconds.clone(),
        );
        let open_connections = Family::<KindLabels, Gauge>::default();
        registry.register(
            "open_connections",
            "Open sockets and streams by kind (control, terminal, plain, events) and Socket.IO namespace (processes, system, files, mcp)",
            open_connections.clone(),
        );
        let relay_bytes = Family::<RelayLabels, Counter>::default();
        registry.register(
            "relay_bytes",
            "Bytes relayed between clients and runners, by socket kind and direction (down: to the client)",
            relay_bytes.clone(),
        );
        let starts = Counter::default();
        registry.register("workspace_starts", "Workspaces started", starts.clone());
        let start_seconds = Histogram::new(exponential_buckets(0.05, 2.0, 10));
        registry.register(
            "workspace_start_duration_seconds",
            "Time from asking the backend to start a workspace until its runner answers",
            start_seconds.clone(),
        );
        let start_failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "workspace_start_failures",
            "Workspace starts that failed, by reason (quota, restore, no_storage, backend)",
            start_failures.clone(),
        );
        let workspaces = Family::<StateLabels, Gauge>::default();
        registry.register("workspaces", "Workspaces by state", workspaces.clone());
        let runner_exits = Counter::default();
        registry.register(
            "runner_exits",
            "Runners that exited without being asked (crashed, killed); the next open starts them again",
            runner_exits.clone(),
        );
        let sign_ins = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "sign_ins",
            "Sign-in attempts by outcome (success, failure, throttled)",
            sign_ins.clone(),
        );
        let dropped = Family::<NamespaceLabels, Counter>::default();
        registry.register(
            "socketio_dropped_packets",
            "Socket.IO packets not sent because the client was too far behind (it is told)",
            dropped.clone(),
        );
        let server_memory = Gauge::default();
        registry.register(
            "server_resident_memory_bytes",
            "Resident memory of the server process",
            server_memory.clone(),
        );
        let mut level = |name: &str, help: &str| {
            let family = Levels::default();
            registry.register(name, help, family.clone());
            family
        };
        let cpu_millipercent = level(
            "workspace_cpu_millipercent",
            "CPU use of each running workspace, in thousandths of a percent of one core",
        );
        let memory = level("workspace_memory_bytes", "Memory of each running workspace");
        let memory_limit = level(
            "workspace_memory_limit_bytes",
            "Memory limit of each running workspace that has one",
        );
        let disk = level(
            "workspace_disk_bytes",
            "Disk used by each workspace's files",
        );
        let disk_limit = level(
            "workspace_disk_limit_bytes",
            "Disk limit of each workspace that has one",
        );
        let pids = level("workspace_pids", "Processes in each running workspace");
        let terminals = level("workspace_terminals", "Live terminals in each workspace");
        let processes = level(
            "workspace_processes",
            "Live processes started through the API in each workspace",
        );
        let oom_kills = level(
            "workspace_oom_kills",
            "Processes the kernel killed for memory in each workspace since its sandbox began",
        );
        Observer {
            registry,
            requests,
            request_seconds,
            open_connections,
            relay_bytes,
            starts,
            start_seconds,
            start_failures,
            workspaces,
            runner_exits,
            sign_ins,
            dropped,
            server_memory,
            cpu_millipercent,
            memory,
            memory_limit,
            disk,
            disk_limit,
            pids,
            terminals,
            processes,
            oom_kills,
            start_count: AtomicU64::new(0),
            start_total_ms: AtomicU64::new(0),
            figures: Mutex::new(HashMap::new()),
            errors: Mutex::new(VecDeque::new()),
            rendering: Mutex::new(()),
        }
    }

    /// An HTTP request was answered.
    pub(crate) fn request(&self, route: &str, method: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                method: method.to_string(),
                status,
            })
            .inc();
        self.request_seconds
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// The counters of bytes relayed for sockets of `kind`: (to the client, to the runner).
    pub(crate) fn relay_counters(&self, kind: &str) -> (Counter, Counter) {
        let counter = |direction: &str| {
            self.relay_bytes.get_or_create_owned(&RelayLabels {
                kind: kind.to_string(),
                direction: direction.to_string(),
            })
        };
        (counter("down"), counter("up"))
    }

    /// A workspace started, taking `took`.
    pub(crate) fn started(&self, took: Duration) {
        self.starts.inc();
        self.start_seconds.observe(took.as_secs_f64());
        self.start_count.fetch_add(1, Ordering::Relaxed);
        self.start_total_ms
            .fetch_add(took.as_millis() as u64, Ordering::Relaxed);
    }

    /// A workspace did not start.
    pub(crate) fn start_failed(&self, workspace: &str, reason: &str, message: &str) {
        self.start_failures
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
        self.error(
            Some(workspace),
            &format!("start failed ({reason}): {message}"),
        );
    }

    /// A runner exited without being asked.
    pub(crate) fn runner_exited(&self, workspace: &str, why: &str) {
        self.runner_exits.inc();
        self.error(Some(workspace), why);
    }

    pub(crate) fn sign_in(&self, outcome: &str) {
        self.sign_ins
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// A Socket.IO packet was not sent to a client of `namespace` (it was too far behind).
    pub(crate) fn dropped(&self, namespace: &str) {
        self.dropped
            .get_or_create(&NamespaceLabels {
                namespace: namespace.to_string(),
            })
            .inc();
    }

    /// Remembers a failure for the dashboard.
    pub(crate) fn error(&self, workspace: Option<&str>, message: &str) {
        let mut errors = self.errors.lock().unwrap();
        if errors.len() == RECENT_ERRORS {
            errors.pop_back();
        }
        errors.push_front(RecentError {
            at: crate::now_rfc3339(),
            workspace_id: workspace.map(str::to_string),
            message: message.to_string(),
        });
    }

    pub(crate) fn recent_errors(&self) -> Vec<RecentError> {
        self.errors.lock().unwrap().iter().cloned().collect()
    }

    /// How many workspaces started, and their mean start time in milliseconds.
    pub(crate) fn start_latency(&self) -> (u64, f64) {
        let count = self.start_count.load(Ordering::Relaxed);
        let total = self.start_total_ms.load(Ordering::Relaxed);
        (
            count,
            if count == 0 {
                0.0
            } else {
                total as f64 / count as f64
            },
        )
    }

    /// Keeps a runner's figures.
    pub(crate) fn record_figures(&self, workspace: &str, stats: RunnerStats) {
        self.figures.lock().unwrap().insert(
            workspace.to_string(),
            Figures {
                at: Instant::now(),
                stats,
            },
        );
    }

    /// A runner's figures, if read within `fresh`.
    pub(crate) fn figures_of(&self, workspace: &str, fresh: Duration) -> Option<RunnerStats> {
        let figures = self.figures.lock().unwrap();
        let kept = figures.get(workspace)?;
        (kept.at.elapsed() <= fresh).then(|| kept.stats.clone())
    }

    /// Forgets the figures of workspaces that are not in `running`.
    pub(crate) fn keep_figures_of(&self, running: &[String]) {
        self.figures
            .lock()
            .unwrap()
            .retain(|id, _| running.contains(id));
    }

    /// The metrics in the Prometheus text format, after setting the levels read now:
    /// `connections` by kind, `workspaces` by state, and the server's resident memory.
    pub(crate) fn render(
        &self,
        connections: &BTreeMap<String, i64>,
        workspaces: &[(String, i64)],
    ) -> String {
        let _one = self.rendering.lock().unwrap();
        for (kind, n) in connections {
            self.open_connections
                .get_or_create(&KindLabels { kind: kind.clone() })
                .set(*n);
        }
        for (state, n) in workspaces {
            self.workspaces
                .get_or_create(&StateLabels {
                    state: state.clone(),
                })
                .set(*n);
        }
        if let Some(rss) = rss_bytes() {
            self.server_memory.set(rss as i64);
        }
        self.set_figures();
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }

    /// Sets the per-workspace levels from the kept figures (a workspace that stopped
    /// disappears from them).
    fn set_figures(&self) {
        let figures = self.figures.lock().unwrap();
        let levels = [
            &self.cpu_millipercent,
            &self.memory,
            &self.memory_limit,
            &self.disk,
            &self.disk_limit,
            &self.pids,
            &self.terminals,
            &self.processes,
            &self.oom_kills,
        ];
        for family in levels {
            family.clear();
        }
        let as_level = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        for (id, kept) in figures.iter() {
            let labels = WorkspaceLabels {
                workspace: id.clone(),
            };
            let s = &kept.stats;
            let set = |family: &Levels, value: Option<u64>| {
                if let Some(value) = value {
                    family.get_or_create(&labels).set(as_level(value));
                }
            };
            set(
                &self.cpu_millipercent,
                Some((s.stats.cpu_percent * 1000.0).round().max(0.0) as u64),
            );
            set(&self.memory, Some(s.stats.memory_bytes));
            set(&self.memory_limit, s.stats.memory_limit_bytes);
            set(&self.disk, Some(s.stats.disk_bytes));
            set(&self.disk_limit, s.stats.disk_limit_bytes);
            set(&self.pids, Some(s.stats.pids));
            set(&self.terminals, Some(s.terminals));
            set(&self.processes, Some(s.processes));
            set(&self.oom_kills, s.oom_kills);
        }
    }
}

/// Resident memory of this process.
pub(crate) fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Asks every running workspace's runner for its figures, every [`COLLECT_EVERY`], until the
/// server stops. One request per runner per round, one runner at a time: a slow runner
/// delays the round, never the scrapes.
pub(crate) async fn collect(app: Arc<crate::AppState>) {
    loop {
        let running: Vec<String> = match app.manager.all().await {
            Ok(rows) => rows
                .into_iter()
                .filter(|w| w.state == cove_protocol::rest::WorkspaceState::Running)
                .map(|w| w.id)
                .collect(),
            Err(_) => Vec::new(),
        };
        for id in &running {
            if app.shutdown.is_cancelled() {
                return;
            }
            // Read within the last second for `/system`: good enough, and not asked twice.
            if app
                .observer
                .figures_of(id, Duration::from_secs(1))
                .is_some()
            {
                continue;
            }
            if let Ok(stats) = app.manager.link().stats(id).await {
                app.observer.record_figures(id, stats);
            }
        }
        app.observer.keep_figures_of(&running);
        tokio::select! {
            _ = app.shutdown.cancelled() => return,
            _ = tokio::time::sleep(COLLECT_EVERY) => {}
        }
    }
}
