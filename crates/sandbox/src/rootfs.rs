//! The sandbox's root filesystem, built in a private mount namespace and entered with
//! `pivot_root`. Every host path that stays visible is listed here, read-only unless noted.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::{PROGRAM_PATH, SandboxError, Spec, WORKSPACE_PATH};

fn cstr(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).expect("paths have no NUL")
}

fn last_error(context: String) -> SandboxError {
    SandboxError::Io {
        context,
        source: std::io::Error::last_os_error(),
    }
}

/// mount(2) with optional source, type and data.
fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<(), SandboxError> {
    let source_c = source.map(cstr);
    let target_c = cstr(target);
    let fstype_c = fstype.map(|t| CString::new(t).expect("no NUL"));
    let data_c = data.map(|d| CString::new(d).expect("no NUL"));
    // SAFETY: every pointer is either null or a NUL-terminated string that outlives the call.
    let rc = unsafe {
        libc::mount(
            source_c.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            target_c.as_ptr(),
            fstype_c.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            flags,
            data_c
                .as_ref()
                .map_or(std::ptr::null(), |s| s.as_ptr().cast()),
        )
    };
    if rc != 0 {
        return Err(last_error(format!(
            "mount {:?} on {} ({fstype:?})",
            source,
            target.display()
        )));
    }
    Ok(())
}

/// Bind-mounts `source` at `target`, then makes it read-only unless `writable`. Bind mounts
/// ignore flags on the first call, hence the remount.
fn bind(source: &Path, target: &Path, writable: bool) -> Result<(), SandboxError> {
    mount(
        Some(source),
        target,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )?;
    let mut flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_NOSUID | libc::MS_NODEV;
    if !writable {
        flags |= libc::MS_RDONLY;
    }
    mount(None, target, None, flags, None)
}

fn mkdir(path: &Path) -> Result<(), SandboxError> {
    std::fs::create_dir_all(path)
        .map_err(crate::io_err(format!("cannot create {}", path.display())))
}

fn touch(path: &Path) -> Result<(), SandboxError> {
    std::fs::write(path, b"").map_err(crate::io_err(format!("cannot create {}", path.display())))
}

/// Host files that must not be readable in a workspace even though `/etc` is.
const MASKED: &[&str] = &[
    "etc/shadow",
    "etc/shadow-",
    "etc/gshadow",
    "etc/gshadow-",
    "etc/sudoers",
    "etc/security/opasswd",
];

/// Where `link` (an absolute path) leads after following symlinks lexically, up to a few
/// hops; the path itself when it is not a link.
fn resolv_conf_target(link: &Path) -> PathBuf {
    let mut path = link.to_path_buf();
    for _ in 0..8 {
        let Ok(target) = std::fs::read_link(&path) else {
            break;
        };
        let joined = path.parent().unwrap_or(Path::new("/")).join(target);
        let mut normal = PathBuf::from("/");
        for part in joined.components() {
            match part {
                std::path::Component::ParentDir => {
                    normal.pop();
                }
                std::path::Component::Normal(name) => normal.push(name),
                _ => {}
            }
        }
        path = normal;
    }
    path
}

/// Devices a development shell needs; bound from the host's /dev.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// Builds the new root at `spec.root_dir` and pivots into it. Runs as root, as PID 1 of the
/// new PID namespace, inside the new mount namespace.
pub(crate) fn enter(spec: &Spec) -> Result<(), SandboxError> {
    // Nothing mounted from here on may leak back to the host.
    mount(
        None,
        Path::new("/"),
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        None,
    )?;
    let root = &spec.root_dir;
    mount(
        Some(Path::new("tmpfs")),
        root,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some("mode=0755,size=16m"),
    )?;
    let at = |p: &str| -> PathBuf { root.join(p.trim_start_matches('/')) };

    // System directories, read-only. On merged-/usr hosts /bin, /lib... are symlinks into /usr.
    for dir in ["usr", "etc", "opt"] {
        let host = Path::new("/").join(dir);
        if host.is_dir() {
            mkdir(&at(dir))?;
            bind(&host, &at(dir), false)?;
        }
    }
    for link in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
        let host = Path::new("/").join(link);
        match std::fs::read_link(&host) {
            Ok(target) => std::os::unix::fs::symlink(&target, at(link))
                .map_err(crate::io_err(format!("cannot link /{link}")))?,
            Err(_) if host.is_dir() => {
                mkdir(&at(link))?;
                bind(&host, &at(link), false)?;
            }
            Err(_) => {}
        }
    }
    // With outbound network, DNS goes to slirp4netns's forwarder: the host's resolver address
    // may be on its own loopback, which a workspace cannot reach.
    if matches!(spec.network, crate::network::Network::Outbound { .. }) {
        let resolv = at(".resolv.conf");
        std::fs::write(&resolv, crate::network::RESOLV_CONF)
            .map_err(crate::io_err("cannot write resolv.conf"))?;
        // systemd-resolved makes it a link into /run, which the new root does not have: the
        // file goes where the link points, inside the new root.
        let inside = resolv_conf_target(Path::new("/etc/resolv.conf"));
        let target = at(&inside.to_string_lossy());
        if target.is_file() {
            bind(&resolv, &target, false)?;
        } else if let Some(parent) = target.parent() {
            mkdir(parent)?;
            std::fs::write(&target, crate::network::RESOLV_CONF)
                .map_err(crate::io_err(format!("cannot write {}", inside.display())))?;
        }
    }
    // Secrets in /etc: an empty file is mounted over each.
    let empty = at(".empty");
    touch(&empty)?;
    for file in MASKED {
        if at(file).exists() {
            bind(&empty, &at(file), false)?;
        }
    }

    // The workspace's disk image is mounted here, in the sandbox's own mount namespace: no
    // host process ever sees (or pins) the mount, and it ends with the namespace.
    if let Some(image) = &spec.workspace_image {
        crate::disk::mount_image(image, &spec.workspace_dir, spec.disk_limit_bytes)?;
        // mke2fs always makes one; it is noise in a project's file tree.
        let _ = std::fs::remove_dir(spec.workspace_dir.join("lost+found"));
    }
    // The workspace and the program itself. (The runner's socket lives on the host, in a
    // directory only cove can write; nothing of it is mounted here.)
    mkdir(&at(WORKSPACE_PATH))?;
    bind(&spec.workspace_dir, &at(WORKSPACE_PATH), true)?;
    mkdir(&at("run"))?;
    mkdir(&at("/.cove"))?;
    touch(&at(PROGRAM_PATH))?;
    mount(
        Some(&spec.program),
        &at(PROGRAM_PATH),
        None,
        libc::MS_BIND,
        None,
    )?;
    mount(
        None,
        &at(PROGRAM_PATH),
        None,
        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NODEV,
        None,
    )?;

    // The cgroup of the workspace, read-only, so the runner can report usage and limits.
    if let Some(memory) = crate::cgroups::memory_dir(&spec.name) {
        let inside = if memory.starts_with("/sys/fs/cgroup/memory") {
            "sys/fs/cgroup/memory"
        } else {
            "sys/fs/cgroup"
        };
        mkdir(&at(inside))?;
        bind(&memory, &at(inside), false)?;
    }
    if let Some(pids) = crate::cgroups::pids_dir(&spec.name) {
        mkdir(&at("sys/fs/cgroup/pids"))?;
        bind(&pids, &at("sys/fs/cgroup/pids"), false)?;
    }

    // The delegated CPU group (v1), writable: programs move themselves into it.
    if let Some(cpu) = crate::cgroups::cpu_dir(&spec.name) {
        mkdir(&at("sys/fs/cgroup/cpu"))?;
        bind(&cpu, &at("sys/fs/cgroup/cpu"), true)?;
    }

    // A private /tmp, and /proc of the new PID namespace.
    mkdir(&at("tmp"))?;
    mount(
        Some(Path::new("tmpfs")),
        &at("tmp"),
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some(&format!("mode=1777,size={}", spec.tmp_bytes)),
    )?;
    mkdir(&at("proc"))?;
    mount(
        Some(Path::new("proc")),
        &at("proc"),
        Some("proc"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        None,
    )?;

    // /dev: a few bound devices, its own devpts (terminals of this workspace only), /dev/shm.
    mkdir(&at("dev"))?;
    mount(
        Some(Path::new("tmpfs")),
        &at("dev"),
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NOEXEC,
        Some("mode=0755,size=64k"),
    )?;
    for device in DEVICES {
        let host = Path::new("/dev").join(device);
        if host.exists() {
            touch(&at(&format!("dev/{device}")))?;
            mount(
                Some(&host),
                &at(&format!("dev/{device}")),
                None,
                libc::MS_BIND,
                None,
            )?;
        }
    }
    mkdir(&at("dev/pts"))?;
    mount(
        Some(Path::new("devpts")),
        &at("dev/pts"),
        Some("devpts"),
        libc::MS_NOSUID | libc::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )?;
    std::os::unix::fs::symlink("pts/ptmx", at("dev/ptmx"))
        .map_err(crate::io_err("cannot link /dev/ptmx"))?;
    mkdir(&at("dev/shm"))?;
    mount(
        Some(Path::new("tmpfs")),
        &at("dev/shm"),
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some("mode=1777,size=64m"),
    )?;
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(target, at(&format!("dev/{name}")))
            .map_err(crate::io_err("cannot link /dev entries"))?;
    }

    // Enter the new root and forget the old one.
    let old = at(".old");
    mkdir(&old)?;
    rustix::process::pivot_root(root.as_path(), old.as_path()).map_err(|e| SandboxError::Io {
        context: "pivot_root".into(),
        source: e.into(),
    })?;
    std::env::set_current_dir("/").map_err(crate::io_err("chdir /"))?;
    // SAFETY: a NUL-terminated literal path.
    if unsafe { libc::umount2(c"/.old".as_ptr(), libc::MNT_DETACH) } != 0 {
        return Err(last_error("cannot detach the old root".into()));
    }
    let _ = std::fs::remove_dir("/.old");
    // The root itself (a tmpfs of mount points) becomes read-only.
    mount(
        None,
        Path::new("/"),
        None,
        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
        None,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_links_are_followed_lexically() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        std::fs::create_dir(&etc).unwrap();
        std::os::unix::fs::symlink(
            "../run/systemd/resolve/stub-resolv.conf",
            etc.join("resolv.conf"),
        )
        .unwrap();
        assert_eq!(
            resolv_conf_target(&etc.join("resolv.conf")),
            dir.path().join("run/systemd/resolve/stub-resolv.conf")
        );
        std::fs::write(etc.join("plain.conf"), "x").unwrap();
        assert_eq!(
            resolv_conf_target(&etc.join("plain.conf")),
            etc.join("plain.conf")
        );
    }
}
