//! Bare PTY measurements: the physical limit of this machine, no server.
//!
//! A PTY pair is opened with rustix (`openpt`/`grantpt`/`unlockpt`/`ptsname`),
//! the child runs on the slave as a session leader with the slave as its
//! controlling terminal (`setsid` + `TIOCSCTTY` in `pre_exec`), and the bench
//! reads the master directly. The master is non-blocking: a read that would
//! block waits in `poll(2)` with the time left before the deadline, so no wait
//! is unbounded.

use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use memchr::memmem::Finder;
use rustix::event::{PollFd, PollFlags, poll};
use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl, open};
use rustix::io::Errno;
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{OptionalActions, Winsize, tcgetattr, tcsetattr, tcsetwinsize};

use crate::stats::Latency;
use crate::{RunStat, progress};

/// Terminal size used by every path (bare and cove) so that line editing
/// behaves the same everywhere.
pub(crate) const COLS: u16 = 200;
pub(crate) const ROWS: u16 = 50;

/// The string that ends a throughput run. The command types it as
/// `__BENCH""DONE__`, so the terminal's echo of the command line never
/// contains it; only the output of `echo` does.
pub(crate) const MARKER: &[u8] = b"__BENCHDONE__";

/// The shell every throughput run uses.
pub(crate) const SHELL_COMMAND: &str = "bash --norc --noprofile -i";

/// Size of the read buffer for the master.
const READ_BUF: usize = 64 * 1024;

/// Per-sample timeout of the echo test.
pub(crate) const ECHO_TIMEOUT: Duration = Duration::from_secs(5);

/// Echo warm-up rounds before samples are taken.
pub(crate) const ECHO_WARMUP: usize = 200;

/// The command line (without the trailing newline) that produces `bytes`
/// bytes of payload and then the marker.
pub(crate) fn throughput_command(bytes: u64) -> String {
    format!("head -c {bytes} /dev/zero | tr '\\0' a; echo __BENCH\"\"DONE__")
}

/// Finds [`MARKER`] in a stream that arrives in chunks, including a marker
/// split across two or more chunks: it keeps the last `marker.len() - 1`
/// bytes of what it has seen.
pub(crate) struct MarkerScanner {
    finder: Finder<'static>,
    len: usize,
    tail: Vec<u8>,
    found: bool,
}

impl MarkerScanner {
    pub(crate) fn new(marker: &[u8]) -> Self {
        assert!(!marker.is_empty(), "empty marker");
        Self {
            finder: Finder::new(marker).into_owned(),
            len: marker.len(),
            tail: Vec::with_capacity(marker.len() * 2),
            found: false,
        }
    }

    /// Feeds the next chunk. Returns true once the marker has been seen (and
    /// keeps returning true afterwards).
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> bool {
        if self.found || chunk.is_empty() {
            return self.found;
        }
        let keep = self.len - 1;
        if !self.tail.is_empty() {
            // A marker that straddles the boundary starts in the tail and
            // ends within the first `keep` bytes of the chunk.
            let mut joint = std::mem::take(&mut self.tail);
            let old = joint.len();
            joint.extend_from_slice(&chunk[..chunk.len().min(keep)]);
            if self.finder.find(&joint).is_some() {
                self.found = true;
                return true;
            }
            joint.truncate(old);
            self.tail = joint;
        }
        if self.finder.find(chunk).is_some() {
            self.found = true;
            return true;
        }
        if chunk.len() >= keep {
            self.tail.clear();
            self.tail.extend_from_slice(&chunk[chunk.len() - keep..]);
        } else {
            self.tail.extend_from_slice(chunk);
            let excess = self.tail.len().saturating_sub(keep);
            self.tail.drain(..excess);
        }
        false
    }
}

/// An open PTY pair.
pub(crate) struct Pty {
    master: OwnedFd,
    pub(crate) slave: OwnedFd,
}

impl Pty {
    pub(crate) fn open(cols: u16, rows: u16) -> Result<Self> {
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .context("openpt")?;
        grantpt(&master).context("grantpt")?;
        unlockpt(&master).context("unlockpt")?;
        let name = ptsname(&master, Vec::new()).context("ptsname")?;
        let slave = open(
            name.as_c_str(),
            OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .context("open pty slave")?;
        tcsetwinsize(
            &slave,
            Winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        )
        .context("TIOCSWINSZ")?;
        Ok(Self { master, slave })
    }

    /// Spawns `cmd` on the slave (stdin/stdout/stderr), as a session leader
    /// with the slave as controlling terminal; closes our copy of the slave
    /// and makes the master non-blocking.
    pub(crate) fn spawn(self, mut cmd: Command) -> Result<PtyChild> {
        cmd.stdin(Stdio::from(self.slave.try_clone()?))
            .stdout(Stdio::from(self.slave.try_clone()?))
            .stderr(Stdio::from(self.slave.try_clone()?));
        // SAFETY: the closure only makes async-signal-safe system calls
        // (setsid, ioctl) and does not allocate.
        unsafe {
            cmd.pre_exec(|| {
                rustix::process::setsid()?;
                rustix::process::ioctl_tiocsctty(rustix::stdio::stdin())?;
                Ok(())
            });
        }
        let child = cmd.spawn().context("spawn on pty")?;
        drop(cmd); // closes the slave copies held by the Command
        drop(self.slave);
        let flags = fcntl_getfl(&self.master)?;
        fcntl_setfl(&self.master, flags | OFlags::NONBLOCK)?;
        Ok(PtyChild {
            master: self.master,
            child,
        })
    }
}

/// A child process running on a PTY, with our end (the master).
pub(crate) struct PtyChild {
    pub(crate) master: OwnedFd,
    pub(crate) child: Child,
}

impl PtyChild {
    /// Waits until the master is readable or the deadline passes.
    /// Returns false on timeout.
    fn wait_readable(&self, deadline: Instant) -> Result<bool> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            let ts = rustix::event::Timespec {
                tv_sec: left.as_secs() as _,
                tv_nsec: left.subsec_nanos() as _,
            };
            let mut fds = [PollFd::new(&self.master, PollFlags::IN)];
            match poll(&mut fds, Some(&ts)) {
                Ok(0) => return Ok(false),
                Ok(_) => return Ok(true),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e).context("poll pty master"),
            }
        }
    }

    /// Reads what is available, waiting until the deadline for something.
    /// `Ok(None)` on timeout, `Ok(Some(0))` when the slave side is closed.
    fn read(&self, buf: &mut [u8], deadline: Instant) -> Result<Option<usize>> {
        loop {
            match rustix::io::read(&self.master, &mut *buf) {
                Ok(n) => return Ok(Some(n)),
                Err(Errno::AGAIN) => {
                    if !self.wait_readable(deadline)? {
                        return Ok(None);
                    }
                }
                Err(Errno::INTR) => continue,
                // Linux answers EIO once every slave fd is closed.
                Err(Errno::IO) => return Ok(Some(0)),
                Err(e) => return Err(e).context("read pty master"),
            }
        }
    }

    fn write_all(&self, mut data: &[u8], deadline: Instant) -> Result<()> {
        while !data.is_empty() {
            match rustix::io::write(&self.master, data) {
                Ok(n) => data = &data[n..],
                Err(Errno::AGAIN) => {
                    if Instant::now() >= deadline {
                        bail!("timed out writing to the pty");
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e).context("write pty master"),
            }
        }
        Ok(())
    }

    /// Reads until some output has arrived and then nothing for `quiet`
    /// (the shell has printed its prompt), at most until `max`.
    fn settle(&self, quiet: Duration, max: Duration) -> Result<()> {
        let end = Instant::now() + max;
        let mut buf = vec![0u8; READ_BUF];
        let mut seen = false;
        loop {
            let now = Instant::now();
            if now >= end {
                return Ok(());
            }
            let deadline = if seen { (now + quiet).min(end) } else { end };
            match self.read(&mut buf, deadline)? {
                None => return Ok(()),
                Some(0) => bail!("the pty child exited before it was ready"),
                Some(_) => seen = true,
            }
        }
    }

    /// Ends the child: `exit` for a shell if asked, then SIGKILL by pid if it
    /// is still there after `grace`. Always reaps it.
    fn finish(mut self, exit_line: Option<&[u8]>, grace: Duration) {
        if let Some(line) = exit_line {
            let _ = self.write_all(line, Instant::now() + Duration::from_millis(200));
        }
        let end = Instant::now() + grace;
        let mut buf = vec![0u8; READ_BUF];
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            // Drain output so that the child never blocks on a full pty.
            let step = (Instant::now() + Duration::from_millis(10)).min(end);
            if let Ok(Some(0)) | Err(_) = self.read(&mut buf, step) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = self.child.kill(); // SIGKILL to this child's pid
        let _ = self.child.wait();
    }
}

pub(crate) fn shell_command() -> Command {
    let mut cmd = Command::new("bash");
    cmd.args(["--norc", "--noprofile", "-i"])
        .env("PS1", "$ ")
        .env("TERM", "xterm-256color");
    cmd
}

/// One throughput run on a fresh `bash` on a fresh PTY.
pub(crate) fn throughput_run(bytes: u64, timeout: Duration) -> Result<RunStat> {
    let child = Pty::open(COLS, ROWS)?.spawn(shell_command())?;
    let result = (|| {
        child.settle(Duration::from_millis(200), Duration::from_secs(10))?;
        let mut line = throughput_command(bytes).into_bytes();
        line.push(b'\n');
        let mut buf = vec![0u8; READ_BUF];
        let mut scanner = MarkerScanner::new(MARKER);
        let mut received = 0u64;
        let mut chunks = 0u64;
        let start = Instant::now();
        let deadline = start + timeout;
        child.write_all(&line, deadline)?;
        loop {
            match child.read(&mut buf, deadline)? {
                None => bail!(
                    "timed out after {:.0} s ({received} bytes received, no marker)",
                    timeout.as_secs_f64()
                ),
                Some(0) => bail!("bash exited before the marker ({received} bytes)"),
                Some(n) => {
                    received += n as u64;
                    chunks += 1;
                    if scanner.feed(&buf[..n]) {
                        break;
                    }
                }
            }
        }
        Ok(RunStat {
            secs: start.elapsed().as_secs_f64(),
            received,
            chunks,
        })
    })();
    child.finish(Some(b"exit\n"), Duration::from_secs(3));
    result
}

/// Runs `runs` throughput runs, reporting progress.
pub(crate) fn throughput(bytes: u64, runs: usize, timeout: Duration) -> Result<Vec<RunStat>> {
    let mut out = Vec::with_capacity(runs);
    for i in 0..runs {
        let r = throughput_run(bytes, timeout).with_context(|| format!("run {}", i + 1))?;
        progress(&format!(
            "bare pty throughput run {}/{runs}: {:.3} s, {:.1} MB/s payload, {} reads",
            i + 1,
            r.secs,
            bytes as f64 / 1e6 / r.secs,
            r.chunks
        ));
        out.push(r);
    }
    Ok(out)
}

/// Echo latency: `cat` on a raw-mode slave; write one byte, wait for it.
pub(crate) fn echo(samples: usize) -> Result<Latency> {
    let pty = Pty::open(COLS, ROWS)?;
    let mut t = tcgetattr(&pty.slave).context("tcgetattr")?;
    t.make_raw();
    tcsetattr(&pty.slave, OptionalActions::Now, &t).context("tcsetattr raw")?;
    let child = pty.spawn(Command::new("cat"))?;
    let result = (|| {
        let mut buf = [0u8; 64];
        let mut times = Vec::with_capacity(samples);
        for i in 0..ECHO_WARMUP + samples {
            let byte = b'a' + (i % 26) as u8;
            let start = Instant::now();
            let deadline = start + ECHO_TIMEOUT;
            child.write_all(&[byte], deadline)?;
            loop {
                // poll first: a read right after the write would almost
                // always find nothing yet.
                if !child.wait_readable(deadline)? {
                    bail!("echo sample {i}: no answer within {ECHO_TIMEOUT:?}");
                }
                match child.read(&mut buf, deadline)? {
                    None => bail!("echo sample {i}: no answer within {ECHO_TIMEOUT:?}"),
                    Some(0) => bail!("cat exited"),
                    Some(n) if buf[..n].contains(&byte) => break,
                    Some(_) => {}
                }
            }
            if i >= ECHO_WARMUP {
                times.push(start.elapsed());
            }
        }
        Latency::from_durations(&times).ok_or_else(|| anyhow!("no samples"))
    })();
    child.finish(None, Duration::ZERO);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_split(data: &[u8], sizes: &[usize]) -> Option<usize> {
        // Returns the index of the chunk at which the marker was reported.
        let mut s = MarkerScanner::new(MARKER);
        let mut pos = 0;
        let mut i = 0;
        while pos < data.len() {
            let n = sizes[i % sizes.len()].min(data.len() - pos);
            if s.feed(&data[pos..pos + n]) {
                return Some(i);
            }
            pos += n;
            i += 1;
        }
        None
    }

    #[test]
    fn marker_in_one_chunk() {
        let mut s = MarkerScanner::new(MARKER);
        assert!(!s.feed(b"aaaa$ echo __BENCH\"\"DONE__\r\n"));
        assert!(s.feed(b"aaaa__BENCHDONE__\r\n$ "));
        assert!(s.feed(b"more"), "stays found");
    }

    #[test]
    fn marker_split_at_every_position() {
        let data = b"xxxxxxxx__BENCHDONE__\r\n$ ";
        for cut in 1..data.len() {
            let mut s = MarkerScanner::new(MARKER);
            let a = s.feed(&data[..cut]);
            let b = s.feed(&data[cut..]);
            let end = 8 + MARKER.len();
            assert_eq!(a, cut >= end, "cut {cut}");
            assert!(b, "cut {cut}");
        }
    }

    #[test]
    fn marker_split_into_tiny_chunks() {
        let mut data = vec![b'a'; 1000];
        data.extend_from_slice(MARKER);
        data.extend_from_slice(b"\r\n");
        for size in 1..=MARKER.len() + 2 {
            assert!(feed_split(&data, &[size]).is_some(), "chunk size {size}");
        }
        // Irregular chunk sizes, including empty chunks.
        assert!(feed_split(&data, &[3, 0, 1, 7, 2]).is_some());
    }

    #[test]
    fn no_false_positive() {
        let mut data = b"echo __BENCH\"\"DONE__\r\n".to_vec();
        data.extend_from_slice(b"__BENCHDONE_x"); // near-misses
        data.extend_from_slice(b"_BENCHDONE__");
        data.extend_from_slice(b"__BENCHDONE");
        data.extend_from_slice(&[b'a'; 100]);
        for size in 1..20 {
            assert_eq!(feed_split(&data, &[size]), None, "chunk size {size}");
        }
        // Marker pieces separated by other bytes do not count.
        let mut s = MarkerScanner::new(MARKER);
        assert!(!s.feed(b"__BENCH"));
        assert!(!s.feed(b"x"));
        assert!(!s.feed(b"DONE__"));
    }

    #[test]
    fn command_shape() {
        assert_eq!(
            throughput_command(5),
            "head -c 5 /dev/zero | tr '\\0' a; echo __BENCH\"\"DONE__"
        );
        assert!(
            !throughput_command(5)
                .as_bytes()
                .windows(MARKER.len())
                .any(|w| w == MARKER)
        );
    }
}
