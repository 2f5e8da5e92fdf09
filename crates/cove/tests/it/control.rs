//! Every message of docs/PROTOCOL.md section 1 over a real control socket.

use base64::Engine as _;
use serde_json::json;

use crate::server;

#[tokio::test]
async fn terminals_create_attach_resize_list_close() {
    let s = server().await;
    let id = s.create_workspace("terms", "blank").await;
    let mut a = s.control(&id).await;
    let created = a
        .request(
            "create_terminal",
            json!({"terminalId": "t1", "cols": 100, "rows": 30, "env": {"GREETING": "hi-there"}}),
        )
        .await;
    assert_eq!(created["type"], "terminal_created", "{created}");
    a.send(
        "terminal_input",
        json!({"terminalId": "t1", "input": "echo $GREETING; stty size; pwd\n"}),
    )
    .await;
    let out = a.terminal_until("t1", "30 100").await;
    assert!(out.contains("hi-there"), "{out}");

    // A second socket attaches, gets the scrollback, and shares input and output.
    let mut b = s.control(&id).await;
    let attached = b
        .request("attach_terminal", json!({"terminalId": "t1"}))
        .await;
    assert_eq!(attached["type"], "terminal_attached", "{attached}");
    assert_eq!(
        (attached["cols"].as_u64(), attached["rows"].as_u64()),
        (Some(100), Some(30))
    );
    let replay = b.terminal_until("t1", "hi-there").await;
    assert!(replay.contains("30 100"), "{replay}");
    b.send(
        "resize_terminal",
        json!({"terminalId": "t1", "cols": 120, "rows": 40}),
    )
    .await;
    b.send(
        "terminal_input",
        json!({"terminalId": "t1", "input": "stty size\n"}),
    )
    .await;
    a.terminal_until("t1", "40 120").await;
    b.terminal_until("t1", "40 120").await;

    let list = a.request("list_terminals", json!({})).await;
    assert_eq!(list["terminals"][0]["terminalId"], "t1", "{list}");
    assert_eq!(list["terminals"][0]["alive"], true);
    assert_eq!(list["terminals"][0]["cols"], 120);

    // Same id twice is a conflict; the first terminal is untouched.
    let dup = a
        .request("create_terminal", json!({"terminalId": "t1"}))
        .await;
    assert_eq!(
        (dup["type"].as_str(), dup["code"].as_str()),
        (Some("error"), Some("conflict")),
        "{dup}"
    );

    let closed = a
        .request("close_terminal", json!({"terminalId": "t1"}))
        .await;
    assert_eq!(closed["type"], "terminal_exit", "{closed}");
    assert_eq!(closed["terminalId"], "t1");
    // The other socket hears the exit as an event.
    b.wait_for(|m| m["type"] == "terminal_exit" && m["terminalId"] == "t1")
        .await;
    let list = a.request("list_terminals", json!({})).await;
    assert_eq!(list["terminals"], json!([]), "{list}");
    let gone = a
        .request("terminal_input", json!({"terminalId": "t1", "input": "x"}))
        .await;
    assert_eq!(gone["code"], "not_found", "{gone}");
}

#[tokio::test]
async fn shell_exit_is_reported_and_terminal_kept_for_its_scrollback() {
    let s = server().await;
    let id = s.create_workspace("exit", "blank").await;
    let mut c = s.control(&id).await;
    c.request(
        "create_terminal",
        json!({"terminalId": "e", "command": "echo bye-now; exit 3"}),
    )
    .await;
    let exit = c.wait_for(|m| m["type"] == "terminal_exit").await;
    assert_eq!(exit["exitCode"], 3, "{exit}");
    let list = c.request("list_terminals", json!({})).await;
    assert_eq!(list["terminals"][0]["alive"], false, "{list}");
    let mut other = s.control(&id).await;
    other
        .request("attach_terminal", json!({"terminalId": "e"}))
        .await;
    other.terminal_until("e", "bye-now").await;
}

#[tokio::test]
async fn processes_run_stream_subscribe_stop() {
    let s = server().await;
    let id = s.create_workspace("procs", "python").await;
    let mut c = s.control(&id).await;
    let started = c
        .request("run_command", json!({"command": "printf out1; printf err1 >&2; sleep 0.2; printf out2; exit 7", "processId": "p1"}))
        .await;
    assert_eq!(started["type"], "process_started", "{started}");
    assert!(started["pid"].as_u64().unwrap() > 1);
    let (out, err, exit) = c.process_until_exit("p1").await;
    assert_eq!((out.as_str(), err.as_str()), ("out1out2", "err1"));
    assert_eq!(
        (exit["exitCode"].as_i64(), exit["signal"].as_i64()),
        (Some(7), None),
        "{exit}"
    );

    // A late subscriber gets the kept log, per stream, then the exit.
    let mut late = s.control(&id).await;
    let ok = late
        .request("subscribe_process", json!({"processId": "p1"}))
        .await;
    assert_eq!(ok["type"], "ok", "{ok}");
    let (out, err, exit) = late.process_until_exit("p1").await;
    assert_eq!(
        (out.as_str(), err.as_str(), exit["exitCode"].as_i64()),
        ("out1out2", "err1", Some(7))
    );

    // args and cwd and env: run a program directly, relative cwd from the root.
    c.request("make_dir", json!({"path": "sub"})).await;
    c.request("run_command", json!({"command": "python3", "args": ["-c", "import os; print(os.getcwd().endswith('/sub'), os.environ['X'])"], "cwd": "sub", "env": {"X": "42"}, "processId": "p2"})).await;
    let (out, _, _) = c.process_until_exit("p2").await;
    assert_eq!(out.trim(), "True 42");

    // stop_process kills the whole group: a child that ignores nothing still dies with it.
    c.request(
        "run_command",
        json!({"command": "sleep 300 & sleep 300; wait", "processId": "p3"}),
    )
    .await;
    let list = c.request("list_processes", json!({})).await;
    let p3 = list["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["processId"] == "p3")
        .unwrap()
        .clone();
    assert_eq!(p3["running"], true, "{list}");
    let exit = c.request("stop_process", json!({"processId": "p3"})).await;
    assert_eq!(exit["type"], "process_exit", "{exit}");
    assert_eq!(exit["signal"], 15);
    let pgid = p3["pid"].as_u64().unwrap();
    let survivors = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("stat"))
                .ok()
                .is_some_and(|stat| {
                    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
                        .split_whitespace()
                        .collect();
                    fields.get(2).and_then(|g| g.parse::<u64>().ok()) == Some(pgid)
                        && fields[0] != "Z"
                })
        })
        .count();
    assert_eq!(survivors, 0, "every process of the group is gone");

    // A process that ignores TERM is killed after the grace period.
    c.request(
        "run_command",
        json!({"command": "trap '' TERM; sleep 300", "processId": "p4"}),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let exit = c.request("stop_process", json!({"processId": "p4"})).await;
    assert_eq!(exit["signal"], 9, "{exit}");

    // An explicit signal.
    c.request(
        "run_command",
        json!({"command": "sleep", "args": ["300"], "processId": "p5"}),
    )
    .await;
    let exit = c
        .request("stop_process", json!({"processId": "p5", "signal": "INT"}))
        .await;
    assert_eq!(exit["signal"], 2, "{exit}");

    let missing = c
        .request(
            "run_command",
            json!({"command": "/no/such/program", "args": []}),
        )
        .await;
    assert_eq!(missing["code"], "bad_request", "{missing}");
    let unknown = c
        .request("stop_process", json!({"processId": "nope"}))
        .await;
    assert_eq!(unknown["code"], "not_found", "{unknown}");
}

#[tokio::test]
async fn files_read_write_list_move_delete() {
    let s = server().await;
    let id = s.create_workspace("files", "python").await;
    let mut c = s.control(&id).await;
    let content = c.request("read_file", json!({"path": "main.py"})).await;
    assert_eq!(content["type"], "file_content", "{content}");
    assert!(content["content"].as_str().unwrap().contains("def greet"));
    let v1 = content["version"].as_str().unwrap().to_string();

    let written = c
        .request(
            "write_file",
            json!({"path": "main.py", "content": "print('v2')\n", "baseVersion": v1}),
        )
        .await;
    assert_eq!(written["type"], "file_written", "{written}");
    let v2 = written["version"].as_str().unwrap().to_string();
    assert_ne!(v1, v2);
    // Stale baseVersion: conflict, file unchanged.
    let stale = c
        .request(
            "write_file",
            json!({"path": "main.py", "content": "print('v3')\n", "baseVersion": v1}),
        )
        .await;
    assert_eq!(stale["code"], "conflict", "{stale}");
    assert_eq!(c.sh("cat main.py").await.0, "print('v2')\n");

    // Binary content through base64.
    let bytes: Vec<u8> = (0..=255).collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    c.request(
        "write_file",
        json!({"path": "bin/all.bin", "content": b64, "encoding": "base64"}),
    )
    .await;
    assert_eq!(
        c.sh("base64 -w0 bin/all.bin").await.0,
        b64,
        "the bytes on disk are the bytes sent"
    );
    let read = c
        .request(
            "read_file",
            json!({"path": "bin/all.bin", "encoding": "base64"}),
        )
        .await;
    assert_eq!(read["content"], b64);
    let as_text = c.request("read_file", json!({"path": "bin/all.bin"})).await;
    assert_eq!(
        as_text["code"], "bad_request",
        "binary is not sent as broken text: {as_text}"
    );

    let ok = c.request("make_dir", json!({"path": "a/b"})).await;
    assert_eq!(ok["type"], "ok");
    let listing = c.request("list_dir", json!({"path": "/"})).await;
    let names: Vec<&str> = listing["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"a") && names.contains(&"main.py"),
        "{listing}"
    );
    let main = listing["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "main.py")
        .unwrap();
    assert_eq!(
        (main["kind"].as_str(), main["size"].as_u64()),
        (Some("file"), Some(12))
    );

    let moved = c
        .request(
            "rename_path",
            json!({"from": "main.py", "to": "a/b/app.py"}),
        )
        .await;
    assert_eq!(moved["type"], "ok", "{moved}");
    assert_eq!(c.sh("test -f a/b/app.py").await.1, 0, "moved on disk");
    c.request("write_file", json!({"path": "other.py", "content": "x"}))
        .await;
    let clash = c
        .request(
            "rename_path",
            json!({"from": "other.py", "to": "a/b/app.py"}),
        )
        .await;
    assert_eq!(clash["code"], "conflict");
    let forced = c
        .request(
            "rename_path",
            json!({"from": "other.py", "to": "a/b/app.py", "overwrite": true}),
        )
        .await;
    assert_eq!(forced["type"], "ok");

    let not_empty = c.request("delete_path", json!({"path": "a"})).await;
    assert_eq!(not_empty["code"], "conflict", "{not_empty}");
    let deleted = c
        .request("delete_path", json!({"path": "a", "recursive": true}))
        .await;
    assert_eq!(deleted["type"], "ok");
    assert_ne!(c.sh("test -e a").await.1, 0, "deleted on disk");
    let missing = c.request("read_file", json!({"path": "a/b/app.py"})).await;
    assert_eq!(missing["code"], "not_found");

    // REST file routes reach the same files.
    let (status, body) = s
        .http(
            "PUT",
            &format!("/api/workspaces/{id}/files/rest/new.txt"),
            Some(b"via rest"),
        )
        .await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let (status, body) = s
        .http(
            "GET",
            &format!("/api/workspaces/{id}/files/rest/new.txt"),
            None,
        )
        .await;
    assert_eq!((status, body.as_slice()), (200, b"via rest".as_slice()));
    let (status, _) = s
        .http(
            "PUT",
            &format!("/api/workspaces/{id}/files/rest/new.txt"),
            Some(b"again"),
        )
        .await;
    assert_eq!(status, 200);
    let (status, listing) = s
        .json("GET", &format!("/api/workspaces/{id}/files/rest"), None)
        .await;
    assert_eq!(
        (status, listing["entries"][0]["name"].as_str()),
        (200, Some("new.txt"))
    );
    let (status, _) = s
        .http(
            "DELETE",
            &format!("/api/workspaces/{id}/files/rest/new.txt"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, err) = s
        .json(
            "GET",
            &format!("/api/workspaces/{id}/files/rest/new.txt"),
            None,
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}

#[tokio::test]
async fn watch_reports_changes_made_in_a_terminal() {
    let s = server().await;
    let id = s.create_workspace("watch", "blank").await;
    let mut c = s.control(&id).await;
    let ok = c.request("watch", json!({})).await;
    assert_eq!(ok["type"], "ok", "{ok}");
    c.request("create_terminal", json!({"terminalId": "w"}))
        .await;
    // One change per step: within one debounce window, changes to a path are coalesced.
    let steps: [(&str, &str, &str); 5] = [
        ("touch new.txt", "new.txt", "created"),
        ("mkdir d", "d", "created"),
        ("echo x > d/f.txt", "d/f.txt", "created"),
        ("mv new.txt moved.txt", "new.txt", "renamed"),
        ("rm d/f.txt", "d/f.txt", "deleted"),
    ];
    for (command, path, kind) in steps {
        c.send(
            "terminal_input",
            json!({"terminalId": "w", "input": format!("{command}\n")}),
        )
        .await;
        let change = c
            .wait_for(|m| m["type"] == "file_changed" && m["path"] == path && m["kind"] == kind)
            .await;
        if kind == "renamed" {
            assert_eq!(change["to"], "moved.txt", "{change}");
        }
    }
    // Writes through the API show as modified, never as temp files.
    c.request("write_file", json!({"path": "moved.txt", "content": "api"}))
        .await;
    let modified = c
        .wait_for(|m| {
            m["type"] == "file_changed" && m["path"] == "moved.txt" && m["kind"] == "modified"
        })
        .await;
    assert!(modified.get("to").is_none(), "{modified}");
    assert!(
        c.pending()
            .iter()
            .all(|m| !m.to_string().contains(".cove-tmp")),
        "{:?}",
        c.pending()
    );

    // Watching a sub-path only reports under it.
    let mut sub = s.control(&id).await;
    sub.request("watch", json!({"path": "d"})).await;
    let missing = sub.request("watch", json!({"path": "nope"})).await;
    assert_eq!(missing["code"], "not_found", "{missing}");
    c.request("write_file", json!({"path": "top.txt", "content": "1"}))
        .await;
    c.request("write_file", json!({"path": "d/in.txt", "content": "1"}))
        .await;
    let change = sub.wait_for(|m| m["type"] == "file_changed").await;
    assert_eq!(change["path"], "d/in.txt", "only changes under d: {change}");
    let ok = sub.request("unwatch", json!({})).await;
    assert_eq!(ok["type"], "ok");
}

#[tokio::test]
async fn ports_stats_and_ping() {
    let s = server().await;
    let id = s.create_workspace("ports", "python").await;
    let mut c = s.control(&id).await;
    let pong = c.request("ping", json!({})).await;
    assert_eq!(pong["type"], "pong");
    // A server on a free port chosen by the kernel, announced on stdout.
    c.request("run_command", json!({"command": "python3", "args": ["-u", "-c",
        "import http.server,socketserver\ns=socketserver.TCPServer(('127.0.0.1',0),http.server.SimpleHTTPRequestHandler)\nprint(s.server_address[1])\ns.serve_forever()"],
        "processId": "web"})).await;
    let out = c
        .wait_for(|m| m["type"] == "process_output" && m["processId"] == "web")
        .await;
    let port: u64 = out["data"].as_str().unwrap().trim().parse().unwrap();
    let opened = c
        .wait_for(|m| m["type"] == "port_opened" && m["port"] == port)
        .await;
    assert_eq!(opened["address"], "127.0.0.1");
    let ports = c.request("list_ports", json!({})).await;
    let entry = ports["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"] == port)
        .cloned()
        .unwrap_or_else(|| panic!("{ports}"));
    assert_eq!(entry["process"], "python3");
    let stats = c.request("stats", json!({})).await;
    assert_eq!(stats["type"], "stats", "{stats}");
    assert!(
        stats["memoryBytes"].as_u64().unwrap() > 1_000_000,
        "{stats}"
    );
    assert!(
        stats["pids"].as_u64().unwrap() >= 2,
        "runner and python: {stats}"
    );
    assert!(stats["diskBytes"].as_u64().unwrap() > 0);
    c.request("stop_process", json!({"processId": "web"})).await;
    c.wait_for(|m| m["type"] == "port_closed" && m["port"] == port)
        .await;
}

/// `attach_terminal` with an `offset` resumes the control socket's terminal output exactly
/// where a client left it (PROTOCOL.md section 8): every `terminal_output` carries the offset
/// of its first byte, the offsets are contiguous, a resume from one of them gets exactly the
/// bytes after it, and an offset the terminal never reached is a `gap` with everything held.
#[tokio::test]
async fn the_control_socket_resumes_a_terminal_at_an_offset() {
    let s = server().await;
    let id = s.create_workspace("resume", "blank").await;
    let mut a = s.control(&id).await;
    let created = a
        .request("create_terminal", json!({"terminalId": "r"}))
        .await;
    assert_eq!(created["type"], "terminal_created", "{created}");
    a.send(
        "terminal_input",
        json!({"terminalId": "r", "input": "printf 'first-%s\\n' one; printf 'ünïcödé-%s\\n' two; echo done-$((6*7))\n"}),
    )
    .await;
    // Every event, with its offset, until the last line is out.
    let mut events: Vec<(u64, String)> = Vec::new();
    while !events.iter().any(|(_, d)| d.contains("done-42")) {
        let m = a
            .wait_for(|m| m["type"] == "terminal_output" && m["terminalId"] == "r")
            .await;
        let offset = m["offset"]
            .as_u64()
            .unwrap_or_else(|| panic!("no offset: {m}"));
        events.push((offset, m["data"].as_str().unwrap().to_string()));
    }
    for pair in events.windows(2) {
        assert_eq!(
            pair[1].0,
            pair[0].0 + pair[0].1.len() as u64,
            "contiguous: {events:?}"
        );
    }
    let end = events.last().map(|(o, d)| o + d.len() as u64).unwrap();
    let all: String = events.iter().map(|(_, d)| d.as_str()).collect();
    assert_eq!(events[0].0, 0, "a new terminal's output starts at 0");

    // Resume from the second event's offset: exactly the bytes after it, no replay.
    let (from, _) = events[events.len().min(2) - 1].clone();
    let mut b = s.control(&id).await;
    let attached = b
        .request(
            "attach_terminal",
            json!({"terminalId": "r", "offset": from}),
        )
        .await;
    assert_eq!(
        (
            attached["type"].as_str(),
            attached["offset"].as_u64(),
            attached["gap"].as_bool()
        ),
        (Some("terminal_attached"), Some(from), Some(false)),
        "{attached}"
    );
    let mut resumed = String::new();
    while (from + resumed.len() as u64) < end {
        let m = b
            .wait_for(|m| m["type"] == "terminal_output" && m["terminalId"] == "r")
            .await;
        assert_eq!(
            m["offset"].as_u64(),
            Some(from + resumed.len() as u64),
            "{m}"
        );
        resumed.push_str(m["data"].as_str().unwrap());
    }
    // The prompt after `done-42` may have come in the same event here: compare up to `end`.
    assert_eq!(
        &resumed.as_bytes()[..(end - from) as usize],
        &all.as_bytes()[from as usize..],
        "exactly what followed"
    );

    // Past the end (another incarnation's offset): a gap, and everything held from 0.
    let mut c = s.control(&id).await;
    let attached = c
        .request(
            "attach_terminal",
            json!({"terminalId": "r", "offset": end + 1_000}),
        )
        .await;
    assert_eq!(
        (attached["offset"].as_u64(), attached["gap"].as_bool()),
        (Some(0), Some(true)),
        "{attached}"
    );
    let replay = c.terminal_until("r", "done-42").await;
    assert!(replay.contains("ünïcödé-two"), "{replay}");
    assert!(
        !c.pending().iter().any(|m| m["type"] == "error"),
        "an announced gap is not reported again: {:?}",
        c.pending()
    );

    // Wrong types are refused and change nothing.
    let refused = c
        .request(
            "attach_terminal",
            json!({"terminalId": "r", "offset": "ten"}),
        )
        .await;
    assert_eq!(refused["type"], "error", "{refused}");
}
