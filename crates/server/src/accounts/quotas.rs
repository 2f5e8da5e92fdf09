//! Quotas in real units, the server's defaults with per-user overrides, and what a user
//! uses against them (`GET /api/users/me/usage`). A quota that would be passed answers
//! `limit_exceeded` with a message that names it and its value.

use cove_protocol::ErrorCode;
use cove_protocol::accounts::{Quotas, Usage};
use cove_protocol::rest::{Limits, WorkspaceState};

use super::{Accounts, Caller};
use crate::db::{UserRow, WorkspaceRow};
use crate::error::ApiError;

const MIB: u64 = 1024 * 1024;

/// One quota, by its name in `Quotas`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quota {
    Workspaces,
    Running,
    Sessions,
    Connections,
    StorageMib,
    MemoryMib,
}

impl Quota {
    fn name(self) -> &'static str {
        match self {
            Quota::Workspaces => "workspaces",
            Quota::Running => "running",
            Quota::Sessions => "sessions",
            Quota::Connections => "connections",
            Quota::StorageMib => "storageMib",
            Quota::MemoryMib => "memoryMib",
        }
    }

    fn of(self, quotas: &Quotas) -> Option<u64> {
        match self {
            Quota::Workspaces => quotas.workspaces,
            Quota::Running => quotas.running,
            Quota::Sessions => quotas.sessions,
            Quota::Connections => quotas.connections,
            Quota::StorageMib => quotas.storage_mib,
            Quota::MemoryMib => quotas.memory_mib,
        }
    }

    /// What the quota is about, for people.
    fn what(self) -> &'static str {
        match self {
            Quota::Workspaces => "workspaces you own",
            Quota::Running => "of your workspaces running at once",
            Quota::Sessions => "signed-in sessions",
            Quota::Connections => "open connections",
            Quota::StorageMib => "MiB of storage across your workspaces",
            Quota::MemoryMib => "MiB of memory across your running workspaces",
        }
    }
}

/// A user's quotas: their own where set, else the server's.
pub(crate) fn effective(defaults: &Quotas, own: &Quotas) -> Quotas {
    Quotas {
        workspaces: own.workspaces.or(defaults.workspaces),
        running: own.running.or(defaults.running),
        sessions: own.sessions.or(defaults.sessions),
        connections: own.connections.or(defaults.connections),
        storage_mib: own.storage_mib.or(defaults.storage_mib),
        memory_mib: own.memory_mib.or(defaults.memory_mib),
    }
}

impl Accounts {
    pub(crate) fn quotas_of(&self, user: &UserRow) -> Quotas {
        effective(&self.settings.default_quotas, &user.quotas)
    }

    /// Refuses when `used + adding` would pass `user`'s quota.
    pub(crate) fn check_quota(
        &self,
        user: &UserRow,
        quota: Quota,
        used: u64,
        adding: u64,
    ) -> Result<(), ApiError> {
        let Some(limit) = quota.of(&self.quotas_of(user)) else {
            return Ok(());
        };
        if used.saturating_add(adding) > limit {
            return Err(ApiError::new(
                ErrorCode::LimitExceeded,
                format!(
                    "quota {} exceeded: {limit} {} (in use: {used}); ask an administrator to raise it",
                    quota.name(),
                    quota.what()
                ),
            ));
        }
        Ok(())
    }

    /// The storage a workspace counts for: its own limit, else the server's default.
    pub(crate) fn storage_mib_of(&self, limits: &Limits) -> u64 {
        limits
            .disk_mib
            .or(self.settings.workspace_defaults.disk_mib)
            .unwrap_or(0)
    }

    /// The memory a running workspace counts for.
    pub(crate) fn memory_mib_of(&self, limits: &Limits) -> u64 {
        limits
            .memory_mib
            .or(self.settings.workspace_defaults.memory_mib)
            .unwrap_or(0)
    }

    /// Checks the owner's workspace and storage quotas before a new workspace.
    pub(crate) async fn check_create(
        &self,
        owner: &UserRow,
        limits: &Limits,
    ) -> Result<(), ApiError> {
        let owned = self.db.list_owned(&owner.id).await?;
        self.check_quota(owner, Quota::Workspaces, owned.len() as u64, 1)?;
        let storage: u64 = owned.iter().map(|w| self.storage_mib_of(&w.limits)).sum();
        self.check_quota(
            owner,
            Quota::StorageMib,
            storage,
            self.storage_mib_of(limits),
        )
    }

    /// Checks the owner's running and memory quotas before `workspace` starts.
    pub(crate) async fn check_start(&self, workspace: &WorkspaceRow) -> Result<(), ApiError> {
        let Some(owner) = self.db.find_user(&workspace.owner).await? else {
            return Ok(());
        };
        let running: Vec<WorkspaceRow> = self
            .db
            .list_owned(&owner.id)
            .await?
            .into_iter()
            .filter(|w| w.id != workspace.id && is_up(w.state))
            .collect();
        self.check_quota(&owner, Quota::Running, running.len() as u64, 1)?;
        let memory: u64 = running.iter().map(|w| self.memory_mib_of(&w.limits)).sum();
        self.check_quota(
            &owner,
            Quota::MemoryMib,
            memory,
            self.memory_mib_of(&workspace.limits),
        )
    }

    /// `GET /api/users/me/usage`.
    pub(crate) async fn usage(&self, caller: &Caller) -> Result<Usage, ApiError> {
        let owned = self.db.list_owned(&caller.user.id).await?;
        let running: Vec<&WorkspaceRow> = owned.iter().filter(|w| is_up(w.state)).collect();
        Ok(Usage {
            workspaces: owned.len() as u64,
            running: running.len() as u64,
            storage_bytes: owned
                .iter()
                .map(|w| self.storage_mib_of(&w.limits) * MIB)
                .sum(),
            memory_bytes: running
                .iter()
                .map(|w| self.memory_mib_of(&w.limits) * MIB)
                .sum(),
            sessions: self.db.sessions_of(&caller.user.id).await?.len() as u64,
            connections: self.connections.count_of(&caller.user.id),
            quotas: self.quotas_of(&caller.user),
        })
    }
}

/// Counts as running for quotas: on its way up or up.
fn is_up(state: WorkspaceState) -> bool {
    matches!(state, WorkspaceState::Starting | WorkspaceState::Running)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_quotas_override_the_defaults_field_by_field() {
        let defaults = Quotas {
            workspaces: Some(10),
            sessions: Some(5),
            ..Quotas::default()
        };
        let own = Quotas {
            workspaces: Some(2),
            memory_mib: Some(1024),
            ..Quotas::default()
        };
        let q = effective(&defaults, &own);
        assert_eq!(q.workspaces, Some(2));
        assert_eq!(q.sessions, Some(5));
        assert_eq!(q.memory_mib, Some(1024));
        assert_eq!(q.running, None);
    }
}
