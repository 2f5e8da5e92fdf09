use super::*;

/// What vim, a prompt with colour probes and a version probe leave in a terminal's log.
const REPLAYED: &[u8] = b"\x1b[?1049h\x1b[>c\x1b[6n\x1b]11;?\x07text\x1b[1;31mred\x1b[0m\x1b]10;?\x1b\\\x1b[?2004$p\x1b[>q\x1b[c\x1b[?1049l";

/// How xterm.js answers those queries, each as its own write.
const ANSWERS: &[&[u8]] = &[
    b"\x1b[>0;276;0c",
    b"\x1b[24;80R",
    b"\x1b]11;rgb:1f1f/2323/2828\x1b\\",
    b"\x1b]10;rgb:d4d4/d4d4/d4d4\x07",
    b"\x1b[?2004;2$y",
    b"\x1bP>|xterm.js(6.0.0)\x1b\\",
    b"\x1b[?1;2c",
];

fn scanned(chunks: &[&[u8]]) -> Counts {
    let mut scanner = QueryScanner::default();
    for chunk in chunks {
        scanner.feed(chunk);
    }
    scanner.counts()
}

#[test]
fn queries_are_counted_whatever_the_chunks() {
    let whole = scanned(&[REPLAYED]);
    assert_eq!(whole.total(), 7, "{whole:?}");
    // Split at every byte: the same count.
    for cut in 1..REPLAYED.len() {
        assert_eq!(
            scanned(&[&REPLAYED[..cut], &REPLAYED[cut..]]),
            whole,
            "cut at {cut}"
        );
    }
    // Output that only looks like it: colours, titles, bracketed paste, answers.
    let plain: &[u8] =
        b"\x1b[1;32mok\x1b[0m\x1b]0;title\x07\x1b[?2004h\x1b[24;80R\x1b[?1;2c\x1b]11;rgb:0/0/0\x07";
    assert_eq!(scanned(&[plain]).total(), 0);
}

#[test]
fn answers_to_replayed_queries_are_dropped_and_typing_kept() {
    let mut filter = AnswerFilter::default();
    filter.expect(scanned(&[REPLAYED]));
    for answer in ANSWERS {
        assert_eq!(
            filter.filter(answer).as_ref(),
            b"",
            "{:?}",
            String::from_utf8_lossy(answer)
        );
    }
    // Everything else passes: keys, arrows, a paste with colours in it.
    for typed in [
        &b"ls -la\r"[..],
        b"\x1b[A",
        b"\x1bOP",
        b"\x1b[200~x\x1b[201~",
        b"\x03",
    ] {
        assert_eq!(filter.filter(typed).as_ref(), typed);
    }
    // The budget is spent: a live query's answer (one more DA) now passes.
    assert_eq!(filter.filter(b"\x1b[?1;2c").as_ref(), b"\x1b[?1;2c");
}

#[test]
fn answers_mixed_with_typing_lose_only_the_answers() {
    let mut filter = AnswerFilter::default();
    filter.expect(scanned(&[b"\x1b[6n\x1b[c"]));
    assert_eq!(filter.filter(b"a\x1b[3;1Rb\x1b[?62;22cc").as_ref(), b"abc");
}

#[test]
fn without_a_replay_nothing_is_dropped() {
    let mut filter = AnswerFilter::default();
    for answer in ANSWERS {
        assert_eq!(filter.filter(answer).as_ref(), *answer);
    }
}
