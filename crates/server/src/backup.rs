//! `cove backup` and `cove restore`: a data dir's metadata store and object store, copied to
//! a directory while its server may run, and back into a data dir whose server is stopped.
//!
//! SQLite's `VACUUM INTO` writes a consistent copy of a live database. Objects are written
//! once under new keys (and manifests replaced whole by a rename), so copying the store
//! file by file gives complete objects; a snapshot written during the copy may be missing
//! from it, never half there. A PostgreSQL store is backed up with `pg_dump` (the error
//! says so). A workspace is in a backup when it is hibernated (its files are in the object
//! store); the report names the others, whose files live only on this machine.

use std::path::{Path, PathBuf};

use crate::db::{Db, DbError, Store};
use cove_protocol::rest::WorkspaceState;

/// Why a backup or restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "this server's database is PostgreSQL: back it up with `pg_dump` (and restore with \
         `psql` or `pg_restore`); copy the object store ({0}) beside it"
    )]
    Postgres(String),
    #[error("{0}")]
    Db(#[from] DbError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Refused(String),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let context = context.into();
    move |source| BackupError::Io { context, source }
}

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// The database copy.
    pub database: PathBuf,
    /// Files and bytes of the object store copied.
    pub objects: u64,
    pub object_bytes: u64,
    /// Workspaces whose files are in it (hibernated), and those whose files are not.
    pub included: Vec<String>,
    pub not_included: Vec<String>,
}

const DATABASE_FILE: &str = "cove.db";
const OBJECTS_DIR: &str = "objects";

/// Copies the data dir's database and object store into `to` (made if missing; it must be
/// empty).
pub async fn backup(
    store: &Store,
    data_dir: &Path,
    to: &Path,
) -> Result<BackupReport, BackupError> {
    let objects = data_dir.join(OBJECTS_DIR);
    if let Store::Postgres(_) = store {
        return Err(BackupError::Postgres(objects.display().to_string()));
    }
    std::fs::create_dir_all(to).map_err(io(format!("cannot create {}", to.display())))?;
    if std::fs::read_dir(to)
        .map_err(io(format!("cannot read {}", to.display())))?
        .next()
        .is_some()
    {
        return Err(BackupError::Refused(format!(
            "{} is not empty: a backup goes into an empty directory",
            to.display()
        )));
    }
    let db = Db::connect(store).await?;
    let database = to.join(DATABASE_FILE);
    db.copy_into(&database).await?;
    let (included, not_included) = with_files(&db).await?;
    db.close().await;
    let target = to.join(OBJECTS_DIR);
    let (count, bytes) = tokio::task::spawn_blocking(move || copy_tree(&objects, &target))
        .await
        .map_err(|_| {
            BackupError::Refused("the copy of the object store did not finish".into())
        })??;
    Ok(BackupReport {
        database,
        objects: count,
        object_bytes: bytes,
        included,
        not_included,
    })
}

/// Puts a backup made by [`backup`] into `data_dir`, which must not have a database yet
/// (a new machine, or a data dir moved aside). Its server must not run.
pub async fn restore(from: &Path, data_dir: &Path) -> Result<BackupReport, BackupError> {
    let source_db = from.join(DATABASE_FILE);
    if !source_db.is_file() {
        return Err(BackupError::Refused(format!(
            "{} is not a cove backup (it has no {DATABASE_FILE})",
            from.display()
        )));
    }
    let database = data_dir.join(DATABASE_FILE);
    if database.exists() {
        return Err(BackupError::Refused(format!(
            "{} already has a database: restore into a new data dir (or move this one aside)",
            data_dir.display()
        )));
    }
    std::fs::create_dir_all(data_dir)
        .map_err(io(format!("cannot create {}", data_dir.display())))?;
    std::fs::copy(&source_db, &database).map_err(io("cannot copy the database"))?;
    let (objects, target) = (from.join(OBJECTS_DIR), data_dir.join(OBJECTS_DIR));
    let (count, bytes) = tokio::task::spawn_blocking(move || copy_tree(&objects, &target))
        .await
        .map_err(|_| {
            BackupError::Refused("the copy of the object store did not finish".into())
        })??;
    // Opening brings an older backup's schema up to date.
    let db = Db::connect(&Store::Sqlite(database.clone())).await?;
    let (included, not_included) = with_files(&db).await?;
    db.close().await;
    Ok(BackupReport {
        database,
        objects: count,
        object_bytes: bytes,
        included,
        not_included,
    })
}

/// The workspaces whose files are in the object store (hibernated), and the others.
async fn with_files(db: &Db) -> Result<(Vec<String>, Vec<String>), BackupError> {
    let (mut included, mut not_included) = (Vec::new(), Vec::new());
    for row in db.list_all().await? {
        let name = format!("{} (owner {})", row.name, row.owner_name);
        if row.state == WorkspaceState::Hibernated {
            included.push(name);
        } else {
            not_included.push(name);
        }
    }
    Ok((included, not_included))
}

/// Copies regular files and directories under `from` to `to` (a missing `from` is an empty
/// store); symlinks are not followed or copied (the store makes none). Files and bytes.
fn copy_tree(from: &Path, to: &Path) -> Result<(u64, u64), BackupError> {
    let (mut count, mut bytes) = (0, 0);
    if !from.exists() {
        return Ok((0, 0));
    }
    std::fs::create_dir_all(to).map_err(io(format!("cannot create {}", to.display())))?;
    let entries = std::fs::read_dir(from).map_err(io(format!("cannot read {}", from.display())))?;
    for entry in entries {
        let entry = entry.map_err(io(format!("cannot read {}", from.display())))?;
        let kind = entry.file_type().map_err(io("cannot read a file's type"))?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if kind.is_dir() {
            let (c, b) = copy_tree(&source, &target)?;
            (count, bytes) = (count + c, bytes + b);
        } else if kind.is_file() {
            // The directory store's unfinished uploads (`<key>#<n>`) are not objects yet.
            if entry.file_name().to_string_lossy().contains('#') {
                continue;
            }
            bytes += std::fs::copy(&source, &target)
                .map_err(io(format!("cannot copy {}", source.display())))?;
            count += 1;
        }
    }
    Ok((count, bytes))
}
