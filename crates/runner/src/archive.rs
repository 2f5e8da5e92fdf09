//! Download of a folder as one archive: the real `tar`, run as a program of the workspace (its
//! sandbox, its user, its CPU group), streamed as it packs, so a folder of any size leaves
//! without being held in memory. Symlinks are archived as links, never followed.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use cove_protocol::ErrorCode;
use futures_util::StreamExt as _;
use serde::Deserialize;
use std::sync::Arc;

use crate::Workspace;
use crate::http::{ApiError, refuse};
use crate::stopping::new_marker;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArchiveQuery {
    /// The folder, relative to the workspace root (empty: the whole workspace).
    #[serde(default)]
    path: String,
    /// `tar.gz` (the default) or `tar`.
    #[serde(default)]
    format: Option<String>,
}

/// `GET /archive?path=...&format=tar.gz`.
pub(crate) async fn archive(
    State(ws): State<Arc<Workspace>>,
    query: Result<Query<ArchiveQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let query = match query {
        Ok(Query(q)) => q,
        Err(e) => return refuse(ErrorCode::BadRequest, e.body_text()),
    };
    let gzip = match query.format.as_deref() {
        None | Some("tar.gz") | Some("tgz") => true,
        Some("tar") => false,
        Some(other) => {
            return refuse(
                ErrorCode::BadRequest,
                format!("format must be tar.gz or tar, not {other:?}"),
            );
        }
    };
    let parts: Vec<&str> = query
        .path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.contains(&"..") || query.path.contains('\0') {
        return refuse(
            ErrorCode::BadRequest,
            ".. is not allowed in an archive's path",
        );
    }
    let rel = parts.join("/");
    // Resolved beneath the root, symlinks included: a link out of the workspace is refused.
    match ws.files.is_dir(&rel) {
        Ok(true) => {}
        Ok(false) => return refuse(ErrorCode::BadRequest, format!("{rel} is not a folder")),
        Err(e) => return ApiError::from(e).into_response(),
    }
    let (parent, name) = match rel.rsplit_once('/') {
        Some((parent, name)) => (parent.to_string(), name.to_string()),
        None if rel.is_empty() => (String::new(), ".".to_string()),
        None => (String::new(), rel.clone()),
    };
    let download = if rel.is_empty() {
        "workspace".to_string()
    } else {
        name.clone()
    };
    let mut args = vec![
        if gzip { "-czf" } else { "-cf" }.to_string(),
        "-".into(),
        "--".into(),
        name,
    ];
    if !parent.is_empty() {
        args.splice(0..0, ["-C".to_string(), parent]);
    }
    let marker = new_marker();
    let spawned = ws
        .launch
        .command("tar", Some(&args), None, &[], "archive", &marker)
        .and_then(|mut c| {
            c.stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null());
            c.spawn().map_err(|source| crate::error::Error::Spawn {
                command: "tar".into(),
                source,
            })
        });
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            return refuse(
                ErrorCode::Unavailable,
                format!("cannot pack the folder: {e}"),
            );
        }
    };
    let stdout = child.stdout.take().expect("piped");
    // A client that goes drops the stream and its end of the pipe: tar then fails to write
    // and exits, and is reaped here. A tar that fails (an unreadable file) ends the body with
    // an error, so that the download is marked failed rather than silently short.
    let waited = ws
        .tasks
        .spawn(async move { child.wait().await.is_ok_and(|s| s.success()) });
    let verdict = futures_util::stream::once(async move {
        match waited.await {
            Ok(true) => None,
            _ => Some(Err(std::io::Error::other("tar could not pack every file"))),
        }
    })
    .filter_map(|item| async move { item });
    let stream = tokio_util::io::ReaderStream::with_capacity(stdout, 64 * 1024).chain(verdict);
    let ext = if gzip { "tar.gz" } else { "tar" };
    Response::builder()
        .header(
            "content-type",
            if gzip {
                "application/gzip"
            } else {
                "application/x-tar"
            },
        )
        .header(
            "content-disposition",
            format!(
                "attachment; filename=\"{}.{ext}\"",
                // Printable ASCII only: a folder may be named anything, a header may not.
                download
                    .chars()
                    .map(|c| match c {
                        '"' | '\\' => '_',
                        ' ' => ' ',
                        c if c.is_ascii_graphic() => c,
                        _ => '_',
                    })
                    .collect::<String>()
            ),
        )
        .header("cache-control", "no-store")
        .body(Body::from_stream(stream))
        .expect("a response builds")
}
