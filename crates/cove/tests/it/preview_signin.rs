//! Preview hosts with sign-in on: a person reaches `{port}-{id}.localhost` through cove's
//! `/w/{id}/open/{port}` (a one-time ticket becomes a pass of that host alone); without a
//! pass a page load is sent to cove and anything else refused; the pass and the ticket never
//! reach the workspace's server, work on no other host, and die with the session.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use cove_test_support::WAIT;
use cove_test_support::request::{Response, request_from};

use crate::accounts::{ADMIN_PASSWORD, Answer, Client, add_user, password_server, send, sign_in};
use crate::preview::ECHO_SERVER;

/// The value of header `name` in a lower-cased head.
fn header<'a>(answer: &'a Answer, name: &str) -> &'a str {
    answer
        .head
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {}", answer.head))
        .trim()
}

/// A GET as sent, answered with its head as the server wrote it.
async fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> Response {
    request_from(None, port, "GET", path, headers, None, WAIT)
        .await
        .unwrap()
}

/// The value of header `name` (any case) as written.
fn raw_header(response: &Response, name: &str) -> String {
    response
        .head
        .lines()
        .find_map(|l| {
            l.split_once(": ")
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        })
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {name} in {}", response.head))
}

/// Starts the echo server in workspace `id`; its port.
async fn start_echo(client: &Client, id: &str) -> u16 {
    let mut ws = client
        .websocket(&format!("/api/workspaces/{id}/ws"), None)
        .await
        .expect("the owner attaches");
    let run = json!({"type": "run_command", "requestId": "run", "payload": {"command": "python3",
        "args": ["-u", "-c", ECHO_SERVER], "processId": "echo"}});
    ws.send(Message::Text(run.to_string().into()))
        .await
        .unwrap();
    tokio::time::timeout(WAIT, async {
        while let Some(Ok(message)) = ws.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            let m: Value = serde_json::from_str(&text).unwrap();
            if m["type"] == "process_output" && m["processId"] == "echo" {
                return m["data"].as_str().unwrap().trim().parse().unwrap();
            }
            assert_ne!(m["type"], "error", "{m}");
        }
        panic!("the control socket closed")
    })
    .await
    .expect("the echo server starts")
}

#[tokio::test]
async fn preview_hosts_are_signed_in_to_through_cove() {
    let s = password_server(&[]).await;
    let admin = sign_in(s.port, "admin", ADMIN_PASSWORD).await;
    let a = admin
        .call(
            "POST",
            "/api/workspaces",
            Some(json!({"name": "hosted", "template": "static-web"})),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let id = a.body["id"].as_str().unwrap().to_string();
    let port = start_echo(&admin, &id).await;
    let host = format!("{port}-{id}.localhost:{}", s.port);
    let page = [("Host", host.as_str()), ("Accept", "text/html")];

    // No pass: a page load goes to cove's open route (and back), a script is refused.
    let a = send(s.port, None, "GET", "/page?q=1", &page, None).await;
    assert_eq!(a.status, 303, "{}", a.head);
    assert_eq!(
        header(&a, "location"),
        format!(
            "http://localhost:{}/w/{id}/open/{port}?path=/page%3fq%3d1",
            s.port
        )
    );
    let a = send(s.port, None, "GET", "/page", &[("Host", &host)], None).await;
    assert_eq!(a.status, 401, "{}", a.head);
    // Signed out, the open route sends a person to sign in, then back.
    let open = format!("/w/{id}/open/{port}?path=%2Fpage%3Fq%3D1");
    let a = send(s.port, None, "GET", &open, &[("Accept", "text/html")], None).await;
    assert_eq!(a.status, 303);
    assert!(
        header(&a, "location").starts_with("/login?next="),
        "{}",
        a.head
    );

    // Signed in: a ticket for this host, which becomes a pass once.
    let ticket_path = async || {
        let (k, v) = &admin.credential;
        let raw = get(s.port, &open, &[(k, v)]).await;
        assert_eq!(raw.status, 303, "{}", raw.text());
        let location = raw_header(&raw, "location");
        location
            .strip_prefix(&format!("http://{host}/.cove/preview-signin?ticket="))
            .unwrap_or_else(|| panic!("{location}"))
            .to_string();
        location
            .strip_prefix(&format!("http://{host}"))
            .unwrap()
            .to_string()
    };
    let signin = ticket_path().await;
    // Not on another workspace's host; and that try used it up.
    let other_host = format!("{port}-{}.localhost:{}", "0".repeat(32), s.port);
    assert_eq!(
        get(s.port, &signin, &[("Host", &other_host)]).await.status,
        403
    );
    assert_eq!(get(s.port, &signin, &[("Host", &host)]).await.status, 403);
    // A ticket is redeemed only from the address that asked for it.
    let signin = ticket_path().await;
    let other_address = request_from(
        Some(std::net::IpAddr::from([127, 0, 0, 2])),
        s.port,
        "GET",
        &signin,
        &[("Host", &host)],
        None,
        WAIT,
    )
    .await
    .unwrap();
    assert_eq!(other_address.status, 403, "a ticket used from elsewhere");
    let signin = ticket_path().await;
    let raw = get(s.port, &signin, &[("Host", &host)]).await;
    assert_eq!(raw.status, 303, "{}", raw.text());
    assert_eq!(raw_header(&raw, "location"), "/page?q=1");
    let cookie = raw_header(&raw, "set-cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(
        !cookie.contains("Domain="),
        "a pass is for its host alone: {cookie}"
    );
    assert_eq!(
        get(s.port, &signin, &[("Host", &host)]).await.status,
        403,
        "a ticket works once"
    );
    let pass = cookie.split(';').next().unwrap().to_string();
    assert!(pass.starts_with("cove_preview="), "{pass}");
    let with_pass = format!("theme=dark; {pass}");

    // The pass opens this host; the workspace's server sees neither pass nor ticket.
    let a = send(
        s.port,
        None,
        "GET",
        "/page?q=1",
        &[("Host", &host), ("Cookie", &with_pass)],
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.head);
    assert_eq!(a.body["path"], "/page?q=1");
    let seen = a.body["headers"].to_string();
    let secret = pass.trim_start_matches("cove_preview=");
    assert!(seen.contains("theme=dark"), "{seen}");
    assert!(
        !seen.contains(secret) && !seen.contains("cove_preview"),
        "{seen}"
    );
    // The app cannot plant a pass either.
    assert!(!a.head.contains("cove_preview="), "{}", a.head);
    // Not another port's host, nor another workspace's.
    for other in [
        format!("{}-{id}.localhost:{}", port + 1, s.port),
        other_host.clone(),
    ] {
        let a = send(
            s.port,
            None,
            "GET",
            "/",
            &[("Host", &other), ("Cookie", &pass)],
            None,
        )
        .await;
        assert_eq!(a.status, 401, "the pass on {other}: {}", a.head);
    }

    // Only pages of the same workspace may send to it (a POST or a socket): not another
    // workspace's preview, not another site; its other ports may.
    let other_workspace = format!("http://{port}-{}.localhost:{}", "1".repeat(32), s.port);
    let sibling = format!("http://{}-{id}.localhost:{}", port + 1, s.port);
    for (origin, refused) in [
        ("http://evil.example", true),
        (other_workspace.as_str(), true),
        ("null", true),
        (sibling.as_str(), false),
    ] {
        let a = send(
            s.port,
            None,
            "POST",
            "/form",
            &[("Host", &host), ("Cookie", &pass), ("Origin", origin)],
            None,
        )
        .await;
        assert_eq!(
            a.status == 403,
            refused,
            "POST with Origin {origin}: {}",
            a.head
        );
    }

    // Somebody with no access to the workspace gets no ticket: 404, as for a missing one.
    let ulla = add_user(&admin, "ulla", "ulla-password-1", "user").await;
    assert_eq!(ulla.call("GET", &open, None).await.status, 404);
    assert_eq!(
        ulla.call("GET", &format!("/w/{id}/open/http"), None)
            .await
            .status,
        400
    );
    let a = ulla
        .call(
            "GET",
            &format!("/w/{id}/open/{port}?path=//evil.example"),
            None,
        )
        .await;
    assert_eq!(a.status, 400, "only a path on the preview is followed");

    // A script may use a token on a preview host.
    let a = admin
        .call("POST", "/api/tokens", Some(json!({"name": "ci"})))
        .await;
    let token = format!("Bearer {}", a.body["token"].as_str().unwrap());
    let a = send(
        s.port,
        None,
        "GET",
        "/t",
        &[("Host", &host), ("Authorization", &token)],
        None,
    )
    .await;
    assert_eq!((a.status, a.body["path"].as_str()), (200, Some("/t")));
    assert!(
        !a.body["headers"].to_string().contains("Bearer"),
        "{}",
        a.body
    );

    // Signing out ends the pass.
    assert_eq!(admin.call("POST", "/logout", None).await.status, 204);
    let a = send(
        s.port,
        None,
        "GET",
        "/page",
        &[("Host", &host), ("Cookie", &pass)],
        None,
    )
    .await;
    assert_eq!(a.status, 401, "a pass dies with its session: {}", a.head);
}
