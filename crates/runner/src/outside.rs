//! Files outside the workspace that a language server points at (a library's source, the
//! standard library's stubs), for the IDE to show read-only. Read with `head`, run as a
//! program of the workspace: exactly what its programs (and its terminal) may read, never
//! through the runner's own view of the machine.

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use cove_protocol::ErrorCode;
use cove_protocol::ide::{OutsideFile, OutsideFileQuery};
use std::sync::Arc;
use std::time::Duration;

use crate::Workspace;
use crate::captured::run_captured;
use crate::http::refuse;

/// The largest file shown (library sources are far smaller; a larger one is not for reading).
pub(crate) const MAX_OUTSIDE_FILE: usize = 4 * 1024 * 1024;
/// A read that takes longer (a FIFO with no writer, a hung mount) is stopped.
const WAIT: Duration = Duration::from_secs(10);

/// `GET /lsp/file?path=/absolute/path`.
pub(crate) async fn outside_file(
    State(ws): State<Arc<Workspace>>,
    query: Result<Query<OutsideFileQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let path = match query {
        Ok(Query(q)) => q.path,
        Err(e) => return refuse(ErrorCode::BadRequest, e.body_text()),
    };
    let absolute = path.starts_with('/')
        && !path.contains('\0')
        && path.len() <= 4096
        && !path.split('/').any(|c| c == "..");
    if !absolute {
        return refuse(
            ErrorCode::BadRequest,
            format!("{path:?} is not an absolute path without .."),
        );
    }
    // One byte more than shown tells a file that is too large from one that just fits.
    let args = [
        format!("--bytes={}", MAX_OUTSIDE_FILE + 1),
        "--".to_string(),
        path.clone(),
    ];
    let ran = match run_captured(&ws, "head", &args, None, &[], WAIT, MAX_OUTSIDE_FILE + 1).await {
        Ok(ran) => ran,
        Err(e) => return refuse(ErrorCode::Unavailable, format!("cannot read {path}: {e}")),
    };
    if !ran.ok {
        let why = ran.stderr.lines().next().unwrap_or("head failed").trim();
        let code = if why.contains("No such file") {
            ErrorCode::NotFound
        } else {
            ErrorCode::BadRequest
        };
        return refuse(code, format!("cannot read {path}: {why}"));
    }
    if ran.stdout.len() > MAX_OUTSIDE_FILE {
        return refuse(
            ErrorCode::TooLarge,
            format!("{path} is larger than {} MiB", MAX_OUTSIDE_FILE >> 20),
        );
    }
    match String::from_utf8(ran.stdout) {
        Ok(content) if !content.contains('\0') => {
            Json(OutsideFile { path, content }).into_response()
        }
        _ => refuse(ErrorCode::BadRequest, format!("{path} is not text")),
    }
}
