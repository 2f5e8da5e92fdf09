//! The sign-in loops of `cove-bench signin`: concurrent right-password sign-ins, each
//! from its own client address, and what they were answered.

use super::*;

/// Live counters of a load, updated by its loops.
#[derive(Default)]
pub(super) struct Tally {
    pub(super) ok: AtomicU64,
    pub(super) limited: AtomicU64,
    pub(super) busy: AtomicU64,
    pub(super) other: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) late: AtomicU64,
    pub(super) first_problem: Mutex<Option<String>>,
}

impl Tally {
    pub(super) fn answered(&self) -> u64 {
        self.snapshot().answered()
    }

    pub(super) fn snapshot(&self) -> Counts {
        Counts {
            ok: self.ok.load(Ordering::Relaxed),
            limited: self.limited.load(Ordering::Relaxed),
            busy: self.busy.load(Ordering::Relaxed),
            other: self.other.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            late: self.late.load(Ordering::Relaxed),
            first_problem: self.first_problem.lock().ok().and_then(|p| p.clone()),
        }
    }

    pub(super) fn problem(&self, what: String) {
        if let Ok(mut p) = self.first_problem.lock() {
            p.get_or_insert(what);
        }
    }
}

/// Concurrent sign-in loops on a thread and a runtime of their own.
pub(super) struct Load {
    pub(super) tally: Arc<Tally>,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) thread: std::thread::JoinHandle<Result<()>>,
}

impl Load {
    /// `loops` loops of `POST /login` with `body`, together at most `tickets` sign-ins; with
    /// `window`, answers after it are `late` and no sign-in starts after it. Without one, the
    /// loops run until [`Load::stop`].
    pub(super) fn start(
        port: u16,
        body: Arc<str>,
        loops: usize,
        tickets: u64,
        window: Option<Duration>,
    ) -> Result<Load> {
        let tally = Arc::new(Tally::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (t, s) = (tally.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("signin-load".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("tokio runtime")?;
                rt.block_on(async move {
                    let start = Instant::now();
                    let until = window.map(|w| start + w);
                    let shared = Arc::new(LoopShared {
                        port,
                        body,
                        tally: t,
                        stop: s,
                        issued: AtomicU64::new(0),
                        tickets,
                        until,
                    });
                    let mut set = tokio::task::JoinSet::new();
                    for i in 0..loops {
                        set.spawn(sign_in_loop(shared.clone(), client_address(i)));
                    }
                    // A loop ends within one request of its end or of the stop.
                    let bound = until.unwrap_or(start + SESSIONS_TIMEOUT) + REQUEST_TIMEOUT;
                    let all_done = async { while set.join_next().await.is_some() {} };
                    let done = tokio::time::timeout_at(bound.into(), all_done).await;
                    set.abort_all();
                    done.map_err(|_| anyhow!("the sign-in loops did not end by their deadline"))
                })
            })
            .context("start the sign-in thread")?;
        Ok(Load {
            tally,
            stop,
            thread,
        })
    }

    /// Stops the loops and waits for them (each ends after its request in flight).
    pub(super) async fn stop(self) -> Result<Counts> {
        self.stop.store(true, Ordering::Relaxed);
        self.wait().await
    }

    /// Waits for the loops to end by themselves (their window or their tickets are over).
    pub(super) async fn wait(self) -> Result<Counts> {
        let Load { tally, thread, .. } = self;
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(|e| anyhow!("the sign-in thread: {e}"))?
            .map_err(|_| anyhow!("the sign-in thread panicked"))??;
        Ok(tally.snapshot())
    }
}

/// The address loop `i` signs in from, as a reverse proxy on 127.0.0.1 names it
/// (`X-Forwarded-For`): each loop is another client.
pub(super) fn client_address(i: usize) -> String {
    format!("10.77.{}.{}", i / 250, 1 + i % 250)
}

/// What the loops of one load share.
pub(super) struct LoopShared {
    pub(super) port: u16,
    pub(super) body: Arc<str>,
    pub(super) tally: Arc<Tally>,
    pub(super) stop: Arc<AtomicBool>,
    /// Sign-ins started, against `tickets`.
    pub(super) issued: AtomicU64,
    pub(super) tickets: u64,
    pub(super) until: Option<Instant>,
}

pub(super) async fn sign_in_loop(shared: Arc<LoopShared>, address: String) {
    let LoopShared {
        port,
        body,
        tally,
        stop,
        issued,
        tickets,
        until,
    } = &*shared;
    let (port, tickets, until) = (*port, *tickets, *until);
    while !stop.load(Ordering::Relaxed)
        && until.is_none_or(|u| Instant::now() < u)
        && issued.fetch_add(1, Ordering::Relaxed) < tickets
    {
        let forwarded = [("X-Forwarded-For", address.as_str())];
        let answer = http_with(port, "POST", "/login", &forwarded, Some(body)).await;
        if until.is_some_and(|u| Instant::now() > u) {
            tally.late.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let counter = match &answer {
            Ok(r) if r.status == 200 => &tally.ok,
            Ok(r) => {
                tally.problem(format!("{}: {}", r.status, r.text().trim()));
                match r.status {
                    429 => &tally.limited,
                    503 => &tally.busy,
                    _ => &tally.other,
                }
            }
            Err(e) => {
                tally.problem(format!("{e:#}"));
                &tally.failed
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if answer.is_ok_and(|r| r.status == 429 || r.status == 503) {
            // As a client told to come back later: not a flood of refused requests.
            tokio::time::sleep(BACK_OFF).await;
        }
    }
}
