//! Templates in the store: one row per name, with its manifest and its archive's place in
//! the object store (both JSON, read by `crate::templates`).

use super::{Columns, Db, DbError, with_pool};

/// A template as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateRow {
    pub name: String,
    /// JSON: description, icon, runCommand, previewPort, initCommand.
    pub manifest: String,
    /// JSON: the archive's key, size, SHA-256, files and bytes.
    pub archive: String,
    pub published_by: String,
    pub published_at: String,
}

impl Db {
    /// Every template, by name.
    pub(crate) async fn templates(&self) -> Result<Vec<TemplateRow>, DbError> {
        let read = |row: &dyn Columns| -> Result<TemplateRow, DbError> {
            Ok(TemplateRow {
                name: row.text("name")?,
                manifest: row.text("manifest")?,
                archive: row.text("archive")?,
                published_by: row.text("published_by")?,
                published_at: row.text("published_at")?,
            })
        };
        with_pool!(self, pool => sqlx::query("SELECT * FROM templates ORDER BY name")
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| read(row))
            .collect())
    }

    /// Records a template, replacing the one of the same name.
    pub(crate) async fn put_template(&self, t: &TemplateRow) -> Result<(), DbError> {
        self.execute(
            "INSERT INTO templates (name, manifest, archive, published_by, published_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name) DO UPDATE SET manifest = excluded.manifest, archive = excluded.archive, \
             published_by = excluded.published_by, published_at = excluded.published_at",
            &[
                &t.name,
                &t.manifest,
                &t.archive,
                &t.published_by,
                &t.published_at,
            ],
        )
        .await?;
        Ok(())
    }

    /// Removes a template; whether there was one.
    pub(crate) async fn delete_template(&self, name: &str) -> Result<bool, DbError> {
        Ok(self
            .execute("DELETE FROM templates WHERE name = $1", &[name])
            .await?
            > 0)
    }
}
