//! The audit log in the store: rows are appended, never changed or removed (the table's
//! triggers refuse it, whatever code runs).

use cove_protocol::accounts::{AuditEntry, AuditQuery, Outcome};
use sqlx::Row;

use super::{Db, DbError};

/// The most entries one page of `GET /api/audit` holds.
pub(crate) const MAX_PAGE: u32 = 500;
const DEFAULT_PAGE: u32 = 100;

impl Db {
    pub(crate) async fn append_audit(&self, entry: &AuditEntry) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO audit (at, username, action, target, address, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&entry.at)
        .bind(&entry.user)
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(&entry.address)
        .bind(entry.outcome.as_str())
        .bind(&entry.detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Entries matching `query`, newest first, and the `before` of the next page if any.
    pub(crate) async fn audit(
        &self,
        query: &AuditQuery,
    ) -> Result<(Vec<AuditEntry>, Option<i64>), DbError> {
        let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
        let rows = sqlx::query(
            "SELECT * FROM audit WHERE (?1 IS NULL OR username = ?1 COLLATE NOCASE) AND (?2 IS NULL OR action = ?2) AND (?3 IS NULL OR at >= ?3) AND (?4 IS NULL OR at < ?4) AND (?5 IS NULL OR id < ?5) ORDER BY id DESC LIMIT ?6",
        )
        .bind(&query.user)
        .bind(&query.action)
        .bind(&query.since)
        .bind(&query.until)
        .bind(query.before)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let mut entries = rows
            .iter()
            .map(|row| {
                let outcome: String = row.try_get("outcome")?;
                Ok(AuditEntry {
                    id: row.try_get("id")?,
                    at: row.try_get("at")?,
                    user: row.try_get("username")?,
                    action: row.try_get("action")?,
                    target: row.try_get("target")?,
                    address: row.try_get("address")?,
                    outcome: if outcome == "success" {
                        Outcome::Success
                    } else {
                        Outcome::Failure
                    },
                    detail: row.try_get("detail")?,
                })
            })
            .collect::<Result<Vec<_>, DbError>>()?;
        let next = if entries.len() > limit as usize {
            entries.truncate(limit as usize);
            entries.last().map(|e| e.id)
        } else {
            None
        };
        Ok((entries, next))
    }
}
