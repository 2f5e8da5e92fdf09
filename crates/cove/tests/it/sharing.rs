//! Three users (admin, user, viewer) and their workspaces through the real server: nobody
//! reaches a workspace that is not theirs or shared with them (404, as a missing one), a
//! viewer watches a shared terminal and its input never reaches the PTY, a cross-origin
//! socket is refused and audited, a revoked token's open socket closes, and a quota is
//! refused with its name. Every step leaves an audit row.

use cove_test_support::WAIT;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::accounts::{ADMIN_PASSWORD, Client, audit, has_entry, password_server, sign_in};

const USER_PASSWORD: &str = "ulla-password-1";
const VIEWER_PASSWORD: &str = "vic-password-12";

/// Makes the user and the viewer; returns the three signed-in clients.
async fn three_users(port: u16) -> (Client, Client, Client) {
    let admin = sign_in(port, "admin", ADMIN_PASSWORD).await;
    for (name, password, role) in [
        ("ulla", USER_PASSWORD, "user"),
        ("vic", VIEWER_PASSWORD, "viewer"),
    ] {
        let a = admin
            .call(
                "POST",
                "/api/users",
                Some(json!({"username": name, "password": password, "role": role})),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.body);
        assert_eq!(a.body["role"], role);
    }
    let user = sign_in(port, "ulla", USER_PASSWORD).await;
    let viewer = sign_in(port, "vic", VIEWER_PASSWORD).await;
    (admin, user, viewer)
}

async fn create(client: &Client, name: &str) -> String {
    let a = client
        .call("POST", "/api/workspaces", Some(json!({"name": name})))
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    a.body["id"].as_str().unwrap().to_string()
}

/// Reads the socket until `needle` appears in its text (bounded by WAIT).
async fn read_until(ws: &mut cove_test_support::Ws, needle: &str) -> String {
    let mut seen = String::new();
    tokio::time::timeout(WAIT, async {
        while let Some(Ok(message)) = ws.next().await {
            match message {
                Message::Text(t) => seen.push_str(&t),
                Message::Binary(b) => seen.push_str(&String::from_utf8_lossy(&b)),
                _ => {}
            }
            if seen.contains(needle) {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{needle:?} within {WAIT:?}; saw {seen:?}"));
    seen
}

/// Reads until the server closes the socket; `Err` if it is still open after WAIT.
async fn until_closed(ws: &mut cove_test_support::Ws) -> Result<(), tokio::time::error::Elapsed> {
    tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await
}

#[tokio::test]
async fn users_see_only_their_own_and_what_is_shared_with_them() {
    let s = password_server(&[]).await;
    let (admin, user, viewer) = three_users(s.port).await;
    let admins = create(&admin, "admins-project").await;
    let users = create(&user, "ullas-project").await;
    // The user lists only their own; every way into the admin's workspace is a 404, by id
    // and by name, exactly as a missing one.
    let list = user.call("GET", "/api/workspaces", None).await;
    let ids: Vec<&str> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["id"].as_str())
        .collect();
    assert_eq!(ids, [users.as_str()]);
    for (method, path, body) in [
        ("GET", format!("/api/workspaces/{admins}"), None),
        ("GET", "/api/workspaces/admins-project".to_string(), None),
        ("GET", format!("/api/workspaces/{admins}/files/"), None),
        (
            "PUT",
            format!("/api/workspaces/{admins}/files/x.txt"),
            Some(json!("x")),
        ),
        ("POST", format!("/api/workspaces/{admins}/start"), None),
        ("DELETE", format!("/api/workspaces/{admins}"), None),
        ("GET", format!("/api/workspaces/{admins}/shares"), None),
        (
            "PUT",
            format!("/api/workspaces/{admins}/shares/ulla"),
            Some(json!({"access": "edit"})),
        ),
        ("GET", format!("/w/{admins}/proxy/8000/"), None),
        ("GET", "/api/workspaces/no-such-workspace".to_string(), None),
    ] {
        let a = user.call(method, &path, body).await;
        assert_eq!(a.status, 404, "{method} {path}: {}", a.body);
    }
    assert_eq!(
        user.websocket(&format!("/api/workspaces/{admins}/ws"), None)
            .await
            .err(),
        Some(404)
    );
    // A viewer owns nothing and makes nothing, and sees nothing until it is shared.
    let a = viewer
        .call("POST", "/api/workspaces", Some(json!({"name": "mine"})))
        .await;
    assert_eq!(a.status, 403, "{}", a.body);
    let a = viewer.call("GET", "/api/workspaces", None).await;
    assert_eq!(a.body, json!([]));
    // Users are the administrator's business; bad input changes nothing.
    for (body, status) in [
        (
            json!({"username": "ulla", "password": "another-pass", "role": "user"}),
            409,
        ),
        (
            json!({"username": "x2", "password": "long-enough", "role": "god"}),
            400,
        ),
        (
            json!({"username": 5, "password": "long-enough", "role": "user"}),
            400,
        ),
        (
            json!({"username": "x3", "password": "short", "role": "user"}),
            400,
        ),
        (
            json!({"username": "../x", "password": "long-enough", "role": "user"}),
            400,
        ),
    ] {
        let a = admin.call("POST", "/api/users", Some(body.clone())).await;
        assert_eq!(a.status, status, "{body}: {}", a.body);
    }
    let a = user
        .call(
            "POST",
            "/api/users",
            Some(json!({"username": "mallory", "password": "long-enough", "role": "admin"})),
        )
        .await;
    assert_eq!(a.status, 403, "{}", a.body);
    let a = user
        .call("PUT", "/api/users/ulla", Some(json!({"role": "admin"})))
        .await;
    assert_eq!(
        a.status, 403,
        "a user cannot promote themselves: {}",
        a.body
    );
    let a = admin.call("DELETE", "/api/users/nobody", None).await;
    assert_eq!(a.status, 404);
    let a = user.call("GET", "/api/audit", None).await;
    assert_eq!(a.status, 403);
    let users_list = admin.call("GET", "/api/users", None).await;
    assert_eq!(
        users_list.body.as_array().unwrap().len(),
        3,
        "{}",
        users_list.body
    );
    // Shared to view: listed with its access; reading works, changing is forbidden.
    let a = admin
        .call("POST", &format!("/api/workspaces/{admins}/start"), None)
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = admin
        .call(
            "PUT",
            &format!("/api/workspaces/{admins}/shares/vic"),
            Some(json!({"access": "view"})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let list = viewer.call("GET", "/api/workspaces", None).await;
    assert_eq!(list.body[0]["id"], admins.as_str());
    assert_eq!(list.body[0]["access"], "view");
    assert_eq!(list.body[0]["owner"], "admin");
    let a = viewer
        .call("GET", &format!("/api/workspaces/{admins}/files/"), None)
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    for (method, path) in [
        ("PUT", format!("/api/workspaces/{admins}/files/x.txt")),
        ("POST", format!("/api/workspaces/{admins}/stop")),
        ("DELETE", format!("/api/workspaces/{admins}")),
    ] {
        let a = viewer.call(method, &path, Some(json!("x"))).await;
        assert_eq!(a.status, 403, "{method} {path}: {}", a.body);
        assert_eq!(a.body["error"]["code"], "forbidden");
    }
    let shares = admin
        .call("GET", &format!("/api/workspaces/{admins}/shares"), None)
        .await;
    assert_eq!(shares.body, json!([{"user": "vic", "access": "view"}]));
    // Unshared: gone again.
    let a = admin
        .call(
            "DELETE",
            &format!("/api/workspaces/{admins}/shares/vic"),
            None,
        )
        .await;
    assert_eq!(a.status, 204);
    let a = viewer
        .call("GET", &format!("/api/workspaces/{admins}"), None)
        .await;
    assert_eq!(a.status, 404);
    let entries = audit(&admin, "").await;
    for (action, needle) in [
        ("user.create", "ulla"),
        ("user.create", "vic"),
        ("workspace.create", users.as_str()),
        ("share.set", admins.as_str()),
        ("share.delete", admins.as_str()),
    ] {
        assert!(
            has_entry(&entries, action, "success", needle),
            "{action} {needle}: {entries:#?}"
        );
    }
    for id in [&admins, &users] {
        let a = admin
            .call("DELETE", &format!("/api/workspaces/{id}"), None)
            .await;
        assert_eq!(a.status, 204, "{}", a.body);
    }
}

#[tokio::test]
async fn a_viewer_watches_a_terminal_and_its_input_never_reaches_the_pty() {
    let s = password_server(&[]).await;
    let (admin, _user, viewer) = three_users(s.port).await;
    let id = create(&admin, "shared").await;
    let a = admin
        .call(
            "PUT",
            &format!("/api/workspaces/{id}/shares/vic"),
            Some(json!({"access": "view"})),
        )
        .await;
    assert_eq!(a.status, 200);
    let a = admin
        .call("POST", &format!("/api/workspaces/{id}/start"), None)
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    // The owner's terminal waits for five bytes and keeps them.
    let path = format!("/api/workspaces/{id}/terminals/t1/ws");
    let mut editor = admin.websocket(&path, None).await.expect("owner attaches");
    editor
        .send(Message::Binary(
            b"echo READ''Y; head -c 5 > got.txt; echo DO''NE\r"
                .to_vec()
                .into(),
        ))
        .await
        .unwrap();
    read_until(&mut editor, "READY").await;
    // The viewer attaches (asking for edit, even) and sees the output live...
    let mut watcher = viewer
        .websocket(&format!("{path}?mode=edit"), None)
        .await
        .expect("a viewer may watch");
    read_until(&mut watcher, "READY").await;
    // ...but what it types is refused, and the PTY never sees it (had it arrived, it would
    // wait in the line buffer and be the first five bytes `head` reads).
    watcher
        .send(Message::Binary(b"VIEW!".to_vec().into()))
        .await
        .unwrap();
    read_until(&mut watcher, "forbidden").await;
    editor
        .send(Message::Binary(b"EDIT!\r".to_vec().into()))
        .await
        .unwrap();
    read_until(&mut editor, "DONE").await;
    read_until(&mut watcher, "DONE").await;
    let response = cove_test_support::http(
        s.port,
        "GET",
        &format!("/api/workspaces/{id}/files/got.txt"),
        None,
        &[(admin.credential.0.as_str(), admin.credential.1.as_str())],
    )
    .await;
    assert_eq!(response.0, 200, "{}", String::from_utf8_lossy(&response.1));
    assert_eq!(
        String::from_utf8_lossy(&response.1),
        "EDIT!",
        "only the owner's bytes arrived"
    );
    // A viewer's control socket is read-only too; it cannot start or stop anything.
    let a = viewer
        .call("POST", &format!("/api/workspaces/{id}/stop"), None)
        .await;
    assert_eq!(a.status, 403);
    let a = admin
        .call("POST", &format!("/api/workspaces/{id}/stop"), None)
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = admin
        .call("DELETE", &format!("/api/workspaces/{id}"), None)
        .await;
    assert_eq!(a.status, 204);
}

#[tokio::test]
async fn cross_origin_sockets_revoked_tokens_and_quotas() {
    let s = password_server(&["--quota-workspaces", "1"]).await;
    let (admin, user, _viewer) = three_users(s.port).await;
    let id = create(&user, "only-one").await;
    // A quota is refused with its name and value, and nothing is made.
    let a = user
        .call("POST", "/api/workspaces", Some(json!({"name": "two"})))
        .await;
    assert_eq!(a.body["error"]["code"], "limit_exceeded", "{}", a.body);
    let message = a.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("workspaces") && message.contains('1'),
        "{message}"
    );
    assert_eq!(
        user.call("GET", "/api/workspaces", None)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // A page on another site cannot open the user's socket, though the browser sends the
    // cookie; the refusal names what did not match and is in the audit log.
    let path = format!("/api/workspaces/{id}/ws");
    assert_eq!(
        user.websocket(&path, Some("http://evil.example"))
            .await
            .err(),
        Some(403)
    );
    let entries = audit(&admin, "?action=socket.refused").await;
    assert!(
        has_entry(&entries, "socket.refused", "failure", "evil.example"),
        "{entries:#?}"
    );
    // A token opens a socket; revoking the token closes it.
    let a = user
        .call("POST", "/api/tokens", Some(json!({"name": "ci"})))
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let token = a.body["token"].as_str().unwrap().to_string();
    let token_id = a.body["id"].as_str().unwrap().to_string();
    let listed = user.call("GET", "/api/tokens", None).await;
    assert!(
        !listed.body.to_string().contains(&token),
        "secrets are shown once"
    );
    let agent = Client {
        port: s.port,
        credential: ("Authorization".into(), format!("Bearer {token}")),
    };
    let mut socket = agent
        .websocket(&path, None)
        .await
        .expect("a token opens sockets");
    read_until(&mut socket, "welcome").await;
    // A terminal socket, which the server hands over to the runner: it closes too, with 1008.
    let mut terminal = agent
        .websocket(&format!("/api/workspaces/{id}/terminals/t/ws"), None)
        .await
        .expect("a token opens terminal sockets");
    read_until(&mut terminal, "attached").await;
    terminal
        .send(Message::Binary(b"echo handed-\"\"over\n".to_vec().into()))
        .await
        .unwrap();
    read_until(&mut terminal, "handed-over").await;
    // And one whose client stopped reading while its terminal floods: the runner is stuck
    // sending to it, and it must close all the same.
    let mut flooded = agent
        .websocket(&format!("/api/workspaces/{id}/terminals/flood/ws"), None)
        .await
        .expect("a token opens terminal sockets");
    read_until(&mut flooded, "attached").await;
    flooded
        .send(Message::Binary(
            b"yes flooding-the-socket\n".to_vec().into(),
        ))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let a = user
        .call("DELETE", &format!("/api/tokens/{token_id}"), None)
        .await;
    assert_eq!(a.status, 204);
    let revoked_at = std::time::Instant::now();
    let closed = until_closed(&mut socket).await;
    assert!(closed.is_ok(), "the revoked token's socket closes");
    let code = tokio::time::timeout(WAIT, async {
        loop {
            match terminal.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                _ => return None,
            }
        }
    })
    .await
    .expect("the revoked token's terminal socket closes");
    assert_eq!(code, Some(1008), "closed as revoked");
    let ended = tokio::time::timeout(WAIT, async {
        while let Some(Ok(_)) = flooded.next().await {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "the flooded socket of the revoked token ends too"
    );
    eprintln!(
        "the revoked token's socket closed {:?} after the revocation",
        revoked_at.elapsed()
    );
    let a = agent.call("GET", "/api/workspaces", None).await;
    assert_eq!(a.status, 401);
    // Server-wide metrics are the administrator's.
    assert_eq!(user.call("GET", "/metrics", None).await.status, 403);
    assert_eq!(admin.call("GET", "/metrics", None).await.status, 200);
    // The plain-text socket (seed 004) of someone the workspace is shared with closes when
    // the share goes, as every other socket does.
    let admins = create(&admin, "admins").await;
    let a = admin
        .call(
            "PUT",
            &format!("/api/workspaces/{admins}/shares/ulla"),
            Some(json!({"access": "edit"})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let mut plain = user
        .websocket(&format!("/api/terminal/ws/{admins}"), None)
        .await
        .expect("the plain socket opens");
    read_until(&mut plain, "Workspace ready").await;
    let a = admin
        .call(
            "DELETE",
            &format!("/api/workspaces/{admins}/shares/ulla"),
            None,
        )
        .await;
    assert_eq!(a.status, 204);
    let closed = until_closed(&mut plain).await;
    assert!(closed.is_ok(), "the plain socket closes with the share");
    let a = admin
        .call("POST", &format!("/api/workspaces/{admins}/stop"), None)
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = admin
        .call("DELETE", &format!("/api/workspaces/{admins}"), None)
        .await;
    assert_eq!(a.status, 204);
    let entries: Vec<Value> = audit(&admin, "").await;
    assert!(has_entry(&entries, "token.create", "success", "ci"));
    assert!(has_entry(&entries, "token.revoke", "success", &token_id));
    let a = user
        .call("DELETE", &format!("/api/workspaces/{id}"), None)
        .await;
    assert_eq!(a.status, 204);
}
