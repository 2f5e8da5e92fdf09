//! The terminal state avt does not keep, read from the same bytes with a `vte` parser: how
//! the program wants the mouse, pastes, focus changes and the keypad reported, the cursor's
//! style and the window title. A snapshot that left them out would redraw vim exactly and then
//! send its mouse clicks as escape garbage, or paste without brackets into a shell that
//! expects them.

use std::fmt::Write;

/// Longest title kept, in bytes: a program that sets a huge one does not grow the runner.
const MAX_TITLE: usize = 1024;

/// The input-side modes and the title, as the program last set them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Modes {
    /// Mouse reporting (DEC modes 9, 1000, 1001, 1002, 1003): the one set last.
    mouse: Option<u16>,
    /// Mouse encoding (1005, 1006, 1015, 1016).
    mouse_encoding: Option<u16>,
    /// Focus in/out events (1004).
    focus: bool,
    /// Bracketed paste (2004).
    bracketed_paste: bool,
    /// Application keypad (DECKPAM, `ESC =`).
    keypad: bool,
    /// DECSCUSR's style, when not the default.
    cursor_style: Option<u16>,
    /// The window title (OSC 0 or 2), without control characters.
    title: Option<String>,
}

impl Modes {
    /// Escape sequences that put a fresh terminal into these modes.
    pub(crate) fn render(&self, out: &mut String) {
        for mode in [self.mouse, self.mouse_encoding].into_iter().flatten() {
            let _ = write!(out, "\x1b[?{mode}h");
        }
        if self.focus {
            out.push_str("\x1b[?1004h");
        }
        if self.bracketed_paste {
            out.push_str("\x1b[?2004h");
        }
        if self.keypad {
            out.push_str("\x1b=");
        }
        if let Some(style) = self.cursor_style {
            let _ = write!(out, "\x1b[{style} q");
        }
        if let Some(title) = &self.title {
            let _ = write!(out, "\x1b]2;{title}\x07");
        }
    }

    fn dec_mode(&mut self, mode: u16, on: bool) {
        match mode {
            // As xterm.js: turning any reporting mode off turns reporting off.
            9 | 1000 | 1001 | 1002 | 1003 => self.mouse = on.then_some(mode),
            1005 | 1006 | 1015 | 1016 => {
                if on {
                    self.mouse_encoding = Some(mode);
                } else if self.mouse_encoding == Some(mode) {
                    self.mouse_encoding = None;
                }
            }
            1004 => self.focus = on,
            2004 => self.bracketed_paste = on,
            _ => {}
        }
    }
}

impl vte::Perform for Modes {
    fn csi_dispatch(
        &mut self,
        params: &vte::Params,
        intermediates: &[u8],
        ignore: bool,
        action: char,
    ) {
        if ignore {
            return;
        }
        match (intermediates, action) {
            (b"?", 'h' | 'l') => {
                for param in params.iter() {
                    self.dec_mode(param[0], action == 'h');
                }
            }
            (b" ", 'q') => {
                let style = params.iter().next().map_or(0, |p| p[0]);
                self.cursor_style = (style != 0).then_some(style);
            }
            // DECSTR, a soft reset: the keypad goes back to numeric.
            (b"!", 'p') => self.keypad = false,
            _ => {}
        }
    }

    fn esc_dispatch(&mut self, intermediates: &[u8], ignore: bool, byte: u8) {
        if ignore || !intermediates.is_empty() {
            return;
        }
        match byte {
            b'=' => self.keypad = true,
            b'>' => self.keypad = false,
            // RIS, a full reset.
            b'c' => *self = Modes::default(),
            _ => {}
        }
    }

    fn osc_dispatch(&mut self, params: &[&[u8]], _bell_terminated: bool) {
        let [kind, rest @ ..] = params else {
            return;
        };
        if !matches!(*kind, b"0" | b"2") {
            return;
        }
        let joined = rest.join(&b';');
        let title: String = String::from_utf8_lossy(&joined)
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        let mut end = title.len().min(MAX_TITLE);
        while !title.is_char_boundary(end) {
            end -= 1;
        }
        self.title = Some(title[..end].to_string()).filter(|t| !t.is_empty());
    }
}
