//! Hostile paths through the control socket and the REST routes: all refused, nothing
//! outside the workspace read, written or listed.

use serde_json::json;

use crate::server;

/// Traversal and symlink attempts; the workspace holds links planted by its own shell.
const HOSTILE: &[&str] = &[
    "../x",
    "../../../../etc/passwd",
    "/../../etc/shadow",
    "a/../../secret",
    "./../secret",
    "//../secret",
    "..",
    "/..",
    "link_abs/passwd",
    "link_abs",
    "link_rel/key",
    "link_rel",
    "link_file",
    "loop1",
    "dir_link/../../secret",
    "link_rel/../secret",
    "sub/../../secret/key",
    "sub/../../../etc/hostname",
    "%2e%2e/secret",
    "..\\..\\secret",
    "link_proc/root/etc/passwd",
    "link_root/etc/passwd",
];

#[tokio::test]
async fn hostile_paths_are_refused_and_nothing_outside_changes() {
    let s = server().await;
    let id = s.create_workspace("hostile", "blank").await;
    let secret_dir = s.data_dir.path().join("secret");
    std::fs::create_dir_all(&secret_dir).unwrap();
    std::fs::write(secret_dir.join("key"), "TOP SECRET").unwrap();
    let mut c = s.control(&id).await;
    // Links planted from inside the workspace, as a hostile program would.
    let plant = format!(
        "mkdir -p sub && ln -s /etc link_abs && ln -s ../secret link_rel && ln -s ../secret/key link_file && ln -s loop2 loop1 && ln -s loop1 loop2 && ln -s sub dir_link && ln -s /proc/1 link_proc && ln -s / link_root && ls {}",
        secret_dir.display()
    );
    c.request(
        "run_command",
        json!({"command": plant, "processId": "plant"}),
    )
    .await;
    c.process_until_exit("plant").await;

    for path in HOSTILE {
        let read = c.request("read_file", json!({"path": path})).await;
        assert_eq!(read["type"], "error", "read {path}: {read}");
        assert!(
            ["forbidden", "not_found", "bad_request"].contains(&read["code"].as_str().unwrap()),
            "read {path}: {read}"
        );
        assert!(
            !read.to_string().contains("TOP SECRET") && !read.to_string().contains("root:"),
            "{read}"
        );
        assert!(
            !read["message"]
                .as_str()
                .unwrap()
                .contains(s.data_dir.path().to_str().unwrap()),
            "no host paths in messages: {read}"
        );
        let listing = c.request("list_dir", json!({"path": path})).await;
        assert_eq!(listing["type"], "error", "list {path}: {listing}");
        let write = c
            .request(
                "write_file",
                json!({"path": format!("{path}/pwned"), "content": "x"}),
            )
            .await;
        if write["type"] != "error" {
            // Only a path that is really inside the workspace may be written (a backslash is
            // an ordinary character in a Linux file name).
            let rel = path.trim_start_matches('/');
            assert!(
                !rel.split('/').any(|c| c == "..") && !rel.contains("link"),
                "write {path}: {write}"
            );
        }
        let overwrite = c
            .request("write_file", json!({"path": path, "content": "pwned"}))
            .await;
        if path.split('/').any(|c| c == "..") {
            assert_eq!(overwrite["type"], "error", "overwrite {path}: {overwrite}");
        }
        let rename = c
            .request(
                "rename_path",
                json!({"from": "sub", "to": format!("{path}/stolen")}),
            )
            .await;
        if rename["type"] == "ok" {
            c.request(
                "rename_path",
                json!({"from": format!("{path}/stolen"), "to": "sub"}),
            )
            .await;
        }
        let delete = c
            .request(
                "delete_path",
                json!({"path": format!("{path}/key"), "recursive": true}),
            )
            .await;
        assert_eq!(delete["type"], "error", "delete {path}/key: {delete}");
        let (status, body) = s
            .http("GET", &format!("/api/workspaces/{id}/files/{path}"), None)
            .await;
        assert!(
            status >= 400 || !String::from_utf8_lossy(&body).contains("TOP SECRET"),
            "REST {path}: {status}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(secret_dir.join("key")).unwrap(),
        "TOP SECRET"
    );
    assert_eq!(
        std::fs::read_dir(&secret_dir).unwrap().count(),
        1,
        "nothing was created beside the secret"
    );
    assert!(!std::path::Path::new("/etc/pwned").exists());
    // NUL bytes are refused before any system call.
    let nul = c.request("read_file", json!({"path": "sub/\u{0}x"})).await;
    assert_eq!(nul["code"], "bad_request", "{nul}");
}
