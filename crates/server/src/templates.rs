//! Templates: what a new workspace starts with. Each is a manifest (name, description, icon,
//! run command, preview port, init command) and an archive of files in the object store
//! (`templates/<name>/<uuid>.tar.zst`, with `templates/<name>/manifest.json` beside it); the
//! database says which archive is current. The built-in ones are published there when the
//! store has no template at all (the first start); an administrator publishes a workspace's
//! files as a new one.
//!
//! The catalog keeps every manifest in memory (workspace views read them on every list), and
//! the unpacked files of the templates used lately, so a create does not fetch its template.

use crate::db::{Db, TemplateRow};
use crate::error::ApiError;
use cove_backend::SeedFile;
use cove_objects::Objects;
use cove_protocol::ErrorCode;
use cove_protocol::rest::{PublishTemplate, Template};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

pub(crate) mod archive;
mod builtin;
pub(crate) mod publish;

/// The template a workspace gets when none is named (while it exists).
pub(crate) const DEFAULT: &str = "blank";
/// Who the built-in templates are published by.
const BUILTIN_PUBLISHER: &str = "cove";
/// The most unpacked templates kept in memory.
const CACHED: usize = 8;

/// What a template says about itself (stored as JSON in the database and the object store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Manifest {
    pub name: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_command: Option<String>,
}

/// Where a template's files are in the object store, and what they amount to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Archive {
    key: String,
    size: u64,
    sha256: String,
    files: u64,
    bytes: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    manifest: Manifest,
    archive: Archive,
    published_by: String,
    published_at: String,
}

impl Entry {
    fn view(&self) -> Template {
        let m = &self.manifest;
        Template {
            name: m.name.clone(),
            description: m.description.clone(),
            icon: m.icon.clone(),
            run_command: m.run_command.clone(),
            preview_port: m.preview_port,
            init_command: m.init_command.clone(),
            files: self.archive.files,
            bytes: self.archive.bytes,
            published_by: Some(self.published_by.clone()),
            published_at: Some(self.published_at.clone()),
        }
    }
}

/// Every template, and the files of the ones used lately.
#[derive(Debug)]
pub(crate) struct Catalog {
    db: Db,
    objects: Objects,
    entries: RwLock<BTreeMap<String, Entry>>,
    /// Unpacked files by archive key, most recently used last.
    unpacked: Mutex<Vec<(String, Arc<Vec<SeedFile>>)>>,
    publishing: tokio::sync::Mutex<()>,
    loading: tokio::sync::Mutex<()>,
}

/// Lowercase letters, digits and `-`, starting with a letter or digit, at most 40.
pub(crate) fn valid_name(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
}

impl Catalog {
    /// The catalog as the database has it; with no template at all, the built-in ones are
    /// published first.
    pub(crate) async fn load(db: Db, objects: Objects) -> Result<Catalog, ApiError> {
        let catalog = Catalog {
            db,
            objects,
            entries: RwLock::default(),
            unpacked: Mutex::default(),
            publishing: tokio::sync::Mutex::default(),
            loading: tokio::sync::Mutex::default(),
        };
        let rows = catalog.db.templates().await?;
        if rows.is_empty() {
            let manifests = builtin::BUILTIN.iter().map(|template| {
                let manifest = Manifest {
                    name: template.name.to_string(),
                    description: template.description.to_string(),
                    icon: Some(template.icon.to_string()),
                    run_command: template.run_command.map(str::to_string),
                    preview_port: template.preview_port,
                    init_command: None,
                };
                (manifest, template.files())
            });
            catalog.seed(manifests.collect()).await?;
            tracing::info!(
                count = builtin::BUILTIN.len(),
                objects = %catalog.objects.describe(),
                "published the built-in templates to the object store"
            );
        } else {
            let mut entries = catalog.entries.write().unwrap();
            for row in rows {
                match entry_of(&row) {
                    Ok(entry) => {
                        entries.insert(row.name.clone(), entry);
                    }
                    Err(e) => tracing::error!(template = %row.name, "unreadable template: {e}"),
                }
            }
        }
        Ok(catalog)
    }

    /// Every template, by name.
    pub(crate) fn list(&self) -> Vec<Template> {
        self.entries
            .read()
            .unwrap()
            .values()
            .map(Entry::view)
            .collect()
    }

    /// The manifest of template `name`.
    pub(crate) fn manifest(&self, name: &str) -> Option<Manifest> {
        let entries = self.entries.read().unwrap();
        entries.get(name).map(|e| e.manifest.clone())
    }

    /// The template a create without one gets: `blank`, else the first by name.
    pub(crate) fn default_name(&self) -> Option<String> {
        let entries = self.entries.read().unwrap();
        entries
            .get(DEFAULT)
            .or_else(|| entries.values().next())
            .map(|e| e.manifest.name.clone())
    }

    /// An unknown template, with the names there are.
    pub(crate) fn unknown(&self, name: &str) -> ApiError {
        let known: Vec<String> = self.entries.read().unwrap().keys().cloned().collect();
        ApiError::bad_request(format!(
            "unknown template {name:?}; known: {}",
            known.join(", ")
        ))
    }

    /// The files of template `name`, checked against what the database recorded. One load
    /// per archive at a time (concurrent creates wait for it and share it); a load that finds
    /// its archive replaced meanwhile by a publish takes the new one.
    pub(crate) async fn files(&self, name: &str) -> Result<Arc<Vec<SeedFile>>, ApiError> {
        let _turn = self.loading.lock().await;
        let mut last = None;
        for _ in 0..2 {
            let archive = self.archive_of(name)?;
            if let Some(files) = self.cached(&archive.key) {
                return Ok(files);
            }
            match self.fetch(&archive).await {
                Ok(files) => {
                    let files = Arc::new(files);
                    let mut unpacked = self.unpacked.lock().unwrap();
                    unpacked.push((archive.key, files.clone()));
                    if unpacked.len() > CACHED {
                        unpacked.remove(0);
                    }
                    return Ok(files);
                }
                Err(why) => {
                    tracing::error!(template = %name, key = %archive.key, "{why}");
                    last = Some(why);
                }
            }
        }
        tracing::debug!(template = %name, ?last, "giving up on the template's files");
        Err(ApiError::new(
            ErrorCode::Internal,
            format!("the files of template {name:?} cannot be read; see the server log"),
        ))
    }

    fn archive_of(&self, name: &str) -> Result<Archive, ApiError> {
        let found = {
            let entries = self.entries.read().unwrap();
            entries.get(name).map(|e| e.archive.clone())
        };
        found.ok_or_else(|| self.unknown(name))
    }

    /// Downloads an archive (no more than its recorded size), checks it and unpacks it.
    async fn fetch(&self, archive: &Archive) -> Result<Vec<SeedFile>, String> {
        use futures_util::StreamExt as _;
        let (size, mut stream) = match self.objects.get_stream(&archive.key).await {
            Ok(found) => found,
            Err(e) => return Err(e.to_string()),
        };
        if size != archive.size {
            return Err(format!(
                "its archive is {size} bytes, not the {} recorded",
                archive.size
            ));
        }
        let mut packed = Vec::with_capacity(size as usize);
        let mut digest = cove_objects::Digest::default();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            if packed.len() + chunk.len() > size as usize {
                return Err("its archive is longer than recorded".into());
            }
            digest.update(&chunk);
            packed.extend_from_slice(&chunk);
        }
        if digest.stored().sha256 != archive.sha256 {
            return Err("its archive is not the one recorded (SHA-256 differs)".into());
        }
        tokio::task::spawn_blocking(move || archive::unpack(&packed))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    fn cached(&self, key: &str) -> Option<Arc<Vec<SeedFile>>> {
        let mut unpacked = self.unpacked.lock().unwrap();
        let at = unpacked.iter().position(|(k, _)| k == key)?;
        let hit = unpacked.remove(at);
        let files = hit.1.clone();
        unpacked.push(hit);
        Some(files)
    }

    /// Checks what `POST /api/templates` asks for, before any file is read.
    pub(crate) fn manifest_of(request: &PublishTemplate) -> Result<Manifest, ApiError> {
        if !valid_name(&request.name) {
            return Err(ApiError::bad_request(
                "a template name is 1 to 40 lowercase letters, digits and '-', not starting with '-'",
            ));
        }
        let text = |field: &str, value: &str, max: usize| {
            if value.chars().count() > max || value.chars().any(char::is_control) {
                Err(ApiError::bad_request(format!(
                    "{field} is at most {max} characters, on one line"
                )))
            } else {
                Ok(())
            }
        };
        text("description", &request.description, 300)?;
        let optional = |value: &Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        for (field, value, max) in [
            ("icon", &request.icon, 8),
            ("runCommand", &request.run_command, 1000),
            ("initCommand", &request.init_command, 4000),
        ] {
            text(field, value.as_deref().unwrap_or(""), max)?;
        }
        if request.preview_port == Some(0) {
            return Err(ApiError::bad_request("previewPort must be 1 to 65535"));
        }
        Ok(Manifest {
            name: request.name.clone(),
            description: request.description.trim().to_string(),
            icon: optional(&request.icon),
            run_command: optional(&request.run_command),
            preview_port: request.preview_port,
            init_command: optional(&request.init_command),
        })
    }

    /// Publishes `files` as template `manifest.name` (replacing one of that name): archive
    /// and manifest into the object store, then the database, then the old archive goes.
    /// One publish at a time, so the database and the catalog agree on which is current.
    pub(crate) async fn publish(
        &self,
        manifest: Manifest,
        files: &[SeedFile],
        by: &str,
    ) -> Result<Template, ApiError> {
        let _turn = self.publishing.lock().await;
        let previous = {
            let entries = self.entries.read().unwrap();
            entries.get(&manifest.name).map(|e| e.archive.key.clone())
        };
        let view = self.store(manifest, files, by).await?;
        if let Some(key) = previous {
            let _ = self.objects.delete(&key).await;
        }
        Ok(view)
    }

    /// Publishes the built-in templates: every archive is uploaded before any is recorded, so
    /// a first start that fails halfway leaves no template recorded, and the next start
    /// publishes them all again.
    async fn seed(&self, templates: Vec<(Manifest, Vec<SeedFile>)>) -> Result<(), ApiError> {
        let mut uploaded = Vec::new();
        for (manifest, files) in templates {
            uploaded.push(self.upload(manifest, &files).await?);
        }
        for (manifest, archive) in uploaded {
            self.record(manifest, archive, BUILTIN_PUBLISHER).await?;
        }
        Ok(())
    }

    /// Packs, uploads and records a template.
    async fn store(
        &self,
        manifest: Manifest,
        files: &[SeedFile],
        by: &str,
    ) -> Result<Template, ApiError> {
        let (manifest, archive) = self.upload(manifest, files).await?;
        self.record(manifest, archive, by).await
    }

    /// Packs a template's files and puts them and its manifest into the object store.
    async fn upload(
        &self,
        manifest: Manifest,
        files: &[SeedFile],
    ) -> Result<(Manifest, Archive), ApiError> {
        let owned = files.to_vec();
        let (packed, bytes) = tokio::task::spawn_blocking(move || archive::pack(&owned))
            .await
            .map_err(|e| ApiError::internal("packing the template", e))??;
        let mut digest = cove_objects::Digest::default();
        digest.update(&packed);
        let stored = digest.stored();
        let name = manifest.name.clone();
        let archive = Archive {
            key: format!("templates/{name}/{}.tar.zst", uuid::Uuid::new_v4().simple()),
            size: stored.size,
            sha256: stored.sha256,
            files: files.len() as u64,
            bytes,
        };
        let store_error = |e: cove_objects::ObjectsError| {
            ApiError::internal("storing the template in the object store", e)
        };
        self.objects
            .put(&archive.key, packed.into())
            .await
            .map_err(store_error)?;
        let described = serde_json::json!({ "manifest": &manifest, "archive": &archive });
        self.objects
            .put(
                &format!("templates/{name}/manifest.json"),
                serde_json::to_vec_pretty(&described)
                    .expect("a manifest serializes")
                    .into(),
            )
            .await
            .map_err(store_error)?;
        Ok((manifest, archive))
    }

    /// Records an uploaded template in the database and the catalog (its archive is removed
    /// again when the database refuses).
    async fn record(
        &self,
        manifest: Manifest,
        archive: Archive,
        by: &str,
    ) -> Result<Template, ApiError> {
        let name = manifest.name.clone();
        let manifest_json = serde_json::to_string(&manifest).expect("a manifest serializes");
        let archive_json = serde_json::to_string(&archive).expect("an archive serializes");
        let row = TemplateRow {
            name: name.clone(),
            manifest: manifest_json,
            archive: archive_json,
            published_by: by.to_string(),
            published_at: crate::now_rfc3339(),
        };
        if let Err(e) = self.db.put_template(&row).await {
            let _ = self.objects.delete(&archive.key).await;
            return Err(e.into());
        }
        let entry = Entry {
            manifest,
            archive,
            published_by: row.published_by,
            published_at: row.published_at,
        };
        let view = entry.view();
        self.entries.write().unwrap().insert(name, entry);
        Ok(view)
    }

    /// Removes template `name` (workspaces made from it keep their files).
    pub(crate) async fn delete(&self, name: &str) -> Result<(), ApiError> {
        let _turn = self.publishing.lock().await;
        if !self.db.delete_template(name).await? {
            return Err(ApiError::not_found(format!("no template {name:?}")));
        }
        let removed = self.entries.write().unwrap().remove(name);
        if let Some(entry) = removed {
            let _ = self.objects.delete(&entry.archive.key).await;
        }
        let _ = self
            .objects
            .delete(&format!("templates/{name}/manifest.json"))
            .await;
        Ok(())
    }
}

impl Catalog {
    /// Removes what the object store holds under `templates/` for no recorded template: an
    /// archive a publish uploaded but never recorded (it was cut short), the manifest of a
    /// template removed while its removal was cut short. Run at start-up, before anyone
    /// publishes; each removal is logged. The keys it removed.
    pub(crate) async fn sweep(&self) -> Result<Vec<String>, ApiError> {
        let _turn = self.publishing.lock().await;
        let keep: std::collections::BTreeSet<String> = {
            let entries = self.entries.read().unwrap();
            entries
                .values()
                .flat_map(|e| {
                    [
                        e.archive.key.clone(),
                        format!("templates/{}/manifest.json", e.manifest.name),
                    ]
                })
                .collect()
        };
        let keys = self
            .objects
            .list("templates")
            .await
            .map_err(|e| ApiError::internal("listing the object store", e))?;
        let mut removed = Vec::new();
        for key in keys.into_iter().filter(|k| !keep.contains(k)) {
            tracing::info!(%key, "removing a template object no template records");
            self.objects
                .delete(&key)
                .await
                .map_err(|e| ApiError::internal("cleaning the object store", e))?;
            removed.push(key);
        }
        Ok(removed)
    }
}

fn entry_of(row: &TemplateRow) -> Result<Entry, serde_json::Error> {
    Ok(Entry {
        manifest: serde_json::from_str(&row.manifest)?,
        archive: serde_json::from_str(&row.archive)?,
        published_by: row.published_by.clone(),
        published_at: row.published_at.clone(),
    })
}

#[cfg(test)]
mod tests;
