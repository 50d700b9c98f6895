//! Counters and a start-latency histogram, rendered in the Prometheus text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the start-latency buckets, in seconds.
const START_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// The engine's counters. Gauges (running containers) are computed when rendering.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Successful starts.
    pub starts: AtomicU64,
    /// Failed starts.
    pub start_failures: AtomicU64,
    /// Destroys.
    pub destroys: AtomicU64,
    /// App exits observed.
    pub exits: AtomicU64,
    /// Signals delivered.
    pub signals: AtomicU64,
    /// Execs run.
    pub execs: AtomicU64,
    /// Ingress connections opened (ports and HTTP proxy).
    pub port_connects: AtomicU64,
    /// Queued calls skipped because their caller had gone.
    pub skipped_calls: AtomicU64,
    /// Containers adopted after a restart.
    pub adopted: AtomicU64,
    /// Starts that reused the id's running sidecar.
    pub warm_starts: AtomicU64,
    /// Kept sidecars that failed their check at start and were replaced by a fresh one.
    pub warm_replaced: AtomicU64,
    /// Starts that claimed a sidecar from the warm pool.
    pub pooled_starts: AtomicU64,
    /// Sidecars made for the warm pool.
    pub pool_made: AtomicU64,
    start_buckets: [AtomicU64; START_BUCKETS.len()],
    start_count: AtomicU64,
    start_sum_micros: AtomicU64,
}

impl Metrics {
    /// Adds one to a counter.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records one start's duration.
    pub fn observe_start(&self, took: Duration) {
        let secs = took.as_secs_f64();
        for (bound, bucket) in START_BUCKETS.iter().zip(&self.start_buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.start_count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.start_sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Renders everything; `running` is the current number of running apps, and the warm
    /// pool's idle sidecars and target are gauges.
    pub fn render(&self, running: usize, (idle, target): (usize, usize)) -> String {
        let mut out = String::new();
        let counters: [(&str, &str, &AtomicU64); 13] = [
            ("wharf_starts_total", "Successful container starts.", &self.starts),
            ("wharf_start_failures_total", "Failed container starts.", &self.start_failures),
            ("wharf_destroys_total", "Container destroys.", &self.destroys),
            ("wharf_exits_total", "App exits observed.", &self.exits),
            ("wharf_signals_total", "Signals delivered.", &self.signals),
            ("wharf_execs_total", "Execs run.", &self.execs),
            ("wharf_port_connects_total", "Ingress connections opened.", &self.port_connects),
            (
                "wharf_skipped_calls_total",
                "Queued calls skipped after their caller gave up.",
                &self.skipped_calls,
            ),
            ("wharf_adopted_total", "Containers adopted after an engine restart.", &self.adopted),
            ("wharf_warm_starts_total", "Starts that reused a running sidecar.", &self.warm_starts),
            (
                "wharf_warm_sidecars_replaced_total",
                "Kept sidecars that failed their check at start and were replaced.",
                &self.warm_replaced,
            ),
            (
                "wharf_pooled_starts_total",
                "Starts that claimed a sidecar from the warm pool.",
                &self.pooled_starts,
            ),
            ("wharf_pool_made_total", "Sidecars made for the warm pool.", &self.pool_made),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP wharf_running_containers Running app containers.\n# TYPE wharf_running_containers gauge\nwharf_running_containers {running}"
        );
        let _ = writeln!(
            out,
            "# HELP wharf_pool_idle Ready sidecars in the warm pool.\n# TYPE wharf_pool_idle gauge\nwharf_pool_idle {idle}\n# HELP wharf_pool_target Ready sidecars the warm pool aims at.\n# TYPE wharf_pool_target gauge\nwharf_pool_target {target}"
        );
        self.render_start_histogram(&mut out);
        out
    }

    fn render_start_histogram(&self, out: &mut String) {
        let name = "wharf_start_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time from start call to running app.\n# TYPE {name} histogram"
        );
        for (bound, bucket) in START_BUCKETS.iter().zip(&self.start_buckets) {
            let _ =
                writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", bucket.load(Ordering::Relaxed));
        }
        let count = self.start_count.load(Ordering::Relaxed);
        let sum = self.start_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"+Inf\"}} {count}\n{name}_sum {sum}\n{name}_count {count}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauge_and_histogram() {
        let m = Metrics::default();
        Metrics::inc(&m.starts);
        m.observe_start(Duration::from_millis(300));
        let text = m.render(2, (1, 3));
        assert!(text.contains("wharf_starts_total 1\n"));
        assert!(text.contains("wharf_running_containers 2\n"));
        assert!(text.contains("\nwharf_pool_idle 1\n"));
        assert!(text.contains("\nwharf_pool_target 3\n"));
        assert!(text.contains("wharf_start_duration_seconds_bucket{le=\"0.25\"} 0\n"));
        assert!(text.contains("wharf_start_duration_seconds_bucket{le=\"0.5\"} 1\n"));
        assert!(text.contains("wharf_start_duration_seconds_count 1\n"));
    }
}
