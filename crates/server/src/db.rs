//! The metadata store: workspaces, users, sessions, tokens, shares and the audit log, in
//! SQLite through sqlx, with migrations embedded in the binary. Accounts are in
//! `db/accounts.rs`, the audit log in `db/audit.rs`.

mod accounts;
mod audit;

pub(crate) use accounts::{SessionRow, TokenRow, UserRow};

use cove_protocol::accounts::ShareAccess;
use cove_protocol::rest::{Limits, WorkspaceState};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::path::Path;
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
}

#[derive(Debug, Clone)]
pub(crate) struct Db {
    pool: SqlitePool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Every read of a workspace: its row and its owner's username.
macro_rules! select_workspace {
    () => {
        "SELECT w.*, COALESCE(u.username, w.owner) AS owner_name \
         FROM workspaces w LEFT JOIN users u ON u.id = w.owner "
    };
}
/// The same with what a share gives the user `?1` (`share_access`).
macro_rules! select_workspace_shared {
    () => {
        "SELECT w.*, COALESCE(u.username, w.owner) AS owner_name, s.access AS share_access \
         FROM workspaces w LEFT JOIN users u ON u.id = w.owner \
         LEFT JOIN shares s ON s.workspace_id = w.id AND s.user_id = ?1 "
    };
}

impl Db {
    /// Opens (creating if needed) `<data_dir>/cove.db` and brings its schema up to date.
    pub(crate) async fn open(data_dir: &Path) -> Result<Db, DbError> {
        let url = format!("sqlite://{}", data_dir.join("cove.db").display());
        let options = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            // WAL + NORMAL: durable across process crashes, fast commits.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Db { pool })
    }

    fn row(row: &sqlx::sqlite::SqliteRow) -> Result<WorkspaceRow, DbError> {
        let id: String = row.get("id");
        let state: String = row.get("state");
        let limits: String = row.get("limits");
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
            name: row.get("name"),
            owner: row.get("owner"),
            owner_name: row.try_get("owner_name").unwrap_or_default(),
            template: row.get("template"),
            created_at: row.get("created_at"),
            updated_at: row.get("updated_at"),
            state_reason: row.get("state_reason"),
            stopped_by: row.get("stopped_by"),
            id,
        })
    }

    pub(crate) async fn insert(&self, w: &WorkspaceRow) -> Result<(), DbError> {
        let result = sqlx::query(
            "INSERT INTO workspaces (id, name, owner, template, state, created_at, updated_at, limits) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&w.id)
        .bind(&w.name)
        .bind(&w.owner)
        .bind(&w.template)
        .bind(w.state.as_str())
        .bind(&w.created_at)
        .bind(&w.created_at)
        .bind(serde_json::to_string(&w.limits).expect("limits serialize"))
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(DbError::NameTaken(w.name.clone()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A workspace the user may see, by id, or by name among their own; with what a share
    /// gives them (`None` for their own, or for any workspace when `admin`).
    pub(crate) async fn find_visible(
        &self,
        user_id: &str,
        admin: bool,
        id_or_name: &str,
    ) -> Result<Option<(WorkspaceRow, Option<ShareAccess>)>, DbError> {
        let row = sqlx::query(concat!(
            select_workspace_shared!(),
            "WHERE (w.id = ?2 OR (w.owner = ?1 AND w.name = ?2 COLLATE NOCASE)) \
             AND (?3 OR w.owner = ?1 OR s.access IS NOT NULL) \
             ORDER BY w.id = ?2 DESC LIMIT 1"
        ))
        .bind(user_id)
        .bind(id_or_name)
        .bind(admin)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Self::row_with_share).transpose()
    }

    /// The workspaces a user may see (every one for an admin), oldest first.
    pub(crate) async fn list_visible(
        &self,
        user_id: &str,
        admin: bool,
    ) -> Result<Vec<(WorkspaceRow, Option<ShareAccess>)>, DbError> {
        let rows = sqlx::query(concat!(
            select_workspace_shared!(),
            "WHERE ?2 OR w.owner = ?1 OR s.access IS NOT NULL ORDER BY w.created_at, w.name"
        ))
        .bind(user_id)
        .bind(admin)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .filter_map(|row| match Self::row_with_share(row) {
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
        let rows = sqlx::query(concat!(
            select_workspace!(),
            "WHERE w.owner = ? ORDER BY w.created_at, w.name"
        ))
        .bind(owner)
        .fetch_all(&self.pool)
        .await?;
        Ok(Self::readable(&rows))
    }

    fn row_with_share(
        row: &sqlx::sqlite::SqliteRow,
    ) -> Result<(WorkspaceRow, Option<ShareAccess>), DbError> {
        let share: Option<String> = row.try_get("share_access").unwrap_or(None);
        Ok((
            Self::row(row)?,
            share.as_deref().and_then(ShareAccess::parse),
        ))
    }

    pub(crate) async fn list_all(&self) -> Result<Vec<WorkspaceRow>, DbError> {
        let rows = sqlx::query(concat!(select_workspace!(), "ORDER BY w.created_at"))
            .fetch_all(&self.pool)
            .await?;
        Ok(Self::readable(&rows))
    }

    /// The rows that can be read; one that cannot (edited by hand, written by a newer cove)
    /// is left out of lists with an error in the log, so it hides no other workspace and
    /// does not stop the server from starting. Reading it by its id still says what is wrong.
    fn readable(rows: &[sqlx::sqlite::SqliteRow]) -> Vec<WorkspaceRow> {
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
        sqlx::query(
            "UPDATE workspaces SET state = ?, updated_at = ?, state_reason = ?, stopped_by = ? WHERE id = ?",
        )
        .bind(state.as_str())
        .bind(crate::now_rfc3339())
        .bind(reason)
        .bind(stopped_by)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A workspace by id, whoever owns it.
    pub(crate) async fn get(&self, id: &str) -> Result<Option<WorkspaceRow>, DbError> {
        let row = sqlx::query(concat!(select_workspace!(), "WHERE w.id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::row).transpose()
    }

    pub(crate) async fn delete(&self, id: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM workspaces WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As the owner `admin` (no administrator rights) finds it.
    async fn find(db: &Db, id_or_name: &str) -> Result<Option<WorkspaceRow>, DbError> {
        Ok(db
            .find_visible("admin", false, id_or_name)
            .await?
            .map(|(row, _)| row))
    }

    #[tokio::test]
    async fn insert_find_unique_names_per_owner() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).await.unwrap();
        let w = WorkspaceRow {
            id: "a1".into(),
            name: "demo".into(),
            owner: "admin".into(),
            owner_name: "admin".into(),
            template: "blank".into(),
            state: WorkspaceState::Stopped,
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
            limits: Limits {
                memory_mib: Some(64),
                ..Limits::default()
            },
            state_reason: String::new(),
            stopped_by: None,
        };
        db.insert(&w).await.unwrap();
        assert!(matches!(
            db.insert(&WorkspaceRow {
                id: "a2".into(),
                ..w.clone()
            })
            .await,
            Err(DbError::NameTaken(_))
        ));
        db.insert(&WorkspaceRow {
            id: "b1".into(),
            owner: "other".into(),
            ..w.clone()
        })
        .await
        .unwrap();
        assert_eq!(find(&db, "demo").await.unwrap().unwrap().id, "a1");
        assert_eq!(find(&db, "a1").await.unwrap().unwrap().name, "demo");
        assert_eq!(
            find(&db, "a1").await.unwrap().unwrap().limits.memory_mib,
            Some(64),
            "limits are stored with the workspace"
        );
        assert!(
            find(&db, "b1").await.unwrap().is_none(),
            "other owners' workspaces are invisible"
        );
        assert_eq!(find(&db, "DEMO").await.unwrap().unwrap().id, "a1");
        // A row that cannot be read is left out of lists (it blocks nothing), and reading it
        // says why.
        db.insert(&WorkspaceRow {
            id: "c1".into(),
            name: "broken".into(),
            ..w.clone()
        })
        .await
        .unwrap();
        sqlx::query("UPDATE workspaces SET state = 'sleeping' WHERE id = 'c1'")
            .execute(&db.pool)
            .await
            .unwrap();
        let listed: Vec<String> = db
            .list_owned("admin")
            .await
            .unwrap()
            .into_iter()
            .map(|w| w.id)
            .collect();
        assert_eq!(listed, ["a1"]);
        assert_eq!(db.list_all().await.unwrap().len(), 2);
        assert!(matches!(
            find(&db, "c1").await,
            Err(DbError::Unreadable {
                column: "state",
                ..
            })
        ));
        assert!(
            matches!(
                db.insert(&WorkspaceRow {
                    id: "a3".into(),
                    name: "Demo".into(),
                    ..w.clone()
                })
                .await,
                Err(DbError::NameTaken(_))
            ),
            "names are unique whatever their case"
        );
        db.set_state(
            "a1",
            WorkspaceState::Stopped,
            "stopped by admin",
            Some("admin"),
        )
        .await
        .unwrap();
        let stopped = db.get("a1").await.unwrap().unwrap();
        assert_eq!(
            (
                stopped.state.as_str(),
                stopped.state_reason.as_str(),
                stopped.stopped_by.as_deref()
            ),
            ("stopped", "stopped by admin", Some("admin"))
        );
        db.set_state("a1", WorkspaceState::Running, "", None)
            .await
            .unwrap();
        assert_eq!(
            db.list_owned("admin").await.unwrap()[0].state,
            WorkspaceState::Running
        );
        db.delete("a1").await.unwrap();
        assert!(db.list_owned("admin").await.unwrap().is_empty());
        // Reopening runs no migration twice.
        db.close().await;
        Db::open(dir.path()).await.unwrap();
    }
}
