//! A stopped workspace's storage as one tar archive, and back (for snapshots that the server
//! keeps in the object store). An image-backed workspace is archived as its disk image
//! (`workspace.img`: everything inside, ownership and all, exactly; its unused space reads
//! as zeros, which compress to nearly nothing); a directory-backed one as its files
//! (`files/...`, with modes, times, symlinks as symlinks and empty directories).
//!
//! Unpacking goes to `<id>.restore` beside the storage; only after the archive's last byte
//! is read and the caller's check passes does it take the storage's place (renames), so a
//! bad or cut archive replaces nothing.

use std::io::Write;
use std::path::{Path, PathBuf};

use cove_backend::{ArchiveCheck, ArchiveSink, ArchiveSource, BackendError};

use crate::{LocalBackend, io};

const IMAGE_ENTRY: &str = "workspace.img";
const FILES_ENTRY: &str = "files";

impl LocalBackend {
    fn refuse_running(&self, id: &str) -> Result<(), BackendError> {
        match self.live_pid(id) {
            Some(_) => Err(BackendError::Running(id.to_string())),
            None => Ok(()),
        }
    }

    fn staging(&self, id: &str) -> PathBuf {
        self.config
            .data_dir
            .join("workspaces")
            .join(format!("{id}.restore"))
    }

    pub(crate) async fn export_storage(
        &self,
        id: &str,
        sink: ArchiveSink,
    ) -> Result<u64, BackendError> {
        self.refuse_running(id)?;
        // A sandbox that was killed may have left the image mounted.
        self.unmount_storage(id).await;
        let (root, image, id) = (self.root(id), self.image(id), id.to_string());
        tokio::task::spawn_blocking(move || export(&id, &root, &image, sink))
            .await
            .map_err(|_| BackendError::Interrupted("archiving the workspace's files"))?
    }

    pub(crate) async fn import_storage(
        &self,
        id: &str,
        source: ArchiveSource,
        verify: ArchiveCheck,
    ) -> Result<(), BackendError> {
        let (root, image, staging) = (self.root(id), self.image(id), self.staging(id));
        if image.exists() || root.read_dir().is_ok_and(|mut d| d.next().is_some()) {
            return Err(BackendError::AlreadyExists(id.to_string()));
        }
        let id = id.to_string();
        tokio::task::spawn_blocking(move || {
            let _ = std::fs::remove_dir_all(&staging);
            let done = import(&id, &root, &image, &staging, source, verify);
            let _ = std::fs::remove_dir_all(&staging);
            done
        })
        .await
        .map_err(|_| BackendError::Interrupted("unpacking the workspace's files"))?
    }

    pub(crate) async fn evict_storage(&self, id: &str) -> Result<(), BackendError> {
        self.refuse_running(id)?;
        self.unmount_storage(id).await;
        let (root, image) = (self.root(id), self.image(id));
        tokio::task::spawn_blocking(move || {
            if root.exists() {
                std::fs::remove_dir_all(&root)
                    .map_err(io("cannot remove the workspace's files"))?;
            }
            match std::fs::remove_file(&image) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(io("cannot remove the workspace's disk")(e))
                }
                _ => Ok(()),
            }
        })
        .await
        .map_err(|_| BackendError::Interrupted("removing the workspace's files"))?
    }
}

fn export(id: &str, root: &Path, image: &Path, sink: ArchiveSink) -> Result<u64, BackendError> {
    let mut tar = tar::Builder::new(sink);
    tar.follow_symlinks(false);
    let failed = io("cannot write the archive");
    let size = if image.exists() {
        let size = std::fs::metadata(image)
            .map_err(io("cannot read the workspace's disk"))?
            .len();
        tar.append_path_with_name(image, IMAGE_ENTRY)
            .map_err(io("cannot archive the workspace's disk"))?;
        size
    } else if root.is_dir() {
        append_tree(&mut tar, root, Path::new(FILES_ENTRY))
            .map_err(io("cannot archive the workspace's files"))?;
        tree_size(root)
    } else {
        return Err(BackendError::NoStorage(id.to_string()));
    };
    let mut sink = tar.into_inner().map_err(failed)?;
    sink.flush().map_err(io("cannot write the archive"))?;
    Ok(size)
}

/// Adds `path` as `name`, and what is under it: directories, regular files and symlinks (as
/// links). Sockets, pipes and devices a workspace left are not files to keep: they are
/// passed by (tar would refuse the whole archive for one).
fn append_tree(
    tar: &mut tar::Builder<ArchiveSink>,
    path: &Path,
    name: &Path,
) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    let kind = meta.file_type();
    if kind.is_dir() {
        tar.append_path_with_name(path, name)?;
        let mut entries: Vec<_> = std::fs::read_dir(path)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            append_tree(tar, &entry.path(), &name.join(entry.file_name()))?;
        }
    } else if kind.is_file() || kind.is_symlink() {
        tar.append_path_with_name(path, name)?;
    }
    Ok(())
}

/// Bytes of the regular files under `path` (symlinks are not followed).
fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_dir() {
        std::fs::read_dir(path)
            .map(|entries| entries.flatten().map(|e| tree_size(&e.path())).sum())
            .unwrap_or(0)
    } else if meta.is_file() {
        meta.len()
    } else {
        0
    }
}

fn import(
    id: &str,
    root: &Path,
    image: &Path,
    staging: &Path,
    mut source: ArchiveSource,
    verify: ArchiveCheck,
) -> Result<(), BackendError> {
    let bad = |reason: String| BackendError::BadArchive {
        id: id.to_string(),
        reason,
    };
    std::fs::create_dir_all(staging).map_err(io("cannot make a place to unpack into"))?;
    {
        let mut archive = tar::Archive::new(&mut source);
        archive.set_preserve_permissions(true);
        archive.set_preserve_mtime(true);
        archive.set_preserve_ownerships(true);
        archive.set_overwrite(false);
        archive
            .unpack(staging)
            .map_err(|e| bad(format!("cannot unpack it: {e}")))?;
    }
    // The check covers every byte, the end-of-archive padding too.
    std::io::copy(&mut source, &mut std::io::sink()).map_err(|e| bad(e.to_string()))?;
    verify().map_err(bad)?;
    let (unpacked_image, unpacked_files) = (staging.join(IMAGE_ENTRY), staging.join(FILES_ENTRY));
    if unpacked_image.is_file() {
        std::fs::rename(&unpacked_image, image).map_err(io("cannot put the disk in place"))?;
        if !root.exists() {
            std::fs::create_dir(root).map_err(io("cannot make the workspace's directory"))?;
        }
    } else if unpacked_files.is_dir() {
        // An empty directory left where the files go is replaced.
        let _ = std::fs::remove_dir(root);
        std::fs::rename(&unpacked_files, root).map_err(io("cannot put the files in place"))?;
    } else {
        return Err(bad("it holds neither a disk nor files".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    /// A writer whose bytes the test reads afterwards.
    #[derive(Clone, Default)]
    struct SharedBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for SharedBuffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What a tree holds, as text: path, kind, mode, link target or content.
    fn listing(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                let meta = std::fs::symlink_metadata(&path).unwrap();
                let name = path.strip_prefix(root).unwrap().display().to_string();
                let mode = meta.permissions().mode() & 0o7777;
                let what = if meta.file_type().is_symlink() {
                    format!("-> {}", std::fs::read_link(&path).unwrap().display())
                } else if meta.is_dir() {
                    stack.push(path.clone());
                    "dir".to_string()
                } else {
                    format!(
                        "{} bytes {:?}",
                        meta.len(),
                        std::fs::read(&path)
                            .unwrap()
                            .iter()
                            .map(|b| *b as u64)
                            .sum::<u64>()
                    )
                };
                out.push(format!("{name} {mode:o} {what}"));
            }
        }
        out.sort();
        out
    }

    #[test]
    fn files_come_back_exactly_and_a_failed_check_replaces_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("w");
        std::fs::create_dir_all(root.join("empty dir")).unwrap();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(root.join("src/main.py"), "print('hi')\n").unwrap();
        std::fs::write(root.join("naïve café.txt"), "ünïcödé").unwrap();
        std::fs::write(root.join("run.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o750))
            .unwrap();
        std::os::unix::fs::symlink("src/main.py", root.join("link")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("outside")).unwrap();
        let before = listing(&root);
        // A socket the workspace left is passed by, not a reason to fail.
        let _socket = std::os::unix::net::UnixListener::bind(root.join("app.sock")).unwrap();

        let buffer = SharedBuffer::default();
        export(
            "w",
            &root,
            &dir.path().join("none.img"),
            Box::new(buffer.clone()),
        )
        .unwrap();
        let archive = buffer.0.lock().unwrap().clone();
        std::fs::remove_dir_all(&root).unwrap();

        // A check that fails: nothing is put in place, nothing is left behind.
        let staging = dir.path().join("w.restore");
        let refused = import(
            "w",
            &root,
            &dir.path().join("none.img"),
            &staging,
            Box::new(std::io::Cursor::new(archive.clone())),
            Box::new(|| Err("the hash does not match".into())),
        );
        assert!(matches!(refused, Err(BackendError::BadArchive { .. })));
        assert!(!root.exists());

        let _ = std::fs::remove_dir_all(&staging);
        import(
            "w",
            &root,
            &dir.path().join("none.img"),
            &staging,
            Box::new(std::io::Cursor::new(archive)),
            Box::new(|| Ok(())),
        )
        .unwrap();
        assert_eq!(listing(&root), before);
    }
}
