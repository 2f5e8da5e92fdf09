//! Nothing acknowledged is lost: a client writes up to 1,000 files through the API while the
//! server (then the workspace's runner) is SIGKILLed at a random moment; after the restart
//! every file whose write was answered with success is there with the content it was
//! answered for.

use cove_test_support::TestServer;
use std::sync::{Arc, Mutex};

use crate::server;

type Acked = Arc<Mutex<Vec<(String, String)>>>;

/// A number in `low..high` that differs from run to run (the moment of the kill).
fn random_between(low: usize, high: usize) -> usize {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as usize;
    low + nanos % (high - low)
}

/// Writes files `first..1000` one after another until a write fails; records each success.
fn writer(port: u16, id: String, first: usize, acked: Acked) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for i in first..1000 {
            let path = format!("/api/workspaces/{id}/files/crash/file-{i:04}.txt");
            let content = format!("file {i}: {}\n", "x".repeat(i % 97));
            // A killed server answers nothing: that write was not acknowledged.
            let answer = cove_test_support::request::request(
                port,
                "PUT",
                &path,
                &[],
                Some(content.as_bytes()),
                cove_test_support::WAIT,
            )
            .await;
            if !answer.is_ok_and(|a| matches!(a.status, 200 | 201)) {
                return;
            }
            acked.lock().unwrap().push((path, content));
        }
    })
}

/// Waits until `count` writes are acknowledged (or the writer ended).
async fn until_acked(acked: &Acked, count: usize, task: &tokio::task::JoinHandle<()>) {
    tokio::time::timeout(cove_test_support::WAIT * 4, async {
        while acked.lock().unwrap().len() < count && !task.is_finished() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the writes go on");
}

async fn check_all(s: &TestServer, acked: &Acked) -> usize {
    let acked = acked.lock().unwrap().clone();
    for (path, content) in &acked {
        let (status, body) = s.http("GET", path, None).await;
        assert_eq!(status, 200, "{path} was acknowledged and is gone");
        assert_eq!(
            String::from_utf8_lossy(&body),
            *content,
            "{path} was acknowledged with other content"
        );
    }
    acked.len()
}

#[tokio::test]
async fn acknowledged_writes_survive_a_killed_server_and_a_killed_runner() {
    let mut s = server().await;
    let id = s.create_workspace("durable", "blank").await;
    let (status, _) = s
        .json("POST", &format!("/api/workspaces/{id}/start"), None)
        .await;
    assert_eq!(status, 200);
    let acked: Acked = Arc::default();

    // The server dies mid-stream.
    let kill_at = random_between(50, 400);
    let task = writer(s.port, id.clone(), 0, acked.clone());
    until_acked(&acked, kill_at, &task).await;
    s.kill_and_restart().await;
    let _ = task.await;
    let first = check_all(&s, &acked).await;
    assert!(first >= kill_at, "{first} writes before the kill");

    // The runner dies mid-stream (the workspace's next write starts it again).
    let kill_at = first + random_between(50, 300);
    let task = writer(s.port, id.clone(), first, acked.clone());
    until_acked(&acked, kill_at, &task).await;
    let runners = s.runner_process_pids();
    assert_eq!(runners.len(), 1, "{runners:?}");
    cove_test_support::signal(runners[0], libc::SIGKILL);
    let _ = task.await;
    // The server notices the runner is gone; then a start brings it back.
    tokio::time::timeout(cove_test_support::WAIT, async {
        loop {
            let (_, view) = s.json("GET", &format!("/api/workspaces/{id}"), None).await;
            if view["state"] == "stopped" {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the dead runner is noticed");
    let (status, _) = s
        .json("POST", &format!("/api/workspaces/{id}/start"), None)
        .await;
    assert_eq!(status, 200);
    let total = check_all(&s, &acked).await;
    assert!(total >= kill_at, "{total} writes in all");
    eprintln!("{first} writes before the server was killed, {total} in all: every one is there");
    let (status, _) = s
        .json("DELETE", &format!("/api/workspaces/{id}"), None)
        .await;
    assert_eq!(status, 204);
}
