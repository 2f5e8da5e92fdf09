//! A bounded log of a program's output, addressed by byte offset, with backpressure.
//!
//! One producer (the task reading a PTY or a pipe) appends chunks; any number of [`Reader`]s
//! follow it at their own pace. Two bounds keep memory flat whatever a program prints:
//! - the log keeps at most `capacity` bytes (the scrollback); older chunks are dropped;
//! - the producer waits while any live reader is more than `window` bytes behind, so a slow
//!   client slows the program (through the kernel's PTY or pipe buffer) instead of growing
//!   memory or losing bytes it has not seen. With no reader attached the producer never waits.
//! - a reader that holds the producer back for longer than [`STALL`] (a client that stopped
//!   reading, or vanished without closing) is marked lagging and no longer holds anyone back,
//!   so one stuck client cannot freeze a shared terminal. It rejoins once it catches up; if
//!   bytes it had not read were dropped meanwhile, its next batch says so (`gap`).
//!
//! Offsets count bytes since the program started, so a client that reconnects with the
//! offset it reached gets exactly the bytes after it while the log still holds them.

use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// How long one reader may hold the producer back before it stops counting.
pub(crate) const STALL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
struct ReaderState {
    position: u64,
    lagging: bool,
}

/// Which stream a chunk came from: terminals use [`STDOUT`] only.
pub(crate) type StreamTag = u8;
pub(crate) const STDOUT: StreamTag = 1;
pub(crate) const STDERR: StreamTag = 2;

#[derive(Debug)]
struct Chunk {
    offset: u64,
    stream: StreamTag,
    data: Bytes,
}

impl State {
    /// Drops the oldest bytes beyond `capacity`, but never what an attached reader has yet
    /// to see: the producer's wait keeps that part under one window, so the log stays
    /// bounded all the same. Chunks can be large (reads are coalesced), so the front chunk
    /// is trimmed, not only dropped. Runs on every append, and whenever the slowest reader
    /// moves on or leaves (after a burst, that is when the excess becomes droppable).
    fn evict(&mut self, capacity: usize) {
        let slowest = self.slowest().unwrap_or(u64::MAX);
        while self.held > capacity {
            let excess = (self.held - capacity) as u64;
            let front = self.chunks.front_mut().expect("held > 0 means a chunk");
            let len = front.data.len() as u64;
            let droppable = slowest.saturating_sub(front.offset).min(len);
            if droppable == 0 {
                break;
            }
            let cut = excess.min(droppable);
            if cut == len {
                self.chunks.pop_front();
            } else {
                front.data = front.data.slice(cut as usize..);
                front.offset += cut;
            }
            self.held -= cut as usize;
            self.start += cut;
        }
    }

    /// The position of the slowest reader that still holds the producer back.
    fn slowest(&self) -> Option<u64> {
        self.readers
            .values()
            .filter(|r| !r.lagging)
            .map(|r| r.position)
            .min()
    }
}

#[derive(Debug)]
struct State {
    chunks: VecDeque<Chunk>,
    /// Offset of the first byte still held.
    start: u64,
    /// Offset one past the last byte appended.
    end: u64,
    held: usize,
    readers: HashMap<u64, ReaderState>,
    next_reader: u64,
    closed: bool,
}

/// The shared log. Cheap to clone through `Arc`.
#[derive(Debug)]
pub(crate) struct OutputLog {
    state: Mutex<State>,
    capacity: usize,
    window: u64,
    /// Tells readers the end moved or the log closed; the value is the end offset.
    end_tx: watch::Sender<u64>,
    /// Tells the producer a reader advanced or went away.
    drained: Notify,
}

/// What a reader got: bytes from one stream, in order, starting at `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Batch {
    pub(crate) offset: u64,
    pub(crate) stream: StreamTag,
    pub(crate) data: Bytes,
    /// True when bytes before `offset` that the reader asked for were already dropped.
    pub(crate) gap: bool,
}

impl OutputLog {
    /// A log keeping `capacity` bytes. The producer never runs more than `capacity` bytes
    /// ahead of the slowest attached reader, so attached readers never miss a byte.
    pub(crate) fn new(capacity: usize) -> Arc<OutputLog> {
        let capacity = capacity.max(4096);
        let (end_tx, _) = watch::channel(0);
        Arc::new(OutputLog {
            state: Mutex::new(State {
                chunks: VecDeque::new(),
                start: 0,
                end: 0,
                held: 0,
                readers: HashMap::new(),
                next_reader: 0,
                closed: false,
            }),
            capacity,
            window: capacity as u64,
            end_tx,
            drained: Notify::new(),
        })
    }

    /// Waits until every attached reader is within the window of the end, so that appending
    /// more cannot push bytes out from under one of them.
    pub(crate) async fn wait_for_room(&self) {
        loop {
            let notified = self.drained.notified();
            {
                let state = self.state.lock().unwrap();
                let slowest = state.slowest().unwrap_or(state.end);
                if state.end.saturating_sub(slowest) < self.window {
                    return;
                }
            }
            if tokio::time::timeout(STALL, notified).await.is_err() {
                // Nobody advanced for a whole STALL: whoever is a window behind stops counting.
                let mut state = self.state.lock().unwrap();
                let (end, window) = (state.end, self.window);
                for reader in state.readers.values_mut() {
                    if !reader.lagging && end.saturating_sub(reader.position) >= window {
                        reader.lagging = true;
                        tracing::debug!(
                            position = reader.position,
                            end,
                            "a reader stalled the output; it no longer holds it back"
                        );
                    }
                }
            }
        }
    }

    /// Appends a chunk. Call [`OutputLog::wait_for_room`] first to honour backpressure.
    pub(crate) fn append(&self, stream: StreamTag, data: Bytes) {
        if data.is_empty() {
            return;
        }
        let end = {
            let mut state = self.state.lock().unwrap();
            let offset = state.end;
            state.end += data.len() as u64;
            state.held += data.len();
            state.chunks.push_back(Chunk {
                offset,
                stream,
                data,
            });
            state.evict(self.capacity);
            state.end
        };
        self.end_tx.send_replace(end);
    }

    /// Marks the end of output: readers finish what is held, then see `None`.
    pub(crate) fn close(&self) {
        let end = {
            let mut state = self.state.lock().unwrap();
            state.closed = true;
            state.end
        };
        self.end_tx.send_replace(end);
    }

    /// Offset one past the last byte written so far.
    pub(crate) fn end(&self) -> u64 {
        self.state.lock().unwrap().end
    }

    /// Bytes currently held (the scrollback's size). Only the tests ask: they check the bound.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.state.lock().unwrap().held
    }

    /// A reader starting at `from` (`None`: the oldest byte held).
    pub(crate) fn reader(self: &Arc<Self>, from: Option<u64>) -> Reader {
        let mut state = self.state.lock().unwrap();
        let (start, end) = (state.start, state.end);
        // A position past the end belongs to an earlier incarnation of the program: replay
        // what is held and say so.
        let (position, gap) = match from {
            None => (start, false),
            Some(n) if n < start || n > end => (start, true),
            Some(n) => (n, false),
        };
        let id = state.next_reader;
        state.next_reader += 1;
        state.readers.insert(
            id,
            ReaderState {
                position,
                lagging: false,
            },
        );
        Reader {
            log: self.clone(),
            id,
            position,
            pending_gap: gap,
            end_rx: self.end_tx.subscribe(),
        }
    }
}

/// One follower of an [`OutputLog`]. Dropping it releases the producer.
#[derive(Debug)]
pub(crate) struct Reader {
    log: Arc<OutputLog>,
    id: u64,
    position: u64,
    pending_gap: bool,
    end_rx: watch::Receiver<u64>,
}

impl Reader {
    /// Where this reader stands: the offset of the next byte it will get.
    pub(crate) fn position(&self) -> u64 {
        self.position
    }

    /// Whether the first batch will start later than asked (bytes were dropped).
    pub(crate) fn starts_with_gap(&self) -> bool {
        self.pending_gap
    }

    /// Waits for output after the reader's position and returns up to `max` bytes of one
    /// stream, joining adjacent chunks so that a burst travels as one frame. `None` once the
    /// log is closed and everything held has been read.
    pub(crate) async fn next(&mut self, max: usize) -> Option<Batch> {
        loop {
            if let Some(batch) = self.take(max) {
                return Some(batch);
            }
            if self.log.state.lock().unwrap().closed {
                // Everything appended before close() has been taken above.
                self.take(max)?;
            }
            if self.end_rx.changed().await.is_err() {
                return None;
            }
        }
    }

    /// Takes what is available now without waiting.
    pub(crate) fn take(&mut self, max: usize) -> Option<Batch> {
        let mut state = self.log.state.lock().unwrap();
        let mut gap = std::mem::take(&mut self.pending_gap);
        if self.position < state.start {
            // Only readers that were not attached while bytes were dropped get here.
            self.position = state.start;
            gap = true;
        }
        if self.position >= state.end {
            self.pending_gap = gap;
            return None;
        }
        let first = state
            .chunks
            .partition_point(|c| c.offset + c.data.len() as u64 <= self.position);
        let offset = self.position;
        let stream = state.chunks[first].stream;
        let mut parts: Vec<Bytes> = Vec::new();
        let mut taken = 0usize;
        for chunk in state.chunks.range(first..) {
            if chunk.stream != stream || taken >= max {
                break;
            }
            let skip = (self.position + taken as u64 - chunk.offset) as usize;
            let want = (chunk.data.len() - skip).min(max - taken);
            parts.push(chunk.data.slice(skip..skip + want));
            taken += want;
        }
        self.position += taken as u64;
        let (end, window) = (state.end, self.log.window);
        if let Some(reader) = state.readers.get_mut(&self.id) {
            reader.position = self.position;
            // Caught up again: hold the producer back like everyone else.
            if reader.lagging && end.saturating_sub(self.position) < window / 2 {
                reader.lagging = false;
            }
        }
        state.evict(self.log.capacity);
        drop(state);
        self.log.drained.notify_one();
        let data = if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            let mut joined = Vec::with_capacity(taken);
            for part in &parts {
                joined.extend_from_slice(part);
            }
            Bytes::from(joined)
        };
        Some(Batch {
            offset,
            stream,
            data,
            gap,
        })
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let mut state = self.log.state.lock().unwrap();
        state.readers.remove(&self.id);
        state.evict(self.log.capacity);
        drop(state);
        self.log.drained.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[tokio::test]
    async fn reader_sees_everything_in_order_and_joins_chunks() {
        let log = OutputLog::new(4096);
        log.append(STDOUT, b("hello "));
        log.append(STDOUT, b("world"));
        let mut r = log.reader(None);
        let batch = r.next(1024).await.unwrap();
        assert_eq!(batch.data, b("hello world"));
        assert_eq!((batch.offset, batch.gap), (0, false));
        log.close();
        assert!(r.next(1024).await.is_none());
    }

    #[tokio::test]
    async fn streams_are_not_joined_and_max_is_honoured() {
        let log = OutputLog::new(4096);
        log.append(STDOUT, b("out1"));
        log.append(STDERR, b("err1"));
        let mut r = log.reader(Some(0));
        assert_eq!(r.next(2).await.unwrap().data, b("ou"));
        let batch = r.next(100).await.unwrap();
        assert_eq!((batch.stream, batch.data), (STDOUT, b("t1")));
        let batch = r.next(100).await.unwrap();
        assert_eq!(
            (batch.stream, batch.data, batch.offset),
            (STDERR, b("err1"), 4)
        );
    }

    #[tokio::test]
    async fn resume_from_offset_and_gap_when_dropped() {
        let log = OutputLog::new(4096);
        for i in 0..10 {
            log.append(STDOUT, Bytes::from(vec![b'a' + i; 1000]));
        }
        assert!(log.held() <= 4096);
        // Offset 9500 is still held: exactly the last 500 bytes.
        let mut r = log.reader(Some(9500));
        let batch = r.take(100_000).unwrap();
        assert_eq!(
            (batch.offset, batch.data.len(), batch.gap),
            (9500, 500, false)
        );
        // Offset 10 was dropped: the replay starts later and says so.
        let mut r = log.reader(Some(10));
        let batch = r.take(100_000).unwrap();
        assert!(batch.gap);
        assert_eq!(batch.offset + batch.data.len() as u64, 10_000);
        // A position past the end (an earlier incarnation) replays what is held, with a gap.
        let r = log.reader(Some(99_999));
        assert!(r.starts_with_gap());
    }

    #[tokio::test]
    async fn slow_reader_holds_the_producer_back_and_loses_nothing() {
        let log = OutputLog::new(4096);
        let mut reader = log.reader(None);
        let producer = {
            let log = log.clone();
            tokio::spawn(async move {
                for i in 0..100u32 {
                    log.wait_for_room().await;
                    log.append(STDOUT, Bytes::from(vec![(i % 251) as u8; 1000]));
                }
                log.close();
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The producer is stuck at the window: nothing beyond 4096 + one chunk was written.
        assert!(log.end() <= 5000, "end {}", log.end());
        let mut received = Vec::new();
        while let Some(batch) = reader.next(1500).await {
            assert!(!batch.gap);
            received.extend_from_slice(&batch.data);
        }
        producer.await.unwrap();
        assert_eq!(received.len(), 100_000);
        for (i, chunk) in received.chunks(1000).enumerate() {
            assert!(chunk.iter().all(|&byte| byte == (i % 251) as u8));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_reader_stops_holding_the_producer_back_and_learns_of_the_gap() {
        let log = OutputLog::new(4096);
        let mut stuck = log.reader(None);
        let mut live = log.reader(None);
        let producer = {
            let log = log.clone();
            tokio::spawn(async move {
                for i in 0..50u32 {
                    log.wait_for_room().await;
                    log.append(STDOUT, Bytes::from(vec![(i % 251) as u8; 1000]));
                }
                log.close();
            })
        };
        // The live reader keeps reading; the stuck one never does. After STALL the producer
        // goes on for the live reader's sake.
        let mut received = 0;
        while let Some(batch) = live.next(100_000).await {
            assert!(!batch.gap, "the live reader misses nothing");
            received += batch.data.len();
        }
        producer.await.unwrap();
        assert_eq!(received, 50_000);
        let first = stuck.take(100_000).unwrap();
        assert!(
            first.gap,
            "the stuck reader is told that output was dropped"
        );
        assert!(log.held() <= 4096 + 1000);
    }

    #[tokio::test]
    async fn a_chunk_larger_than_the_scrollback_is_trimmed() {
        let log = OutputLog::new(4096);
        let big: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        log.append(STDOUT, Bytes::from(big.clone()));
        assert_eq!(log.held(), 4096);
        let mut r = log.reader(Some(0));
        let batch = r.take(100_000).unwrap();
        assert!(batch.gap);
        assert_eq!(batch.offset, 20_000 - 4096);
        assert_eq!(&batch.data[..], &big[20_000 - 4096..]);
    }

    #[tokio::test]
    async fn excess_kept_for_a_reader_is_dropped_when_it_leaves() {
        let log = OutputLog::new(4096);
        let reader = log.reader(Some(0));
        log.append(STDOUT, Bytes::from(vec![7u8; 3000]));
        log.append(STDOUT, Bytes::from(vec![8u8; 3000]));
        assert_eq!(log.held(), 6000, "kept for the reader that has not read it");
        drop(reader);
        assert_eq!(log.held(), 4096, "trimmed once nobody needs it");
        let mut late = log.reader(None);
        let batch = late.take(100_000).unwrap();
        assert_eq!(batch.data.len(), 4096);
    }

    #[tokio::test]
    async fn without_readers_the_producer_never_waits() {
        let log = OutputLog::new(4096);
        for _ in 0..100 {
            tokio::time::timeout(Duration::from_secs(1), log.wait_for_room())
                .await
                .expect("no reader, no wait");
            log.append(STDOUT, Bytes::from(vec![0u8; 1000]));
        }
        assert!(log.held() <= 4096);
        // A dropped reader stops holding the producer back.
        let reader = log.reader(Some(log.end() - 100));
        drop(reader);
        tokio::time::timeout(Duration::from_secs(1), log.wait_for_room())
            .await
            .unwrap();
    }
}
