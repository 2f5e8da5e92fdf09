//! The files of a running workspace, read through its runner's file routes (the same confined
//! reads as `GET /api/workspaces/{id}/files/...`): what a template is published from.
//! Regular files only, with their execute bit; symlinks, sockets and devices are left out,
//! and so are directories with nothing in them.

use crate::error::ApiError;
use crate::link::{RunnerLink, encode_path};
use crate::templates::archive::{self, MAX_BYTES, MAX_FILES};
use axum::body::Body;
use cove_backend::SeedFile;
use cove_protocol::{DirListing, EntryKind, ErrorCode};
use http_body_util::BodyExt as _;

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
        let listing: DirListing = serde_json::from_slice(&get(link, id, &folder).await?)
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
                    let contents = get(link, id, &path).await?;
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

/// `GET /files/{path}` on the runner: a file's bytes or a folder's listing.
async fn get(link: &RunnerLink, id: &str, path: &str) -> Result<bytes::Bytes, ApiError> {
    let request = hyper::Request::get(format!("/files/{}", encode_path(path)))
        .body(Body::empty())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let answer = link.request(id, request).await?;
    let status = answer.status();
    let body = answer
        .into_body()
        .collect()
        .await
        .map_err(|e| ApiError::internal("reading from the workspace", e))?
        .to_bytes();
    if !status.is_success() {
        let why = String::from_utf8_lossy(&body);
        return Err(ApiError::new(
            ErrorCode::Internal,
            format!("cannot read {path:?} of the workspace ({status}): {why}"),
        ));
    }
    Ok(body)
}
