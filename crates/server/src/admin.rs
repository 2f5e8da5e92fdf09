//! Accounts from the command line (`cove user`, `cove token`, `cove audit`): the same
//! operations as the REST routes of PROTOCOL.md section 7, on the database in a data dir,
//! while a server may be running on it (SQLite in WAL mode takes both, as does PostgreSQL).
//!
//! The command line acts as the first administrator: whoever can open the data dir owns
//! the server anyway. Every change is audited as that administrator's, from the address
//! `0.0.0.0` (no network: the command line). A
//! running server checks credentials on every request, so a user disabled or a token
//! revoked here is refused at its next request; sockets it already has open stay until
//! they close (only the server that holds them can close them).

use cove_protocol::accounts::{
    AuditEntry, AuditQuery, CreateToken, CreateUser, TokenCreated, UpdateUser, User,
};
use std::net::IpAddr;

use crate::accounts::{AccountSettings, Accounts, Caller, Credential};
use crate::db::{Db, Store};
use crate::error::ApiError;

/// The accounts of one data dir, for the command line.
#[derive(Debug)]
pub struct AccountsAdmin {
    accounts: Accounts,
    db: Db,
}

/// Where the command line's changes come from, as the audit log shows it.
const CLI_ADDRESS: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);

impl AccountsAdmin {
    /// Opens the store (brought up to date, the first administrator made if there is no
    /// user yet, as a server's first start would).
    pub async fn open(store: &Store) -> Result<AccountsAdmin, ApiError> {
        let db = Db::connect(store).await.map_err(|e| {
            ApiError::internal(
                &format!("cannot open the database ({})", store.describe()),
                e,
            )
        })?;
        let accounts = Accounts::new(db.clone(), AccountSettings::default());
        accounts.bootstrap().await?;
        Ok(AccountsAdmin { accounts, db })
    }

    /// The first administrator, acting for the command line.
    async fn admin(&self) -> Result<Caller, ApiError> {
        self.accounts.open_caller(CLI_ADDRESS).await
    }

    pub async fn create_user(&self, request: &CreateUser) -> Result<User, ApiError> {
        let admin = self.admin().await?;
        self.accounts.create_user(&admin, request).await
    }

    pub async fn list_users(&self) -> Result<Vec<User>, ApiError> {
        let admin = self.admin().await?;
        self.accounts.list_users(&admin).await
    }

    pub async fn update_user(&self, user: &str, change: &UpdateUser) -> Result<User, ApiError> {
        let admin = self.admin().await?;
        self.accounts.update_user(&admin, user, change).await
    }

    pub async fn delete_user(&self, user: &str) -> Result<(), ApiError> {
        let admin = self.admin().await?;
        self.accounts.delete_user(&admin, user).await
    }

    /// An API token for `user` (its secret is in the answer, shown once).
    pub async fn create_token(
        &self,
        user: &str,
        request: &CreateToken,
    ) -> Result<TokenCreated, ApiError> {
        let admin = self.admin().await?;
        let owner = self.accounts.find_user_for(&admin, user).await?;
        let caller = Caller {
            user: owner,
            credential: Credential::Open,
            address: CLI_ADDRESS,
        };
        self.accounts.create_token(&caller, request).await
    }

    /// Audit entries, newest first, and the `before` of the next page.
    pub async fn audit(
        &self,
        query: &AuditQuery,
    ) -> Result<(Vec<AuditEntry>, Option<i64>), ApiError> {
        Ok(self.db.audit(query).await?)
    }

    /// Closes the database (waits for its writes).
    pub async fn close(self) {
        self.db.close().await;
    }
}
