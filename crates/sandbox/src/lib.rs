//! Linux isolation for one workspace: namespaces, a private root filesystem, cgroup limits,
//! a disk image, user-mode networking, Landlock and an unprivileged user; turns a [`Spec`]
//! into a confined program.
//!
//! Owns: cgroups (v1 and v2), the mount, PID, IPC, UTS and network namespaces, the new root
//! (`pivot_root`), the workspace's disk image and loop device ([`disk`]), slirp4netns for
//! outbound network ([`network`]) and where it may lead ([`egress`]), Landlock rules
//! ([`landlock`]), the seccomp filter ([`seccomp`]), dropping to the workspace's uid, the
//! PID 1 that reaps orphans.
//! Must not know: the wire protocol, the runner, HTTP, users.
//!
//! [`run`] is the whole life of a sandbox, called in a fresh single-threaded process (the
//! `cove sandbox-init` subcommand), which must be root on the host:
//!
//! ```text
//! sandbox-init (host namespaces)   mounts the workspace's disk image, joins the cgroups,
//!   │                              unshares the namespaces, forks, forwards SIGTERM/SIGINT/
//!   │                              SIGHUP, waits, removes the cgroups, unmounts the disk
//!   └─ init, PID 1 (new namespaces) builds the new root, pivots into it, brings up `lo`,
//!        │                          re-executes itself from inside (`sandbox-reap`, so no
//!        │                          host path shows), forks, reaps every orphan, ends the
//!        │                          namespace when the program exits (killing what is left)
//!        └─ the program (PID 2)     runs as the workspace's uid, no capabilities, no_new_privs,
//!                                   under Landlock and a seccomp filter
//! ```
//!
//! Inside, the program sees: `/usr` and `/etc` read-only (with `/etc/shadow` and other secrets
//! masked), `/workspace` read-write, a private `/tmp`, its own `/proc` and `/dev` (with its own
//! devpts), its own loopback (and, if the server allows it, outbound connections through
//! slirp4netns, see [`network`]: to public addresses, but not to the host's addresses or
//! private ranges unless allowed, see [`egress`]), and nothing else of the host: no other
//! workspace, no cove data, no home directories.

mod cgroups;
pub mod disk;
pub mod egress;
#[cfg(test)]
mod forked;
mod init;
pub mod landlock;
pub mod log;
pub mod network;
mod rootfs;
pub mod seccomp;

use std::ffi::OsString;
use std::path::PathBuf;

pub use cgroups::{CPU_PROCS_INSIDE, CgroupVersion, Limits};

/// Everything needed to start one sandboxed program.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Names the cgroups (`cove-<name>`) and the host name; letters, digits and `-` only.
    pub name: String,
    /// The workspace's files on the host, mounted read-write at `/workspace`.
    pub workspace_dir: PathBuf,
    /// A disk image holding the workspace's files (see [`disk`]): mounted at `workspace_dir`
    /// for as long as the sandbox lives, so every write is held to its size.
    pub workspace_image: Option<PathBuf>,
    /// The workspace's storage limit: an image made for a smaller one is grown (0: keep).
    pub disk_limit_bytes: u64,
    /// The host file that receives the program's stdout and stderr (capped and rotated,
    /// see [`log`]).
    pub log_file: PathBuf,
    /// Descriptors the program inherits besides stdin, stdout and stderr (the runner's
    /// listening socket); every other inherited descriptor is closed first.
    pub inherited_fds: Vec<i32>,
    /// An empty host directory used as the mount point of the new root.
    pub root_dir: PathBuf,
    /// The program, on the host; it is mounted read-only at `/.cove/bin` and run from there.
    pub program: PathBuf,
    /// Arguments after the program name.
    pub args: Vec<OsString>,
    /// The program's whole environment.
    pub env: Vec<(OsString, OsString)>,
    /// Host uid and gid the program runs as; never 0.
    pub uid: u32,
    pub gid: u32,
    pub limits: Limits,
    /// Size of the private `/tmp`, in bytes.
    pub tmp_bytes: u64,
    pub network: network::Network,
    /// Private ranges and host addresses that outbound connections may reach all the same
    /// (with [`network::Network::Outbound`] only; see [`egress`]).
    pub egress: egress::Egress,
}

/// Where the program is mounted inside the sandbox.
pub const PROGRAM_PATH: &str = "/.cove/bin";
/// Where the workspace is mounted inside the sandbox.
pub const WORKSPACE_PATH: &str = "/workspace";

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "the sandbox needs root on the host (cove serve runs as uid {0}); run as root or use --sandbox none"
    )]
    NotRoot(u32),
    #[error("this kernel cannot create {0} namespaces: {1}")]
    Namespaces(&'static str, std::io::Error),
    #[error("no usable cgroup controller for {0} (looked in /sys/fs/cgroup): {1}")]
    Cgroups(&'static str, String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid sandbox spec: {0}")]
    Spec(String),
    #[error("seccomp filter: {0}")]
    Seccomp(String),
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> SandboxError {
    let context = context.into();
    move |source| SandboxError::Io { context, source }
}

/// A helper program on the PATH, or in the system directories a root PATH may lack (a
/// server started by a service manager often has no `/usr/sbin`).
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Checks that this host can run sandboxes, so that a server refuses to start rather than
/// fail at the first workspace. Says what is missing.
pub fn check_host() -> Result<CgroupVersion, SandboxError> {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    if uid != 0 {
        return Err(SandboxError::NotRoot(uid));
    }
    let version = cgroups::detect()?;
    init::probe_namespaces()?;
    seccomp::probe()?;
    Ok(version)
}

/// The whole life of a sandbox: see the crate docs. Returns the program's exit status as
/// this process's exit code (128 + signal when it was killed).
pub fn run(spec: &Spec) -> Result<i32, SandboxError> {
    if spec.uid == 0 || spec.gid == 0 {
        return Err(SandboxError::Spec(
            "the workspace must not run as root".into(),
        ));
    }
    if spec.name.is_empty()
        || !spec
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(SandboxError::Spec(format!("bad name {:?}", spec.name)));
    }
    init::run(spec)
}

/// The second half of PID 1 (`cove sandbox-reap`), after the root is built and PID 1 has
/// re-executed itself from inside: starts the program as `uid`/`gid` and reaps orphans.
pub fn reap(uid: u32, gid: u32, args: &[OsString]) -> Result<i32, SandboxError> {
    init::reap(uid, gid, args)
}

/// Whether programs must join the CPU group themselves (see [`CPU_PROCS_INSIDE`]).
pub fn delegates_cpu() -> bool {
    matches!(cgroups::detect(), Ok(CgroupVersion::V1))
}

/// Removes the cgroups of a sandbox that is gone (after a crash; `run` cleans up after itself).
pub fn remove_cgroups(name: &str) {
    cgroups::remove(name);
}
