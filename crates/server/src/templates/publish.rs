//! The files of a running workspace, read through its runner's file routes (the same confined
//! reads as `GET /api/workspaces/{id}/files/...`): what a template is published from.
//! Regular files only, with their execute bit; symlinks, sockets and devices are left out,
//! and so are directories with nothing in them.

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
        let listing: DirListing = serde_json::from_slice(&link.read_file(id, &folder).await?)
            .map_err(|e| ApiError::internal("the runner's listing", e))?;
        for entry in listing.entries {
            let path = if folder.is_empty() {
                entry.name.clone()
            } else {
                format!("{folder}/{}", entry.name)
            };
            if !archive::valid_path(&path) {
                continue;
            }
            match entry.kind {
                EntryKind::Dir => folders.push(path),
                EntryKind::File => {
                    total += entry.size;
                    if total > MAX_BYTES || files.len() >= MAX_FILES {
                        return Err(too_big());
                    }
                    let contents = link.read_file(id, &path).await?;
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
    // Changed while it was read (a file grew): the bound is checked on what was read.
    if files.iter().map(|f| f.contents.len() as u64).sum::<u64>() > MAX_BYTES {
        return Err(too_big());
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn too_big() -> ApiError {
    ApiError::new(
        ErrorCode::TooLarge,
        archive::ArchiveError::TooBig.to_string(),
    )
}
