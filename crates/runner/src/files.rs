//! Confined file access: every path a client names is resolved by the kernel beneath the
//! workspace root (`openat2` with `RESOLVE_BENEATH`), so `..`, absolute symlinks, symlink
//! chains and races between check and use cannot reach anything outside it.
//!
//! Mutations work on a directory descriptor resolved beneath the root plus one final name
//! that contains no slash, so the last step cannot escape either. Writes are atomic and
//! durable: temp file in the same directory, fsync, rename, fsync of the directory.

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, ResolveFlags};
use rustix::io::Errno;
use sha1::{Digest, Sha1};
use std::path::Path;
use std::sync::Mutex;

use cove_protocol::{DirEntry, EntryKind};

use crate::error::{Error, PathProblem};

mod usage;

/// A path's problem as the kernel reports it; the message names the client's path.
fn errno_error(errno: Errno, path: &str) -> Error {
    let problem = match errno {
        Errno::NOENT => PathProblem::Missing,
        Errno::XDEV | Errno::LOOP => PathProblem::Outside,
        Errno::ACCESS | Errno::PERM | Errno::ROFS => PathProblem::Denied,
        Errno::NOTDIR => PathProblem::ThroughFile,
        Errno::ISDIR => PathProblem::IsDirectory,
        Errno::NAMETOOLONG => PathProblem::TooLong,
        Errno::EXIST => PathProblem::Exists,
        Errno::NOTEMPTY => PathProblem::NotEmpty,
        Errno::NOSPC | Errno::DQUOT => PathProblem::NoSpace,
        Errno::INVAL => PathProblem::Invalid,
        Errno::BUSY => PathProblem::Busy,
        _ => PathProblem::Failed,
    };
    if problem == PathProblem::Failed {
        tracing::warn!(path = %crate::clip(path), %errno, "file operation failed");
    }
    path_error(path, problem)
}

fn path_error(path: &str, problem: PathProblem) -> Error {
    Error::Path {
        path: path.to_string(),
        problem,
    }
}

type Result<T> = std::result::Result<T, Error>;

/// Name prefix of the temp files of atomic writes; the watcher hides them.
pub(crate) const TEMP_PREFIX: &str = ".cove-tmp-";

/// The files of one workspace.
#[derive(Debug)]
pub(crate) struct Files {
    root: OwnedFd,
    max_file_bytes: u64,
    /// Serializes API writes so that the `baseVersion` check and the rename are one step.
    write_lock: Mutex<()>,
    /// Storage limit for API writes, and the last measured usage (walking a tree is not free,
    /// so a measurement is reused for a few seconds and adjusted by our own writes).
    disk_limit: Option<u64>,
    usage: Mutex<Option<(std::time::Instant, u64)>>,
    /// The root is a filesystem of its own (the sandbox's disk image): its usage is read
    /// from `statvfs` at once instead of walking the tree, and counts what programs wrote.
    own_filesystem: bool,
}

/// A file's bytes and version.
#[derive(Debug)]
pub(crate) struct FileData {
    pub(crate) bytes: Vec<u8>,
    pub(crate) version: String,
}

/// The result of a write.
#[derive(Debug)]
pub(crate) struct Written {
    pub(crate) version: String,
    pub(crate) size: u64,
    pub(crate) created: bool,
}

/// A path from a client, checked for what the kernel cannot check for us.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WsPath {
    /// Relative to the root; empty for the root itself.
    rel: String,
}

impl WsPath {
    fn parse(raw: &str) -> Result<WsPath> {
        if raw.contains('\0') {
            return Err(Error::BadRequest(
                "a path must not contain NUL bytes".into(),
            ));
        }
        if raw.len() > 4096 {
            return Err(Error::BadRequest("the path is too long".into()));
        }
        let rel = raw.trim_start_matches('/').trim_end_matches('/');
        // Collapse `//` and drop `.` components so that the final name is a real name.
        let rel = rel
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect::<Vec<_>>()
            .join("/");
        Ok(WsPath { rel })
    }

    fn is_root(&self) -> bool {
        self.rel.is_empty()
    }

    /// The directory part and the final name, for operations on a directory entry.
    fn split(&self, raw: &str) -> Result<(&str, &str)> {
        if self.is_root() {
            return Err(path_error(raw, PathProblem::Root));
        }
        let (dir, name) = self.rel.rsplit_once('/').unwrap_or(("", &self.rel));
        if name == ".." {
            return Err(path_error(raw, PathProblem::EndsInDotDot));
        }
        Ok((dir, name))
    }

    fn as_arg(&self) -> &str {
        if self.rel.is_empty() { "." } else { &self.rel }
    }
}

const RESOLVE: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);

/// The version of a file's bytes: it changes whenever they change.
pub(crate) fn version_of(bytes: &[u8]) -> String {
    let digest = Sha1::digest(bytes);
    digest[..10].iter().map(|b| format!("{b:02x}")).collect()
}

fn kind_of(file_type: FileType) -> EntryKind {
    match file_type {
        FileType::RegularFile => EntryKind::File,
        FileType::Directory => EntryKind::Dir,
        FileType::Symlink => EntryKind::Symlink,
        _ => EntryKind::Other,
    }
}

impl Files {
    /// Opens the workspace root, with the storage limit that API writes may not cross. Every
    /// later access is relative to this descriptor.
    pub(crate) fn open(
        root: &Path,
        max_file_bytes: u64,
        disk_limit: Option<u64>,
    ) -> std::io::Result<Files> {
        let root = rustix::fs::open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let own_filesystem = rustix::fs::openat(
            &root,
            "..",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .and_then(|parent| Ok((rustix::fs::fstat(&root)?, rustix::fs::fstat(&parent)?)))
        .is_ok_and(|(here, above)| here.st_dev != above.st_dev);
        Ok(Files {
            root,
            max_file_bytes,
            write_lock: Mutex::new(()),
            disk_limit,
            usage: Mutex::new(None),
            own_filesystem,
        })
    }

    /// The largest file a client may read or write through the API.
    pub(crate) fn max_file_bytes(&self) -> u64 {
        self.max_file_bytes
    }

    fn open_beneath(&self, path: &str, flags: OFlags, raw: &str) -> Result<OwnedFd> {
        rustix::fs::openat2(
            &self.root,
            path,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        )
        .map_err(|e| errno_error(e, raw))
    }

    fn open_dir(&self, rel: &str, raw: &str) -> Result<OwnedFd> {
        let rel = if rel.is_empty() { "." } else { rel };
        self.open_beneath(rel, OFlags::RDONLY | OFlags::DIRECTORY, raw)
    }

    /// Opens (creating as needed, like `mkdir -p`) the directory `rel` beneath the root.
    fn ensure_dir(&self, rel: &str, raw: &str) -> Result<OwnedFd> {
        let mut dir = self.open_dir("", raw)?;
        for component in rel.split('/').filter(|c| !c.is_empty()) {
            if component == ".." {
                // `a/../b` is legal for the kernel, but creating directories along it is not
                // worth the ambiguity.
                return Err(path_error(raw, PathProblem::DotDot));
            }
            match rustix::fs::mkdirat(&dir, component, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(errno_error(e, raw)),
            }
            // Resolving one name at a time beneath `dir` refuses a symlink planted in the path.
            dir = rustix::fs::openat2(
                &dir,
                component,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                RESOLVE | ResolveFlags::NO_SYMLINKS,
            )
            .map_err(|e| errno_error(e, raw))?;
        }
        Ok(dir)
    }

    fn read_fd(fd: &OwnedFd, limit: u64, raw: &str) -> Result<Vec<u8>> {
        let stat = rustix::fs::fstat(fd).map_err(|e| errno_error(e, raw))?;
        if FileType::from_raw_mode(stat.st_mode as _) != FileType::RegularFile {
            return Err(path_error(raw, PathProblem::NotRegularFile));
        }
        if stat.st_size as u64 > limit {
            return Err(too_large(raw, stat.st_size as u64, limit));
        }
        let mut bytes = Vec::with_capacity(stat.st_size as usize);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match rustix::io::read(fd, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    bytes.extend_from_slice(&buf[..n]);
                    if bytes.len() as u64 > limit {
                        return Err(too_large(raw, bytes.len() as u64, limit));
                    }
                }
                Err(Errno::INTR) => {}
                Err(e) => return Err(errno_error(e, raw)),
            }
        }
        Ok(bytes)
    }

    /// Reads a regular file.
    pub(crate) fn read(&self, raw: &str) -> Result<FileData> {
        let path = WsPath::parse(raw)?;
        // O_NONBLOCK: opening a FIFO planted in the workspace must not hang the runner.
        let fd = self.open_beneath(
            path.as_arg(),
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY,
            raw,
        )?;
        let bytes = Self::read_fd(&fd, self.max_file_bytes, raw)?;
        let version = version_of(&bytes);
        Ok(FileData { bytes, version })
    }

    /// Opens a regular file to stream it whole, whatever its size (downloads): the file and
    /// its length.
    pub(crate) fn open_for_download(&self, raw: &str) -> Result<(std::fs::File, u64)> {
        let path = WsPath::parse(raw)?;
        let fd = self.open_beneath(
            path.as_arg(),
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY,
            raw,
        )?;
        let stat = rustix::fs::fstat(&fd).map_err(|e| errno_error(e, raw))?;
        if FileType::from_raw_mode(stat.st_mode as _) != FileType::RegularFile {
            return Err(path_error(raw, PathProblem::NotRegularFile));
        }
        Ok((std::fs::File::from(fd), stat.st_size as u64))
    }

    /// Whether the path is a directory (symlinks beneath the root are followed).
    pub(crate) fn is_dir(&self, raw: &str) -> Result<bool> {
        let path = WsPath::parse(raw)?;
        let fd = self.open_beneath(path.as_arg(), OFlags::PATH, raw)?;
        let stat = rustix::fs::fstat(&fd).map_err(|e| errno_error(e, raw))?;
        Ok(FileType::from_raw_mode(stat.st_mode as _) == FileType::Directory)
    }

    /// Writes a file atomically and durably; creates missing parent directories. With
    /// `base_version`, refuses with `conflict` unless the file still has that version.
    pub(crate) fn write(
        &self,
        raw: &str,
        bytes: &[u8],
        base_version: Option<&str>,
    ) -> Result<Written> {
        let path = WsPath::parse(raw)?;
        let (dir_rel, name) = path.split(raw)?;
        if bytes.len() as u64 > self.max_file_bytes {
            return Err(too_large(raw, bytes.len() as u64, self.max_file_bytes));
        }
        if let Some(limit) = self.disk_limit {
            let used = self.usage();
            if used.saturating_add(bytes.len() as u64) > limit {
                return Err(Error::StorageFull {
                    path: raw.to_string(),
                    limit,
                    used,
                });
            }
        }
        let dir = self.ensure_dir(dir_rel, raw)?;
        let _guard = self.write_lock.lock().unwrap();
        let existing = match rustix::fs::openat2(
            &dir,
            name,
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::empty(),
            RESOLVE,
        ) {
            Ok(fd) => Some(fd),
            Err(Errno::NOENT) => None,
            Err(e) => return Err(errno_error(e, raw)),
        };
        let mut mode = Mode::from_raw_mode(0o644);
        if let Some(fd) = &existing {
            let stat = rustix::fs::fstat(fd).map_err(|e| errno_error(e, raw))?;
            if FileType::from_raw_mode(stat.st_mode as _) == FileType::Directory {
                return Err(path_error(raw, PathProblem::IsDirectory));
            }
            mode = Mode::from_raw_mode(stat.st_mode & 0o7777);
        }
        if let Some(base) = base_version {
            let current = match &existing {
                Some(fd) => Some(version_of(&Self::read_fd(fd, u64::MAX, raw)?)),
                None => None,
            };
            if current.as_deref() != Some(base) {
                return Err(Error::Stale {
                    path: raw.to_string(),
                    base: base.to_string(),
                    deleted: current.is_none(),
                });
            }
        }
        let created = existing.is_none();
        drop(existing);
        let temp = format!("{TEMP_PREFIX}{}", uniq());
        let fd = rustix::fs::openat(
            &dir,
            &temp,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            mode,
        )
        .map_err(|e| errno_error(e, raw))?;
        let result = (|| {
            let mut rest = bytes;
            while !rest.is_empty() {
                match rustix::io::write(&fd, rest) {
                    Ok(n) => rest = &rest[n..],
                    Err(Errno::INTR) => {}
                    Err(e) => return Err(e),
                }
            }
            // The umask may have narrowed the mode given to openat.
            rustix::fs::fchmod(&fd, mode)?;
            rustix::fs::fsync(&fd)?;
            rustix::fs::renameat(&dir, &temp, &dir, name)?;
            rustix::fs::fsync(&dir)
        })();
        if let Err(e) = result {
            let _ = rustix::fs::unlinkat(&dir, &temp, AtFlags::empty());
            return Err(errno_error(e, raw));
        }
        if let Some((_, used)) = self.usage.lock().unwrap().as_mut() {
            *used += bytes.len() as u64;
        }
        Ok(Written {
            version: version_of(bytes),
            size: bytes.len() as u64,
            created,
        })
    }

    /// Lists a directory, directories first, then by name. Symlinks are reported, not followed.
    pub(crate) fn list(&self, raw: &str) -> Result<Vec<DirEntry>> {
        let path = WsPath::parse(raw)?;
        let fd = self.open_dir(&path.rel, raw)?;
        let dir = rustix::fs::Dir::read_from(&fd).map_err(|e| errno_error(e, raw))?;
        let mut entries = Vec::new();
        for entry in dir {
            let entry = entry.map_err(|e| errno_error(e, raw))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "." || name == ".." || name.starts_with(TEMP_PREFIX) {
                continue;
            }
            let Ok(stat) = rustix::fs::statat(&fd, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW)
            else {
                continue; // Gone between readdir and stat.
            };
            let kind = kind_of(FileType::from_raw_mode(stat.st_mode as _));
            entries.push(DirEntry {
                name,
                executable: kind == EntryKind::File && stat.st_mode & 0o111 != 0,
                kind,
                size: stat.st_size as u64,
                mtime: stat.st_mtime * 1000 + stat.st_mtime_nsec as i64 / 1_000_000,
            });
        }
        entries.sort_by(|a, b| {
            (a.kind != EntryKind::Dir, &a.name).cmp(&(b.kind != EntryKind::Dir, &b.name))
        });
        Ok(entries)
    }

    /// Creates a directory and any missing parents; an existing directory is fine.
    pub(crate) fn make_dir(&self, raw: &str) -> Result<()> {
        let path = WsPath::parse(raw)?;
        path.split(raw)?;
        self.ensure_dir(&path.rel, raw).map(drop)
    }

    /// Deletes a file, a symlink (not its target), or a directory (`recursive` when not empty).
    pub(crate) fn delete(&self, raw: &str, recursive: bool) -> Result<()> {
        let path = WsPath::parse(raw)?;
        let (dir_rel, name) = path.split(raw)?;
        let dir = self.open_dir(dir_rel, raw)?;
        let stat = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| errno_error(e, raw))?;
        if FileType::from_raw_mode(stat.st_mode as _) == FileType::Directory {
            if recursive {
                let name = std::ffi::CString::new(name)
                    .map_err(|_| Error::BadRequest("a path must not contain NUL bytes".into()))?;
                remove_tree_contents(&dir, &name, raw, 0)?;
            }
            rustix::fs::unlinkat(&dir, name, AtFlags::REMOVEDIR).map_err(|e| match e {
                Errno::NOTEMPTY => path_error(raw, PathProblem::NotEmptyNeedsRecursive),
                e => errno_error(e, raw),
            })
        } else {
            rustix::fs::unlinkat(&dir, name, AtFlags::empty()).map_err(|e| errno_error(e, raw))
        }
    }

    /// Renames `from` to `to` (creating `to`'s parents); refuses to replace unless `overwrite`.
    pub(crate) fn rename(&self, from_raw: &str, to_raw: &str, overwrite: bool) -> Result<()> {
        let from = WsPath::parse(from_raw)?;
        let to = WsPath::parse(to_raw)?;
        let (from_dir, from_name) = from.split(from_raw)?;
        let (to_dir, to_name) = to.split(to_raw)?;
        let source_dir = self.open_dir(from_dir, from_raw)?;
        // Fail on a missing source before creating the target's parents.
        rustix::fs::statat(&source_dir, from_name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| errno_error(e, from_raw))?;
        let target_dir = self.ensure_dir(to_dir, to_raw)?;
        let flags = if overwrite {
            RenameFlags::empty()
        } else {
            RenameFlags::NOREPLACE
        };
        rustix::fs::renameat_with(&source_dir, from_name, &target_dir, to_name, flags).map_err(
            |e| match e {
                Errno::EXIST | Errno::NOTEMPTY => Error::Taken {
                    path: to_raw.to_string(),
                },
                Errno::INVAL => Error::BadRequest(format!("cannot move {from_raw} into itself")),
                e => errno_error(e, from_raw),
            },
        )?;
        rustix::fs::fsync(&target_dir).map_err(|e| errno_error(e, to_raw))
    }
}

/// Empties the directory `name` inside `parent`, never following symlinks. Names are kept as
/// the bytes the kernel gave: a name that is not UTF-8 is as deletable as any other.
fn remove_tree_contents(
    parent: &impl AsFd,
    name: &std::ffi::CStr,
    raw: &str,
    depth: usize,
) -> Result<()> {
    if depth > 256 {
        return Err(path_error(raw, PathProblem::TooDeep));
    }
    let dir = rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| errno_error(e, raw))?;
    let names: Vec<(std::ffi::CString, bool)> = rustix::fs::Dir::read_from(&dir)
        .map_err(|e| errno_error(e, raw))?
        .flatten()
        .filter(|e| e.file_name().to_bytes() != b"." && e.file_name().to_bytes() != b"..")
        .map(|e| {
            let name = e.file_name().to_owned();
            let is_dir = rustix::fs::statat(&dir, e.file_name(), AtFlags::SYMLINK_NOFOLLOW)
                .map(|s| FileType::from_raw_mode(s.st_mode as _) == FileType::Directory)
                .unwrap_or(false);
            (name, is_dir)
        })
        .collect();
    for (child, is_dir) in names {
        if is_dir {
            remove_tree_contents(&dir, &child, raw, depth + 1)?;
            rustix::fs::unlinkat(&dir, child.as_c_str(), AtFlags::REMOVEDIR)
        } else {
            rustix::fs::unlinkat(&dir, child.as_c_str(), AtFlags::empty())
        }
        .or_else(|e| if e == Errno::NOENT { Ok(()) } else { Err(e) })
        .map_err(|e| errno_error(e, raw))?;
    }
    Ok(())
}

fn too_large(raw: &str, size: u64, limit: u64) -> Error {
    Error::TooLarge {
        path: raw.to_string(),
        size,
        limit,
    }
}

/// A name unlikely to collide, for temp files.
fn uniq() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}-{}-{nanos:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests;
