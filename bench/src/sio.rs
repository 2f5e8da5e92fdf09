//! A minimal Engine.IO v4 / Socket.IO v5 client framing over a WebSocket
//! (the `websocket` transport only, no HTTP long-polling, no binary
//! attachments), enough to drive wetty.
//!
//! Engine.IO v4 packets are text frames whose first character is the type:
//! `0` open (JSON handshake follows), `1` close, `2` ping, `3` pong,
//! `4` message, `5` upgrade, `6` noop. The server pings; the client answers
//! each `2` with `3` (same payload) or the server drops it after
//! `pingInterval + pingTimeout`.
//!
//! A Socket.IO v5 packet travels in an Engine.IO `message`:
//! `<type>[<attachments>-][<namespace>,][<ack id>][<JSON>]` with types
//! `0` CONNECT, `1` DISCONNECT, `2` EVENT, `3` ACK, `4` CONNECT_ERROR,
//! `5` BINARY_EVENT, `6` BINARY_ACK. The client must send CONNECT (`40` for
//! the main namespace `/`) before any event; the server answers `40{"sid":..}`.
//! An event is a JSON array `["name", args...]`, so `socket.emit("input", s)`
//! is the frame `42["input","s"]`.

use anyhow::{Result, anyhow, bail};
use serde_json::Value;

/// The Engine.IO handshake (`0{...}`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Open {
    pub sid: String,
    pub ping_interval_ms: u64,
    pub ping_timeout_ms: u64,
    pub max_payload: u64,
}

/// One Engine.IO packet (text form).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Eio<'a> {
    Open(Open),
    Close,
    Ping(&'a str),
    Pong(&'a str),
    /// The payload is a Socket.IO packet.
    Message(&'a str),
    Upgrade,
    Noop,
}

pub(crate) fn parse_eio(frame: &str) -> Result<Eio<'_>> {
    let mut chars = frame.chars();
    let ty = chars
        .next()
        .ok_or_else(|| anyhow!("empty Engine.IO packet"))?;
    let rest = &frame[ty.len_utf8()..];
    Ok(match ty {
        '0' => {
            let v: Value = serde_json::from_str(rest)
                .map_err(|e| anyhow!("bad Engine.IO open packet {rest:?}: {e}"))?;
            Eio::Open(Open {
                sid: v
                    .get("sid")
                    .and_then(|s| s.as_str())
                    .ok_or_else(|| anyhow!("open packet without sid: {rest}"))?
                    .to_string(),
                ping_interval_ms: v.get("pingInterval").and_then(|x| x.as_u64()).unwrap_or(0),
                ping_timeout_ms: v.get("pingTimeout").and_then(|x| x.as_u64()).unwrap_or(0),
                max_payload: v.get("maxPayload").and_then(|x| x.as_u64()).unwrap_or(0),
            })
        }
        '1' => Eio::Close,
        '2' => Eio::Ping(rest),
        '3' => Eio::Pong(rest),
        '4' => Eio::Message(rest),
        '5' => Eio::Upgrade,
        '6' => Eio::Noop,
        other => bail!("unknown Engine.IO packet type {other:?}"),
    })
}

/// The answer to a ping (`2probe` -> `3probe`, `2` -> `3`).
pub(crate) fn pong(payload: &str) -> String {
    format!("3{payload}")
}

/// One Socket.IO packet.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Sio {
    Connect {
        nsp: String,
        data: Option<Value>,
    },
    Disconnect {
        nsp: String,
    },
    Event {
        nsp: String,
        id: Option<u64>,
        name: String,
        args: Vec<Value>,
    },
    Ack {
        nsp: String,
        id: u64,
        args: Vec<Value>,
    },
    ConnectError {
        nsp: String,
        data: Option<Value>,
    },
}

/// Parses the Socket.IO packet inside an Engine.IO `message`.
pub(crate) fn parse_sio(s: &str) -> Result<Sio> {
    let b = s.as_bytes();
    let ty = *b.first().ok_or_else(|| anyhow!("empty Socket.IO packet"))?;
    let mut i = 1;
    if ty == b'5' || ty == b'6' {
        bail!(
            "binary Socket.IO packets are not supported: {}",
            truncate(s)
        );
    }
    // Namespace: starts with '/', ends at ','.
    let mut nsp = "/".to_string();
    if b.get(i) == Some(&b'/') {
        let end = s[i..].find(',').map(|p| i + p).unwrap_or(s.len());
        nsp = s[i..end].to_string();
        i = (end + 1).min(s.len());
    }
    // Ack id: digits before the JSON.
    let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    let id = if digits > 0 {
        Some(s[i..i + digits].parse::<u64>()?)
    } else {
        None
    };
    i += digits;
    let json = &s[i..];
    let data: Option<Value> = if json.is_empty() {
        None
    } else {
        Some(
            serde_json::from_str(json)
                .map_err(|e| anyhow!("bad Socket.IO JSON {}: {e}", truncate(json)))?,
        )
    };
    Ok(match ty {
        b'0' => Sio::Connect { nsp, data },
        b'1' => Sio::Disconnect { nsp },
        b'2' => {
            let Some(Value::Array(mut arr)) = data else {
                bail!("Socket.IO event without an array: {}", truncate(s));
            };
            if arr.is_empty() {
                bail!("Socket.IO event without a name");
            }
            let name = match arr.remove(0) {
                Value::String(n) => n,
                other => bail!("Socket.IO event name is not a string: {other}"),
            };
            Sio::Event {
                nsp,
                id,
                name,
                args: arr,
            }
        }
        b'3' => {
            let args = match data {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            };
            Sio::Ack {
                nsp,
                id: id.ok_or_else(|| anyhow!("Socket.IO ack without an id"))?,
                args,
            }
        }
        b'4' => Sio::ConnectError { nsp, data },
        other => bail!("unknown Socket.IO packet type {:?}", other as char),
    })
}

/// The Engine.IO frame that connects to a namespace (`40` for `/`).
pub(crate) fn connect_frame(nsp: &str) -> String {
    if nsp == "/" || nsp.is_empty() {
        "40".to_string()
    } else {
        format!("40{nsp},")
    }
}

/// The Engine.IO frame of `socket.emit(name, ...args)` on namespace `/`.
pub(crate) fn event_frame(name: &str, args: &[Value]) -> String {
    let mut arr = Vec::with_capacity(args.len() + 1);
    arr.push(Value::String(name.to_string()));
    arr.extend_from_slice(args);
    format!("42{}", Value::Array(arr))
}

/// Fast path for the hot `42["data","<text>"]` frame: returns the text of a
/// one-string-argument event named `name` on `/` without building a
/// `serde_json::Value` tree. `None` when the frame is something else.
pub(crate) fn string_event(frame: &str, name: &str) -> Option<String> {
    let rest = frame.strip_prefix("42[")?;
    let rest = rest.strip_prefix('"')?;
    let rest = rest.strip_prefix(name)?;
    let rest = rest.strip_prefix("\",")?;
    let body = rest.strip_suffix(']')?;
    serde_json::from_str::<String>(body).ok()
}

fn truncate(s: &str) -> String {
    if s.len() <= 120 {
        return s.to_string();
    }
    let mut end = 120;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn engine_io_packets() {
        let open = parse_eio(
            r#"0{"sid":"abc","upgrades":[],"pingInterval":3000,"pingTimeout":7000,"maxPayload":1000000}"#,
        )
        .unwrap();
        assert_eq!(
            open,
            Eio::Open(Open {
                sid: "abc".into(),
                ping_interval_ms: 3000,
                ping_timeout_ms: 7000,
                max_payload: 1_000_000
            })
        );
        assert_eq!(parse_eio("2").unwrap(), Eio::Ping(""));
        assert_eq!(parse_eio("2probe").unwrap(), Eio::Ping("probe"));
        assert_eq!(pong(""), "3");
        assert_eq!(pong("probe"), "3probe");
        assert_eq!(parse_eio("3").unwrap(), Eio::Pong(""));
        assert_eq!(parse_eio("1").unwrap(), Eio::Close);
        assert_eq!(parse_eio("6").unwrap(), Eio::Noop);
        assert_eq!(parse_eio("42[\"a\"]").unwrap(), Eio::Message("2[\"a\"]"));
        assert!(parse_eio("").is_err());
        assert!(parse_eio("9").is_err());
        assert!(parse_eio("0{not json").is_err());
    }

    #[test]
    fn socket_io_packets() {
        assert_eq!(
            parse_sio(r#"0{"sid":"x"}"#).unwrap(),
            Sio::Connect {
                nsp: "/".into(),
                data: Some(json!({"sid": "x"}))
            }
        );
        assert_eq!(
            parse_sio("0/admin,").unwrap(),
            Sio::Connect {
                nsp: "/admin".into(),
                data: None
            }
        );
        assert_eq!(
            parse_sio(r#"2["data","hi\r\n"]"#).unwrap(),
            Sio::Event {
                nsp: "/".into(),
                id: None,
                name: "data".into(),
                args: vec![json!("hi\r\n")]
            }
        );
        assert_eq!(
            parse_sio(r#"2/chat,12["msg",1,{"a":2}]"#).unwrap(),
            Sio::Event {
                nsp: "/chat".into(),
                id: Some(12),
                name: "msg".into(),
                args: vec![json!(1), json!({"a": 2})]
            }
        );
        assert_eq!(
            parse_sio("37[true]").unwrap(),
            Sio::Ack {
                nsp: "/".into(),
                id: 7,
                args: vec![json!(true)]
            }
        );
        assert_eq!(parse_sio("1").unwrap(), Sio::Disconnect { nsp: "/".into() });
        assert_eq!(
            parse_sio(r#"4{"message":"Not authorized"}"#).unwrap(),
            Sio::ConnectError {
                nsp: "/".into(),
                data: Some(json!({"message": "Not authorized"}))
            }
        );
        assert!(parse_sio(r#"51-["x",{"_placeholder":true,"num":0}]"#).is_err());
        assert!(parse_sio("2{}").is_err());
        assert!(parse_sio("").is_err());
    }

    #[test]
    fn frames_out() {
        assert_eq!(connect_frame("/"), "40");
        assert_eq!(connect_frame("/x"), "40/x,");
        assert_eq!(
            event_frame("input", &[json!("ls\n")]),
            r#"42["input","ls\n"]"#
        );
        assert_eq!(
            event_frame("resize", &[json!({"cols": 200, "rows": 50})]),
            r#"42["resize",{"cols":200,"rows":50}]"#
        );
        assert_eq!(
            event_frame("commit", &[json!(4096)]),
            r#"42["commit",4096]"#
        );
    }

    #[test]
    fn data_fast_path() {
        assert_eq!(
            string_event(r#"42["data","a\u001b[0m\"b\"\r\n"]"#, "data").as_deref(),
            Some("a\u{1b}[0m\"b\"\r\n")
        );
        assert_eq!(string_event(r#"42["login"]"#, "data"), None);
        assert_eq!(string_event(r#"42["data",5]"#, "data"), None);
        assert_eq!(string_event(r#"42["database","x"]"#, "data"), None);
        // A comma inside the string is not an argument separator.
        assert_eq!(
            string_event(r#"42["data","x\",\"y"]"#, "data").as_deref(),
            Some("x\",\"y")
        );
    }
}
