//! Failed sign-ins counted per client address and per username: past the limit, a sign-in
//! from that address (or for that username) is answered 429 with `Retry-After` without its
//! password being checked. Only failures count, so a person who types their password right
//! is never slowed down, and an address that guesses cannot lock its owner out from another.
//!
//! An attempt takes a place before its password is checked ([`FailureLimit::reserve`]): the
//! failures so far and the attempts still being checked together stay within the limit, so
//! a burst of concurrent guesses cannot all pass while the first ones are still hashing. A
//! place becomes a failure only if the password was wrong ([`Reservation::failed`]); an
//! attempt turned away only because others are in flight is told to retry at once
//! ([`Refusal::Busy`]), not to wait out the window.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys tracked at most; beyond it, keys whose failures have all expired are dropped first.
const MAX_KEYS: usize = 10_000;

/// Failures of one kind of key within a sliding window.
#[derive(Debug)]
pub(crate) struct FailureLimit {
    limit: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
    /// Attempts being checked now, per key (always locked after `failures`).
    pending: Mutex<HashMap<String, usize>>,
}

/// Why [`FailureLimit::reserve`] turned an attempt away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The key used up its failures; the oldest expires after this long.
    Limited(Duration),
    /// Too many attempts of this key are being checked at this moment.
    Busy,
}

/// A place taken by [`FailureLimit::reserve`]. Dropped without [`Reservation::failed`], it
/// is given back without counting (a right password, or an attempt that ended early).
#[derive(Debug)]
pub(crate) struct Reservation<'a> {
    limit: &'a FailureLimit,
    key: String,
    failed: bool,
}

impl Reservation<'_> {
    /// The password was wrong: the place becomes a failure.
    pub(crate) fn failed(mut self) {
        self.failed = true;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut failures = self.limit.failures.lock().unwrap();
        {
            let mut pending = self.limit.pending.lock().unwrap();
            if let Some(n) = pending.get_mut(&self.key) {
                *n -= 1;
                if *n == 0 {
                    pending.remove(&self.key);
                }
            }
        }
        if self.failed {
            self.limit.record_locked(&mut failures, &self.key);
        }
    }
}

impl FailureLimit {
    /// At most `limit` failures per key in any `window`.
    pub(crate) fn new(limit: usize, window: Duration) -> FailureLimit {
        FailureLimit {
            limit: limit.max(1),
            window,
            failures: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait)` when `key` has used up its failures: how long until the oldest expires.
    fn check_locked(
        &self,
        failures: &mut HashMap<String, VecDeque<Instant>>,
        key: &str,
    ) -> Result<(), Duration> {
        let now = Instant::now();
        let Some(times) = failures.get_mut(key) else {
            return Ok(());
        };
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
        if times.len() < self.limit {
            return Ok(());
        }
        let oldest = *times.front().expect("full");
        Err(self.window.saturating_sub(now.duration_since(oldest)))
    }

    /// Takes a place for an attempt of `key` whose password is about to be checked.
    pub(crate) fn reserve(&self, key: &str) -> Result<Reservation<'_>, Refusal> {
        let mut failures = self.failures.lock().unwrap();
        self.check_locked(&mut failures, key)
            .map_err(Refusal::Limited)?;
        let used = failures.get(key).map_or(0, VecDeque::len);
        let mut pending = self.pending.lock().unwrap();
        let in_flight = pending.entry(key.to_string()).or_default();
        if used + *in_flight >= self.limit {
            if *in_flight == 0 {
                pending.remove(key);
            }
            return Err(Refusal::Busy);
        }
        *in_flight += 1;
        Ok(Reservation {
            limit: self,
            key: key.to_string(),
            failed: false,
        })
    }

    fn record_locked(&self, failures: &mut HashMap<String, VecDeque<Instant>>, key: &str) {
        let now = Instant::now();
        if failures.len() >= MAX_KEYS && !failures.contains_key(key) {
            let window = self.window;
            failures.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < window)
            });
            if failures.len() >= MAX_KEYS {
                // Still full of live keys (a flood of addresses): forget the oldest half
                // rather than grow without bound.
                let mut keys: Vec<(String, Instant)> = failures
                    .iter()
                    .filter_map(|(k, t)| t.back().map(|t| (k.clone(), *t)))
                    .collect();
                keys.sort_by_key(|(_, t)| *t);
                for (key, _) in keys.into_iter().take(MAX_KEYS / 2) {
                    failures.remove(&key);
                }
            }
        }
        let times = failures.entry(key.to_string()).or_default();
        times.push_back(now);
        while times.len() > self.limit {
            times.pop_front();
        }
    }
}

/// The limits sign-in uses.
#[derive(Debug)]
pub(crate) struct SignInLimits {
    pub(crate) per_address: FailureLimit,
    pub(crate) per_username: FailureLimit,
}

impl Default for SignInLimits {
    /// Five failures a minute per address; twenty in ten minutes per username, from anywhere.
    fn default() -> SignInLimits {
        SignInLimits {
            per_address: FailureLimit::new(5, Duration::from_secs(60)),
            per_username: FailureLimit::new(20, Duration::from_secs(600)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sixth_failure_waits_and_other_keys_do_not() {
        let limit = FailureLimit::new(5, Duration::from_secs(60));
        for _ in 0..5 {
            limit.reserve("10.0.0.1").unwrap().failed();
        }
        let Err(Refusal::Limited(wait)) = limit.reserve("10.0.0.1") else {
            panic!("the sixth is refused");
        };
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        assert!(limit.reserve("10.0.0.2").is_ok());
    }

    #[test]
    fn a_burst_gets_no_more_tries_than_the_limit_and_right_passwords_cost_nothing() {
        let limit = FailureLimit::new(5, Duration::from_secs(60));
        let held: Vec<_> = (0..64).filter_map(|_| limit.reserve("a").ok()).collect();
        assert_eq!(
            held.len(),
            5,
            "a burst gets as many tries as the limit, not more"
        );
        assert_eq!(
            limit.reserve("a").unwrap_err(),
            Refusal::Busy,
            "busy, not limited"
        );
        drop(held);
        for _ in 0..100 {
            drop(limit.reserve("a").unwrap());
        }
        assert!(
            limit.reserve("a").is_ok(),
            "right passwords are never counted"
        );
    }

    #[test]
    fn failures_expire_with_the_window() {
        let limit = FailureLimit::new(1, Duration::from_millis(30));
        limit.reserve("k").unwrap().failed();
        assert!(limit.reserve("k").is_err());
        std::thread::sleep(Duration::from_millis(40));
        assert!(limit.reserve("k").is_ok());
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_addresses() {
        let limit = FailureLimit::new(5, Duration::from_secs(60));
        for n in 0..(MAX_KEYS * 2) {
            if let Ok(place) = limit.reserve(&format!("key-{n}")) {
                place.failed();
            }
        }
        assert!(limit.failures.lock().unwrap().len() <= MAX_KEYS);
    }
}
