//! Password hashing and checking with Argon2id, on a small pool of threads of its own.
//!
//! A hash costs tens of milliseconds of CPU and about 19 MiB of memory: done on the async
//! runtime's threads, a burst of sign-ins would stall every terminal. The pool has few
//! threads, runs them at a lower priority than the rest of the server, and takes a bounded
//! queue of work; when the queue is full a sign-in is told to try again (503) instead of
//! waiting without end.
//!
//! Checking a password of a user who does not exist costs the same as checking a real one
//! (against a hash made at start), so the time of an answer does not tell which usernames
//! exist.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::oneshot;

/// The shortest password accepted for a new or changed password.
pub(crate) const MIN_PASSWORD_CHARS: usize = 8;
/// The longest password taken at all (hashing cost grows with length).
pub(crate) const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub(crate) enum PasswordError {
    #[error("the server is busy checking passwords; try again in a moment")]
    Busy,
    #[error("password checking has stopped")]
    Stopped,
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

enum Job {
    Hash {
        password: String,
        reply: oneshot::Sender<Result<String, PasswordError>>,
    },
    Verify {
        password: String,
        /// `None`: no such user; checked against a decoy so that it takes as long.
        hash: Option<String>,
        reply: oneshot::Sender<bool>,
    },
}

/// See the module docs. Its threads end when it is dropped (the queue closes).
#[derive(Debug, Clone)]
pub(crate) struct Passwords {
    queue: SyncSender<Job>,
}

impl Passwords {
    /// `threads` workers (at least one) behind a queue of `queue` waiting jobs.
    pub(crate) fn new(threads: usize, queue: usize) -> Passwords {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Job>(queue.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..threads.max(1) {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("cove-passwords-{n}"))
                .spawn(move || work(&receiver))
                .expect("a thread for password hashing");
        }
        Passwords { queue: sender }
    }

    /// A pool sized for this machine: half its cores (at least one).
    pub(crate) fn for_this_host() -> Passwords {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Passwords::new((cores / 2).max(1), 64)
    }

    /// An Argon2id PHC string of `password`, with a fresh salt.
    pub(crate) async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Hash {
            password: password.to_string(),
            reply,
        })?;
        answer.await.map_err(|_| PasswordError::Stopped)?
    }

    /// Whether `password` matches `hash` (`None`: a user without one, checked all the same).
    pub(crate) async fn verify(
        &self,
        password: &str,
        hash: Option<&str>,
    ) -> Result<bool, PasswordError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Verify {
            password: password.to_string(),
            hash: hash.map(str::to_string),
            reply,
        })?;
        answer.await.map_err(|_| PasswordError::Stopped)
    }

    fn submit(&self, job: Job) -> Result<(), PasswordError> {
        self.queue.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => PasswordError::Busy,
            TrySendError::Disconnected(_) => PasswordError::Stopped,
        })
    }
}

/// Whether `hash` is a PHC string this server can check (Argon2 of any variant, as
/// code-server's `hashed-password` is).
pub(crate) fn is_checkable(hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| h.algorithm.as_str().starts_with("argon2"))
}

fn work(receiver: &Mutex<Receiver<Job>>) {
    lower_priority();
    loop {
        let job = {
            let Ok(receiver) = receiver.lock() else {
                return;
            };
            match receiver.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        match job {
            Job::Hash { password, reply } => {
                let hashed = Argon2::default()
                    .hash_password(password.as_bytes())
                    .map(|h| h.to_string())
                    .map_err(|e| PasswordError::Hash(e.to_string()));
                let _ = reply.send(hashed);
            }
            Job::Verify {
                password,
                hash,
                reply,
            } => {
                let matches = match &hash {
                    Some(hash) => check(&password, hash),
                    None => {
                        // As long as a real check, and never true.
                        let _ = check(&password, decoy());
                        false
                    }
                };
                let _ = reply.send(matches);
            }
        }
    }
}

fn check(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password, made once, for users that do not exist.
fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        Argon2::default()
            .hash_password(super::secrets::new_secret().as_bytes())
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// Hashing yields to everything else the server does (terminals first).
fn lower_priority() {
    // SAFETY: gettid and setpriority take plain integers; a failure only leaves the
    // thread at the normal priority.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_unknown_users_never_match() {
        let pool = Passwords::new(1, 4);
        let hash = pool.hash("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(is_checkable(&hash));
        assert!(pool.verify("correct horse", Some(&hash)).await.unwrap());
        assert!(!pool.verify("wrong horse", Some(&hash)).await.unwrap());
        assert!(!pool.verify("correct horse", None).await.unwrap());
        assert!(!pool.verify("x", Some("not a hash")).await.unwrap());
        assert!(!is_checkable("plain"));
        assert!(!is_checkable(
            "$2b$12$abcdefghijklmnopqrstuu5Yw0c2x0q9mB0uXo9f0V0v4u2Yx0W"
        ));
    }

    /// code-server's `hashed-password` is made with argon2 (the `argon2` npm package's
    /// default, Argon2i); such a string works here as it is.
    #[tokio::test]
    async fn argon2i_hashes_as_code_server_writes_them_verify() {
        let hash = Argon2::new(
            argon2::Algorithm::Argon2i,
            argon2::Version::V0x13,
            argon2::Params::new(4096, 3, 1, None).unwrap(),
        )
        .hash_password_with_salt(b"code-server", b"saltsaltsaltsalt")
        .unwrap()
        .to_string();
        assert!(hash.starts_with("$argon2i$v=19$m=4096,t=3,p=1$"), "{hash}");
        let pool = Passwords::new(1, 4);
        assert!(pool.verify("code-server", Some(&hash)).await.unwrap());
        assert!(!pool.verify("vs-code", Some(&hash)).await.unwrap());
    }

    #[tokio::test]
    async fn a_full_queue_says_busy_instead_of_waiting() {
        let pool = Passwords::new(1, 1);
        let jobs: Vec<_> = (0..8).map(|_| pool.verify("x", None)).collect();
        let results = futures_util::future::join_all(jobs).await;
        assert!(
            results
                .iter()
                .any(|r| matches!(r, Err(PasswordError::Busy))),
            "eight checks at once through a queue of one: some are refused"
        );
        assert!(results.iter().any(|r| matches!(r, Ok(false))));
    }
}
