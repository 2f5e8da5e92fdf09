//! Hibernate on the real server: a stopped workspace's files go to the object store (the
//! data dir's, and a real S3 server's) and leave this machine's disk; a start brings back
//! exactly what was there: contents, modes, symlinks, empty directories, names with spaces
//! and non-ASCII, and a 100 MB file.

use cove_test_support::TestServer;
use cove_test_support::s3::S3Server;

/// Everything about the workspace's files that must survive, as text (from inside it).
const LISTING: &str = "find . -path ./lost+found -prune -o -printf '%p|%y|%m|%s|%l\\n' | LC_ALL=C sort; \
     find . -path ./lost+found -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum";

#[tokio::test]
async fn a_hibernated_workspace_comes_back_exactly() {
    let s = TestServer::start_with(env!("CARGO_BIN_EXE_cove"), &["--disk-limit-mib", "256"]).await;
    let objects = s.data_dir.path().join("objects");
    comes_back_exactly(&s, |id| {
        let dir = objects.join("snapshots").join(id);
        std::fs::read_dir(&dir).map_or(Vec::new(), |d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
    })
    .await;
}

/// The same through an S3 bucket (moto), under a prefix: the snapshot is an object another
/// S3 client sees there, and nothing of it is left on this disk.
#[tokio::test]
async fn a_workspace_hibernated_to_s3_comes_back_exactly() {
    let Some(moto) = S3Server::shared() else {
        return;
    };
    let bucket = moto.bucket();
    let mut args = moto.cove_args(&format!("s3://{bucket}/team-a"));
    args.extend(["--disk-limit-mib".to_string(), "256".to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let s = TestServer::start_with(env!("CARGO_BIN_EXE_cove"), &args).await;
    comes_back_exactly(&s, |id| {
        let folder = format!("team-a/snapshots/{id}/");
        moto.keys(&bucket)
            .into_iter()
            .filter_map(|key| key.strip_prefix(&folder).map(str::to_string))
            .collect()
    })
    .await;
    assert!(
        !s.data_dir.path().join("objects").exists(),
        "no local object store was made"
    );
}

/// Files in, hibernated, started, files compared; `snapshots` lists what the object store
/// holds for a workspace id.
async fn comes_back_exactly(s: &TestServer, snapshots: impl Fn(&str) -> Vec<String>) {
    let id = s.create_workspace("sleeper", "blank").await;
    let mut c = s.control(&id).await;
    let (out, code) = c
        .sh(
            "mkdir -p 'a b/c d' empty 'deep/er/still' && printf 'spaces\\n' > 'my file.txt' \
             && printf 'ünïcödé\\n' > 'naïve-日本.txt' && printf '#!/bin/sh\\necho hi\\n' > run.sh \
             && chmod 750 run.sh && chmod 700 'a b' && ln -s 'my file.txt' link \
             && ln -s /etc/hostname outside && head -c 100000000 /dev/urandom > big.bin \
             && touch 'a b/c d/.hidden'",
        )
        .await;
    assert_eq!(code, 0, "{out}");
    let (before, code) = c.sh(LISTING).await;
    assert_eq!(code, 0, "{before}");
    assert!(before.contains("./big.bin|f|644|100000000|"), "{before}");
    drop(c);

    let (status, view) = s
        .json("POST", &format!("/api/workspaces/{id}/hibernate"), None)
        .await;
    assert_eq!(
        (status, view["state"].as_str()),
        (200, Some("hibernated")),
        "{view}"
    );
    let reason = view["stateReason"].as_str().unwrap_or_default();
    assert!(reason.contains("in the object store"), "{reason}");
    let mut stored = snapshots(&id);
    stored.sort();
    assert!(
        stored.len() == 2 && stored[0].ends_with(".tar.zst") && stored[1] == "manifest.json",
        "the snapshot and its manifest: {stored:?}"
    );
    let workspaces = s.data_dir.path().join("workspaces");
    assert!(
        !workspaces.join(format!("{id}.img")).exists() && !workspaces.join(&id).exists(),
        "the local copy is gone"
    );
    let (status, body) = s
        .json("POST", &format!("/api/workspaces/{id}/hibernate"), None)
        .await;
    assert_eq!(status, 409, "{body}");
    // Reading a file of a hibernated workspace says so; it does not start it.
    let (status, _) = s
        .http("GET", &format!("/api/workspaces/{id}/files/run.sh"), None)
        .await;
    assert_eq!(status, 409);

    // A socket starts it: restored, then running, with every file as it was.
    let mut c = s.control(&id).await;
    let (after, code) = c.sh(LISTING).await;
    assert_eq!(code, 0, "{after}");
    assert_eq!(after, before, "the files came back exactly");
    drop(c);
    let (_, audit) = s
        .json("GET", "/api/audit?action=workspace.hibernate", None)
        .await;
    assert_eq!(
        audit["entries"].as_array().map(Vec::len),
        Some(1),
        "{audit}"
    );

    // Deleting it deletes its snapshot too.
    let (status, _) = s
        .json("DELETE", &format!("/api/workspaces/{id}"), None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(snapshots(&id), Vec::<String>::new());
}

/// A store cove cannot use stops the start with the reason, not the first hibernation
/// hours later; the secret is never printed.
#[tokio::test]
async fn an_object_store_that_does_not_answer_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let serve = |extra: &[&str]| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_cove"));
        command
            .args(["serve", "--bind-addr", "127.0.0.1:0", "--auth", "none"])
            .arg(format!(
                "--config={}",
                dir.path().join("config.yaml").display()
            ))
            .arg("--data-dir")
            .arg(dir.path())
            .args(extra);
        command.output()
    };
    let output = serve(&[
        "--object-store",
        "s3://snapshots/cove",
        "--s3-endpoint",
        &endpoint,
        "--s3-secret-access-key",
        "hunter2",
        "--s3-access-key-id",
        "id",
    ])
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        err.contains("cannot use the object store") && err.contains("s3://snapshots/cove"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");

    let output = serve(&["--s3-endpoint", &endpoint]).await.unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(err.contains("--object-store is not s3://BUCKET"), "{err}");
}

/// A client that opens a hibernated workspace is told how the restore goes: the control
/// socket in `status` messages, the plain-text socket of seed 004 in lines.
#[tokio::test]
async fn the_restore_is_reported_on_the_sockets_that_wait_for_it() {
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    let s = TestServer::start_with(env!("CARGO_BIN_EXE_cove"), &["--disk-limit-mib", "128"]).await;
    let id = s.create_workspace("napper", "blank").await;
    let mut c = s.control(&id).await;
    let (out, code) = c.sh("head -c 20000000 /dev/urandom > noise.bin").await;
    assert_eq!(code, 0, "{out}");
    drop(c);
    let hibernate = || async {
        let (status, view) = s
            .json("POST", &format!("/api/workspaces/{id}/hibernate"), None)
            .await;
        assert_eq!(
            (status, view["state"].as_str()),
            (200, Some("hibernated")),
            "{view}"
        );
    };
    /// Text frames until one contains `until` (bounded by WAIT).
    async fn read(ws: &mut cove_test_support::Ws, until: &str) -> Vec<String> {
        let mut frames = Vec::new();
        tokio::time::timeout(cove_test_support::WAIT, async {
            while !frames.iter().any(|f: &String| f.contains(until)) {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) => frames.push(t.to_string()),
                    Some(Ok(_)) => {}
                    other => panic!("the socket ended: {other:?} after {frames:?}"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {until:?} in {frames:?}"));
        frames
    }

    hibernate().await;
    let mut ws = s.websocket(&format!("/api/workspaces/{id}/ws")).await;
    let frames = read(&mut ws, "\"ready\"").await;
    let restoring: Vec<&String> = frames
        .iter()
        .filter(|f| f.contains("\"status\"") && f.contains("restoring its files: "))
        .collect();
    assert!(
        !restoring.is_empty()
            && restoring
                .iter()
                .all(|f| f.contains("\"starting\"") && f.contains("MB")),
        "{frames:?}"
    );
    drop(ws);
    let (status, _) = s
        .json("POST", &format!("/api/workspaces/{id}/stop"), None)
        .await;
    assert_eq!(status, 200);

    hibernate().await;
    let mut plain = s.websocket("/api/terminal/ws/napper").await;
    let lines = read(&mut plain, "Workspace ready.").await.concat();
    let restoring = lines.find("Restoring its files: 0% of ").expect(&lines);
    assert!(
        restoring < lines.find("Workspace ready.").unwrap(),
        "{lines}"
    );
    drop(plain);
    let (status, _) = s
        .json("POST", &format!("/api/workspaces/{id}/stop"), None)
        .await;
    assert_eq!(status, 200);
}
