//! Replayed output must never produce input.
//!
//! A client that attaches to a terminal gets its scrollback first. Programs that ran earlier
//! (vim, a shell prompt with colour probes) left queries in it: "what terminal are you"
//! (DA), "where is the cursor" (DSR/CPR), "what is your background colour" (OSC 11). The
//! client's emulator answers every query it reads, so without care each reload typed
//! `^[[?1;2c^[[24;80R^[]11;rgb:1f1f/2323/2828^G` into whatever runs now.
//!
//! The runner counts the queries, by kind, in the bytes it replays to a socket
//! ([`QueryScanner`]), and drops that many answers of those kinds from that socket's input
//! for a short while ([`AnswerFilter`]). Answers to queries a program makes after the
//! attach (live ones) pass, and so does everything a person types. A byte-exact resume
//! (`?offset=`) is not a replay: the client never saw those bytes, and a program may be
//! waiting for the answer.

use std::borrow::Cow;
use std::time::{Duration, Instant};

/// How long answers to replayed queries are awaited after an attach.
pub(crate) const ANSWER_WINDOW: Duration = Duration::from_secs(10);

/// Kinds of query a terminal emulator answers, by the shape of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `CSI c`, `CSI > c`, `CSI = c`; answered `CSI ? … c`, `CSI > … c`, `DCS ! | … ST`.
    Attributes,
    /// `CSI 6 n`, `CSI ? 6 n`; answered `CSI row ; col R`.
    CursorPosition,
    /// Other device status reports (`CSI 5 n`...); answered `CSI … n`.
    Status,
    /// `OSC 4/10/11/12… ; ? ST`; answered `OSC … ; rgb:… ST`.
    Color,
    /// `CSI ? … $ p` (DECRQM); answered `CSI ? … $ y`.
    Mode,
    /// `CSI > q` (XTVERSION), `DCS $ q … ST` (DECRQSS), `DCS + q … ST`; answered `DCS … ST`.
    Report,
    /// `CSI 14 t` and other window reports; answered `CSI … t` (or an OSC title).
    Window,
    /// `CSI ? u` (keyboard protocol flags); answered `CSI ? … u`.
    Keyboard,
}

const KINDS: usize = 8;

fn index(kind: Kind) -> usize {
    kind as usize
}

/// One escape sequence, as far as these rules care.
#[derive(Debug, PartialEq, Eq)]
enum Sequence<'a> {
    Csi {
        /// `?`, `>`, `=` or `<` before the parameters, if any.
        private: Option<u8>,
        params: &'a [u8],
        intermediates: &'a [u8],
        last: u8,
    },
    /// `ESC ] … (BEL | ESC \)`: the text between.
    Osc(&'a [u8]),
    /// `ESC P … ESC \`: the text between.
    Dcs(&'a [u8]),
    /// Any other escape (two bytes).
    Other,
}

/// Longest sequence looked at; a longer one is not a query or an answer of these kinds.
const MAX_SEQUENCE: usize = 512;

/// Parses the escape sequence at `bytes[0] == ESC`. `Err(true)`: incomplete (more bytes may
/// complete it); `Err(false)`: not a sequence worth reading (skip the ESC).
fn sequence(bytes: &[u8]) -> Result<(Sequence<'_>, usize), bool> {
    debug_assert_eq!(bytes.first(), Some(&0x1b));
    let Some(&kind) = bytes.get(1) else {
        return Err(true);
    };
    let limit = bytes.len().min(MAX_SEQUENCE);
    match kind {
        b'[' => {
            let mut i = 2;
            let private = match bytes.get(i) {
                Some(&b) if matches!(b, b'?' | b'>' | b'=' | b'<') => {
                    i += 1;
                    Some(b)
                }
                Some(_) => None,
                None => return Err(true),
            };
            let params_start = i;
            while i < limit && matches!(bytes[i], 0x30..=0x3f) {
                i += 1;
            }
            let params = &bytes[params_start..i];
            let inter_start = i;
            while i < limit && matches!(bytes[i], 0x20..=0x2f) {
                i += 1;
            }
            let intermediates = &bytes[inter_start..i];
            match bytes.get(i) {
                Some(&last) if (0x40..=0x7e).contains(&last) => Ok((
                    Sequence::Csi {
                        private,
                        params,
                        intermediates,
                        last,
                    },
                    i + 1,
                )),
                None if i < MAX_SEQUENCE => Err(true),
                _ => Err(false),
            }
        }
        b']' | b'P' => {
            let body_start = 2;
            let mut i = body_start;
            while i < limit {
                match bytes[i] {
                    0x07 if kind == b']' => {
                        return Ok((Sequence::Osc(&bytes[body_start..i]), i + 1));
                    }
                    0x1b => match bytes.get(i + 1) {
                        Some(b'\\') => {
                            let body = &bytes[body_start..i];
                            let seq = if kind == b']' {
                                Sequence::Osc(body)
                            } else {
                                Sequence::Dcs(body)
                            };
                            return Ok((seq, i + 2));
                        }
                        Some(_) => return Err(false),
                        None => return Err(true),
                    },
                    _ => i += 1,
                }
            }
            if bytes.len() < MAX_SEQUENCE {
                Err(true)
            } else {
                Err(false)
            }
        }
        _ => Ok((Sequence::Other, 2)),
    }
}

/// The kind of query a sequence (written by a program) is, if it is one.
fn query_kind(seq: &Sequence<'_>) -> Option<Kind> {
    match *seq {
        Sequence::Csi {
            private,
            params,
            intermediates,
            last,
        } => match (private, intermediates, last) {
            (None | Some(b'>') | Some(b'='), [], b'c') => Some(Kind::Attributes),
            (None | Some(b'?'), [], b'n') if params == b"6" => Some(Kind::CursorPosition),
            (None | Some(b'?'), [], b'n') => Some(Kind::Status),
            (_, b"$", b'p') => Some(Kind::Mode),
            (Some(b'>'), [], b'q') => Some(Kind::Report),
            (None, [], b't') => {
                let first = params.split(|b| *b == b';').next().unwrap_or(b"");
                matches!(
                    first,
                    b"11" | b"13" | b"14" | b"15" | b"16" | b"18" | b"19" | b"20" | b"21"
                )
                .then_some(Kind::Window)
            }
            (Some(b'?'), [], b'u') => Some(Kind::Keyboard),
            _ => None,
        },
        Sequence::Osc(body) => {
            // `4;N;?`, `10;?`, `11;?`... : a colour asked for.
            let asks = body.ends_with(b";?")
                && body
                    .iter()
                    .all(|b| b.is_ascii_digit() || *b == b';' || *b == b'?');
            asks.then_some(Kind::Color)
        }
        Sequence::Dcs(body) => {
            (body.starts_with(b"$q") || body.starts_with(b"+q")).then_some(Kind::Report)
        }
        Sequence::Other => None,
    }
}

/// The kind of query a sequence (sent by a client's emulator) answers, if it is an answer.
fn answer_kind(seq: &Sequence<'_>) -> Option<Kind> {
    match *seq {
        Sequence::Csi {
            private,
            intermediates,
            last,
            ..
        } => match (private, intermediates, last) {
            (Some(b'?') | Some(b'>') | Some(b'='), [], b'c') => Some(Kind::Attributes),
            (None | Some(b'?'), [], b'R') => Some(Kind::CursorPosition),
            (None | Some(b'?'), [], b'n') => Some(Kind::Status),
            (_, b"$", b'y') => Some(Kind::Mode),
            (None, [], b't') => Some(Kind::Window),
            (Some(b'?'), [], b'u') => Some(Kind::Keyboard),
            _ => None,
        },
        Sequence::Osc(body) => {
            // `11;rgb:…`, `4;1;rgb:…`; a window title report (`l…`, `L…`) answers `CSI 21 t`.
            if body.starts_with(b"l") || body.starts_with(b"L") {
                Some(Kind::Window)
            } else {
                body.windows(4).any(|w| w == b"rgb:").then_some(Kind::Color)
            }
        }
        Sequence::Dcs(_) => Some(Kind::Report),
        Sequence::Other => None,
    }
}

/// Queries seen so far, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts([u32; KINDS]);

impl Counts {
    pub(crate) fn total(&self) -> u32 {
        self.0.iter().sum()
    }

    /// What was counted after `before` (an earlier value of the same scanner).
    pub(crate) fn since(self, before: Counts) -> Counts {
        let mut out = self;
        for (n, b) in out.0.iter_mut().zip(before.0) {
            *n = n.saturating_sub(b);
        }
        out
    }
}

/// Counts the queries in a stream of output, across chunk boundaries.
#[derive(Debug, Default)]
pub(crate) struct QueryScanner {
    /// The start of an escape sequence cut by the end of the last chunk.
    carry: Vec<u8>,
    counts: Counts,
}

impl QueryScanner {
    pub(crate) fn feed(&mut self, chunk: &[u8]) {
        let joined;
        let bytes: &[u8] = if self.carry.is_empty() {
            chunk
        } else {
            let mut j = std::mem::take(&mut self.carry);
            j.extend_from_slice(chunk);
            joined = j;
            &joined
        };
        let mut i = 0;
        while let Some(at) = bytes[i..].iter().position(|b| *b == 0x1b) {
            let start = i + at;
            match sequence(&bytes[start..]) {
                Ok((seq, len)) => {
                    if let Some(kind) = query_kind(&seq) {
                        self.counts.0[index(kind)] += 1;
                    }
                    i = start + len;
                }
                Err(true) => {
                    self.carry = bytes[start..].to_vec();
                    return;
                }
                Err(false) => i = start + 1,
            }
        }
    }

    pub(crate) fn counts(&self) -> Counts {
        self.counts
    }
}

/// Drops answers to replayed queries from one socket's input.
#[derive(Debug)]
pub(crate) struct AnswerFilter {
    budget: Counts,
    until: Instant,
}

impl Default for AnswerFilter {
    fn default() -> AnswerFilter {
        AnswerFilter {
            budget: Counts::default(),
            until: Instant::now(),
        }
    }
}

impl AnswerFilter {
    /// Expects answers to `counts` more queries, from now until [`ANSWER_WINDOW`] later.
    pub(crate) fn expect(&mut self, counts: Counts) {
        if counts.total() == 0 {
            return;
        }
        for (budget, more) in self.budget.0.iter_mut().zip(counts.0) {
            *budget += more;
        }
        self.until = Instant::now() + ANSWER_WINDOW;
    }

    /// The input with answers to replayed queries taken out. Answers arrive whole in one
    /// message (an emulator sends each as one write); one cut across messages passes.
    pub(crate) fn filter<'a>(&mut self, input: &'a [u8]) -> Cow<'a, [u8]> {
        if self.budget.total() == 0 || !input.contains(&0x1b) {
            return Cow::Borrowed(input);
        }
        if Instant::now() > self.until {
            self.budget = Counts::default();
            return Cow::Borrowed(input);
        }
        let mut kept = Vec::with_capacity(input.len());
        let mut i = 0;
        while let Some(at) = input[i..].iter().position(|b| *b == 0x1b) {
            let start = i + at;
            kept.extend_from_slice(&input[i..start]);
            match sequence(&input[start..]) {
                Ok((seq, len)) => {
                    let end = start + len;
                    match answer_kind(&seq) {
                        Some(kind) if self.budget.0[index(kind)] > 0 => {
                            self.budget.0[index(kind)] -= 1;
                            tracing::debug!(
                                ?kind,
                                "dropped a terminal's answer to a replayed query"
                            );
                        }
                        _ => kept.extend_from_slice(&input[start..end]),
                    }
                    i = end;
                }
                Err(_) => {
                    kept.push(0x1b);
                    i = start + 1;
                }
            }
        }
        kept.extend_from_slice(&input[i..]);
        Cow::Owned(kept)
    }
}

#[cfg(test)]
mod tests;
