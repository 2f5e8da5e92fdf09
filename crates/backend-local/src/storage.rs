//! A workspace's storage on this machine: its directory or ext4 image, made from its
//! template at provision, given to its uid, and mounted while an unconfined runner uses it.

use std::path::Path;

use cove_backend::{BackendError, SeedFile, WorkspaceLimits};

use crate::{LocalBackend, io};

impl LocalBackend {
    /// Makes a workspace's storage from its template's files: an image of its storage limit
    /// when new workspaces get images, else a directory. Refuses seed paths that could leave
    /// the workspace and a workspace that already has storage.
    pub(crate) async fn provision_storage(
        &self,
        id: &str,
        files: &[SeedFile],
        limits: &WorkspaceLimits,
    ) -> Result<(), BackendError> {
        let root = self.root(id);
        let image = self.image(id);
        if root.exists() || image.exists() {
            return Err(BackendError::AlreadyExists(id.to_string()));
        }
        for file in files {
            if file
                .path
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
                || file.path.starts_with('/')
            {
                return Err(BackendError::BadSeedPath(file.path.clone()));
            }
        }
        let files = files.to_vec();
        let limit = self.disk_limit(limits);
        let result = if self.new_workspaces_get_images() && limit > 0 {
            let uid = workspace_uid(id);
            tokio::task::spawn_blocking(move || provision_image(&root, &image, limit, uid, &files))
                .await
        } else {
            tokio::task::spawn_blocking(move || write_seed(&root, &files)).await
        };
        result.map_err(|_| BackendError::Interrupted("making the workspace's files"))?
    }

    /// New workspaces get an image (when they have a storage limit) if sandboxed with images.
    fn new_workspaces_get_images(&self) -> bool {
        self.config.sandbox.as_ref().is_some_and(|s| s.disk_images)
    }

    /// Mounts the workspace's image at its directory unless it has none or it is mounted
    /// (unsandboxed runners only; it stays mounted until the workspace stops).
    pub(crate) async fn mount_storage(&self, id: &str) -> Result<(), BackendError> {
        let (image, root) = (self.image(id), self.root(id));
        if !image.exists() {
            return Ok(());
        }
        tokio::task::spawn_blocking(move || {
            if !cove_sandbox::disk::is_mounted(&root) {
                cove_sandbox::disk::mount_image(&image, &root, 0)?;
                // mke2fs always makes one; it is noise in a project's file tree.
                let _ = std::fs::remove_dir(root.join("lost+found"));
            }
            Ok(())
        })
        .await
        .map_err(|_| BackendError::Interrupted("mounting the workspace's disk"))?
        .map_err(|e: cove_sandbox::SandboxError| {
            BackendError::Storage(format!("cannot mount the workspace's disk: {e}"))
        })
    }

    /// Unmounts the workspace's image after its runner has gone, if whoever mounted it could
    /// not (an unsandboxed runner, or a sandbox that was SIGKILLed). Off the async threads:
    /// an unmount flushes the filesystem.
    pub(crate) async fn unmount_storage(&self, id: &str) {
        let (root, image, id) = (self.root(id), self.image(id), id.to_string());
        let _ = tokio::task::spawn_blocking(move || {
            if image.exists() && cove_sandbox::disk::is_mounted(&root) {
                match cove_sandbox::disk::unmount(&root) {
                    Ok(()) => tracing::debug!(workspace = %id, "disk unmounted"),
                    Err(e) => tracing::warn!(workspace = %id, "{e}"),
                }
            }
        })
        .await;
    }
}

/// The host uid (and gid) a sandboxed workspace runs as: stable per workspace, never a
/// system or login uid (200000-299999).
pub fn workspace_uid(id: &str) -> u32 {
    // FNV-1a: stable across builds, unlike std's hasher.
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    200_000 + (hash % 100_000) as u32
}

/// Gives a tree to the workspace's uid (once: a tree already owned by it is left alone).
pub(crate) async fn own(path: &Path, uid: u32, gid: u32) -> Result<(), BackendError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(io(format!("cannot stat {}", path.display())))?;
    if meta.uid() == uid && meta.gid() == gid {
        return Ok(());
    }
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || chown_tree(&path, uid, gid))
        .await
        .map_err(|_| BackendError::Interrupted("giving the files to the workspace's user"))?
        .map_err(io("cannot give the workspace's files to its user"))
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    if std::fs::symlink_metadata(path)?.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Builds a workspace's disk image from its template: the files are staged beside it, given
/// to the workspace's uid, copied into a new image, and the staging directory removed.
fn provision_image(
    root: &Path,
    image: &Path,
    limit: u64,
    uid: u32,
    files: &[SeedFile],
) -> Result<(), BackendError> {
    let staging = image.with_extension("new");
    let _ = std::fs::remove_dir_all(&staging);
    let made = write_seed(&staging, files)
        .and_then(|()| {
            chown_tree(&staging, uid, uid)
                .map_err(io("cannot give the template's files to the workspace"))
        })
        .and_then(|()| {
            cove_sandbox::disk::create_image(image, limit, &staging, uid, uid).map_err(|e| {
                BackendError::Storage(format!("cannot create the workspace's disk: {e}"))
            })
        })
        .and_then(|()| {
            std::fs::create_dir(root).map_err(io(format!("cannot create {}", root.display())))
        });
    let _ = std::fs::remove_dir_all(&staging);
    if made.is_err() {
        let _ = std::fs::remove_file(image);
    }
    made
}

fn write_seed(root: &Path, files: &[SeedFile]) -> Result<(), BackendError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(root).map_err(io(format!("cannot create {}", root.display())))?;
    for file in files {
        let path = root.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io("cannot create a template directory"))?;
        }
        std::fs::write(&path, &file.contents).map_err(io("cannot write a template file"))?;
        if file.executable {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .map_err(io("cannot mark a template file executable"))?;
        }
    }
    Ok(())
}
