//! `cove serve --database-url postgres://...` on a real PostgreSQL (a throwaway cluster the
//! test starts): users, sessions, workspaces and the audit log live there, outlive a killed
//! server, and the command line reaches the same database.

use cove_test_support::postgres::Cluster;
use serde_json::json;

use crate::accounts::{ADMIN_PASSWORD, audit, has_entry, password_server, sign_in};
use crate::cli::cove;

#[tokio::test]
async fn a_server_on_postgres_keeps_its_accounts_and_workspaces() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let url = cluster.database();
    let mut s = password_server(&["--database-url", &url]).await;
    let admin = sign_in(s.port, "admin", ADMIN_PASSWORD).await;
    let a = admin
        .call(
            "POST",
            "/api/users",
            Some(json!({"username": "ulla", "password": "ulla-password-1", "role": "user"})),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let a = admin
        .call("POST", "/api/workspaces", Some(json!({"name": "pg-demo"})))
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let id = a.body["id"].as_str().unwrap().to_string();
    assert!(
        !s.data_dir.path().join("cove.db").exists(),
        "no SQLite file beside a PostgreSQL store"
    );

    // The command line, on the same database.
    let (ok, out, err) = cove(
        s.data_dir.path(),
        &["user", "list", "--database-url", &url],
        "",
    )
    .await;
    assert!(ok && out.contains("ulla"), "{out}{err}");

    // Killed and started again: the session cookie, the user and the workspace are there.
    s.kill_and_restart().await;
    let admin = crate::accounts::Client {
        port: s.port,
        ..admin
    };
    let a = admin.call("GET", "/api/users/me", None).await;
    assert_eq!(a.status, 200, "the session outlives the server: {}", a.body);
    let a = admin
        .call("GET", &format!("/api/workspaces/{id}"), None)
        .await;
    assert_eq!((a.status, a.body["name"].as_str()), (200, Some("pg-demo")));
    sign_in(s.port, "ulla", "ulla-password-1").await;
    let entries = audit(&admin, "").await;
    assert!(has_entry(&entries, "user.create", "success", "ulla"));
    assert!(has_entry(
        &entries,
        "workspace.create",
        "success",
        "pg-demo"
    ));
    let a = admin
        .call("DELETE", &format!("/api/workspaces/{id}"), None)
        .await;
    assert_eq!(a.status, 204, "{}", a.body);
}

#[tokio::test]
async fn a_database_url_cove_does_not_take_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_cove"))
        .args(["serve", "--bind-addr", "127.0.0.1:0", "--auth", "none"])
        .arg(format!("--config={}", config.display()))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--database-url", "mysql://root:hunter2@db/cove"])
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(err.contains("is not a database URL cove takes"), "{err}");
    assert!(!err.contains("hunter2"), "the password is masked: {err}");
}
