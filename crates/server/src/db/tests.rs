//! The store on SQLite and on PostgreSQL: the same operations give the same results, and
//! the two migration directories make the same schema.

use super::*;

/// As the owner `admin` (no administrator rights) finds it.
async fn find(db: &Db, id_or_name: &str) -> Result<Option<WorkspaceRow>, DbError> {
    Ok(db
        .find_visible("admin", false, id_or_name)
        .await?
        .map(|(row, _)| row))
}

#[tokio::test]
async fn workspaces_on_every_store() {
    for store in test_stores().await {
        eprintln!("workspaces on {}", store.kind);
        workspaces(&store).await;
    }
}

async fn workspaces(store: &TestStore) {
    let db = &store.db;
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
        keep_running: false,
        snapshot: None,
        init_command: None,
        run_command: None,
        preview_port: None,
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
    assert_eq!(find(db, "demo").await.unwrap().unwrap().id, "a1");
    assert_eq!(find(db, "a1").await.unwrap().unwrap().name, "demo");
    assert_eq!(
        find(db, "a1").await.unwrap().unwrap().limits.memory_mib,
        Some(64),
        "limits are stored with the workspace"
    );
    assert!(
        find(db, "b1").await.unwrap().is_none(),
        "other owners' workspaces are invisible"
    );
    assert_eq!(find(db, "DEMO").await.unwrap().unwrap().id, "a1");
    // A row that cannot be read is left out of lists (it blocks nothing), and reading it
    // says why.
    db.insert(&WorkspaceRow {
        id: "c1".into(),
        name: "broken".into(),
        ..w.clone()
    })
    .await
    .unwrap();
    db.execute(
        "UPDATE workspaces SET state = 'sleeping' WHERE id = 'c1'",
        &[],
    )
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
        find(db, "c1").await,
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
    db.set_keep_running("a1", true).await.unwrap();
    assert!(db.get("a1").await.unwrap().unwrap().keep_running);
    db.set_snapshot("a1", Some("{}")).await.unwrap();
    assert_eq!(
        db.get("a1").await.unwrap().unwrap().snapshot.as_deref(),
        Some("{}")
    );
    db.delete("a1").await.unwrap();
    assert!(db.list_owned("admin").await.unwrap().is_empty());
    // Reopening runs no migration twice.
    db.close().await;
    Db::connect(&store.store).await.unwrap();
}

#[tokio::test]
async fn accounts_on_every_store() {
    for store in test_stores().await {
        eprintln!("accounts on {}", store.kind);
        accounts(&store.db).await;
    }
}

fn user(id: &str, username: &str) -> UserRow {
    UserRow {
        id: id.into(),
        username: username.into(),
        role: cove_protocol::accounts::Role::User,
        password_hash: String::new(),
        created_at: format!("2026-01-01T00:00:0{}Z", id.len()),
        disabled: false,
        quotas: Default::default(),
    }
}

async fn accounts(db: &Db) {
    use cove_protocol::accounts::{AuditEntry, AuditQuery, Outcome};
    assert_eq!(db.user_count().await.unwrap(), 0);
    db.insert_user(&user("u1", "Ulla")).await.unwrap();
    db.insert_user(&user("u22", "vic")).await.unwrap();
    assert!(matches!(
        db.insert_user(&user("u333", "ULLA")).await,
        Err(DbError::UsernameTaken(_))
    ));
    assert_eq!(db.user_count().await.unwrap(), 2);
    assert_eq!(db.find_user("ulla").await.unwrap().unwrap().id, "u1");
    assert_eq!(db.find_user("u22").await.unwrap().unwrap().username, "vic");
    let mut vic = db.find_user("vic").await.unwrap().unwrap();
    vic.disabled = true;
    vic.quotas.workspaces = Some(3);
    db.update_user(&vic).await.unwrap();
    let read = db.find_user("u22").await.unwrap().unwrap();
    assert!(read.disabled);
    assert_eq!(read.quotas.workspaces, Some(3));
    vic.username = "ulla".into();
    assert!(matches!(
        db.update_user(&vic).await,
        Err(DbError::UsernameTaken(_))
    ));
    let listed: Vec<_> = db
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(listed, ["u1", "u22"]);

    // Sessions and tokens, found by their secret's hash.
    let session = SessionRow {
        id: "s1".into(),
        secret_hash: "h1".into(),
        user_id: "u1".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        last_seen_at: "2026-01-01T00:00:00Z".into(),
        expires_at: "2026-02-01T00:00:00Z".into(),
        address: "127.0.0.1".into(),
        user_agent: "test".into(),
    };
    db.insert_session(&session).await.unwrap();
    db.insert_session(&SessionRow {
        id: "s2".into(),
        secret_hash: "h2".into(),
        expires_at: "2026-01-02T00:00:00Z".into(),
        ..session.clone()
    })
    .await
    .unwrap();
    let (found, owner) = db.session_by_secret("h1").await.unwrap().unwrap();
    assert_eq!((found.id.as_str(), owner.id.as_str()), ("s1", "u1"));
    db.touch_session("s1", "2026-01-05T00:00:00Z")
        .await
        .unwrap();
    assert_eq!(
        db.sessions_of("u1").await.unwrap()[0].last_seen_at,
        "2026-01-05T00:00:00Z"
    );
    assert_eq!(
        db.delete_expired_sessions("2026-01-03T00:00:00Z", "2026-01-01T00:00:00Z")
            .await
            .unwrap(),
        1,
        "s2 is past its expiry"
    );
    assert!(!db.delete_session("u22", "s1").await.unwrap(), "not vic's");
    assert!(db.delete_session("u1", "s1").await.unwrap());
    assert!(db.session_by_secret("h1").await.unwrap().is_none());
    let token = TokenRow {
        id: "t1".into(),
        secret_hash: "th1".into(),
        user_id: "u22".into(),
        name: "ci".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        expires_at: None,
        last_used_at: None,
    };
    db.insert_token(&token).await.unwrap();
    db.touch_token("t1", "2026-01-03T00:00:00Z").await.unwrap();
    let (found, _) = db.token_by_secret("th1").await.unwrap().unwrap();
    assert_eq!(found.last_used_at.as_deref(), Some("2026-01-03T00:00:00Z"));
    assert_eq!(db.tokens_of("u22").await.unwrap().len(), 1);

    // Shares: made, changed, listed, removed; gone with their workspace or user.
    let w = WorkspaceRow {
        id: "w1".into(),
        name: "demo".into(),
        owner: "u1".into(),
        owner_name: String::new(),
        template: "blank".into(),
        state: WorkspaceState::Stopped,
        created_at: "2026-01-01T00:00:00Z".into(),
        updated_at: "2026-01-01T00:00:00Z".into(),
        limits: Limits::default(),
        state_reason: String::new(),
        stopped_by: None,
        keep_running: false,
        snapshot: None,
        init_command: None,
        run_command: None,
        preview_port: None,
    };
    db.insert(&w).await.unwrap();
    db.set_share("w1", "u22", ShareAccess::View).await.unwrap();
    db.set_share("w1", "u22", ShareAccess::Edit).await.unwrap();
    assert_eq!(
        db.share_of("w1", "u22").await.unwrap(),
        Some(ShareAccess::Edit)
    );
    assert_eq!(
        db.shares_of("w1").await.unwrap(),
        [("u22".to_string(), "vic".to_string(), ShareAccess::Edit)]
    );
    let (seen, share) = db.find_visible("u22", false, "w1").await.unwrap().unwrap();
    assert_eq!(
        (seen.owner_name.as_str(), share),
        ("Ulla", Some(ShareAccess::Edit))
    );
    assert!(
        db.find_visible("u22", false, "demo")
            .await
            .unwrap()
            .is_none(),
        "names are the owner's"
    );
    assert_eq!(db.list_visible("u22", false).await.unwrap().len(), 1);
    assert_eq!(db.list_visible("nobody", true).await.unwrap().len(), 1);
    assert!(db.list_visible("nobody", false).await.unwrap().is_empty());
    assert!(db.delete_share("w1", "u22").await.unwrap());
    assert!(!db.delete_share("w1", "u22").await.unwrap());
    db.set_share("w1", "u22", ShareAccess::View).await.unwrap();
    db.delete_user("u22").await.unwrap();
    assert!(
        db.shares_of("w1").await.unwrap().is_empty(),
        "gone with the user"
    );
    assert!(
        db.token_by_secret("th1").await.unwrap().is_none(),
        "and their tokens"
    );

    // The audit log: filters, newest first, paging; never changed or removed.
    for (i, (username, action)) in [("Ulla", "login"), ("vic", "login"), ("ulla", "logout")]
        .into_iter()
        .enumerate()
    {
        db.append_audit(&AuditEntry {
            id: 0,
            at: format!("2026-01-0{}T00:00:00Z", i + 1),
            user: username.into(),
            action: action.into(),
            target: String::new(),
            address: "127.0.0.1".into(),
            outcome: Outcome::Success,
            detail: String::new(),
        })
        .await
        .unwrap();
    }
    let query = |user: Option<&str>, action: Option<&str>, limit| AuditQuery {
        user: user.map(String::from),
        action: action.map(String::from),
        limit: Some(limit),
        ..Default::default()
    };
    let (all, next) = db.audit(&query(None, None, 2)).await.unwrap();
    let actions: Vec<_> = all.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["logout", "login"], "newest first");
    let (rest, last) = db
        .audit(&AuditQuery {
            before: next,
            ..query(None, None, 2)
        })
        .await
        .unwrap();
    assert_eq!((rest.len(), last), (1, None));
    let (ulla, _) = db.audit(&query(Some("ULLA"), None, 10)).await.unwrap();
    assert_eq!(ulla.len(), 2, "usernames match whatever their case");
    let (logins, _) = db.audit(&query(None, Some("login"), 10)).await.unwrap();
    assert_eq!(logins.len(), 2);
    for sql in ["UPDATE audit SET detail = 'x'", "DELETE FROM audit"] {
        assert!(db.execute(sql, &[]).await.is_err(), "{sql} is refused");
    }
    assert_eq!(db.audit(&query(None, None, 10)).await.unwrap().0.len(), 3);
}

/// `(table, column, type, nullable)` of every table, the migration versions, and the
/// explicit indexes: what the two migration directories must agree on.
async fn schema(db: &Db) -> (Vec<(String, String, String, bool)>, Vec<i64>, Vec<String>) {
    let (columns, indexes) = match &db.pool {
        Pool::Sqlite(pool) => {
            let columns = sqlx::query(
                "SELECT m.name AS tbl, p.name AS col, p.type AS ty, p.\"notnull\" AS nn, p.pk AS pk \
                 FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%'",
            )
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                let not_null = r.get::<i64, _>("nn") != 0 || r.get::<i64, _>("pk") != 0;
                (r.get("tbl"), r.get("col"), r.get::<String, _>("ty"), !not_null)
            })
            .collect::<Vec<_>>();
            let indexes = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            (columns, indexes)
        }
        Pool::Postgres(pool) => {
            let columns = sqlx::query(
                "SELECT table_name::TEXT AS tbl, column_name::TEXT AS col, data_type::TEXT AS ty, is_nullable::TEXT AS nullable \
                 FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name NOT LIKE '\\_sqlx%'",
            )
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.get("tbl"),
                    r.get("col"),
                    r.get::<String, _>("ty"),
                    r.get::<String, _>("nullable") == "YES",
                )
            })
            .collect::<Vec<_>>();
            let indexes = sqlx::query_scalar(
                "SELECT indexname::TEXT FROM pg_indexes WHERE schemaname = 'public' \
                 AND indexname NOT LIKE '%\\_pkey' AND indexname NOT LIKE '%\\_key' \
                 AND tablename NOT LIKE '\\_sqlx%'",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            (columns, indexes)
        }
    };
    let mut columns: Vec<_> = columns
        .into_iter()
        .map(|(table, column, ty, nullable)| {
            let ty = match ty.to_lowercase().as_str() {
                "integer" | "bigint" => "integer".to_string(),
                other => other.to_string(),
            };
            (table, column, ty, nullable)
        })
        .collect();
    columns.sort();
    let mut indexes: Vec<String> = indexes;
    indexes.sort();
    let versions = with_pool!(db, pool => sqlx::query_scalar(
        "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version"
    )
    .fetch_all(pool)
    .await
    .unwrap());
    (columns, versions, indexes)
}

#[tokio::test]
async fn both_migration_directories_make_the_same_schema() {
    let stores = test_stores().await;
    let Some(postgres) = stores.iter().find(|s| s.kind == "postgres") else {
        eprintln!("PostgreSQL is not installed: nothing to compare");
        return;
    };
    let sqlite = &stores[0];
    let (sqlite_schema, postgres_schema) = (schema(&sqlite.db).await, schema(&postgres.db).await);
    assert!(sqlite_schema.0.len() > 30, "{:?}", sqlite_schema.0);
    assert_eq!(sqlite_schema.1, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(sqlite_schema, postgres_schema);
}
