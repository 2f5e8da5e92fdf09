//! `cove user`, `cove token` and `cove audit` on the data dir of a running server: what they
//! change, the server sees at the next request.

use cove_test_support::WAIT;
use serde_json::json;
use std::process::Stdio;
use tokio::io::AsyncWriteExt as _;

use crate::accounts::{Client, password_server, sign_in};

/// Runs `cove ARGS --data-dir DIR` with `stdin`; (success, stdout, stderr).
pub(crate) async fn cove(
    dir: &std::path::Path,
    args: &[&str],
    stdin: &str,
) -> (bool, String, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_cove"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("cove runs");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("the command ends in time")
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn users_and_tokens_from_the_command_line_reach_the_running_server() {
    let s = password_server(&[]).await;
    let dir = s.data_dir.path();
    let (ok, out, err) = cove(
        dir,
        &["user", "add", "bob", "--role", "user"],
        "bob-password-1\n",
    )
    .await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("made bob (user)"), "{out}");
    let bob = sign_in(s.port, "bob", "bob-password-1").await;
    // Bad input is refused with the server's words, and changes nothing.
    let (ok, _, err) = cove(dir, &["user", "add", "bob"], "another-password\n").await;
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = cove(dir, &["user", "role", "bob", "god"], "").await;
    assert!(!ok && err.contains("not a role"), "{err}");
    let (ok, _, err) = cove(dir, &["user", "add", "shorty"], "short\n").await;
    assert!(!ok && err.contains("8"), "{err}");
    // A token made here works as a bearer token there, as its user.
    let (ok, token, err) = cove(dir, &["token", "create", "ci", "--user", "bob"], "").await;
    assert!(ok, "{err}");
    let agent = Client {
        port: s.port,
        credential: ("Authorization".into(), format!("Bearer {}", token.trim())),
    };
    let me = agent.call("GET", "/api/users/me", None).await;
    assert_eq!(
        (me.status, me.body["username"].clone()),
        (200, json!("bob"))
    );
    // Disabled here: the server refuses bob's session and token at their next request.
    let (ok, _, err) = cove(dir, &["user", "disable", "bob"], "").await;
    assert!(ok, "{err}");
    assert_eq!(bob.call("GET", "/api/users/me", None).await.status, 401);
    assert_eq!(agent.call("GET", "/api/users/me", None).await.status, 401);
    let (ok, list, _) = cove(dir, &["user", "list"], "").await;
    assert!(ok);
    assert!(
        list.lines()
            .any(|l| l.starts_with("bob ") && l.contains("disabled")),
        "{list}"
    );
    let (ok, log, _) = cove(dir, &["audit", "--action", "user.create"], "").await;
    assert!(ok && log.contains("bob"), "{log}");
    let (ok, _, err) = cove(dir, &["user", "remove", "bob"], "").await;
    assert!(ok, "{err}");
    let (ok, _, err) = cove(dir, &["user", "remove", "admin"], "").await;
    assert!(!ok && err.contains("last administrator"), "{err}");
}
