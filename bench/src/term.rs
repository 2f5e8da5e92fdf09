//! One client for every terminal server: a [`Target`] opens a [`Term`], a
//! bash at 200x50 with the prompt `$ `, over the target's own protocol:
//!
//! | target | transport |
//! |---|---|
//! | bare PTY | the PTY master, no server (tokio `AsyncFd`) |
//! | cove raw socket | PROTOCOL.md section 2: binary frames are PTY bytes |
//! | cove JSON socket | PROTOCOL.md section 1: `create_terminal`, `terminal_input`, `terminal_output` |
//! | Jupyter Server | `POST /api/terminals`, then terminado's `["stdin", …]` / `["stdout", …]` |
//! | wetty | Socket.IO v5 over Engine.IO v4 (WebSocket transport): `input`, `data`, `commit`, `resize` |
//!
//! Every measurement (throughput, echo, time to prompt, held terminals,
//! the slow reader) is written once against [`Term`], so each server is
//! measured by the same code.

use std::collections::VecDeque;
use std::io;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Sleep, timeout_at};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::cove::{self, Ws, http, http_with, urlencode};
use crate::pty::{COLS, Pty, ROWS, shell_command};
use crate::{sio, terminado};

/// The prompt every shell prints (`PS1='$ '`).
pub(crate) const PROMPT: &[u8] = b"$ ";

/// What cove runs for a terminal: its runner starts commands with
/// `/bin/bash -c` and a clean environment, so the prompt is set here.
pub(crate) const COVE_SHELL: &str = "PS1='$ ' exec bash --norc --noprofile -i";

/// Typed into a shell to turn it into the echo terminal.
pub(crate) const ECHO_LINE: &str = "stty raw -echo; exec cat\n";

/// Timeout of a connection, an HTTP request, a handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// A TCP stream that can be slowed down (the slow reader)

/// A TCP stream whose reads can be limited to a rate (a token bucket), to
/// play a client that reads slowly. Writes are never limited.
pub(crate) struct Net {
    tcp: TcpStream,
    limit: Option<Limiter>,
}

struct Limiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    sleep: Pin<Box<Sleep>>,
    scratch: Vec<u8>,
}

impl Net {
    pub(crate) fn new(tcp: TcpStream) -> Self {
        Self { tcp, limit: None }
    }

    /// Limits reads to `bytes_per_sec` from now on (`None`: no limit).
    pub(crate) fn set_read_limit(&mut self, bytes_per_sec: Option<u64>) {
        self.limit = bytes_per_sec.map(|r| {
            let burst = (r as f64 / 4.0).clamp(1024.0, 65536.0);
            Limiter {
                rate: r as f64,
                burst,
                tokens: 0.0,
                last: Instant::now(),
                sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
                scratch: vec![0u8; burst as usize],
            }
        });
    }
}

impl Limiter {
    fn refill(&mut self) {
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
    }
}

impl AsyncRead for Net {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(l) = this.limit.as_mut() else {
            return Pin::new(&mut this.tcp).poll_read(cx, buf);
        };
        loop {
            l.refill();
            // Wait for at least a quarter of a burst, so reads stay chunky.
            let want = (l.burst / 4.0).max(1.0);
            if l.tokens >= want.min(buf.remaining() as f64).max(1.0) {
                break;
            }
            let wait = Duration::from_secs_f64((want - l.tokens).max(1.0) / l.rate);
            let deadline = tokio::time::Instant::now() + wait;
            l.sleep.as_mut().reset(deadline);
            match l.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => continue,
                Poll::Pending => return Poll::Pending,
            }
        }
        let allow = (l.tokens as usize)
            .min(buf.remaining())
            .min(l.scratch.len());
        let mut sub = ReadBuf::new(&mut l.scratch[..allow]);
        match Pin::new(&mut this.tcp).poll_read(cx, &mut sub) {
            Poll::Ready(Ok(())) => {
                let n = sub.filled().len();
                buf.put_slice(sub.filled());
                l.tokens -= n as f64;
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl AsyncWrite for Net {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// A WebSocket client connection to `ws://127.0.0.1:{port}{path}`.
pub(crate) async fn ws_open(port: u16, path: &str) -> Result<Ws> {
    let fut = async {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
        tcp.set_nodelay(true)?;
        let url = format!("ws://127.0.0.1:{port}{path}");
        let config = WebSocketConfig::default()
            .max_message_size(Some(256 << 20))
            .max_frame_size(Some(256 << 20));
        let (ws, _resp) =
            tokio_tungstenite::client_async_with_config(url, Net::new(tcp), Some(config)).await?;
        anyhow::Ok(ws)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, fut)
        .await
        .map_err(|_| anyhow!("WebSocket {path}: no handshake within {CONNECT_TIMEOUT:?}"))?
        .with_context(|| format!("WebSocket {path}"))
}

// ---------------------------------------------------------------------------
// The bare PTY, async

pub(crate) struct BarePty {
    fd: AsyncFd<OwnedFd>,
    child: std::process::Child,
}

impl BarePty {
    fn spawn() -> Result<Self> {
        let child = Pty::open(COLS, ROWS)?.spawn(shell_command())?;
        let master = child.master;
        // SAFETY: the OwnedFd is moved into the AsyncFd, stays open and
        // refers to the same open file description until the AsyncFd is
        // dropped; nothing else holds it.
        let fd = unsafe {
            AsyncFd::register_with_interest(master, Interest::READABLE | Interest::WRITABLE)
        }
        .context("register the PTY master with tokio")?;
        Ok(Self {
            fd,
            child: child.child,
        })
    }

    async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|inner| {
                rustix::io::read(inner.get_ref(), &mut *buf).map_err(io::Error::from)
            }) {
                Ok(Ok(n)) => return Ok(n),
                // Linux answers EIO once every slave fd is closed.
                Ok(Err(e)) if e.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error()) => {
                    return Ok(0);
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }

    async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let mut guard = self.fd.writable().await?;
            match guard
                .try_io(|inner| rustix::io::write(inner.get_ref(), data).map_err(io::Error::from))
            {
                Ok(Ok(n)) => data = &data[n..],
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    fn kill(mut self) {
        let _ = self.child.kill(); // SIGKILL to this child's pid
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// Targets and terminals

/// What a terminal is opened on.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Bare,
    CoveRaw { port: u16, ws: String },
    CoveJson { port: u16, ws: String },
    Jupyter { port: u16, token: String },
    Wetty { port: u16 },
}

impl Target {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Target::Bare => "bare PTY",
            Target::CoveRaw { .. } => "cove raw socket",
            Target::CoveJson { .. } => "cove JSON socket",
            Target::Jupyter { .. } => "Jupyter Server terminals",
            Target::Wetty { .. } => "wetty",
        }
    }

    /// Opens a new terminal (a fresh bash). `tid` names it where the
    /// protocol lets the client choose (cove); it must be unused.
    pub(crate) async fn open(&self, tid: &str) -> Result<Term> {
        let kind = match self {
            Target::Bare => Kind::Bare(BarePty::spawn()?),
            Target::CoveRaw { port, ws } => {
                let mut sock = ws_open(*port, &cove::raw_path(ws, tid, COVE_SHELL)).await?;
                let mut notes = Vec::new();
                cove::expect_attached(&mut sock, &mut notes).await?;
                if let Some(n) = notes.first() {
                    bail!("{n}");
                }
                Kind::CoveRaw {
                    ws: sock,
                    port: *port,
                    wsid: ws.clone(),
                    tid: tid.to_string(),
                }
            }
            Target::CoveJson { port, ws } => {
                let mut sock =
                    ws_open(*port, &format!("/api/workspaces/{}/ws", urlencode(ws))).await?;
                // welcome
                let first = cove::next_msg(&mut sock, Instant::now() + CONNECT_TIMEOUT)
                    .await?
                    .ok_or_else(|| anyhow!("no `welcome`"))?;
                if cove::text_json(&first).is_none_or(|v| cove::msg_type(&v) != "welcome") {
                    bail!(
                        "the first message is not `welcome`: {}",
                        cove::describe(&first)
                    );
                }
                cove::ctl_send(
                    &mut sock,
                    json!({"type": "create_terminal", "payload": {
                        "terminalId": tid, "cols": COLS, "rows": ROWS, "command": COVE_SHELL}}),
                )
                .await?;
                Kind::CoveJson {
                    ws: sock,
                    tid: tid.to_string(),
                    created: false,
                }
            }
            Target::Jupyter { port, token } => {
                let r = http_with(
                    *port,
                    "POST",
                    "/api/terminals",
                    &[("Authorization", &format!("token {token}"))],
                    Some("{}"),
                )
                .await?;
                if !(200..300).contains(&r.status) {
                    bail!(
                        "POST /api/terminals answered {}: {}",
                        r.status,
                        r.text().trim()
                    );
                }
                let v = r.json()?;
                let name = v
                    .get("name")
                    .and_then(|n| n.as_str())
                    .ok_or_else(|| anyhow!("no `name` in {v}"))?
                    .to_string();
                let mut sock = ws_open(
                    *port,
                    &format!(
                        "/terminals/websocket/{}?token={}",
                        urlencode(&name),
                        urlencode(token)
                    ),
                )
                .await?;
                cove::ws_send(&mut sock, Message::text(terminado::set_size(ROWS, COLS))).await?;
                Kind::Jupyter {
                    ws: sock,
                    port: *port,
                    token: token.clone(),
                    name,
                }
            }
            Target::Wetty { port } => {
                let mut sock = ws_open(*port, "/socket.io/?EIO=4&transport=websocket").await?;
                let deadline = Instant::now() + CONNECT_TIMEOUT;
                let open = loop {
                    let m = cove::next_msg(&mut sock, deadline)
                        .await?
                        .ok_or_else(|| anyhow!("no Engine.IO open packet"))?;
                    if let Message::Text(t) = &m
                        && let sio::Eio::Open(o) = sio::parse_eio(t.as_str())?
                    {
                        break o;
                    }
                };
                cove::ws_send(&mut sock, Message::text(sio::connect_frame("/"))).await?;
                // The CONNECT answer; events may follow it at once.
                let mut pending = VecDeque::new();
                loop {
                    let m = cove::next_msg(&mut sock, deadline)
                        .await?
                        .ok_or_else(|| anyhow!("no Socket.IO CONNECT answer"))?;
                    let Message::Text(t) = &m else { continue };
                    match sio::parse_eio(t.as_str())? {
                        sio::Eio::Ping(p) => {
                            cove::ws_send(&mut sock, Message::text(sio::pong(p))).await?
                        }
                        sio::Eio::Message(s) => match sio::parse_sio(s)? {
                            sio::Sio::Connect { .. } => break,
                            sio::Sio::ConnectError { data, .. } => {
                                bail!("Socket.IO CONNECT refused: {data:?}")
                            }
                            sio::Sio::Event { name, args, .. } if name == "data" => {
                                if let Some(Value::String(s)) = args.into_iter().next() {
                                    pending.push_back(Bytes::from(s.into_bytes()));
                                }
                            }
                            _ => {}
                        },
                        sio::Eio::Close => bail!("Engine.IO close during the handshake"),
                        _ => {}
                    }
                }
                cove::ws_send(
                    &mut sock,
                    Message::text(sio::event_frame(
                        "resize",
                        &[json!({"cols": COLS, "rows": ROWS})],
                    )),
                )
                .await?;
                return Ok(Term {
                    kind: Kind::Wetty {
                        ws: sock,
                        ping_interval_ms: open.ping_interval_ms,
                    },
                    pending,
                    buf: Vec::new(),
                });
            }
        };
        Ok(Term {
            kind,
            pending: VecDeque::new(),
            buf: Vec::new(),
        })
    }
}

enum Kind {
    Bare(BarePty),
    CoveRaw {
        ws: Ws,
        port: u16,
        wsid: String,
        tid: String,
    },
    CoveJson {
        ws: Ws,
        tid: String,
        created: bool,
    },
    Jupyter {
        ws: Ws,
        port: u16,
        token: String,
        name: String,
    },
    Wetty {
        ws: Ws,
        #[allow(dead_code)]
        ping_interval_ms: u64,
    },
}

/// What a terminal said.
#[derive(Debug)]
pub(crate) enum Event {
    /// Output bytes (for the JSON protocols: the UTF-8 bytes of the text).
    Data(Bytes),
    /// The terminal ended (shell exited, socket closed by the server).
    Exit(String),
}

/// One open terminal.
pub(crate) struct Term {
    kind: Kind,
    /// Output that arrived during the handshake.
    pending: VecDeque<Bytes>,
    /// Read buffer of the bare PTY.
    buf: Vec<u8>,
}

impl Term {
    /// Types `input`.
    pub(crate) async fn send(&mut self, input: &str) -> Result<()> {
        match &mut self.kind {
            Kind::Bare(p) => p
                .write_all(input.as_bytes())
                .await
                .context("write to the PTY"),
            Kind::CoveRaw { ws, .. } => {
                cove::ws_send(ws, Message::binary(input.as_bytes().to_vec())).await
            }
            Kind::CoveJson { ws, tid, .. } => cove::ctl_send(
                ws,
                json!({"type": "terminal_input", "payload": {"terminalId": tid, "input": input}}),
            )
            .await,
            Kind::Jupyter { ws, .. } => {
                cove::ws_send(ws, Message::text(terminado::stdin(input))).await
            }
            Kind::Wetty { ws, .. } => {
                cove::ws_send(
                    ws,
                    Message::text(sio::event_frame("input", &[json!(input)])),
                )
                .await
            }
        }
    }

    /// The socket under a WebSocket terminal (to slow its reads down).
    pub(crate) fn net_mut(&mut self) -> Option<&mut Net> {
        match &mut self.kind {
            Kind::Bare(_) => None,
            Kind::CoveRaw { ws, .. }
            | Kind::CoveJson { ws, .. }
            | Kind::Jupyter { ws, .. }
            | Kind::Wetty { ws, .. } => Some(ws.get_mut()),
        }
    }

    /// The next output or exit, waiting until `deadline`; `None` on timeout.
    /// Protocol chores (Engine.IO pongs, wetty's flow-control `commit`) are
    /// done here, as a browser client would.
    pub(crate) async fn recv(&mut self, deadline: Instant) -> Result<Option<Event>> {
        if let Some(b) = self.pending.pop_front() {
            return Ok(Some(Event::Data(b)));
        }
        let d = tokio::time::Instant::from_std(deadline);
        match &mut self.kind {
            Kind::Bare(p) => {
                if self.buf.is_empty() {
                    self.buf = vec![0u8; 64 * 1024];
                }
                match timeout_at(d, p.read(&mut self.buf)).await {
                    Err(_) => Ok(None),
                    Ok(Ok(0)) => Ok(Some(Event::Exit("the PTY closed".into()))),
                    Ok(Ok(n)) => Ok(Some(Event::Data(Bytes::copy_from_slice(&self.buf[..n])))),
                    Ok(Err(e)) => Err(e).context("read the PTY"),
                }
            }
            Kind::CoveRaw { ws, .. } => loop {
                let Some(m) = recv_msg(ws, d).await? else {
                    return Ok(None);
                };
                match m {
                    Msg::Close(why) => return Ok(Some(Event::Exit(why))),
                    Msg::Binary(b) => return Ok(Some(Event::Data(b))),
                    Msg::Text(t) => {
                        if let Ok(v) = serde_json::from_str::<Value>(&t)
                            && cove::msg_type(&v) == "exit"
                        {
                            return Ok(Some(Event::Exit(format!("exit: {v}"))));
                        }
                    }
                }
            },
            Kind::CoveJson { ws, tid, created } => loop {
                let Some(m) = recv_msg(ws, d).await? else {
                    return Ok(None);
                };
                match m {
                    Msg::Close(why) => return Ok(Some(Event::Exit(why))),
                    Msg::Binary(_) => {}
                    Msg::Text(t) => {
                        let v: Value = serde_json::from_str(&t).context("bad JSON from cove")?;
                        let for_us = v.get("terminalId").and_then(|x| x.as_str()) == Some(tid);
                        match cove::msg_type(&v) {
                            "terminal_output" if for_us => {
                                let Some(Value::String(s)) = v.get("data").cloned() else {
                                    bail!("terminal_output without string data");
                                };
                                return Ok(Some(Event::Data(Bytes::from(s.into_bytes()))));
                            }
                            "terminal_created" if for_us => *created = true,
                            "terminal_exit" if for_us => {
                                return Ok(Some(Event::Exit(format!("terminal_exit: {v}"))));
                            }
                            "error" => bail!("error from cove: {v}"),
                            _ => {}
                        }
                    }
                }
            },
            Kind::Jupyter { ws, .. } => loop {
                let Some(m) = recv_msg(ws, d).await? else {
                    return Ok(None);
                };
                match m {
                    Msg::Close(why) => return Ok(Some(Event::Exit(why))),
                    Msg::Binary(_) => {}
                    Msg::Text(t) => match terminado::parse(&t)? {
                        terminado::Msg::Stdout(s) => {
                            return Ok(Some(Event::Data(Bytes::from(s.into_bytes()))));
                        }
                        terminado::Msg::Disconnect => {
                            return Ok(Some(Event::Exit("terminado: disconnect".into())));
                        }
                        _ => {}
                    },
                }
            },
            Kind::Wetty { ws, .. } => loop {
                let Some(m) = recv_msg(ws, d).await? else {
                    return Ok(None);
                };
                let t = match m {
                    Msg::Close(why) => return Ok(Some(Event::Exit(why))),
                    Msg::Binary(_) => continue,
                    Msg::Text(t) => t,
                };
                if let Some(s) = sio::string_event(&t, "data") {
                    // wetty counts JS string length (UTF-16 units) and pauses
                    // the PTY past 2 MiB not committed.
                    let units = s.encode_utf16().count();
                    cove::ws_send(ws, Message::text(format!("42[\"commit\",{units}]"))).await?;
                    return Ok(Some(Event::Data(Bytes::from(s.into_bytes()))));
                }
                match sio::parse_eio(&t)? {
                    sio::Eio::Ping(p) => cove::ws_send(ws, Message::text(sio::pong(p))).await?,
                    sio::Eio::Close => return Ok(Some(Event::Exit("Engine.IO close".into()))),
                    sio::Eio::Message(s) => match sio::parse_sio(s)? {
                        sio::Sio::Event { name, .. } if name == "logout" => {
                            return Ok(Some(Event::Exit("wetty: logout".into())));
                        }
                        sio::Sio::Disconnect { .. } => {
                            return Ok(Some(Event::Exit("Socket.IO disconnect".into())));
                        }
                        _ => {}
                    },
                    _ => {}
                }
            },
        }
    }

    /// Ends the terminal for good (cove and Jupyter keep a terminal when
    /// its socket closes, so they are told to close it), bounded in time.
    pub(crate) async fn close(self) {
        let fut = async {
            match self.kind {
                Kind::Bare(p) => p.kill(),
                Kind::CoveRaw {
                    mut ws,
                    port,
                    wsid,
                    tid,
                } => {
                    // `close_terminal` from a control socket; the raw socket
                    // then gets `exit` and is closed by the server.
                    let mut notes = Vec::new();
                    if let Ok(mut ctl) = cove::ctl_connect(port, &wsid, &mut notes).await {
                        let _ = cove::ctl_send(
                            &mut ctl,
                            json!({"type": "close_terminal", "payload": {"terminalId": tid}}),
                        )
                        .await;
                        let d = tokio::time::Instant::now() + Duration::from_secs(5);
                        while let Ok(Some(m)) = recv_msg(&mut ws, d).await {
                            if matches!(m, Msg::Close(_)) {
                                break;
                            }
                        }
                        cove::ws_close(ctl).await;
                    }
                    cove::ws_close(ws).await;
                }
                Kind::CoveJson { mut ws, tid, .. } => {
                    let _ = cove::ctl_close_terminal(&mut ws, &tid).await;
                    cove::ws_close(ws).await;
                }
                Kind::Jupyter {
                    ws,
                    port,
                    token,
                    name,
                } => {
                    cove::ws_close(ws).await;
                    let _ = http_with(
                        port,
                        "DELETE",
                        &format!("/api/terminals/{}", urlencode(&name)),
                        &[("Authorization", &format!("token {token}"))],
                        None,
                    )
                    .await;
                }
                Kind::Wetty { ws, .. } => cove::ws_close(ws).await,
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(10), fut).await;
    }

    /// Drops the connection without ending the terminal (the server's
    /// shutdown cleans up).
    pub(crate) fn abandon(self) {
        if let Kind::Bare(p) = self.kind {
            p.kill();
        }
    }
}

enum Msg {
    Text(String),
    Binary(Bytes),
    Close(String),
}

/// The next text/binary message, answering nothing itself (tungstenite
/// answers pings). `None` on timeout; a close or a socket end is `Close`.
async fn recv_msg(ws: &mut Ws, d: tokio::time::Instant) -> Result<Option<Msg>> {
    loop {
        match timeout_at(d, ws.next()).await {
            Err(_) => return Ok(None),
            Ok(None) => return Ok(Some(Msg::Close("the socket ended".into()))),
            Ok(Some(Err(e))) => return Ok(Some(Msg::Close(format!("socket error: {e}")))),
            Ok(Some(Ok(m))) => match m {
                Message::Text(t) => return Ok(Some(Msg::Text(t.as_str().to_owned()))),
                Message::Binary(b) => return Ok(Some(Msg::Binary(b))),
                Message::Close(f) => {
                    return Ok(Some(Msg::Close(format!(
                        "closed by the server{}",
                        f.map(|f| format!(" ({} {})", u16::from(f.code), f.reason))
                            .unwrap_or_default()
                    ))));
                }
                _ => continue,
            },
        }
    }
}

/// Creates a workspace named `name` and waits until it runs; returns its id.
pub(crate) async fn cove_workspace(port: u16, name: &str) -> Result<String> {
    let r = http(
        port,
        "POST",
        "/api/workspaces",
        Some(&json!({"name": name, "template": "blank"}).to_string()),
    )
    .await?;
    if !(200..300).contains(&r.status) {
        bail!(
            "POST /api/workspaces answered {}: {}",
            r.status,
            r.text().trim()
        );
    }
    let v = r.json()?;
    let id = cove::json_id(&v).ok_or_else(|| anyhow!("no `id` in {v}"))?;
    let _ = http(port, "POST", &format!("/api/workspaces/{id}/start"), None).await?;
    let end = Instant::now() + Duration::from_secs(60);
    while Instant::now() < end {
        let r = http(port, "GET", &format!("/api/workspaces/{id}"), None).await?;
        let state = r
            .json()
            .ok()
            .and_then(|v| v.get("state").and_then(|s| s.as_str()).map(String::from))
            .unwrap_or_default();
        match state.as_str() {
            "running" => return Ok(id),
            "error" => bail!("workspace {id} is in state `error`: {}", r.text()),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    bail!("workspace {id} not running 60 s after start")
}
