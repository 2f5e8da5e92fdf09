//! Memory of a cove server and of what it started (runners, sandboxes, shells), read from
//! `/proc` (helpers in `procs.rs`).

use anyhow::{Result, anyhow};

use crate::procs::{descendants, rss_kib};

/// RSS of the server and of its child processes.
#[derive(Debug, Clone)]
pub(crate) struct MemSnapshot {
    pub server_kib: u64,
    pub children: Vec<ChildMem>,
    /// Every process below the server, depth first (depth 1 = child).
    pub tree: Vec<TreeEntry>,
}

#[derive(Debug, Clone)]
pub(crate) struct TreeEntry {
    pub depth: usize,
    pub pid: i32,
    pub comm: String,
    pub rss_kib: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct ChildMem {
    pub pid: i32,
    pub comm: String,
    pub rss_kib: u64,
    /// Processes below this child (e.g. the shells of a runner) and their RSS.
    pub below_count: usize,
    pub below_kib: u64,
}

impl MemSnapshot {
    pub(crate) fn children_kib(&self) -> u64 {
        self.children.iter().map(|c| c.rss_kib).sum()
    }
    pub(crate) fn below_kib(&self) -> u64 {
        self.children.iter().map(|c| c.below_kib).sum()
    }
}

pub(crate) fn mem_snapshot(server_pid: u32) -> Result<MemSnapshot> {
    let root = server_pid as i32;
    let server_kib = rss_kib(root).ok_or_else(|| anyhow!("no VmRSS for pid {root}"))?;
    let tree: Vec<TreeEntry> = descendants(root)
        .into_iter()
        .map(|(p, depth)| TreeEntry {
            depth,
            pid: p.pid,
            rss_kib: rss_kib(p.pid).unwrap_or(0),
            comm: crate::procs::label(p.pid, &p.comm),
        })
        .collect();
    // A child of the server is a runner (or, sandboxed, the sandbox's outer
    // process): its own memory counts every process below it that is not a
    // terminal's (the sandbox's init, the runner); shells and what runs in
    // them are "below".
    let mut children: Vec<ChildMem> = Vec::new();
    let mut shell_depth: Option<usize> = None;
    for e in &tree {
        if shell_depth.is_some_and(|d| e.depth <= d) {
            shell_depth = None;
        }
        if e.depth == 1 {
            children.push(ChildMem {
                pid: e.pid,
                comm: e.comm.clone(),
                rss_kib: e.rss_kib,
                below_count: 0,
                below_kib: 0,
            });
        } else if let Some(c) = children.last_mut() {
            let is_shell = crate::procs::TERMINAL_COMMS.contains(&e.comm.as_str());
            if shell_depth.is_some() || is_shell {
                c.below_count += 1;
                c.below_kib += e.rss_kib;
                if shell_depth.is_none() {
                    shell_depth = Some(e.depth);
                }
            } else {
                c.rss_kib += e.rss_kib;
            }
        }
    }
    Ok(MemSnapshot {
        server_kib,
        children,
        tree,
    })
}
