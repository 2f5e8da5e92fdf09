//! Accounts (docs/PROTOCOL.md section 7) through the real server with `--auth password`:
//! sign-in and sign-out, three users who cannot reach each other's workspaces, a viewer whose
//! input is proven never to reach the PTY, refused cross-origin sockets, revoked tokens,
//! rate limits, quotas, and the audit rows all of it leaves.

use cove_test_support::request::request_from;
use cove_test_support::{TestServer, WAIT};
use serde_json::{Value, json};
use std::net::IpAddr;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub(crate) const ADMIN_PASSWORD: &str = "admin-password-1";

pub(crate) async fn password_server(extra: &[&str]) -> TestServer {
    let mut args = vec!["--auth", "password", "--password", ADMIN_PASSWORD];
    args.extend_from_slice(extra);
    TestServer::start_with(env!("CARGO_BIN_EXE_cove"), &args).await
}

/// A client with a credential: a session cookie or a bearer token.
#[derive(Clone)]
pub(crate) struct Client {
    pub(crate) port: u16,
    /// The header that carries the credential, e.g. `("Cookie", "cove_session=...")`.
    pub(crate) credential: (String, String),
}

/// The answer of one request: status, head (lower-cased), JSON body (or `Null`).
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) head: String,
    pub(crate) body: Value,
}

pub(crate) async fn send(
    port: u16,
    source: Option<IpAddr>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Answer {
    let bytes = body.map(|b| b.to_string().into_bytes());
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if bytes.is_some() {
        all.push(("Content-Type", "application/json"));
    }
    let response = request_from(source, port, method, path, &all, bytes.as_deref(), WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    Answer {
        status: response.status,
        head: response.head.to_ascii_lowercase(),
        body: serde_json::from_slice(&response.body).unwrap_or(Value::Null),
    }
}

/// Has `admin` make user `username` with `role`, then signs them in.
pub(crate) async fn add_user(admin: &Client, username: &str, password: &str, role: &str) -> Client {
    let a = admin
        .call(
            "POST",
            "/api/users",
            Some(serde_json::json!({"username": username, "password": password, "role": role})),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    sign_in(admin.port, username, password).await
}

/// Signs in; panics unless it works. Checks what the cookie promises.
pub(crate) async fn sign_in(port: u16, username: &str, password: &str) -> Client {
    sign_in_from(None, port, username, password).await
}

/// Like [`sign_in`], from another loopback address.
pub(crate) async fn sign_in_from(
    source: Option<IpAddr>,
    port: u16,
    username: &str,
    password: &str,
) -> Client {
    let body = json!({"username": username, "password": password}).to_string();
    let response = request_from(
        source,
        port,
        "POST",
        "/login",
        &[("Content-Type", "application/json")],
        Some(body.as_bytes()),
        WAIT,
    )
    .await
    .unwrap();
    assert_eq!(
        response.status,
        200,
        "sign in as {username}: {}",
        response.text()
    );
    let cookie = response
        .head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        })
        .map(|(_, v)| v.trim().to_string())
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    Client {
        port,
        credential: (
            "Cookie".into(),
            cookie.split(';').next().unwrap().to_string(),
        ),
    }
}

impl Client {
    pub(crate) async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let (k, v) = &self.credential;
        send(self.port, None, method, path, &[(k, v)], body).await
    }

    /// Opens a WebSocket with this client's credential (and `origin`, if any); the handshake's
    /// status on refusal.
    pub(crate) async fn websocket(
        &self,
        path: &str,
        origin: Option<&str>,
    ) -> Result<cove_test_support::Ws, u16> {
        let mut request = format!("ws://127.0.0.1:{}{path}", self.port)
            .into_client_request()
            .unwrap();
        let (k, v) = &self.credential;
        request.headers_mut().insert(
            k.parse::<tokio_tungstenite::tungstenite::http::HeaderName>()
                .unwrap(),
            v.parse().unwrap(),
        );
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().unwrap());
        }
        match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .expect("the handshake ends in time")
        {
            Ok((ws, _)) => Ok(ws),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Err(response.status().as_u16())
            }
            Err(e) => panic!("websocket {path}: {e}"),
        }
    }
}

/// The audit log's entries (newest first), as the administrator reads them.
pub(crate) async fn audit(admin: &Client, query: &str) -> Vec<Value> {
    let answer = admin.call("GET", &format!("/api/audit{query}"), None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

pub(crate) fn has_entry(entries: &[Value], action: &str, outcome: &str, needle: &str) -> bool {
    entries.iter().any(|e| {
        e["action"] == action
            && e["outcome"] == outcome
            && (e["target"].as_str().unwrap_or("").contains(needle)
                || e["detail"].as_str().unwrap_or("").contains(needle))
    })
}

#[tokio::test]
async fn sign_in_sign_out_and_a_replayed_cookie() {
    let s = password_server(&[]).await;
    // Signed out: the API answers 401, a page sends the person to sign in and back.
    let answer = send(s.port, None, "GET", "/api/workspaces", &[], None).await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert_eq!(answer.body["error"]["code"], "unauthorized");
    let answer = send(s.port, None, "GET", "/w/demo?x=1", &[], None).await;
    assert_eq!(answer.status, 303, "{}", answer.head);
    assert!(
        answer
            .head
            .contains("location: /login?next=/w/demo%3fx%3d1"),
        "{}",
        answer.head
    );
    for public in ["/login", "/healthz", "/api/info"] {
        let answer = send(s.port, None, "GET", public, &[], None).await;
        assert_eq!(answer.status, 200, "{public}");
    }
    let info = send(s.port, None, "GET", "/api/info", &[], None).await;
    assert_eq!(info.body["auth"], "password");
    // Wrong password: 401 that does not say which part was wrong.
    for (user, password) in [("admin", "nope-nope-nope"), ("nobody", ADMIN_PASSWORD)] {
        let answer = send(
            s.port,
            None,
            "POST",
            "/login",
            &[],
            Some(json!({"username": user, "password": password})),
        )
        .await;
        assert_eq!(answer.status, 401);
        assert_eq!(
            answer.body["error"]["message"],
            "wrong username or password"
        );
    }
    // The form of the sign-in page: 303 to a path on this server, never elsewhere.
    let form = format!("password={ADMIN_PASSWORD}&next=%2F%2Fevil.example%2F");
    let response = request_from(
        None,
        s.port,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(form.as_bytes()),
        WAIT,
    )
    .await
    .unwrap();
    assert_eq!(response.status, 303);
    assert!(response.head.contains("location: /\r") || response.head.ends_with("location: /"));
    let admin = sign_in(s.port, "admin", ADMIN_PASSWORD).await;
    let me = admin.call("GET", "/api/users/me", None).await;
    assert_eq!((me.status, me.body["role"].as_str()), (200, Some("admin")));
    let sessions = admin.call("GET", "/api/users/me/sessions", None).await;
    assert!(
        sessions
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["current"] == true),
        "{}",
        sessions.body
    );
    // Sign out; the same cookie no longer works, anywhere.
    let answer = admin.call("POST", "/logout", None).await;
    assert_eq!(answer.status, 204);
    assert!(answer.head.contains("max-age=0"), "{}", answer.head);
    let answer = admin.call("GET", "/api/users/me", None).await;
    assert_eq!(answer.status, 401, "a cookie replayed after sign-out fails");
    assert!(admin.websocket("/api/events", None).await.is_err());
    let admin = sign_in(s.port, "admin", ADMIN_PASSWORD).await;
    // A new password ends every other session (a stolen cookie, say), not the one in use.
    let elsewhere = sign_in(s.port, "admin", ADMIN_PASSWORD).await;
    // Without the current password, or with a wrong one, nothing changes.
    let put_me = |body: Value| admin.call("PUT", "/api/users/me", Some(body));
    let a = put_me(json!({"password": "a-new-password-2"})).await;
    assert_eq!(a.status, 400, "{}", a.body);
    let a = put_me(json!({"password": "a-new-password-2", "currentPassword": "a-guess"})).await;
    assert_eq!(
        (a.status, a.body["error"]["message"].as_str()),
        (403, Some("the current password is wrong")),
        "{}",
        a.body
    );
    assert_eq!(
        elsewhere.call("GET", "/api/users/me", None).await.status,
        200
    );
    let a =
        put_me(json!({"password": "a-new-password-2", "currentPassword": ADMIN_PASSWORD})).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        elsewhere.call("GET", "/api/users/me", None).await.status,
        401
    );
    assert_eq!(admin.call("GET", "/api/users/me", None).await.status, 200);
    let entries = audit(&admin, "").await;
    assert!(has_entry(&entries, "login", "failure", "wrong password"));
    assert!(has_entry(&entries, "login", "failure", "no such user"));
    assert!(has_entry(&entries, "logout", "success", "admin"));
    assert!(has_entry(
        &entries,
        "user.update",
        "failure",
        "wrong current password"
    ));
    assert!(has_entry(&entries, "login", "success", "admin"));
}

#[tokio::test]
async fn the_sixth_wrong_password_waits_while_another_address_signs_in() {
    let s = password_server(&[]).await;
    let wrong = json!({"username": "admin", "password": "wrong-wrong"});
    for attempt in 1..=5 {
        let a = send(s.port, None, "POST", "/login", &[], Some(wrong.clone())).await;
        assert_eq!(a.status, 401, "attempt {attempt}");
    }
    let limited = send(s.port, None, "POST", "/login", &[], Some(wrong.clone())).await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert!(limited.head.contains("retry-after: "), "{}", limited.head);
    assert_eq!(limited.body["error"]["code"], "limit_exceeded");
    // The right password from the limited address waits too (the check comes first)...
    let right = json!({"username": "admin", "password": ADMIN_PASSWORD});
    let a = send(s.port, None, "POST", "/login", &[], Some(right.clone())).await;
    assert_eq!(a.status, 429);
    // ...but another address is not held back by this one's failures.
    let other = Some(IpAddr::from([127, 0, 0, 2]));
    let admin = sign_in_from(other, s.port, "admin", ADMIN_PASSWORD).await;
    let entries = audit(&admin, "?action=login").await;
    assert!(has_entry(&entries, "login", "failure", "rate limited"));
    assert!(
        entries
            .iter()
            .any(|e| e["address"] == "127.0.0.2" && e["outcome"] == "success")
    );
}
