//! File requests of the control socket: read, write, list, make, delete, rename.
//!
//! The work is `files.rs`'s, run off the async threads; here are only the wire's shapes
//! (encodings, the events that answer).

use base64::Engine as _;
use cove_protocol::*;
use std::sync::Arc;

use crate::Workspace;
use crate::error::Error;

pub(super) async fn read(ws: Arc<Workspace>, r: ReadFile) -> Result<Event, Error> {
    let path = r.path.clone();
    let data = blocking(move || ws.files.read(&r.path)).await?;
    let content = match r.encoding {
        Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(&data.bytes),
        Encoding::Utf8 => String::from_utf8(data.bytes).map_err(|_| {
            Error::BadRequest(format!(
                "{path} is not UTF-8 text; read it with encoding base64"
            ))
        })?,
    };
    Ok(Event::FileContent(FileContent {
        path,
        content,
        encoding: r.encoding,
        version: data.version,
    }))
}

pub(super) async fn write(ws: Arc<Workspace>, r: WriteFile) -> Result<Event, Error> {
    let bytes = match r.encoding {
        Encoding::Utf8 => r.content.into_bytes(),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD
            .decode(r.content.as_bytes())
            .map_err(|e| Error::BadRequest(format!("content is not valid base64: {e}")))?,
    };
    let path = r.path.clone();
    let written =
        blocking(move || ws.files.write(&r.path, &bytes, r.base_version.as_deref())).await?;
    Ok(Event::FileWritten(FileWritten {
        path,
        version: written.version,
        size: written.size,
    }))
}

pub(super) async fn list(ws: Arc<Workspace>, r: PathRef) -> Result<Event, Error> {
    let path = r.path.clone();
    let entries = blocking(move || ws.files.list(&r.path)).await?;
    Ok(Event::DirListing(DirListing { path, entries }))
}

pub(super) async fn make_dir(ws: Arc<Workspace>, r: PathRef) -> Result<Event, Error> {
    blocking(move || ws.files.make_dir(&r.path)).await?;
    Ok(Event::Ok(Empty {}))
}

pub(super) async fn delete(ws: Arc<Workspace>, r: DeletePath) -> Result<Event, Error> {
    blocking(move || ws.files.delete(&r.path, r.recursive)).await?;
    Ok(Event::Ok(Empty {}))
}

pub(super) async fn rename(ws: Arc<Workspace>, r: RenamePath) -> Result<Event, Error> {
    blocking(move || ws.files.rename(&r.from, &r.to, r.overwrite)).await?;
    Ok(Event::Ok(Empty {}))
}

/// Runs a file operation off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Error::Internal("the file operation failed"))?
}
