//! The perimeter, tried as an attacker would from outside: a web page in the user's browser
//! (cross-site requests, DNS rebinding), a workspace's preview page, a slow client, and
//! code in a workspace aiming at the host (its runner's socket, the host's disk and
//! descriptors). Each attempt changes nothing, and the server keeps answering.

use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use cove_test_support::{TestServer, WAIT, http, http_with_head};

use crate::{error_code, server};

async fn state(s: &TestServer, id: &str) -> String {
    let (status, body) = s.json("GET", &format!("/api/workspaces/{id}"), None).await;
    assert_eq!(status, 200, "{body}");
    body["state"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn foreign_host_names_are_refused_before_routing() {
    let s = server().await;
    // DNS rebinding: the attacker's name, re-pointed at this machine.
    for host in [
        "evil.example",
        "evil.example:8080",
        "localhost.evil.example",
        "x.localhost",
    ] {
        let (status, body) = http(s.port, "GET", "/api/workspaces", None, &[("Host", host)]).await;
        assert_eq!(
            status,
            421,
            "Host {host}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(error_code(&body), "forbidden");
        let message = String::from_utf8_lossy(&body);
        assert!(
            message.contains("--allowed-host"),
            "says what to do: {message}"
        );
    }
    for host in ["localhost", "127.0.0.1", "[::1]:1234"] {
        let (status, _) = http(s.port, "GET", "/api/workspaces", None, &[("Host", host)]).await;
        assert_eq!(status, 200, "Host {host}");
    }
    // A name given with --allowed-host works.
    let named = TestServer::start_with(
        env!("CARGO_BIN_EXE_cove"),
        &["--allowed-host", "cove.example.com"],
    )
    .await;
    let (status, _) = http(
        named.port,
        "GET",
        "/api/workspaces",
        None,
        &[("Host", "cove.example.com")],
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn cross_site_requests_change_nothing() {
    let s = server().await;
    let id = s.create_workspace("target", "blank").await;
    let (status, _) = s
        .json("POST", &format!("/api/workspaces/{id}/start"), None)
        .await;
    assert_eq!(status, 200);
    let stop = format!("/api/workspaces/{id}/stop");
    // A form or a no-cors fetch from another site: Origin and Sec-Fetch-Site give it away.
    for headers in [
        &[("Origin", "http://evil.example")][..],
        &[("Origin", "null")],
        &[("Sec-Fetch-Site", "cross-site")],
        &[
            ("Origin", "http://127.0.0.1:1"),
            ("Sec-Fetch-Site", "same-site"),
        ],
    ] {
        let (status, body) = http(s.port, "POST", &stop, None, headers).await;
        assert_eq!(
            status,
            403,
            "{headers:?}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(error_code(&body), "forbidden");
    }
    assert_eq!(
        state(&s, &id).await,
        "running",
        "the workspace was not stopped"
    );
    // The classic CSRF form: text/plain carrying JSON, even from the same origin.
    let (status, body) = http(
        s.port,
        "POST",
        "/api/workspaces",
        Some(br#"{"name":"planted"}"#),
        &[("Content-Type", "text/plain")],
    )
    .await;
    assert_eq!(status, 415, "{}", String::from_utf8_lossy(&body));
    let (status, body) = http(
        s.port,
        "POST",
        "/api/workspaces",
        Some(b"name=planted"),
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", "http://evil.example"),
        ],
    )
    .await;
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    let (_, list) = s.json("GET", "/api/workspaces", None).await;
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "nothing was created: {list}"
    );
    // Deleting from another site fails too; from cove's own page it works.
    let (status, _) = http(
        s.port,
        "DELETE",
        &format!("/api/workspaces/{id}"),
        None,
        &[("Origin", "http://evil.example")],
    )
    .await;
    assert_eq!(status, 403);
    let origin = format!("http://127.0.0.1:{}", s.port);
    let (status, body) = http(
        s.port,
        "POST",
        &stop,
        None,
        &[("Origin", &origin), ("Sec-Fetch-Site", "same-origin")],
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(state(&s, &id).await, "stopped");
}

#[tokio::test]
async fn reads_never_start_a_stopped_workspace() {
    let s = server().await;
    let id = s.create_workspace("sleepy", "python").await;
    let (status, body) = http(
        s.port,
        "GET",
        &format!("/api/workspaces/{id}/files/main.py"),
        None,
        &[],
    )
    .await;
    assert_eq!(status, 409, "{}", String::from_utf8_lossy(&body));
    assert!(
        String::from_utf8_lossy(&body).contains("/start"),
        "says how"
    );
    let (status, _, body) = http_with_head(
        s.port,
        "GET",
        &format!("/w/{id}/proxy/8000/"),
        None,
        &[("Accept", "text/html")],
    )
    .await;
    assert_eq!(status, 503);
    let page = String::from_utf8_lossy(&body);
    assert!(
        page.contains("stopped") && page.starts_with("<!doctype html>"),
        "{page}"
    );
    let (status, _, body) = http_with_head(
        s.port,
        "GET",
        "/",
        None,
        &[("Host", &format!("8000-{id}.localhost:{}", s.port))],
    )
    .await;
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert_eq!(state(&s, &id).await, "stopped", "no GET started it");
}

#[tokio::test]
async fn previews_are_their_own_origin_or_sandboxed() {
    let s = server().await;
    let id = s.create_workspace("site", "blank").await;
    let mut c = s.control(&id).await;
    let page = "<link rel=stylesheet href=/style.css><script>fetch('/api/workspaces')</script>";
    for (path, content) in [
        ("index.html", page),
        ("style.css", "body { color: rebeccapurple }"),
        ("data.json", "{\"mine\": true}"),
    ] {
        c.request("write_file", json!({"path": path, "content": content}))
            .await;
    }
    c.request(
        "run_command",
        json!({"command": "python3 -m http.server 8765 --bind 127.0.0.1", "processId": "web"}),
    )
    .await;
    c.wait_for(|m| m["type"] == "port_opened" && m["port"] == 8765)
        .await;

    // Host-based: root-absolute URLs reach the app, and the app owns the whole origin,
    // /api/ included: cove's API is never reachable under a preview host.
    let host = format!("8765-{id}.localhost:{}", s.port);
    for (path, want) in [
        ("/style.css", "rebeccapurple"),
        ("/data.json", "\"mine\""),
        ("/", "<link rel=stylesheet"),
    ] {
        let (status, head, body) =
            http_with_head(s.port, "GET", path, None, &[("Host", &host)]).await;
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 200, "{path}: {body}");
        assert!(body.contains(want), "{path}: {body}");
        assert!(
            !head.to_ascii_lowercase().contains("sandbox"),
            "a preview host is a real origin, not sandboxed: {head}"
        );
    }
    let (status, _, body) =
        http_with_head(s.port, "GET", "/api/workspaces", None, &[("Host", &host)]).await;
    assert_eq!(status, 404, "the app's own 404, not cove's list");
    assert!(!String::from_utf8_lossy(&body).contains(&id));
    let (_, info) = s.json("GET", "/api/info", None).await;
    assert_eq!(
        info["previewUrlTemplate"],
        format!("http://{{port}}-{{id}}.localhost:{}/", s.port),
        "{info}"
    );

    // Path-based: sandboxed (an opaque origin), no service worker may be installed.
    let (status, head, _) =
        http_with_head(s.port, "GET", &format!("/w/{id}/proxy/8765/"), None, &[]).await;
    assert_eq!(status, 200);
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("content-security-policy: sandbox allow-scripts")
            && !lower.contains("allow-same-origin"),
        "{head}"
    );
    let (status, _, body) = http_with_head(
        s.port,
        "GET",
        &format!("/w/{id}/proxy/8765/sw.js"),
        None,
        &[("Service-Worker", "script")],
    )
    .await;
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    // Ports are spelled one way only.
    for port in ["+8765", "08765", "%38765", "0", "99999"] {
        let (status, _) = http(s.port, "GET", &format!("/w/{id}/proxy/{port}/"), None, &[]).await;
        assert_eq!(status, 400, "port {port}");
    }
    // A port nobody listens on: a page a person can read.
    let (status, head, body) = http_with_head(
        s.port,
        "GET",
        &format!("/w/{id}/proxy/8766/"),
        None,
        &[("Accept", "text/html")],
    )
    .await;
    assert_eq!(status, 502);
    assert!(head.to_ascii_lowercase().contains("text/html"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("Nothing is listening on port 8766"));

    // cove's own pages: a strict policy; unknown paths are 404s, not the IDE's HTML.
    let (status, head, _) = http_with_head(s.port, "GET", "/", None, &[]).await;
    assert_eq!(status, 200);
    let lower = head.to_ascii_lowercase();
    for want in [
        "content-security-policy: default-src 'self'; script-src 'self';",
        "frame-ancestors 'none'",
        "x-content-type-options: nosniff",
        "x-frame-options: deny",
        "referrer-policy: no-referrer",
    ] {
        assert!(lower.contains(want), "{want}: {head}");
    }
    for path in ["/style.css", "/data.json", "/w/a/b", "/favicon.ico"] {
        let (status, body) = http(s.port, "GET", path, None, &[]).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(error_code(&body), "not_found", "{path}");
    }
}

#[tokio::test]
async fn slow_clients_are_cut_off_while_others_are_served() {
    let s =
        TestServer::start_with(env!("CARGO_BIN_EXE_cove"), &["--header-timeout-secs", "2"]).await;
    // Slowloris: many connections that never finish their request head.
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", s.port))
            .await
            .unwrap();
        conn.write_all(b"GET /api/workspaces HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(conn);
    }
    let (status, _) = s.json("GET", "/api/workspaces", None).await;
    assert_eq!(status, 200, "others are served meanwhile");
    // Each slow connection is closed by the server once its head is overdue.
    for conn in &mut slow {
        let mut buf = [0u8; 1024];
        let ended = tokio::time::timeout(WAIT, async {
            loop {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {} // a 408 answer, then the close
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "a slow connection was left open");
    }
    let (status, _) = s.json("GET", "/api/workspaces", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_runner_socket_is_out_of_the_workspaces_reach() {
    if !cove_test_support::needs_sandbox(
        "check the sandbox's empty /run and the server's checks of a root-owned socket",
    ) {
        return;
    }
    let s = server().await;
    let id = s.create_workspace("socket", "blank").await;
    let mut c = s.control(&id).await;
    // Inside: there is no runner socket to replace, and nowhere under /run to write.
    let (out, code) = c
        .sh("ls -la /run; ls /run/cove; touch /run/x; ln -s /etc /run/cove 2>&1")
        .await;
    assert_ne!(code, 0, "{out}");
    assert!(!out.contains("runner.sock"), "{out}");
    // Outside: the server bound the socket itself, in a directory only it can write.
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    let run = s.data_dir.path().join("run");
    assert_eq!(
        std::fs::metadata(&run).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let socket = run.join(format!("{id}.sock"));
    let meta = std::fs::symlink_metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket() && meta.uid() == 0, "{meta:?}");
    drop(c);

    // Should anything ever replace it, the server refuses to follow it and says why: a
    // link to another socket, and a socket answered by someone other than the runner.
    let decoy_path = s.data_dir.path().join("decoy.sock");
    let decoy = std::os::unix::net::UnixListener::bind(&decoy_path).unwrap();
    decoy.set_nonblocking(true).unwrap();
    let real = run.join(format!("{id}.sock.real"));
    std::fs::rename(&socket, &real).unwrap();
    std::os::unix::fs::symlink(&decoy_path, &socket).unwrap();
    let (status, body) = http(
        s.port,
        "GET",
        &format!("/api/workspaces/{id}/files/README.md"),
        None,
        &[],
    )
    .await;
    assert!(
        status >= 500,
        "{status}: {}",
        String::from_utf8_lossy(&body)
    );
    assert!(decoy.accept().is_err(), "the link was not followed");
    std::fs::remove_file(&socket).unwrap();
    let impostor = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600)).unwrap();
    impostor.set_nonblocking(true).unwrap();
    let (status, _) = http(
        s.port,
        "GET",
        &format!("/api/workspaces/{id}/files/README.md"),
        None,
        &[],
    )
    .await;
    assert!(
        status >= 500,
        "an impostor (uid 0, not the runner) is refused"
    );
    let log = std::fs::read_to_string(s.data_dir.path().join("server.log")).unwrap();
    assert!(
        log.contains("not a socket") && log.contains("not the runner's uid"),
        "the log says why: {}",
        log.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
    drop(impostor);
    std::fs::remove_file(&socket).unwrap();
    std::fs::rename(&real, &socket).unwrap();
    let (status, _) = http(
        s.port,
        "GET",
        &format!("/api/workspaces/{id}/files/README.md"),
        None,
        &[],
    )
    .await;
    assert_eq!(status, 200, "the real runner answers again");
}

#[tokio::test]
async fn the_hosts_disk_and_descriptors_stay_out_of_reach() {
    if !cove_test_support::needs_sandbox(
        "check what a sandbox hides of the host and its capped log",
    ) {
        return;
    }
    // A descriptor `cove serve` inherits from whoever started it (here: this test) must
    // not reach the workspace.
    let marker = tempfile::NamedTempFile::new().unwrap();
    let path = std::ffi::CString::new(marker.path().to_str().unwrap()).unwrap();
    // SAFETY: a plain open without O_CLOEXEC, so that the server inherits it.
    let leaked = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
    assert!(leaked > 2);
    let s = server().await;
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(leaked) };
    let id = s.create_workspace("disk", "blank").await;
    let mut c = s.control(&id).await;
    let data_dir = s.data_dir.path().display().to_string();
    let (out, _) = c
        .sh("for f in /proc/[0-9]*/fd/*; do readlink $f; done 2>/dev/null; true")
        .await;
    assert!(!out.contains(&data_dir), "a host path shows: {out}");
    for pid in s.runner_pids() {
        // The sandbox's own processes, seen from the host.
        let mut pids = vec![pid];
        pids.extend(cove_test_support::descendants(pid));
        for pid in pids {
            for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
                .into_iter()
                .flatten()
                .flatten()
            {
                let target = std::fs::read_link(fd.path()).unwrap_or_default();
                assert_ne!(
                    target,
                    marker.path(),
                    "process {pid} holds the inherited file"
                );
            }
        }
    }

    // The runner's log on the host stays small whatever the workspace makes it print: a
    // flood of ignored control frames, each logged at debug level.
    let (mut raw, _) = s.raw(&id, "main", "").await;
    let frame = format!("{{\"type\":\"nonsense\",\"pad\":\"{}\"}}", "z".repeat(400));
    for _ in 0..40_000 {
        raw.send_text(&frame).await;
    }
    let logs = s.data_dir.path().join("logs");
    let total = || {
        std::fs::read_dir(&logs)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&id))
            .map(|e| e.metadata().unwrap().len())
            .sum::<u64>()
    };
    // Wait until the runner has taken every frame (a ping answered after them).
    raw.send_text(r#"{"type":"resize","cols":81,"rows":24}"#)
        .await;
    let deadline = std::time::Instant::now() + WAIT;
    while c.request("list_terminals", json!({})).await["terminals"][0]["cols"] != 81 {
        assert!(
            std::time::Instant::now() < deadline,
            "the frames were taken"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bound = 2 * cove_sandbox::log::MAX_FILE_BYTES + 64 * 1024;
    assert!(
        total() <= bound,
        "{} bytes of logs for one workspace",
        total()
    );
    assert!(
        logs.join(format!("{id}.log.1")).exists(),
        "the flood (about 17 MB) was rotated, not kept"
    );
}
