//! Failed sign-ins counted per client address and per username: past the limit, a sign-in
//! from that address (or for that username) is answered 429 with `Retry-After` without its
//! password being checked. Only failures count, so a person who types their password right
//! is never slowed down, and an address that guesses cannot lock its owner out from another.
//!
//! An attempt takes its place before its password is checked ([`FailureLimit::reserve`]) and
//! gives it back when the password was right ([`FailureLimit::forgive`]): otherwise a burst of
//! concurrent guesses would all pass the check while the first ones were still hashing.

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
}

impl FailureLimit {
    /// At most `limit` failures per key in any `window`.
    pub(crate) fn new(limit: usize, window: Duration) -> FailureLimit {
        FailureLimit {
            limit: limit.max(1),
            window,
            failures: Mutex::new(HashMap::new()),
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

    /// Checks and counts an attempt as one failure in one step: `Err(wait)` (nothing counted)
    /// when `key` has used up its failures. [`FailureLimit::forgive`] undoes it.
    pub(crate) fn reserve(&self, key: &str) -> Result<(), Duration> {
        let mut failures = self.failures.lock().unwrap();
        self.check_locked(&mut failures, key)?;
        self.record_locked(&mut failures, key);
        Ok(())
    }

    /// Takes back the newest failure of `key` (an attempt that reserved one and succeeded).
    pub(crate) fn forgive(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap();
        if let Some(times) = failures.get_mut(key) {
            times.pop_back();
            if times.is_empty() {
                failures.remove(key);
            }
        }
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
            assert!(limit.reserve("10.0.0.1").is_ok());
        }
        let wait = limit.reserve("10.0.0.1").unwrap_err();
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        assert!(limit.reserve("10.0.0.2").is_ok());
    }

    #[test]
    fn a_burst_reserves_its_places_before_any_password_is_checked() {
        let limit = FailureLimit::new(5, Duration::from_secs(60));
        let admitted = (0..64).filter(|_| limit.reserve("a").is_ok()).count();
        assert_eq!(
            admitted, 5,
            "a burst gets as many tries as the limit, not more"
        );
        limit.forgive("a");
        assert!(
            limit.reserve("a").is_ok(),
            "a right password gives its place back"
        );
        assert!(limit.reserve("a").is_err());
    }

    #[test]
    fn failures_expire_with_the_window() {
        let limit = FailureLimit::new(1, Duration::from_millis(30));
        assert!(limit.reserve("k").is_ok());
        assert!(limit.reserve("k").is_err());
        std::thread::sleep(Duration::from_millis(40));
        assert!(limit.reserve("k").is_ok());
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_addresses() {
        let limit = FailureLimit::new(5, Duration::from_secs(60));
        for n in 0..(MAX_KEYS * 2) {
            let _ = limit.reserve(&format!("key-{n}"));
        }
        assert!(limit.failures.lock().unwrap().len() <= MAX_KEYS);
    }
}
