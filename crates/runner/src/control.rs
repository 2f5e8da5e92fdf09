//! The control socket (docs/PROTOCOL.md section 1): one JSON message per text frame.
//!
//! A session owns: a writer task that drains its outgoing queue into the socket, one
//! forwarder task per terminal or process it hears, and the request tasks that wait for a
//! program to exit. All of them end when the socket closes. A stop or close that a request
//! started is not among them: it belongs to the runner and completes without the socket.
//! The outgoing queue is bounded, so a client that reads slowly holds its forwarders back,
//! which holds the programs back (see `output.rs`), and memory stays flat.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use base64::Engine as _;
use cove_protocol::*;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use crate::error::Error;
use crate::output::{Reader, STDERR};
use crate::processes::{NewProcess, Process, parse_signal};
use crate::registry::Kind;
use crate::replay::{AnswerFilter, QueryScanner};
use crate::terminals::{NewTerminal, Terminal};
use crate::utf8::Utf8Stream;
use crate::watch::{Subscription, is_under};
use crate::{Notice, Workspace, clip};

/// Outgoing messages queued per connection before forwarders have to wait.
const QUEUE: usize = 32;
/// Largest `data` of one output message, before UTF-8 framing.
const MAX_OUTPUT: usize = 64 * 1024;
/// Keeps proxies with a 60 s idle timeout from closing the socket.
pub(crate) const PING_EVERY: Duration = Duration::from_secs(25);
/// Close code for a message larger than the socket takes (RFC 6455 "message too big").
pub(crate) const TOO_BIG: u16 = 1009;
/// How long a socket closed for a too large message stays open, unread. The client is still
/// sending the rest of that message: a socket closed at once would answer it with a reset,
/// which makes the client's system drop the error and the close frame before they are read.
const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// What a socket says when the workspace stops.
const STOPPING: &str = "the workspace is stopping";

/// A forwarder of one program's output to this connection.
#[derive(Debug)]
struct Feed {
    task: JoinHandle<()>,
    /// Set when this connection asked for the exit itself: the reply carries it instead.
    quiet_exit: Arc<std::sync::atomic::AtomicBool>,
}

type Feeds = Arc<Mutex<HashMap<(Kind, String), Feed>>>;

/// Queues messages for the socket; fails once the socket is gone.
#[derive(Debug, Clone)]
struct Outbox(mpsc::Sender<Message>);

impl Outbox {
    async fn send(&self, message: ServerMessage) -> Result<(), ()> {
        self.0
            .send(Message::Text(message.encode().into()))
            .await
            .map_err(|_| ())
    }

    async fn event(&self, event: Event) -> Result<(), ()> {
        self.send(ServerMessage::event(event)).await
    }
}

struct Session {
    ws: Arc<Workspace>,
    out: Outbox,
    feeds: Feeds,
    waits: JoinSet<()>,
    watches: Vec<String>,
    watching: Option<Subscription>,
    /// Per terminal this socket attached to with a replay: answers to replayed queries to
    /// drop from its input (see `replay.rs`).
    answers: HashMap<String, Arc<Mutex<AnswerFilter>>>,
}

/// Where a replay ends, and the filter that learns the queries it held.
type Replay = (u64, Arc<Mutex<AnswerFilter>>);

/// Serves one control socket until the client leaves or the runner shuts down.
pub(crate) async fn serve(ws: Arc<Workspace>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Message>(QUEUE);
    let shutdown = ws.shutdown.clone();
    let writer = tokio::spawn(async move {
        let mut ping =
            tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
        loop {
            let message = tokio::select! {
                m = rx.recv() => match m { Some(m) => m, None => break },
                _ = ping.tick() => Message::Ping(Default::default()),
                _ = shutdown.cancelled() => {
                    // Said before the close, so that clients know it is a stop, not an outage.
                    let stopping = ServerMessage::event(notice_event(Notice::Stopping));
                    let _ = sink.send(Message::Text(stopping.encode().into())).await;
                    let _ = sink.send(Message::Close(Some(CloseFrame { code: 1001, reason: STOPPING.into() }))).await;
                    break;
                }
            };
            let closing = matches!(message, Message::Close(_));
            if sink.send(message).await.is_err() || closing {
                break;
            }
        }
    });
    let _ports = ws.ports.interest();
    let mut session = Session {
        out: Outbox(tx),
        feeds: Arc::default(),
        waits: JoinSet::new(),
        watches: Vec::new(),
        watching: None,
        answers: HashMap::new(),
        ws: ws.clone(),
    };
    let mut notices = ws.notices.subscribe();
    let mut refused = false;
    let welcome = Event::Welcome(Welcome {
        protocol: PROTOCOL_VERSION,
        workspace_id: ws.id.clone(),
        terminals: ws.terminals.list().iter().map(|t| t.info()).collect(),
        processes: ws.processes.list().iter().map(|p| p.info()).collect(),
    });
    if session.out.event(welcome).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => session.handle_text(&text).await,
                Some(Ok(Message::Binary(_))) => {
                    session.error(None, ErrorCode::BadRequest, "the control socket takes JSON text frames").await;
                }
                Some(Ok(Message::Close(_))) | None => break,
                Some(Ok(_)) => {} // Ping and pong are answered by the WebSocket layer.
                Some(Err(e)) => {
                    let text = e.to_string();
                    tracing::debug!(error = %clip(&text), "control socket read failed");
                    if is_too_large(e) {
                        // Say why, then close the way RFC 6455 says. Reading on is no option:
                        // the rest of the frame would be taken in after all.
                        session.error(None, ErrorCode::TooLarge, &format!("message too large: {text}")).await;
                        let close = Message::Close(Some(CloseFrame { code: TOO_BIG, reason: "message too large".into() }));
                        let _ = session.out.0.send(close).await;
                        refused = true;
                    }
                    break;
                }
            },
            notice = notices.recv() => match notice {
                Ok(notice) => { let _ = session.out.event(notice_event(notice)).await; }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => break,
            },
            change = async {
                match session.watching.as_mut() {
                    Some(sub) => sub.events.recv().await,
                    None => std::future::pending().await,
                }
            } => match change {
                Ok(change) => {
                    if session.watches.iter().any(|w| is_under(&change.path, w) || change.to.as_deref().is_some_and(|to| is_under(to, w))) {
                        let _ = session.out.event(Event::FileChanged(change)).await;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "watch events dropped for a slow client");
                }
                Err(_) => session.watching = None,
            },
            Some(_) = session.waits.join_next(), if !session.waits.is_empty() => {}
            _ = ws.shutdown.cancelled() => break,
        }
    }
    session.waits.abort_all();
    for (_, feed) in session.feeds.lock().unwrap().drain() {
        feed.task.abort();
    }
    drop(session.out);
    let _ = writer.await;
    if refused {
        tokio::select! {
            _ = tokio::time::sleep(CLOSE_LINGER) => {}
            _ = ws.shutdown.cancelled() => {}
        }
    }
    drop(stream);
}

/// A workspace notice as the event every control socket gets.
fn notice_event(notice: Notice) -> Event {
    match notice {
        Notice::Stopping => Event::Status(Status {
            state: StatusState::Stopping,
            message: STOPPING.into(),
        }),
        Notice::PortOpened(port) => Event::PortOpened(port),
        Notice::PortClosed(port) => Event::PortClosed(port),
        Notice::Failed(error) => Event::Error(error.to_reply()),
    }
}

impl Session {
    async fn error(&self, request_id: Option<String>, code: ErrorCode, message: &str) {
        let reply = ServerMessage::reply(Event::Error(ErrorReply::new(code, message)), request_id);
        let _ = self.out.send(reply).await;
    }

    /// Sends the reply to a request: its event, or its error as the wire says it.
    async fn reply(&self, request_id: &Option<String>, result: Result<Event, Error>) {
        let event = result.unwrap_or_else(|e| Event::Error(e.to_reply()));
        let _ = self
            .out
            .send(ServerMessage::reply(event, request_id.clone()))
            .await;
    }

    async fn handle_text(&mut self, text: &str) {
        match ClientMessage::decode(text) {
            Ok(message) => {
                let id = message.request_id.clone();
                if let Some(result) = self.handle(message.request, &id).await {
                    self.reply(&id, result).await;
                }
            }
            Err(e) => {
                self.error(e.request_id, ErrorCode::BadRequest, &e.message)
                    .await
            }
        }
    }

    /// Runs one request. `None` when the reply is sent later by a task of its own.
    async fn handle(
        &mut self,
        request: Request,
        request_id: &Option<String>,
    ) -> Option<Result<Event, Error>> {
        let ws = self.ws.clone();
        Some(match request {
            Request::Ping(_) => Ok(Event::Pong(Empty {})),
            Request::CreateTerminal(r) => {
                let size = match (r.cols, r.rows) {
                    (None, None) => None,
                    (cols, rows) => Some(cove_pty::Size {
                        cols: cols.unwrap_or(80),
                        rows: rows.unwrap_or(24),
                    }),
                };
                let new = NewTerminal {
                    id: r.terminal_id,
                    command: r.command,
                    cwd: r.cwd,
                    env: r.env.unwrap_or_default().into_iter().collect(),
                    size,
                };
                match ws.terminals.create(new) {
                    Ok(terminal) => {
                        let created = Event::TerminalCreated(TerminalCreated {
                            terminal_id: terminal.id.clone(),
                        });
                        self.reply(request_id, Ok(created)).await;
                        let reader = terminal.log.reader(Some(0));
                        self.feed(terminal, reader, None);
                        return None;
                    }
                    Err(e) => Err(e),
                }
            }
            Request::AttachTerminal(r) => match ws.terminals.get(&r.terminal_id) {
                Ok(terminal) => {
                    let size = terminal.size();
                    let attached = Event::TerminalAttached(TerminalAttached {
                        terminal_id: terminal.id.clone(),
                        cols: size.cols,
                        rows: size.rows,
                    });
                    self.reply(request_id, Ok(attached)).await;
                    let reader = terminal.log.reader(None);
                    let filter = self.answers.entry(terminal.id.clone()).or_default().clone();
                    let replay = (terminal.log.end(), filter);
                    self.feed(terminal, reader, Some(replay));
                    return None;
                }
                Err(e) => Err(e),
            },
            Request::TerminalInput(r) => match ws.terminals.get(&r.terminal_id) {
                Ok(terminal) => {
                    let input = match self.answers.get(&terminal.id) {
                        Some(filter) => filter
                            .lock()
                            .unwrap()
                            .filter(r.input.as_bytes())
                            .into_owned(),
                        None => r.input.into_bytes(),
                    };
                    if input.is_empty() {
                        return None;
                    }
                    match terminal.write(&input).await {
                        Ok(()) => return None,
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            },
            Request::ResizeTerminal(r) => {
                match ws.terminals.get(&r.terminal_id).and_then(|t| {
                    t.resize(cove_pty::Size {
                        cols: r.cols,
                        rows: r.rows,
                    })
                }) {
                    Ok(()) => return None,
                    Err(e) => Err(e),
                }
            }
            Request::CloseTerminal(r) => match ws.terminals.get(&r.terminal_id) {
                Ok(terminal) => {
                    let feed = self.quiet_feed(Kind::Terminal, &terminal.id);
                    let out = self.out.clone();
                    let request_id = request_id.clone();
                    let grace = ws.launch.limits.stop_grace;
                    // The close, and forgetting the terminal after it, belong to the runner:
                    // this session only waits for the outcome to reply.
                    let closing = terminal.close(grace);
                    let closed = {
                        let (owner, terminal) = (ws.clone(), terminal.clone());
                        ws.tasks.spawn(async move {
                            let exit = closing.await;
                            owner.terminals.remove(&terminal);
                            exit
                        })
                    };
                    self.waits.spawn(async move {
                        let exit = closed.await.unwrap_or_default();
                        if let Some(task) = feed {
                            let _ = task.await;
                        }
                        let event = Event::TerminalExit(TerminalExit {
                            terminal_id: terminal.id.clone(),
                            exit_code: exit.code,
                            signal: exit.signal,
                        });
                        let _ = out.send(ServerMessage::reply(event, request_id)).await;
                    });
                    return None;
                }
                Err(e) => Err(e),
            },
            Request::ListTerminals(_) => Ok(Event::Terminals(Terminals {
                terminals: ws.terminals.list().iter().map(|t| t.info()).collect(),
            })),
            Request::RunCommand(r) => {
                let new = NewProcess {
                    id: r.process_id,
                    command: r.command,
                    args: r.args,
                    cwd: r.cwd,
                    env: r.env.unwrap_or_default().into_iter().collect(),
                };
                match ws.processes.start(new) {
                    Ok(process) => {
                        let started = Event::ProcessStarted(ProcessStarted {
                            process_id: process.id.clone(),
                            command: process.command.clone(),
                            args: process.args.clone(),
                            pid: Some(process.pid),
                        });
                        self.reply(request_id, Ok(started)).await;
                        let reader = process.log.reader(Some(0));
                        self.feed(process, reader, None);
                        return None;
                    }
                    Err(e) => Err(e),
                }
            }
            Request::StopProcess(r) => {
                let signal = match r.signal.as_ref().map(parse_signal).transpose() {
                    Ok(signal) => signal,
                    Err(e) => return Some(Err(e)),
                };
                match ws.processes.get(&r.process_id) {
                    Ok(process) => {
                        let feed = self.quiet_feed(Kind::Process, &process.id);
                        let out = self.out.clone();
                        let request_id = request_id.clone();
                        let grace = ws.launch.limits.stop_grace;
                        // The stop belongs to the runner: this session only waits for the
                        // outcome to reply.
                        let stopped = process.stop(signal, grace);
                        self.waits.spawn(async move {
                            let exit = stopped.await;
                            if let Some(task) = feed {
                                let _ = task.await;
                            }
                            let event = Event::ProcessExit(ProcessExit {
                                process_id: process.id.clone(),
                                exit_code: exit.code,
                                signal: exit.signal,
                            });
                            let _ = out.send(ServerMessage::reply(event, request_id)).await;
                        });
                        return None;
                    }
                    Err(e) => Err(e),
                }
            }
            Request::ListProcesses(_) => Ok(Event::Processes(Processes {
                processes: ws.processes.list().iter().map(|p| p.info()).collect(),
            })),
            Request::SubscribeProcess(r) => match ws.processes.get(&r.process_id) {
                Ok(process) => {
                    let reader = process.log.reader(None);
                    self.feed(process, reader, None);
                    Ok(Event::Ok(Empty {}))
                }
                Err(e) => Err(e),
            },
            Request::ReadFile(r) => {
                let path = r.path.clone();
                blocking(move || ws.files.read(&r.path))
                    .await
                    .and_then(|data| {
                        let content = match r.encoding {
                            Encoding::Base64 => {
                                base64::engine::general_purpose::STANDARD.encode(&data.bytes)
                            }
                            Encoding::Utf8 => String::from_utf8(data.bytes).map_err(|_| {
                                Error::BadRequest(format!(
                                    "{path} is not UTF-8 text; read it with encoding base64"
                                ))
                            })?,
                        };
                        Ok(Event::FileContent(FileContent {
                            path,
                            content,
                            encoding: r.encoding,
                            version: data.version,
                        }))
                    })
            }
            Request::WriteFile(r) => {
                let bytes = match r.encoding {
                    Encoding::Utf8 => r.content.into_bytes(),
                    Encoding::Base64 => match base64::engine::general_purpose::STANDARD
                        .decode(r.content.as_bytes())
                    {
                        Ok(bytes) => bytes,
                        Err(e) => {
                            return Some(Err(Error::BadRequest(format!(
                                "content is not valid base64: {e}"
                            ))));
                        }
                    },
                };
                let path = r.path.clone();
                blocking(move || ws.files.write(&r.path, &bytes, r.base_version.as_deref()))
                    .await
                    .map(|w| {
                        Event::FileWritten(FileWritten {
                            path,
                            version: w.version,
                            size: w.size,
                        })
                    })
            }
            Request::ListDir(r) => {
                let path = r.path.clone();
                blocking(move || ws.files.list(&r.path))
                    .await
                    .map(|entries| Event::DirListing(DirListing { path, entries }))
            }
            Request::MakeDir(r) => blocking(move || ws.files.make_dir(&r.path))
                .await
                .map(|()| Event::Ok(Empty {})),
            Request::DeletePath(r) => blocking(move || ws.files.delete(&r.path, r.recursive))
                .await
                .map(|()| Event::Ok(Empty {})),
            Request::RenamePath(r) => {
                blocking(move || ws.files.rename(&r.from, &r.to, r.overwrite))
                    .await
                    .map(|()| Event::Ok(Empty {}))
            }
            Request::Watch(r) => self.watch(r.path).await,
            Request::Unwatch(r) => {
                match r.path {
                    None => self.watches.clear(),
                    Some(p) => {
                        let p = normalize(&p);
                        self.watches.retain(|w| *w != p);
                    }
                }
                if self.watches.is_empty() {
                    self.watching = None;
                }
                Ok(Event::Ok(Empty {}))
            }
            Request::ListPorts(_) => Ok(Event::Ports(Ports {
                ports: ws.ports.scan_now().await,
            })),
            Request::Stats(_) => {
                match tokio::task::spawn_blocking(move || ws.stats.sample(&ws.files)).await {
                    Ok(stats) => Ok(Event::Stats(stats)),
                    Err(_) => Err(Error::Internal("stats failed")),
                }
            }
        })
    }

    async fn watch(&mut self, path: Option<String>) -> Result<Event, Error> {
        let raw = path.unwrap_or_default();
        let path = normalize(&raw);
        if !path.is_empty() {
            let ws = self.ws.clone();
            let check = raw.clone();
            blocking(move || ws.files.is_dir(&check)).await?;
        }
        if self.watching.is_none() {
            self.watching = Some(self.ws.watcher.subscribe()?);
        }
        if !self.watches.contains(&path) {
            self.watches.push(path);
        }
        Ok(Event::Ok(Empty {}))
    }

    /// Marks this connection's feed of a program so its exit goes out as the reply instead,
    /// and hands back the feed's task so the reply can wait for the last output.
    fn quiet_feed(&self, kind: Kind, id: &str) -> Option<JoinHandle<()>> {
        let feed = self.feeds.lock().unwrap().remove(&(kind, id.to_string()))?;
        feed.quiet_exit
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Some(feed.task)
    }

    fn add_feed(
        &self,
        kind: Kind,
        id: String,
        quiet_exit: Arc<std::sync::atomic::AtomicBool>,
        task: JoinHandle<()>,
    ) {
        if let Some(old) = self
            .feeds
            .lock()
            .unwrap()
            .insert((kind, id), Feed { task, quiet_exit })
        {
            // Attaching twice replaces the earlier feed: output is never sent twice.
            old.task.abort();
        }
    }

    /// Sends a program's output from `reader` on, then its exit (unless this connection asked
    /// for the exit itself and gets it as the reply).
    fn feed<P: Followed>(&self, program: Arc<P>, mut reader: Reader, replay: Option<Replay>) {
        let out = self.out.clone();
        let quiet = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let quiet_exit = quiet.clone();
        let feeds = self.feeds.clone();
        let id = program.id().to_string();
        let task = tokio::spawn(async move {
            // One decoder per stream: a character split across reads of stdout must not be
            // joined with stderr's bytes.
            let mut decoders = [Utf8Stream::default(), Utf8Stream::default()];
            let mut queries = QueryScanner::default();
            let mut position = reader.position();
            while let Some(batch) = reader.next(MAX_OUTPUT).await {
                if batch.gap && skipped(&out, P::KIND, program.id()).await.is_err() {
                    return;
                }
                if let Some((replay_end, filter)) = &replay
                    && position < *replay_end
                {
                    let replayed = (replay_end - position).min(batch.data.len() as u64) as usize;
                    let before = queries.counts();
                    queries.feed(&batch.data[..replayed]);
                    filter
                        .lock()
                        .unwrap()
                        .expect(queries.counts().since(before));
                }
                position += batch.data.len() as u64;
                let stream = if batch.stream == STDERR {
                    Stream::Stderr
                } else {
                    Stream::Stdout
                };
                let data = decoders[(stream == Stream::Stderr) as usize].decode(&batch.data);
                if !data.is_empty() && out.event(program.output(stream, data)).await.is_err() {
                    return;
                }
            }
            for (decoder, stream) in decoders.iter_mut().zip([Stream::Stdout, Stream::Stderr]) {
                let tail = decoder.finish();
                if !tail.is_empty() && out.event(program.output(stream, tail)).await.is_err() {
                    return;
                }
            }
            let exit = program.exited().await;
            if !quiet.load(std::sync::atomic::Ordering::SeqCst) {
                let _ = out.event(program.exit_event(exit)).await;
            }
            feeds
                .lock()
                .unwrap()
                .remove(&(P::KIND, program.id().to_string()));
        });
        self.add_feed(P::KIND, id, quiet_exit, task);
    }
}

/// A program a connection follows: a terminal or a process.
trait Followed: Send + Sync + 'static {
    const KIND: Kind;
    fn id(&self) -> &str;
    fn exited(&self) -> impl std::future::Future<Output = crate::Exit> + Send;
    fn output(&self, stream: Stream, data: String) -> Event;
    fn exit_event(&self, exit: crate::Exit) -> Event;
}

impl Followed for Terminal {
    const KIND: Kind = Kind::Terminal;

    fn id(&self) -> &str {
        &self.id
    }

    fn exited(&self) -> impl std::future::Future<Output = crate::Exit> + Send {
        Terminal::exited(self)
    }

    fn output(&self, _stream: Stream, data: String) -> Event {
        Event::TerminalOutput(TerminalOutput {
            terminal_id: self.id.clone(),
            data,
        })
    }

    fn exit_event(&self, exit: crate::Exit) -> Event {
        Event::TerminalExit(TerminalExit {
            terminal_id: self.id.clone(),
            exit_code: exit.code,
            signal: exit.signal,
        })
    }
}

impl Followed for Process {
    const KIND: Kind = Kind::Process;

    fn id(&self) -> &str {
        &self.id
    }

    fn exited(&self) -> impl std::future::Future<Output = crate::Exit> + Send {
        Process::exited(self)
    }

    fn output(&self, stream: Stream, data: String) -> Event {
        Event::ProcessOutput(ProcessOutput {
            process_id: self.id.clone(),
            stream,
            data,
        })
    }

    fn exit_event(&self, exit: crate::Exit) -> Event {
        Event::ProcessExit(ProcessExit {
            process_id: self.id.clone(),
            exit_code: exit.code,
            signal: exit.signal,
        })
    }
}

/// Whether a read failed because the message is larger than the socket takes.
pub(crate) fn is_too_large(error: axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error;
    error
        .into_inner()
        .downcast::<Error>()
        .is_ok_and(|e| matches!(*e, Error::Capacity(_)))
}

/// Tells a client that output it had not read was dropped (it fell behind the kept log).
async fn skipped(out: &Outbox, kind: Kind, id: &str) -> Result<(), ()> {
    let message = format!(
        "some output of {kind} {id} was skipped: this client fell behind by more than the kept log"
    );
    out.event(Event::Error(ErrorReply::new(
        ErrorCode::LimitExceeded,
        message,
    )))
    .await
}

/// A watch path as it appears in events: relative, no leading or trailing slash.
fn normalize(path: &str) -> String {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// Runs a file operation off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Error::Internal("the file operation failed"))?
}
