//! Hibernate on the real server: a stopped workspace's files go to the object store (in the
//! data dir here) and leave this machine's disk; a start brings back exactly what was there:
//! contents, modes, symlinks, empty directories, names with spaces and non-ASCII, and a
//! 100 MB file.

use cove_test_support::TestServer;

/// Everything about the workspace's files that must survive, as text (from inside it).
const LISTING: &str = "find . -path ./lost+found -prune -o -printf '%p|%y|%m|%s|%l\\n' | LC_ALL=C sort; \
     find . -path ./lost+found -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum";

#[tokio::test]
async fn a_hibernated_workspace_comes_back_exactly() {
    let s = TestServer::start_with(env!("CARGO_BIN_EXE_cove"), &["--disk-limit-mib", "256"]).await;
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
    let snapshots = s.data_dir.path().join("objects/snapshots").join(&id);
    assert!(
        std::fs::read_dir(&snapshots).map_or(true, |mut d| d.next().is_none()),
        "{snapshots:?} is empty"
    );
}
