//! `cove backup` while the server runs, `cove restore` into a new data dir, and a server on
//! the restored data dir that brings a hibernated workspace back with its files.

use cove_test_support::{TestServer, WAIT};

use tokio::io::AsyncBufReadExt as _;

use crate::cli::cove;

#[tokio::test]
async fn a_backup_restores_into_a_new_data_dir_with_hibernated_workspaces() {
    let s = TestServer::start_with(env!("CARGO_BIN_EXE_cove"), &["--disk-limit-mib", "64"]).await;
    let kept = s.create_workspace("kept", "blank").await;
    s.create_workspace("local-only", "blank").await;
    let mut c = s.control(&kept).await;
    let (out, code) = c
        .sh("printf 'precious\\n' > notes.txt && mkdir -p 'a dir'")
        .await;
    assert_eq!(code, 0, "{out}");
    drop(c);
    let (status, view) = s
        .json("POST", &format!("/api/workspaces/{kept}/hibernate"), None)
        .await;
    assert_eq!(status, 200, "{view}");

    // While the server runs.
    let target = tempfile::tempdir().unwrap();
    let to = target.path().join("backup");
    let (ok, out, err) = cove(s.data_dir.path(), &["backup", to.to_str().unwrap()], "").await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("kept (owner admin)") && out.contains("local-only"),
        "{out}"
    );
    let (ok, _, err) = cove(s.data_dir.path(), &["backup", to.to_str().unwrap()], "").await;
    assert!(!ok && err.contains("not empty"), "{err}");

    // Into a new data dir; not over an existing one.
    let restored = target.path().join("data");
    let (ok, out, err) = cove(&restored, &["restore", to.to_str().unwrap()], "").await;
    assert!(ok, "{out}{err}");
    let (ok, _, err) = cove(&restored, &["restore", to.to_str().unwrap()], "").await;
    assert!(!ok && err.contains("already has a database"), "{err}");

    // A server on it: the hibernated workspace comes back with its files.
    let mut args = vec![
        "serve".to_string(),
        "--bind-addr".into(),
        "127.0.0.1:0".into(),
        "--auth".into(),
        "none".into(),
        format!("--config={}", restored.join("config.yaml").display()),
        "--disk-limit-mib".into(),
        "64".into(),
    ];
    if !cove_test_support::can_sandbox() {
        args.extend(["--sandbox".into(), "none".into()]);
    }
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_cove"))
        .args(&args)
        .arg("--data-dir")
        .arg(&restored)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(server.stdout.take().unwrap()).lines();
    let port: u16 = tokio::time::timeout(WAIT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(addr) = line.strip_prefix("cove listening on http://") {
                return addr.rsplit(':').next().unwrap().parse().unwrap();
            }
        }
        panic!("the restored server did not start")
    })
    .await
    .unwrap();
    let call = |method: &'static str, path: String| async move {
        let (status, body) = cove_test_support::http(port, method, &path, None, &[]).await;
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    let (status, body) = call("POST", format!("/api/workspaces/{kept}/start")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call("GET", format!("/api/workspaces/{kept}/files/notes.txt")).await;
    assert_eq!((status, body.as_str()), (200, "precious\n"));
    let (status, body) = call("POST", format!("/api/workspaces/{kept}/stop")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call("GET", "/api/workspaces".to_string()).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("local-only"),
        "the metadata of the others is there: {body}"
    );
    cove_test_support::signal(server.id().unwrap(), libc::SIGTERM);
    let _ = tokio::time::timeout(WAIT, server.wait()).await;
}
