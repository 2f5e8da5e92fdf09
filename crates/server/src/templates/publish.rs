//! The files of a running workspace, read through its runner's file routes (the same confined
//! reads as `GET /api/workspaces/{id}/files/...`): what a template is published from.
//! Regular files only, with their execute bit; symlinks, sockets and devices are left out,
//! and so are directories with nothing in them. So is what belongs to the person who used
//! the workspace rather than to the project: shell and REPL histories, caches, and the
//! usual places of keys and credentials (a template is seen by every user).

/// Paths (from the workspace's root) never put in a template: a name, or a folder with `/`.
pub(crate) const PERSONAL: &[&str] = &[
    ".bash_history",
    ".zsh_history",
    ".sh_history",
    ".python_history",
    ".node_repl_history",
    ".lesshst",
    ".viminfo",
    ".wget-hsts",
    ".psql_history",
    ".sqlite_history",
    ".mysql_history",
    ".netrc",
    ".git-credentials",
    ".pypirc",
    ".cache/",
    ".ssh/",
    ".gnupg/",
    ".aws/",
    ".docker/",
    ".kube/",
    ".config/gh/",
    ".local/share/",
];

/// Whether `path` is personal (see [`PERSONAL`]).
pub(crate) fn personal(path: &str) -> bool {
    PERSONAL.iter().any(|p| match p.strip_suffix('/') {
        Some(folder) => path == folder || path.starts_with(p),
        None => path == *p,
    })
}

use crate::error::ApiError;
use crate::link::RunnerLink;
use crate::templates::archive::{self, MAX_BYTES, MAX_FILES};
use cove_backend::SeedFile;
use cove_protocol::{DirListing, EntryKind, ErrorCode};

/// Every regular file under the workspace's root. Refuses, before reading them all, a tree
/// past a template's bounds.
pub(crate) async fn workspace_files(
    link: &RunnerLink,
    id: &str,
) -> Result<Vec<SeedFile>, ApiError> {
    let mut files = Vec::new();
    let mut total = 0u64;
    let mut folders = vec![String::new()];
    while let Some(folder) = folders.pop() {
        // A listing of 20,000 entries is a few MiB of JSON.
        let listing = match link.read_file(id, &folder, 16 * 1024 * 1024).await {
            Ok(bytes) => serde_json::from_slice::<DirListing>(&bytes)
                .map_err(|e| ApiError::internal("the runner's listing", e))?,
            // Removed while it was read (a program of the workspace is running).
            Err(e) if e.reply.code == ErrorCode::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in listing.entries {
            let path = if folder.is_empty() {
                entry.name.clone()
            } else {
                format!("{folder}/{}", entry.name)
            };
            if !archive::valid_path(&path) || personal(&path) {
                continue;
            }
            match entry.kind {
                EntryKind::Dir => folders.push(path),
                EntryKind::File => {
                    total += entry.size;
                    if total > MAX_BYTES || files.len() >= MAX_FILES {
                        return Err(too_big());
                    }
                    let room = (MAX_BYTES + entry.size).saturating_sub(total) as usize;
                    let contents = match link.read_file(id, &path, room).await {
                        Ok(contents) => contents,
                        // Gone since the listing, or a name that is not UTF-8 (the listing
                        // shows it with replacement characters): left out.
                        Err(e) if e.reply.code == ErrorCode::NotFound => continue,
                        Err(e) if e.reply.code == ErrorCode::TooLarge => return Err(too_big()),
                        Err(e) => return Err(e),
                    };
                    files.push(SeedFile {
                        path,
                        contents: contents.to_vec(),
                        executable: entry.executable,
                    });
                }
                EntryKind::Symlink | EntryKind::Other => {}
            }
        }
    }
    // Changed while it was read (files grew): the bound holds for what was read.
    if files.iter().map(|f| f.contents.len() as u64).sum::<u64>() > MAX_BYTES {
        return Err(too_big());
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn too_big() -> ApiError {
    archive::ArchiveError::TooBig.into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn personal_files_and_folders_are_known() {
        for path in [
            ".bash_history",
            ".ssh",
            ".ssh/id_ed25519",
            ".config/gh/hosts.yml",
            ".cache/pip/x",
        ] {
            assert!(super::personal(path), "{path}");
        }
        for path in [
            "src/.bash_history",
            ".sshrc",
            ".config/app.toml",
            "README.md",
            ".gitignore",
        ] {
            assert!(!super::personal(path), "{path}");
        }
    }
}
