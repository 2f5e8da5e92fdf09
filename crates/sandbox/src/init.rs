//! The three processes of a sandbox (see the crate docs) and the system calls between them.
//!
//! Everything here runs in a process that has no other threads: `unshare` of a mount
//! namespace and `fork` are only sound that way.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

use std::os::fd::{AsRawFd, OwnedFd};

use crate::network::Network;
use crate::{PROGRAM_PATH, SandboxError, Spec, WORKSPACE_PATH};

const NAMESPACES: libc::c_int = libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWNET;

/// Signals passed on from the outer process to PID 1, and from PID 1 to the program.
const FORWARDED: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

fn last_error(context: &str) -> SandboxError {
    SandboxError::Io {
        context: context.to_string(),
        source: std::io::Error::last_os_error(),
    }
}

/// Forks a throwaway child that tries to unshare every namespace we use.
pub(crate) fn probe_namespaces() -> Result<(), SandboxError> {
    // SAFETY: the child only calls unshare and _exit, both async-signal-safe.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(last_error("fork"));
    }
    if pid == 0 {
        // SAFETY: see above.
        unsafe {
            let ok = libc::unshare(NAMESPACES) == 0;
            libc::_exit(if ok { 0 } else { 1 });
        }
    }
    let status = wait_for(pid);
    if status != 0 {
        return Err(SandboxError::Namespaces(
            "mount, PID, IPC, UTS and network",
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        ));
    }
    Ok(())
}

/// Blocks the forwarded signals (and SIGCHLD) so they can be taken with `sigtimedwait`.
fn block_signals() -> libc::sigset_t {
    // SAFETY: sigset manipulation on a local, zero-initialised set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in FORWARDED {
            libc::sigaddset(&mut set, sig);
        }
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn unblock_all() {
    // SAFETY: an empty mask set on the calling thread.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// Waits for one child, returning its status as an exit code (128 + signal if killed).
fn wait_for(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            return exit_code(status);
        }
        if rc < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return 127;
        }
    }
}

fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        127
    }
}

/// Runs `child` in a fork and relays the forwarded signals to it until it exits; with
/// `reap_all`, also reaps every other child (the job of PID 1). Returns the child's status.
fn supervise(set: &libc::sigset_t, child: libc::pid_t, reap_all: bool) -> i32 {
    loop {
        // Reap whatever has exited; stop when the main child has.
        loop {
            let mut status = 0;
            let target = if reap_all { -1 } else { child };
            // SAFETY: status is a valid out-pointer.
            let rc = unsafe { libc::waitpid(target, &mut status, libc::WNOHANG) };
            if rc == child {
                return exit_code(status);
            }
            if rc <= 0 {
                break;
            }
        }
        let timeout = libc::timespec {
            tv_sec: 1,
            tv_nsec: 0,
        };
        // SAFETY: set and timeout are valid; info may be null.
        let sig = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &timeout) };
        if FORWARDED.contains(&sig) {
            // SAFETY: kill takes plain integers.
            unsafe {
                libc::kill(child, sig);
            }
        }
    }
}

pub(crate) fn run(spec: &Spec) -> Result<i32, SandboxError> {
    // Blocked from the start: a stop that arrives while the disk is checked or grown waits
    // until the sandbox is up and is then forwarded like any other.
    let set = block_signals();
    // Nothing `cove serve` inherited from whoever started it may reach the workspace.
    close_inherited_fds(&spec.inherited_fds);
    if let Some(image) = &spec.workspace_image {
        // A previous sandbox of this workspace that was killed may still be tearing down
        // with its own copy of the mount: never attach the image twice. (The image is
        // mounted by PID 1, inside the sandbox's mount namespace only.)
        crate::disk::wait_until_detached(image)?;
    }
    confine(spec, &set)
}

/// Closes every descriptor above stderr except `keep`.
fn close_inherited_fds(keep: &[i32]) {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter_map(|fd| u32::try_from(*fd).ok())
        .collect();
    keep.sort_unstable();
    let mut first = 3u32;
    for fd in keep.into_iter().filter(|fd| *fd >= 3) {
        if fd > first {
            // SAFETY: close_range only closes descriptors; none of the closed ones is owned
            // by a Rust object in this process (it has only just started).
            unsafe {
                libc::syscall(libc::SYS_close_range, first, fd - 1, 0);
            }
        }
        first = fd + 1;
    }
    // SAFETY: as above.
    unsafe {
        libc::syscall(libc::SYS_close_range, first, u32::MAX, 0);
    }
}

fn confine(spec: &Spec, set: &libc::sigset_t) -> Result<i32, SandboxError> {
    // PID 1 waits on this pipe for its network before it starts the program.
    let (network_read, network_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| SandboxError::Io {
        context: "pipe".into(),
        source: e.into(),
    })?;
    // What the program writes to stdout and stderr goes through this pipe to the capped log
    // on the host: the program never holds a descriptor of a host file.
    let (log_read, log_write) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| {
            SandboxError::Io {
                context: "pipe".into(),
                source: e.into(),
            }
        })?;
    // Planned here, in the host's network namespace, where the host's addresses show.
    let egress = match &spec.network {
        Network::Loopback => Vec::new(),
        Network::Outbound { .. } => crate::egress::plan(&spec.egress)?,
    };
    crate::cgroups::join(&spec.name, spec.limits, spec.uid, spec.gid)?;
    // clone rather than unshare + fork: only the child enters the new namespaces. This process
    // stays in the host's, so its pivot_root cannot move this process's root, and what this
    // process starts later (slirp4netns) runs on the host side, outside the sandbox's PIDs.
    // SAFETY: single-threaded (the caller guarantees it); without CLONE_VM or a new stack the
    // child continues on a copy of this stack, exactly like fork.
    let init = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::c_long::from(NAMESPACES | libc::SIGCHLD),
            0 as libc::c_long,
            0 as libc::c_long,
            0 as libc::c_long,
            0 as libc::c_long,
        )
    } as libc::pid_t;
    if init < 0 {
        let err = SandboxError::Namespaces(
            "mount, PID, IPC, UTS and network",
            std::io::Error::last_os_error(),
        );
        crate::cgroups::leave(&spec.name);
        crate::cgroups::remove(&spec.name);
        return Err(err);
    }
    if init == 0 {
        drop(network_write);
        drop(log_read);
        // SAFETY: dup2 onto stdout and stderr of this (single-threaded) child; the pipe's
        // own descriptor stays CLOEXEC and goes at exec.
        unsafe {
            libc::dup2(log_write.as_raw_fd(), 1);
            libc::dup2(log_write.as_raw_fd(), 2);
        }
        drop(log_write);
        // If this process is killed (SIGKILL cannot be forwarded), the whole sandbox goes
        // with it instead of living on with its own copy of the disk's mount. Kept across
        // PID 1's re-exec. Dying before this line is caught by the network pipe's EOF.
        // SAFETY: a plain prctl on this process.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        }
        let code = match pid1(spec, network_read, &egress) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("cove sandbox: {e}");
                125
            }
        };
        // SAFETY: leaving PID 1 ends the namespace, which kills whatever is left in it.
        unsafe { libc::_exit(code) }
    }
    drop(network_read);
    let log = crate::log::pump(spec.log_file.clone(), log_read);
    // Held until the sandbox ends: slirp4netns exits when it is dropped.
    let outbound = match &spec.network {
        Network::Loopback => None,
        Network::Outbound { slirp4netns } => match crate::network::connect(
            slirp4netns,
            init,
            &log_write,
            crate::cgroups::cpu_dir(&spec.name).map(|d| d.join("cgroup.procs")),
        ) {
            Ok(outbound) => Some(outbound),
            Err(e) => {
                // The workspace still works, offline; the log says why.
                eprintln!("cove sandbox: no outbound network: {e}");
                None
            }
        },
    };
    drop(log_write);
    // "1": tap0 is up and PID 1 must restrict it; "0": no outbound network.
    let ready = if outbound.is_some() { b"1" } else { b"0" };
    let _ = rustix::io::write(&network_write, ready);
    drop(network_write);
    let code = supervise(set, init, false);
    drop(outbound);
    crate::cgroups::leave(&spec.name);
    crate::cgroups::remove(&spec.name);
    // Every writer is gone (the program, PID 1, slirp4netns): the pump reaches the end.
    if let Some(log) = log {
        let _ = log.join();
    }
    Ok(code)
}

/// PID 1 of the new namespaces: build the root, start the program, reap until it exits.
fn pid1(
    spec: &Spec,
    network_ready: OwnedFd,
    egress: &[crate::egress::Route],
) -> Result<i32, SandboxError> {
    crate::rootfs::enter(spec)?;
    rustix::system::sethostname(spec.name.as_bytes()).map_err(|e| SandboxError::Io {
        context: "sethostname".into(),
        source: e.into(),
    })?;
    loopback_up()?;
    // The outer process writes one byte once outbound network is up (or has failed); EOF
    // means it died, and then so should the sandbox.
    let mut byte = [0u8; 1];
    loop {
        match rustix::io::read(&network_ready, &mut byte) {
            Ok(1) => break,
            Err(rustix::io::Errno::INTR) => continue,
            _ => {
                return Err(SandboxError::Spec(
                    "the sandbox's outer process went away".into(),
                ));
            }
        }
    }
    drop(network_ready);
    // Before any program runs: a workspace whose egress policy is not in force must not.
    if byte == *b"1" {
        crate::egress::apply(egress, crate::network::GATEWAY, crate::network::DEVICE)?;
    }
    // Become the program mounted inside (`PROGRAM_PATH reap ...`): from here on no process in
    // the workspace carries a host path in its command line.
    let mut argv = vec![
        CString::new(PROGRAM_PATH).expect("literal"),
        CString::new("sandbox-reap").expect("literal"),
        CString::new(format!("--uid={}", spec.uid)).expect("digits"),
        CString::new(format!("--gid={}", spec.gid)).expect("digits"),
        CString::new("--").expect("literal"),
    ];
    argv.extend(
        spec.args
            .iter()
            .map(|a| CString::new(a.as_bytes()).expect("no NUL in args")),
    );
    exec(&argv, &env_strings(&spec.env))?;
    unreachable!("exec returns only on failure")
}

fn env_strings(env: &[(std::ffi::OsString, std::ffi::OsString)]) -> Vec<CString> {
    env.iter()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).expect("no NUL in env")
        })
        .collect()
}

fn exec(argv: &[CString], envp: &[CString]) -> Result<(), SandboxError> {
    let mut args: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    args.push(std::ptr::null());
    let mut env: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
    env.push(std::ptr::null());
    // SAFETY: both arrays are NUL-terminated and point at strings that outlive the call.
    unsafe {
        libc::execve(args[0], args.as_ptr(), env.as_ptr());
    }
    Err(last_error("execve"))
}

/// PID 1's second half, after it re-executed itself inside: starts the program as the
/// workspace's user and reaps every orphan until the program exits.
pub(crate) fn reap(uid: u32, gid: u32, args: &[std::ffi::OsString]) -> Result<i32, SandboxError> {
    if uid == 0 || gid == 0 {
        return Err(SandboxError::Spec(
            "the workspace must not run as root".into(),
        ));
    }
    let set = block_signals();
    let argv: Vec<CString> = std::iter::once(CString::new(PROGRAM_PATH).expect("literal"))
        .chain(
            args.iter()
                .map(|a| CString::new(a.as_bytes()).expect("no NUL in args")),
        )
        .collect();
    let envp = env_strings(&std::env::vars_os().collect::<Vec<_>>());
    // SAFETY: this process is single-threaded (no runtime has been started).
    let program = unsafe { libc::fork() };
    if program < 0 {
        return Err(last_error("fork of the program"));
    }
    if program == 0 {
        unblock_all();
        if let Err(e) = become_program(uid, gid, &argv, &envp) {
            eprintln!("cove sandbox: {e}");
        }
        // SAFETY: exec failed; leave without running destructors of the parent's state.
        unsafe { libc::_exit(126) }
    }
    Ok(supervise(&set, program, true))
}

/// Drops to the workspace's user for good and executes the program. Only returns on failure.
fn become_program(
    uid: u32,
    gid: u32,
    argv: &[CString],
    envp: &[CString],
) -> Result<(), SandboxError> {
    // SAFETY: plain system calls on this process's own credentials and attributes.
    unsafe {
        // No setuid binary (sudo, su, mount...) can give privileges back.
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(last_error("no_new_privs"));
        }
        if crate::landlock::restrict(crate::landlock::RULES)?
            == crate::landlock::Enforced::Unsupported
        {
            eprintln!(
                "cove sandbox: this kernel has no usable Landlock (ABI 2+); the mount namespace is the only wall"
            );
        }
        if libc::setgroups(0, std::ptr::null()) != 0 {
            return Err(last_error("setgroups"));
        }
        if libc::setresgid(gid, gid, gid) != 0 {
            return Err(last_error("setresgid"));
        }
        // Leaving uid 0 for a non-zero uid clears every capability.
        if libc::setresuid(uid, uid, uid) != 0 {
            return Err(last_error("setresuid"));
        }
        if libc::setresuid(0, 0, 0) == 0 {
            return Err(SandboxError::Spec(
                "could get root back after dropping it".into(),
            ));
        }
        let workspace = CString::new(WORKSPACE_PATH).expect("literal");
        libc::chdir(workspace.as_ptr());
    }
    crate::seccomp::install()?;
    exec(argv, envp)
}

/// Brings up `lo` in the new network namespace (it starts down).
fn loopback_up() -> Result<(), SandboxError> {
    // SAFETY: a socket used only for the interface ioctl; ifreq is zero-initialised and the
    // name fits (2 bytes + NUL).
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(last_error("socket for lo"));
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            ifr.ifr_name[i] = *b as libc::c_char;
        }
        let ok = libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr) == 0 && {
            ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            libc::ioctl(fd, libc::SIOCSIFFLAGS, &ifr) == 0
        };
        libc::close(fd);
        if !ok {
            return Err(last_error("bringing up lo"));
        }
    }
    Ok(())
}
