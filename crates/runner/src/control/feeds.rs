//! Feeds: one task per terminal or process a control socket hears, forwarding its output as
//! JSON events and then its exit.
//!
//! A connection has at most one feed per program: attaching again replaces the earlier feed,
//! so output is never sent twice. When the connection itself closes or stops the program,
//! its feed goes quiet about the exit, which the request's reply carries instead.

use cove_protocol::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

use super::{Outbox, Session};
use crate::Exit;
use crate::output::{Reader, STDERR};
use crate::processes::Process;
use crate::registry::Kind;
use crate::replay::{AnswerFilter, QueryScanner};
use crate::terminals::Terminal;
use crate::utf8::Utf8Stream;

/// Largest `data` of one output message, before UTF-8 framing.
const MAX_OUTPUT: usize = 64 * 1024;

/// A forwarder of one program's output to this connection.
#[derive(Debug)]
struct Feed {
    task: JoinHandle<()>,
    /// Set when this connection asked for the exit itself: the reply carries it instead.
    quiet_exit: Arc<AtomicBool>,
}

/// A connection's feeds, by program. Shared with the feeds themselves, which take their own
/// entry out when they finish.
#[derive(Debug, Clone, Default)]
pub(super) struct Feeds(Arc<Mutex<HashMap<(Kind, String), Feed>>>);

impl Feeds {
    /// Ends every feed (the connection is closing).
    pub(super) fn abort_all(&self) {
        for (_, feed) in self.0.lock().unwrap().drain() {
            feed.task.abort();
        }
    }
}

/// Where a replay ends, and the filter that learns the queries it held.
pub(super) type Replay = (u64, Arc<Mutex<AnswerFilter>>);

impl Session {
    /// Marks this connection's feed of a program so its exit goes out as the reply instead,
    /// and hands back the feed's task so the reply can wait for the last output.
    pub(super) fn quiet_feed(&self, kind: Kind, id: &str) -> Option<JoinHandle<()>> {
        let feed = self
            .feeds
            .0
            .lock()
            .unwrap()
            .remove(&(kind, id.to_string()))?;
        feed.quiet_exit.store(true, Ordering::SeqCst);
        Some(feed.task)
    }

    fn add_feed(&self, kind: Kind, id: String, quiet_exit: Arc<AtomicBool>, task: JoinHandle<()>) {
        if let Some(old) = self
            .feeds
            .0
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
    pub(super) fn feed<P: Followed>(
        &self,
        program: Arc<P>,
        mut reader: Reader,
        replay: Option<Replay>,
    ) {
        let out = self.out.clone();
        let quiet = Arc::new(AtomicBool::new(false));
        let quiet_exit = quiet.clone();
        let feeds = self.feeds.clone();
        let id = program.id().to_string();
        // Owned by the feeds table: aborted when replaced or when the connection closes.
        let task = tokio::spawn(async move {
            // One decoder per stream: a character split across reads of stdout must not be
            // joined with stderr's bytes.
            let mut decoders = [Utf8Stream::default(), Utf8Stream::default()];
            let mut queries = QueryScanner::default();
            let mut position = reader.position();
            // A gap the attach reply already announced (an offset no longer held) is not news.
            let mut announced_gap = reader.starts_with_gap();
            while let Some(batch) = reader.next(MAX_OUTPUT).await {
                if batch.gap && !std::mem::take(&mut announced_gap) {
                    // A partial character from before the gap has no end any more.
                    decoders = [Utf8Stream::default(), Utf8Stream::default()];
                    if skipped(&out, P::KIND, program.id()).await.is_err() {
                        return;
                    }
                }
                announced_gap = false;
                position = batch.offset;
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
                let decoder = &mut decoders[(stream == Stream::Stderr) as usize];
                // The text starts with the bytes of a character held back from the last batch.
                let starts_at = batch.offset - decoder.pending() as u64;
                let data = decoder.decode(&batch.data);
                if !data.is_empty()
                    && out
                        .event(program.output(stream, data, starts_at))
                        .await
                        .is_err()
                {
                    return;
                }
            }
            for (decoder, stream) in decoders.iter_mut().zip([Stream::Stdout, Stream::Stderr]) {
                let starts_at = position - decoder.pending() as u64;
                let tail = decoder.finish();
                if !tail.is_empty()
                    && out
                        .event(program.output(stream, tail, starts_at))
                        .await
                        .is_err()
                {
                    return;
                }
            }
            let exit = program.exited().await;
            if !quiet.load(Ordering::SeqCst) {
                let _ = out.event(program.exit_event(exit)).await;
            }
            feeds
                .0
                .lock()
                .unwrap()
                .remove(&(P::KIND, program.id().to_string()));
        });
        self.add_feed(P::KIND, id, quiet_exit, task);
    }
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

/// A program a connection follows: a terminal or a process.
pub(super) trait Followed: Send + Sync + 'static {
    const KIND: Kind;
    fn id(&self) -> &str;
    fn exited(&self) -> impl std::future::Future<Output = Exit> + Send;
    /// An output event of `data`, whose first byte is at `offset` of the program's output.
    fn output(&self, stream: Stream, data: String, offset: u64) -> Event;
    fn exit_event(&self, exit: Exit) -> Event;
}

impl Followed for Terminal {
    const KIND: Kind = Kind::Terminal;

    fn id(&self) -> &str {
        &self.id
    }

    fn exited(&self) -> impl std::future::Future<Output = Exit> + Send {
        Terminal::exited(self)
    }

    fn output(&self, _stream: Stream, data: String, offset: u64) -> Event {
        Event::TerminalOutput(TerminalOutput {
            terminal_id: self.id.clone(),
            data,
            offset: Some(offset),
        })
    }

    fn exit_event(&self, exit: Exit) -> Event {
        terminal_exit(&self.id, exit)
    }
}

impl Followed for Process {
    const KIND: Kind = Kind::Process;

    fn id(&self) -> &str {
        &self.id
    }

    fn exited(&self) -> impl std::future::Future<Output = Exit> + Send {
        Process::exited(self)
    }

    fn output(&self, stream: Stream, data: String, _offset: u64) -> Event {
        Event::ProcessOutput(ProcessOutput {
            process_id: self.id.clone(),
            stream,
            data,
        })
    }

    fn exit_event(&self, exit: Exit) -> Event {
        process_exit(&self.id, exit)
    }
}

/// `terminal_exit`, as a feed sends it and as the reply to `close_terminal`.
pub(super) fn terminal_exit(id: &str, exit: Exit) -> Event {
    Event::TerminalExit(TerminalExit {
        terminal_id: id.to_string(),
        exit_code: exit.code,
        signal: exit.signal,
    })
}

/// `process_exit`, as a feed sends it and as the reply to `stop_process`.
pub(super) fn process_exit(id: &str, exit: Exit) -> Event {
    Event::ProcessExit(ProcessExit {
        process_id: id.to_string(),
        exit_code: exit.code,
        signal: exit.signal,
    })
}
