//! The audit log in the store: rows are appended, never changed or removed (the table's
//! triggers refuse it, whatever code runs).

use super::{Columns, Db, DbError, with_pool};
use cove_protocol::accounts::{AuditEntry, AuditQuery, Outcome};

/// The most entries one page of `GET /api/audit` holds.
pub(crate) const MAX_PAGE: u32 = 500;
const DEFAULT_PAGE: u32 = 100;

impl Db {
    pub(crate) async fn append_audit(&self, entry: &AuditEntry) -> Result<(), DbError> {
        self.execute(
            "INSERT INTO audit (at, username, action, target, address, outcome, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &entry.at,
                &entry.user,
                &entry.action,
                &entry.target,
                &entry.address,
                entry.outcome.as_str(),
                &entry.detail,
            ],
        )
        .await?;
        Ok(())
    }

    /// Entries matching `query`, newest first, and the `before` of the next page if any.
    pub(crate) async fn audit(
        &self,
        query: &AuditQuery,
    ) -> Result<(Vec<AuditEntry>, Option<i64>), DbError> {
        let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
        let read = |row: &dyn Columns| -> Result<AuditEntry, DbError> {
            Ok(AuditEntry {
                id: row.int("id")?,
                at: row.text("at")?,
                user: row.text("username")?,
                action: row.text("action")?,
                target: row.text("target")?,
                address: row.text("address")?,
                outcome: if row.text("outcome")? == "success" {
                    Outcome::Success
                } else {
                    Outcome::Failure
                },
                detail: row.text("detail")?,
            })
        };
        let mut entries = with_pool!(self, pool => sqlx::query(
            "SELECT * FROM audit WHERE ($1 IS NULL OR lower(username) = lower($1)) AND ($2 IS NULL OR action = $2) AND ($3 IS NULL OR at >= $3) AND ($4 IS NULL OR at < $4) AND ($5 IS NULL OR id < $5) ORDER BY id DESC LIMIT $6",
        )
        .bind(&query.user)
        .bind(&query.action)
        .bind(&query.since)
        .bind(&query.until)
        .bind(query.before)
        .bind(i64::from(limit) + 1)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| read(row))
        .collect::<Result<Vec<_>, DbError>>())?;
        let next = if entries.len() > limit as usize {
            entries.truncate(limit as usize);
            entries.last().map(|e| e.id)
        } else {
            None
        };
        Ok((entries, next))
    }
}
