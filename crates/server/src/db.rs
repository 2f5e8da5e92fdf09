//! The metadata store: workspaces, users, sessions, tokens, shares and the audit log, in
//! SQLite (the default, a file in the data dir) or PostgreSQL (`--database-url
//! postgres://...`), through sqlx, with migrations embedded in the binary. Accounts are in
//! `db/accounts.rs`, the audit log in `db/audit.rs`.
//!
//! Both databases get the same schema from two migration directories with the same versions
//! (`migrations/sqlite`, `migrations/postgres`; a test compares what they make). Every query
//! is written once, with `$N` placeholders, which both understand, and runs on whichever
//! pool this is ([`with_pool!`]); rows are read through [`Columns`]. No `sqlx::Any`: it drops
//! types and does not rewrite placeholders.

mod accounts;
mod audit;
mod templates;

pub(crate) use accounts::{SessionRow, TokenRow, UserRow};
pub(crate) use templates::TemplateRow;

use cove_protocol::accounts::ShareAccess;
use cove_protocol::rest::{Limits, WorkspaceState};
use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A workspace as stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WorkspaceRow {
    pub id: String,
    pub name: String,
    /// The owner's user id.
    pub owner: String,
    /// The owner's username (read with the row; not written).
    pub owner_name: String,
    pub template: String,
    pub state: WorkspaceState,
    pub created_at: String,
    /// When the state last changed.
    pub updated_at: String,
    /// The limits it asked for (empty: the server's defaults); a JSON column.
    pub limits: Limits,
    /// Why it is in its state, for people (empty when there is nothing to say).
    pub state_reason: String,
    /// Who stopped it, when a person did.
    pub stopped_by: Option<String>,
    /// Kept running with nobody connected: the idle stop passes it by.
    pub keep_running: bool,
    /// Its latest verified snapshot in the object store (JSON), if it has one.
    pub snapshot: Option<String>,
    /// Its template's init command, until its first start has run it.
    pub init_command: Option<String>,
    /// Its template's run command and preview port when it was made (`""` and 0 for none;
    /// `None` for a workspace older than these columns).
    pub run_command: Option<String>,
    pub preview_port: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("a workspace named {0:?} already exists")]
    NameTaken(String),
    #[error("a user named {0:?} already exists")]
    UsernameTaken(String),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value that does not parse: never silently replaced by a default.
    #[error("workspace {id} has an unreadable {column}: {problem}")]
    Unreadable {
        id: String,
        column: &'static str,
        problem: String,
    },
    #[error("{0:?} is not a database URL cove takes: sqlite://PATH or postgres://USER@HOST/NAME")]
    BadUrl(String),
}

/// Where the metadata lives (`--database-url`).
#[derive(Clone, PartialEq, Eq)]
pub enum Store {
    /// A SQLite file (the default: `cove.db` in the data dir).
    Sqlite(PathBuf),
    /// A PostgreSQL database, by its URL (which may hold a password).
    Postgres(String),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Store::Sqlite(path) => write!(f, "Sqlite({})", path.display()),
            Store::Postgres(url) => write!(f, "Postgres({})", mask_password(url)),
        }
    }
}

/// `url` with the password, if any, replaced by `********` (for logs and errors).
pub(crate) fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((credentials, host)) if credentials.contains(':') => {
            let user = credentials.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:********@{host}{tail}")
        }
        _ => url.to_string(),
    }
}

impl Store {
    /// `cove.db` in the data dir.
    pub fn in_data_dir(data_dir: &Path) -> Store {
        Store::Sqlite(data_dir.join("cove.db"))
    }

    /// A `--database-url`: `sqlite://PATH` (or `sqlite:PATH`), `postgres://...` or
    /// `postgresql://...`.
    pub fn parse(url: &str) -> Result<Store, DbError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Store::Postgres(url.to_string()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .filter(|p| !p.is_empty())
            .ok_or_else(|| DbError::BadUrl(mask_password(url)))?;
        Ok(Store::Sqlite(PathBuf::from(path)))
    }

    /// For people: the file, or the URL with its password masked.
    pub fn describe(&self) -> String {
        match self {
            Store::Sqlite(path) => format!("SQLite {}", path.display()),
            Store::Postgres(url) => format!("PostgreSQL {}", mask_password(url)),
        }
    }
}

/// `taken()` for a unique-constraint violation (a name in use), the error itself otherwise.
fn taken_if_unique(
    result: Result<(), sqlx::Error>,
    taken: impl FnOnce() -> DbError,
) -> Result<(), DbError> {
    match result {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(taken()),
        other => Ok(other?),
    }
}

/// The pool of either database.
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool `$db` has: the body is compiled once
/// per database, so it must come to the same type in both (map rows and results inside).
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match &$db.pool {
            $crate::db::Pool::Sqlite($pool) => $body,
            $crate::db::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Reading a row's columns, the same way from either database.
pub(crate) trait Columns {
    fn text(&self, column: &str) -> Result<String, sqlx::Error>;
    fn maybe_text(&self, column: &str) -> Result<Option<String>, sqlx::Error>;
    fn int(&self, column: &str) -> Result<i64, sqlx::Error>;
    fn maybe_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error>;
}

macro_rules! columns_of {
    ($row:ty) => {
        impl Columns for $row {
            fn text(&self, column: &str) -> Result<String, sqlx::Error> {
                self.try_get(column)
            }
            fn maybe_text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
                self.try_get(column)
            }
            fn int(&self, column: &str) -> Result<i64, sqlx::Error> {
                self.try_get(column)
            }
            fn maybe_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
                self.try_get(column)
            }
        }
    };
}
columns_of!(SqliteRow);
columns_of!(PgRow);

#[derive(Debug, Clone)]
pub(crate) struct Db {
    pool: Pool,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Every read of a workspace: its row and its owner's username.
macro_rules! select_workspace {
    () => {
        "SELECT w.*, COALESCE(u.username, w.owner) AS owner_name \
         FROM workspaces w LEFT JOIN users u ON u.id = w.owner "
    };
}
/// The same with what a share gives the user `$1` (`share_access`).
macro_rules! select_workspace_shared {
    () => {
        "SELECT w.*, COALESCE(u.username, w.owner) AS owner_name, s.access AS share_access \
         FROM workspaces w LEFT JOIN users u ON u.id = w.owner \
         LEFT JOIN shares s ON s.workspace_id = w.id AND s.user_id = $1 "
    };
}

impl Db {
    /// Opens (creating if needed) `<data_dir>/cove.db` and brings its schema up to date.
    #[cfg(test)]
    pub(crate) async fn open(data_dir: &Path) -> Result<Db, DbError> {
        Db::connect(&Store::in_data_dir(data_dir)).await
    }

    /// Connects to `store` (a SQLite file is made if missing) and brings its schema up to
    /// date.
    pub(crate) async fn connect(store: &Store) -> Result<Db, DbError> {
        match store {
            Store::Sqlite(path) => {
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    // WAL + NORMAL: durable across process crashes, fast commits.
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(std::time::Duration::from_secs(5));
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(options)
                    .await?;
                SQLITE_MIGRATIONS.run(&pool).await?;
                Ok(Db {
                    pool: Pool::Sqlite(pool),
                })
            }
            Store::Postgres(url) => {
                let options = sqlx::postgres::PgConnectOptions::from_str(url)?;
                let pool = PgPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(std::time::Duration::from_secs(10))
                    .connect_with(options)
                    .await?;
                POSTGRES_MIGRATIONS.run(&pool).await?;
                Ok(Db {
                    pool: Pool::Postgres(pool),
                })
            }
        }
    }

    fn row(row: &impl Columns) -> Result<WorkspaceRow, DbError> {
        let id = row.text("id")?;
        let state = row.text("state")?;
        let limits = row.text("limits")?;
        let unreadable = |column, problem: String| DbError::Unreadable {
            id: id.clone(),
            column,
            problem,
        };
        Ok(WorkspaceRow {
            state: WorkspaceState::parse(&state)
                .ok_or_else(|| unreadable("state", format!("{state:?} is not a state")))?,
            limits: serde_json::from_str(&limits)
                .map_err(|e| unreadable("limits", e.to_string()))?,
            name: row.text("name")?,
            owner: row.text("owner")?,
            owner_name: row.text("owner_name").unwrap_or_default(),
            template: row.text("template")?,
            created_at: row.text("created_at")?,
            updated_at: row.text("updated_at")?,
            state_reason: row.text("state_reason")?,
            stopped_by: row.maybe_text("stopped_by")?,
            keep_running: row.int("keep_running")? != 0,
            snapshot: row.maybe_text("snapshot")?,
            init_command: row.maybe_text("init_command")?,
            run_command: row.maybe_text("run_command")?,
            preview_port: row.maybe_int("preview_port")?,
            id,
        })
    }

    pub(crate) async fn insert(&self, w: &WorkspaceRow) -> Result<(), DbError> {
        let limits = serde_json::to_string(&w.limits).expect("limits serialize");
        let result = with_pool!(self, pool => sqlx::query(
            "INSERT INTO workspaces (id, name, owner, template, state, created_at, updated_at, limits, keep_running, init_command, run_command, preview_port) VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&w.id)
        .bind(&w.name)
        .bind(&w.owner)
        .bind(&w.template)
        .bind(w.state.as_str())
        .bind(&w.created_at)
        .bind(&limits)
        .bind(i64::from(w.keep_running))
        .bind(&w.init_command)
        .bind(&w.run_command)
        .bind(w.preview_port)
        .execute(pool)
        .await
        .map(|_| ()));
        taken_if_unique(result, || DbError::NameTaken(w.name.clone()))
    }

    /// A workspace the user may see, by id, or by name among their own; with what a share
    /// gives them (`None` for their own, or for any workspace when `admin`).
    pub(crate) async fn find_visible(
        &self,
        user_id: &str,
        admin: bool,
        id_or_name: &str,
    ) -> Result<Option<(WorkspaceRow, Option<ShareAccess>)>, DbError> {
        with_pool!(self, pool => sqlx::query(concat!(
            select_workspace_shared!(),
            "WHERE (w.id = $2 OR (w.owner = $1 AND lower(w.name) = lower($2))) \
             AND ($3 OR w.owner = $1 OR s.access IS NOT NULL) \
             ORDER BY w.id = $2 DESC LIMIT 1"
        ))
        .bind(user_id)
        .bind(id_or_name)
        .bind(admin)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(Self::row_with_share)
        .transpose())
    }

    /// The workspaces a user may see (every one for an admin), oldest first.
    pub(crate) async fn list_visible(
        &self,
        user_id: &str,
        admin: bool,
    ) -> Result<Vec<(WorkspaceRow, Option<ShareAccess>)>, DbError> {
        let found: Vec<Result<_, DbError>> = with_pool!(self, pool => sqlx::query(concat!(
            select_workspace_shared!(),
            "WHERE $2 OR w.owner = $1 OR s.access IS NOT NULL ORDER BY w.created_at, w.name"
        ))
        .bind(user_id)
        .bind(admin)
        .fetch_all(pool)
        .await?
        .iter()
        .map(Self::row_with_share)
        .collect());
        Ok(found
            .into_iter()
            .filter_map(|found| match found {
                Ok(found) => Some(found),
                Err(e) => {
                    tracing::error!(error = %e, "a workspace's row cannot be read; it is left out");
                    None
                }
            })
            .collect())
    }

    /// The workspaces a user owns.
    pub(crate) async fn list_owned(&self, owner: &str) -> Result<Vec<WorkspaceRow>, DbError> {
        Ok(with_pool!(self, pool => Self::readable(
            &sqlx::query(concat!(
                select_workspace!(),
                "WHERE w.owner = $1 ORDER BY w.created_at, w.name"
            ))
            .bind(owner)
            .fetch_all(pool)
            .await?
        )))
    }

    fn row_with_share(row: &impl Columns) -> Result<(WorkspaceRow, Option<ShareAccess>), DbError> {
        let share = row.maybe_text("share_access").unwrap_or(None);
        Ok((
            Self::row(row)?,
            share.as_deref().and_then(ShareAccess::parse),
        ))
    }

    pub(crate) async fn list_all(&self) -> Result<Vec<WorkspaceRow>, DbError> {
        Ok(with_pool!(self, pool => Self::readable(
            &sqlx::query(concat!(select_workspace!(), "ORDER BY w.created_at"))
                .fetch_all(pool)
                .await?
        )))
    }

    /// The rows that can be read; one that cannot (edited by hand, written by a newer cove)
    /// is left out of lists with an error in the log, so it hides no other workspace and
    /// does not stop the server from starting. Reading it by its id still says what is wrong.
    fn readable(rows: &[impl Columns]) -> Vec<WorkspaceRow> {
        rows.iter()
            .filter_map(|row| match Self::row(row) {
                Ok(row) => Some(row),
                Err(e) => {
                    tracing::error!(error = %e, "a workspace's row cannot be read; it is left out");
                    None
                }
            })
            .collect()
    }

    /// Records a state, why, and (for a stop a person asked for) who.
    pub(crate) async fn set_state(
        &self,
        id: &str,
        state: WorkspaceState,
        reason: &str,
        stopped_by: Option<&str>,
    ) -> Result<(), DbError> {
        let now = crate::now_rfc3339();
        with_pool!(self, pool => sqlx::query(
            "UPDATE workspaces SET state = $1, updated_at = $2, state_reason = $3, stopped_by = $4 WHERE id = $5",
        )
        .bind(state.as_str())
        .bind(&now)
        .bind(reason)
        .bind(stopped_by)
        .bind(id)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Keeps a workspace running with nobody connected, or lets the idle stop take it again.
    pub(crate) async fn set_keep_running(&self, id: &str, keep: bool) -> Result<(), DbError> {
        with_pool!(self, pool => sqlx::query("UPDATE workspaces SET keep_running = $1 WHERE id = $2")
            .bind(i64::from(keep))
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Forgets a workspace's init command: its first start has run it (or tried to).
    pub(crate) async fn clear_init_command(&self, id: &str) -> Result<(), DbError> {
        self.execute(
            "UPDATE workspaces SET init_command = NULL WHERE id = $1",
            &[id],
        )
        .await?;
        Ok(())
    }

    /// Records a workspace's latest verified snapshot (JSON), or that it has none.
    pub(crate) async fn set_snapshot(
        &self,
        id: &str,
        snapshot: Option<&str>,
    ) -> Result<(), DbError> {
        with_pool!(self, pool => sqlx::query("UPDATE workspaces SET snapshot = $1 WHERE id = $2")
            .bind(snapshot)
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// A workspace by id, whoever owns it.
    pub(crate) async fn get(&self, id: &str) -> Result<Option<WorkspaceRow>, DbError> {
        with_pool!(self, pool => sqlx::query(concat!(select_workspace!(), "WHERE w.id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?
            .as_ref()
            .map(Self::row)
            .transpose())
    }

    pub(crate) async fn delete(&self, id: &str) -> Result<(), DbError> {
        self.execute("DELETE FROM workspaces WHERE id = $1", &[id])
            .await?;
        Ok(())
    }

    /// Runs a statement whose parameters are all text; the rows it changed.
    async fn execute(&self, sql: &'static str, params: &[&str]) -> Result<u64, DbError> {
        Ok(with_pool!(self, pool => {
            let mut query = sqlx::query(sql);
            for param in params {
                query = query.bind(*param);
            }
            query.execute(pool).await?.rows_affected()
        }))
    }

    /// Writes a consistent copy of a SQLite store to `path` while it is in use.
    pub(crate) async fn copy_into(&self, path: &Path) -> Result<(), DbError> {
        match &self.pool {
            Pool::Sqlite(pool) => {
                let target = path.to_str().ok_or_else(|| {
                    DbError::BadUrl(format!("{} is not a UTF-8 path", path.display()))
                })?;
                sqlx::query("VACUUM INTO $1")
                    .bind(target)
                    .execute(pool)
                    .await?;
                Ok(())
            }
            Pool::Postgres(_) => Err(DbError::BadUrl(
                "a PostgreSQL store is copied with pg_dump".into(),
            )),
        }
    }

    pub(crate) async fn close(&self) {
        with_pool!(self, pool => pool.close().await);
    }
}

/// The stores every store test runs on: SQLite in a temporary directory, and a new database
/// of the test process's PostgreSQL cluster (when PostgreSQL is installed; CI installs it).
#[cfg(test)]
pub(crate) async fn test_stores() -> Vec<TestStore> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let sqlite = Store::in_data_dir(dir.path());
    let mut stores = vec![TestStore {
        kind: "sqlite",
        db: Db::connect(&sqlite).await.expect("SQLite opens"),
        store: sqlite,
        _dir: Some(dir),
    }];
    if let Some(cluster) = cove_test_support::postgres::Cluster::shared() {
        let postgres = Store::Postgres(cluster.database());
        stores.push(TestStore {
            kind: "postgres",
            db: Db::connect(&postgres).await.expect("PostgreSQL opens"),
            store: postgres,
            _dir: None,
        });
    }
    stores
}

/// One store of [`test_stores`].
#[cfg(test)]
pub(crate) struct TestStore {
    pub(crate) kind: &'static str,
    pub(crate) db: Db,
    pub(crate) store: Store,
    _dir: Option<tempfile::TempDir>,
}

#[cfg(test)]
mod tests;
