//! `cove serve --cert` with a self-signed certificate, through a real TLS client that trusts
//! only that certificate; and `--print-config` with a config file, the environment and a
//! flag.

use cove_test_support::WAIT;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

/// `cove serve` with `args`, its environment cleared of passwords (a developer's $PASSWORD
/// must not change what is tested).
fn cove(args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_cove"));
    command
        .arg("serve")
        .args(args)
        .env_remove("PASSWORD")
        .env_remove("HASHED_PASSWORD")
        .env("COVE_LOG", "info")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// The `password: "..."` cove wrote into a config file.
fn generated_password(config: &Path) -> String {
    let text = std::fs::read_to_string(config).expect("the config file");
    text.lines()
        .find_map(|l| l.strip_prefix("password: "))
        .map(|p| p.trim_matches('"').to_owned())
        .unwrap_or_else(|| panic!("no password in {text}"))
}

#[tokio::test]
async fn cert_without_a_path_serves_https_with_a_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config/cove/config.yaml");
    let data = dir.path().join("data");
    let mut child = cove(&["--bind-addr", "127.0.0.1:0", "--sandbox", "none", "--cert"])
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("COVE_DATA_DIR", &data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start cove serve --cert");
    let pid = child.id().expect("a pid");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (sign_in_line, port) = tokio::time::timeout(WAIT, async {
        let mut sign_in_line = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with("Sign in as") {
                sign_in_line = line.clone();
            }
            if let Some(addr) = line.strip_prefix("cove listening on https://") {
                let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
                return (sign_in_line, port);
            }
            assert!(!line.starts_with("cove listening on http://"), "{line}");
        }
        panic!("cove serve --cert ended before listening");
    })
    .await
    .expect("the https listening line in time");

    // The password was generated into the config file, which only this user may read.
    assert!(
        sign_in_line.contains(&config.display().to_string()),
        "{sign_in_line}"
    );
    let mode = std::fs::metadata(&config).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let password = generated_password(&config);

    // Trust only the certificate cove made, for the address it listens on.
    let cert_path = data.join("tls/self-signed.crt");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&cert_path).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let body = serde_json::json!({"username": "admin", "password": password}).to_string();
    let request = format!(
        "POST /login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // One request over a new TLS connection; the answer as read until the server closes (it
    // may close without close_notify).
    let tls_request = |request: String| {
        let connector = connector.clone();
        async move {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            let name = ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
            let mut tls = connector.connect(name, tcp).await.expect("TLS handshake");
            tls.write_all(request.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            let _ = tls.read_to_end(&mut answer).await;
            String::from_utf8_lossy(&answer).into_owned()
        }
    };
    let answer = tokio::time::timeout(WAIT, tls_request(request))
        .await
        .expect("an answer over TLS in time");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let head = answer.to_ascii_lowercase();
    let cookie = head
        .lines()
        .find(|l| l.starts_with("set-cookie: cove_session="))
        .unwrap_or_else(|| panic!("a session cookie in {answer}"));
    assert!(cookie.contains("; secure"), "{cookie}");
    assert!(
        head.contains("strict-transport-security: max-age="),
        "{answer}"
    );

    // A terminal socket over TLS: only the server can decrypt it, so it is relayed (the
    // runner is not handed the connection) and works as any other.
    // From the answer as sent (`cookie` is lowercased).
    let session = answer
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie: cove_session=")
        })
        .and_then(|l| l.split_once(": "))
        .and_then(|(_, v)| v.split(';').next())
        .unwrap()
        .to_string();
    let body = r#"{"name":"over-tls"}"#;
    let created = tls_request(format!(
        "POST /api/workspaces HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {session}\r\n\
         Origin: https://127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ))
    .await;
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    let json = &created[created.find("\r\n\r\n").unwrap() + 4..];
    let id = serde_json::from_str::<serde_json::Value>(json).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    tokio::time::timeout(WAIT, async {
        use futures_util::{SinkExt as _, StreamExt as _};
        use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest as _};
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let name = ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
        let tls = connector.connect(name, tcp).await.expect("TLS handshake");
        let mut request = format!("wss://127.0.0.1:{port}/api/workspaces/{id}/terminals/t/ws")
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("Cookie", session.parse().unwrap());
        let (mut socket, _) = tokio_tungstenite::client_async(request, tls)
            .await
            .expect("a terminal socket over TLS");
        socket
            .send(Message::Binary(b"echo over-\"\"tls\n".to_vec().into()))
            .await
            .unwrap();
        let mut seen = Vec::new();
        while !String::from_utf8_lossy(&seen).contains("over-tls") {
            match socket.next().await {
                Some(Ok(Message::Binary(bytes))) => seen.extend_from_slice(&bytes),
                Some(Ok(_)) => {}
                other => panic!("the socket ended: {other:?}"),
            }
        }
    })
    .await
    .expect("the terminal answers over TLS in time");

    // Runners outlive the server on purpose: the workspace is stopped through the API first,
    // or its runner would be left behind.
    let stop = format!(
        "POST /api/workspaces/{id}/stop HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {session}\r\n\
         Origin: https://127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let stopped = tokio::time::timeout(WAIT, tls_request(stop))
        .await
        .expect("the stop answers over TLS in time");
    assert!(stopped.starts_with("HTTP/1.1 200"), "{stopped}");

    // SAFETY: kill has no preconditions; the pid is our own child's.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let _ = tokio::time::timeout(WAIT, child.wait()).await;
    let _ = child.start_kill();
}

#[tokio::test]
async fn print_config_says_where_each_value_came_from_and_masks_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cove.yaml");
    std::fs::write(
        &config,
        "# code-server's keys and cove's own\nbind-addr: 127.0.0.1:1111\n\
         password: file-secret-123\nmax-terminals: 9\n",
    )
    .unwrap();
    let config_arg = format!("--config={}", config.display());
    let output = tokio::time::timeout(
        WAIT,
        cove(&[&config_arg, "--scrollback", "5000", "--print-config"])
            .env("COVE_BIND_ADDR", "127.0.0.1:2222")
            .env("HASHED_PASSWORD", "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQxMjM$RdescudvJCsgt3ub+b+dWRWJTmaaJObG8rGbPw7r9M4")
            .output(),
    )
    .await
    .expect("--print-config exits at once")
    .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let file = config.display().to_string();
    for expected in [
        format!("config: {file} (flag --config; read)"),
        "bind-addr: 127.0.0.1:2222 (env $COVE_BIND_ADDR)".to_owned(),
        format!("password: ******** (file {file})"),
        "hashed-password: ******** (env $HASHED_PASSWORD)".to_owned(),
        format!("max-terminals: 9 (file {file})"),
        "scrollback: 5000 (flag --scrollback)".to_owned(),
        "auth: password (default)".to_owned(),
    ] {
        assert!(
            text.lines().any(|l| l == expected),
            "{expected:?} in\n{text}"
        );
    }
    assert!(!text.contains("file-secret-123"), "{text}");
    assert!(!text.contains("argon2id"), "{text}");
}
