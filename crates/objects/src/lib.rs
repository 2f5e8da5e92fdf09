//! Where blobs live: the object store that snapshots of workspaces go to (and templates
//! next), through the `object_store` crate: a directory in the data dir on one machine, or
//! any S3-compatible store (the `s3` feature).
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
use std::path::PathBuf;
use std::sync::Arc;

#[cfg(feature = "s3")]
mod s3;

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

/// Where the object store is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A directory (made if missing).
    Local(PathBuf),
    S3(S3Place),
}

/// A bucket of an S3-compatible store. What is `None` comes from the usual `AWS_*`
/// environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
/// `AWS_ENDPOINT`...).
#[derive(Clone, PartialEq, Eq)]
pub struct S3Place {
    pub bucket: String,
    /// A folder of the bucket that everything goes under (`cove/` of `s3://b/cove`).
    pub prefix: Option<String>,
    /// Another S3 than AWS's, e.g. `http://127.0.0.1:9000` (plain HTTP is allowed only when
    /// asked for this way).
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// `bucket.endpoint/key` instead of `endpoint/bucket/key` (path style, the default, is
    /// what MinIO, Garage, Ceph and moto expect).
    pub virtual_hosted: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

impl std::fmt::Debug for S3Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        write!(f, "S3Place({self})")
    }
}

impl std::fmt::Display for S3Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}", self.bucket)?;
        if let Some(prefix) = &self.prefix {
            write!(f, "/{prefix}")?;
        }
        if let Some(endpoint) = &self.endpoint {
            write!(f, " at {endpoint}")?;
        }
        Ok(())
    }
}

impl Place {
    /// An `--object-store` value: `s3://BUCKET[/PREFIX]`, `file:///PATH` or a path. The
    /// rest of an S3 place (endpoint, region, credentials) is filled in by the caller.
    pub fn parse(value: &str) -> Result<Place, ObjectsError> {
        let bad = |why: &str| ObjectsError::Setup(value.to_string(), why.to_string());
        if let Some(rest) = value.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let prefix = prefix.trim_matches('/');
            if bucket.is_empty() {
                return Err(bad(
                    "it names no bucket (s3://BUCKET or s3://BUCKET/PREFIX)",
                ));
            }
            return Ok(Place::S3(S3Place {
                bucket: bucket.to_string(),
                prefix: (!prefix.is_empty()).then(|| prefix.to_string()),
                endpoint: None,
                region: None,
                virtual_hosted: false,
                access_key_id: None,
                secret_access_key: None,
            }));
        }
        let path = value.strip_prefix("file://").unwrap_or(value);
        if value.contains("://") && !value.starts_with("file://") {
            return Err(bad(
                "cove takes s3://BUCKET[/PREFIX], file:///PATH or a path",
            ));
        }
        if !path.starts_with('/') {
            return Err(bad("a directory must be an absolute path"));
        }
        Ok(Place::Local(PathBuf::from(path)))
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Local(dir) => write!(f, "{}", dir.display()),
            Place::S3(s3) => write!(f, "{s3}"),
        }
    }
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

    /// The store at `place`. An S3 store is only described here: [`Objects::check`] is
    /// what finds out whether it answers.
    pub fn open(place: &Place) -> Result<Objects, ObjectsError> {
        match place {
            Place::Local(dir) => Objects::local(dir),
            #[cfg(feature = "s3")]
            Place::S3(s3) => Ok(Objects {
                store: s3::open(s3)?,
                place: s3.to_string(),
            }),
            #[cfg(not(feature = "s3"))]
            Place::S3(s3) => Err(ObjectsError::Setup(
                s3.to_string(),
                "this cove was built without S3 support (cargo feature `s3`)".into(),
            )),
        }
    }

    /// Whether the store answers and lets us in: one listing, so a wrong endpoint, bucket or
    /// credential stops a start with its reason instead of failing the first hibernation.
    pub async fn check(&self) -> Result<(), ObjectsError> {
        let mut listing = self.store.list(Some(&Key::from("snapshots")));
        match listing.next().await {
            Some(Err(e)) => Err(self.error(e)),
            _ => Ok(()),
        }
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
