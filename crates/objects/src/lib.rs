//! Where blobs live: the object store that snapshots of workspaces go to (and templates
//! next), through the `object_store` crate: a directory in the data dir on one machine.
//!
//! Owns: putting a stream of bytes under a key in parts (never whole in memory), with its
//! size and SHA-256; reading one back as a stream; small JSON-sized objects; deleting.
//! Must not know: what the blobs are (workspaces, snapshots, manifests), users, HTTP.
//!
//! A put that fails leaves nothing under its key: parts are uploaded as a multipart upload
//! that is completed only after the last chunk, and aborted otherwise (the directory store
//! writes a hidden file and renames it into place).

use bytes::Bytes;
use futures_util::StreamExt as _;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload, WriteMultipart};
use sha2::Digest as _;
use std::sync::Arc;

/// Why an object operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ObjectsError {
    #[error("the object store ({place}): {source}")]
    Store {
        place: String,
        #[source]
        source: object_store::Error,
    },
    #[error("cannot use {0} as an object store: {1}")]
    Setup(String, String),
    /// The producer of a stream gave up (its message says why).
    #[error("{0}")]
    Source(String),
}

/// What a put stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub size: u64,
    /// SHA-256 of the bytes, lowercase hex.
    pub sha256: String,
}

/// The object store, and where it is (for logs).
#[derive(Debug, Clone)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    place: String,
}

/// Bytes a multipart put sends per part.
const PART_BYTES: usize = 8 * 1024 * 1024;

/// The size and SHA-256 of bytes as they pass: how a put, a read-back and a reader of an
/// object elsewhere arrive at the same [`Stored`] to compare.
#[derive(Debug, Clone, Default)]
pub struct Digest {
    hash: sha2::Sha256,
    size: u64,
}

impl Digest {
    pub fn update(&mut self, bytes: &[u8]) {
        self.hash.update(bytes);
        self.size += bytes.len() as u64;
    }

    /// What the bytes so far amount to.
    pub fn stored(&self) -> Stored {
        Stored {
            size: self.size,
            sha256: self
                .hash
                .clone()
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        }
    }
}

impl Objects {
    /// A store in a local directory (made if missing).
    pub fn local(dir: &std::path::Path) -> Result<Objects, ObjectsError> {
        let place = dir.display().to_string();
        std::fs::create_dir_all(dir)
            .map_err(|e| ObjectsError::Setup(place.clone(), e.to_string()))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| ObjectsError::Setup(place.clone(), e.to_string()))?;
        Ok(Objects {
            store: Arc::new(store),
            place,
        })
    }

    /// Where the store is, for people.
    pub fn describe(&self) -> &str {
        &self.place
    }

    fn error(&self, source: object_store::Error) -> ObjectsError {
        ObjectsError::Store {
            place: self.place.clone(),
            source,
        }
    }

    /// Stores the chunks from `chunks` under `key`, in parts, as they come, until the channel
    /// closes. An `Err` chunk (the producer failed) or a failed part aborts the upload:
    /// nothing is left under `key`. The receiver is dropped on return, so a producer blocked
    /// on a full channel learns at once that nobody reads any more.
    pub async fn put_stream(
        &self,
        key: &str,
        mut chunks: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
    ) -> Result<Stored, ObjectsError> {
        let upload = self
            .store
            .put_multipart(&Key::from(key))
            .await
            .map_err(|e| self.error(e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut digest = Digest::default();
        while let Some(chunk) = chunks.recv().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(why) => {
                    let _ = writer.abort().await;
                    return Err(ObjectsError::Source(why));
                }
            };
            if let Err(e) = writer.wait_for_capacity(4).await {
                let _ = writer.abort().await;
                return Err(self.error(e));
            }
            digest.update(&chunk);
            writer.put(chunk);
        }
        writer.finish().await.map_err(|e| self.error(e))?;
        Ok(digest.stored())
    }

    /// Reads `key` as a stream of chunks, with its size.
    pub async fn get_stream(
        &self,
        key: &str,
    ) -> Result<
        (
            u64,
            futures_util::stream::BoxStream<'static, Result<Bytes, ObjectsError>>,
        ),
        ObjectsError,
    > {
        let found = self
            .store
            .get(&Key::from(key))
            .await
            .map_err(|e| self.error(e))?;
        let size = found.meta.size;
        let place = self.place.clone();
        let stream = found
            .into_stream()
            .map(move |chunk| {
                chunk.map_err(|source| ObjectsError::Store {
                    place: place.clone(),
                    source,
                })
            })
            .boxed();
        Ok((size, stream))
    }

    /// Reads `key` back whole and hashes it: what is really stored.
    pub async fn verify(&self, key: &str) -> Result<Stored, ObjectsError> {
        let (_, mut stream) = self.get_stream(key).await?;
        let mut digest = Digest::default();
        while let Some(chunk) = stream.next().await {
            digest.update(&chunk?);
        }
        Ok(digest.stored())
    }

    /// Stores a small object whole (a manifest).
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), ObjectsError> {
        self.store
            .put(&Key::from(key), PutPayload::from_bytes(bytes))
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// A small object, or `None` when there is none under `key`.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, ObjectsError> {
        match self.store.get(&Key::from(key)).await {
            Ok(found) => Ok(Some(found.bytes().await.map_err(|e| self.error(e))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Every key under `prefix` (a folder: `snapshots/`), in no particular order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, ObjectsError> {
        let mut keys = Vec::new();
        let mut listing = self.store.list(Some(&Key::from(prefix)));
        while let Some(meta) = listing.next().await {
            keys.push(meta.map_err(|e| self.error(e))?.location.to_string());
        }
        Ok(keys)
    }

    /// Removes `key`; a missing one is fine.
    pub async fn delete(&self, key: &str) -> Result<(), ObjectsError> {
        match self.store.delete(&Key::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stream_is_stored_in_parts_and_a_failed_one_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let objects = Objects::local(dir.path()).unwrap();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let producer = tokio::spawn(async move {
            for i in 0..20u8 {
                tx.send(Ok(Bytes::from(vec![i; 1024 * 1024])))
                    .await
                    .unwrap();
            }
        });
        let stored = objects.put_stream("a/b.bin", rx).await.unwrap();
        producer.await.unwrap();
        assert_eq!(stored.size, 20 * 1024 * 1024);
        assert_eq!(objects.verify("a/b.bin").await.unwrap(), stored);

        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(Ok(Bytes::from_static(b"half"))).await.unwrap();
        tx.send(Err("the disk went away".into())).await.unwrap();
        let failed = objects.put_stream("a/c.bin", rx).await;
        assert!(matches!(failed, Err(ObjectsError::Source(ref why)) if why.contains("disk")));
        assert_eq!(
            objects.get("a/c.bin").await.unwrap(),
            None,
            "nothing is left"
        );

        objects
            .put("m.json", Bytes::from_static(b"{}"))
            .await
            .unwrap();
        assert_eq!(objects.get("m.json").await.unwrap().unwrap(), "{}");
        objects.delete("m.json").await.unwrap();
        objects.delete("m.json").await.unwrap();
        assert_eq!(objects.get("m.json").await.unwrap(), None);
    }
}
