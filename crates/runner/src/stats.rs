//! Resource use of the workspace: CPU, memory and process count, and the disk its files take.
//!
//! In a sandbox, processes and memory are what the workspace's cgroup counts: everything in
//! it, including what left the runner's tree (an orphan belongs to the sandbox's PID 1), and
//! what its limits are measured against. Outside one, and for CPU, the runner and its
//! descendants from `/proc`.

use cove_protocol::Stats;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::error::Error;
use crate::files::Files;
use crate::registry::Kind;
use crate::{Exit, Notice, clip};

/// Remembers the previous CPU sample so that `cpuPercent` covers the time between two calls.
#[derive(Debug, Default)]
pub(crate) struct StatsSampler {
    last: Mutex<Option<(Instant, u64)>>,
}

/// Memory limit in force, from the cgroup the runner lives in, if any.
pub(crate) fn memory_limit() -> Option<u64> {
    let v2 = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok();
    let v1 = || std::fs::read_to_string("/sys/fs/cgroup/memory/memory.limit_in_bytes").ok();
    let raw = v2.or_else(v1)?;
    let limit = raw.trim().parse::<u64>().ok()?;
    // v1 reports "no limit" as a huge page-aligned number.
    (limit < (1 << 60)).then_some(limit)
}

/// How many processes the kernel has killed for running out of the workspace's memory, from
/// its cgroup (v1 `memory.oom_control`, v2 `memory.events`). `None` outside a sandbox.
pub(crate) fn oom_kills() -> Option<u64> {
    [
        "/sys/fs/cgroup/memory/memory.oom_control",
        "/sys/fs/cgroup/memory.events",
    ]
    .iter()
    .find_map(|path| {
        let text = std::fs::read_to_string(path).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|n| n.trim().parse().ok())
    })
}

/// Tasks in the workspace's pids group (v1 at `pids/`, v2 the unified group). A hierarchy's
/// root has no `pids.current`, so outside a sandbox (where `/sys/fs/cgroup` is the host's)
/// this is `None`.
fn cgroup_pids() -> Option<u64> {
    [
        "/sys/fs/cgroup/pids/pids.current",
        "/sys/fs/cgroup/pids.current",
    ]
    .iter()
    .find_map(|path| read_number(path))
}

/// Memory the workspace's cgroup is charged (v1 `memory.usage_in_bytes`, v2 `memory.current`).
/// Only asked for in a sandbox: a v1 hierarchy's root has this file too, for the whole host.
fn cgroup_memory() -> Option<u64> {
    [
        "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        "/sys/fs/cgroup/memory.current",
    ]
    .iter()
    .find_map(|path| read_number(path))
}

fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// (cpu ticks, rss bytes) of one process: utime+stime, plus cutime+cstime when `with_children`.
fn sample_pid(pid: u32, with_children: bool, page: u64) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    // Fields after the name start at field 3 (state), so utime (14) is index 11.
    let num = |i: usize| {
        fields
            .get(i)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let mut ticks = num(11) + num(12);
    if with_children {
        ticks += num(13) + num(14);
    }
    Some((ticks, num(21) * page))
}

impl StatsSampler {
    /// Measures now. Walking the disk is bounded, so huge trees give a lower bound.
    pub(crate) fn sample(&self, files: &Files) -> Stats {
        // SAFETY: sysconf only reads a system constant.
        let (hz, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK).max(1) as u64,
                libc::sysconf(libc::_SC_PAGESIZE).max(1) as u64,
            )
        };
        let mut pids = 1u64;
        let (mut ticks, mut rss) = sample_pid(std::process::id(), true, page).unwrap_or((0, 0));
        for (pid, _) in crate::ports::descendants() {
            if let Some((t, r)) = sample_pid(pid, false, page) {
                ticks += t;
                rss += r;
                pids += 1;
            }
        }
        let now = Instant::now();
        let cpu_percent = {
            let mut last = self.last.lock().unwrap();
            let percent = match *last {
                Some((at, before)) if now > at => {
                    let secs = now.duration_since(at).as_secs_f64();
                    (ticks.saturating_sub(before) as f64 / hz as f64) / secs * 100.0
                }
                _ => 0.0,
            };
            *last = Some((now, ticks));
            (percent * 10.0).round() / 10.0
        };
        let (memory_bytes, pids) = match cgroup_pids() {
            Some(counted) => (cgroup_memory().unwrap_or(rss), counted),
            None => (rss, pids),
        };
        Stats {
            cpu_percent,
            memory_bytes,
            memory_limit_bytes: memory_limit(),
            pids,
            disk_bytes: files.usage(),
            disk_limit_bytes: files.disk_limit(),
        }
    }
}

/// When a program died of SIGKILL and the workspace's out-of-memory kill count went up since
/// it started, tells every socket of the workspace why (the exit itself only says "signal 9").
pub(crate) fn report_oom(
    notices: &tokio::sync::broadcast::Sender<Notice>,
    kind: Kind,
    id: &str,
    exit: Exit,
    ooms_before: Option<u64>,
) {
    if exit.signal != Some(libc::SIGKILL) {
        return;
    }
    let (Some(before), Some(now)) = (ooms_before, oom_kills()) else {
        return;
    };
    if now > before {
        let error = Error::OutOfMemory {
            kind,
            id: id.to_string(),
            limit: memory_limit(),
        };
        tracing::warn!("{}", clip(&error.to_string()));
        let _ = notices.send(Notice::Failed(Arc::new(error)));
    }
}
