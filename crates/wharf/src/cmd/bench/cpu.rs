//! CPU time by component while a path runs: each container from its cgroup's CPU accounting,
//! the in-process engine and the bench's own client thread from `/proc/self`, and the whole
//! machine from `/proc/stat`.
//!
//! The engine's share is this process's threads minus the client thread: the orchestration that
//! is also in this process is idle while a path runs. Threads are read from
//! `/proc/self/task/*/schedstat` (ns on CPU), so a thread that ends during a run takes its time
//! with it; the engine's threads are long-lived tokio workers. `/proc/stat` counts in clock
//! ticks of 10 ms (USER_HZ is 100 on Linux), so the machine's busy time is only as good as the
//! run is long; cgroups count in ns or µs. Whatever is missing on a machine (another cgroup
//! layout, no schedstat) reads as `None`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Nanoseconds per clock tick of `/proc/*/stat` and `/proc/stat`.
const NS_PER_TICK: u64 = 10_000_000;

/// Where a container's CPU time is counted.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cgroup {
    /// cgroup v1: `cpuacct.usage`, ns.
    V1(PathBuf),
    /// cgroup v2: `cpu.stat`, `usage_usec`.
    V2(PathBuf),
}

/// Reads CPU time of the containers it was given, the engine, the client thread and the machine.
#[derive(Debug, Clone)]
pub(super) struct Meter {
    cgroups: BTreeMap<String, Option<Cgroup>>,
    client_tid: Option<u32>,
}

/// CPU time so far, ns.
#[derive(Debug, Clone, Default)]
pub(super) struct Reading {
    containers: BTreeMap<String, Option<u64>>,
    process: Option<u64>,
    client: Option<u64>,
    busy: Option<u64>,
}

/// CPU time spent between two readings, ns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Usage {
    /// By full container id.
    pub(super) containers: BTreeMap<String, Option<u64>>,
    /// This process but the client thread: the in-process daemon.
    pub(super) engine: Option<u64>,
    /// The bench's client thread (ingress load).
    pub(super) client: Option<u64>,
    /// Every core of the machine, busy (not idle, not waiting for I/O).
    pub(super) busy: Option<u64>,
}

// === impl Meter ===

impl Meter {
    /// A meter for the containers with these full ids, and the client thread `client_tid`.
    pub(super) fn new(container_ids: &[String], client_tid: Option<u32>) -> Meter {
        let cgroups = container_ids.iter().map(|id| (id.clone(), find_cgroup(id))).collect();
        Meter { cgroups, client_tid }
    }

    /// Whether every container's CPU time can be read.
    pub(super) fn reads_containers(&self) -> bool {
        self.cgroups.values().all(Option::is_some)
    }

    /// CPU time so far.
    pub(super) fn read(&self) -> Reading {
        let containers = self
            .cgroups
            .iter()
            .map(|(id, cgroup)| (id.clone(), cgroup.as_ref().and_then(read_cgroup)))
            .collect();
        let task = |tid: &str| {
            read(&Path::new("/proc/self/task").join(tid).join("schedstat"))
                .as_deref()
                .and_then(run_ns)
        };
        let tids = std::fs::read_dir("/proc/self/task").map(|dir| {
            dir.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect::<Vec<_>>()
        });
        Reading {
            containers,
            process: tids.ok().and_then(|tids| tids.iter().map(|t| task(t)).sum()),
            client: self.client_tid.and_then(|tid| task(&tid.to_string())),
            busy: read(Path::new("/proc/stat"))
                .as_deref()
                .and_then(busy_ticks)
                .map(|t| t * NS_PER_TICK),
        }
    }
}

/// How busy all cores are while the bench does nothing, %: what else runs on the machine.
pub(super) async fn background_busy_pct(meter: &Meter, over: std::time::Duration) -> Option<f64> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    let before = meter.read();
    tokio::time::sleep(over).await;
    let busy = meter.read().since(&before).busy?;
    Some(busy as f64 * 100.0 / (over.as_nanos() as f64 * cores))
}

// === impl Reading ===

impl Reading {
    /// What was spent from `before` to this reading.
    pub(super) fn since(&self, before: &Reading) -> Usage {
        let delta = |now: Option<u64>, then: Option<u64>| Some(now?.saturating_sub(then?));
        let containers = self
            .containers
            .iter()
            .map(|(id, now)| {
                (id.clone(), delta(*now, before.containers.get(id).copied().flatten()))
            })
            .collect();
        let process = delta(self.process, before.process);
        let client = delta(self.client, before.client);
        let engine = match (process, client) {
            (Some(p), Some(c)) => Some(p.saturating_sub(c)),
            (p, _) => p,
        };
        Usage { containers, engine, client, busy: delta(self.busy, before.busy) }
    }
}

// === impl Usage ===

impl Usage {
    /// Adds `other` to this usage; a part either lacks stays unknown.
    pub(super) fn add(&mut self, other: &Usage) {
        let sum = |a: Option<u64>, b: Option<u64>| Some(a? + b?);
        if self.containers.is_empty() && self.engine.is_none() && self.busy.is_none() {
            *self = other.clone();
            return;
        }
        for (id, value) in &mut self.containers {
            *value = sum(*value, other.containers.get(id).copied().flatten());
        }
        self.engine = sum(self.engine, other.engine);
        self.client = sum(self.client, other.client);
        self.busy = sum(self.busy, other.busy);
    }

    /// A container's share, ns.
    pub(super) fn container(&self, id: &str) -> Option<u64> {
        self.containers.get(id).copied().flatten()
    }
}

// === reading ===

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn find_cgroup(id: &str) -> Option<Cgroup> {
    let root = Path::new("/sys/fs/cgroup");
    let v1 = ["cpuacct", "cpu,cpuacct", "cpuacct,cpu"]
        .into_iter()
        .map(|c| Cgroup::V1(root.join(c).join("docker").join(id).join("cpuacct.usage")));
    let v2 = [
        root.join("system.slice").join(format!("docker-{id}.scope")),
        root.join("docker").join(id),
    ]
    .into_iter()
    .map(|dir| Cgroup::V2(dir.join("cpu.stat")));
    v1.chain(v2).find(|c| match c {
        Cgroup::V1(p) | Cgroup::V2(p) => p.exists(),
    })
}

fn read_cgroup(cgroup: &Cgroup) -> Option<u64> {
    match cgroup {
        Cgroup::V1(path) => read(path)?.trim().parse().ok(),
        Cgroup::V2(path) => cpu_stat_usage_us(&read(path)?).map(|us| us * 1000),
    }
}

/// Time on CPU, ns: the first field of a `/proc/<pid>/task/<tid>/schedstat`.
fn run_ns(schedstat: &str) -> Option<u64> {
    schedstat.split_whitespace().next()?.parse().ok()
}

/// Busy ticks of all cores from `/proc/stat`: user, nice, system, irq, softirq and steal.
fn busy_ticks(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).map_while(|f| f.parse().ok()).collect();
    let field = |i: usize| v.get(i).copied().unwrap_or(0);
    (v.len() >= 4).then(|| field(0) + field(1) + field(2) + field(5) + field(6) + field(7))
}

/// `usage_usec` of a cgroup v2 `cpu.stat`.
fn cpu_stat_usage_us(text: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix("usage_usec ")).and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_parsers() {
        assert_eq!(run_ns("7920456391 11203725959 168285\n"), Some(7_920_456_391));
        assert_eq!(run_ns("garbage"), None);
        let proc_stat = "cpu  100 5 50 1000 7 1 2 3 0 0\ncpu0 50 2 25 500 3 0 1 1 0 0\n";
        assert_eq!(busy_ticks(proc_stat), Some(100 + 5 + 50 + 1 + 2 + 3));
        assert_eq!(cpu_stat_usage_us("usage_usec 1234\nuser_usec 1000\n"), Some(1234));
    }

    #[test]
    fn usage_between_readings() {
        let reading = |c: Option<u64>, process: u64, client: u64, busy: u64| Reading {
            containers: BTreeMap::from([("a".to_owned(), c)]),
            process: Some(process),
            client: Some(client),
            busy: Some(busy),
        };
        let used = reading(Some(500), 900, 300, 2000).since(&reading(Some(100), 100, 100, 1000));
        assert_eq!(used.container("a"), Some(400));
        assert_eq!((used.engine, used.client, used.busy), (Some(600), Some(200), Some(1000)));
        let mut total = Usage::default();
        total.add(&used);
        total.add(&used);
        assert_eq!((total.container("a"), total.engine), (Some(800), Some(1200)));
        let unknown = reading(None, 900, 300, 2000).since(&reading(Some(100), 100, 100, 1000));
        total.add(&unknown);
        assert_eq!((total.container("a"), total.busy), (None, Some(3000)));
    }
}
