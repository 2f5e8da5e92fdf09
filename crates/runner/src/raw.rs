//! The raw terminal socket (docs/PROTOCOL.md section 2) and its plain-text variant (section 3).
//!
//! Raw: binary frames carry the PTY's bytes exactly, both ways; text frames carry JSON
//! control messages, the first being `attached` with the offset the bytes start at.
//! Text (`format=text`, the seed-004 socket): output as UTF-8 text frames, any frame from the
//! client is input, no control messages at all.
//!
//! Output and input run as two halves, so a client that reads slowly can still type Ctrl+C.
//!
//! In view mode (`?mode=view`, docs/PROTOCOL.md section 8) output flows as usual, but no byte
//! from the client reaches the terminal: each input frame and each resize is answered with a
//! `forbidden` error (a line `Error: ...` in text format) and dropped; the socket stays open.

use axum::extract::ws::{CloseFrame, Message};
use cove_protocol::{AttachMode, ErrorCode, ErrorReply, RawControl, Replay};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use crate::control::PING_EVERY;
use crate::error::Error;
use crate::replay::{AnswerFilter, QueryScanner};
use crate::terminals::Terminal;
use crate::utf8::Utf8Stream;

/// Largest binary frame sent: bursts are joined up to this size.
const MAX_FRAME: usize = 256 * 1024;

/// Close code for a client that fell behind the scrollback; it should reconnect with the
/// offset it reached.
pub(crate) const FELL_BEHIND: u16 = 4000;

/// Wire format of a terminal socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Raw,
    Text,
}

fn control(message: &RawControl) -> Message {
    Message::Text(
        serde_json::to_string(message)
            .expect("control messages serialize")
            .into(),
    )
}

/// What a client asked for in its socket's query.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attach {
    /// Resume at this byte of the output.
    pub(crate) offset: Option<u64>,
    /// Without an offset: a snapshot of the screen or the raw scrollback.
    pub(crate) replay: Replay,
    /// The client's window size, for a client that may resize.
    pub(crate) resize: Option<cove_pty::Size>,
    pub(crate) format: Format,
    pub(crate) mode: AttachMode,
}

/// What ends a socket from outside.
#[derive(Debug, Clone)]
pub(crate) struct Ending {
    /// The runner stops: the socket closes with 1001.
    pub(crate) shutdown: CancellationToken,
    /// The server revoked the caller's access (a handed-over socket, `adopt.rs`): the socket
    /// closes with 1008.
    pub(crate) revoked: CancellationToken,
}

/// Serves one terminal socket (its two halves) until the client leaves, the terminal exits,
/// the runner stops or the socket is revoked.
pub(crate) async fn serve<Out, In>(
    terminal: Arc<Terminal>,
    mut sink: Out,
    mut stream: In,
    attach: Attach,
    ending: Ending,
) where
    Out: Sink<Message, Error = axum::Error> + Unpin + Send,
    In: Stream<Item = Result<Message, axum::Error>> + Unpin + Send,
{
    let Ending { shutdown, revoked } = ending;
    let Attach {
        offset,
        replay,
        resize,
        format,
        mode,
    } = attach;
    // A snapshot is taken at the socket's size, so that full-screen programs redraw for it.
    let (mut reader, snapshot) = match (offset, replay) {
        (None, Replay::Screen) => {
            let (snapshot, reader) = terminal.attach_screen(resize);
            (reader, snapshot)
        }
        _ => {
            if let Some(size) = resize {
                let _ = terminal.resize(size);
            }
            (terminal.log.reader(offset), None)
        }
    };
    let announced_gap = reader.starts_with_gap();
    // A raw replay of the scrollback: queries in it must not get answers typed into what
    // runs now (see `replay.rs`). A resume by offset is not a replay, and a snapshot holds
    // no queries.
    let replay_end = match (offset, &snapshot) {
        (None, None) => terminal.log.end(),
        _ => reader.position(),
    };
    let answers = std::sync::Arc::new(std::sync::Mutex::new(AnswerFilter::default()));
    // Set by the input half when a client message is too large: the output half, which
    // owns the sending side, says so and closes with 1009.
    let (too_large, mut refuse) = tokio::sync::oneshot::channel::<String>();
    // Input refused in view mode, for the output half to answer. Bounded, and a refusal that
    // does not fit is dropped: the ones queued already say the same.
    let (read_only, mut refused) = tokio::sync::mpsc::channel::<ErrorReply>(4);
    if format == Format::Raw {
        let size = terminal.size();
        let attached = RawControl::Attached {
            offset: reader.position(),
            cols: size.cols,
            rows: size.rows,
            gap: reader.starts_with_gap(),
            snapshot: snapshot.as_ref().map(|s| s.len() as u64),
        };
        if sink.send(control(&attached)).await.is_err() {
            return;
        }
    }
    if let Some(snapshot) = snapshot {
        let frame = match format {
            Format::Raw => Message::Binary(snapshot.into()),
            Format::Text => Message::Text(snapshot.into()),
        };
        if sink.send(frame).await.is_err() {
            return;
        }
    }
    let output = {
        let terminal = terminal.clone();
        let shutdown = shutdown.clone();
        let revoked = revoked.clone();
        let answers = answers.clone();
        async move {
            let mut utf8 = Utf8Stream::default();
            let mut queries = QueryScanner::default();
            let mut position = reader.position();
            let mut ping =
                tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
            let mut first = true;
            loop {
                let message = tokio::select! {
                    batch = reader.next(MAX_FRAME) => match batch {
                        // This client fell so far behind that output it had not read was
                        // dropped. Byte offsets no longer line up, so the raw socket closes
                        // and the client resumes with its offset (and gets `gap: true`).
                        Some(batch) if format == Format::Raw && batch.gap && !(first && announced_gap) => {
                            let _ = sink.send(Message::Close(Some(CloseFrame { code: FELL_BEHIND, reason: "fell behind; reconnect with ?offset=".into() }))).await;
                            return;
                        }
                        Some(batch) => {
                            first = false;
                            if position < replay_end {
                                let replayed = (replay_end - position).min(batch.data.len() as u64) as usize;
                                let before = queries.counts();
                                queries.feed(&batch.data[..replayed]);
                                answers.lock().unwrap().expect(queries.counts().since(before));
                            }
                            position += batch.data.len() as u64;
                            match format {
                            Format::Raw => Message::Binary(batch.data),
                            Format::Text => {
                                let text = utf8.decode(&batch.data);
                                if text.is_empty() { continue; }
                                Message::Text(text.into())
                            }
                            }
                        }
                        None => break,
                    },
                    _ = ping.tick() => Message::Ping(Default::default()),
                    Some(error) = refused.recv() => match format {
                        Format::Raw => refusal(error),
                        Format::Text => Message::Text(format!("Error: {}\r\n", error.message).into()),
                    },
                    Ok(why) = &mut refuse => {
                        let _ = sink.send(refusal(ErrorReply::new(ErrorCode::TooLarge, why))).await;
                        let _ = sink.send(Message::Close(Some(CloseFrame { code: crate::control::TOO_BIG, reason: "message too large".into() }))).await;
                        // Closing at once would reset the connection while the client still
                        // sends the rest of its message, and it would never read why.
                        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                        return;
                    }
                    _ = shutdown.cancelled() => {
                        let _ = sink.send(Message::Close(Some(CloseFrame { code: 1001, reason: "the workspace is stopping".into() }))).await;
                        return;
                    }
                    _ = revoked.cancelled() => {
                        let _ = sink.send(Message::Close(Some(CloseFrame { code: 1008, reason: "access to the workspace was revoked".into() }))).await;
                        return;
                    }
                };
                if sink.send(message).await.is_err() {
                    return;
                }
            }
            // The terminal ended and everything it printed has been sent.
            let exit = terminal.exited().await;
            if format == Format::Raw {
                let _ = sink
                    .send(control(&RawControl::Exit {
                        exit_code: exit.code,
                        signal: exit.signal,
                    }))
                    .await;
            } else {
                let tail = utf8.finish();
                if !tail.is_empty() {
                    let _ = sink.send(Message::Text(tail.into())).await;
                }
            }
            let _ = sink
                .send(Message::Close(Some(CloseFrame {
                    code: 1000,
                    reason: "terminal exited".into(),
                })))
                .await;
        }
    };
    let input = async {
        let mut too_large = Some(too_large);
        let refuse = |action| {
            let _ = read_only.try_send(Error::ReadOnly { action }.to_reply());
        };
        while let Some(message) = stream.next().await {
            // Not one byte more from someone whose access went.
            if revoked.is_cancelled() {
                break;
            }
            let message = match message {
                Ok(message) => message,
                Err(e) => {
                    if crate::control::is_too_large(e)
                        && let Some(tell) = too_large.take()
                    {
                        let _ = tell.send("a message to a terminal is at most 1 MiB".into());
                        // Wait for the output half to close the socket.
                        std::future::pending::<()>().await;
                    }
                    break;
                }
            };
            match (message, format) {
                (Message::Binary(_), _) | (Message::Text(_), Format::Text)
                    if mode == AttachMode::View =>
                {
                    refuse("input")
                }
                (Message::Binary(bytes), _) => {
                    let bytes = answers.lock().unwrap().filter(&bytes).into_owned();
                    if !bytes.is_empty() && terminal.write(&bytes).await.is_err() {
                        break;
                    }
                }
                (Message::Text(text), Format::Text) => {
                    let bytes = answers.lock().unwrap().filter(text.as_bytes()).into_owned();
                    if !bytes.is_empty() && terminal.write(&bytes).await.is_err() {
                        break;
                    }
                }
                (Message::Text(text), Format::Raw) => {
                    match serde_json::from_str::<RawControl>(&text) {
                        Ok(RawControl::Resize { .. }) if mode == AttachMode::View => {
                            refuse("resize")
                        }
                        Ok(RawControl::Resize { cols, rows }) => {
                            let _ = terminal.resize(cove_pty::Size { cols, rows });
                        }
                        _ => {
                            tracing::debug!(terminal = %crate::clip(&terminal.id), frame = %crate::clip(&text), "ignored control frame")
                        }
                    }
                }
                (Message::Close(_), _) => break,
                _ => {}
            }
        }
    };
    // When output ends (exit or shutdown), the socket is closed; when the client leaves,
    // output stops. The terminal keeps running either way unless it exited.
    // The output half says why it closes when it can; a client that stopped reading keeps
    // it stuck in a send, so a stop or a revocation also ends the socket from here, after a
    // moment for that close frame.
    let ended = async {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = revoked.cancelled() => {}
        }
        tokio::time::sleep(CLOSE_GRACE).await
    };
    tokio::select! {
        _ = output => {}
        _ = input => {}
        _ = ended => {}
    }
}

/// How long a socket that is being closed from outside gets to send its close frame.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Says why a terminal could not be opened on a socket, then closes it (1008).
pub(crate) async fn refuse<Out: Sink<Message> + Unpin>(sink: &mut Out, error: ErrorReply) {
    let _ = sink.send(refusal(error)).await;
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code: 1008,
            reason: "cannot open terminal".into(),
        })))
        .await;
}

/// The error message a raw socket sends before it closes: it cannot attach, or the client
/// sent too much.
pub(crate) fn refusal(error: ErrorReply) -> Message {
    control(&RawControl::Error {
        code: error.code,
        message: error.message,
    })
}
