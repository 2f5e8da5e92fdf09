//! A sandbox's network: always its own namespace with `lo`; optionally outbound connections
//! through slirp4netns, a user-mode TCP/IP stack that runs on the host side and makes the
//! sandbox's connections as ordinary sockets of its own.
//!
//! With outbound on, the sandbox gets `tap0` (10.0.2.100/24, gateway 10.0.2.2, DNS at
//! 10.0.2.3, which forwards to the host's resolver). The host's loopback is NOT reachable
//! (`--disable-host-loopback`), so cove's own ports on 127.0.0.1 stay closed to workspaces.
//! Nor are, unless the server allows them, the private ranges (the LAN, cloud metadata) and
//! the host's other addresses: PID 1 prohibits them with routes before the program starts
//! (see [`crate::egress`]). Nothing reaches into a sandbox: slirp4netns forwards no inbound
//! ports here.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::SandboxError;

/// How a sandbox reaches the outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// Only its own loopback.
    Loopback,
    /// Loopback, plus outbound connections through this `slirp4netns` program.
    Outbound { slirp4netns: PathBuf },
}

/// The resolver a sandbox with outbound network uses (slirp4netns's built-in DNS forwarder).
pub const RESOLV_CONF: &str = "nameserver 10.0.2.3\n";

/// The interface slirp4netns makes in the sandbox, and its gateway there.
pub const DEVICE: &str = "tap0";
pub const GATEWAY: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 0, 2, 2);

/// How long slirp4netns may take to configure the sandbox's interface.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// The fd numbers slirp4netns is given for `--ready-fd` and `--exit-fd`.
const READY_FD: i32 = 3;
const EXIT_FD: i32 = 4;

/// `slirp4netns` on the PATH (or in /usr/bin), if installed.
pub fn find_slirp4netns() -> Option<PathBuf> {
    crate::find_program("slirp4netns")
}

/// A running slirp4netns. Dropping this closes its exit pipe and waits for it to go, so the
/// sandbox's cgroups are empty when they are removed.
pub struct Outbound {
    exit: Option<OwnedFd>,
    child: std::process::Child,
}

/// How long slirp4netns may take to leave once told to.
const EXIT_TIMEOUT: Duration = Duration::from_secs(2);

impl Drop for Outbound {
    fn drop(&mut self) {
        drop(self.exit.take());
        let deadline = std::time::Instant::now() + EXIT_TIMEOUT;
        while matches!(self.child.try_wait(), Ok(None)) {
            if std::time::Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| SandboxError::Io {
        context: "pipe".into(),
        source: e.into(),
    })
}

/// Connects the network namespace of `pid` to the outside through slirp4netns and waits
/// until its interface is configured. slirp4netns writes its messages to `log` and, when
/// `cpu_procs` is given (cgroup v1, where the CPU group is not the sandbox's own), joins that
/// CPU group: the traffic it carries for the workspace is held to the workspace's CPU limit.
pub fn connect(
    slirp4netns: &Path,
    pid: libc::pid_t,
    log: &OwnedFd,
    cpu_procs: Option<PathBuf>,
) -> Result<Outbound, SandboxError> {
    let (ready_read, ready_write) = pipe()?;
    let (exit_read, exit_write) = pipe()?;
    let mut command = Command::new(slirp4netns);
    command
        .args([
            "--configure",
            "--mtu=65520",
            "--disable-host-loopback",
            "--enable-sandbox",
            "--enable-seccomp",
        ])
        .arg(format!("--ready-fd={READY_FD}"))
        .arg(format!("--exit-fd={EXIT_FD}"))
        .arg(pid.to_string())
        .arg(DEVICE)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            log.try_clone()
                .map_err(crate::io_err("dup of the log pipe"))?,
        ));
    let cpu_procs = cpu_procs
        .map(|p| std::ffi::CString::new(p.into_os_string().into_encoded_bytes()))
        .transpose()
        .map_err(|_| SandboxError::Spec("a NUL in the cgroup path".into()))?;
    let (ready_raw, exit_raw) = (ready_write.as_raw_fd(), exit_read.as_raw_fd());
    // SAFETY: only unshare, mount, open, write, close, fcntl and dup2 (async-signal-safe
    // system calls) between fork and exec, on the child's own state; writing "0" to
    // cgroup.procs moves the child itself. Both ends are
    // first copied above the targets (so no dup2 overwrites the other end, and none is a
    // no-op that would keep CLOEXEC); dup2 then clears CLOEXEC on the copies, so exactly
    // these two pipe ends reach slirp4netns.
    unsafe {
        command.pre_exec(move || {
            // slirp4netns's own sandbox pivots and detaches the old root; mounts under a
            // shared host mount (`ip netns add` makes /run/netns shared) would be unmounted on
            // the host too. A private mount namespace of its own keeps every such change in.
            if libc::unshare(libc::CLONE_NEWNS) != 0
                || libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(procs) = &cpu_procs {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(fd);
            }
            let ready_high = libc::fcntl(ready_raw, libc::F_DUPFD_CLOEXEC, 10);
            let exit_high = libc::fcntl(exit_raw, libc::F_DUPFD_CLOEXEC, 10);
            if ready_high < 0
                || exit_high < 0
                || libc::dup2(ready_high, READY_FD) < 0
                || libc::dup2(exit_high, EXIT_FD) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|e| SandboxError::Io {
        context: format!("cannot run {}", slirp4netns.display()),
        source: e,
    })?;
    drop((ready_write, exit_read));
    // slirp4netns writes "1" once tap0 is up and configured; EOF means it gave up.
    let mut ready = std::fs::File::from(ready_read);
    let mut byte = [0u8; 1];
    let became_ready =
        wait_readable(&ready, READY_TIMEOUT) && matches!(ready.read(&mut byte), Ok(1));
    if !became_ready {
        let _ = child.kill();
        let _ = child.wait();
        return Err(SandboxError::Io {
            context: "slirp4netns did not set up the workspace's network (see the log above)"
                .into(),
            source: std::io::Error::from(std::io::ErrorKind::TimedOut),
        });
    }
    Ok(Outbound {
        exit: Some(exit_write),
        child,
    })
}

fn wait_readable(file: &std::fs::File, timeout: Duration) -> bool {
    let mut poll = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut poll, 1, left.as_millis() as libc::c_int) };
        if rc > 0 {
            return true;
        }
        if rc == 0
            || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR)
            || left.is_zero()
        {
            return false;
        }
    }
}
