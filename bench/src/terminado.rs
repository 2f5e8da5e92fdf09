//! terminado's WebSocket framing (Jupyter Server terminals): text frames
//! carrying JSON arrays.
//!
//! - client: `["stdin", text]`, `["set_size", rows, cols]`
//! - server: `["setup", {}]` on open, `["stdout", text]`, `["disconnect", 1]`
//!   when the PTY dies.

use anyhow::{Result, anyhow, bail};
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Msg {
    Setup,
    Stdout(String),
    Disconnect,
    Other(String),
}

pub(crate) fn parse(frame: &str) -> Result<Msg> {
    // Fast path for the hot message: no Value tree for 200 MB of output.
    if let Some(body) = frame
        .strip_prefix("[\"stdout\",")
        .and_then(|r| r.strip_suffix(']'))
        && let Ok(text) = serde_json::from_str::<String>(body.trim_start())
    {
        return Ok(Msg::Stdout(text));
    }
    let v: Value = serde_json::from_str(frame)
        .map_err(|e| anyhow!("terminado: bad JSON {:?}: {e}", short(frame)))?;
    let Value::Array(mut arr) = v else {
        bail!("terminado: not a JSON array: {}", short(frame));
    };
    if arr.is_empty() {
        bail!("terminado: empty array");
    }
    let ty = match arr.remove(0) {
        Value::String(s) => s,
        other => bail!("terminado: message type is not a string: {other}"),
    };
    Ok(match ty.as_str() {
        "setup" => Msg::Setup,
        "disconnect" => Msg::Disconnect,
        "stdout" => match arr.into_iter().next() {
            Some(Value::String(s)) => Msg::Stdout(s),
            _ => bail!("terminado: stdout without text"),
        },
        _ => Msg::Other(ty),
    })
}

pub(crate) fn stdin(text: &str) -> String {
    json!(["stdin", text]).to_string()
}

pub(crate) fn set_size(rows: u16, cols: u16) -> String {
    json!(["set_size", rows, cols]).to_string()
}

fn short(s: &str) -> String {
    s.chars().take(120).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_messages() {
        assert_eq!(parse(r#"["setup", {}]"#).unwrap(), Msg::Setup);
        assert_eq!(
            parse(r#"["stdout", "$ "]"#).unwrap(),
            Msg::Stdout("$ ".into())
        );
        assert_eq!(
            parse(r#"["stdout","a\r\n\u001b[?2004h"]"#).unwrap(),
            Msg::Stdout("a\r\n\u{1b}[?2004h".into())
        );
        assert_eq!(parse(r#"["disconnect", 1]"#).unwrap(), Msg::Disconnect);
        assert_eq!(
            parse(r#"["other", 1]"#).unwrap(),
            Msg::Other("other".into())
        );
        assert!(parse("{}").is_err());
        assert!(parse("[]").is_err());
        assert!(parse(r#"["stdout"]"#).is_err());
        assert!(parse("not json").is_err());
    }

    #[test]
    fn client_messages() {
        assert_eq!(stdin("ls\r"), r#"["stdin","ls\r"]"#);
        assert_eq!(stdin("\"q\""), r#"["stdin","\"q\""]"#);
        assert_eq!(set_size(50, 200), r#"["set_size",50,200]"#);
    }
}
