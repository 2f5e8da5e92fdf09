//! Socket.IO (docs/PROTOCOL.md section 4) with the stock `socket.io-client` from npm, over
//! long-polling only and over WebSocket only; `POST /api/emit` and `/health`.

use cove_test_support::rss_kib;
use cove_test_support::socketio::Bridge;
use serde_json::json;
use std::time::Duration;

use crate::accounts::{ADMIN_PASSWORD, add_user, password_server, sign_in};

/// Both transports, each alone.
const TRANSPORTS: [&[&str]; 2] = [&["polling"], &["websocket"]];

/// A process that prints `first`, waits for the file `go` in its folder, prints `second`
/// and exits 7.
const WAITS_FOR_GO: &str =
    "echo first; while [ ! -e go ]; do sleep 0.05; done; echo second; exit 7";

#[tokio::test]
async fn stock_clients_follow_logs_stats_files_and_emits_over_both_transports() {
    let s = crate::server().await;
    let id = s.create_workspace("rt", "blank").await;
    let mut control = s.control(&id).await;
    for (round, transports) in TRANSPORTS.iter().enumerate() {
        let mut bridge = Bridge::start().await;
        let process = format!("p{round}");
        let go = format!("go{round}");
        let started = control
            .request(
                "run_command",
                json!({"command": "sh", "args": ["-c", WAITS_FOR_GO.replace("go", &go)], "processId": process}),
            )
            .await;
        assert_eq!(started["type"], "process_started", "{started}");

        // /processes: the kept log first, then live output, then the exit code.
        let connected = bridge
            .connect("logs", s.port, "/processes", transports, json!({}))
            .await;
        assert_eq!(connected["event"], "connect", "{connected}");
        assert_eq!(connected["transport"], transports[0]);
        let hello = bridge.until("logs", |e| e["event"] == "connected").await;
        assert_eq!(hello["data"]["namespace"], "/processes");
        bridge
            .emit(
                "logs",
                "subscribe:logs",
                json!({"workspaceId": id, "processId": process}),
            )
            .await;
        let first = bridge.until("logs", |e| e["event"] == "logs").await;
        assert_eq!(first["data"]["text"], "first\n", "{first}");
        assert_eq!(first["data"]["processId"], process.as_str());
        assert_eq!(first["data"]["stream"], "stdout");
        let (status, _) = s
            .http(
                "PUT",
                &format!("/api/workspaces/{id}/files/{go}"),
                Some(b"x"),
            )
            .await;
        assert_eq!(status, 201);
        let second = bridge.until("logs", |e| e["event"] == "logs").await;
        assert_eq!(second["data"]["text"], "second\n", "{second}");
        let closed = bridge
            .until("logs", |e| e["event"] == "stream:closed")
            .await;
        assert_eq!(closed["data"]["exitCode"], 7, "{closed}");

        // A late subscriber gets everything that was kept, then the end.
        bridge
            .connect("late", s.port, "/processes", transports, json!({}))
            .await;
        bridge
            .emit(
                "late",
                "subscribe:logs",
                json!({"workspaceId": id, "processId": process}),
            )
            .await;
        let mut text = String::new();
        loop {
            let e = bridge
                .until("late", |e| {
                    e["event"] == "logs" || e["event"] == "stream:closed"
                })
                .await;
            if e["event"] == "stream:closed" {
                assert_eq!(e["data"]["exitCode"], 7);
                break;
            }
            text.push_str(e["data"]["text"].as_str().unwrap_or_default());
        }
        assert_eq!(text, "first\nsecond\n");
        // An unknown process and a missing workspace are errors, and the socket stays.
        bridge
            .emit(
                "late",
                "subscribe:logs",
                json!({"workspaceId": id, "processId": "nope"}),
            )
            .await;
        let unknown = bridge.until("late", |e| e["event"] == "error").await;
        assert_eq!(unknown["data"]["code"], "not_found", "{unknown}");
        bridge
            .emit(
                "late",
                "subscribe:logs",
                json!({"workspaceId": "missing", "processId": "x"}),
            )
            .await;
        let missing = bridge.until("late", |e| e["event"] == "error").await;
        assert_eq!(missing["data"]["code"], "not_found", "{missing}");
        bridge
            .emit("late", "subscribe:logs", json!({"workspace": 3}))
            .await;
        let malformed = bridge.until("late", |e| e["event"] == "error").await;
        assert_eq!(malformed["data"]["code"], "bad_request", "{malformed}");

        // /system: the workspace's figures about once a second; host totals for an admin.
        bridge
            .connect("stats", s.port, "/system", transports, json!({}))
            .await;
        bridge
            .emit("stats", "subscribe:stats", json!({"workspaceId": id}))
            .await;
        let stats = bridge.until("stats", |e| e["event"] == "stats").await;
        let mine = &stats["data"]["workspaces"][0];
        assert_eq!(mine["workspaceId"], id.as_str(), "{stats}");
        assert!(mine["memoryBytes"].as_u64().unwrap() > 0, "{stats}");
        assert!(
            stats["data"]["host"].is_null(),
            "one workspace: no host totals"
        );
        bridge.emit("stats", "subscribe:stats", json!({})).await;
        let all = bridge
            .until("stats", |e| {
                e["event"] == "stats" && !e["data"]["host"].is_null()
            })
            .await;
        let host = &all["data"]["host"];
        assert!(host["memoryTotalBytes"].as_u64().unwrap() > 0, "{all}");
        assert_eq!(host["connections"]["system"], 1, "{all}");
        assert_eq!(host["connections"]["processes"], 2, "{all}");
        assert!(host["runningWorkspaces"].as_u64().unwrap() >= 1);
        // `unsubscribe:stats` with no argument at all ends it: after what was on its way,
        // nothing more comes.
        bridge.emit_bare("stats", "unsubscribe:stats").await;
        let mut quiet = false;
        for _ in 0..5 {
            if !bridge
                .got_within("stats", Duration::from_millis(2500), |e| {
                    e["event"] == "stats"
                })
                .await
            {
                quiet = true;
                break;
            }
        }
        assert!(quiet, "stats kept coming after unsubscribe:stats");

        // /files: a `touch` in the workspace's terminal is a `change`.
        bridge
            .connect("files", s.port, "/files", transports, json!({}))
            .await;
        bridge
            .emit("files", "watch", json!({"workspaceId": id}))
            .await;
        // The watch is set up when the runner answers; a change made before that is not
        // promised. Touch until one is seen (bounded).
        let terminal = format!("t{round}");
        control
            .request("create_terminal", json!({"terminalId": terminal}))
            .await;
        let name = format!("touched-{round}.txt");
        let mut seen = None;
        for _ in 0..20 {
            control
                .send(
                    "terminal_input",
                    json!({"terminalId": terminal, "input": format!("touch {name}\n")}),
                )
                .await;
            if let Some(e) = bridge
                .until_within("files", Duration::from_secs(1), |e| {
                    e["event"] == "change" && e["data"]["path"] == name.as_str()
                })
                .await
            {
                seen = Some(e);
                break;
            }
        }
        let change = seen.expect("a change event after touch");
        assert_eq!(change["data"]["workspaceId"], id.as_str());
        assert!(
            ["created", "modified"].contains(&change["data"]["kind"].as_str().unwrap()),
            "{change}"
        );

        // /mcp and POST /api/emit: an event reaches the sockets that joined the workspace.
        bridge
            .connect("mcp", s.port, "/mcp", transports, json!({}))
            .await;
        bridge.emit("mcp", "join", json!({"workspaceId": id})).await;
        let joined = bridge.until("mcp", |e| e["event"] == "joined").await;
        assert_eq!(joined["data"]["workspaceId"], id.as_str());
        let (status, reply) = s
            .json(
                "POST",
                "/api/emit",
                Some(json!({"namespace": "/mcp", "room": id, "event": "tool:finished", "data": {"tool": "run_tests", "ok": true}})),
            )
            .await;
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["delivered"], 1, "{reply}");
        let tool = bridge.until("mcp", |e| e["event"] == "tool:finished").await;
        assert_eq!(tool["data"], json!({"tool": "run_tests", "ok": true}));
        // A socket that did not join hears nothing of it.
        assert!(
            !bridge
                .got_within("stats", Duration::from_millis(300), |e| e["event"]
                    == "tool:finished")
                .await
        );
        // Bad emits change nothing and say why.
        for (body, code) in [
            (json!({"namespace": "/nope", "event": "x", "data": 1}), 400),
            (
                json!({"namespace": "/mcp", "room": id, "event": "logs", "data": 1}),
                400,
            ),
            (
                json!({"namespace": "/mcp", "room": id, "event": "a b", "data": 1}),
                400,
            ),
            (
                json!({"namespace": "/mcp", "room": "missing", "event": "x", "data": 1}),
                404,
            ),
            (
                json!({"namespace": "/mcp", "room": id, "event": "x", "data": "y".repeat(40_000)}),
                413,
            ),
            (
                json!({"namespace": "/mcp", "event": "x", "data": 1, "extra": true}),
                400,
            ),
        ] {
            let (status, reply) = s.json("POST", "/api/emit", Some(body.clone())).await;
            assert_eq!(status, code, "{body}: {reply}");
        }

        // /health counts every namespace while the sockets are open.
        let (_, health) = s.json("GET", "/health", None).await;
        assert_eq!(health["success"], true);
        assert_eq!(health["connections"]["processes"], 2, "{health}");
        assert_eq!(health["connections"]["mcp"], 1, "{health}");
        assert_eq!(health["connections"]["files"], 1, "{health}");
        assert!(health["activeStreams"].as_i64().unwrap() >= 3, "{health}");
        for socket in ["logs", "late", "stats", "files", "mcp"] {
            bridge.send(json!({"op": "close", "id": socket})).await;
        }
        let mut closed = false;
        for _ in 0..100 {
            let (_, health) = s.json("GET", "/health", None).await;
            if ["processes", "system", "files", "mcp"]
                .iter()
                .all(|ns| health["connections"][ns] == 0)
            {
                closed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            closed,
            "the namespaces' counts go back to 0 when the client goes"
        );
    }
}

#[tokio::test]
async fn strangers_other_origins_and_other_users_are_refused() {
    let s = password_server(&[]).await;
    let admin = sign_in(s.port, "admin", ADMIN_PASSWORD).await;
    let bob = add_user(&admin, "bob", "bob-password-1", "user").await;
    let created = admin
        .call(
            "POST",
            "/api/workspaces",
            Some(json!({"name": "mine", "template": "blank"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let cookie =
        |c: &crate::accounts::Client| json!({ c.credential.0.clone(): c.credential.1.clone() });
    let mut bridge = Bridge::start().await;
    for transports in TRANSPORTS {
        // No credential: refused before Socket.IO sees it.
        let anonymous = bridge
            .connect("anon", s.port, "/processes", transports, json!({}))
            .await;
        assert_eq!(anonymous["event"], "connect_error", "{anonymous}");
        // A signed-in person's cookie, sent by a page of another origin: refused.
        let mut foreign = cookie(&admin);
        foreign["Origin"] = json!("http://evil.example");
        let cross = bridge
            .connect("cross", s.port, "/processes", transports, foreign)
            .await;
        assert_eq!(cross["event"], "connect_error", "{cross}");
        // Signed in, same origin: in.
        let mut own = cookie(&bob);
        own["Origin"] = json!(format!("http://127.0.0.1:{}", s.port));
        let connected = bridge
            .connect("bob", s.port, "/processes", transports, own.clone())
            .await;
        assert_eq!(connected["event"], "connect", "{connected}");
        // Another user's workspace looks like a missing one.
        for (event, data, ns) in [
            (
                "subscribe:logs",
                json!({"workspaceId": id, "processId": "x"}),
                "/processes",
            ),
            (
                "subscribe:logs",
                json!({"workspaceId": "missing", "processId": "x"}),
                "/processes",
            ),
        ] {
            bridge.emit("bob", event, data).await;
            let refused = bridge.until("bob", |e| e["event"] == "error").await;
            assert_eq!(refused["data"]["code"], "not_found", "{ns} {refused}");
            assert_eq!(refused["data"]["event"], event);
        }
        bridge
            .connect("bobmcp", s.port, "/mcp", transports, own)
            .await;
        bridge
            .emit("bobmcp", "join", json!({"workspaceId": id}))
            .await;
        let refused = bridge.until("bobmcp", |e| e["event"] == "error").await;
        assert_eq!(refused["data"]["code"], "not_found", "{refused}");
        for socket in ["anon", "cross", "bob", "bobmcp"] {
            bridge.send(json!({"op": "close", "id": socket})).await;
        }
    }
    // Emitting: to another user's workspace looks missing; to everyone is for admins; no
    // credential is 401.
    let denied = bob
        .call(
            "POST",
            "/api/emit",
            Some(json!({"namespace": "mcp", "room": id, "event": "x", "data": 1})),
        )
        .await;
    assert_eq!(denied.status, 404, "{}", denied.body);
    let everyone = bob
        .call(
            "POST",
            "/api/emit",
            Some(json!({"namespace": "mcp", "event": "x", "data": 1})),
        )
        .await;
    assert_eq!(everyone.status, 403, "{}", everyone.body);
    let anonymous = crate::accounts::send(
        s.port,
        None,
        "POST",
        "/api/emit",
        &[],
        Some(json!({"namespace": "mcp", "event": "x", "data": 1})),
    )
    .await;
    assert_eq!(anonymous.status, 401);
    // The admin's emit is audited.
    let emitted = admin
        .call(
            "POST",
            "/api/emit",
            Some(json!({"namespace": "mcp", "event": "note", "data": 1})),
        )
        .await;
    assert_eq!(emitted.status, 200, "{}", emitted.body);
    let audit = admin.call("GET", "/api/audit", None).await;
    assert!(
        audit.body.to_string().contains("realtime.emit"),
        "{}",
        audit.body
    );

    // Signing out closes the person's sockets.
    let mut own = cookie(&bob);
    own["Origin"] = json!(format!("http://127.0.0.1:{}", s.port));
    let connected = bridge
        .connect("gone", s.port, "/system", &["websocket"], own)
        .await;
    assert_eq!(connected["event"], "connect");
    let out = bob.call("POST", "/logout", None).await;
    assert!(out.status < 400, "{}", out.status);
    bridge.until("gone", |e| e["event"] == "disconnect").await;
}

/// A client that stops reading while a process prints 100 MB: the server drops what does
/// not fit rather than keep it, and the client is told how much it missed.
#[tokio::test]
async fn a_slow_client_is_told_what_it_missed_and_the_server_stays_small() {
    let s = crate::server().await;
    let id = s.create_workspace("flood", "blank").await;
    let mut control = s.control(&id).await;
    let script = "while [ ! -e go ]; do sleep 0.05; done; yes 0123456789012345678901234567890123456789012345678 | head -c 100000000; echo; echo END";
    let started = control
        .request(
            "run_command",
            json!({"command": "sh", "args": ["-c", script], "processId": "flood"}),
        )
        .await;
    assert_eq!(started["type"], "process_started");
    // The control socket that started it would get all 100 MB: it goes.
    drop(control);
    let mut bridge = Bridge::start().await;
    let connected = bridge
        .connect("slow", s.port, "/processes", &["websocket"], json!({}))
        .await;
    assert_eq!(connected["event"], "connect");
    bridge
        .emit(
            "slow",
            "subscribe:logs",
            json!({"workspaceId": id, "processId": "flood"}),
        )
        .await;
    // Subscribed when the runner is asked; give it a moment, then stop reading.
    tokio::time::sleep(Duration::from_millis(500)).await;
    bridge.send(json!({"op": "pause", "id": "slow"})).await;
    bridge.until("slow", |e| e["event"] == "paused").await;
    let server = s.pid();
    let before = rss_kib(server);
    let mut peak = before;
    let (status, _) = s
        .http("PUT", &format!("/api/workspaces/{id}/files/go"), Some(b"x"))
        .await;
    assert_eq!(status, 201);
    // Until the process has exited (bounded: 100 MB of `yes` takes seconds).
    let mut watcher = s.control(&id).await;
    let mut done = false;
    for _ in 0..600 {
        peak = peak.max(rss_kib(server));
        let listed = watcher.request("list_processes", json!({})).await;
        let flood = listed["processes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["processId"] == "flood")
            .cloned()
            .unwrap();
        if flood["running"] == false {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(done, "the process printed 100 MB and exited");
    bridge.send(json!({"op": "resume", "id": "slow"})).await;
    let mut received = 0u64;
    let mut skipped = 0u64;
    let mut notices = 0;
    let mut lower_bound = false;
    let mut tail = String::new();
    loop {
        let e = bridge
            .until("slow", |e| {
                ["logs", "logs:skipped", "stream:closed"]
                    .contains(&e["event"].as_str().unwrap_or(""))
            })
            .await;
        match e["event"].as_str().unwrap() {
            "logs" => {
                received += e["data"]["bytes"].as_u64().unwrap();
                tail = e["data"]["tail"].as_str().unwrap().to_string();
            }
            "logs:skipped" => {
                notices += 1;
                skipped += e["data"]["bytes"].as_u64().unwrap();
                let message = e["data"]["message"].as_str().unwrap();
                assert!(message.contains("fell behind"), "{e}");
                lower_bound |=
                    message.starts_with("at least") || message.starts_with("output was not sent");
            }
            _ => {
                assert_eq!(e["data"]["exitCode"], 0, "{e}");
                break;
            }
        }
    }
    assert!(notices > 0, "the client was told it missed output");
    assert!(skipped > 0, "and how much: {skipped}");
    assert!(
        received < 100_000_000,
        "it did not get everything: {received}"
    );
    // What it got and what it was told of add up, unless it was told that is a lower bound.
    let printed = 100_000_000 + "\nEND\n".len() as u64;
    assert!(
        received + skipped == printed || (lower_bound && received + skipped < printed),
        "received {received} + skipped {skipped} != {printed} (lower bound said: {lower_bound})"
    );
    assert!(
        tail.ends_with("END\n"),
        "the end of the output arrives after the skip: {tail:?}"
    );
    let grew_mib = peak.saturating_sub(before) / 1024;
    eprintln!(
        "slow client: received {received} bytes, told of {skipped} skipped in {notices} notices; server grew by {grew_mib} MiB (peak {peak} KiB)"
    );
    assert!(
        grew_mib < 64,
        "the server kept what the client could not take: it grew by {grew_mib} MiB"
    );
}
