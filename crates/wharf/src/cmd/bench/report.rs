//! What `wharf bench egress` prints: the machine, the settings, then latency, bulk throughput,
//! the CPU time of each component and the timed pieces, as tables or as one JSON document.

use std::time::Duration;

use serde::Serialize;
use wharf_engine::docker::DockerApi;

use super::cpu::Usage;
use super::pieces::Piece;
use super::stats::{Latency, Throughput, VersusDirect};
use super::{Mode, NEW_CONNECTION_SHARE, Path, Results, Roles, Settings};
use crate::output;

/// The aim for a sidecar path's p50 overhead over direct, µs.
const AIM_P50_OVERHEAD_US: i64 = 150;
/// The aim for a sidecar path's throughput, as a fraction of direct.
const AIM_THROUGHPUT_RATIO: f64 = 0.7;
const MIB: f64 = 1024.0 * 1024.0;

/// The machine and the command line.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Facts {
    command: String,
    cores: usize,
    cpu: String,
    kernel: String,
    docker: String,
    load_average: String,
    /// How busy all cores were before the rounds, with the bench idle, %.
    background_busy_pct: Option<f64>,
}

/// Everything `wharf bench egress` reports.
#[derive(Debug, Serialize)]
pub(super) struct Report {
    machine: Facts,
    requests: u32,
    requests_new_connection: u32,
    concurrency: u32,
    bulk_bytes: u64,
    rounds: u32,
    aim_p50_overhead_us: i64,
    aim_throughput_ratio: f64,
    latency: Vec<LatencyRow>,
    bulk: Vec<BulkRow>,
    pieces: Vec<Piece>,
}

#[derive(Debug, Serialize)]
struct LatencyRow {
    path: &'static str,
    mode: &'static str,
    #[serde(skip)]
    label: &'static str,
    #[serde(flatten)]
    latency: Latency,
    versus_direct: Option<VersusDirect>,
    errors: u32,
    first_error: Option<String>,
    /// CPU µs per successful request.
    cpu_us_per_request: Cpu,
}

#[derive(Debug, Serialize)]
struct BulkRow {
    path: &'static str,
    #[serde(skip)]
    label: &'static str,
    #[serde(flatten)]
    throughput: Throughput,
    ratio_to_direct: Option<f64>,
    error: Option<String>,
    /// CPU µs per MiB received.
    cpu_us_per_mib: Cpu,
    /// The throughput the path's own CPU cost allows on all cores: cores / total CPU per MiB.
    cpu_ceiling_mib_s: Option<f64>,
}

/// CPU time by component, per unit of work; `None` where unknown or not on the path.
///
/// A component's time includes the kernel's work in its context: its system calls, and (this
/// kernel has no IRQ time accounting) the network softirqs that ran while it was on CPU.
#[derive(Debug, Clone, Copy, Default, Serialize)]
struct Cpu {
    client: Option<f64>,
    sidecar: Option<f64>,
    engine: Option<f64>,
    server: Option<f64>,
    /// The sum of the parts above: the path's own CPU cost.
    total: Option<f64>,
    /// How busy all cores were while the path ran, %, whoever used them (other tenants
    /// included): compare with the machine's background load.
    machine_busy_pct: Option<f64>,
}

// === impl Facts ===

impl Facts {
    /// Reads the machine's facts.
    pub(super) async fn gather(docker: &dyn DockerApi) -> Facts {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .and_then(|r| r.split_once(':'))
                    .map(|(_, m)| m.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let docker = match docker.version().await {
            Ok(v) => format!("{} (API {})", v.version, v.api_version),
            Err(e) => format!("unknown: {e}"),
        };
        Facts {
            command: std::env::args().collect::<Vec<_>>().join(" "),
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            cpu,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            docker,
            load_average: read("/proc/loadavg")
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
            background_busy_pct: None,
        }
    }
}

// === impl Report ===

impl Report {
    /// The report of `results`.
    pub(super) fn new(mut machine: Facts, settings: Settings, results: &Results) -> Report {
        machine.background_busy_pct = results.background_busy_pct;
        let cores = machine.cores.max(1);
        let mut latency = Vec::new();
        for mode in Mode::ALL {
            for path in Path::ALL {
                let Some(g) = results.latency.get(&(path, mode)) else { continue };
                let l = g.samples.latency();
                let direct =
                    results.latency.get(&(path.baseline(), mode)).map(|d| d.samples.latency());
                let versus =
                    (path != path.baseline()).then(|| direct.and_then(|d| l.versus(&d))).flatten();
                latency.push(LatencyRow {
                    path: path.key(),
                    mode: mode.key(),
                    label: path.label(),
                    latency: l,
                    versus_direct: versus,
                    errors: g.samples.errors,
                    first_error: g.samples.first_error.clone(),
                    cpu_us_per_request: Cpu::of(
                        &g.usage,
                        results.roles.get(&path),
                        l.requests as f64,
                        g.wall,
                        cores,
                    ),
                });
            }
        }
        let bulk = Path::ALL
            .into_iter()
            .filter_map(|path| {
                let g = results.bulk.get(&path)?;
                let t = g.rates.throughput();
                let direct = results.bulk.get(&path.baseline()).map(|d| d.rates.throughput());
                let ratio =
                    (path != path.baseline()).then(|| direct.and_then(|d| t.versus(&d))).flatten();
                let cpu = Cpu::of(
                    &g.usage,
                    results.roles.get(&path),
                    g.bytes as f64 / MIB,
                    g.wall,
                    cores,
                );
                Some(BulkRow {
                    path: path.key(),
                    label: path.label(),
                    throughput: t,
                    ratio_to_direct: ratio,
                    error: g.rates.error.clone(),
                    cpu_us_per_mib: cpu,
                    cpu_ceiling_mib_s: cpu
                        .total
                        .filter(|t| *t > 0.0)
                        .map(|t| cores as f64 * 1e6 / t),
                })
            })
            .collect();
        Report {
            machine,
            requests: settings.requests,
            requests_new_connection: settings
                .requests
                .div_ceil(settings.rounds)
                .div_ceil(NEW_CONNECTION_SHARE)
                * settings.rounds,
            concurrency: settings.concurrency,
            bulk_bytes: settings.bulk_bytes,
            rounds: settings.rounds,
            aim_p50_overhead_us: AIM_P50_OVERHEAD_US,
            aim_throughput_ratio: AIM_THROUGHPUT_RATIO,
            latency,
            bulk,
            pieces: results.pieces.clone(),
        }
    }

    /// Prints the tables.
    pub(super) fn print(&self) {
        let m = &self.machine;
        output::line(&format!("command: {}", m.command));
        let background =
            m.background_busy_pct.map_or_else(|| "unknown".to_owned(), |p| format!("{p:.0}%"));
        output::line(&format!(
            "machine: {} cores ({}), Linux {}, Docker {}; load average {} at start, {background} busy \
             with the bench idle",
            m.cores, m.cpu, m.kernel, m.docker, m.load_average
        ));
        output::line(&format!(
            "{} requests per path kept alive, {} with a new connection each, over {} rounds; \
             concurrency {}; bulk {} MiB per transfer; \
             aims: p50 overhead <= {} us, throughput >= {:.0}% of direct",
            self.requests,
            self.requests_new_connection,
            self.rounds,
            self.concurrency,
            self.bulk_bytes as f64 / MIB,
            AIM_P50_OVERHEAD_US,
            AIM_THROUGHPUT_RATIO * 100.0
        ));
        for mode in Mode::ALL {
            output::line("");
            output::line(match mode {
                Mode::KeepAlive => {
                    "latency, one kept-alive connection per worker (GET /, 12-byte answer)"
                }
                Mode::NewConnection => "latency, a new connection for every request",
            });
            output::line(&format!(
                "  {:<40} {:>8} {:>8} {:>8} {:>9} {:>7} {:>7}  {}",
                "path", "p50 us", "p99 us", "mean us", "+p50 us", "p50 x", "p99 x", "aim"
            ));
            for row in self.latency.iter().filter(|r| r.mode == mode.key()) {
                let l = &row.latency;
                let (over, p50x, p99x, aim) = match &row.versus_direct {
                    Some(v) => (
                        format!("{:+}", v.p50_overhead_us),
                        format!("{:.2}", v.p50_ratio),
                        format!("{:.2}", v.p99_ratio),
                        if v.p50_overhead_us <= AIM_P50_OVERHEAD_US { "met" } else { "missed" },
                    ),
                    None => (String::new(), String::new(), String::new(), ""),
                };
                output::line(&format!(
                    "  {:<40} {:>8} {:>8} {:>8.0} {:>9} {:>7} {:>7}  {}{}",
                    row.label,
                    l.p50_us,
                    l.p99_us,
                    l.mean_us,
                    over,
                    p50x,
                    p99x,
                    aim,
                    errors(row.errors, row.first_error.as_deref())
                ));
            }
        }
        output::line("");
        output::line("bulk throughput, one connection (median of the rounds)");
        output::line(&format!(
            "  {:<40} {:>8} {:>8} {:>8} {:>8}  {}",
            "path", "MiB/s", "min", "max", "x direct", "aim"
        ));
        for row in &self.bulk {
            let t = &row.throughput;
            let (ratio, aim) = match row.ratio_to_direct {
                Some(r) => {
                    (format!("{r:.2}"), if r >= AIM_THROUGHPUT_RATIO { "met" } else { "missed" })
                }
                None => (String::new(), ""),
            };
            output::line(&format!(
                "  {:<40} {:>8.0} {:>8.0} {:>8.0} {:>8}  {}{}",
                row.label,
                t.median_mib_s,
                t.min_mib_s,
                t.max_mib_s,
                ratio,
                aim,
                errors(0, row.error.as_deref())
            ));
        }
        let header = format!(
            "  {:<40} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "path", "client", "sidecar", "engine", "server", "total", "busy %"
        );
        for mode in Mode::ALL {
            output::line("");
            output::line(&format!(
                "CPU time per request, us ({})",
                if mode.keepalive() { "kept-alive" } else { "new connection each" }
            ));
            output::line(&header);
            for row in self.latency.iter().filter(|r| r.mode == mode.key()) {
                output::line(&cpu_line(row.label, &row.cpu_us_per_request));
            }
        }
        output::line("");
        output::line(
            "CPU time per MiB of bulk, us; the ceiling is the MiB/s that this cost allows on all cores",
        );
        output::line(&format!("{header} {:>8}", "ceiling"));
        for row in &self.bulk {
            let ceiling =
                row.cpu_ceiling_mib_s.map_or_else(|| "-".to_owned(), |c| format!("{c:.0}"));
            output::line(&format!("{} {ceiling:>8}", cpu_line(row.label, &row.cpu_us_per_mib)));
        }
        output::line("");
        output::line("pieces, timed alone from the host (a new connection each)");
        output::line(&format!("  {:<92} {:>8} {:>8}", "piece", "p50 us", "p99 us"));
        for p in &self.pieces {
            output::line(&format!(
                "  {:<92} {:>8} {:>8}{}",
                p.name,
                p.latency.p50_us,
                p.latency.p99_us,
                errors(p.errors, p.first_error.as_deref())
            ));
        }
    }
}

fn errors(n: u32, first: Option<&str>) -> String {
    match (n, first) {
        (0, None) => String::new(),
        (0, Some(e)) => format!("  error: {e}"),
        (n, first) => format!("  {n} errors, first: {}", first.unwrap_or("?")),
    }
}

fn cpu_line(label: &str, cpu: &Cpu) -> String {
    let cell = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"));
    format!(
        "  {:<40} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        label,
        cell(cpu.client),
        cell(cpu.sidecar),
        cell(cpu.engine),
        cell(cpu.server),
        cell(cpu.total),
        cell(cpu.machine_busy_pct)
    )
}

// === impl Cpu ===

impl Cpu {
    /// `usage` split by `roles`, per `units` of work, over `wall` on `cores` cores.
    fn of(usage: &Usage, roles: Option<&Roles>, units: f64, wall: Duration, cores: usize) -> Cpu {
        let Some(roles) = roles else { return Cpu::default() };
        if units <= 0.0 {
            return Cpu::default();
        }
        let client = match &roles.client {
            Some(id) => usage.container(id),
            None => usage.client,
        };
        let sidecar = roles.sidecar.as_deref().and_then(|id| usage.container(id));
        let engine = if roles.engine { usage.engine } else { None };
        let server = usage.container(&roles.server);
        let parts = [
            Some(client),
            roles.sidecar.as_ref().map(|_| sidecar),
            roles.engine.then_some(engine),
            Some(server),
        ];
        // Unknown when a part of the path is unknown.
        let total = parts.into_iter().flatten().try_fold(0, |sum, part| Some(sum + part?));
        let per = |ns: Option<u64>| ns.map(|ns| ns as f64 / 1000.0 / units);
        let wall_ns = wall.as_nanos() as f64 * cores as f64;
        Cpu {
            client: per(client),
            sidecar: per(sidecar),
            engine: per(engine),
            server: per(server),
            total: per(total),
            machine_busy_pct: usage
                .busy
                .filter(|_| wall_ns > 0.0)
                .map(|b| b as f64 * 100.0 / wall_ns),
        }
    }
}
