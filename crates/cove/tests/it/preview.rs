//! Port preview: `/w/{id}/proxy/{port}/` and `/absproxy/`, HTTP and WebSocket, with cove's
//! credentials kept away from the workspace's server.

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::server;

/// An HTTP server that answers with the path and headers it saw, and a WebSocket echo on
/// `/ws`; standard library only. Prints its port.
pub(crate) const ECHO_SERVER: &str = r#"
import base64, hashlib, http.server, json, socketserver, struct
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.headers.get('Upgrade', '').lower() == 'websocket':
            key = self.headers['Sec-WebSocket-Key']
            accept = base64.b64encode(hashlib.sha1((key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').encode()).digest()).decode()
            self.send_response(101)
            self.send_header('Upgrade', 'websocket'); self.send_header('Connection', 'Upgrade')
            self.send_header('Sec-WebSocket-Accept', accept); self.end_headers(); self.wfile.flush()
            head = self.rfile.read(2); n = head[1] & 127
            if n == 126: n = struct.unpack('>H', self.rfile.read(2))[0]
            mask = self.rfile.read(4); data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(n)))
            reply = b'echo:' + data
            self.wfile.write(bytes([0x81, len(reply)]) + reply); self.wfile.flush()
            return
        body = json.dumps({'path': self.path, 'headers': dict(self.headers)}).encode()
        self.send_response(200); self.send_header('Content-Type', 'application/json')
        self.send_header('Set-Cookie', 'cove_session=planted; Path=/'); self.send_header('Set-Cookie', 'app=1; Path=/')
        self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
s = socketserver.ThreadingTCPServer(('127.0.0.1', 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

#[tokio::test]
async fn preview_relays_http_and_websockets_without_coves_credentials() {
    let s = server().await;
    let id = s.create_workspace("preview", "static-web").await;
    let mut c = s.control(&id).await;
    c.request(
        "run_command",
        json!({"command": "python3", "args": ["-u", "-c", ECHO_SERVER], "processId": "echo"}),
    )
    .await;
    let out = c
        .wait_for(|m| m["type"] == "process_output" && m["processId"] == "echo")
        .await;
    let port: u16 = out["data"].as_str().unwrap().trim().parse().unwrap();

    let headers = [
        ("Cookie", "theme=dark; cove_session=secret-session"),
        ("Authorization", "Bearer secret-token"),
    ];
    let (status, body) = cove_test_support::http(
        s.port,
        "GET",
        &format!("/w/{id}/proxy/{port}/some/page?q=1"),
        None,
        &headers,
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        seen["path"], "/some/page?q=1",
        "proxy strips the prefix: {seen}"
    );
    let text = seen["headers"].to_string();
    assert!(
        !text.contains("secret-session") && !text.contains("secret-token"),
        "cove's credentials never reach the workspace: {text}"
    );
    assert!(
        text.contains("theme=dark"),
        "the app's own cookies do: {text}"
    );

    let (status, body) = cove_test_support::http(
        s.port,
        "GET",
        &format!("/w/{id}/absproxy/{port}/base/x"),
        None,
        &[],
    )
    .await;
    assert_eq!(status, 200);
    let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        seen["path"],
        format!("/w/{id}/absproxy/{port}/base/x"),
        "absproxy keeps the prefix"
    );

    // The workspace's server cannot set cove's session cookie.
    let raw = raw_head(s.port, &format!("/w/{id}/proxy/{port}/")).await;
    assert!(
        raw.contains("app=1") && !raw.contains("cove_session=planted"),
        "{raw}"
    );
    // Without the trailing slash: redirected so relative links work.
    let raw = raw_head(s.port, &format!("/w/{id}/proxy/{port}")).await;
    assert!(
        raw.starts_with("HTTP/1.1 308") && raw.contains(&format!("/w/{id}/proxy/{port}/")),
        "{raw}"
    );

    // A WebSocket inside the workspace, through the preview.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!(
        "ws://127.0.0.1:{}/w/{id}/proxy/{port}/ws",
        s.port
    ))
    .await
    .unwrap();
    ws.send(Message::Text("hello".into())).await.unwrap();
    let reply = tokio::time::timeout(cove_test_support::WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(reply.into_text().unwrap().as_str(), "echo:hello");

    // Nothing on a port: a clear error; a port that is not a number: 400.
    let (status, body) = s.json("GET", &format!("/w/{id}/proxy/1/"), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("unavailable")),
        "{body}"
    );
    let (status, _) = s.json("GET", &format!("/w/{id}/proxy/http/"), None).await;
    assert_eq!(status, 400);
    let (status, _) = s.json("GET", &format!("/w/nope/proxy/{port}/"), None).await;
    assert_eq!(status, 404);
}

async fn raw_head(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(cove_test_support::WAIT, stream.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&out).to_string()
}

/// A runner on TCP (how a Kubernetes pod serves): every request needs its token, and a
/// preview never hands that token on to the workspace's own server.
#[tokio::test]
async fn a_tcp_runner_wants_its_token_and_keeps_it_from_previews() {
    let root = tempfile::tempdir().unwrap();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let token = "runner-token-0123456789abcdef";
    let mut runner = tokio::process::Command::new(env!("CARGO_BIN_EXE_cove"))
        .args(["runner", "--workspace-id", "tcp-runner", "--root"])
        .arg(root.path())
        .args(["--listen-tcp", &format!("127.0.0.1:{port}")])
        .env("COVE_RUNNER_TOKEN", token)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut app = tokio::process::Command::new("python3")
        .args(["-u", "-c", ECHO_SERVER])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let app_port: u16 = {
        use tokio::io::AsyncBufReadExt;
        let mut line = String::new();
        tokio::io::BufReader::new(app.stdout.take().unwrap())
            .read_line(&mut line)
            .await
            .unwrap();
        line.trim().parse().unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the runner never listened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let path = format!("/ports/{app_port}/page");
    for wrong in [
        None,
        Some("Bearer nope"),
        Some("runner-token-0123456789abcdef"),
    ] {
        let headers: Vec<(&str, &str)> = wrong.iter().map(|w| ("Authorization", *w)).collect();
        let (status, body) = cove_test_support::http(port, "GET", &path, None, &headers).await;
        assert_eq!(status, 401, "{wrong:?}: {}", String::from_utf8_lossy(&body));
    }
    let bearer = format!("Bearer {token}");
    let (status, body) =
        cove_test_support::http(port, "GET", &path, None, &[("Authorization", &bearer)]).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(seen["path"], "/page", "{seen}");
    assert!(
        !seen["headers"].to_string().contains(token),
        "the runner's token reached the workspace's server: {seen}"
    );
    cove_test_support::signal(runner.id().unwrap(), libc::SIGTERM);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), runner.wait()).await;
    let _ = app.start_kill();
    let _ = app.wait().await;
}
