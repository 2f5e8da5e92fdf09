//! The lifecycle watcher on the real server (`--idle-stop 2s`): a running workspace nobody
//! is connected to stops by itself, with why (state, reason, audit); one with an open socket,
//! one whose files are being read, or one marked "keep running" does not; a runner killed from outside is noticed and told to
//! live views without anyone asking.

use cove_test_support::{TestServer, WAIT};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Polls the workspace until `done` holds (bounded by WAIT).
async fn until(s: &TestServer, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, view) = s.json("GET", &format!("/api/workspaces/{id}"), None).await;
        assert_eq!(status, 200, "{view}");
        if done(&view) {
            return view;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} within {WAIT:?}; the workspace is {view}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

fn state(view: &Value) -> &str {
    view["state"].as_str().unwrap_or("")
}

/// Opens `GET /api/events` and returns a reader of its text.
async fn events(port: u16) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let request = format!(
        "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

#[tokio::test]
async fn idle_workspaces_stop_and_dead_runners_are_noticed() {
    let s = TestServer::start_with(env!("CARGO_BIN_EXE_cove"), &["--idle-stop", "2s"]).await;
    let idle = s.create_workspace("idle", "blank").await;
    let watched = s.create_workspace("watched", "blank").await;
    let kept = s.create_workspace("kept", "blank").await;
    let browsed = s.create_workspace("browsed", "blank").await;

    // "Keep running", with bad input refused and nothing changed.
    let path = format!("/api/workspaces/{kept}");
    for bad in [
        json!({"keepRunning": "yes"}),
        json!({"keep": true}),
        json!([1]),
    ] {
        let (status, body) = s.json("PATCH", &path, Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, _) = s
        .json(
            "PATCH",
            "/api/workspaces/nope",
            Some(json!({"keepRunning": true})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, view) = s
        .json("PATCH", &path, Some(json!({"keepRunning": true})))
        .await;
    assert_eq!(
        (status, view["keepRunning"].as_bool()),
        (200, Some(true)),
        "{view}"
    );

    for id in [&idle, &kept, &browsed] {
        let (status, view) = s
            .json("POST", &format!("/api/workspaces/{id}/start"), None)
            .await;
        assert_eq!((status, state(&view)), (200, "running"), "{view}");
    }
    let control = s.control(&watched).await;
    // Someone reads its files now and then, with no socket open: that is activity too.
    let reading = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let reader = {
        let (port, reading) = (s.port, reading.clone());
        let path = format!("/api/workspaces/{browsed}/files/");
        tokio::spawn(async move {
            while reading.load(std::sync::atomic::Ordering::Relaxed) {
                cove_test_support::http(port, "GET", &path, None, &[]).await;
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            }
        })
    };

    let view = until(&s, &idle, "the idle stop", |v| state(v) == "stopped").await;
    assert_eq!(
        view["stateReason"], "stopped after 2 s with nobody connected",
        "{view}"
    );
    // The other two stay: one has a socket open, the other is kept running. (Both have been
    // up as long as the one that stopped; a look later they are still running.)
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    for id in [&watched, &kept, &browsed] {
        let (_, view) = s.json("GET", &format!("/api/workspaces/{id}"), None).await;
        assert_eq!(state(&view), "running", "{view}");
    }
    let (_, audit) = s.json("GET", "/api/audit?user=cove", None).await;
    let entries = audit["entries"].as_array().cloned().unwrap_or_default();
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "workspace.stop" && e["target"] == idle.as_str()),
        "{audit}"
    );

    // The last socket closes: it stops too.
    drop(control);
    until(&s, &watched, "the idle stop after the socket closed", |v| {
        state(v) == "stopped"
    })
    .await;

    reading.store(false, std::sync::atomic::Ordering::Relaxed);
    reader.await.unwrap();
    until(&s, &browsed, "the idle stop after the reads ended", |v| {
        state(v) == "stopped"
    })
    .await;

    // The kept one's runner is killed: the events feed says so without anyone asking.
    let mut feed = events(s.port).await;
    let runners = s.runner_process_pids();
    assert_eq!(
        runners.len(),
        1,
        "only the kept workspace runs: {runners:?}"
    );
    cove_test_support::signal(runners[0], libc::SIGKILL);
    let mut seen = String::new();
    let mut buffer = [0u8; 4096];
    tokio::time::timeout(WAIT, async {
        while !(seen.contains(&kept) && seen.contains("runner exited")) {
            let n = feed.read(&mut buffer).await.unwrap();
            assert!(n > 0, "the feed ended: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the dead runner in the feed within {WAIT:?}: {seen}"));

    for id in [&idle, &watched, &kept] {
        let (status, body) = s
            .json("DELETE", &format!("/api/workspaces/{id}"), None)
            .await;
        assert_eq!(status, 204, "{body}");
    }
}
