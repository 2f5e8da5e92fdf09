//! The headless terminal emulators cove could keep per terminal, on the same input: how many
//! MB/s each draws, single-threaded, fed in 64 KiB pieces as a PTY delivers them.
//!
//! - `avt` (asciinema's; what cove's runner uses, for its dump: see docs/ARCHITECTURE.md,
//!   "Screens"), fed every character;
//! - `vt100` (doy's; its `state_formatted` dump drops the alternate screen and the scroll
//!   region);
//! - `alacritty_terminal` (no dump at all);
//! - `vte` alone, the parser under vt100 and alacritty_terminal, with nothing drawn: the floor.
//!
//! Workloads: a flood of `a` (one endless line, as `head -c N /dev/zero | tr '\0' a`), lines
//! of `ls --color`-like output, and a full-screen program's redraws (cursor moves and colours
//! over a 80x24 screen, as vim or htop send them).

use std::io::Write as _;
use std::time::Instant;

#[derive(Debug, clap::Parser)]
struct Args {
    /// Megabytes of each workload.
    #[arg(long, default_value_t = 50)]
    megabytes: usize,
    /// Where to write the markdown (default: stdout).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

fn workloads(megabytes: usize) -> Vec<(&'static str, String)> {
    let size = megabytes * 1_000_000;
    let flood = "a".repeat(size);
    let mut coloured = String::with_capacity(size + 100);
    let mut i = 0;
    while coloured.len() < size {
        coloured.push_str(&format!(
            "\x1b[01;34mdir{i}\x1b[0m  \x1b[32mfile{i}.rs\x1b[0m  notes-{i}.txt\r\n"
        ));
        i += 1;
    }
    let mut redraws = String::with_capacity(size + 100);
    let mut frame = 0;
    while redraws.len() < size {
        for row in 1..=24 {
            redraws.push_str(&format!(
                "\x1b[{row};1H\x1b[38;5;{}m{:>4}\x1b[0m \x1b[1m{}\x1b[22m\x1b[K",
                (row + frame) % 256,
                row + frame,
                "x".repeat(60)
            ));
        }
        frame += 1;
    }
    vec![
        ("flood of `a`", flood),
        ("coloured lines", coloured),
        ("full-screen redraws", redraws),
    ]
}

fn timed(data: &str, mut feed: impl FnMut(&str)) -> f64 {
    let start = Instant::now();
    let mut rest = data;
    while !rest.is_empty() {
        let mut end = rest.len().min(64 * 1024);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        feed(&rest[..end]);
        rest = &rest[end..];
    }
    data.len() as f64 / start.elapsed().as_secs_f64() / 1e6
}

struct Nothing;
impl vte::Perform for Nothing {}

struct Size;
impl alacritty_terminal::grid::Dimensions for Size {
    fn total_lines(&self) -> usize {
        24
    }
    fn screen_lines(&self) -> usize {
        24
    }
    fn columns(&self) -> usize {
        80
    }
}

#[derive(Clone, Copy)]
struct NoEvents;
impl alacritty_terminal::event::EventListener for NoEvents {}

fn main() -> anyhow::Result<()> {
    let args: Args = clap::Parser::parse();
    let mut out = String::from(
        "| workload | avt MB/s | vt100 MB/s | alacritty_terminal MB/s | vte parse only MB/s |\n|---|---:|---:|---:|---:|\n",
    );
    for (name, data) in workloads(args.megabytes) {
        eprintln!("{name}: {} MB", data.len() / 1_000_000);
        let mut avt = avt::Terminal::new(80, 24)?;
        let avt_rate = timed(&data, |s| avt.feed(s));
        let mut vt100 = vt100::Parser::new(
            std::num::NonZero::new(24).expect("24"),
            std::num::NonZero::new(80).expect("80"),
            0,
        );
        let vt100_rate = timed(&data, |s| vt100.process(s.as_bytes()));
        let mut alacritty = alacritty_terminal::Term::new(
            alacritty_terminal::term::Config::default(),
            &Size,
            NoEvents,
        );
        let mut processor: alacritty_terminal::vte::ansi::Processor =
            alacritty_terminal::vte::ansi::Processor::new();
        let alacritty_rate = timed(&data, |s| processor.advance(&mut alacritty, s.as_bytes()));
        let mut parser = vte::Parser::new();
        let vte_rate = timed(&data, |s| parser.advance(&mut Nothing, s.as_bytes()));
        out.push_str(&format!(
            "| {name} | {avt_rate:.0} | {vt100_rate:.0} | {alacritty_rate:.0} | {vte_rate:.0} |\n"
        ));
    }
    match args.out {
        Some(path) => std::fs::write(&path, &out)?,
        None => std::io::stdout().write_all(out.as_bytes())?,
    }
    Ok(())
}
