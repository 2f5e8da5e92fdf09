//! /proc helpers: the process tree below a server, RSS, the memory of a
//! server's own processes (shells excluded), killing by pid, file limits.

use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub(crate) struct ProcStat {
    pub pid: i32,
    pub ppid: i32,
    pub comm: String,
    pub state: char,
    pub starttime: u64,
}

pub(crate) fn read_stat(pid: i32) -> Option<ProcStat> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let comm = s.get(open + 1..close)?.to_string();
    let fields: Vec<&str> = s.get(close + 1..)?.split_whitespace().collect();
    // fields[0] is field 3 (state), so field k is fields[k - 3].
    Some(ProcStat {
        pid,
        ppid: fields.get(1)?.parse().ok()?,
        comm,
        state: fields.first()?.chars().next()?,
        starttime: fields.get(19)?.parse().ok()?,
    })
}

/// All processes below `root`, with their depth (1 = direct child).
pub(crate) fn descendants(root: i32) -> Vec<(ProcStat, usize)> {
    let mut by_parent: HashMap<i32, Vec<ProcStat>> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok())
                && let Some(st) = read_stat(pid)
            {
                by_parent.entry(st.ppid).or_default().push(st);
            }
        }
    }
    // Depth-first, children in pid order, so the list reads like a tree.
    for v in by_parent.values_mut() {
        v.sort_by_key(|p| std::cmp::Reverse(p.pid));
    }
    let mut out = Vec::new();
    let mut stack: Vec<(ProcStat, usize)> = by_parent
        .remove(&root)
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p, 1))
        .collect();
    while let Some((p, depth)) = stack.pop() {
        if depth < 64 {
            for c in by_parent.remove(&p.pid).unwrap_or_default() {
                stack.push((c, depth + 1));
            }
        }
        out.push((p, depth));
    }
    out
}

/// VmRSS in KiB.
pub(crate) fn rss_kib(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Command names of the processes a terminal runs (shells and what the bench
/// types into them). A server's "own" memory excludes these and everything
/// below them.
pub(crate) const TERMINAL_COMMS: &[&str] = &[
    "bash", "sh", "dash", "env", "cat", "yes", "head", "tr", "stty", "sleep", "login",
];

/// The memory of a server's own processes.
#[derive(Debug, Clone, Default)]
pub(crate) struct OwnMem {
    /// VmRSS of the root and of every process below it that is not a
    /// terminal process (nor below one), in KiB.
    pub kib: u64,
    /// Those processes: (pid, comm, RSS KiB), the root first.
    pub procs: Vec<(i32, String, u64)>,
    /// Terminal processes (shells and their children) below the server.
    pub shells: usize,
    pub shells_kib: u64,
}

impl OwnMem {
    pub(crate) fn mib(&self) -> f64 {
        self.kib as f64 / 1024.0
    }

    /// `comm pid RSS` of each process, for the report.
    pub(crate) fn describe(&self) -> String {
        let mut by: Vec<String> = Vec::new();
        let mut counts: HashMap<&str, (usize, u64)> = HashMap::new();
        for (_, comm, kib) in &self.procs {
            let e = counts.entry(comm.as_str()).or_default();
            e.0 += 1;
            e.1 += kib;
        }
        let mut keys: Vec<_> = counts.into_iter().collect();
        keys.sort_by_key(|k| std::cmp::Reverse(k.1.1));
        for (comm, (n, kib)) in keys {
            if n == 1 {
                by.push(format!("{comm} {:.1} MiB", kib as f64 / 1024.0));
            } else {
                by.push(format!("{n}× {comm} {:.1} MiB", kib as f64 / 1024.0));
            }
        }
        by.join(", ")
    }
}

/// A process's name for the report: its `comm`, with the subcommand for
/// `cove` (`cove serve`, `cove runner`).
pub(crate) fn label(pid: i32, comm: &str) -> String {
    // Node 24 names its main thread, hence the process, `MainThread`.
    if comm == "MainThread"
        && let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe"))
        && let Some(name) = exe.file_name()
    {
        return name.to_string_lossy().into_owned();
    }
    // cove's processes: `cove serve`, `cove sandbox-init`, and inside the
    // sandbox `/.cove/bin runner` (comm `bin`).
    if (comm == "cove" || comm == "bin")
        && let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline"))
    {
        let sub = raw.split(|&b| b == 0).nth(1).unwrap_or_default();
        let word = !sub.is_empty() && sub.iter().all(|b| b.is_ascii_lowercase() || *b == b'-');
        return if word {
            format!("cove {}", String::from_utf8_lossy(sub))
        } else {
            "cove (sandbox)".to_string()
        };
    }
    comm.to_string()
}

/// RSS of `root` and of its descendants, except terminal processes (see
/// [`TERMINAL_COMMS`]) and everything below them.
pub(crate) fn own_memory(root: i32) -> Option<OwnMem> {
    let root_kib = rss_kib(root)?;
    let root_comm = label(root, &read_stat(root).map(|s| s.comm).unwrap_or_default());
    let mut m = OwnMem {
        kib: root_kib,
        procs: vec![(root, root_comm, root_kib)],
        ..OwnMem::default()
    };
    // descendants() is depth-first: a terminal process's subtree follows it
    // with greater depth.
    let mut skip_below: Option<usize> = None;
    for (p, depth) in descendants(root) {
        if let Some(d) = skip_below {
            if depth > d {
                m.shells_kib += rss_kib(p.pid).unwrap_or(0);
                continue;
            }
            skip_below = None;
        }
        let kib = rss_kib(p.pid).unwrap_or(0);
        if TERMINAL_COMMS.contains(&p.comm.as_str()) {
            m.shells += 1;
            m.shells_kib += kib;
            skip_below = Some(depth);
            continue;
        }
        m.kib += kib;
        m.procs.push((p.pid, label(p.pid, &p.comm), kib));
    }
    Some(m)
}

/// Sends `sig` to `pid` if it is still the process that started at
/// `starttime` (so a recycled pid is never hit).
pub(crate) fn signal_if_same(pid: i32, starttime: u64, sig: rustix::process::Signal) -> bool {
    if let Some(st) = read_stat(pid)
        && st.starttime == starttime
        && st.state != 'Z'
        && let Some(p) = rustix::process::Pid::from_raw(pid)
    {
        return rustix::process::kill_process(p, sig).is_ok();
    }
    false
}

/// Kills (SIGKILL, by pid) every process in `procs` that still exists and
/// waits up to `wait` for them to be gone. Returns how many were killed.
pub(crate) fn kill_all(procs: &[ProcStat], wait: Duration) -> usize {
    let mut n = 0;
    for p in procs {
        if signal_if_same(p.pid, p.starttime, rustix::process::Signal::KILL) {
            n += 1;
        }
    }
    let end = Instant::now() + wait;
    while Instant::now() < end {
        let alive = procs.iter().any(|p| {
            read_stat(p.pid).is_some_and(|st| st.starttime == p.starttime && st.state != 'Z')
        });
        if !alive {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    n
}

/// Raises the soft limit of open files to the hard limit; returns (soft, hard).
pub(crate) fn raise_nofile() -> (u64, u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let lim = getrlimit(Resource::Nofile);
    let hard = lim.maximum;
    if lim.current != hard {
        let _ = setrlimit(
            Resource::Nofile,
            rustix::process::Rlimit {
                current: hard,
                maximum: hard,
            },
        );
    }
    let now = getrlimit(Resource::Nofile);
    (
        now.current.unwrap_or(u64::MAX),
        now.maximum.unwrap_or(u64::MAX),
    )
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub(crate) fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_memory_of_self() {
        let me = std::process::id() as i32;
        let m = own_memory(me).unwrap();
        assert!(m.kib > 0);
        assert_eq!(m.procs[0].0, me);
        assert!(read_stat(me).is_some());
    }

    #[test]
    fn own_memory_excludes_shells() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let me = std::process::id() as i32;
        let m = own_memory(me).unwrap();
        assert!(m.shells >= 1, "{m:?}");
        assert!(!m.procs.iter().any(|p| p.1 == "sleep"));
        let _ = child.kill();
        let _ = child.wait();
    }
}
