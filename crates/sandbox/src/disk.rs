//! A hard storage limit per workspace: its files live in an ext4 image of the limit's size,
//! attached to a loop device and mounted at the workspace's directory while it runs. A
//! program that fills the disk gets `ENOSPC` inside its own filesystem; the host's disk and
//! other workspaces never notice.
//!
//! Images are sparse: a fresh 1 GiB image takes under 1 MiB on the host and grows with what
//! is written. Loop devices are set to clear themselves when their last user goes, so an
//! unmount (or the end of every namespace that held the mount) releases the device.
//!
//! Needs root, `/dev/loop-control` and `mke2fs` (e2fsprogs, part of every Debian install).

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{SandboxError, io_err};

// From <linux/loop.h>; the libc crate does not carry them.
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LO_FLAGS_AUTOCLEAR: u32 = 4;

/// `struct loop_info64`.
#[repr(C)]
struct LoopInfo64 {
    device: u64,
    inode: u64,
    rdevice: u64,
    offset: u64,
    sizelimit: u64,
    number: u32,
    encrypt_type: u32,
    encrypt_key_size: u32,
    flags: u32,
    file_name: [u8; 64],
    crypt_name: [u8; 64],
    encrypt_key: [u8; 32],
    init: [u64; 2],
}

/// `struct loop_config` (LOOP_CONFIGURE, Linux 5.8+: attach and configure in one call).
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

/// Space ext4 keeps for itself (journal, inode tables, group descriptors) on top of what
/// the workspace may use. Measured with these mke2fs options: 64 MiB, 1 GiB and 4 GiB limits
/// leave 75, 1026 and 4164 MiB free.
fn image_size(limit: u64) -> u64 {
    limit + limit / 100 * 7 + 16 * 1024 * 1024
}

/// How many times to retry when another process takes the free loop device first.
const ATTACH_ATTEMPTS: usize = 16;

/// The `mke2fs` this host has, or why images cannot be used here.
pub fn probe() -> Result<PathBuf, String> {
    if !Path::new("/dev/loop-control").exists() {
        return Err("this host has no /dev/loop-control (the loop module is missing)".into());
    }
    find_mke2fs().ok_or_else(|| "mke2fs was not found (install e2fsprogs)".into())
}

fn find_mke2fs() -> Option<PathBuf> {
    crate::find_program("mke2fs")
}

/// Creates `image`: an ext4 filesystem holding `limit` bytes of files, filled with a copy of
/// `files` (ownership and modes kept), its root owned by `uid`:`gid`.
pub fn create_image(
    image: &Path,
    limit: u64,
    files: &Path,
    uid: u32,
    gid: u32,
) -> Result<(), SandboxError> {
    let mke2fs = find_mke2fs().ok_or_else(|| SandboxError::Io {
        context: "cannot create a disk image".into(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "mke2fs not found"),
    })?;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(image)
        .map_err(io_err(format!("cannot create {}", image.display())))?;
    let made = file
        .set_len(image_size(limit))
        .map_err(io_err("cannot size the disk image"))
        .and_then(|()| {
            let output = Command::new(&mke2fs)
                .args([
                    "-q",
                    "-F",
                    "-t",
                    "ext4",
                    "-m",
                    "0",
                    "-i",
                    "8192",
                    "-L",
                    "workspace",
                ])
                .arg("-E")
                .arg(format!(
                    "root_owner={uid}:{gid},lazy_itable_init=1,lazy_journal_init=1,nodiscard"
                ))
                .arg("-d")
                .arg(files)
                .arg(image)
                .output()
                .map_err(io_err(format!("cannot run {}", mke2fs.display())))?;
            if output.status.success() {
                return Ok(());
            }
            Err(SandboxError::Io {
                context: format!(
                    "mke2fs failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
                source: std::io::Error::other("mke2fs"),
            })
        })
        .and_then(|()| {
            file.sync_all()
                .map_err(io_err("cannot sync the disk image"))
        });
    if made.is_err() {
        let _ = std::fs::remove_file(image);
    }
    made
}

/// How long a start waits for an earlier sandbox's loop device to let go of the image.
const DETACH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Waits until no loop device has `image` attached (an earlier sandbox of the workspace that
/// was killed lets go of it once its namespace is gone); mounting it twice would corrupt it.
pub fn wait_until_detached(image: &Path) -> Result<(), SandboxError> {
    let deadline = std::time::Instant::now() + DETACH_TIMEOUT;
    while attached(image) {
        if std::time::Instant::now() >= deadline {
            return Err(SandboxError::Io {
                context: format!(
                    "{} is still in use by an earlier sandbox of this workspace",
                    image.display()
                ),
                source: std::io::Error::from(std::io::ErrorKind::ResourceBusy),
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    Ok(())
}

/// Whether a loop device is backed by `image` (from sysfs).
fn attached(image: &Path) -> bool {
    let Ok(devices) = std::fs::read_dir("/sys/block") else {
        return false;
    };
    devices.flatten().any(|device| {
        std::fs::read(device.path().join("loop/backing_file")).is_ok_and(|backing| {
            let backing = backing.strip_suffix(b"\n").unwrap_or(&backing);
            backing == image.as_os_str().as_bytes()
        })
    })
}

/// Whether something is mounted exactly at `dir` (per this process's mount table).
pub fn is_mounted(dir: &Path) -> bool {
    let Ok(table) = std::fs::read("/proc/self/mountinfo") else {
        return false;
    };
    let wanted = escape_mount_path(dir.as_os_str().as_bytes());
    table.split(|b| *b == b'\n').any(|line| {
        // Field 5 (1-based) is the mount point.
        line.split(|b| *b == b' ').nth(4) == Some(wanted.as_slice())
    })
}

/// Mount points in mountinfo escape space, tab, newline and backslash as octal.
fn escape_mount_path(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    for &b in path {
        match b {
            b' ' | b'\t' | b'\n' | b'\\' => out.extend_from_slice(format!("\\{b:03o}").as_bytes()),
            _ => out.push(b),
        }
    }
    out
}

/// Attaches `image` to a free loop device and mounts it at `dir` (nosuid, nodev). The
/// device clears itself once unmounted everywhere. An image smaller than `limit` needs (the
/// limit was raised since it was made) is grown first; images never shrink.
pub fn mount_image(image: &Path, dir: &Path, limit: u64) -> Result<(), SandboxError> {
    let backing = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .map_err(io_err(format!("cannot open {}", image.display())))?;
    let size = backing
        .metadata()
        .map_err(io_err("cannot stat the disk image"))?
        .len();
    if limit > 0 && image_size(limit) > size {
        backing
            .set_len(image_size(limit))
            .map_err(io_err("cannot grow the disk image"))?;
        grow_filesystem(image);
    }
    let (device, path) = attach(&backing)?;
    let source = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("no NUL");
    let target = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| SandboxError::Spec("a NUL in the workspace path".into()))?;
    // SAFETY: NUL-terminated strings that outlive the call; no data argument.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            c"ext4".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            std::ptr::null(),
        )
    };
    let result = if rc == 0 {
        Ok(())
    } else {
        Err(SandboxError::Io {
            context: format!("cannot mount {} on {}", image.display(), dir.display()),
            source: std::io::Error::last_os_error(),
        })
    };
    // The mount holds the device now; with AUTOCLEAR, dropping our handle lets it go when
    // the filesystem is unmounted (or at once, if the mount failed).
    drop(device);
    result
}

/// Grows the (unmounted) filesystem of `image` to the image's new size: `e2fsck -f -p`, which
/// resize2fs insists on, then `resize2fs`. Offline, because online growth needs a capability
/// some hosts withhold even from root. A failure leaves the filesystem at its old size, which
/// still works, so it is only reported.
fn grow_filesystem(image: &Path) {
    // e2fsck exits 1 when it corrected errors, which is fine; resize2fs only 0 is success.
    for (tool, args, worst_ok) in [("e2fsck", &["-f", "-p"][..], 1), ("resize2fs", &[][..], 0)] {
        let Some(program) = crate::find_program(tool) else {
            eprintln!("cove sandbox: {tool} not found, the disk keeps its old size");
            return;
        };
        match Command::new(program).args(args).arg(image).output() {
            Ok(out) if out.status.code().is_some_and(|c| c <= worst_ok) => {}
            Ok(out) => {
                eprintln!(
                    "cove sandbox: {tool} failed, the disk keeps its old size: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                return;
            }
            Err(e) => {
                eprintln!("cove sandbox: cannot run {tool}, the disk keeps its old size: {e}");
                return;
            }
        }
    }
}

/// Unmounts `dir`; lazily if something still uses it, so a stop never hangs.
pub fn unmount(dir: &Path) -> Result<(), SandboxError> {
    let target = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| SandboxError::Spec("a NUL in the workspace path".into()))?;
    // SAFETY: a NUL-terminated string that outlives the calls.
    unsafe {
        if libc::umount2(target.as_ptr(), 0) == 0 {
            return Ok(());
        }
        if std::io::Error::last_os_error().raw_os_error() == Some(libc::EBUSY)
            && libc::umount2(target.as_ptr(), libc::MNT_DETACH) == 0
        {
            return Ok(());
        }
    }
    Err(SandboxError::Io {
        context: format!("cannot unmount {}", dir.display()),
        source: std::io::Error::last_os_error(),
    })
}

/// Finds a free loop device and binds `backing` to it in one step, retrying when another
/// process wins the race for the same device.
fn attach(backing: &std::fs::File) -> Result<(OwnedFd, PathBuf), SandboxError> {
    let control = rustix::fs::open(
        "/dev/loop-control",
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| SandboxError::Io {
        context: "cannot open /dev/loop-control".into(),
        source: e.into(),
    })?;
    let mut last = std::io::Error::from(std::io::ErrorKind::ResourceBusy);
    for _ in 0..ATTACH_ATTEMPTS {
        // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a device number.
        let number = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE) };
        if number < 0 {
            return Err(SandboxError::Io {
                context: "no free loop device".into(),
                source: std::io::Error::last_os_error(),
            });
        }
        let path = PathBuf::from(format!("/dev/loop{number}"));
        let device = rustix::fs::open(
            &path,
            rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| SandboxError::Io {
            context: format!("cannot open {}", path.display()),
            source: e.into(),
        })?;
        // SAFETY: an all-zero loop_config is valid; the fields we need are set below.
        let mut config: LoopConfig = unsafe { std::mem::zeroed() };
        config.fd = backing.as_raw_fd() as u32;
        config.info.flags = LO_FLAGS_AUTOCLEAR;
        // SAFETY: config is a valid loop_config that outlives the call.
        let rc = unsafe { libc::ioctl(device.as_raw_fd(), LOOP_CONFIGURE, &config) };
        if rc == 0 {
            return Ok((device, path));
        }
        last = std::io::Error::last_os_error();
        if last.raw_os_error() != Some(libc::EBUSY) {
            break;
        }
    }
    Err(SandboxError::Io {
        context: "cannot attach the disk image to a loop device".into(),
        source: last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_structs_match_the_kernel_abi() {
        assert_eq!(std::mem::size_of::<LoopInfo64>(), 232);
        assert_eq!(std::mem::size_of::<LoopConfig>(), 304);
    }

    #[test]
    fn mount_paths_are_escaped_like_mountinfo() {
        assert_eq!(escape_mount_path(b"/a b\\c"), b"/a\\040b\\134c".to_vec());
        assert_eq!(escape_mount_path(b"/plain"), b"/plain".to_vec());
    }

    #[test]
    fn images_leave_room_for_ext4_itself() {
        assert!(image_size(1 << 30) > (1 << 30) + (1 << 26));
        assert!(image_size(64 << 20) >= 64 << 20);
    }

    /// Unmounts on drop, so a failing assertion leaves no mount (or loop device) behind.
    struct Mounted<'a>(&'a Path);

    impl Drop for Mounted<'_> {
        fn drop(&mut self) {
            if is_mounted(self.0) {
                let _ = unmount(self.0);
            }
        }
    }

    /// Root only: a real image, mounted, filled to the brim, refused past its size.
    #[test]
    fn a_full_image_refuses_writes_and_the_host_keeps_its_space() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 || probe().is_err() {
            eprintln!("skipped: needs root, loop devices and mke2fs");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let seed = dir.path().join("seed");
        std::fs::create_dir(&seed).unwrap();
        std::fs::write(seed.join("hello.txt"), "hi").unwrap();
        let image = dir.path().join("ws.img");
        create_image(&image, 16 << 20, &seed, 200_001, 200_001).unwrap();
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        // Mounting with a larger limit grows the image and its filesystem (offline, first).
        let _guard = Mounted(&mnt);
        mount_image(&image, &mnt, 16 << 20).unwrap();
        let small = rustix::fs::statvfs(&mnt).unwrap();
        unmount(&mnt).unwrap();
        mount_image(&image, &mnt, 32 << 20).unwrap();
        let grown = rustix::fs::statvfs(&mnt).unwrap();
        assert!(
            grown.f_blocks * grown.f_frsize >= small.f_blocks * small.f_frsize + (14 << 20),
            "grown from {} to {} bytes",
            small.f_blocks * small.f_frsize,
            grown.f_blocks * grown.f_frsize
        );
        assert!(is_mounted(&mnt));
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&mnt).unwrap().uid(), 200_001);
        assert_eq!(
            std::fs::read_to_string(mnt.join("hello.txt")).unwrap(),
            "hi"
        );
        let mut big = std::fs::File::create(mnt.join("big")).unwrap();
        let chunk = vec![7u8; 1 << 20];
        let mut written = 0u64;
        let err = loop {
            use std::io::Write;
            match big.write_all(&chunk).and_then(|()| big.sync_data()) {
                Ok(()) => written += chunk.len() as u64,
                Err(e) => break e,
            }
            assert!(written < 256 << 20, "the image never filled up");
            assert!(
                written <= image_size(32 << 20),
                "more than the image went in"
            );
        };
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        drop(big);
        assert!(
            attached(&image),
            "sysfs names the image behind its loop device"
        );
        unmount(&mnt).unwrap();
        assert!(!is_mounted(&mnt));
        wait_until_detached(&image).unwrap();
        let on_host = std::fs::metadata(&image).unwrap().blocks() * 512;
        assert!(
            on_host <= image_size(32 << 20),
            "{on_host} bytes on the host"
        );
    }
}
