//! A terminal's screen as a person sees it, kept by a headless emulator, so that a client that
//! attaches later gets a snapshot that redraws it exactly (docs/PROTOCOL.md section 8). A raw
//! replay of the scrollback cannot: once the oldest bytes are dropped, what is left starts in
//! the middle of vim's or htop's drawing, at a size the client may not have.
//!
//! Three parts fed with the same bytes:
//! - avt (asciinema's emulator) keeps both screens and which is active, the cursor and the
//!   saved cursors, colours, the scroll region, charsets, tab stops and its modes, and writes
//!   them out as escape sequences that rebuild them ([`avt::Terminal::dump`]);
//! - [`Modes`] keeps what avt does not: mouse, focus, paste and keypad modes, cursor style,
//!   title;
//! - [`History`] keeps the lines that scrolled off the top, rendered, within a byte budget:
//!   avt is run without scrollback, so a line costs its text, not 16 bytes a cell.
//!
//! A screen nobody has written to for [`SLEEP_AFTER`] sleeps: its grids (about 63 KB at
//! 80x24) are dropped and kept as their dump (a few KB at most), and rebuilt from it on the
//! next output or snapshot. Idle terminals are most terminals.

mod burst;
mod modes;
#[cfg(test)]
mod tests;

use avt::parser::{Function, State};
use cove_pty::Size;
use std::collections::VecDeque;
use std::fmt::Write;
use std::time::Duration;

use crate::utf8::Utf8Stream;
use burst::{Layout, is_plain};
use modes::Modes;

/// How long a screen stays awake after its last output.
pub(crate) const SLEEP_AFTER: Duration = Duration::from_secs(10);

/// Bytes of rendered lines kept above the screen.
const HISTORY_BYTES: usize = 64 * 1024;

/// Most plain text held back from the emulator before it is drawn (see `held`).
const MAX_HELD: usize = 1024 * 1024;

/// Longest half-written escape sequence kept for a snapshot (an OSC 52 copy can be megabytes;
/// a snapshot cut inside one that long leaves the rest of it to show up as text).
const MAX_PENDING: usize = 4096;

/// The emulated screen of one terminal.
pub(crate) struct Screen {
    /// The emulator, or `None` while asleep.
    vt: Option<avt::Terminal>,
    /// While asleep: the dump that rebuilds the emulator.
    dump: String,
    size: Size,
    /// avt's parser, run here rather than inside the emulator: its state tells where plain
    /// text starts, for [`burst`].
    parser: avt::Parser,
    /// Parsed, not yet run by the emulator.
    functions: Vec<Function>,
    /// Plain text in ground state not yet drawn, after `functions`: a burst spans many PTY
    /// reads (4 KiB each at times), and only a long one can skip its head (`burst`).
    held: Vec<u8>,
    /// The half-written escape sequence the parser is in, replayed at the end of a snapshot.
    pending: String,
    layout: Layout,
    modes: Modes,
    /// Reads the bytes for [`Modes`].
    modes_parser: vte::Parser,
    history: History,
    utf8: Utf8Stream,
    /// Bytes of plain text drawn without emulating them (see `burst`).
    skipped: u64,
    /// When it was last fed, resized or drawn for a snapshot.
    used: std::time::Instant,
}

impl std::fmt::Debug for Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Screen")
            .field("size", &self.size)
            .field("asleep", &self.vt.is_none())
            .field("history_bytes", &self.history.bytes)
            .field("skipped", &self.skipped)
            .finish_non_exhaustive()
    }
}

impl Screen {
    pub(crate) fn new(size: Size) -> Screen {
        Screen {
            vt: Some(emulator(size)),
            dump: String::new(),
            size,
            parser: avt::Parser::new(),
            functions: Vec::new(),
            held: Vec::new(),
            pending: String::new(),
            layout: Layout::default(),
            modes: Modes::default(),
            modes_parser: vte::Parser::new(),
            history: History::default(),
            utf8: Utf8Stream::default(),
            skipped: 0,
            used: std::time::Instant::now(),
        }
    }

    /// Reads what the program printed.
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        self.used = std::time::Instant::now();
        self.modes_parser.advance(&mut self.modes, bytes);
        // Most reads are whole UTF-8: read them in place.
        let decoded;
        let text = match std::str::from_utf8(bytes) {
            Ok(text) if self.utf8.pending() == 0 => text,
            _ => {
                decoded = self.utf8.decode(bytes);
                decoded.as_str()
            }
        };
        self.wake();
        let mut rest = text;
        while !rest.is_empty() {
            if self.parser.state == State::Ground {
                let plain = burst::plain_prefix(rest.as_bytes());
                if plain > 0 {
                    self.held.extend_from_slice(&rest.as_bytes()[..plain]);
                    if self.held.len() >= MAX_HELD {
                        self.draw_held();
                    }
                    rest = &rest[plain..];
                    continue;
                }
            }
            self.draw_held();
            // Parse up to where ground state meets plain text again.
            let mut end = rest.len();
            for (i, ch) in rest.char_indices() {
                self.parse(ch);
                let next = i + ch.len_utf8();
                if self.parser.state == State::Ground
                    && rest.as_bytes().get(next).is_some_and(|&b| is_plain(b))
                {
                    end = next;
                    break;
                }
            }
            rest = &rest[end..];
        }
        self.run();
    }

    fn parse(&mut self, ch: char) {
        if ch == '\x1b' || self.parser.state == State::Ground {
            self.pending.clear();
        }
        let function = self.parser.feed(ch);
        if self.parser.state == State::Ground {
            // A sequence that ended is not half written any more.
            self.pending.clear();
        } else if self.pending.len() < MAX_PENDING {
            self.pending.push(ch);
        }
        if let Some(function) = function {
            self.layout.follow(&function, self.size.rows.into());
            match function {
                // ED 3 and a full reset clear the scrollback on every terminal: here too
                // (a secret printed, then `clear`, must not come back with a snapshot).
                Function::Ed(avt::parser::EdScope::SavedLines) | Function::Ris => {
                    self.run();
                    self.history.clear();
                }
                // xterm.js erases the screen on ED 2 without keeping it as scrollback; avt
                // keeps it. Keep what xterm.js keeps.
                Function::Ed(avt::parser::EdScope::All) => {
                    self.run();
                    self.history.hidden = usize::MAX;
                    self.functions.push(function);
                    self.run();
                    self.history.hidden = 0;
                    return;
                }
                _ => {}
            }
            self.functions.push(function);
            // Bounded: a long stretch of coloured text is many functions.
            if self.functions.len() >= 4096 {
                self.run();
            }
        }
    }

    /// Draws the plain text held back, and everything parsed before it.
    fn draw_held(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let held = std::mem::take(&mut self.held);
        self.plain(&held);
        // Keep a small buffer for the next run; a flood's megabyte goes.
        if held.capacity() <= 64 * 1024 {
            self.held = held;
            self.held.clear();
        }
    }

    /// Everything read so far, drawn.
    fn catch_up(&mut self) {
        self.wake();
        self.draw_held();
        self.run();
    }

    /// Plain text in ground state: emulated as it is, or, for a long burst, only its tail
    /// (see `burst`).
    fn plain(&mut self, run: &[u8]) {
        let (cols, rows) = (usize::from(self.size.cols), usize::from(self.size.rows));
        if run.len() >= burst::MIN_BURST {
            self.run();
            let vt = self.vt.as_ref().expect("awake");
            let cursor = vt.cursor();
            if let Some(plan) = burst::plan(run, &self.layout, (cursor.col, cursor.row), cols, rows)
            {
                let primary = vt.active_screen_kind() == avt::ScreenKind::Primary;
                if primary {
                    // The rows on view go to the history first, as they would have scrolled.
                    self.functions.push(Function::Ed(avt::parser::EdScope::All));
                    self.run();
                    self.history.push_skipped(&run[..plan.cut], cols);
                    // The blank rows the cursor lands among scroll out as the tail goes on:
                    // they were never seen, so they are not history.
                    self.history.hidden = rows;
                }
                self.skipped += plan.cut as u64;
                self.functions.extend(burst::cursor_at(plan, cols, rows));
                self.functions
                    .extend(run[plan.cut..].iter().map(|&b| plain_function(b)));
                self.run();
                self.history.hidden = 0;
                return;
            }
        }
        self.functions
            .extend(run.iter().map(|&b| plain_function(b)));
    }

    /// Runs the parsed functions on the emulator.
    fn run(&mut self) {
        if self.functions.is_empty() {
            return;
        }
        let vt = self.vt.as_mut().expect("awake");
        vt.execute_with(self.functions.drain(..), Evictions(&mut self.history));
    }

    /// Follows the PTY to a new size. The primary screen reflows, as xterm.js's does.
    pub(crate) fn resize(&mut self, size: Size) {
        if size == self.size {
            return;
        }
        self.used = std::time::Instant::now();
        self.catch_up();
        self.layout.resized(size.rows != self.size.rows);
        self.size = size;
        let vt = self.vt.as_mut().expect("awake");
        vt.resize_with(
            size.cols.into(),
            size.rows.into(),
            Evictions(&mut self.history),
        );
    }

    /// Escape sequences that redraw this screen on a fresh terminal of the same size: the
    /// history (into the client's scrollback), then the modes, then both screens, the cursor
    /// and whatever escape sequence is half written.
    pub(crate) fn snapshot(&mut self) -> String {
        // Asleep, everything read is drawn already and the dump is at hand: no need to wake.
        let dump = match self.vt {
            None => self.dump.clone(),
            Some(_) => {
                self.used = std::time::Instant::now();
                self.catch_up();
                self.vt.as_ref().expect("awake").dump()
            }
        };
        let rows = usize::from(self.size.rows);
        let mut out = String::with_capacity(self.history.bytes + 4096);
        out.push_str("\x1b[0m");
        let lines = self.history.render(&mut out);
        // Scroll exactly the history rows still on view into the scrollback, leaving a blank
        // screen: the dump expects one, with the cursor home.
        let on_view = lines.min(rows.saturating_sub(1));
        if on_view > 0 {
            let _ = write!(out, "\x1b[{rows};1H");
            out.extend(std::iter::repeat_n('\n', on_view));
        }
        // Home, and blank whatever history rows a narrower client still shows.
        out.push_str("\x1b[H\x1b[2J");
        self.modes.render(&mut out);
        out.push_str(&dump);
        out.push_str(&self.pending);
        out
    }

    /// Sleeps if nothing used it for `idle`. Returns whether it went to sleep.
    pub(crate) fn sleep_if_idle(&mut self, idle: Duration) -> bool {
        self.vt.is_some() && self.used.elapsed() >= idle && self.sleep()
    }

    /// Bytes read but not drawn: the start of a UTF-8 character whose end has not arrived.
    /// A client attaching gets them as live output after the snapshot.
    pub(crate) fn undrawn(&self) -> usize {
        self.utf8.pending()
    }

    /// Drops the grids, keeping what rebuilds them. Returns whether it was awake.
    pub(crate) fn sleep(&mut self) -> bool {
        if self.vt.is_some() {
            self.catch_up();
            self.functions = Vec::new();
            self.held = Vec::new();
        }
        match self.vt.take() {
            Some(vt) => {
                self.dump = vt.dump();
                true
            }
            None => false,
        }
    }

    fn wake(&mut self) {
        let (size, dump) = (self.size, &mut self.dump);
        self.vt.get_or_insert_with(|| {
            let mut vt = emulator(size);
            vt.feed(std::mem::take(dump).as_str());
            vt
        });
    }
}

/// What avt's parser makes of a plain byte in ground state.
fn plain_function(byte: u8) -> Function {
    match byte {
        b'\r' => Function::Cr,
        b'\n' => Function::Lf,
        _ => Function::Print(byte as char),
    }
}

/// An emulator without scrollback: lines that leave the screen go to [`History`].
fn emulator(size: Size) -> avt::Terminal {
    avt::Terminal::with_scrollback(size.cols.max(1).into(), size.rows.max(1).into(), Some(0))
        .expect("sizes are at least 1")
}

/// Lines that scrolled off the top, oldest first, within [`HISTORY_BYTES`].
#[derive(Debug, Default)]
struct History {
    entries: VecDeque<Scrolled>,
    bytes: usize,
    /// How many lines the emulator evicts next that are not history (see `burst`).
    hidden: usize,
}

/// What scrolled off the top.
#[derive(Debug)]
enum Scrolled {
    /// A line the emulator evicted, rendered with its colours, ending in CR LF (or nothing,
    /// when it wrapped into the next).
    Line(String),
    /// The tail of a burst that was not emulated, as the program wrote it: rendered into lines
    /// only when a snapshot needs them (a flood would otherwise render 64 KiB of lines per
    /// read, to drop them at the next).
    Skipped {
        text: Vec<u8>,
        /// Where the lines still kept start in `text` (older ones were trimmed).
        start: usize,
        cols: usize,
    },
}

impl History {
    fn push(&mut self, line: &avt::Line) {
        if self.hidden > 0 {
            self.hidden -= 1;
            return;
        }
        let rendered = render_line(line);
        self.bytes += rendered.len();
        self.entries.push_back(Scrolled::Line(rendered));
        self.trim();
    }

    /// Keeps the last [`HISTORY_BYTES`] of a skipped burst, from the start of a line.
    fn push_skipped(&mut self, head: &[u8], cols: usize) {
        let mut start = head.len().saturating_sub(HISTORY_BYTES);
        if start > 0 {
            start = memchr::memchr(b'\n', &head[start..]).map_or(head.len(), |i| start + i + 1);
        }
        if start == head.len() {
            return;
        }
        self.bytes += head.len() - start;
        self.entries.push_back(Scrolled::Skipped {
            text: head[start..].to_vec(),
            start: 0,
            cols,
        });
        self.trim();
    }

    /// Drops the oldest lines beyond [`HISTORY_BYTES`]; a skipped burst loses lines from its
    /// start, not all at once.
    fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    fn trim(&mut self) {
        while self.bytes > HISTORY_BYTES {
            let excess = self.bytes - HISTORY_BYTES;
            match self.entries.front_mut() {
                None => break,
                Some(Scrolled::Skipped { text, start, .. }) if text.len() - *start > excess => {
                    let from = *start + excess;
                    let cut =
                        memchr::memchr(b'\n', &text[from..]).map_or(text.len(), |i| from + i + 1);
                    self.bytes -= cut - *start;
                    *start = cut;
                }
                Some(_) => {
                    let dropped = match self.entries.pop_front() {
                        Some(Scrolled::Line(line)) => line.len(),
                        Some(Scrolled::Skipped { text, start, .. }) => text.len() - start,
                        None => 0,
                    };
                    self.bytes -= dropped;
                }
            }
        }
    }

    /// Writes every line into `out`; returns how many.
    fn render(&self, out: &mut String) -> usize {
        let mut lines = 0;
        for entry in &self.entries {
            match entry {
                Scrolled::Line(line) => {
                    out.push_str(line);
                    lines += 1;
                }
                Scrolled::Skipped { text, start, cols } => {
                    for line in burst::text_lines(&text[*start..], *cols) {
                        out.push_str(&line);
                        lines += 1;
                    }
                }
            }
        }
        lines
    }
}

/// Hands the lines avt evicts to the history.
struct Evictions<'a>(&'a mut History);

impl avt::Observer for Evictions<'_> {
    type Output = ();

    fn evicted(&mut self, _context: &mut avt::Observation<'_>, line: &avt::Line) {
        self.0.push(line);
    }

    fn end(&mut self, _context: &mut avt::Observation<'_>) {}
}

/// One line as text with SGR sequences. Trailing blanks are trimmed unless the line wrapped
/// (then its full width makes the next line continue it on the client too).
fn render_line(line: &avt::Line) -> String {
    let cells = line.cells();
    let used = if line.is_wrapped() {
        cells.len()
    } else {
        cells.len()
            - cells
                .iter()
                .rev()
                .take_while(|c| c.char() == ' ' && c.pen().is_default())
                .count()
    };
    let mut out = String::with_capacity(used + 8);
    let mut pen = avt::Pen::default();
    for cell in &cells[..used] {
        if cell.width() == 0 {
            continue;
        }
        if *cell.pen() != pen {
            pen = *cell.pen();
            sgr(&pen, &mut out);
        }
        out.push(cell.char());
    }
    if !pen.is_default() {
        out.push_str("\x1b[0m");
    }
    if !line.is_wrapped() {
        out.push_str("\r\n");
    }
    out
}

/// The SGR sequence that sets `pen` from scratch.
fn sgr(pen: &avt::Pen, out: &mut String) {
    out.push_str("\x1b[0");
    let flags = [
        (pen.is_bold(), "1"),
        (pen.is_faint(), "2"),
        (pen.is_italic(), "3"),
        (pen.is_underline(), "4"),
        (pen.is_blink(), "5"),
        (pen.is_inverse(), "7"),
        (pen.is_strikethrough(), "9"),
    ];
    for (_, code) in flags.iter().filter(|(on, _)| *on) {
        out.push(';');
        out.push_str(code);
    }
    for (color, base, extended) in [(pen.foreground(), 30, 38), (pen.background(), 40, 48)] {
        let _ = match color {
            None => Ok(()),
            Some(avt::Color::Indexed(n)) if n < 8 => write!(out, ";{}", base + n),
            Some(avt::Color::Indexed(n)) if n < 16 => write!(out, ";{}", base + 60 + n - 8),
            Some(avt::Color::Indexed(n)) => write!(out, ";{extended};5;{n}"),
            Some(avt::Color::RGB(c)) => write!(out, ";{extended};2;{};{};{}", c.r, c.g, c.b),
        };
    }
    out.push('m');
}
