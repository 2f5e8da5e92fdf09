//! Hibernation. A stopped workspace's storage, archived by its backend, is compressed with
//! zstd and streamed to the object store in parts (never staged whole on disk), read back
//! to check its SHA-256, and recorded: in the database, which is the authority, and as a
//! manifest beside it. Only then is the local copy removed and the workspace `hibernated`.
//! A snapshot cut short anywhere before that is deleted and replaces nothing.
//!
//! A start of a hibernated workspace streams the archive back through the same hash, and
//! the backend puts the files in place only after the last byte checked out; the state's
//! reason shows the progress (bytes and percent) to every client that watches it.

use bytes::Bytes;
use cove_backend::ArchiveSource;
use cove_protocol::rest::WorkspaceState;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use super::Manager;
use crate::db::WorkspaceRow;
use crate::error::ApiError;

/// A workspace's snapshot as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Snapshot {
    /// Where it is in the object store.
    pub(crate) key: String,
    /// Bytes stored (compressed) and their SHA-256.
    pub(crate) size: u64,
    pub(crate) sha256: String,
    /// Bytes the backend archived (a disk image's whole size, or the files').
    pub(crate) files_bytes: u64,
    pub(crate) created_at: String,
}

/// Bytes per chunk between the stages of a snapshot or a restore.
const CHUNK: usize = 1024 * 1024;
/// zstd's level: fast, and most of the gain (files are often already compressed).
const LEVEL: i32 = 3;

/// `12.3 MB`, or `4.5 kB` below a tenth of a megabyte (so a small project does not read as
/// `0.0 MB`).
fn megabytes(bytes: u64) -> String {
    if bytes < 100_000 {
        format!("{:.1} kB", bytes as f64 / 1e3)
    } else {
        format!("{:.1} MB", bytes as f64 / 1e6)
    }
}

fn manifest_key(id: &str) -> String {
    format!("snapshots/{id}/manifest.json")
}

/// A blocking writer that hands its bytes to another thread in chunks.
struct ChunkWriter {
    buffer: Vec<u8>,
    to: std::sync::mpsc::SyncSender<Vec<u8>>,
}

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        self.to.send(chunk).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the snapshot stopped")
        })
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

impl Drop for ChunkWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

/// Compresses what the archive stage writes and hands it to the upload, on a blocking
/// thread; the compressed stream is finished explicitly (its end is part of the hash).
fn compress(
    raw: std::sync::mpsc::Receiver<Vec<u8>>,
    out: tokio::sync::mpsc::Sender<Result<Bytes, String>>,
) -> Result<(), String> {
    struct Out(tokio::sync::mpsc::Sender<Result<Bytes, String>>);
    impl Write for Out {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .blocking_send(Ok(Bytes::copy_from_slice(bytes)))
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the upload stopped")
                })?;
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffered = std::io::BufWriter::with_capacity(CHUNK, Out(out.clone()));
    let mut encoder =
        zstd::stream::write::Encoder::new(buffered, LEVEL).map_err(|e| e.to_string())?;
    let run = (|| {
        for chunk in raw {
            encoder.write_all(&chunk)?;
        }
        encoder.finish()?.flush()
    })();
    if let Err(e) = &run {
        let _ = out.blocking_send(Err(format!("compressing the snapshot: {e}")));
    }
    run.map_err(|e| e.to_string())
}

/// A blocking reader over chunks that arrive from the object store, hashing what it reads.
struct HashingReader {
    from: std::sync::mpsc::Receiver<Result<Bytes, String>>,
    current: Bytes,
    digest: Arc<Mutex<cove_objects::Digest>>,
}

impl Read for HashingReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.from.recv() {
                Ok(Ok(chunk)) => {
                    self.digest.lock().unwrap().update(&chunk);
                    self.current = chunk;
                }
                Ok(Err(why)) => return Err(std::io::Error::other(why)),
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len());
        out[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

impl Manager {
    /// Archives a stopped workspace into the object store and checks what was stored. On
    /// any failure the partial object is deleted.
    async fn snapshot(&self, row: &WorkspaceRow) -> Result<Snapshot, ApiError> {
        let key = format!(
            "snapshots/{}/{}.tar.zst",
            row.id,
            uuid::Uuid::new_v4().simple()
        );
        let started = std::time::Instant::now();
        let (raw_tx, raw_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let (out_tx, out_rx) = tokio::sync::mpsc::channel::<Result<Bytes, String>>(8);
        let sink = ChunkWriter {
            buffer: Vec::with_capacity(CHUNK),
            to: raw_tx,
        };
        let compressing = tokio::task::spawn_blocking(move || compress(raw_rx, out_tx));
        let (exported, uploaded, compressed) = tokio::join!(
            self.backend.export(&row.id, Box::new(sink)),
            self.objects.put_stream(&key, out_rx),
            compressing
        );
        let outcome = match (exported, uploaded, compressed) {
            (Ok(files_bytes), Ok(stored), Ok(Ok(()))) => match self.objects.verify(&key).await {
                Ok(read_back) if read_back == stored => Ok(Snapshot {
                    key: key.clone(),
                    size: stored.size,
                    sha256: stored.sha256,
                    files_bytes,
                    created_at: crate::now_rfc3339(),
                }),
                Ok(read_back) => Err(format!(
                    "the object store holds other bytes than were sent ({} of {})",
                    read_back.size, stored.size
                )),
                Err(e) => Err(format!("cannot read the snapshot back: {e}")),
            },
            (Err(e), _, _) => Err(format!("cannot archive the files: {e}")),
            (_, Err(e), _) => Err(format!("cannot store the snapshot: {e}")),
            (_, _, Ok(Err(e))) => Err(e),
            (_, _, Err(_)) => Err("the compression did not finish".to_string()),
        };
        match outcome {
            Ok(snapshot) => {
                tracing::info!(
                    workspace = %row.id,
                    files = %megabytes(snapshot.files_bytes),
                    stored = %megabytes(snapshot.size),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "snapshot stored and checked"
                );
                Ok(snapshot)
            }
            Err(why) => {
                let _ = self.objects.delete(&key).await;
                tracing::error!(workspace = %row.id, "snapshot failed: {why}");
                Err(ApiError::unavailable(format!(
                    "the snapshot failed ({why}); the workspace keeps its files"
                )))
            }
        }
    }

    /// Stops the workspace if needed, snapshots it, and removes its local files.
    pub(crate) async fn hibernate(&self, row: &WorkspaceRow, by: &str) -> Result<(), ApiError> {
        let lock = self.lock(&row.id);
        let _turn = lock.lock().await;
        let current = self.reread(row).await?;
        match current.state {
            WorkspaceState::Hibernated => {
                return Err(ApiError::conflict(format!(
                    "the workspace {:?} is already hibernated",
                    row.name
                )));
            }
            WorkspaceState::Starting | WorkspaceState::Stopping => {
                return Err(ApiError::conflict(format!(
                    "the workspace {:?} is {}; try again when it has finished",
                    row.name, current.state
                )));
            }
            WorkspaceState::Running => {
                self.halt(&current, &format!("stopped by {by} to hibernate"), Some(by))
                    .await?;
            }
            WorkspaceState::Stopped | WorkspaceState::Error => {}
        }
        let snapshot = self.snapshot(&current).await?;
        let recorded = serde_json::to_string(&snapshot).expect("a snapshot serializes");
        self.db.set_snapshot(&row.id, Some(&recorded)).await?;
        // Beside the archive, for whoever must find it without the database.
        if let Err(e) = self
            .objects
            .put(&manifest_key(&row.id), Bytes::from(recorded))
            .await
        {
            tracing::warn!(workspace = %row.id, error = %e, "cannot write the snapshot's manifest");
        }
        // From here the object store's copy is the workspace's files: it is hibernated
        // before the local copy goes, so a removal cut short leaves leftovers that a restore
        // clears, never a half-deleted workspace that could be started or snapshotted again.
        let reason = format!(
            "hibernated by {by}: {} archived, kept as {} in the object store",
            megabytes(snapshot.files_bytes),
            megabytes(snapshot.size)
        );
        self.transition(&row.id, WorkspaceState::Hibernated, &reason, Some(by))
            .await?;
        if let Err(e) = self.backend.evict(&row.id).await {
            tracing::error!(workspace = %row.id, error = %e, "hibernated, but its local copy could not be removed (a restore will clear it)");
        }
        if let Some(previous) = current
            .snapshot
            .as_deref()
            .and_then(|s| serde_json::from_str::<Snapshot>(s).ok())
            && previous.key != snapshot.key
        {
            let _ = self.objects.delete(&previous.key).await;
        }
        Ok(())
    }

    /// Whether a start must first bring the files back: it is hibernated, or a restore of it
    /// was abandoned (its request went away; the caller holds the lock, so none runs now).
    pub(super) fn needs_restore(row: &WorkspaceRow) -> bool {
        row.state == WorkspaceState::Hibernated
            || (row.state == WorkspaceState::Starting
                && row.snapshot.is_some()
                && row.state_reason.starts_with("restoring"))
    }

    /// Brings a hibernated workspace's files back (the caller holds its lock); it is
    /// `starting` meanwhile, with the progress as its reason. On failure it stays
    /// hibernated, its snapshot untouched.
    pub(super) async fn restore(&self, row: &WorkspaceRow) -> Result<(), ApiError> {
        let snapshot: Snapshot = row
            .snapshot
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .ok_or_else(|| {
                ApiError::internal(
                    "a hibernated workspace has no snapshot recorded",
                    row.id.clone(),
                )
            })?;
        self.transition(
            &row.id,
            WorkspaceState::Starting,
            &format!("restoring its files: 0% of {}", megabytes(snapshot.size)),
            None,
        )
        .await?;
        // Leftovers of a removal or a restore cut short: the snapshot is the truth.
        if let Err(e) = self.backend.evict(&row.id).await {
            let reason = format!("cannot clear the old local files ({e}); its snapshot is kept");
            self.transition(&row.id, WorkspaceState::Hibernated, &reason, None)
                .await?;
            return Err(ApiError::unavailable(reason));
        }
        match self.fetch(row, &snapshot).await {
            Ok(()) => {
                tracing::info!(workspace = %row.id, size = %megabytes(snapshot.size), "restored from its snapshot");
                Ok(())
            }
            Err(why) => {
                tracing::error!(workspace = %row.id, "restore failed: {why}");
                let reason = format!("the restore failed ({why}); its snapshot is kept");
                self.transition(&row.id, WorkspaceState::Hibernated, &reason, None)
                    .await?;
                Err(ApiError::unavailable(reason))
            }
        }
    }

    async fn fetch(&self, row: &WorkspaceRow, snapshot: &Snapshot) -> Result<(), String> {
        let (size, mut stream) = self
            .objects
            .get_stream(&snapshot.key)
            .await
            .map_err(|e| e.to_string())?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Bytes, String>>(8);
        let digest = Arc::new(Mutex::new(cove_objects::Digest::default()));
        let reader = HashingReader {
            from: rx,
            current: Bytes::new(),
            digest: digest.clone(),
        };
        let expected = cove_objects::Stored {
            size: snapshot.size,
            sha256: snapshot.sha256.clone(),
        };
        let check = Box::new(move || {
            let read = digest.lock().unwrap().stored();
            if read != expected {
                return Err(format!(
                    "it does not match its record ({} bytes, sha256 {}; recorded {} bytes, {})",
                    read.size, read.sha256, expected.size, expected.sha256
                ));
            }
            Ok(())
        });
        let decoder = zstd::stream::read::Decoder::new(reader).map_err(|e| e.to_string())?;
        let source: ArchiveSource = Box::new(decoder);
        let feed = async {
            let (mut done, mut shown) = (0u64, 0u64);
            let mut last = std::time::Instant::now();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| e.to_string());
                let failed = chunk.is_err();
                if let Ok(chunk) = &chunk {
                    done += chunk.len() as u64;
                }
                // A full channel waits here (off the async threads), so memory stays bounded.
                let tx = tx.clone();
                if tokio::task::spawn_blocking(move || tx.send(chunk))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .is_none()
                    || failed
                {
                    break;
                }
                let percent = done * 100 / size.max(1);
                if percent >= shown + 10 || last.elapsed() >= std::time::Duration::from_secs(1) {
                    (shown, last) = (percent, std::time::Instant::now());
                    let reason = format!(
                        "restoring its files: {percent}% ({} of {})",
                        megabytes(done),
                        megabytes(size)
                    );
                    let _ = self
                        .transition(&row.id, WorkspaceState::Starting, &reason, None)
                        .await;
                }
            }
            drop(tx);
        };
        let (imported, ()) = tokio::join!(self.backend.import(&row.id, source, check), feed);
        imported.map_err(|e| e.to_string())
    }

    /// Removes what the object store holds for nobody: snapshots of workspaces that are gone,
    /// and snapshots no workspace records (a hibernation cut short between its upload and
    /// its record). Run at start-up, before anything hibernates. The keys it removed.
    pub(super) async fn sweep_snapshots(&self) -> Result<Vec<String>, ApiError> {
        let keys = self
            .objects
            .list("snapshots")
            .await
            .map_err(|e| ApiError::internal("cannot list the object store", e))?;
        let mut removed = Vec::new();
        for key in keys {
            let Some(id) = key
                .strip_prefix("snapshots/")
                .and_then(|k| k.split('/').next())
            else {
                continue;
            };
            let keep = match self.db.get(id).await? {
                None => false,
                Some(row) if key.ends_with("/manifest.json") => row.snapshot.is_some(),
                Some(row) => row
                    .snapshot
                    .as_deref()
                    .and_then(|s| serde_json::from_str::<Snapshot>(s).ok())
                    .is_some_and(|snapshot| snapshot.key == key),
            };
            if !keep {
                tracing::info!(key, "removed an object that no workspace records");
                let _ = self.objects.delete(&key).await;
                removed.push(key);
            }
        }
        Ok(removed)
    }

    /// Removes a workspace's snapshot from the object store (it is being deleted).
    pub(super) async fn forget_snapshot(&self, row: &WorkspaceRow) {
        if let Some(snapshot) = row
            .snapshot
            .as_deref()
            .and_then(|s| serde_json::from_str::<Snapshot>(s).ok())
        {
            let _ = self.objects.delete(&snapshot.key).await;
        }
        let _ = self.objects.delete(&manifest_key(&row.id)).await;
    }
}
