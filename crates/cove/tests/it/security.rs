//! Findings of a security review, each reproduced against the real binary: a stop nobody
//! waits for, a runner that its own workspace can ptrace, an oversized control frame, and
//! file downloads a browser could render. The first two check the sandbox and need root
//! (see `cove_test_support::needs_sandbox`); the others run anywhere.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use cove_test_support::{Control, TestServer, WAIT};

/// Runs `command` as a process and returns (stdout, stderr, exit), or `None` when it cannot
/// start (a workspace at its process limit refuses new programs).
async fn try_run(c: &mut Control, id: &str, command: &str) -> Option<(String, String, Value)> {
    let started = c
        .request("run_command", json!({"command": command, "processId": id}))
        .await;
    if started["type"] != "process_started" {
        return None;
    }
    Some(c.process_until_exit(id).await)
}

/// How many processes carry `<var>=<id>` in their environment, counted from inside the
/// workspace (the counting command carries its own id, not that one).
async fn marked(c: &mut Control, check: &str, var: &str, id: &str) -> Option<usize> {
    let command = format!("grep -lszxF {var}={id} /proc/[0-9]*/environ | wc -l");
    let (out, _, exit) = try_run(c, check, &command).await?;
    (exit["exitCode"] == 0).then(|| out.trim().parse().ok())?
}

async fn pids(c: &mut Control) -> u64 {
    let stats = c.request("stats", json!({})).await;
    stats["pids"]
        .as_u64()
        .unwrap_or_else(|| panic!("stats: {stats}"))
}

/// Processes (not threads) in the workspace's pids group, as the host sees it.
fn workspace_processes(id: &str) -> usize {
    ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"]
        .iter()
        .find_map(|root| std::fs::read_to_string(format!("{root}/cove-{id}/cgroup.procs")).ok())
        .expect("the workspace's pids group")
        .lines()
        .count()
}

/// A stop (or a terminal's close) the client does not wait for still ends the program and
/// everything it started, even what left its process group or was orphaned, and `stats`
/// counts what the workspace's cgroup counts.
#[tokio::test]
async fn a_stop_nobody_waits_for_still_ends_the_whole_tree() {
    if !cove_test_support::needs_sandbox("count a workspace's processes in its cgroup") {
        return;
    }
    let args = ["--pids-limit", "64", "--network", "none"];
    let s = TestServer::start_with(env!("CARGO_BIN_EXE_cove"), &args).await;
    let id = s.create_workspace("bomb", "blank").await;
    let mut c = s.control(&id).await;
    // Nothing runs yet: the sandbox's processes, the runner and its threads.
    let mut baseline = u64::MAX;
    for _ in 0..3 {
        baseline = baseline.min(pids(&mut c).await);
    }
    let processes = workspace_processes(&id);
    drop(c);

    let escape = "for i in 1 2 3; do setsid sleep 300 & done; sleep 300";
    let trees = [
        // Orphans of a program that already exited belong to PID 1, not to the runner.
        (
            "process",
            "orphans",
            "for i in 1 2 3 4 5; do setsid sleep 300 & done",
        ),
        (
            "process",
            "bomb",
            "bomb() { bomb | bomb & }; bomb; sleep 30",
        ),
        ("process", "escape", escape),
        ("terminal", "term", escape),
    ];
    for (kind, program, command) in trees {
        let mut c = s.control(&id).await;
        let (start, stop, var, list, key) = match kind {
            "process" => (
                json!({"type": "run_command", "payload": {"command": command, "processId": program}}),
                json!({"type": "stop_process", "payload": {"processId": program}}),
                "COVE_PROCESS_ID",
                "processes",
                "processId",
            ),
            _ => (
                json!({"type": "create_terminal", "payload": {"command": command, "terminalId": program}}),
                json!({"type": "close_terminal", "payload": {"terminalId": program}}),
                "COVE_TERMINAL_ID",
                "terminals",
                "terminalId",
            ),
        };
        let started = c
            .request(start["type"].as_str().unwrap(), start["payload"].clone())
            .await;
        assert!(
            matches!(
                started["type"].as_str(),
                Some("process_started" | "terminal_created")
            ),
            "{started}"
        );
        let deadline = Instant::now() + WAIT;
        while workspace_processes(&id) < processes + 4 {
            assert!(Instant::now() < deadline, "{program} never got going");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if program != "bomb" {
            // Four or five more processes, none of them going away: stats counts them all
            // (and the runner's threads besides).
            let counted = workspace_processes(&id) as u64;
            let now = pids(&mut c).await;
            assert!(
                now >= counted,
                "{program}: stats says {now} pids, the cgroup holds {counted} processes"
            );
        }
        // Stop, and leave at once, as a script or a closing browser tab does.
        c.send_text(&stop.to_string()).await;
        let _ = c.ws.close(None).await;
        drop(c);

        let mut c = s.control(&id).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = workspace_processes(&id);
            let now = pids(&mut c).await;
            let echoed = try_run(&mut c, "echo", "echo ok").await;
            let marked = marked(&mut c, "check", var, program).await;
            // A stopped process is listed as not running; a closed terminal is forgotten.
            let listed = c.request(&format!("list_{list}"), json!({})).await;
            let entry = listed[list]
                .as_array()
                .and_then(|all| all.iter().find(|p| p[key] == program))
                .cloned();
            let done = match kind {
                "process" => entry.as_ref().is_some_and(|p| p["running"] == false),
                _ => entry.is_none(),
            };
            // The runner's blocking threads come and go: they are not what is looked for.
            if left == processes
                && now <= baseline + 2
                && echoed
                    .as_ref()
                    .is_some_and(|(out, _, _)| out.trim() == "ok")
                && marked == Some(0)
                && done
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{program}: {left} processes (baseline {processes}), {now} pids (baseline \
                 {baseline}), echo {echoed:?}, {marked:?} marked, listed {entry:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The runner runs as the workspace's user; its programs must not be able to take it over
/// (and so run programs outside the CPU limit, or read what it holds).
#[tokio::test]
async fn the_workspace_cannot_ptrace_or_read_its_runner() {
    if !cove_test_support::needs_sandbox(
        "check that a sandboxed runner is not dumpable by its own uid",
    ) {
        return;
    }
    let s = TestServer::start_with(env!("CARGO_BIN_EXE_cove"), &["--network", "none"]).await;
    let id = s.create_workspace("ptrace", "blank").await;
    let mut c = s.control(&id).await;
    let script = r#"
import ctypes, os
runner = None
for d in os.listdir('/proc'):
    if d.isdigit():
        try:
            args = open('/proc/%s/cmdline' % d, 'rb').read().split(b'\0')
        except OSError:
            continue
        if len(args) > 1 and args[1] == b'runner':
            runner = int(d)
print('runner', runner)
libc = ctypes.CDLL(None, use_errno=True)
L, P = ctypes.c_long, ctypes.c_void_p
if libc.ptrace(L(16), L(runner), P(0), P(0)) == 0:
    os.waitpid(runner, 0x40000000)
    libc.ptrace(L(17), L(runner), P(0), P(0))
    print('attach ok')
else:
    print('attach errno', ctypes.get_errno())
for name in ['mem', 'environ', 'fd']:
    try:
        if name == 'fd':
            os.listdir('/proc/%d/fd' % runner)
        else:
            open('/proc/%d/%s' % (runner, name), 'rb').read(1)
        print(name, 'ok')
    except OSError as e:
        print(name, 'errno', e.errno)
"#;
    let written = c
        .request("write_file", json!({"path": "probe.py", "content": script}))
        .await;
    assert_eq!(written["type"], "file_written", "{written}");
    let (out, err, exit) = try_run(&mut c, "ptrace", "python3 probe.py")
        .await
        .expect("python starts");
    let out = out + &err;
    assert_eq!(exit["exitCode"], 0, "{out}");
    assert!(!out.contains("runner None"), "{out}");
    for line in [
        "attach errno 1",
        "mem errno 13",
        "environ errno 13",
        "fd errno 13",
    ] {
        assert!(out.contains(line), "{line:?} in {out}");
    }
    assert_eq!(c.request("ping", json!({})).await["type"], "pong");
    // The workspace's own programs stay debuggable by the workspace.
    let (out, _, _) = try_run(
        &mut c,
        "own",
        "sleep 30 & python3 -c \"import ctypes,os,sys; l=ctypes.CDLL(None,use_errno=True); \
         L=ctypes.c_long; p=int(sys.argv[1]); r=l.ptrace(L(16),L(p),ctypes.c_void_p(0),ctypes.c_void_p(0)); \
         print('own', r, ctypes.get_errno())\" $!; kill -9 $!",
    )
    .await
    .expect("starts");
    assert!(out.contains("own 0 0"), "{out}");
}

/// A control message over the runner's limit (16 MiB) is answered with `too_large` and a
/// close frame with code 1009, not a dropped connection.
#[tokio::test]
async fn an_oversized_control_message_is_refused_with_close_1009() {
    let s = TestServer::start_with(env!("CARGO_BIN_EXE_cove"), &["--network", "none"]).await;
    let id = s.create_workspace("big", "blank").await;
    let c = s.control(&id).await;
    let (mut sink, mut stream) = c.ws.split();
    let big = "x".repeat(17 * 1024 * 1024);
    // The runner stops reading at the frame's header, so the send may never complete.
    let sending = tokio::spawn(async move {
        let _ = sink.send(Message::Text(big.into())).await;
    });
    let (mut refused, mut close) = (None, None);
    let _ = tokio::time::timeout(WAIT, async {
        while let Some(Ok(message)) = stream.next().await {
            match message {
                Message::Text(text) => {
                    let m: Value = serde_json::from_str(&text).expect("JSON");
                    if m["type"] == "error" {
                        refused = Some(m);
                    }
                }
                Message::Close(frame) => {
                    close = Some(frame.map(|f| u16::from(f.code)));
                    return;
                }
                _ => {}
            }
        }
    })
    .await;
    sending.abort();
    let refused = refused.expect("an error message");
    assert_eq!(refused["code"], "too_large", "{refused}");
    assert_eq!(close, Some(Some(1009)), "a close frame with code 1009");
    // The workspace keeps serving new sockets.
    let mut c = s.control(&id).await;
    assert_eq!(c.request("ping", json!({})).await["type"], "pong");
}

/// The raw terminal socket takes messages of at most 1 MiB: a larger one is refused with an
/// `error` and close code 1009, not a dropped connection; the terminal keeps running.
#[tokio::test]
async fn an_oversized_terminal_message_is_refused_with_close_1009() {
    let s = TestServer::start_with(env!("CARGO_BIN_EXE_cove"), &["--network", "none"]).await;
    let id = s.create_workspace("bigraw", "blank").await;
    let (raw, _) = s.raw(&id, "t", "").await;
    let (mut sink, mut stream) = raw.ws.split();
    let sending = tokio::spawn(async move {
        let _ = sink.send(Message::Binary(vec![b'x'; 2 << 20].into())).await;
    });
    let (mut refused, mut close) = (None, None);
    let _ = tokio::time::timeout(WAIT, async {
        while let Some(Ok(message)) = stream.next().await {
            match message {
                Message::Text(text) => {
                    let m: Value = serde_json::from_str(&text).expect("JSON");
                    if m["type"] == "error" {
                        refused = Some(m);
                    }
                }
                Message::Close(frame) => {
                    close = Some(frame.map(|f| u16::from(f.code)));
                    return;
                }
                _ => {}
            }
        }
    })
    .await;
    sending.abort();
    let refused = refused.expect("an error message");
    assert_eq!(refused["code"], "too_large", "{refused}");
    assert_eq!(close, Some(Some(1009)), "a close frame with code 1009");
    let (mut again, _) = s.raw(&id, "t", "?offset=0").await;
    again.send(b"echo still-$((6*7))\n").await;
    again.until("still-42").await;
}

/// One GET, returning the status line and headers (lowercased names) and the body.
async fn get(port: u16, path: &str) -> (String, Vec<(String, String)>, Vec<u8>) {
    let run = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let head =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read");
        raw
    };
    let raw = tokio::time::timeout(WAIT, run)
        .await
        .expect("answer in time");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, raw[split + 4..].to_vec())
}

/// Bytes downloaded from a workspace are served as an attachment that never runs as a page
/// on cove's origin, whatever the file holds; directory listings stay JSON.
#[tokio::test]
async fn file_downloads_are_attachments_that_never_render() {
    let s = TestServer::start_with(env!("CARGO_BIN_EXE_cove"), &["--network", "none"]).await;
    let id = s.create_workspace("dl", "blank").await;
    // Start the workspace first: a GET on a stopped workspace's files does not start it.
    let mut c = s.control(&id).await;
    let page = "<html><script>alert(document.cookie)</script></html>";
    for path in ["page.html", "dir/ünï \"q\".html"] {
        let written = c
            .request("write_file", json!({"path": path, "content": page}))
            .await;
        assert_eq!(written["type"], "file_written", "{written}");
    }
    let (status, headers, body) =
        get(s.port, &format!("/api/workspaces/{id}/files/page.html")).await;
    assert!(status.contains(" 200 "), "{status}");
    assert!(String::from_utf8_lossy(&body).contains(page), "{body:?}");
    let header = |headers: &[(String, String)], name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
    };
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
    let csp = header(&headers, "content-security-policy");
    assert!(
        csp.split(';').any(|d| d.trim() == "sandbox"),
        "a sandboxing policy: {csp}"
    );
    assert_eq!(
        header(&headers, "content-disposition"),
        "attachment; filename=\"page.html\"; filename*=UTF-8''page.html"
    );
    let (status, headers, _) = get(
        s.port,
        &format!("/api/workspaces/{id}/files/dir/%C3%BCn%C3%AF%20%22q%22.html"),
    )
    .await;
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(
        header(&headers, "content-disposition"),
        "attachment; filename=\"_n_ _q_.html\"; filename*=UTF-8''%C3%BCn%C3%AF%20%22q%22.html"
    );
    let (status, headers, _) = get(s.port, &format!("/api/workspaces/{id}/files/dir")).await;
    assert!(status.contains(" 200 "), "{status}");
    assert!(
        !headers.iter().any(|(k, _)| k == "content-disposition"),
        "{headers:?}"
    );
    let (_, listing) = s
        .json("GET", &format!("/api/workspaces/{id}/files/dir"), None)
        .await;
    assert_eq!(
        listing["entries"].as_array().map(Vec::len),
        Some(1),
        "{listing}"
    );
}
