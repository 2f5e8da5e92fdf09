//! The log of a sandboxed program on the host, capped and rotated.
//!
//! The program's stdout and stderr are a pipe; a thread of `sandbox-init` (host side) copies
//! what arrives into the log file. Whatever the workspace makes its runner print, the host
//! keeps at most two files of [`MAX_FILE_BYTES`] (`<log>` and `<log>.1`), and no line longer
//! than [`MAX_LINE_BYTES`]. The program itself never holds a descriptor of a host file, so
//! `/proc/<pid>/fd` inside the workspace shows a pipe, not where cove keeps its data.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Size at which the log is rotated.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Longest line kept; the rest of a longer one is dropped and the cut is marked.
pub const MAX_LINE_BYTES: usize = 4096;

const CUT: &[u8] = " …[cut]\n".as_bytes();

/// The log file being written: rotated when it passes the cap.
struct Sink {
    path: PathBuf,
    file: Option<std::fs::File>,
}

fn open(path: &Path) -> Option<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .ok()
}

impl Sink {
    fn write(&mut self, bytes: &[u8]) {
        let Some(file) = &mut self.file else { return };
        let _ = file.write_all(bytes);
        // Measured on the file, not counted: `sandbox-init` appends its own few lines too.
        if file.metadata().is_ok_and(|m| m.len() >= MAX_FILE_BYTES) {
            let mut rotated = self.path.clone().into_os_string();
            rotated.push(".1");
            let _ = std::fs::rename(&self.path, &rotated);
            self.file = open(&self.path);
        }
    }
}

/// Splits a byte stream into lines of at most [`MAX_LINE_BYTES`].
#[derive(Default)]
struct Lines {
    line: Vec<u8>,
    cut: bool,
}

impl Lines {
    /// Feeds `bytes`, handing each finished line (newline included) to `out`.
    fn feed(&mut self, bytes: &[u8], out: &mut impl FnMut(&[u8])) {
        for chunk in bytes.split_inclusive(|b| *b == b'\n') {
            let ends = chunk.last() == Some(&b'\n');
            let body = if ends {
                &chunk[..chunk.len() - 1]
            } else {
                chunk
            };
            let room = MAX_LINE_BYTES - self.line.len();
            if body.len() > room {
                self.line.extend_from_slice(&body[..room]);
                self.cut = true;
            } else if !self.cut {
                self.line.extend_from_slice(body);
            }
            if ends {
                self.finish(out);
            }
        }
    }

    fn finish(&mut self, out: &mut impl FnMut(&[u8])) {
        if self.cut {
            self.line.extend_from_slice(CUT);
        } else {
            self.line.push(b'\n');
        }
        out(&self.line);
        self.line.clear();
        self.cut = false;
    }
}

/// Starts copying `from` into the log at `path` until every writer has closed the pipe.
/// When the log cannot be opened the pipe is still drained, so writers never block or fail.
pub fn pump(path: PathBuf, from: OwnedFd) -> Option<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("log".into())
        .spawn(move || {
            let file = open(&path);
            if file.is_none() {
                eprintln!("cove sandbox: cannot open the log {}", path.display());
            }
            let mut sink = Sink { path, file };
            let mut lines = Lines::default();
            let mut pipe = std::fs::File::from(from);
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => lines.feed(&buf[..n], &mut |line| sink.write(line)),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            if !lines.line.is_empty() {
                lines.finish(&mut |line| sink.write(line));
            }
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_and_kept_whole_otherwise() {
        let mut lines = Lines::default();
        let mut seen: Vec<Vec<u8>> = Vec::new();
        let long = vec![b'x'; MAX_LINE_BYTES * 3];
        lines.feed(b"one\ntw", &mut |l| seen.push(l.to_vec()));
        lines.feed(b"o\n", &mut |l| seen.push(l.to_vec()));
        lines.feed(&long, &mut |l| seen.push(l.to_vec()));
        lines.feed(&long, &mut |l| seen.push(l.to_vec()));
        lines.feed(b"tail\nthree\n", &mut |l| seen.push(l.to_vec()));
        assert_eq!(seen[0], b"one\n");
        assert_eq!(seen[1], b"two\n");
        assert_eq!(seen[2].len(), MAX_LINE_BYTES + CUT.len());
        assert!(seen[2].ends_with(CUT));
        assert_eq!(seen[3], b"three\n");
        assert_eq!(seen.len(), 4);
    }

    #[test]
    fn a_flood_is_held_to_two_capped_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.log");
        let (read, write) = rustix::pipe::pipe().unwrap();
        let pump = pump(path.clone(), read).unwrap();
        let mut writer = std::fs::File::from(write);
        let line = format!("{}\n", "y".repeat(1000));
        for _ in 0..(3 * MAX_FILE_BYTES as usize / line.len()) {
            writer.write_all(line.as_bytes()).unwrap();
        }
        writer.write_all(&vec![b'z'; 100_000]).unwrap();
        drop(writer);
        pump.join().unwrap();
        let main = std::fs::metadata(&path).unwrap().len();
        let rotated = std::fs::metadata(dir.path().join("w.log.1")).unwrap().len();
        assert!(
            main <= MAX_FILE_BYTES + MAX_LINE_BYTES as u64 + 16,
            "{main}"
        );
        assert!(
            rotated <= MAX_FILE_BYTES + MAX_LINE_BYTES as u64 + 16,
            "{rotated}"
        );
        let mut text = std::fs::read(dir.path().join("w.log.1")).unwrap();
        text.extend(std::fs::read(&path).unwrap());
        assert!(text.ends_with(CUT), "the unfinished long line is kept, cut");
    }
}
