//! Landlock, the second wall: even if something inside found a way around the mount namespace
//! (an inherited descriptor, a kernel bug in mount handling), the workspace's programs may
//! only touch files beneath the paths listed in [`RULES`], with the rights listed there.
//!
//! Applied in the program's process just before it becomes the runner, after
//! `no_new_privs`; every descendant inherits it and none can lift it. Best effort by ABI:
//! rights the kernel does not know are left out; a kernel without Landlock runs the sandbox
//! with its first wall only (and the log says so).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

// Filesystem access rights (<linux/landlock.h>), by the ABI version that introduced them.
const EXECUTE: u64 = 1 << 0;
const WRITE_FILE: u64 = 1 << 1;
const READ_FILE: u64 = 1 << 2;
const READ_DIR: u64 = 1 << 3;
const REMOVE_DIR: u64 = 1 << 4;
const REMOVE_FILE: u64 = 1 << 5;
const MAKE_CHAR: u64 = 1 << 6;
const MAKE_DIR: u64 = 1 << 7;
const MAKE_REG: u64 = 1 << 8;
const MAKE_SOCK: u64 = 1 << 9;
const MAKE_FIFO: u64 = 1 << 10;
const MAKE_BLOCK: u64 = 1 << 11;
const MAKE_SYM: u64 = 1 << 12;
/// ABI 2: link or rename a file into another directory.
const REFER: u64 = 1 << 13;
/// ABI 3.
const TRUNCATE: u64 = 1 << 14;
/// ABI 5: ioctl on character and block devices.
const IOCTL_DEV: u64 = 1 << 15;

/// ABI 6: no signals to processes outside the domain.
const SCOPE_SIGNAL: u64 = 1 << 1;

const RULE_PATH_BENEATH: libc::c_int = 1;
const CREATE_RULESET_VERSION: libc::c_uint = 1;

const READ_EXEC: u64 = EXECUTE | READ_FILE | READ_DIR;
/// Everything but creating device nodes (which needs a capability the sandbox lacks anyway).
const READ_WRITE: u64 = EXECUTE
    | WRITE_FILE
    | READ_FILE
    | READ_DIR
    | REMOVE_DIR
    | REMOVE_FILE
    | MAKE_DIR
    | MAKE_REG
    | MAKE_SOCK
    | MAKE_FIFO
    | MAKE_SYM
    | REFER
    | TRUNCATE;
const DEVICES: u64 = READ_FILE | WRITE_FILE | READ_DIR | TRUNCATE | IOCTL_DEV;

/// What a workspace's programs may do where, inside the sandbox's root. Anything not beneath
/// one of these (the root's own mount points and masks, for one) is out of reach.
pub const RULES: &[(&str, u64)] = &[
    ("/", READ_DIR),
    ("/usr", READ_EXEC),
    // Real directories on hosts without merged /usr (symlinks into /usr elsewhere).
    ("/bin", READ_EXEC),
    ("/sbin", READ_EXEC),
    ("/lib", READ_EXEC),
    ("/lib32", READ_EXEC),
    ("/lib64", READ_EXEC),
    ("/libx32", READ_EXEC),
    ("/etc", READ_EXEC),
    ("/opt", READ_EXEC),
    ("/.cove", READ_EXEC),
    ("/workspace", READ_WRITE),
    ("/tmp", READ_WRITE),
    ("/dev/shm", READ_WRITE),
    ("/dev", DEVICES),
    // Programs read their own /proc, write /proc/self/* (oom_score_adj, comm) and some
    // re-execute /proc/self/exe.
    ("/proc", READ_EXEC | WRITE_FILE | TRUNCATE),
    // Read usage and limits; under cgroup v1, programs write themselves into the CPU group.
    ("/sys/fs/cgroup", READ_FILE | READ_DIR | WRITE_FILE),
];

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// How much of Landlock this kernel enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforced {
    /// Restricted under this ABI version.
    Abi(i32),
    /// The kernel has no Landlock, has it disabled, or has only ABI 1.
    Unsupported,
}

fn last_error(context: &str) -> crate::SandboxError {
    crate::SandboxError::Io {
        context: context.into(),
        source: std::io::Error::last_os_error(),
    }
}

/// The rights this ABI version knows, out of `wanted`.
fn known(abi: i32, wanted: u64) -> u64 {
    let mut mask = (1 << 13) - 1;
    if abi >= 2 {
        mask |= REFER;
    }
    if abi >= 3 {
        mask |= TRUNCATE;
    }
    if abi >= 5 {
        mask |= IOCTL_DEV;
    }
    wanted & mask
}

/// Restricts this process (and whatever it executes) to `rules`. Needs `no_new_privs`.
/// Paths that do not exist are skipped.
pub fn restrict(rules: &[(&str, u64)]) -> Result<Enforced, crate::SandboxError> {
    // SAFETY: the version query takes no attribute.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    } as i32;
    // ABI 1 cannot grant REFER: every rename or link into another directory (git mv,
    // editors' safe saves) would fail with EXDEV. Better no second wall than a broken one.
    if abi < 2 {
        return Ok(Enforced::Unsupported);
    }
    let attr = RulesetAttr {
        handled_access_fs: known(
            abi,
            READ_WRITE | DEVICES | READ_EXEC | MAKE_CHAR | MAKE_BLOCK,
        ),
        handled_access_net: 0,
        scoped: if abi >= 6 { SCOPE_SIGNAL } else { 0 },
    };
    // SAFETY: attr is a valid ruleset_attr; fields this kernel does not know are zero.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const RulesetAttr,
            std::mem::size_of::<RulesetAttr>(),
            0u32,
        )
    };
    if fd < 0 {
        return Err(last_error("landlock_create_ruleset"));
    }
    // SAFETY: the kernel just returned this descriptor to us.
    let ruleset = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    for (path, access) in rules {
        let Ok(dir) = rustix::fs::open(
            *path,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ) else {
            continue;
        };
        let beneath = PathBeneathAttr {
            allowed_access: known(abi, *access),
            parent_fd: dir.as_raw_fd(),
        };
        // SAFETY: beneath is a valid path_beneath_attr whose descriptor is open.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_landlock_add_rule,
                ruleset.as_raw_fd(),
                RULE_PATH_BENEATH,
                &beneath as *const PathBeneathAttr,
                0u32,
            )
        };
        if rc != 0 {
            return Err(last_error(&format!("landlock_add_rule {path}")));
        }
    }
    // SAFETY: a valid ruleset descriptor; the caller set no_new_privs.
    if unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0u32) } != 0 {
        return Err(last_error("landlock_restrict_self"));
    }
    Ok(Enforced::Abi(abi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_layouts_match_the_kernel_abi() {
        assert_eq!(std::mem::size_of::<RulesetAttr>(), 24);
        assert_eq!(std::mem::size_of::<PathBeneathAttr>(), 12);
    }

    #[test]
    fn older_abis_are_not_asked_for_rights_they_do_not_know() {
        assert_eq!(known(1, READ_WRITE) & (REFER | TRUNCATE), 0);
        assert_eq!(known(3, DEVICES) & IOCTL_DEV, 0);
        assert_eq!(known(5, DEVICES), DEVICES);
    }

    /// In a forked child: after `restrict`, a file outside the rules cannot be read, one
    /// inside can, and nothing can be created where only reading was granted.
    #[test]
    fn restricted_processes_reach_only_what_the_rules_allow() {
        let dir = tempfile::tempdir().unwrap();
        let (allowed, readonly) = (dir.path().join("rw"), dir.path().join("ro"));
        std::fs::create_dir(&allowed).unwrap();
        std::fs::create_dir(&readonly).unwrap();
        std::fs::write(readonly.join("f"), "x").unwrap();
        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, "secret").unwrap();
        let (rw, ro) = (
            allowed.to_str().unwrap().to_string(),
            readonly.to_str().unwrap().to_string(),
        );
        // SAFETY: the child only runs plain system calls and std file operations before
        // _exit; the test harness's other threads are not touched.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let code = (|| {
                // SAFETY: a plain prctl on this process.
                if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                    return 10;
                }
                match restrict(&[(rw.as_str(), READ_WRITE), (ro.as_str(), READ_EXEC)]) {
                    Ok(Enforced::Abi(_)) => {}
                    Ok(Enforced::Unsupported) => return 16,
                    Err(_) => return 11,
                }
                if std::fs::read(&outside).is_ok() {
                    return 12;
                }
                if std::fs::write(format!("{rw}/new"), "y").is_err() {
                    return 13;
                }
                if std::fs::read(format!("{ro}/f")).is_err() {
                    return 14;
                }
                if std::fs::write(format!("{ro}/new"), "y").is_ok() {
                    return 15;
                }
                0
            })();
            // SAFETY: leave the forked test process without running the harness's code.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: status is a valid out-pointer.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status), "status {status}");
        assert_eq!(libc::WEXITSTATUS(status), 0, "see the codes in the child");
    }
}
