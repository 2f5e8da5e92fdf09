//! The server dies (SIGKILL) and comes back: workspaces keep running and clients reattach.

use serde_json::json;

use crate::server;

#[tokio::test]
async fn server_sigkill_and_restart_keeps_terminals_and_processes() {
    let mut s = server().await;
    let id = s.create_workspace("survivor", "blank").await;
    let mut c = s.control(&id).await;
    c.request("create_terminal", json!({"terminalId": "t"}))
        .await;
    c.send(
        "terminal_input",
        json!({"terminalId": "t", "input": "export MARK=before-kill; echo $MARK\n"}),
    )
    .await;
    c.terminal_until("t", "before-kill").await;
    c.request("run_command", json!({"command": "for i in $(seq 1 600); do echo tick-$i; sleep 0.05; done", "processId": "ticker"})).await;
    c.wait_for(|m| m["type"] == "process_output" && m["processId"] == "ticker")
        .await;
    let runner = s.runner_pids()[0];
    drop(c);

    s.kill_and_restart().await;
    assert!(
        std::path::Path::new(&format!("/proc/{runner}")).exists(),
        "the runner outlived the server"
    );
    let (status, view) = s.json("GET", &format!("/api/workspaces/{id}"), None).await;
    assert_eq!(
        (status, view["state"].as_str()),
        (200, Some("running")),
        "{view}"
    );

    let mut c = s.control(&id).await;
    let list = c.request("list_processes", json!({})).await;
    let ticker = list["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["processId"] == "ticker")
        .cloned()
        .unwrap();
    assert_eq!(ticker["running"], true, "{list}");
    c.request("subscribe_process", json!({"processId": "ticker"}))
        .await;
    c.wait_for(|m| {
        m["type"] == "process_output" && m["data"].as_str().unwrap().contains("tick-1\n")
    })
    .await;
    // The terminal is the same shell: its history and its variables are there.
    c.request("attach_terminal", json!({"terminalId": "t"}))
        .await;
    c.terminal_until("t", "before-kill").await;
    c.send(
        "terminal_input",
        json!({"terminalId": "t", "input": "echo again-$MARK\n"}),
    )
    .await;
    c.terminal_until("t", "again-before-kill").await;
    assert_eq!(
        s.runner_pids(),
        vec![runner],
        "no second runner was started"
    );
}

#[tokio::test]
async fn stop_and_start_through_the_api() {
    let s = server().await;
    let id = s.create_workspace("lifecycle", "node").await;
    let (status, view) = s
        .json("POST", &format!("/api/workspaces/{id}/start"), None)
        .await;
    assert_eq!(
        (status, view["state"].as_str()),
        (200, Some("running")),
        "{view}"
    );
    let runner = s.runner_pids()[0];
    let (status, view) = s
        .json("POST", &format!("/api/workspaces/{id}/stop"), None)
        .await;
    assert_eq!(
        (status, view["state"].as_str()),
        (200, Some("stopped")),
        "{view}"
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{runner}/cmdline")).exists()
            || std::fs::read_to_string(format!("/proc/{runner}/stat"))
                .unwrap()
                .contains(") Z")
    );
    // Connecting starts it again, with status messages.
    let mut c = s.control(&id).await;
    assert_eq!(c.request("ping", json!({})).await["type"], "pong");
    let (status, _) = s
        .http("DELETE", &format!("/api/workspaces/{id}"), None)
        .await;
    assert_eq!(status, 204);
    assert!(!s.workspace_dir(&id).exists());
    let (status, _) = s.json("GET", &format!("/api/workspaces/{id}"), None).await;
    assert_eq!(status, 404);
}

/// The server hands a terminal socket's connection to the runner: the socket does not go
/// through the server, and a server that dies takes nothing of it down.
#[tokio::test]
async fn a_terminal_socket_lives_through_a_server_sigkill_without_reconnecting() {
    let mut s = server().await;
    let id = s.create_workspace("handed", "blank").await;
    let (mut socket, _) = s.raw(&id, "t", "?cols=80&rows=24").await;
    socket.send(b"echo before-\"\"kill\n").await;
    socket.until("before-kill").await;
    let runner = s.runner_pids()[0];

    s.kill_and_restart().await;
    // The same socket, never reconnected: input reaches the shell, output comes back.
    socket.send(b"echo after-\"\"kill\n").await;
    socket.until("after-kill").await;
    assert_eq!(s.runner_pids(), vec![runner], "the same runner serves it");
    // And the socket still closes as every socket does when the terminal ends.
    socket.send(b"exit\n").await;
    assert_eq!(socket.until_closed().await, Some(1000));
}
