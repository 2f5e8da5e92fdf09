//! Small statistics helpers: percentiles (nearest rank) and medians.

use std::time::Duration;

/// Latency summary of a sample set, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub samples: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    /// Summarise samples; `None` when there are none.
    pub fn from_durations(samples: &[Duration]) -> Option<Self> {
        let mut us: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e6).collect();
        if us.is_empty() {
            return None;
        }
        us.sort_by(f64::total_cmp);
        Some(Self {
            samples: us.len(),
            p50: percentile_sorted(&us, 50.0)?,
            p90: percentile_sorted(&us, 90.0)?,
            p99: percentile_sorted(&us, 99.0)?,
            max: *us.last()?,
        })
    }
}

/// Nearest-rank percentile of an ascending slice: the smallest value such that
/// at least `p` percent of the samples are less than or equal to it.
/// `p` is clamped to [0, 100]; p = 0 gives the minimum.
pub(crate) fn percentile_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(0.0, 100.0);
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize; // 1-based
    let idx = rank.clamp(1, n) - 1;
    Some(sorted[idx])
}

/// Median (the lower middle for an even count, like nearest-rank p50).
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    percentile_sorted(&v, 50.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile_sorted(&v, 50.0), Some(50.0));
        assert_eq!(percentile_sorted(&v, 90.0), Some(90.0));
        assert_eq!(percentile_sorted(&v, 99.0), Some(99.0));
        assert_eq!(percentile_sorted(&v, 100.0), Some(100.0));
        assert_eq!(percentile_sorted(&v, 0.0), Some(1.0));
        assert_eq!(percentile_sorted(&v, 99.5), Some(100.0));
    }

    #[test]
    fn percentile_small_sets() {
        assert_eq!(percentile_sorted(&[], 50.0), None);
        assert_eq!(percentile_sorted(&[7.0], 0.0), Some(7.0));
        assert_eq!(percentile_sorted(&[7.0], 99.0), Some(7.0));
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile_sorted(&v, 50.0), Some(2.0));
        assert_eq!(percentile_sorted(&v, 51.0), Some(3.0));
        assert_eq!(percentile_sorted(&v, 99.0), Some(4.0));
        // Out-of-range p is clamped.
        assert_eq!(percentile_sorted(&v, 250.0), Some(4.0));
        assert_eq!(percentile_sorted(&v, -3.0), Some(1.0));
    }

    #[test]
    fn latency_summary_and_median() {
        let d: Vec<Duration> = (1..=1000).rev().map(Duration::from_micros).collect();
        let l = Latency::from_durations(&d).unwrap();
        assert_eq!(l.samples, 1000);
        assert!((l.p50 - 500.0).abs() < 1e-6);
        assert!((l.p90 - 900.0).abs() < 1e-6);
        assert!((l.p99 - 990.0).abs() < 1e-6);
        assert!((l.max - 1000.0).abs() < 1e-6);
        assert!(Latency::from_durations(&[]).is_none());
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[]), None);
    }
}
