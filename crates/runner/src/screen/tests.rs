use super::*;

fn size(cols: u16, rows: u16) -> Size {
    Size { cols, rows }
}

/// The history's lines, as a snapshot writes them, without their line ends.
fn history(screen: &Screen) -> Vec<String> {
    let mut out = String::new();
    screen.history.render(&mut out);
    out.split_inclusive("\r\n")
        .map(|l| l.trim_end().to_string())
        .collect()
}

/// The cells of a screen on view: character and pen.
type Cells = Vec<Vec<(char, avt::Pen)>>;

/// Everything a person sees of a terminal: both screens cell by cell (character and pen),
/// which one is active, and the cursor.
fn seen(vt: &avt::Terminal) -> (Cells, Cells, String) {
    let cells = |screen: avt::Screen<'_>| {
        screen
            .visible_lines()
            .map(|l| l.cells().iter().map(|c| (c.char(), *c.pen())).collect())
            .collect()
    };
    (
        cells(vt.screen()),
        cells(vt.primary_screen()),
        format!("{:?} {:?}", vt.active_screen_kind(), vt.cursor()),
    )
}

/// Feeds `bytes` to a screen, then checks that its snapshot rebuilds the same thing on a
/// fresh emulator of the same size.
fn round_trip(size: Size, bytes: &[u8]) -> (Screen, String) {
    let mut screen = Screen::new(size);
    for chunk in bytes.chunks(7) {
        screen.feed(chunk);
    }
    let snapshot = screen.snapshot();
    let mut fresh = emulator(size);
    fresh.feed(snapshot.as_str());
    assert_eq!(
        seen(&fresh),
        seen(drawn(&mut screen)),
        "snapshot {snapshot:?}"
    );
    (screen, snapshot)
}

#[test]
fn a_snapshot_rebuilds_both_screens_the_cursor_and_colours() {
    // A coloured prompt, then a full-screen program on the alternate screen with a scroll
    // region, a saved cursor, a hidden cursor and a half-written escape sequence.
    let bytes =
        b"\x1b[1;32muser@box\x1b[0m:\x1b[34m~\x1b[0m$ ls\r\nfile \x1b[7minverse\x1b[0m\r\n$ \
        \x1b[?1049h\x1b[2J\x1b[H\x1b[2;20r\x1b[5;3HvimText\x1b[38;2;10;20;30mrgb\x1b[48;5;200mbg\
        \x1b7\x1b[10;10Hmoved\x1b[?25l\x1b[3";
    let (_, snapshot) = round_trip(size(40, 24), bytes);
    assert!(snapshot.contains("vimText"), "{snapshot:?}");
    // Back on the primary screen the prompt is still there.
    let (mut screen, _) = round_trip(size(40, 24), &[&bytes[..], b"1m\x1b[?1049lback"].concat());
    let text = drawn(&mut screen).screen().text().join("\n");
    assert!(
        text.contains("user@box:~$ ls") && text.contains("back"),
        "{text}"
    );
}

#[test]
fn lines_that_scrolled_off_go_first_into_the_clients_scrollback() {
    let mut bytes = Vec::new();
    for i in 1..=30 {
        bytes.extend_from_slice(format!("line-{i}\r\n").as_bytes());
    }
    bytes.extend_from_slice(b"\x1b[31mred\x1b[0m $ ");
    let (screen, snapshot) = round_trip(size(20, 5), &bytes);
    assert_eq!(history(&screen).len(), 26, "{:?}", screen.history);
    assert!(
        snapshot.starts_with("\x1b[0mline-1\r\nline-2\r\n"),
        "{snapshot:?}"
    );
    // On a client, the history ends up above the screen, and the screen is as it was.
    let mut client = avt::Terminal::with_scrollback(20, 5, None).unwrap();
    client.feed(snapshot.as_str());
    let all: Vec<String> = client
        .screen()
        .all_lines()
        .map(|l| l.text().trim_end().to_string())
        .collect();
    assert_eq!(all[0], "line-1");
    assert_eq!(all[25], "line-26");
    assert_eq!(
        &all[26..],
        ["line-27", "line-28", "line-29", "line-30", "red $"]
    );
}

#[test]
fn the_history_is_bounded_in_bytes() {
    let mut screen = Screen::new(size(80, 24));
    let line = format!("{}\r\n", "x".repeat(70));
    for _ in 0..5000 {
        screen.feed(line.as_bytes());
    }
    screen.catch_up();
    assert!(
        screen.history.bytes <= HISTORY_BYTES,
        "{}",
        screen.history.bytes
    );
    let lines = history(&screen).len();
    assert!(lines > 500, "{lines} lines, {} bytes", screen.history.bytes);
}

#[test]
fn modes_avt_does_not_keep_are_in_the_snapshot() {
    let mut screen = Screen::new(size(80, 24));
    screen.feed(b"\x1b[?1002;1006h\x1b[?2004h\x1b[?1004h\x1b=\x1b[5 q\x1b]2;vim \x01main.rs\x07");
    let snapshot = screen.snapshot();
    for expected in [
        "\x1b[?1002h",
        "\x1b[?1006h",
        "\x1b[?2004h",
        "\x1b[?1004h",
        "\x1b=",
        "\x1b[5 q",
        "\x1b]2;vim main.rs\x07",
    ] {
        assert!(snapshot.contains(expected), "{expected:?} in {snapshot:?}");
    }
    // Turned off again, or reset: gone.
    screen.feed(b"\x1b[?1002l\x1b[?2004l\x1b>");
    let snapshot = screen.snapshot();
    assert!(!snapshot.contains("\x1b[?1002h") && !snapshot.contains("\x1b[?2004h"));
    assert!(snapshot.contains("\x1b[?1006h"), "{snapshot:?}");
    screen.feed(b"\x1bc");
    let snapshot = screen.snapshot();
    assert!(!snapshot.contains("\x1b[?1006h") && !snapshot.contains("\x1b]2;"));
}

#[test]
fn a_huge_title_is_cut() {
    let mut screen = Screen::new(size(80, 24));
    screen.feed(format!("\x1b]0;{}\x07", "é".repeat(5000)).as_bytes());
    let snapshot = screen.snapshot();
    let title = snapshot
        .split("\x1b]2;")
        .nth(1)
        .unwrap()
        .split('\x07')
        .next();
    assert!(title.unwrap().len() <= 1024);
}

#[test]
fn a_sleeping_screen_wakes_as_it_was() {
    let bytes = b"\x1b[?1049h\x1b[3;4r\x1b[4;1Hin region\x1b[?7l\x1b(0lqk\x1b(B\x1b[?1h";
    let (mut screen, before) = round_trip(size(30, 10), bytes);
    assert!(screen.sleep(), "it was awake");
    assert!(screen.vt.is_none());
    assert!(!screen.sleep(), "already asleep");
    assert_eq!(screen.snapshot(), before);
    // And it goes on from where it was.
    screen.sleep();
    screen.feed(b"\x1b[5;1Hmore");
    let text = drawn(&mut screen).screen().text().join("\n");
    assert!(
        text.contains("in region") && text.contains("more"),
        "{text}"
    );
}

#[test]
fn a_resize_reflows_and_a_character_split_across_reads_survives() {
    let mut screen = Screen::new(size(10, 4));
    let bytes = "héllo wörld, a long line\r\n$ ".as_bytes();
    let split = bytes.iter().position(|&b| b >= 0x80).unwrap() + 1;
    screen.feed(&bytes[..split]);
    screen.feed(&bytes[split..]);
    screen.resize(size(30, 4));
    let text = drawn(&mut screen).screen().text().join("|");
    assert!(text.contains("héllo wörld, a long line"), "{text}");
    let snapshot = screen.snapshot();
    let mut fresh = emulator(size(30, 4));
    fresh.feed(snapshot.as_str());
    assert_eq!(seen(&fresh), seen(drawn(&mut screen)));
}

/// The emulator with everything fed so far drawn.
fn drawn(screen: &mut Screen) -> &avt::Terminal {
    screen.catch_up();
    screen.vt.as_ref().expect("awake")
}

/// The same bytes fed to avt as they are: what the fast path must match.
fn reference(size: Size, bytes: &[u8]) -> avt::Terminal {
    let mut vt = emulator(size);
    vt.feed(String::from_utf8_lossy(bytes).as_ref());
    vt
}

fn burst_matches(size: Size, before: &[u8], burst: &[u8], after: &[u8]) -> Screen {
    let all = [before, burst, after].concat();
    let mut screen = Screen::new(size);
    screen.feed(before);
    // In one piece and in odd pieces: plans are made per run of plain text.
    for chunk in burst.chunks(40_000) {
        screen.feed(chunk);
    }
    screen.feed(after);
    assert_eq!(
        seen(drawn(&mut screen)),
        seen(&reference(size, &all)),
        "before {:?}",
        String::from_utf8_lossy(before)
    );
    // And the snapshot still rebuilds it.
    let mut fresh = emulator(size);
    fresh.feed(screen.snapshot().as_str());
    assert_eq!(seen(&fresh), seen(drawn(&mut screen)));
    screen
}

#[test]
fn a_burst_of_plain_text_draws_what_emulating_all_of_it_draws() {
    let lines: String = (0..5000)
        .map(|i| format!("line {i} {}\r\n", "x".repeat(i % 97)))
        .collect();
    let one_long_line = "a".repeat(300_001);
    let progress: String = (0..20_000).map(|i| format!("\r{i:>8} done")).collect();
    let mixed = format!("{lines}{progress}\r\n{one_long_line}");
    for burst in [lines.as_str(), one_long_line.as_str(), mixed.as_str()] {
        for before in [
            &b""[..],
            b"$ cat big\r\n",
            // Coloured background: blank rows scrolled in take it.
            b"\x1b[44;1m",
            // A wrap pending when the burst starts.
            b"\x1b[24;80Hz",
            // The alternate screen, the cursor mid-screen.
            b"\x1b[?1049h\x1b[10;30Hpartial",
            // Modes the fast path must not ignore: it falls back to emulating everything.
            b"\x1b[3;20r",
            b"\x1b[4h",
            b"\x1b[?7l",
            b"\x1b[20h",
        ] {
            let fast = burst_matches(size(80, 24), before, burst.as_bytes(), b"\x1b[0m$ ");
            let small = burst_matches(size(37, 5), before, burst.as_bytes(), b"");
            // The modes set after the first five keep it on the slow path.
            let plain = [&b""[..], b"$ cat big\r\n", b"\x1b[44;1m", b"\x1b[24;80Hz"]
                .contains(&before)
                || before.starts_with(b"\x1b[?1049h");
            assert_eq!(
                fast.skipped > 0,
                plain,
                "{:?}",
                String::from_utf8_lossy(before)
            );
            // On 5 rows a region down to row 20 is refused, as avt refuses it.
            let refused = before == b"\x1b[3;20r";
            assert_eq!(small.skipped > 0, plain || refused);
        }
    }
}

#[test]
fn a_burst_keeps_its_last_lines_in_the_history() {
    let lines: String = (0..5000).map(|i| format!("line {i}\r\n")).collect();
    let screen = burst_matches(size(80, 24), b"$ prompt\r\n", lines.as_bytes(), b"");
    let history = history(&screen);
    let last = history.len() - 1;
    // The screen shows lines 4977 to 4999 and the empty last row; the history ends just
    // above them, in order, with no blank rows from the fast path.
    assert_eq!(history[last], "line 4976");
    assert_eq!(history[last - 1], "line 4975");
    assert!(history.iter().all(|l| !l.is_empty()), "{history:?}");
}

#[test]
fn a_burst_is_cut_only_where_the_rows_on_view_are_all_new() {
    // Bare LFs keep the column: a staircase that wraps, where the column at the cut matters.
    let staircase: String = (0..20_000).map(|i| format!("{}\n", i % 10)).collect();
    burst_matches(size(80, 24), b"", staircase.as_bytes(), b"");
    // Few new lines over a screen full of old text: rows the cursor only moves onto keep
    // their old cells, so the burst cannot be cut where the cursor was not yet at the bottom.
    let stale = format!("{}\x1b[H", format!("{}\r\n", "X".repeat(79)).repeat(23));
    // About 40 lines to a 40,000-byte piece: more than `rows + 1` but less than twice that.
    let line = format!("{}\r\n", "\rokok".repeat(200));
    for lines in [30, 45, 100] {
        burst_matches(
            size(80, 24),
            stale.as_bytes(),
            line.repeat(lines).as_bytes(),
            b"",
        );
    }
}

/// How fast a screen takes a flood of plain text and of coloured lines (not a check: run with
/// `cargo test --release -p cove-runner screen_speed -- --ignored --nocapture`).
#[test]
#[ignore]
fn screen_speed() {
    let flood = "a".repeat(200_000_000);
    let coloured: String = (0..400_000)
        .map(|i| format!("\x1b[01;34mdir{i}\x1b[0m  \x1b[32mfile{i}.rs\x1b[0m some text\r\n"))
        .collect();
    for (name, data) in [
        ("plain", flood.as_bytes()),
        ("coloured", coloured.as_bytes()),
    ] {
        let mut screen = Screen::new(size(80, 24));
        let start = std::time::Instant::now();
        for chunk in data.chunks(256 * 1024) {
            screen.feed(chunk);
        }
        let seconds = start.elapsed().as_secs_f64();
        eprintln!(
            "{name}: {:.0} MB/s, {} bytes skipped",
            data.len() as f64 / seconds / 1e6,
            screen.skipped
        );
    }
}

#[test]
fn the_plain_prefix_stops_at_the_first_byte_that_is_not_plain() {
    for (bytes, expected) in [
        (&b"hello world, a long run\r\nx"[..], 26),
        (b"0123456789abcdef\x1b[m", 16),
        (b"0123456\x7f", 7),
        (b"01234567\x1f", 8),
        ("0123456789é".as_bytes(), 10),
        (b"\t", 0),
        (b"", 0),
        (b"~~~~~~~~ !!!!!!!", 16),
    ] {
        assert_eq!(burst::plain_prefix(bytes), expected, "{bytes:?}");
        let slow = bytes
            .iter()
            .position(|&b| !is_plain(b))
            .unwrap_or(bytes.len());
        assert_eq!(slow, expected);
    }
    // Every byte value, at every position of a word.
    for byte in 0..=255u8 {
        for at in 0..16 {
            let mut bytes = vec![b'a'; 16];
            bytes[at] = byte;
            let expected = if is_plain(byte) { 16 } else { at };
            assert_eq!(burst::plain_prefix(&bytes), expected, "{byte:#x} at {at}");
        }
    }
}

/// What a fresh emulator shows after a snapshot and then `live`: the snapshot must leave the
/// parser where the live output expects it (a sequence that ended is not replayed).
fn after_snapshot(bytes: &[u8], live: &str) -> String {
    let mut screen = Screen::new(size(40, 5));
    screen.feed(bytes);
    let snapshot = screen.snapshot();
    let mut fresh = emulator(size(40, 5));
    fresh.feed(snapshot.as_str());
    fresh.feed(live);
    fresh.screen().text().join("|")
}

#[test]
fn a_snapshot_ends_outside_escape_sequences_that_ended() {
    // A coloured prompt, an OSC 133 mark, a finished CSI: the next live byte is text.
    for bytes in [
        &b"\x1b[01;32muser\x1b[00m$ "[..],
        b"\x1b]133;A\x07$ \x1b]133;B\x07",
        b"vim\x1b[12;5H",
    ] {
        let text = after_snapshot(bytes, "make");
        assert!(text.contains("make"), "{bytes:?}: {text:?}");
    }
    // A sequence cut in the middle is finished by the live bytes, as on the live terminal.
    let text = after_snapshot(b"ab\x1b[3", "1mred");
    assert!(text.contains("abred"), "{text:?}");
}

#[test]
fn a_burst_matches_where_avt_clamps_the_column_and_restores_autowrap() {
    // Bare LFs with a wrap pending above the bottom row: avt clamps the column there.
    let lines = format!("{}\n", "A".repeat(80)).repeat(300);
    burst_matches(size(80, 24), b"\x1b[H\x1b[2J", lines.as_bytes(), b"");
    burst_matches(size(80, 24), b"\x1b[10;1H", lines.as_bytes(), b"");
    // Autowrap saved off with the cursor, turned on, then restored with it: off again.
    let long = format!("{}\r\n", "w".repeat(200)).repeat(200);
    for before in [
        &b"\x1b[?7l\x1b7\x1b[?7h\x1b8"[..],
        b"\x1b[?7l\x1b[?1048h\x1b[?7h\x1b[?1048l",
        b"\x1b[?7l\x1b[?1049h\x1b[?7h\x1b[?1049l",
    ] {
        let screen = burst_matches(size(80, 24), before, long.as_bytes(), b"");
        assert_eq!(screen.skipped, 0, "autowrap is off: {before:?}");
    }
}

#[test]
fn clearing_the_scrollback_clears_the_history() {
    let mut screen = Screen::new(size(20, 5));
    let lines: String = (0..30).map(|i| format!("secret-{i}\r\n")).collect();
    screen.feed(lines.as_bytes());
    screen.catch_up();
    assert!(!history(&screen).is_empty());
    // `clear`: home, erase the screen (not kept as history, as xterm.js), erase the scrollback.
    screen.feed(b"\x1b[H\x1b[2J\x1b[3J$ ");
    screen.catch_up();
    assert!(history(&screen).is_empty(), "{:?}", history(&screen));
    assert!(!screen.snapshot().contains("secret"));
}

#[test]
fn turning_any_mouse_mode_off_turns_reporting_off() {
    let mut screen = Screen::new(size(20, 5));
    screen.feed(b"\x1b[?1003h\x1b[?1000l");
    assert!(!screen.snapshot().contains("\x1b[?100"));
}

#[test]
fn a_snapshot_of_a_sleeping_screen_lets_it_sleep() {
    let mut screen = Screen::new(size(20, 5));
    screen.feed(b"\x1b[1;31mhello\x1b[0m");
    let awake = screen.snapshot();
    assert!(screen.sleep());
    assert_eq!(screen.snapshot(), awake);
    assert!(screen.vt.is_none(), "still asleep");
    // An idle screen goes to sleep, a used one does not.
    let mut screen = Screen::new(size(20, 5));
    assert!(!screen.sleep_if_idle(Duration::from_secs(60)));
    assert!(screen.sleep_if_idle(Duration::ZERO));
}

#[test]
fn the_start_of_a_split_character_is_not_drawn_yet() {
    let mut screen = Screen::new(size(20, 5));
    let e = "é".as_bytes();
    screen.feed(&e[..1]);
    assert_eq!(screen.undrawn(), 1);
    screen.feed(&e[1..]);
    assert_eq!(screen.undrawn(), 0);
}

/// Memory of idle screens, awake and asleep (not a check: run with
/// `cargo test --release -p cove-runner screen_memory -- --ignored --nocapture`).
#[test]
#[ignore]
fn screen_memory() {
    fn rss_kib() -> usize {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        statm
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<usize>()
            .unwrap()
            * 4
    }
    let before = rss_kib();
    let mut screens: Vec<Screen> = (0..1000).map(|_| Screen::new(size(80, 24))).collect();
    for screen in &mut screens {
        screen.feed(b"\x1b[?2004h\x1b[01;32muser@host\x1b[00m:\x1b[01;34m~\x1b[00m$ ");
    }
    let awake = rss_kib();
    for screen in &mut screens {
        screen.sleep();
    }
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe { libc::malloc_trim(0) };
    let asleep = rss_kib();
    eprintln!(
        "per screen: awake {:.1} KiB, asleep {:.1} KiB",
        (awake - before) as f64 / 1000.0,
        (asleep - before) as f64 / 1000.0
    );
}
