//! The control socket (docs/PROTOCOL.md section 1): one JSON message per text frame.
//!
//! A session owns: a writer task that drains its outgoing queue into the socket, one
//! forwarder task per terminal or process it hears (`control/feeds.rs`), and the request
//! tasks that wait for a program to exit. All of them end when the socket closes. A stop or
//! close that a request started is not among them: it belongs to the runner and completes
//! without the socket. The outgoing queue is bounded, so a client that reads slowly holds its
//! forwarders back, which holds the programs back (see `output.rs`), and memory stays flat.
//!
//! This file is the session: its loop, its outgoing queue, and the dispatch of requests.
//! The requests themselves are handled by capability, one file each in `control/`.
//!
//! A socket opened with `?mode=view` is refused, before dispatch, every request that changes
//! the workspace (`Request::changes_workspace`): it watches and reads (docs/PROTOCOL.md
//! section 8).

mod feeds;
mod files;
mod processes;
mod terminals;
#[cfg(test)]
mod tests;
mod watch;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use cove_protocol::*;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::error::Error;
use crate::replay::AnswerFilter;
use crate::watch::Subscription;
use crate::{Notice, Workspace, clip};

/// Outgoing messages queued per connection before forwarders have to wait.
const QUEUE: usize = 32;
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
    feeds: feeds::Feeds,
    waits: JoinSet<()>,
    watches: Vec<String>,
    watching: Option<Subscription>,
    /// Per terminal this socket attached to with a replay: answers to replayed queries to
    /// drop from its input (see `replay.rs`).
    answers: HashMap<String, Arc<Mutex<AnswerFilter>>>,
    /// `view`: every request that changes the workspace is refused (`handle_text`).
    mode: AttachMode,
}

/// Serves one control socket until the client leaves or the runner shuts down.
pub(crate) async fn serve(ws: Arc<Workspace>, socket: WebSocket, mode: AttachMode) {
    let (sink, mut stream) = socket.split();
    let (tx, rx) = mpsc::channel::<Message>(QUEUE);
    let writer = tokio::spawn(write(sink, rx, ws.shutdown.clone()));
    let _ports = ws.ports.interest();
    let mut session = Session {
        out: Outbox(tx),
        feeds: feeds::Feeds::default(),
        waits: JoinSet::new(),
        watches: Vec::new(),
        watching: None,
        answers: HashMap::new(),
        ws: ws.clone(),
        mode,
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
            change = watch::next_change(&mut session.watching) => session.forward_change(change).await,
            Some(_) = session.waits.join_next(), if !session.waits.is_empty() => {}
            _ = ws.shutdown.cancelled() => break,
        }
    }
    session.waits.abort_all();
    session.feeds.abort_all();
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

/// Drains the outgoing queue into the socket, pings it now and then, and says goodbye when
/// the workspace stops. Ends when the queue closes or the socket fails.
async fn write(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut queue: mpsc::Receiver<Message>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        let message = tokio::select! {
            m = queue.recv() => match m { Some(m) => m, None => break },
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
                // The one check of view mode: before dispatch, so nothing of a refused
                // request happens.
                if !self.mode.allows(&message.request) {
                    let action = message.request.kind();
                    return self.reply(&id, Err(Error::ReadOnly { action })).await;
                }
                match self.handle(message.request, &id).await {
                    Ok(Some(event)) => self.reply(&id, Ok(event)).await,
                    Ok(None) => {}
                    Err(e) => self.reply(&id, Err(e)).await,
                }
            }
            Err(e) => {
                self.error(e.request_id, ErrorCode::BadRequest, &e.message)
                    .await
            }
        }
    }

    /// Runs one request. `Ok(None)` when there is nothing to send now: the handler replied
    /// itself, a task of its own replies later, or the request has no reply when it succeeds.
    async fn handle(
        &mut self,
        request: Request,
        request_id: &Option<String>,
    ) -> Result<Option<Event>, Error> {
        let ws = self.ws.clone();
        match request {
            Request::Ping(_) => Ok(Some(Event::Pong(Empty {}))),
            Request::CreateTerminal(r) => self.create_terminal(r, request_id).await,
            Request::AttachTerminal(r) => self.attach_terminal(r, request_id).await,
            Request::TerminalInput(r) => self.terminal_input(r).await,
            Request::ResizeTerminal(r) => self.resize_terminal(r),
            Request::CloseTerminal(r) => self.close_terminal(r, request_id),
            Request::ListTerminals(_) => Ok(Some(Event::Terminals(Terminals {
                terminals: ws.terminals.list().iter().map(|t| t.info()).collect(),
            }))),
            Request::RunCommand(r) => self.run_command(r, request_id).await,
            Request::StopProcess(r) => self.stop_process(r, request_id),
            Request::ListProcesses(_) => Ok(Some(Event::Processes(Processes {
                processes: ws.processes.list().iter().map(|p| p.info()).collect(),
            }))),
            Request::SubscribeProcess(r) => self.subscribe_process(r),
            Request::ReadFile(r) => files::read(ws, r).await.map(Some),
            Request::WriteFile(r) => files::write(ws, r).await.map(Some),
            Request::ListDir(r) => files::list(ws, r).await.map(Some),
            Request::MakeDir(r) => files::make_dir(ws, r).await.map(Some),
            Request::DeletePath(r) => files::delete(ws, r).await.map(Some),
            Request::RenamePath(r) => files::rename(ws, r).await.map(Some),
            Request::Watch(r) => self.watch(r.path).await.map(Some),
            Request::Unwatch(r) => Ok(Some(self.unwatch(r.path))),
            Request::ListPorts(_) => Ok(Some(Event::Ports(Ports {
                ports: ws.ports.scan_now().await,
            }))),
            Request::Stats(_) => {
                match tokio::task::spawn_blocking(move || ws.stats.sample(&ws.files)).await {
                    Ok(stats) => Ok(Some(Event::Stats(stats))),
                    Err(_) => Err(Error::Internal("stats failed")),
                }
            }
        }
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
