//! How much storage the workspace's files take, for the storage limit of API writes and
//! for `stats`.

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::Files;

/// How long a disk usage measurement is trusted.
const USAGE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

impl Files {
    /// The storage limit, if any.
    pub(crate) fn disk_limit(&self) -> Option<u64> {
        self.disk_limit
    }

    /// Bytes used: exact and current on a filesystem of its own (one cheap `statvfs`), else
    /// from a walk of the tree at most `USAGE_TTL` old.
    pub(crate) fn usage(&self) -> u64 {
        if self.own_filesystem
            && let Ok(v) = rustix::fs::fstatvfs(&self.root)
        {
            return v.f_blocks.saturating_sub(v.f_bfree) * v.f_frsize;
        }
        let mut cached = self.usage.lock().unwrap();
        match *cached {
            Some((at, used)) if at.elapsed() < USAGE_TTL => used,
            _ => {
                let used = self.disk_usage(1_000_000);
                *cached = Some((std::time::Instant::now(), used));
                used
            }
        }
    }

    /// Bytes used by the workspace's files (allocated blocks), walking at most `max_entries`.
    pub(crate) fn disk_usage(&self, max_entries: usize) -> u64 {
        let mut total = 0u64;
        let mut seen = 0usize;
        let Ok(root) = rustix::fs::openat(
            &self.root,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            return 0;
        };
        let mut stack = vec![root];
        while let Some(dir_fd) = stack.pop() {
            let Ok(dir) = rustix::fs::Dir::read_from(&dir_fd) else {
                continue;
            };
            for entry in dir.flatten() {
                let name = entry.file_name();
                if name.to_bytes() == b"." || name.to_bytes() == b".." {
                    continue;
                }
                seen += 1;
                if seen > max_entries {
                    return total;
                }
                if let Ok(stat) = rustix::fs::statat(&dir_fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                    total += stat.st_blocks as u64 * 512;
                    if FileType::from_raw_mode(stat.st_mode as _) == FileType::Directory
                        && let Ok(child) = rustix::fs::openat(
                            &dir_fd,
                            name,
                            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                            Mode::empty(),
                        )
                    {
                        stack.push(child);
                    }
                }
            }
        }
        total
    }
}
