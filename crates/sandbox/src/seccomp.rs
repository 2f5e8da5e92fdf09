//! The seccomp filter, the third wall: system calls a workspace has no use for, and that open
//! kernel code with a long record of exploits, fail for the program and all it starts.
//!
//! [`install`] runs in the program's process just before it becomes the runner, after
//! `no_new_privs` and after it dropped to the workspace's uid; every descendant inherits the
//! filter and none can lift it. Everything not listed is allowed. Denied, with EPERM:
//!
//! - New namespaces: `unshare` and `clone` with any `CLONE_NEW*` flag, and `setns`. A new
//!   user namespace hands out CAP_NET_ADMIN and CAP_SYS_ADMIN over fresh namespaces, which
//!   opens netfilter, netlink and filesystem code to the workspace; the other flags are
//!   refused too, for depth. `clone3` keeps its flags in memory, which a filter cannot read,
//!   so it fails with ENOSYS, and the C library falls back to `clone`, whose flags it can.
//! - io_uring: a second way to make most system calls, out of this filter's sight, and a
//!   steady source of kernel bugs.
//! - Kernel keyrings (`keyctl`, `add_key`, `request_key`): not namespaced, shared with the host.
//! - `bpf`, `perf_event_open`, `userfaultfd`: large kernel surfaces that exploits favour
//!   (userfaultfd makes kernel races easy to win); no development tool here needs them.
//! - Mounting (`mount`, `umount2`, `pivot_root`, the fd-based mount calls), modules, kexec,
//!   swap, `reboot`, `acct`, `quotactl`, `iopl`/`ioperm`, `open_by_handle_at` (which walks
//!   past any root), `lookup_dcookie`: all need capabilities the program lacks; denied in
//!   case a kernel bug ever hands one back.
//!
//! `ptrace` stays allowed: debuggers and `strace` on the workspace's own programs must work,
//! and the uid and PID namespace keep them away from anything else.
//!
//! The filter is built for the architecture this binary was compiled for. A system call made
//! through another ABI (32-bit `int 0x80` on x86_64) kills the process, since its numbers
//! differ; x32 calls (a flag bit in the number, same architecture) fail with ENOSYS.
//!
//! A kernel without seccomp filters makes [`install`] fail, and the program is then not
//! started: a workspace without this wall does not run.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::SandboxError;

/// The namespace flags `clone` may not carry. CLONE_NEWTIME is not among them: its bit is
/// part of the exit signal in `clone`'s flags (only `unshare` and `clone3` can ask for it).
const CLONE_NAMESPACES: [libc::c_int; 7] = [
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWCGROUP,
];

/// System calls denied whatever their arguments.
fn denied() -> Vec<libc::c_long> {
    let mut calls = vec![
        libc::SYS_setns,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_bpf,
        libc::SYS_userfaultfd,
        libc::SYS_perf_event_open,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_open_by_handle_at,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_fsopen,
        libc::SYS_fsmount,
        libc::SYS_fsconfig,
        libc::SYS_fspick,
        libc::SYS_mount_setattr,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_reboot,
        libc::SYS_acct,
        libc::SYS_quotactl,
        libc::SYS_lookup_dcookie,
    ];
    #[cfg(target_arch = "x86_64")]
    calls.extend([libc::SYS_iopl, libc::SYS_ioperm]);
    calls
}

/// Matches a call whose first argument (the flags of `clone` and `unshare`, on x86_64 and
/// aarch64 alike) has `flag` set, whatever else is set with it.
fn has_flag(flag: libc::c_int) -> Result<SeccompRule, seccompiler::BackendError> {
    // The kernel reads only the low 32 bits of clone's flags, and unshare rejects any
    // higher bit: a 32-bit comparison sees everything that counts.
    let flag = flag as u32 as u64;
    SeccompRule::new(vec![SeccompCondition::new(
        0,
        SeccompCmpArgLen::Dword,
        SeccompCmpOp::MaskedEq(flag),
        flag,
    )?])
}

/// The BPF programs to install: one filter per action, since a filter has only one.
fn programs() -> Result<Vec<BpfProgram>, seccompiler::BackendError> {
    let arch: TargetArch = std::env::consts::ARCH.try_into()?;
    let mut eperm: BTreeMap<i64, Vec<SeccompRule>> =
        denied().into_iter().map(|nr| (nr, Vec::new())).collect();
    let unshare = CLONE_NAMESPACES.iter().chain([&libc::CLONE_NEWTIME]);
    eperm.insert(
        libc::SYS_unshare,
        unshare.map(|f| has_flag(*f)).collect::<Result<_, _>>()?,
    );
    eperm.insert(
        libc::SYS_clone,
        CLONE_NAMESPACES
            .iter()
            .map(|f| has_flag(*f))
            .collect::<Result<_, _>>()?,
    );
    let enosys = BTreeMap::from([(libc::SYS_clone3, Vec::new())]);
    let mut programs = Vec::new();
    for (rules, errno) in [(eperm, libc::EPERM), (enosys, libc::ENOSYS)] {
        let filter = SeccompFilter::new(
            rules,
            SeccompAction::Allow,
            SeccompAction::Errno(errno as u32),
            arch,
        )?;
        programs.push(filter.try_into()?);
    }
    #[cfg(target_arch = "x86_64")]
    programs.push(x32_guard());
    Ok(programs)
}

/// x32 system calls carry the x86_64 architecture and their number plus this bit: on a
/// kernel built with x32 they would pass every rule above, which names plain numbers.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// A hand-written filter that fails every x32 call with ENOSYS, as a kernel without x32 does.
#[cfg(target_arch = "x86_64")]
fn x32_guard() -> BpfProgram {
    use seccompiler::sock_filter;
    // AUDIT_ARCH_X86_64: EM_X86_64 | 64-bit | little-endian (<linux/audit.h>).
    const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
    // Offsets in struct seccomp_data.
    const NR: u32 = 0;
    const ARCH: u32 = 4;
    let op = |code: u32, k: u32, jt: u8, jf: u8| sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    vec![
        op(load, ARCH, 0, 0),
        // Another ABI: not this filter's business (the other filters kill it).
        op(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            AUDIT_ARCH_X86_64,
            0,
            3,
        ),
        op(load, NR, 0, 0),
        op(
            libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K,
            X32_SYSCALL_BIT,
            0,
            1,
        ),
        op(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
            0,
            0,
        ),
        op(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW, 0, 0),
    ]
}

/// Installs the filter on the calling thread (and so on everything it executes or starts).
/// Call it single-threaded: other threads keep running unfiltered.
pub fn install() -> Result<(), SandboxError> {
    let programs = programs().map_err(|e| SandboxError::Seccomp(format!("building it: {e}")))?;
    for program in &programs {
        seccompiler::apply_filter(program).map_err(|e| {
            SandboxError::Seccomp(format!(
                "{e} (the sandbox needs a kernel with seccomp filters)"
            ))
        })?;
    }
    Ok(())
}

/// Checks, in a throwaway child, that this kernel takes the filter, so that a server refuses
/// to start rather than fail at the first workspace.
pub fn probe() -> Result<(), SandboxError> {
    // Built here: the child of a multi-threaded server must not allocate.
    let programs = programs().map_err(|e| SandboxError::Seccomp(format!("building it: {e}")))?;
    // SAFETY: the child only calls prctl and seccomp (through apply_filter, which does not
    // allocate on its way) and _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(SandboxError::Io {
            context: "fork".into(),
            source: std::io::Error::last_os_error(),
        });
    }
    if pid == 0 {
        let ok = programs
            .iter()
            .all(|program| seccompiler::apply_filter(program).is_ok());
        // SAFETY: leave the probe without running the parent's code.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    let waited = loop {
        // SAFETY: status is a valid out-pointer; pid is our child.
        if unsafe { libc::waitpid(pid, &mut status, 0) } == pid {
            break true;
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break false;
        }
    };
    if waited && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else {
        Err(SandboxError::Seccomp(
            "this kernel does not take seccomp filters (CONFIG_SECCOMP_FILTER)".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;
    use std::time::Duration;

    use super::*;

    /// A path that exists nowhere: the calls that take one fail harmlessly even unfiltered.
    const MISSING: &CStr = c"/nonexistent/cove-seccomp-test";

    /// Makes a raw system call; the errno when it failed.
    fn call(nr: libc::c_long, args: [libc::c_long; 5]) -> Result<libc::c_long, i32> {
        // SAFETY: every caller passes arguments that are harmless should the call go through:
        // null pointers, invalid descriptors, invalid flags or magic, or MISSING.
        let rc = unsafe { libc::syscall(nr, args[0], args[1], args[2], args[3], args[4]) };
        if rc < 0 {
            Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
        } else {
            Ok(rc)
        }
    }

    /// `clone` with these flags (plus SIGCHLD) as fork would; a child, if one is made, leaves.
    fn clone_with(flags: libc::c_int) -> Result<libc::c_long, i32> {
        let rc = call(
            libc::SYS_clone,
            [libc::c_long::from(flags | libc::SIGCHLD), 0, 0, 0, 0],
        );
        match rc {
            // SAFETY: the child of a fork-like clone leaves at once.
            Ok(0) => unsafe { libc::_exit(0) },
            Ok(child) => {
                let mut status = 0;
                // SAFETY: status is a valid out-pointer; child is ours.
                unsafe { libc::waitpid(child as libc::pid_t, &mut status, 0) };
            }
            Err(_) => {}
        }
        rc
    }

    fn expect_errno(
        complaints: &mut Vec<String>,
        what: &str,
        got: Result<libc::c_long, i32>,
        want: i32,
    ) {
        if got != Err(want) {
            let got = match got {
                Ok(rc) => format!("success ({rc})"),
                Err(e) => std::io::Error::from_raw_os_error(e).to_string(),
            };
            let want = std::io::Error::from_raw_os_error(want);
            complaints.push(format!("{what}: got {got}, want {want}"));
        }
    }

    fn denied_calls() -> Vec<(&'static str, libc::c_long, [libc::c_long; 5])> {
        let path = MISSING.as_ptr() as libc::c_long;
        let mut calls = vec![
            ("setns", libc::SYS_setns, [-1, 0, 0, 0, 0]),
            ("io_uring_setup", libc::SYS_io_uring_setup, [0, 0, 0, 0, 0]),
            ("io_uring_enter", libc::SYS_io_uring_enter, [-1, 0, 0, 0, 0]),
            (
                "io_uring_register",
                libc::SYS_io_uring_register,
                [-1, 0, 0, 0, 0],
            ),
            // KEYCTL_GET_KEYRING_ID of the session keyring, without creating it: works for
            // anyone when unfiltered, so EPERM here is the filter's and nobody else's.
            ("keyctl", libc::SYS_keyctl, [0, -3, 0, 0, 0]),
            ("add_key", libc::SYS_add_key, [0, 0, 0, 0, 0]),
            ("request_key", libc::SYS_request_key, [0, 0, 0, 0, 0]),
            ("bpf", libc::SYS_bpf, [-1, 0, 0, 0, 0]),
            ("userfaultfd", libc::SYS_userfaultfd, [-1, 0, 0, 0, 0]),
            (
                "perf_event_open",
                libc::SYS_perf_event_open,
                [0, 0, -1, -1, 0],
            ),
            // Too many segments and an unknown flag: EINVAL even for root.
            ("kexec_load", libc::SYS_kexec_load, [0, 1000, 0, 0x8000, 0]),
            (
                "kexec_file_load",
                libc::SYS_kexec_file_load,
                [-1, -1, 0, 0, -1],
            ),
            ("init_module", libc::SYS_init_module, [0, 0, 0, 0, 0]),
            ("finit_module", libc::SYS_finit_module, [-1, 0, 0, 0, 0]),
            ("delete_module", libc::SYS_delete_module, [path, 0, 0, 0, 0]),
            (
                "open_by_handle_at",
                libc::SYS_open_by_handle_at,
                [-1, 0, 0, 0, 0],
            ),
            ("mount", libc::SYS_mount, [0, path, 0, 0, 0]),
            ("umount2", libc::SYS_umount2, [path, 0, 0, 0, 0]),
            ("pivot_root", libc::SYS_pivot_root, [path, path, 0, 0, 0]),
            ("move_mount", libc::SYS_move_mount, [-1, path, -1, path, 0]),
            ("open_tree", libc::SYS_open_tree, [-1, path, 0, 0, 0]),
            ("fsopen", libc::SYS_fsopen, [0, 0, 0, 0, 0]),
            ("fsmount", libc::SYS_fsmount, [-1, 0, 0, 0, 0]),
            ("fsconfig", libc::SYS_fsconfig, [-1, 0, 0, 0, 0]),
            ("fspick", libc::SYS_fspick, [-1, path, 0, 0, 0]),
            (
                "mount_setattr",
                libc::SYS_mount_setattr,
                [-1, path, 0, 0, 0],
            ),
            ("swapon", libc::SYS_swapon, [path, 0, 0, 0, 0]),
            ("swapoff", libc::SYS_swapoff, [path, 0, 0, 0, 0]),
            // Without the magic numbers: EINVAL even for root.
            ("reboot", libc::SYS_reboot, [0, 0, 0, 0, 0]),
            ("acct", libc::SYS_acct, [path, 0, 0, 0, 0]),
            ("quotactl", libc::SYS_quotactl, [0, 0, 0, 0, 0]),
            ("lookup_dcookie", libc::SYS_lookup_dcookie, [0, 0, 0, 0, 0]),
        ];
        #[cfg(target_arch = "x86_64")]
        calls.extend([
            // Level 4 does not exist; ports past the bitmap do not either.
            ("iopl", libc::SYS_iopl, [4, 0, 0, 0, 0]),
            ("ioperm", libc::SYS_ioperm, [0x10000, 1, 0, 0, 0]),
        ]);
        calls
    }

    #[test]
    fn this_kernel_takes_the_filter() {
        probe().unwrap();
    }

    #[test]
    fn every_denied_call_is_on_the_test_list() {
        let tested: Vec<_> = denied_calls().iter().map(|(_, nr, _)| *nr).collect();
        for nr in denied() {
            assert!(
                tested.contains(&nr),
                "system call {nr} is denied but not tested"
            );
        }
    }

    /// In a forked child with the filter installed: each denied call fails with EPERM
    /// (clone3 with ENOSYS), and what ordinary programs do still works.
    #[test]
    fn the_filter_denies_its_calls_and_nothing_ordinary() {
        let complaints = crate::forked::run(Duration::from_secs(20), || {
            let mut complaints = Vec::new();
            // SAFETY: a plain prctl on this (forked) process.
            if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                return vec!["no_new_privs failed".into()];
            }
            if let Err(e) = install() {
                return vec![format!("install: {e}")];
            }
            // First, while the unfiltered calls below (if the filter misses any) have not
            // yet changed this process.
            complaints.extend(ordinary_calls_work());
            for (name, nr, args) in denied_calls() {
                expect_errno(&mut complaints, name, call(nr, args), libc::EPERM);
            }
            expect_errno(
                &mut complaints,
                "clone3",
                call(libc::SYS_clone3, [0, 0, 0, 0, 0]),
                libc::ENOSYS,
            );
            for flag in CLONE_NAMESPACES.iter().chain([&libc::CLONE_NEWTIME]) {
                let got = call(libc::SYS_unshare, [libc::c_long::from(*flag), 0, 0, 0, 0]);
                expect_errno(
                    &mut complaints,
                    &format!("unshare({flag:#x})"),
                    got,
                    libc::EPERM,
                );
            }
            for flag in CLONE_NAMESPACES {
                let got = clone_with(flag);
                let what = format!("clone({flag:#x} | SIGCHLD)");
                expect_errno(&mut complaints, &what, got, libc::EPERM);
            }
            // The libc wrapper, as `unshare -U` calls it.
            // SAFETY: unshare takes plain flags.
            if unsafe { libc::unshare(libc::CLONE_NEWUSER) } == 0
                || std::io::Error::last_os_error().raw_os_error() != Some(libc::EPERM)
            {
                complaints.push("libc::unshare(CLONE_NEWUSER) did not fail with EPERM".into());
            }
            complaints
        });
        assert!(complaints.is_empty(), "{}", complaints.join("\n"));
    }

    /// What every program does: fork, exec, threads, harmless unshare, ptrace.
    fn ordinary_calls_work() -> Vec<String> {
        let mut complaints = Vec::new();
        // SAFETY: the child only leaves.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: leave the forked child at once.
            unsafe { libc::_exit(7) };
        }
        let mut status = 0;
        // SAFETY: status is a valid out-pointer.
        if pid < 0 || unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
            complaints.push(format!("fork: {}", std::io::Error::last_os_error()));
        } else if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 7 {
            complaints.push(format!("fork: the child ended with status {status:#x}"));
        }
        if let Err(e) = clone_with(0) {
            complaints.push(format!("clone(SIGCHLD) failed with errno {e}"));
        }
        match std::process::Command::new("/bin/true").status() {
            Ok(status) if status.success() => {}
            other => complaints.push(format!("exec of /bin/true: {other:?}")),
        }
        match std::thread::Builder::new().spawn(|| 42).map(|t| t.join()) {
            Ok(Ok(42)) => {}
            other => complaints.push(format!("thread spawn + join: {other:?}")),
        }
        if let Err(e) = call(libc::SYS_unshare, [0, 0, 0, 0, 0]) {
            complaints.push(format!("unshare(0) failed with errno {e}"));
        }
        // unshare without namespace flags is allowed: CLONE_FILES copies the fd table.
        if let Err(e) = call(
            libc::SYS_unshare,
            [libc::c_long::from(libc::CLONE_FILES), 0, 0, 0, 0],
        ) {
            complaints.push(format!("unshare(CLONE_FILES) failed with errno {e}"));
        }
        // No such process: ESRCH shows the call reached the kernel's ptrace code.
        let ptrace = call(
            libc::SYS_ptrace,
            [
                libc::c_long::from(libc::PTRACE_ATTACH),
                i32::MAX.into(),
                0,
                0,
                0,
            ],
        );
        expect_errno(
            &mut complaints,
            "ptrace(ATTACH, no such pid)",
            ptrace,
            libc::ESRCH,
        );
        complaints
    }
}
