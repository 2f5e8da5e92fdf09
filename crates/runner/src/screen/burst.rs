//! Plain text in bulk (a `cat` of a big file, a build log) without emulating every character.
//!
//! avt draws about 45 MB/s; a PTY on this machine moves 120-190 MB/s, so emulating every byte
//! would make the emulator, not the kernel, the limit of a terminal's throughput. But in a long
//! run of plain text (printable ASCII, CR and LF, with the parser in ground state) most
//! characters are scrolled out of view by the ones after them: once the cursor has reached the
//! bottom and `rows` more lines start below it, every row on view was scrolled in fresh after
//! that point, so the screen depends only on what follows it and on the cursor's column there.
//!
//! A [`Plan`] finds that point in a run. The screen is then cleared (the primary screen's rows
//! go to the history, in order), the cursor put where it was at that point, and only the tail
//! is emulated: the same cells, cursor and pen as emulating all of it. The skipped lines reach
//! the history as plain text (rendered by [`text_lines`] when a snapshot is taken, without
//! colours).
//!
//! It only applies when the modes that change how plain text moves the cursor are known to be
//! at their defaults: full-screen scroll margins, autowrap on, insert and newline modes off
//! ([`Layout`], kept from the parsed functions, and erring towards "not known").

use std::collections::VecDeque;

/// A run shorter than this is emulated as it is: planning would not pay.
pub(super) const MIN_BURST: usize = 16 * 1024;

/// Bytes of plain text `Screen` passes through the fast path untouched.
pub(super) fn is_plain(byte: u8) -> bool {
    matches!(byte, 0x20..=0x7e | b'\r' | b'\n')
}

/// How many bytes at the start of `bytes` are plain. Eight at a time while all eight are
/// printable ASCII (the bulk of a flood), then byte by byte.
pub(super) fn plain_prefix(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut at = 0;
    while let Some(word) = bytes.get(at..at + 8) {
        let x = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        // A byte below 0x20, or above 0x7e (0x7f + 1 reaches the high bit), sets its high bit
        // in one of these.
        let below = x.wrapping_sub(ONES * 0x20) & !x;
        let above = x.wrapping_add(ONES) | x;
        if (below | above) & HIGH != 0 {
            break;
        }
        at += 8;
    }
    at + bytes[at..]
        .iter()
        .position(|&b| !is_plain(b))
        .unwrap_or(bytes.len() - at)
}

/// The modes that decide how plain text moves the cursor, as far as they are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Layout {
    full_margins: bool,
    autowrap: bool,
    insert: bool,
    newline: bool,
    /// Which screen is active (each has its saved cursor, which carries autowrap).
    alternate: bool,
    /// Autowrap as saved with the cursor of each screen (primary, alternate); restoring the
    /// cursor restores it.
    saved_autowrap: [bool; 2],
}

impl Default for Layout {
    fn default() -> Layout {
        Layout {
            full_margins: true,
            autowrap: true,
            insert: false,
            newline: false,
            alternate: false,
            saved_autowrap: [true, true],
        }
    }
}

impl Layout {
    /// Whether a burst can skip its head.
    fn plain(&self) -> bool {
        self.full_margins && self.autowrap && !self.insert && !self.newline
    }

    /// Follows a function the emulator is about to run on a screen of `rows` rows. Mirrors
    /// avt's rules; where unsure, it marks the layout not plain (only costs speed).
    pub(super) fn follow(&mut self, function: &avt::parser::Function, rows: usize) {
        use avt::parser::{AnsiMode, DecMode, Function};
        match function {
            Function::Decstbm(top, bottom) => {
                let top = usize::from(*top).max(1) - 1;
                let bottom = if *bottom == 0 {
                    rows
                } else {
                    usize::from(*bottom)
                } - 1;
                if top < bottom && bottom < rows {
                    self.full_margins = top == 0 && bottom == rows - 1;
                }
            }
            Function::Sm(modes) | Function::Rm(modes) => {
                let on = matches!(function, Function::Sm(_));
                for mode in modes.as_slice() {
                    match mode {
                        AnsiMode::Insert => self.insert = on,
                        AnsiMode::NewLine => self.newline = on,
                    }
                }
            }
            Function::Decset(modes) | Function::Decrst(modes) => {
                let on = matches!(function, Function::Decset(_));
                for mode in modes.as_slice() {
                    match (mode, on) {
                        (DecMode::AutoWrap, _) => self.autowrap = on,
                        (DecMode::AltScreenBuffer, _) => self.alternate = on,
                        (DecMode::SaveCursor, true) => self.save(),
                        (DecMode::SaveCursor, false) => self.restore(),
                        (DecMode::SaveCursorAltScreenBuffer, true) => {
                            self.save();
                            self.alternate = true;
                        }
                        (DecMode::SaveCursorAltScreenBuffer, false) => {
                            self.alternate = false;
                            self.restore();
                        }
                        _ => {}
                    }
                }
            }
            Function::Decsc | Function::Scosc => self.save(),
            Function::Decrc | Function::Scorc => self.restore(),
            // A soft reset: full margins, insert off, the saved cursor back to its default
            // (avt's `soft_reset`).
            Function::Decstr => {
                self.full_margins = true;
                self.insert = false;
                self.saved_autowrap[usize::from(self.alternate)] = true;
            }
            Function::Ris => *self = Layout::default(),
            _ => {}
        }
    }

    fn save(&mut self) {
        self.saved_autowrap[usize::from(self.alternate)] = self.autowrap;
    }

    fn restore(&mut self) {
        self.autowrap = self.saved_autowrap[usize::from(self.alternate)];
    }

    /// avt resets the margins when the number of rows changes.
    pub(super) fn resized(&mut self, rows_changed: bool) {
        if rows_changed {
            self.full_margins = true;
        }
    }
}

/// Where a burst can be cut, and the cursor's column there (`cols` when a wrap is pending).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Plan {
    pub(super) cut: usize,
    pub(super) col: usize,
}

/// Plans a burst of plain bytes that starts with the cursor at `(col, row)` (`col == cols`:
/// a wrap is pending) on a screen of `cols` x `rows`. `None` when it cannot be cut: too short, modes not
/// known plain, or too few lines. Costs one pass of `memchr` over the run, not a step per
/// byte: between CRs and LFs, where the cursor wraps is arithmetic.
pub(super) fn plan(
    run: &[u8],
    layout: &Layout,
    (mut col, mut row): (usize, usize),
    cols: usize,
    rows: usize,
) -> Option<Plan> {
    if run.len() < MIN_BURST || !layout.plain() || cols == 0 || rows == 0 {
        return None;
    }
    // The cursor moves to a new line on LF and on a print with a wrap pending. Keep the last
    // `rows + 1` such moves: the cut is before the oldest, so `rows + 1` follow it.
    let keep = rows + 1;
    let bottom = rows - 1;
    let mut moves = Moves {
        last: VecDeque::with_capacity(keep + 1),
        keep,
        total: 0,
    };
    let mut start = 0;
    loop {
        let end = memchr::memchr2(b'\r', b'\n', &run[start..]).map_or(run.len(), |i| start + i);
        // Printable characters from `start` to `end`: the first fill the line; after that, one
        // in every `cols` finds a wrap pending and moves the cursor.
        let printable = end - start;
        let room = cols.saturating_sub(col);
        if printable <= room {
            col += printable;
        } else {
            let wrapping = printable - room;
            let wraps = wrapping.div_ceil(cols);
            let first = start + room;
            // Only the last `keep` wraps can matter.
            for k in wraps.saturating_sub(keep)..wraps {
                moves.push(Plan {
                    cut: first + k * cols,
                    col: cols,
                });
            }
            moves.total += wraps.saturating_sub(keep);
            col = wrapping - (wraps - 1) * cols;
            row = (row + wraps).min(bottom);
        }
        match run.get(end) {
            None => break,
            Some(b'\r') => col = 0,
            Some(_) => {
                moves.push(Plan { cut: end, col });
                // avt keeps the column past the last one (a wrap pending) when an LF scrolls
                // at the bottom, and clamps it to the last column when the cursor moves down.
                if row < bottom {
                    col = col.min(cols - 1);
                }
                row = (row + 1).min(bottom);
            }
        }
        start = end + 1;
    }
    // At least `rows` moves before the cut put the cursor on the bottom row there.
    if moves.total < keep + rows {
        return None;
    }
    moves.last.front().copied()
}

/// The last moves of the cursor to a new line, and how many there were.
struct Moves {
    last: VecDeque<Plan>,
    keep: usize,
    total: usize,
}

impl Moves {
    fn push(&mut self, at: Plan) {
        if self.last.len() == self.keep {
            self.last.pop_front();
        }
        self.last.push_back(at);
        self.total += 1;
    }
}

/// The functions that put a screen of `rows` x `cols` where the skipped head left it: the
/// cursor on the bottom row at `col` (past the last column: a wrap pending). What the rows on
/// view hold does not matter: all of them scroll out before the end of the burst.
pub(super) fn cursor_at(plan: Plan, cols: usize, rows: usize) -> Vec<avt::parser::Function> {
    use avt::parser::Function;
    let row = u16::try_from(rows).unwrap_or(u16::MAX);
    if plan.col >= cols {
        let last = u16::try_from(cols).unwrap_or(u16::MAX);
        vec![Function::Cup(row, last), Function::Print(' ')]
    } else {
        let col = u16::try_from(plan.col + 1).unwrap_or(u16::MAX);
        vec![Function::Cup(row, col)]
    }
}

/// The lines of plain text `head` (CR returns to the line's start and overwrites, LF ends a
/// line, a line wraps at `cols`), each ending in CR LF.
pub(super) fn text_lines(head: &[u8], cols: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line: Vec<u8> = Vec::with_capacity(cols);
    let mut col = 0;
    let finish = |line: &mut Vec<u8>, lines: &mut Vec<String>| {
        let mut text = String::from_utf8_lossy(line).trim_end().to_string();
        text.push_str("\r\n");
        lines.push(text);
        line.clear();
    };
    for &byte in head {
        match byte {
            b'\r' => col = 0,
            b'\n' => {
                finish(&mut line, &mut lines);
                col = 0;
            }
            _ => {
                if col >= cols {
                    finish(&mut line, &mut lines);
                    col = 0;
                }
                if col < line.len() {
                    line[col] = byte;
                } else {
                    line.push(byte);
                }
                col += 1;
            }
        }
    }
    if !line.is_empty() {
        finish(&mut line, &mut lines);
    }
    lines
}
