//! Tests only: runs a check in a forked child, so that what it does to its own process (a
//! seccomp filter, a network namespace) stays there, and brings back what went wrong.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// Runs `check` in a forked child and returns its complaints, one per line (none when all
/// went well). The child has `timeout` to finish; after it, it is killed and that is a
/// complaint too.
pub(crate) fn run(timeout: Duration, check: impl FnOnce() -> Vec<String>) -> Vec<String> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid out-array for two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 just returned these two descriptors, owned by nothing else.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: glibc keeps malloc usable in a forked child; the check takes no other lock that
    // the test harness's threads (absent in the child) could hold, and leaves by _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        drop(read_end);
        let complaints = std::panic::catch_unwind(std::panic::AssertUnwindSafe(check))
            .unwrap_or_else(|e| {
                let message = (e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .or_else(|| e.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                vec![format!("the check panicked: {message}")]
            });
        let _ = std::fs::File::from(write_end).write_all(complaints.join("\n").as_bytes());
        // SAFETY: leave the forked test process without running the harness's code.
        unsafe { libc::_exit(0) };
    }
    drop(write_end);
    let mut complaints = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if rc == pid {
            break;
        }
        if Instant::now() >= deadline {
            // SAFETY: our own child, still unreaped, so the pid is still its.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            // SAFETY: as above.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            complaints.push(format!("the check did not finish within {timeout:?}"));
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        complaints.push(format!("the child ended with wait status {status:#x}"));
    }
    // The child is gone; a grandchild that still holds the write end must not block us.
    let mut file = std::fs::File::from(read_end);
    // SAFETY: F_SETFL on a descriptor we own.
    unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    let mut bytes = Vec::new();
    // Keeps what it read before any error (WouldBlock, there).
    let _ = file.read_to_end(&mut bytes);
    complaints.extend(String::from_utf8_lossy(&bytes).lines().map(str::to_string));
    complaints
}
