//! Per-workspace limits (memory, CPU, processes, storage): a workspace may ask for less than
//! the server's flags, never more, and gets them from the kernel (cgroups, its own disk image).
//! These need the sandbox, so root; elsewhere they say so and skip.

use serde_json::{Value, json};

use cove_test_support::TestServer;

#[tokio::test]
async fn a_workspace_may_ask_for_less_than_the_servers_limits_never_more() {
    if !cove_test_support::needs_sandbox("check each workspace's cgroup limits and disk image") {
        return;
    }
    let s = TestServer::start_with(env!("CARGO_BIN_EXE_cove"), &["--network", "none"]).await;
    let create = |body: Value| s.json("POST", "/api/workspaces", Some(body));
    let (status, view) = create(json!({
        "name": "small",
        "limits": {"memoryMib": 64, "cpu": 0.25, "pids": 32, "diskMib": 24}
    }))
    .await;
    assert_eq!(status, 201, "{view}");
    assert_eq!(view["limits"]["memoryMib"], 64, "{view}");
    let id = view["id"].as_str().unwrap().to_string();
    let mut c = s.control(&id).await;
    let stats = c.request("stats", json!({})).await;
    assert_eq!(stats["memoryLimitBytes"], 64 * 1024 * 1024, "{stats}");
    assert_eq!(stats["diskLimitBytes"], 24 * 1024 * 1024, "{stats}");
    // The program's own view of its limits, from the kernel.
    let (out, _) = c
        .sh("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null; df -m /workspace | tail -1")
        .await;
    if std::path::Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists() {
        assert!(out.contains(&(64u64 * 1024 * 1024).to_string()), "{out}");
        assert!(out.contains("25000"), "a quarter core: {out}");
    }
    let image = s
        .data_dir
        .path()
        .join("workspaces")
        .join(format!("{id}.img"));
    assert!(
        std::fs::metadata(&image).unwrap().len() < 64 * 1024 * 1024,
        "the disk image has the workspace's own size"
    );

    // More than the server gives, less than a shell needs, wrong types, unknown keys: 400,
    // and nothing is created.
    for (limits, says) in [
        (json!({"memoryMib": 100000}), "memoryMib must be between"),
        (json!({"pids": 2}), "pids must be between"),
        (json!({"cpu": 64}), "cpu must be between"),
        (json!({"cpu": -1}), "cpu must be a positive"),
        (json!({"diskMib": 1}), "diskMib must be between"),
        (json!({"memoryMib": "lots"}), "invalid JSON body"),
        (json!({"swapMib": 1}), "unknown field"),
    ] {
        let (status, body) = create(json!({"name": "greedy", "limits": limits})).await;
        assert_eq!(status, 400, "{limits}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains(says),
            "{limits}: {body}"
        );
    }
    let (_, list) = s.json("GET", "/api/workspaces", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test]
async fn without_a_storage_limit_workspaces_are_plain_directories() {
    if !cove_test_support::needs_sandbox("check a sandboxed workspace without a disk image") {
        return;
    }
    let s = TestServer::start_with(
        env!("CARGO_BIN_EXE_cove"),
        &["--network", "none", "--disk-limit-mib", "0"],
    )
    .await;
    let id = s.create_workspace("plain", "python").await;
    let workspaces = s.data_dir.path().join("workspaces");
    assert!(!workspaces.join(format!("{id}.img")).exists());
    let mut c = s.control(&id).await;
    let (out, code) = c.sh("ls && touch made-inside").await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("main.py"), "{out}");
    assert!(workspaces.join(&id).join("made-inside").exists());
    let stats = c.request("stats", json!({})).await;
    assert!(stats["diskLimitBytes"].is_null(), "{stats}");
}
