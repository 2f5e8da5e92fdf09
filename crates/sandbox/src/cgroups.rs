//! cgroup limits on memory, CPU and process count, on v2 or on v1 controllers.
//!
//! Groups are created at the top of each hierarchy as `cove-<name>`, beside whatever the host's
//! own tooling keeps there; cove never moves or changes groups it did not create.

use std::path::{Path, PathBuf};

use crate::{SandboxError, io_err};

const ROOT: &str = "/sys/fs/cgroup";

/// Resource limits of one sandbox (their defaults are the server's, in `protocol::launch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: u64,
    /// CPU in thousandths of a core (500 = half a core).
    pub cpu_millis: u64,
    pub pids: u64,
}

/// Which cgroup interface the host offers for memory, cpu and pids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

/// v2 when the unified hierarchy has the controllers we need; else v1 per-controller mounts.
pub(crate) fn detect() -> Result<CgroupVersion, SandboxError> {
    let controllers =
        std::fs::read_to_string(format!("{ROOT}/cgroup.controllers")).unwrap_or_default();
    let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
    if has("memory") && has("pids") && has("cpu") {
        return Ok(CgroupVersion::V2);
    }
    for controller in ["memory", "pids", "cpu"] {
        let dir = Path::new(ROOT).join(controller);
        if !dir.join("cgroup.procs").exists() {
            return Err(SandboxError::Cgroups(
                controller,
                format!("neither v2 nor a v1 mount at {}", dir.display()),
            ));
        }
    }
    Ok(CgroupVersion::V1)
}

fn group_dirs(version: CgroupVersion, name: &str) -> Vec<PathBuf> {
    let group = format!("cove-{name}");
    match version {
        CgroupVersion::V2 => vec![Path::new(ROOT).join(group)],
        CgroupVersion::V1 => ["memory", "pids", "cpu"]
            .iter()
            .map(|c| Path::new(ROOT).join(c).join(&group))
            .collect(),
    }
}

fn write(path: &Path, value: &str) -> Result<(), SandboxError> {
    std::fs::write(path, value).map_err(io_err(format!(
        "cannot write {value} to {}",
        path.display()
    )))
}

/// Creates the groups with their limits and moves the calling process into them, so that
/// everything it starts is counted.
///
/// Under v1 the CPU group is the exception: the runner stays out of it, so that a workspace
/// busy with a build cannot slow down its own terminals' echo. The group's `cgroup.procs` is
/// handed to the workspace's user instead, and every program the runner starts moves itself
/// in before it executes (see [`CPU_PROCS_INSIDE`]).
pub(crate) fn join(name: &str, limits: Limits, uid: u32, gid: u32) -> Result<(), SandboxError> {
    let version = detect()?;
    let me = std::process::id().to_string();
    let period = 100_000u64;
    let quota = (limits.cpu_millis.max(10) * period / 1000).max(1000);
    match version {
        CgroupVersion::V2 => {
            let dir = &group_dirs(version, name)[0];
            // The parent must delegate the controllers to its children.
            let _ = std::fs::write(
                format!("{ROOT}/cgroup.subtree_control"),
                "+memory +pids +cpu",
            );
            std::fs::create_dir_all(dir)
                .map_err(io_err(format!("cannot create {}", dir.display())))?;
            write(&dir.join("memory.max"), &limits.memory_bytes.to_string())?;
            let _ = std::fs::write(dir.join("memory.swap.max"), "0");
            // An out-of-memory kill takes the whole workspace's group, not one random task.
            let _ = std::fs::write(dir.join("memory.oom.group"), "0");
            write(&dir.join("pids.max"), &limits.pids.to_string())?;
            write(&dir.join("cpu.max"), &format!("{quota} {period}"))?;
            write(&dir.join("cgroup.procs"), &me)?;
        }
        CgroupVersion::V1 => {
            let dirs = group_dirs(version, name);
            for dir in &dirs {
                std::fs::create_dir_all(dir)
                    .map_err(io_err(format!("cannot create {}", dir.display())))?;
            }
            let (memory, pids, cpu) = (&dirs[0], &dirs[1], &dirs[2]);
            write(
                &memory.join("memory.limit_in_bytes"),
                &limits.memory_bytes.to_string(),
            )?;
            // Without swap accounting this file is absent; with it, swap counts against the limit.
            let _ = std::fs::write(
                memory.join("memory.memsw.limit_in_bytes"),
                limits.memory_bytes.to_string(),
            );
            write(&pids.join("pids.max"), &limits.pids.to_string())?;
            write(&cpu.join("cpu.cfs_period_us"), &period.to_string())?;
            write(&cpu.join("cpu.cfs_quota_us"), &quota.to_string())?;
            for file in ["cgroup.procs", "tasks"] {
                std::os::unix::fs::chown(cpu.join(file), Some(uid), Some(gid))
                    .map_err(io_err(format!("cannot delegate {}", cpu.display())))?;
            }
            for dir in [memory, pids] {
                write(&dir.join("cgroup.procs"), &me)?;
            }
        }
    }
    Ok(())
}

/// Where the delegated CPU group is mounted inside the sandbox (v1 only): a program writes
/// `0` to this file to move itself under the workspace's CPU limit.
pub const CPU_PROCS_INSIDE: &str = "/sys/fs/cgroup/cpu/cgroup.procs";

/// The CPU group's directory on the host when it is delegated (v1), else `None`.
pub(crate) fn cpu_dir(name: &str) -> Option<PathBuf> {
    match detect().ok()? {
        CgroupVersion::V1 => Some(group_dirs(CgroupVersion::V1, name).remove(2)),
        CgroupVersion::V2 => None,
    }
}

/// The memory group's directory on the host, for the runner to read its usage and limit.
pub(crate) fn memory_dir(name: &str) -> Option<PathBuf> {
    let version = detect().ok()?;
    Some(group_dirs(version, name).remove(0))
}

/// The pids group's directory on the host when it is a hierarchy of its own (v1), for the
/// runner to count the workspace's processes; under v2 it is the memory group's directory.
pub(crate) fn pids_dir(name: &str) -> Option<PathBuf> {
    match detect().ok()? {
        CgroupVersion::V1 => Some(group_dirs(CgroupVersion::V1, name).remove(1)),
        CgroupVersion::V2 => None,
    }
}

/// Moves the calling process to the top of each hierarchy, so that its own groups can be
/// removed (it is about to exit; where it was before `join` does not matter any more).
pub(crate) fn leave(name: &str) {
    let Ok(version) = detect() else { return };
    let me = std::process::id().to_string();
    for dir in group_dirs(version, name) {
        if let Some(top) = dir.parent() {
            let _ = std::fs::write(top.join("cgroup.procs"), &me);
        }
    }
}

/// Removes the groups; they must be empty (the sandbox's namespace is gone), so retry briefly.
pub(crate) fn remove(name: &str) {
    let Ok(version) = detect() else { return };
    for dir in group_dirs(version, name) {
        for _ in 0..50 {
            if !dir.exists() || std::fs::remove_dir(&dir).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
