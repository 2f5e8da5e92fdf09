//! WebSocket clients for cove: connecting and reading with deadlines, the raw terminal socket
//! (PROTOCOL.md section 2: binary PTY bytes, an `attached` text frame first) and the JSON
//! control socket (section 1: `welcome`, then typed messages). Departures from the protocol
//! become notes, not errors, so that a run still measures what it can.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::timeout_at;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};

use super::{REQUEST_TIMEOUT, push_note};
use crate::pty::{COLS, ROWS};
use crate::term::Net;

pub(crate) type Ws = WebSocketStream<Net>;

/// Percent-encodes everything except RFC 3986 unreserved characters.
pub(crate) fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(crate) async fn ws_connect(port: u16, path: &str) -> Result<Ws> {
    ws_connect_with(port, path, &[]).await
}

/// Like [`ws_connect`] with extra handshake headers (e.g. `Authorization: Bearer cove_...`).
pub(crate) async fn ws_connect_with(port: u16, path: &str, headers: &[(&str, &str)]) -> Result<Ws> {
    let fut = async {
        let mut request = format!("ws://127.0.0.1:{port}{path}").into_client_request()?;
        for (name, value) in headers {
            request.headers_mut().insert(
                HeaderName::from_bytes(name.as_bytes())?,
                HeaderValue::from_str(value)?,
            );
        }
        let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
        tcp.set_nodelay(true)?;
        let (ws, _resp) = tokio_tungstenite::client_async(request, Net::new(tcp)).await?;
        anyhow::Ok(ws)
    };
    tokio::time::timeout(REQUEST_TIMEOUT, fut)
        .await
        .map_err(|_| anyhow!("WebSocket {path}: no handshake within {REQUEST_TIMEOUT:?}"))?
        .with_context(|| format!("WebSocket {path}"))
}

/// The next data message (text or binary) before `deadline`; `None` on
/// timeout. A close or an error is an error.
pub(crate) async fn next_msg(ws: &mut Ws, deadline: Instant) -> Result<Option<Message>> {
    loop {
        let d = tokio::time::Instant::from_std(deadline);
        match timeout_at(d, ws.next()).await {
            Err(_) => return Ok(None),
            Ok(None) => bail!("the socket ended"),
            Ok(Some(Err(e))) => return Err(e).context("socket error"),
            Ok(Some(Ok(m))) => match m {
                Message::Text(_) | Message::Binary(_) => return Ok(Some(m)),
                Message::Close(f) => bail!("the server closed the socket: {f:?}"),
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            },
        }
    }
}

pub(crate) async fn ws_send(ws: &mut Ws, m: Message) -> Result<()> {
    tokio::time::timeout(REQUEST_TIMEOUT, ws.send(m))
        .await
        .map_err(|_| anyhow!("send timed out"))?
        .context("send")
}

pub(crate) async fn ws_close(mut ws: Ws) {
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
}

pub(crate) fn text_json(m: &Message) -> Option<Value> {
    match m {
        Message::Text(t) => serde_json::from_str(t.as_str()).ok(),
        _ => None,
    }
}

pub(crate) fn msg_type(v: &Value) -> &str {
    v.get("type").and_then(|t| t.as_str()).unwrap_or("")
}

// ---------------------------------------------------------------------------
// Raw terminal socket (PROTOCOL.md section 2)

pub(crate) fn raw_path(id: &str, tid: &str, command: &str) -> String {
    format!(
        "/api/workspaces/{}/terminals/{}/ws?cols={COLS}&rows={ROWS}&command={}",
        urlencode(id),
        urlencode(tid),
        urlencode(command)
    )
}

/// Waits for the first message, which must be the `attached` text frame.
/// Returns binary bytes that came instead (a protocol departure) so the
/// caller can still use them.
pub(crate) async fn expect_attached(ws: &mut Ws, notes: &mut Vec<String>) -> Result<Value> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let m = next_msg(ws, deadline)
        .await?
        .ok_or_else(|| anyhow!("no `attached` message within {REQUEST_TIMEOUT:?}"))?;
    match text_json(&m) {
        Some(v) if msg_type(&v) == "attached" => {
            let missing: Vec<&str> = ["offset", "cols", "rows"]
                .into_iter()
                .filter(|k| v.get(k).and_then(|x| x.as_u64()).is_none())
                .collect();
            if !missing.is_empty() {
                push_note(
                    notes,
                    format!(
                        "raw socket: `attached` lacks numeric {} (PROTOCOL.md section 2): {v}",
                        missing.join(", ")
                    ),
                );
            }
            Ok(v)
        }
        _ => {
            push_note(
                notes,
                format!(
                    "raw socket: the first message is not the `attached` text frame \
                     (PROTOCOL.md section 2) but {}",
                    describe(&m)
                ),
            );
            Ok(Value::Null)
        }
    }
}

pub(crate) fn describe(m: &Message) -> String {
    match m {
        Message::Text(t) => format!("text {:?}", truncate(t.as_str(), 200)),
        Message::Binary(b) => format!("binary {:?}", truncate(&String::from_utf8_lossy(b), 200)),
        other => format!("{other:?}"),
    }
}

pub(crate) fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Reads until output has come and then nothing for `quiet` (the prompt is
/// out), or until `max`. With `need_output == false`, only waits for quiet.
pub(crate) async fn raw_settle(
    ws: &mut Ws,
    quiet: Duration,
    max: Duration,
    need_output: bool,
) -> Result<u64> {
    let end = Instant::now() + max;
    let mut seen = !need_output;
    let mut bytes = 0u64;
    loop {
        let now = Instant::now();
        if now >= end {
            return Ok(bytes);
        }
        let deadline = if seen { (now + quiet).min(end) } else { end };
        match next_msg(ws, deadline).await? {
            None => return Ok(bytes),
            Some(Message::Binary(b)) => {
                bytes += b.len() as u64;
                seen = true;
            }
            Some(m) => {
                if let Some(v) = text_json(&m)
                    && msg_type(&v) == "exit"
                {
                    bail!("the terminal exited: {v}");
                }
            }
        }
    }
}

/// Reads until the `exit` text frame and the close of the socket (or the
/// timeout). Returns the `exit` message and the close code (`Some(None)`
/// when the socket ended without a close frame or code).
pub(crate) async fn wait_exit_and_close(
    ws: &mut Ws,
    timeout: Duration,
) -> (Option<Value>, Option<Option<u16>>) {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut exit = None;
    loop {
        match timeout_at(deadline, ws.next()).await {
            Err(_) => return (exit, None),
            Ok(None) | Ok(Some(Err(_))) => return (exit, Some(None)),
            Ok(Some(Ok(Message::Close(f)))) => {
                return (exit, Some(f.map(|f| u16::from(f.code))));
            }
            Ok(Some(Ok(m))) => {
                if let Some(v) = text_json(&m)
                    && msg_type(&v) == "exit"
                {
                    exit = Some(v);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// JSON control socket (PROTOCOL.md section 1)

/// Connects and reads the `welcome` message.
pub(crate) async fn ctl_connect(port: u16, id: &str, notes: &mut Vec<String>) -> Result<Ws> {
    let mut ws = ws_connect(port, &format!("/api/workspaces/{}/ws", urlencode(id))).await?;
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let m = next_msg(&mut ws, deadline)
        .await?
        .ok_or_else(|| anyhow!("no `welcome` within {REQUEST_TIMEOUT:?}"))?;
    match text_json(&m) {
        Some(v) if msg_type(&v) == "welcome" => {
            if v.get("protocol").and_then(|p| p.as_u64()) != Some(1) {
                push_note(
                    notes,
                    format!("JSON socket: `welcome` lacks `protocol: 1`: {v}"),
                );
            }
        }
        _ => push_note(
            notes,
            format!(
                "JSON socket: the first message is not `welcome` (PROTOCOL.md section 1) but {}",
                describe(&m)
            ),
        ),
    }
    Ok(ws)
}

pub(crate) async fn ctl_send(ws: &mut Ws, v: Value) -> Result<()> {
    ws_send(ws, Message::text(v.to_string())).await
}

/// Waits for a JSON message accepted by `want`; an `error` message is an
/// error. Other messages are skipped.
pub(crate) async fn ctl_wait(
    ws: &mut Ws,
    timeout: Duration,
    what: &str,
    mut want: impl FnMut(&Value) -> bool,
) -> Result<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let m = next_msg(ws, deadline)
            .await?
            .ok_or_else(|| anyhow!("no {what} within {timeout:?}"))?;
        let Some(v) = text_json(&m) else {
            continue;
        };
        if msg_type(&v) == "error" {
            bail!("error reply while waiting for {what}: {v}");
        }
        if want(&v) {
            return Ok(v);
        }
    }
}

pub(crate) fn is_for(v: &Value, ty: &str, tid: &str) -> bool {
    msg_type(v) == ty && v.get("terminalId").and_then(|t| t.as_str()) == Some(tid)
}

pub(crate) async fn ctl_create_terminal(ws: &mut Ws, tid: &str, command: &str) -> Result<()> {
    ctl_send(
        ws,
        json!({"type": "create_terminal", "payload": {
            "terminalId": tid, "cols": COLS, "rows": ROWS, "command": command}}),
    )
    .await?;
    ctl_wait(ws, REQUEST_TIMEOUT, "terminal_created", |v| {
        is_for(v, "terminal_created", tid)
    })
    .await?;
    Ok(())
}

/// Like [`raw_settle`] for `terminal_output` of `tid`.
pub(crate) async fn ctl_settle(
    ws: &mut Ws,
    tid: &str,
    quiet: Duration,
    max: Duration,
    need_output: bool,
) -> Result<()> {
    let end = Instant::now() + max;
    let mut seen = !need_output;
    loop {
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        let deadline = if seen { (now + quiet).min(end) } else { end };
        match next_msg(ws, deadline).await? {
            None => return Ok(()),
            Some(m) => {
                if let Some(v) = text_json(&m) {
                    if is_for(&v, "terminal_output", tid) {
                        seen = true;
                    } else if is_for(&v, "terminal_exit", tid) {
                        bail!("the terminal exited: {v}");
                    }
                }
            }
        }
    }
}

pub(crate) async fn ctl_close_terminal(ws: &mut Ws, tid: &str) -> Result<()> {
    ctl_send(
        ws,
        json!({"type": "close_terminal", "payload": {"terminalId": tid}}),
    )
    .await?;
    ctl_wait(ws, Duration::from_secs(5), "terminal_exit", |v| {
        is_for(v, "terminal_exit", tid)
    })
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding() {
        assert_eq!(
            urlencode("bash --norc --noprofile -i"),
            "bash%20--norc%20--noprofile%20-i"
        );
        assert_eq!(
            urlencode("stty raw -echo; exec cat"),
            "stty%20raw%20-echo%3B%20exec%20cat"
        );
    }
}
