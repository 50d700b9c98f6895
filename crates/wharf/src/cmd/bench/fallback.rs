//! `wharf bench fallback`: module fallback resolutions made three ways against one reference
//! server in this process, to show what connection reuse is worth (spec §6).
//!
//! * `naive`: a new connection per resolution, 301 bodies not read (workerd before PR #6115);
//! * `single`: one connection behind a single slot (the seed's fix);
//! * `wharf`: the pooled client, `wharf_fallback::client::BlockingClient`.
//!
//! Callers are plain threads, as the runtime's isolate threads are. Half of the resolutions are
//! answered with a 301 (`./mN` → `/mN.js`), half with the module. For each mode and
//! concurrency the bench reports the TCP connections the server accepted, the `TIME_WAIT`
//! sockets on the server's port afterwards (from `/proc/net/tcp`, split by side), resolutions
//! per second and latency percentiles. Modes run in the order given; `naive` runs last by
//! default, because its tens of thousands of `TIME_WAIT` sockets slow every later `connect()`
//! to the same port.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use wharf_fallback::client::ClientConfig;
use wharf_fallback::server::{Server, ServerConfig};

use super::stats::percentile;
use crate::cli::BenchFallbackArgs;
use crate::{UsageError, output};

#[path = "fallback_load.rs"]
mod load;
#[path = "fallback_sockets.rs"]
mod sockets;

use load::Resolve;
use sockets::TimeWait;

/// Modules in the bench's tree; resolutions cycle through them.
const MODULES: u32 = 1000;
/// Resolutions made after an idle gap longer than `--server-idle-close`, per cell, so that the
/// pool meets sockets the server has closed (back-to-back load never idles long enough).
const IDLE_GAPS: u32 = 20;
/// How long to wait for a mode's connections to close before counting `TIME_WAIT`.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// One way of asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Naive,
    Single,
    Wharf,
    /// The pooled client's async API, callers as tasks on the server's runtime: what the
    /// pool costs without the hand-off between threads.
    #[serde(rename = "wharf-async")]
    WharfAsync,
}

/// What the command line asked for, checked.
#[derive(Debug, Clone, Serialize)]
struct Settings {
    requests: u32,
    concurrency: Vec<u32>,
    modes: Vec<Mode>,
    pool: u32,
    server_idle_close_ms: Option<u64>,
    runs: u32,
    modules: u32,
}

/// One mode at one concurrency.
#[derive(Debug, Clone, Serialize)]
struct Cell {
    mode: Mode,
    concurrency: u32,
    resolutions: u64,
    errors: u64,
    addr_not_available: u64,
    first_error: Option<String>,
    /// TCP connections the server accepted during the cell.
    connections: u64,
    /// `TIME_WAIT` sockets on the server's port once the cell's connections were closed.
    time_wait_after: TimeWait,
    /// Of those, the ones this cell added (client side).
    time_wait_added: i64,
    resolutions_per_sec: f64,
    p50_us: u32,
    p99_us: u32,
    p999_us: u32,
    /// With `--server-idle-close`: resolutions made after an idle gap, and how many failed.
    idle_gap_resolutions: u32,
    idle_gap_errors: u64,
    /// The pooled client's retries and stale sockets dropped at checkout.
    retries: Option<u64>,
    stale_discarded: Option<u64>,
}

/// One run's totals.
#[derive(Debug, Clone, Serialize)]
struct RunSummary {
    run: u32,
    errors: u64,
    addr_not_available: u64,
    connections: u64,
    time_wait_after: TimeWait,
}

/// The machine's TCP settings that bound the figures.
#[derive(Debug, Clone, Serialize)]
struct Facts {
    kernel: Option<String>,
    cpus: usize,
    tcp_tw_reuse: Option<String>,
    ip_local_port_range: Option<String>,
}

/// Throughput ratios at one concurrency.
#[derive(Debug, Clone, Serialize)]
struct Ratio {
    concurrency: u32,
    wharf_over_naive: Option<f64>,
    wharf_over_single: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Report {
    facts: Facts,
    settings: Settings,
    /// The last run's cells.
    cells: Vec<Cell>,
    ratios: Vec<Ratio>,
    runs: Vec<RunSummary>,
}

/// `wharf bench fallback`.
pub(crate) async fn fallback(args: BenchFallbackArgs, json: bool) -> anyhow::Result<ExitCode> {
    let settings = settings(&args)?;
    let dir = std::env::temp_dir().join(format!("wharf-bench-fallback-{}", std::process::id()));
    write_tree(&dir, settings.modules).context("writing the module tree")?;
    let outcome = bench(&dir, &settings).await;
    let _ = std::fs::remove_dir_all(&dir);
    let (cells, runs) = outcome?;
    let report = Report { facts: facts(), ratios: ratios(&cells), settings, cells, runs };
    if json {
        output::json(&report);
    } else {
        report.print();
    }
    Ok(ExitCode::SUCCESS)
}

fn settings(args: &BenchFallbackArgs) -> Result<Settings, UsageError> {
    let modes = args
        .modes
        .iter()
        .map(|m| match m.as_str() {
            "naive" => Ok(Mode::Naive),
            "single" => Ok(Mode::Single),
            "wharf" => Ok(Mode::Wharf),
            "wharf-async" => Ok(Mode::WharfAsync),
            other => Err(UsageError(format!(
                "--modes: {other:?} is not naive, single, wharf or wharf-async"
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if args.concurrency.is_empty() || args.concurrency.iter().any(|&c| c == 0 || c > 1024) {
        return Err(UsageError("--concurrency must list numbers from 1 to 1024".to_owned()));
    }
    if args.requests == 0 || args.runs == 0 || args.pool == 0 || args.pool > 1024 {
        return Err(UsageError(
            "--requests and --runs must be at least 1, --pool from 1 to 1024".to_owned(),
        ));
    }
    if args.server_idle_close == Some(0) {
        return Err(UsageError("--server-idle-close must be at least 1 ms".to_owned()));
    }
    Ok(Settings {
        requests: args.requests,
        concurrency: args.concurrency.clone(),
        modes,
        pool: args.pool,
        server_idle_close_ms: args.server_idle_close,
        runs: args.runs,
        modules: MODULES,
    })
}

/// `m0.js` … as ES modules, each exporting its number.
fn write_tree(dir: &Path, modules: u32) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("package.json"), r#"{"type":"module"}"#)?;
    for i in 0..modules {
        std::fs::write(dir.join(format!("m{i}.js")), format!("export default {i};\n"))?;
    }
    Ok(())
}

async fn bench(root: &Path, settings: &Settings) -> anyhow::Result<(Vec<Cell>, Vec<RunSummary>)> {
    let mut config = ServerConfig::new(root, SocketAddr::from(([127, 0, 0, 1], 0)));
    config.idle_close = settings.server_idle_close_ms.map(Duration::from_millis);
    let server = Server::bind(config).await.context("starting the reference server")?;
    output::note(&format!("reference server on {} over {}", server.local_addr(), root.display()));
    let mut runs = Vec::new();
    let mut cells = Vec::new();
    for run in 1..=settings.runs {
        cells.clear();
        for &mode in &settings.modes {
            for &concurrency in &settings.concurrency {
                let cell = measure(&server, settings, mode, concurrency).await?;
                if settings.runs == 1 {
                    output::note(&format!(
                        "{:>6} c={concurrency:<3} {:>9.0}/s  {} connections  {} errors",
                        mode.key(),
                        cell.resolutions_per_sec,
                        cell.connections,
                        cell.errors
                    ));
                }
                cells.push(cell);
            }
        }
        let summary = summarize(run, &cells, sockets::time_wait(server.local_addr().port()));
        if settings.runs > 1 {
            output::note(&format!(
                "run {run}/{}: {} errors ({} EADDRNOTAVAIL), {} connections, TIME_WAIT {} client-side + {} server-side",
                settings.runs,
                summary.errors,
                summary.addr_not_available,
                summary.connections,
                summary.time_wait_after.client_side,
                summary.time_wait_after.server_side
            ));
        }
        runs.push(summary);
    }
    server.shutdown().await;
    Ok((cells, runs))
}

fn summarize(run: u32, cells: &[Cell], time_wait_after: TimeWait) -> RunSummary {
    RunSummary {
        run,
        errors: cells.iter().map(|c| c.errors + c.idle_gap_errors).sum(),
        addr_not_available: cells.iter().map(|c| c.addr_not_available).sum(),
        connections: cells.iter().map(|c| c.connections).sum(),
        time_wait_after,
    }
}

/// One mode at one concurrency: a new client, the load, the client closed, then the counts.
async fn measure(
    server: &Server,
    settings: &Settings,
    mode: Mode,
    concurrency: u32,
) -> anyhow::Result<Cell> {
    let addr = server.local_addr();
    let before = (server.stats().connections_accepted, sockets::time_wait(addr.port()));
    let (requests, modules) = (settings.requests, settings.modules);
    let mut config = ClientConfig::new(addr);
    config.max_connections = settings.pool as usize;
    let (outcome, pool) = if mode == Mode::WharfAsync {
        let client = wharf_fallback::client::Client::new(config);
        let mut outcome = load::run_async(&client, concurrency, requests, modules).await;
        if let Some(gap) = idle_gap(settings) {
            outcome.gaps = Some(load::gaps_async(&client, IDLE_GAPS, gap, modules).await);
        }
        let stats = client.stats();
        client.close_idle();
        (outcome, Some(stats))
    } else {
        let resolver: Arc<dyn Resolve> = match mode {
            Mode::Naive => Arc::new(load::Naive { addr }),
            Mode::Single => Arc::new(load::Single::start(addr)?),
            Mode::Wharf | Mode::WharfAsync => Arc::new(load::Wharf::start(config)?),
        };
        let gap = idle_gap(settings);
        tokio::task::spawn_blocking(move || {
            let mut outcome = load::run(resolver.clone(), concurrency, requests, modules);
            if let Some(gap) = gap {
                outcome.gaps = Some(load::gaps(&*resolver, IDLE_GAPS, gap, modules));
            }
            (outcome, resolver.pool_stats())
            // The resolver, and with it every connection it holds, is dropped here.
        })
        .await
        .context("the load threads")?
    };
    wait_for_close(server).await;
    let after = sockets::time_wait(addr.port());
    let mut sorted = outcome.us;
    sorted.sort_unstable();
    let pct = |p| if sorted.is_empty() { 0 } else { percentile(&sorted, p) };
    let ok = sorted.len() as u64;
    Ok(Cell {
        mode,
        concurrency,
        resolutions: ok + outcome.errors,
        errors: outcome.errors,
        addr_not_available: outcome.addr_not_available,
        first_error: outcome.first_error,
        connections: server.stats().connections_accepted - before.0,
        time_wait_after: after,
        time_wait_added: after.client_side as i64 - before.1.client_side as i64,
        resolutions_per_sec: ok as f64 / outcome.wall.as_secs_f64().max(1e-9),
        p50_us: pct(50.0),
        p99_us: pct(99.0),
        p999_us: pct(99.9),
        idle_gap_resolutions: if outcome.gaps.is_some() { IDLE_GAPS } else { 0 },
        idle_gap_errors: outcome.gaps.unwrap_or(0),
        retries: pool.map(|p| p.retries),
        stale_discarded: pool.map(|p| p.stale_discarded),
    })
}

/// The gap that outlasts the server's idle close, if it has one.
fn idle_gap(settings: &Settings) -> Option<Duration> {
    settings.server_idle_close_ms.map(|ms| Duration::from_millis(ms + ms / 2 + 5))
}

/// Waits (boundedly) until the server has seen every connection close, so `TIME_WAIT` is
/// counted after the closes rather than during them.
async fn wait_for_close(server: &Server) {
    let deadline = tokio::time::Instant::now() + CLOSE_WAIT;
    while server.stats().connections_open > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn ratios(cells: &[Cell]) -> Vec<Ratio> {
    let rate = |mode, c| {
        cells.iter().find(|x| x.mode == mode && x.concurrency == c).map(|x| x.resolutions_per_sec)
    };
    let mut concurrencies: Vec<u32> = Vec::new();
    for c in cells.iter().map(|c| c.concurrency) {
        if !concurrencies.contains(&c) {
            concurrencies.push(c);
        }
    }
    concurrencies
        .into_iter()
        .filter_map(|c| {
            let wharf = rate(Mode::Wharf, c)?;
            let over = |base: Option<f64>| base.filter(|b| *b > 0.0).map(|b| wharf / b);
            Some(Ratio {
                concurrency: c,
                wharf_over_naive: over(rate(Mode::Naive, c)),
                wharf_over_single: over(rate(Mode::Single, c)),
            })
        })
        .collect()
}

fn facts() -> Facts {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
    };
    Facts {
        kernel: read("/proc/sys/kernel/osrelease"),
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        tcp_tw_reuse: read("/proc/sys/net/ipv4/tcp_tw_reuse"),
        ip_local_port_range: read("/proc/sys/net/ipv4/ip_local_port_range"),
    }
}

// === impl Mode ===

impl Mode {
    fn key(self) -> &'static str {
        match self {
            Mode::Naive => "naive",
            Mode::Single => "single",
            Mode::Wharf => "wharf",
            Mode::WharfAsync => "wharf-async",
        }
    }
}

// === impl Report ===

impl Report {
    fn print(&self) {
        let f = &self.facts;
        output::line(&format!(
            "linux {}, {} cpus, tcp_tw_reuse={}, ports {}; {} resolutions per cell, 50% redirects, pool {}{}",
            f.kernel.as_deref().unwrap_or("?"),
            f.cpus,
            f.tcp_tw_reuse.as_deref().unwrap_or("?"),
            f.ip_local_port_range.as_deref().unwrap_or("?"),
            self.settings.requests,
            self.settings.pool,
            self.settings
                .server_idle_close_ms
                .map_or(String::new(), |ms| format!(", server idle close {ms} ms")),
        ));
        output::line("");
        output::line(
            "| mode | callers | resolutions | errors | connections | TIME_WAIT after (client+server) | resolutions/s | p50 µs | p99 µs | p99.9 µs |",
        );
        output::line("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for c in &self.cells {
            output::line(&format!(
                "| {} | {} | {} | {} | {} | {} + {} | {:.0} | {} | {} | {} |",
                c.mode.key(),
                c.concurrency,
                c.resolutions,
                c.errors,
                c.connections,
                c.time_wait_after.client_side,
                c.time_wait_after.server_side,
                c.resolutions_per_sec,
                c.p50_us,
                c.p99_us,
                c.p999_us
            ));
        }
        for c in self.cells.iter().filter(|c| c.idle_gap_resolutions > 0) {
            output::line(&format!(
                "{} c={}: {} resolutions after idle gaps longer than the server's idle close, {} errors",
                c.mode.key(),
                c.concurrency,
                c.idle_gap_resolutions,
                c.idle_gap_errors
            ));
        }
        for c in self.cells.iter().filter(|c| c.first_error.is_some()) {
            output::line(&format!(
                "{} c={}: first error: {}",
                c.mode.key(),
                c.concurrency,
                c.first_error.as_deref().unwrap_or("")
            ));
        }
        for c in self.cells.iter().filter(|c| {
            c.retries.is_some_and(|r| r > 0) || c.stale_discarded.is_some_and(|s| s > 0)
        }) {
            output::line(&format!(
                "{} c={}: {} retries, {} stale idle sockets dropped at checkout",
                c.mode.key(),
                c.concurrency,
                c.retries.unwrap_or(0),
                c.stale_discarded.unwrap_or(0)
            ));
        }
        output::line("");
        for r in &self.ratios {
            let x = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}x"));
            output::line(&format!(
                "callers {}: wharf/naive {}, wharf/single {}",
                r.concurrency,
                x(r.wharf_over_naive),
                x(r.wharf_over_single)
            ));
        }
        if self.runs.len() > 1 {
            let worst = self.runs.iter().map(|r| r.time_wait_after.total()).max().unwrap_or(0);
            let failed = self.runs.iter().filter(|r| r.errors > 0).count();
            let eaddr: u64 = self.runs.iter().map(|r| r.addr_not_available).sum();
            let first = self.runs.first().map_or(0, |r| r.time_wait_after.total());
            let last = self.runs.last().map_or(0, |r| r.time_wait_after.total());
            output::line(&format!(
                "{} runs: {failed} with errors, {eaddr} EADDRNOTAVAIL, TIME_WAIT after run 1 {first}, after the last {last}, at most {worst}",
                self.runs.len()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::load::workload;

    #[test]
    fn half_the_workload_is_redirects() {
        let redirects = (0..100).filter(|&k| workload(k, 10).1).count();
        assert_eq!(redirects, 50);
        let (request, redirect) = workload(7, 10);
        assert_eq!((request.specifier(), redirect), ("/m3.js", false));
        assert_eq!(workload(20, 10).0.specifier(), "/m0");
    }
}
