//! Pseudo-terminals: open a PTY pair, start a program on its slave side, and read and write
//! the master side asynchronously.
//!
//! Owns: `openpty`, the child's session and controlling terminal, window size, non-blocking
//! master I/O on tokio.
//! Must not know: workspaces, the wire protocol, scrollback, who reads the output.

use rustix::fd::{AsFd, OwnedFd};
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{Winsize, tcsetwinsize};
use std::ffi::OsString;
use std::io;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// What went wrong opening a PTY or starting its program.
#[derive(Debug, thiserror::Error)]
pub enum PtyError {
    #[error("cannot open a pseudo-terminal: {0}")]
    Open(#[source] io::Error),
    #[error("cannot start {program:?}: {source}")]
    Spawn {
        program: OsString,
        #[source]
        source: io::Error,
    },
}

/// A terminal's size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub cols: u16,
    pub rows: u16,
}

impl Default for Size {
    fn default() -> Size {
        Size { cols: 80, rows: 24 }
    }
}

/// What to run on the slave side of a new PTY.
#[derive(Debug, Clone)]
pub struct Spawn {
    pub program: OsString,
    /// Arguments after the program name.
    pub args: Vec<OsString>,
    /// Overrides `argv[0]` (a leading `-` makes a shell a login shell).
    pub arg0: Option<OsString>,
    pub cwd: PathBuf,
    /// The complete environment: nothing of the caller's is inherited.
    pub env: Vec<(OsString, OsString)>,
    pub size: Size,
    /// A `cgroup.procs` file the program moves itself into before it executes.
    pub cgroup_procs: Option<std::ffi::CString>,
}

/// Moves the calling process into the cgroup whose `cgroup.procs` is `path` (writes `0`,
/// "this process"). Async-signal-safe: for use between fork and exec.
pub fn join_cgroup(path: &std::ffi::CStr) -> io::Result<()> {
    // SAFETY: open, write and close on a NUL-terminated path and a static buffer.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let written = libc::write(fd, b"0".as_ptr().cast(), 1);
        libc::close(fd);
        if written != 1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The master side of a PTY whose slave a child process holds as its controlling terminal.
#[derive(Debug)]
pub struct Master {
    fd: AsyncFd<OwnedFd>,
}

/// Opens a PTY and starts `spawn` on it, in a new session with the PTY as its controlling
/// terminal. The child's process group id equals its pid, so signalling `-pid` reaches every
/// process the shell started in the foreground.
pub fn spawn(spawn: &Spawn) -> Result<(Master, tokio::process::Child), PtyError> {
    let (master, slave) = open(spawn.size).map_err(PtyError::Open)?;
    let mut command = std::process::Command::new(&spawn.program);
    command
        .args(&spawn.args)
        .current_dir(&spawn.cwd)
        .env_clear()
        .envs(spawn.env.iter().map(|(k, v)| (k, v)));
    if let Some(arg0) = &spawn.arg0 {
        command.arg0(arg0);
    }
    let stdio = |fd: &OwnedFd| -> Result<std::process::Stdio, PtyError> {
        fd.try_clone()
            .map(std::process::Stdio::from)
            .map_err(PtyError::Open)
    };
    command
        .stdin(stdio(&slave)?)
        .stdout(stdio(&slave)?)
        .stderr(stdio(&slave)?);
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe system
    // calls (setsid, ioctl, prctl) on file descriptors the child already owns.
    let cgroup = spawn.cgroup_procs.clone();
    unsafe {
        command.pre_exec(move || {
            if let Some(path) = &cgroup {
                join_cgroup(path)?;
            }
            rustix::process::setsid()?;
            // stdin is the slave: make it the controlling terminal of the new session.
            rustix::process::ioctl_tiocsctty(rustix::stdio::stdin())?;
            // If whoever started us dies, hang up as a closed terminal would.
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::HUP))?;
            Ok(())
        });
    }
    let mut command = tokio::process::Command::from(command);
    command.kill_on_drop(false);
    let child = command.spawn().map_err(|source| PtyError::Spawn {
        program: spawn.program.clone(),
        source,
    })?;
    // The parent's copy of the slave must go, or reads of the master never see EOF/EIO
    // when the child exits.
    drop(slave);
    let master = Master::new(master).map_err(PtyError::Open)?;
    Ok((master, child))
}

fn open(size: Size) -> io::Result<(OwnedFd, OwnedFd)> {
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname(&master, Vec::new())?;
    let slave = rustix::fs::open(
        name.as_c_str(),
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    tcsetwinsize(&master, winsize(size))?;
    Ok((master, slave))
}

fn winsize(size: Size) -> Winsize {
    Winsize {
        ws_row: size.rows.max(1),
        ws_col: size.cols.max(1),
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

impl Master {
    fn new(fd: OwnedFd) -> io::Result<Master> {
        let flags = rustix::fs::fcntl_getfl(&fd)?;
        rustix::fs::fcntl_setfl(&fd, flags | rustix::fs::OFlags::NONBLOCK)?;
        // SAFETY: the OwnedFd is moved into the AsyncFd and stays open, referring to the same
        // open file description, until the AsyncFd is dropped.
        let fd =
            unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE | Interest::WRITABLE) }
                .map_err(|e| e.into_parts().1)?;
        Ok(Master { fd })
    }

    /// Reads what the program wrote. `Ok(0)` means the slave side is closed for good (the
    /// kernel reports that as EIO on Linux; it is mapped to end of file here).
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard
                .try_io(|fd| rustix::io::read(fd.get_ref(), &mut *buf).map_err(io::Error::from))
            {
                Ok(Ok(n)) => return Ok(n),
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }

    /// Reads without waiting: `Ok(None)` when nothing is buffered right now.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match rustix::io::read(self.fd.get_ref(), buf) {
            Ok(n) => Ok(Some(n)),
            Err(rustix::io::Errno::AGAIN) => Ok(None),
            Err(rustix::io::Errno::IO) => Ok(Some(0)),
            Err(rustix::io::Errno::INTR) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes all of `data` to the program's input, waiting while the PTY's buffer is full.
    pub async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|fd| rustix::io::write(fd.get_ref(), data).map_err(io::Error::from))
            {
                Ok(Ok(n)) => data = &data[n..],
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => {}
            }
        }
        Ok(())
    }

    /// The terminal's foreground process group (the program a person is using now: `vim`
    /// while vim runs, the shell otherwise).
    pub fn foreground_group(&self) -> io::Result<u32> {
        let pid = rustix::termios::tcgetpgrp(self.fd.get_ref().as_fd())?;
        Ok(pid.as_raw_nonzero().get() as u32)
    }

    /// Sets the window size; the kernel sends SIGWINCH to the foreground process group.
    pub fn resize(&self, size: Size) -> io::Result<()> {
        tcsetwinsize(self.fd.get_ref().as_fd(), winsize(size))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
