//! Bad input gets a clear error (in the JSON shape) and changes nothing; slow clients cannot
//! grow memory.

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use cove_test_support::{TestServer, http};

use crate::{error_code, server};

#[tokio::test]
async fn malformed_frames_get_errors_and_the_socket_stays_open() {
    let s = server().await;
    let id = s.create_workspace("malformed", "blank").await;
    let mut c = s.control(&id).await;
    let cases = [
        ("{not json", "not valid JSON"),
        ("[]", "JSON object"),
        (
            r#"{"type":"teleport","requestId":"q1"}"#,
            "unknown message type",
        ),
        (r#"{"type":"read_file","payload":{}}"#, "missing field"),
        (
            r#"{"type":"resize_terminal","payload":{"terminalId":"t","cols":"wide","rows":2}}"#,
            "invalid type",
        ),
        (
            r#"{"type":"create_terminal","payload":{"terminalId":"../../etc"}}"#,
            "terminalId must be",
        ),
        (
            r#"{"type":"create_terminal","payload":{"cols":0,"rows":0}}"#,
            "between 1 and 1000",
        ),
        (
            r#"{"type":"run_command","payload":{"command":""}}"#,
            "must not be empty",
        ),
        (
            r#"{"type":"run_command","payload":{"command":"true","cwd":"/no/such/dir"}}"#,
            "not a directory",
        ),
        (
            r#"{"type":"run_command","payload":{"command":"true","env":{"A=B":"x"}}}"#,
            "bad environment variable",
        ),
        (
            r#"{"type":"write_file","payload":{"path":"x","content":"@@@","encoding":"base64"}}"#,
            "base64",
        ),
        (
            r#"{"type":"stop_process","payload":{"processId":"p","signal":"FOO"}}"#,
            "unknown signal",
        ),
    ];
    for (frame, needle) in cases {
        c.send_text(frame).await;
        let error = c.wait_for(|m| m["type"] == "error").await;
        assert!(
            error["message"].as_str().unwrap().contains(needle),
            "{frame}: {error}"
        );
        assert!(error["code"].is_string());
    }
    // The requestId of a bad request comes back so the client can match the error.
    let reply = c.request("no_such_type", json!({})).await;
    assert_eq!(reply["code"], "bad_request");
    // A binary frame on the control socket.
    c.ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    let error = c.wait_for(|m| m["type"] == "error").await;
    assert!(
        error["message"].as_str().unwrap().contains("text frames"),
        "{error}"
    );
    // A 10 MiB frame: too large for a file, answered, nothing written, socket still open.
    let big = "x".repeat(10 * 1024 * 1024);
    let reply = c
        .request("write_file", json!({"path": "big.txt", "content": big}))
        .await;
    assert_eq!(
        reply["code"],
        "too_large",
        "{}",
        reply.to_string().chars().take(200).collect::<String>()
    );
    assert_ne!(c.sh("test -e big.txt").await.1, 0, "nothing written");
    let reply = c.request("ping", json!({})).await;
    assert_eq!(reply["type"], "pong", "the socket survived every bad frame");
    // Over the message limit (16 MiB): the socket is closed with an explanation.
    let huge = format!(
        r#"{{"type":"ping","payload":{{"pad":"{}"}}}}"#,
        "y".repeat(17 * 1024 * 1024)
    );
    // The runner may cut the connection while the frame is still being sent.
    let _ = c.ws.send(Message::Text(huge.into())).await;
    let mut saw_close_or_error = false;
    while let Ok(Some(message)) = tokio::time::timeout(cove_test_support::WAIT, c.ws.next()).await {
        match message {
            Ok(Message::Text(t)) if t.contains("too_large") => saw_close_or_error = true,
            Ok(Message::Close(_)) | Err(_) => {
                saw_close_or_error = true;
                break;
            }
            _ => {}
        }
    }
    assert!(saw_close_or_error);
    // And the workspace still serves new sockets.
    let mut again = s.control(&id).await;
    assert_eq!(again.request("ping", json!({})).await["type"], "pong");
}

#[tokio::test]
async fn rest_errors_are_json_and_change_nothing() {
    let s = server().await;
    let (status, body) = s
        .json(
            "POST",
            "/api/workspaces",
            Some(json!({"name": "", "template": "blank"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );
    let (status, body) = s
        .json(
            "POST",
            "/api/workspaces",
            Some(json!({"name": "x", "template": "cobol"})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("python"),
        "lists the known templates: {body}"
    );
    let (status, body) = cove_test_support::http(
        s.port,
        "POST",
        "/api/workspaces",
        Some(b"{oops"),
        &[("Content-Type", "application/json")],
    )
    .await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    // A body that does not say it is JSON (what a cross-site form sends) is refused.
    let (status, body) = s
        .http("POST", "/api/workspaces", Some(br#"{"name":"plain"}"#))
        .await;
    assert_eq!(status, 415, "{}", String::from_utf8_lossy(&body));
    let (status, body) = s
        .json("POST", "/api/workspaces", Some(json!({"name": 5})))
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = s
        .json("POST", "/api/workspaces", Some(json!({"name": "twice"})))
        .await;
    assert_eq!(status, 201);
    let (status, body) = s
        .json("POST", "/api/workspaces", Some(json!({"name": "twice"})))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("conflict"))
    );
    let (status, body) = s.json("GET", "/api/workspaces/unknown", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, body) = s.json("GET", "/api/nothing-here", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, list) = s.json("GET", "/api/workspaces", None).await;
    assert_eq!(
        (status, list.as_array().unwrap().len()),
        (200, 1),
        "only the one good create happened: {list}"
    );
    let (status, templates) = s.json("GET", "/api/templates", None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = templates
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    // By name: the catalog is kept sorted, whoever published what when.
    assert_eq!(names, ["blank", "node", "python", "static-web"]);
    let (status, health) = s.json("GET", "/healthz", None).await;
    assert_eq!((status, health["status"].as_str()), (200, Some("alive")));
    assert!(health["lastHeartbeat"].as_u64().unwrap() > 1_700_000_000_000);
    let (status, health) = s.json("GET", "/health", None).await;
    assert_eq!(
        (
            status,
            health["success"].as_bool(),
            health["status"].as_str()
        ),
        (200, Some(true), Some("healthy"))
    );
    let (status, metrics) = s.http("GET", "/metrics", None).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&metrics).contains("cove_workspaces{state=\"stopped\"} 1"));
}

#[tokio::test]
async fn cross_origin_websockets_are_refused() {
    let s = server().await;
    let id = s.create_workspace("origin", "blank").await;
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://127.0.0.1:{}/api/workspaces/{id}/ws",
            s.port
        ))
        .unwrap();
    request
        .headers_mut()
        .insert("Origin", "https://evil.example".parse().unwrap());
    let err = tokio_tungstenite::connect_async(request).await.unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://127.0.0.1:{}/api/workspaces/{id}/ws",
            s.port
        ))
        .unwrap();
    request.headers_mut().insert(
        "Origin",
        format!("http://127.0.0.1:{}", s.port).parse().unwrap(),
    );
    assert!(
        tokio_tungstenite::connect_async(request).await.is_ok(),
        "same origin is fine"
    );
}

/// A client that stops reading while `yes` floods its terminal: the producer is held back
/// and neither the server nor the runner grows.
#[tokio::test]
async fn slow_reader_under_yes_keeps_memory_bounded() {
    let s = server().await;
    let id = s.create_workspace("flood", "blank").await;
    let (mut raw, _) = s.raw(&id, "flood", "").await;
    raw.send(b"echo ready-\"\"1\n").await;
    raw.until("ready-1").await;
    let runner = s.runner_process_pids()[0];
    let (server_before, runner_before) = (
        cove_test_support::rss_kib(s.pid()),
        cove_test_support::rss_kib(runner),
    );
    raw.send(b"yes\n").await;
    // Also a JSON client that never reads.
    let mut json_client = s.control(&id).await;
    json_client
        .send("attach_terminal", json!({"terminalId": "flood"}))
        .await;
    let mut peak = (0, 0);
    for _ in 0..15 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        peak.0 = peak.0.max(cove_test_support::rss_kib(s.pid()));
        peak.1 = peak.1.max(cove_test_support::rss_kib(runner));
    }
    // Growth bounded by buffers (scrollback 1 MiB, socket and queue buffers), not by output.
    assert!(
        peak.0 < server_before + 16 * 1024,
        "server grew from {server_before} to {} KiB",
        peak.0
    );
    assert!(
        peak.1 < runner_before + 24 * 1024,
        "runner grew from {runner_before} to {} KiB",
        peak.1
    );
    // Reading again, the client catches up on a consistent stream and Ctrl+C stops the flood.
    raw.send(b"\x03").await;
    raw.send(b"echo stopped-\"\"1\n").await;
    let text = raw.until("stopped-1").await;
    assert!(text.contains("y\r\ny\r\n"));
}

/// Logs written to files (the server's, a runner's) are plain text: colour codes belong to a
/// terminal, and in a file they only get in the way of grep and less.
#[tokio::test]
async fn log_files_carry_no_colour_codes() {
    let s = server().await;
    let id = s.create_workspace("plain-logs", "blank").await;
    let mut c = s.control(&id).await;
    assert_eq!(c.request("ping", json!({})).await["type"], "pong");
    let mut logs = vec![s.data_dir.path().join("server.log")];
    logs.extend(
        std::fs::read_dir(s.data_dir.path().join("logs"))
            .expect("the runners' log folder")
            .flatten()
            .map(|e| e.path()),
    );
    assert!(
        logs.len() >= 2,
        "the server's and the runner's logs: {logs:?}"
    );
    for log in logs {
        // A sandboxed runner's output reaches its file through a pipe, a moment later.
        let deadline = std::time::Instant::now() + cove_test_support::WAIT;
        let text = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if !text.is_empty() {
                break text;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} stays empty",
                log.display()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert!(
            !text.contains("\x1b["),
            "{} has colour codes: {}",
            log.display(),
            text.lines().next().unwrap_or_default()
        );
    }
}

#[tokio::test]
async fn errors_are_json_and_names_are_plain() {
    let s = TestServer::start_with(env!("CARGO_BIN_EXE_cove"), &["--max-file-size", "1024"]).await;
    let id = s.create_workspace("plain", "blank").await;
    let (status, _) = s
        .json("POST", &format!("/api/workspaces/{id}/start"), None)
        .await;
    assert_eq!(status, 200);
    let (status, body) = http(
        s.port,
        "PUT",
        &format!("/api/workspaces/{id}/files/big.bin"),
        Some(&[7u8; 4096]),
        &[],
    )
    .await;
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&body));
    assert_eq!(error_code(&body), "too_large");
    // Refused from its declared length, before the body is sent (curl's Expect: 100-continue).
    let (status, body) = http(
        s.port,
        "PUT",
        &format!("/api/workspaces/{id}/files/big2.bin"),
        Some(&[7u8; 4096]),
        &[("Expect", "100-continue")],
    )
    .await;
    assert_eq!((status, error_code(&body).as_str()), (413, "too_large"));
    // Without a declared length (chunked), cut at the limit on its way through: still 413,
    // and nothing is written.
    let path = format!("/api/workspaces/{id}/files/big3.bin");
    let answer = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", s.port))
            .await
            .unwrap();
        let head = format!(
            "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            s.port
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        for _ in 0..4 {
            // The server may answer and close before it has read every chunk.
            if tcp.write_all(b"400\r\n").await.is_err()
                || tcp.write_all(&[7u8; 1024]).await.is_err()
                || tcp.write_all(b"\r\n").await.is_err()
            {
                break;
            }
        }
        let _ = tcp.write_all(b"0\r\n\r\n").await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            tcp.read_to_end(&mut answer),
        )
        .await;
        String::from_utf8_lossy(&answer).into_owned()
    };
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("too_large"), "{answer}");
    let (status, _) = http(s.port, "GET", &path, None, &[]).await;
    assert_eq!(status, 404, "a refused upload leaves nothing behind");
    // A method a route does not take: the JSON shape too (axum answers 405 with no body).
    let (status, body) = http(s.port, "DELETE", "/api/templates", None, &[]).await;
    assert_eq!(status, 405);
    assert_eq!(error_code(&body), "bad_request");
    for bad in [
        ".",
        "..",
        "a\u{200b}",
        "\u{202e}evil",
        "-x",
        &"n".repeat(65),
    ] {
        let (status, body) = s
            .json("POST", "/api/workspaces", Some(json!({ "name": bad })))
            .await;
        assert_eq!(status, 400, "{bad:?}: {body}");
    }
    let (status, _) = s
        .json("POST", "/api/workspaces", Some(json!({"name": "py-demo"})))
        .await;
    assert_eq!(status, 201);
    let (status, body) = s
        .json("POST", "/api/workspaces", Some(json!({"name": "PY-DEMO"})))
        .await;
    assert_eq!(status, 409, "names ignore case: {body}");
    let (status, body) = s.json("GET", "/api/workspaces/Py-Demo", None).await;
    assert_eq!((status, body["name"].as_str()), (200, Some("py-demo")));
}
