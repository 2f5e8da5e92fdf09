//! The IDE's routes beside the protocol: a real language server (pyright, as `.ci/run`
//! installs it) through the LSP socket, a server that crashes or is missing, who may open
//! one, and search across files with the real `rg`.

use cove_test_support::request::request_from;
use cove_test_support::{WAIT, missing_tool};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::accounts::{ADMIN_PASSWORD, Client, add_user, password_server, sign_in};

pub(crate) fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

pub(crate) async fn put(client: &Client, id: &str, path: &str, content: &str) {
    let (k, v) = &client.credential;
    let answer = request_from(
        None,
        client.port,
        "PUT",
        &format!("/api/workspaces/{id}/files/{path}?createParents=true"),
        &[(k, v), ("Content-Type", "application/octet-stream")],
        Some(content.as_bytes()),
        WAIT,
    )
    .await
    .unwrap();
    assert!(answer.status < 300, "PUT {path}: {}", answer.text());
}

/// Creates a workspace from `template` and starts it.
pub(crate) async fn create(client: &Client, name: &str, template: &str) -> String {
    let a = client
        .call(
            "POST",
            "/api/workspaces",
            Some(json!({"name": name, "template": template})),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let id = a.body["id"].as_str().unwrap().to_string();
    let started = client
        .call("POST", &format!("/api/workspaces/{id}/start"), None)
        .await;
    assert_eq!(started.status, 200, "{}", started.body);
    id
}

pub(crate) async fn stop(client: &Client, id: &str) {
    let stopped = client
        .call("POST", &format!("/api/workspaces/{id}/stop"), None)
        .await;
    assert_eq!(stopped.status, 200, "{}", stopped.body);
}

pub(crate) async fn get_text(client: &Client, path: &str) -> (u16, String) {
    let (k, v) = &client.credential;
    let answer = request_from(None, client.port, "GET", path, &[(k, v)], None, WAIT)
        .await
        .unwrap();
    (answer.status, answer.text())
}

/// An LSP client over the socket: requests with ids, and answers to the server's own
/// requests (pyright asks for configuration and registers capabilities before it answers).
struct Lsp {
    ws: cove_test_support::Ws,
    next: u64,
    seen: Vec<Value>,
}

impl Lsp {
    async fn send(&mut self, message: Value) {
        self.ws
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
    }

    async fn request(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        self.until(|m| m["id"] == id && m.get("method").is_none())
            .await
    }

    async fn until(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        let found = tokio::time::timeout(WAIT * 3, async {
            loop {
                let Some(Ok(message)) = self.ws.next().await else {
                    panic!("the socket ended; saw {:?}", self.seen)
                };
                let Message::Text(text) = message else {
                    continue;
                };
                let value: Value = serde_json::from_str(&text).expect("one JSON message a frame");
                if value.get("method").is_some() && value.get("id").is_some() {
                    let result = if value["method"] == "workspace/configuration" {
                        json!(vec![
                            Value::Null;
                            value["params"]["items"].as_array().map_or(0, Vec::len)
                        ])
                    } else {
                        Value::Null
                    };
                    self.send(json!({"jsonrpc": "2.0", "id": value["id"], "result": result}))
                        .await;
                }
                if wanted(&value) {
                    return value;
                }
                self.seen.push(value);
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("no such message; saw {:?}", self.seen))
    }
}

/// The close frame a socket ends with.
async fn close_of(ws: &mut cove_test_support::Ws) -> (u16, String) {
    tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(Some(frame)))) => {
                    return (u16::from(frame.code), frame.reason.to_string());
                }
                Some(Ok(_)) => {}
                other => panic!("ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("a close frame in time")
}

fn pids_running(pattern: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(pattern) {
            found.push(pid);
        }
    }
    found
}

#[tokio::test]
async fn a_language_server_completes_and_diagnoses_and_goes_with_its_socket() {
    if !on_path("pyright-langserver") {
        return missing_tool("pyright", "the language server tests");
    }
    let s = password_server(&[]).await;
    let owner = sign_in(s.port, "admin", ADMIN_PASSWORD).await;
    let id = create(&owner, "lsp", "python").await;
    put(
        &owner,
        &id,
        "lib/helpers.py",
        "def greet(name: str) -> str:\n    return name\n",
    )
    .await;
    let listed = owner
        .call("GET", &format!("/api/workspaces/{id}/lsp"), None)
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let root = listed.body["rootUri"].as_str().unwrap().to_string();
    assert!(root.starts_with("file:///"), "{root}");
    assert!(
        listed.body["servers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["language"] == "python"),
        "{}",
        listed.body
    );

    let ws = owner
        .websocket(&format!("/api/workspaces/{id}/lsp/python"), None)
        .await
        .expect("the python language server socket opens");
    let mut lsp = Lsp {
        ws,
        next: 0,
        seen: Vec::new(),
    };
    let init = lsp
        .request(
            "initialize",
            json!({"processId": null, "rootUri": root, "capabilities": {
                "textDocument": {"completion": {"completionItem": {"snippetSupport": false}},
                                 "publishDiagnostics": {}}},
                "workspaceFolders": [{"uri": root, "name": "lsp"}]}),
        )
        .await;
    assert!(
        init["result"]["capabilities"]["completionProvider"].is_object(),
        "{init}"
    );
    lsp.send(json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
        .await;
    let uri = format!("{root}/main.py");
    let text = "import os\nos.pa\ncount: int = \"three\"\n";
    lsp.send(
        json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
        "textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}}}),
    )
    .await;
    let diagnostics = lsp
        .until(|m| {
            m["method"] == "textDocument/publishDiagnostics"
                && m["params"]["uri"] == uri.as_str()
                && m["params"]["diagnostics"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|d| d["range"]["start"]["line"] == 2))
        })
        .await;
    assert!(diagnostics.to_string().contains("int"), "{diagnostics}");
    let completion = lsp
        .request(
            "textDocument/completion",
            json!({"textDocument": {"uri": uri}, "position": {"line": 1, "character": 5}}),
        )
        .await;
    let items = completion["result"]["items"]
        .as_array()
        .or(completion["result"].as_array())
        .cloned()
        .unwrap_or_default();
    assert!(
        items.iter().any(|i| i["label"] == "path"),
        "`os.pa` offers path: {completion}"
    );

    // The editor goes: so does the server, with everything it started.
    let ours = || {
        pids_running("pyright")
            .into_iter()
            .filter(|p| {
                std::fs::read(format!("/proc/{p}/environ"))
                    .is_ok_and(|e| String::from_utf8_lossy(&e).contains(&id))
            })
            .count()
    };
    assert!(
        ours() > 0,
        "the language server is seen running before its socket goes"
    );
    drop(lsp);
    let gone = tokio::time::timeout(WAIT, async {
        loop {
            if ours() == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "the language server outlived its socket");
    stop(&owner, &id).await;
}

#[tokio::test]
async fn missing_and_crashing_servers_say_why_and_viewers_cannot_start_one() {
    let s = password_server(&[]).await;
    let owner = sign_in(s.port, "admin", ADMIN_PASSWORD).await;
    let id = create(&owner, "lsp-bad", "blank").await;
    // No server for the language: refused before the upgrade, with the reason.
    assert_eq!(
        owner
            .websocket(&format!("/api/workspaces/{id}/lsp/cobol"), None)
            .await
            .err(),
        Some(404)
    );
    for bad in ["..%2Fws", "a.b", "x%00"] {
        assert_eq!(
            owner
                .websocket(&format!("/api/workspaces/{id}/lsp/{bad}"), None)
                .await
                .err(),
            Some(400),
            "{bad}"
        );
    }
    // A server the workspace names, which dies at once: the socket closes saying so.
    put(
        &owner,
        &id,
        ".cove/languages.json",
        r#"{"crashy": ["sh", "-c", "echo it broke >&2; exit 3"]}"#,
    )
    .await;
    let mut ws = owner
        .websocket(&format!("/api/workspaces/{id}/lsp/crashy"), None)
        .await
        .expect("the socket opens");
    let (code, reason) = close_of(&mut ws).await;
    assert_eq!(code, 1011, "{reason}");
    assert!(
        reason.contains("status 3") && reason.contains("it broke"),
        "{reason}"
    );
    // A server whose output is not LSP: it ends, and the editor is told.
    put(
        &owner,
        &id,
        ".cove/languages.json",
        r#"{"noisy": ["sh", "-c", "yes garbage-without-headers"]}"#,
    )
    .await;
    let mut ws = owner
        .websocket(&format!("/api/workspaces/{id}/lsp/noisy"), None)
        .await
        .expect("the socket opens");
    let (code, reason) = close_of(&mut ws).await;
    assert_eq!(code, 1011, "{reason}");
    assert!(
        reason.contains("Content-Length") || reason.contains("header"),
        "{reason}"
    );

    // A viewer reads (and searches) but starts no program through a language server.
    let viewer = add_user(&owner, "vic", "vic-password-12", "viewer").await;
    let shared = owner
        .call(
            "PUT",
            &format!("/api/workspaces/{id}/shares/vic"),
            Some(json!({"access": "view"})),
        )
        .await;
    assert_eq!(shared.status, 200, "{}", shared.body);
    assert_eq!(
        viewer
            .websocket(&format!("/api/workspaces/{id}/lsp/crashy"), None)
            .await
            .err(),
        Some(403)
    );
    // From another site, not even the owner.
    assert_eq!(
        owner
            .websocket(
                &format!("/api/workspaces/{id}/lsp/crashy"),
                Some("https://evil.example")
            )
            .await
            .err(),
        Some(403)
    );
    let (status, _) = get_text(&viewer, &format!("/api/workspaces/{id}/search?query=x")).await;
    assert_eq!(status, 200);
    let (status, _) = get_text(&viewer, &format!("/api/workspaces/{id}/git/status")).await;
    assert_eq!(status, 200, "a viewer sees the repository");
    let refused = viewer
        .call(
            "POST",
            &format!("/api/workspaces/{id}/git"),
            Some(json!({"op": "init"})),
        )
        .await;
    assert_eq!(
        refused.status, 403,
        "but changes nothing in it: {}",
        refused.body
    );
    stop(&owner, &id).await;
}

/// `GET .../lsp/file`: files outside the workspace a language server points at (the standard
/// library, say) are read in the sandbox, by the owner and editors only, and only what the
/// workspace's own programs could read: the server's data on the host stays out of reach.
#[tokio::test]
async fn files_outside_the_workspace_are_read_in_its_sandbox_by_editors_only() {
    let s = password_server(&[]).await;
    let owner = sign_in(s.port, "admin", ADMIN_PASSWORD).await;
    let id = create(&owner, "outside", "blank").await;
    let read = |client: &Client, path: &str| {
        let client = client.clone();
        let route = format!("/api/workspaces/{id}/lsp/file?path={}", url_encode(path));
        async move { get_text(&client, &route).await }
    };
    // Python's own os.py, where go to definition of `os.makedirs` lands.
    let os_py = std::fs::read_dir("/usr/lib")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("os.py"))
        .find(|p| p.is_file() && p.to_string_lossy().contains("python3"))
        .expect("python3's os.py under /usr/lib");
    let (status, body) = read(&owner, os_py.to_str().unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let file: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(file["path"], os_py.to_str().unwrap());
    assert!(
        file["content"].as_str().unwrap().contains("def makedirs("),
        "{body:.200}"
    );

    for (path, want) in [
        ("usr/lib/x.py", 400),
        ("/usr/lib/../lib/x.py", 400),
        ("/no/such/file.py", 404),
        ("/usr/lib", 400),
    ] {
        let (status, body) = read(&owner, path).await;
        assert_eq!(status, want, "{path}: {body}");
        assert!(body.contains("\"error\""), "{path}: {body}");
    }
    // Beyond what the workspace's programs see: the server's own data on the host.
    if cove_test_support::needs_sandbox("read the host only through the sandbox") {
        let host_file = s.data_dir.path().join("cove.db");
        assert!(host_file.is_file(), "{}", host_file.display());
        let (status, body) = read(&owner, host_file.to_str().unwrap()).await;
        assert_eq!(
            status, 404,
            "the host's files are not the workspace's: {body:.300}"
        );
    }

    let viewer = add_user(&owner, "val", "val-password-12", "viewer").await;
    let shared = owner
        .call(
            "PUT",
            &format!("/api/workspaces/{id}/shares/val"),
            Some(json!({"access": "view"})),
        )
        .await;
    assert_eq!(shared.status, 200, "{}", shared.body);
    let (status, body) = read(&viewer, os_py.to_str().unwrap()).await;
    assert_eq!(
        status, 403,
        "a viewer reads no file a terminal would: {body}"
    );
    stop(&owner, &id).await;
    let (status, body) = read(&owner, os_py.to_str().unwrap()).await;
    assert_eq!(
        status, 409,
        "a stopped workspace is not started by a GET: {body}"
    );
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn settings_follow_their_person_and_bad_ones_change_nothing() {
    let s = password_server(&[]).await;
    let admin = sign_in(s.port, "admin", ADMIN_PASSWORD).await;
    let other = add_user(&admin, "vic", "vic-password-12", "viewer").await;
    let mine = admin.call("GET", "/api/users/me/settings", None).await;
    assert_eq!((mine.status, mine.body.clone()), (200, json!({})));
    let wanted = json!({"theme": "dark", "fontSize": 15, "tabSize": 2, "wordWrap": true,
        "keymap": "vim", "fontFamily": "'JetBrains Mono', monospace", "formatOnSave": true});
    let put = admin
        .call("PUT", "/api/users/me/settings", Some(wanted.clone()))
        .await;
    assert_eq!((put.status, put.body.clone()), (200, wanted.clone()));
    for bad in [
        json!({"theme": "neon"}),
        json!({"fontSize": 100}),
        json!({"tabSize": 0}),
        json!({"keymap": "emacs"}),
        json!({"fontFamily": "x} body { display: none"}),
        json!({"fontSize": "big"}),
        json!({"colour": "red"}),
        json!(["dark"]),
        json!({"fontFamily": "a".repeat(5000)}),
    ] {
        let answer = admin
            .call("PUT", "/api/users/me/settings", Some(bad.clone()))
            .await;
        assert_eq!(answer.status, 400, "{bad}: {}", answer.body);
    }
    // Nothing bad was stored, and each person has their own.
    let mine = admin.call("GET", "/api/users/me/settings", None).await;
    assert_eq!(mine.body, wanted);
    let theirs = other.call("GET", "/api/users/me/settings", None).await;
    assert_eq!(theirs.body, json!({}));
    let set = other
        .call(
            "PUT",
            "/api/users/me/settings",
            Some(json!({"keymap": "default"})),
        )
        .await;
    assert_eq!(
        set.status, 200,
        "a viewer keeps settings of their own: {}",
        set.body
    );
    assert_eq!(
        admin.call("GET", "/api/users/me/settings", None).await.body,
        wanted
    );
}
