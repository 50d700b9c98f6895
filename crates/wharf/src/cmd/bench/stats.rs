//! Pure: latency samples merged over rounds, their percentiles, and ratios to direct.

use serde::Serialize;

/// Every latency sample of one path and mode, over all counted rounds.
#[derive(Debug, Clone, Default)]
pub(super) struct Samples {
    /// Latencies of successful requests, µs.
    pub(super) us: Vec<u32>,
    /// Failed requests.
    pub(super) errors: u32,
    /// The first failure, to show.
    pub(super) first_error: Option<String>,
}

/// Percentiles (nearest rank) of a path's latencies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub(super) struct Latency {
    /// Successful requests.
    pub(super) requests: usize,
    /// Median, µs.
    pub(super) p50_us: u32,
    /// 99th percentile, µs.
    pub(super) p99_us: u32,
    /// Mean, µs.
    pub(super) mean_us: f64,
}

/// A latency compared with the direct path's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(super) struct VersusDirect {
    /// p50 minus direct's p50, µs (negative when faster).
    pub(super) p50_overhead_us: i64,
    /// p50 / direct's p50.
    pub(super) p50_ratio: f64,
    /// p99 / direct's p99.
    pub(super) p99_ratio: f64,
}

/// Bulk transfers of one path, bytes per second per round.
#[derive(Debug, Clone, Default)]
pub(super) struct Rates {
    /// One rate per counted round.
    pub(super) per_round: Vec<f64>,
    /// The first failure, to show.
    pub(super) error: Option<String>,
}

/// The median, slowest and fastest of a path's bulk rounds, MiB/s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub(super) struct Throughput {
    /// Median, MiB/s.
    pub(super) median_mib_s: f64,
    /// Slowest round, MiB/s.
    pub(super) min_mib_s: f64,
    /// Fastest round, MiB/s.
    pub(super) max_mib_s: f64,
}

const MIB: f64 = 1024.0 * 1024.0;

// === impl Samples ===

impl Samples {
    /// Adds one run's samples and failures.
    pub(super) fn add(&mut self, us: &[u32], errors: u32, first_error: Option<String>) {
        self.us.extend_from_slice(us);
        self.errors += errors;
        if self.first_error.is_none() {
            self.first_error = first_error;
        }
    }

    /// Their percentiles.
    pub(super) fn latency(&self) -> Latency {
        let mut sorted = self.us.clone();
        sorted.sort_unstable();
        if sorted.is_empty() {
            return Latency::default();
        }
        let sum: u64 = sorted.iter().map(|&s| u64::from(s)).sum();
        Latency {
            requests: sorted.len(),
            p50_us: percentile(&sorted, 50.0),
            p99_us: percentile(&sorted, 99.0),
            mean_us: sum as f64 / sorted.len() as f64,
        }
    }
}

/// The nearest-rank percentile `p` (0–100] of `sorted`, which is not empty.
pub(super) fn percentile(sorted: &[u32], p: f64) -> u32 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

// === impl Latency ===

impl Latency {
    /// This latency against `direct`'s; `None` when either has no samples.
    pub(super) fn versus(&self, direct: &Latency) -> Option<VersusDirect> {
        if self.requests == 0 || direct.requests == 0 || direct.p50_us == 0 || direct.p99_us == 0 {
            return None;
        }
        Some(VersusDirect {
            p50_overhead_us: i64::from(self.p50_us) - i64::from(direct.p50_us),
            p50_ratio: f64::from(self.p50_us) / f64::from(direct.p50_us),
            p99_ratio: f64::from(self.p99_us) / f64::from(direct.p99_us),
        })
    }
}

// === impl Rates ===

impl Rates {
    /// Their median and extremes.
    pub(super) fn throughput(&self) -> Throughput {
        let mut sorted = self.per_round.clone();
        sorted.sort_by(f64::total_cmp);
        let (Some(&min), Some(&max)) = (sorted.first(), sorted.last()) else {
            return Throughput::default();
        };
        let mid = sorted.len() / 2;
        let median =
            if sorted.len() % 2 == 1 { sorted[mid] } else { (sorted[mid - 1] + sorted[mid]) / 2.0 };
        Throughput { median_mib_s: median / MIB, min_mib_s: min / MIB, max_mib_s: max / MIB }
    }
}

// === impl Throughput ===

impl Throughput {
    /// This median as a fraction of `direct`'s; `None` without data.
    pub(super) fn versus(&self, direct: &Throughput) -> Option<f64> {
        (self.median_mib_s > 0.0 && direct.median_mib_s > 0.0)
            .then(|| self.median_mib_s / direct.median_mib_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_percentiles_over_merged_rounds() {
        let mut samples = Samples::default();
        samples.add(&(51..=100).collect::<Vec<_>>(), 0, None);
        samples.add(&(1..=50).rev().collect::<Vec<_>>(), 2, Some("reset".to_owned()));
        samples.add(&[], 1, Some("later".to_owned()));
        let l = samples.latency();
        assert_eq!((l.requests, l.p50_us, l.p99_us), (100, 50, 99));
        assert!((l.mean_us - 50.5).abs() < 1e-9);
        assert_eq!((samples.errors, samples.first_error.as_deref()), (3, Some("reset")));
        assert_eq!(Samples::default().latency(), Latency::default());
    }

    #[test]
    fn versus_direct() {
        let direct = Latency { requests: 10, p50_us: 100, p99_us: 200, mean_us: 110.0 };
        let proxied = Latency { requests: 10, p50_us: 180, p99_us: 500, mean_us: 200.0 };
        let v = proxied.versus(&direct).unwrap();
        assert_eq!(v.p50_overhead_us, 80);
        assert!((v.p50_ratio - 1.8).abs() < 1e-9 && (v.p99_ratio - 2.5).abs() < 1e-9);
        assert_eq!(proxied.versus(&Latency::default()), None);
    }

    #[test]
    fn throughput_median_of_rounds() {
        let rates =
            |r: &[f64]| Rates { per_round: r.iter().map(|x| x * MIB).collect(), error: None };
        let t = rates(&[300.0, 100.0, 200.0]).throughput();
        assert_eq!((t.median_mib_s, t.min_mib_s, t.max_mib_s), (200.0, 100.0, 300.0));
        assert_eq!(rates(&[100.0, 200.0]).throughput().median_mib_s, 150.0);
        assert_eq!(rates(&[]).throughput(), Throughput::default());
        let half = rates(&[50.0]).throughput().versus(&rates(&[100.0]).throughput());
        assert_eq!(half, Some(0.5));
        assert_eq!(Throughput::default().versus(&rates(&[1.0]).throughput()), None);
    }
}
