//! One HTTP/1.1 request to a local `cove serve` that reports failures as errors instead of
//! panicking (the benchmarks poll servers that are not up yet, and note what went wrong).
//!
//! The request is what the server accepts from a client that is not a browser: `Host:
//! 127.0.0.1:PORT` unless the caller gives one, no `Origin`, `Connection: close`; a JSON
//! body needs the caller's `Content-Type: application/json`.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The most of a response that is read.
const MAX_RESPONSE: u64 = 64 << 20;

/// A response: status, head (status line and headers) and body (de-chunked).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON; the error shows the status and the body.
    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "HTTP {} body is not JSON: {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request to `127.0.0.1:port` with `Connection: close` and reads the whole
/// answer, all within `wait`.
pub async fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    wait: Duration,
) -> Result<Response> {
    request_from(None, port, method, path, headers, body, wait).await
}

/// Like [`request`], from the loopback address `source` (e.g. `127.0.0.2`) when given: a
/// second client machine, as far as the server can tell.
pub async fn request_from(
    source: Option<std::net::IpAddr>,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    wait: Duration,
) -> Result<Response> {
    let exchange = async {
        let mut stream = match source {
            None => TcpStream::connect(("127.0.0.1", port)).await?,
            Some(source) => {
                let socket = tokio::net::TcpSocket::new_v4()?;
                socket.bind((source, 0).into())?;
                socket.connect(([127, 0, 0, 1], port).into()).await?
            }
        };
        stream.set_nodelay(true)?;
        let body = body.unwrap_or_default();
        let mut head = format!("{method} {path} HTTP/1.1\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            head.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
        }
        head.push_str(&format!(
            "Connection: close\r\nContent-Length: {}\r\n",
            body.len()
        ));
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        stream.write_all(&bytes).await?;
        let mut raw = Vec::new();
        stream.take(MAX_RESPONSE).read_to_end(&mut raw).await?;
        parse_response(&raw)
    };
    tokio::time::timeout(wait, exchange)
        .await
        .map_err(|_| anyhow!("{method} {path}: no answer within {wait:?}"))?
        .with_context(|| format!("{method} {path}"))
}

fn parse_response(buf: &[u8]) -> Result<Response> {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("no HTTP header"))?;
    let head = std::str::from_utf8(&buf[..end])?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?;
    let mut chunked = false;
    let mut length = None;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            } else if k == "content-length" {
                length = v.parse::<usize>().ok();
            }
        }
    }
    let rest = &buf[end + 4..];
    let body = if chunked {
        decode_chunked(rest)?
    } else if let Some(n) = length {
        rest.get(..n)
            .ok_or_else(|| anyhow!("body shorter than Content-Length"))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response {
        status,
        head: head.to_string(),
        body,
    })
}

fn decode_chunked(mut b: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for _ in 0..100_000 {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| anyhow!("bad chunk"))?;
        let size_str = std::str::from_utf8(&b[..eol])?;
        let size = usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16)?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(b.get(..size).ok_or_else(|| anyhow!("short chunk"))?);
        b = b.get(size + 2..).unwrap_or(&[]);
    }
    bail!("too many chunks")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        let r =
            parse_response(b"HTTP/1.1 201 Created\r\ncontent-length: 8\r\n\r\n{\"id\":1}").unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(r.json().unwrap()["id"], 1);
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab\r\n\r\n2\r\ncd\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, b"ab\r\ncd");
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
    }
}
