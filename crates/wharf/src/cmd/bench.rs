//! `wharf bench egress`: the same requests made directly, through the sidecar and through an
//! egress handler, with request latency (p50/p99) and bulk throughput as ratios to direct, and
//! the CPU time each component spent, to show what bounds each path.
//!
//! The set-up, all on this machine:
//!
//! * a network of the bench's own, with two plain test-app containers on it: the **upstream**
//!   server, and the **direct client** that makes the egress baseline from the same network;
//! * a daemon in-process (API on 127.0.0.1, upstream DNS on a TEST-NET address that no query
//!   ever reaches: the bench uses addresses only), running two test apps behind sidecars with
//!   the internet on: **pass** (no mapping: its egress passes through from the host) and
//!   **handler** (an `http` mapping whose target is the upstream itself).
//!
//! The paths:
//!
//! | path | client | on the way | server |
//! |---|---|---|---|
//! | egress direct | direct client (container) | bridge | upstream |
//! | egress sidecar | pass's app | TPROXY → sidecar → engine (pass-through) | upstream |
//! | egress handler | handler's app | TPROXY → sidecar → engine → HTTP handler client | upstream |
//! | ingress direct | host (this process) | bridge | pass's app |
//! | ingress ports | host | API upgrade → engine → sidecar `CONNECT` → app | pass's app |
//! | ingress http | host | API `/http/8080/…` → pooled keep-alive tunnel → sidecar → app | pass's app |
//!
//! Egress requests are made by the test app's `/bench` and `/bench-bulk` routes inside the
//! containers (`crates/wharf-testapp/src/bench.rs`); ingress requests by [`load`] on a thread of
//! their own. Every path runs once per round, in turn, after an uncounted warm-up round: first
//! on kept-alive connections, then with a new connection per request (a quarter as many
//! requests, see [`NEW_CONNECTION_SHARE`]), then one bulk transfer each. [`pieces`] then times
//! the legs of the sidecar paths alone, and [`cpu`] says who spent the CPU time all along.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use http::Method;
use serde_json::json;
use tokio::time::Instant;
use wharf_engine::docker::DockerApi;
use wharf_engine::docker::bollard::BollardDocker;
use wharf_engine::images::{ImageBuilder, ImageRecipe};
use wharf_engine::labels::Owner;
use wharf_engine::params::ContainerId;
use wharf_engine::{EngineConfig, EngineName};

use crate::artifacts::Recipes;
use crate::cli::{BenchEgressArgs, BenchLifecycleArgs};
use crate::daemon::{Daemon, DaemonOptions, Listen, Warmth};
use crate::{UsageError, config, output};

mod cpu;
mod fallback;
mod fixture;
mod lifecycle;
mod load;
mod pieces;
mod report;
mod stats;

use cpu::{Meter, Usage};
pub(crate) use fallback::fallback;
use fixture::{APP_PORT, Container, Fixture, Sidecarred};
use load::{ClientThread, Ingress};
use report::{Facts, Report};
use stats::{Rates, Samples};

/// The test-app image the bench runs: its own tag, so that a concurrent build of
/// `wharf/testapp:latest` from another tree cannot swap the app under it.
const BENCH_IMAGE: &str = "wharf/testapp:bench";
/// Where sidecars would forward DNS: TEST-NET-1 (RFC 5737), which no query reaches, because
/// the bench dials addresses only and no public resolver may ever be asked.
const HARMLESS_DNS: [u8; 4] = [192, 0, 2, 53];
/// How long the machine's background load is measured before the rounds.
const BACKGROUND_WINDOW: Duration = Duration::from_secs(2);
/// Requests of the warm-up round, per path and mode.
const WARMUP_REQUESTS: u32 = 200;
/// New-connection runs make this fraction of `--requests`. Each connection leaves a TIME_WAIT
/// socket behind its active closer for 60 s, and once some 10,000 of them share one destination
/// address and port, Linux's search for a free source port makes every `connect()` to that
/// destination take milliseconds (measured: 2.1 ms to a sidecar's control port with 23,000 of
/// them on the host, 26 µs to the same address's port 8080): a benchmark of the path would
/// then measure the port search.
const NEW_CONNECTION_SHARE: u32 = 4;

/// One way of making the requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Path {
    EgressDirect,
    EgressSidecar,
    EgressHandler,
    IngressDirect,
    IngressPorts,
    IngressHttp,
}

/// How each worker connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mode {
    /// One connection per worker, kept alive.
    KeepAlive,
    /// A new connection for every request.
    NewConnection,
}

/// What the command line asked for, checked.
#[derive(Debug, Clone, Copy)]
struct Settings {
    requests: u32,
    concurrency: u32,
    bulk_bytes: u64,
    rounds: u32,
}

/// What one path and mode gathered over the counted rounds.
#[derive(Debug, Default)]
struct Gathered {
    samples: Samples,
    usage: Usage,
    wall: Duration,
}

/// What one path's bulk transfers gathered.
#[derive(Debug, Default)]
struct GatheredBulk {
    rates: Rates,
    bytes: u64,
    usage: Usage,
    wall: Duration,
}

/// Everything measured.
#[derive(Debug, Default)]
struct Results {
    latency: BTreeMap<(Path, Mode), Gathered>,
    bulk: BTreeMap<Path, GatheredBulk>,
    pieces: Vec<pieces::Piece>,
    roles: BTreeMap<Path, Roles>,
    /// How busy the machine was before the rounds, %.
    background_busy_pct: Option<f64>,
}

/// Whose CPU time counts as what, on one path.
#[derive(Debug, Clone)]
struct Roles {
    /// A container id, or `None` for the bench's own client thread.
    client: Option<String>,
    sidecar: Option<String>,
    engine: bool,
    server: String,
}

/// The running set-up.
struct Bench {
    settings: Settings,
    upstream: Container,
    direct: Container,
    pass: Sidecarred,
    handler: Sidecarred,
    ingress: BTreeMap<Path, Arc<Ingress>>,
    client: ClientThread,
    meter: Meter,
}

// === impl Path ===

impl Path {
    const ALL: [Path; 6] = [
        Path::EgressDirect,
        Path::EgressSidecar,
        Path::EgressHandler,
        Path::IngressDirect,
        Path::IngressPorts,
        Path::IngressHttp,
    ];

    /// The path this one is compared with.
    fn baseline(self) -> Path {
        if self.is_egress() { Path::EgressDirect } else { Path::IngressDirect }
    }

    fn is_egress(self) -> bool {
        matches!(self, Path::EgressDirect | Path::EgressSidecar | Path::EgressHandler)
    }

    /// A stable name for JSON.
    fn key(self) -> &'static str {
        match self {
            Path::EgressDirect => "egress_direct",
            Path::EgressSidecar => "egress_sidecar",
            Path::EgressHandler => "egress_handler",
            Path::IngressDirect => "ingress_direct",
            Path::IngressPorts => "ingress_ports",
            Path::IngressHttp => "ingress_http",
        }
    }

    /// What a reader sees.
    fn label(self) -> &'static str {
        match self {
            Path::EgressDirect => "egress  direct (container -> upstream)",
            Path::EgressSidecar => "egress  sidecar, pass-through",
            Path::EgressHandler => "egress  http handler",
            Path::IngressDirect => "ingress direct (host -> app)",
            Path::IngressPorts => "ingress ports upgrade",
            Path::IngressHttp => "ingress http proxy",
        }
    }
}

// === impl Mode ===

impl Mode {
    const ALL: [Mode; 2] = [Mode::KeepAlive, Mode::NewConnection];

    fn keepalive(self) -> bool {
        self == Mode::KeepAlive
    }

    fn key(self) -> &'static str {
        match self {
            Mode::KeepAlive => "keepalive",
            Mode::NewConnection => "new_connection",
        }
    }
}

/// `wharf bench egress`.
pub(crate) async fn egress(args: BenchEgressArgs, json: bool) -> anyhow::Result<ExitCode> {
    let settings = settings(&args)?;
    let host = args.docker.docker_host.clone().or_else(config::docker_host);
    let docker: Arc<dyn DockerApi> = Arc::new(
        BollardDocker::connect(host.as_deref()).await.context("cannot reach the Docker daemon")?,
    );
    let facts = Facts::gather(&*docker).await;
    let recipes = Recipes::load(&args.docker.busybox)?;
    let bench_image = ImageRecipe::new(BENCH_IMAGE, recipes.testapp.context.clone());
    step("building images", build_images(docker.clone(), &[&recipes.sidecar, &bench_image]))
        .await?;

    let dir = std::env::temp_dir().join(format!("wharf-bench-{}", std::process::id()));
    let name = EngineName::new(&format!("bench-{}", std::process::id()))?;
    let state_dir = dir.join("state");
    let lock = EngineConfig::new(name.clone(), &state_dir, recipes.sidecar.clone()).lock_path();
    let options = daemon_options(name.clone(), state_dir, host, &args.docker, Warmth::KEEP_ONLY);
    let daemon = step("starting the daemon", Daemon::start(options)).await?;
    let fixture = Fixture::new(docker.clone(), Owner { engine: name.as_str(), lock: &lock });

    let outcome = tokio::select! {
        outcome = run(&daemon, &fixture, settings) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };

    output::note("cleaning up");
    let mut problems = fixture.teardown().await;
    daemon.stop().await;
    match fixture.leftovers().await {
        Ok(left) => problems.extend(left.into_iter().map(|l| format!("{l} left behind"))),
        Err(e) => problems.push(format!("cannot list what is left: {e}")),
    }
    let _ = std::fs::remove_dir_all(&dir);
    let results = outcome?;
    if !problems.is_empty() {
        bail!("the bench could not clean up: {}", problems.join("; "));
    }
    let report = Report::new(facts, settings, &results);
    if json {
        output::json(&report);
    } else {
        report.print();
    }
    Ok(ExitCode::SUCCESS)
}

/// `wharf bench lifecycle`.
pub(crate) async fn lifecycle(args: BenchLifecycleArgs, json: bool) -> anyhow::Result<ExitCode> {
    for mode in &args.modes {
        if !["bare", "naive", "warm", "wharf"].contains(&mode.as_str()) {
            return Err(UsageError(format!(
                "unknown mode {mode:?} in --modes: use bare, naive, warm and wharf, comma-separated"
            ))
            .into());
        }
    }
    let host = args.docker.docker_host.clone().or_else(config::docker_host);
    let docker: Arc<dyn DockerApi> = Arc::new(
        BollardDocker::connect(host.as_deref()).await.context("cannot reach the Docker daemon")?,
    );
    let recipes = Recipes::load(&args.docker.busybox)?;
    step("building images", build_images(docker.clone(), &[&recipes.sidecar, &recipes.testapp]))
        .await?;
    let dir = std::env::temp_dir().join(format!("wharf-bench-{}", std::process::id()));
    let name = EngineName::new(&format!("bench-{}", std::process::id()))?;
    let options = daemon_options(name.clone(), dir.join("state"), host, &args.docker, Warmth::OFF);
    let (ids, cycles) = (usize::from(args.ids), usize::from(args.cycles));
    let outcome = tokio::select! {
        outcome = lifecycle::run(docker.clone(), &recipes, &options, &args.modes, ids, cycles) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    let mut left = Vec::new();
    for mode in ["bare", "naive", "warm", "wharf"] {
        let engine = format!("{}-{mode}", name.as_str());
        let owned =
            docker.list_containers(&[(wharf_engine::labels::ENGINE, engine.as_str())]).await?;
        for c in owned {
            let _ = docker.remove_container(&c.name).await;
            left.push(c.name);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let results = outcome?;
    if !left.is_empty() {
        bail!("the bench left containers behind (now removed): {}", left.join(", "));
    }
    if json {
        output::json(&json!({"ids": ids, "cycles": cycles, "modes": results}));
    } else {
        lifecycle::print(&results, ids, cycles);
    }
    Ok(ExitCode::SUCCESS)
}

/// A bench daemon: its API on 127.0.0.1, sidecars pointed at a resolver no query reaches.
fn daemon_options(
    name: EngineName,
    state_dir: std::path::PathBuf,
    docker_host: Option<String>,
    docker: &crate::cli::DockerArgs,
    warmth: Warmth,
) -> DaemonOptions {
    DaemonOptions {
        state_dir,
        listen: Listen::Tcp(SocketAddr::from(([127, 0, 0, 1], 0))),
        name,
        token: None,
        docker_host,
        busybox: docker.busybox.clone(),
        upstream_dns: vec![HARMLESS_DNS.into()],
        reap_on_shutdown: true,
        warmth,
    }
}

fn settings(args: &BenchEgressArgs) -> Result<Settings, UsageError> {
    if args.rounds == 0 || args.requests < args.rounds {
        return Err(UsageError(format!(
            "--requests ({}) must be at least --rounds ({}), which must be at least 1",
            args.requests, args.rounds
        )));
    }
    if args.concurrency == 0 || args.concurrency > 1024 {
        return Err(UsageError("--concurrency must be from 1 to 1024".to_owned()));
    }
    Ok(Settings {
        requests: args.requests,
        concurrency: args.concurrency,
        bulk_bytes: args.bulk_bytes,
        rounds: args.rounds,
    })
}

async fn build_images(docker: Arc<dyn DockerApi>, recipes: &[&ImageRecipe]) -> anyhow::Result<()> {
    let builder = ImageBuilder::new(docker);
    let progress = |line: &str| tracing::debug!(target: "wharf::images", "{}", line.trim_end());
    for recipe in recipes {
        builder.ensure(recipe, &progress).await?;
    }
    Ok(())
}

/// Sets up, measures, and returns the results; the caller cleans up whatever happens.
async fn run(daemon: &Daemon, fixture: &Fixture, settings: Settings) -> anyhow::Result<Results> {
    let client = daemon.client();
    let network = step("creating the bench network", fixture.network()).await?;
    output::note(&format!("  {} {}", network.name, network.subnet));
    let (upstream, direct) = step("starting the upstream and the direct client", async {
        tokio::try_join!(
            fixture.plain("upstream", BENCH_IMAGE, &network),
            fixture.plain("direct", BENCH_IMAGE, &network),
        )
    })
    .await?;
    let (pass, handler) = step("starting two apps behind sidecars", async {
        tokio::try_join!(
            fixture.sidecarred(&client, "bench-pass", BENCH_IMAGE),
            fixture.sidecarred(&client, "bench-handler", BENCH_IMAGE),
        )
    })
    .await?;
    let upstream_authority = upstream.addr.to_string();
    let mapping = json!({
        "protocol": "http",
        "hostPort": upstream_authority,
        "target": format!("http://{upstream_authority}"),
    });
    let path = format!("/v1/containers/{}/egress", handler.id);
    client.ok(Method::POST, &path, Some(&mapping)).await.context("adding the handler mapping")?;

    let crate::client::DaemonAddr::Tcp(api) = daemon.addr() else {
        bail!("the bench's daemon listens on TCP");
    };
    let api: SocketAddr = api.parse().context("the daemon's address")?;
    let ingress = BTreeMap::from([
        (Path::IngressDirect, Arc::new(Ingress::Direct(pass.app.addr))),
        (
            Path::IngressPorts,
            Arc::new(Ingress::Ports {
                api,
                path: format!("/v1/containers/{}/ports/{APP_PORT}", pass.id),
            }),
        ),
        (
            Path::IngressHttp,
            Arc::new(Ingress::Http {
                api,
                prefix: format!("/v1/containers/{}/http/{APP_PORT}", pass.id),
            }),
        ),
    ]);
    let client_thread = ClientThread::start()?;
    let ids = [
        &upstream.id,
        &direct.id,
        &pass.app.id,
        &pass.sidecar_id,
        &handler.app.id,
        &handler.sidecar_id,
    ]
    .map(String::clone);
    let meter = Meter::new(&ids, client_thread.tid());
    if !meter.reads_containers() {
        output::note(
            "  (cannot read containers' CPU time from their cgroups: CPU columns stay empty)",
        );
    }
    let background = cpu::background_busy_pct(&meter, BACKGROUND_WINDOW).await;
    if let Some(pct) = background {
        output::note(&format!("  the machine is {pct:.0}% busy before the bench runs"));
    }
    let bench =
        Bench { settings, upstream, direct, pass, handler, ingress, client: client_thread, meter };
    let mut results = bench.rounds().await?;
    results.background_busy_pct = background;
    let endpoint = daemon
        .engine()
        .status(&ContainerId::new(&bench.pass.id)?)
        .snapshot
        .sidecar
        .ok_or_else(|| anyhow!("the engine has no sidecar endpoint for {}", bench.pass.id))?;
    results.pieces = step(
        "timing the pieces",
        pieces::measure(&bench, fixture.docker(), endpoint, sample_count(settings)),
    )
    .await?;
    results.roles = Path::ALL.into_iter().map(|p| (p, bench.roles(p))).collect();
    Ok(results)
}

/// Samples per piece: as many as one round of one path makes, from 50 to 500 (the pieces open a
/// connection each, to the same few addresses).
fn sample_count(settings: Settings) -> u32 {
    (settings.requests / settings.rounds).clamp(50, 500)
}

// === impl Bench ===

impl Bench {
    /// The warm-up round, then every counted round.
    async fn rounds(&self) -> anyhow::Result<Results> {
        let mut results = Results::default();
        let per_round = self.settings.requests.div_ceil(self.settings.rounds);
        let began = Instant::now();
        for round in 0..=self.settings.rounds {
            let counted = round > 0;
            let n = if counted { per_round } else { WARMUP_REQUESTS.min(per_round) };
            output::note(&format!(
                "round {round}/{}{} ({:.0} s so far)",
                self.settings.rounds,
                if counted { "" } else { " (warm-up, not counted)" },
                began.elapsed().as_secs_f64()
            ));
            for mode in Mode::ALL {
                let n = match mode {
                    Mode::KeepAlive => n,
                    Mode::NewConnection => n.div_ceil(NEW_CONNECTION_SHARE),
                };
                for path in Path::ALL {
                    let before = (self.meter.read(), Instant::now());
                    let run = self.latency(path, mode, n).await?;
                    let (usage, wall) = (self.meter.read().since(&before.0), before.1.elapsed());
                    if counted {
                        let g = results.latency.entry((path, mode)).or_default();
                        g.samples.add(&run.us, run.errors, run.first_error);
                        g.usage.add(&usage);
                        g.wall += wall;
                    }
                }
            }
            let bytes = if counted {
                self.settings.bulk_bytes
            } else {
                self.settings.bulk_bytes.min(load::MAX_CHUNK)
            };
            for path in Path::ALL {
                let before = (self.meter.read(), Instant::now());
                let bulk = self.bulk(path, bytes).await?;
                let (usage, wall) = (self.meter.read().since(&before.0), before.1.elapsed());
                if counted {
                    let g = results.bulk.entry(path).or_default();
                    if bulk.error.is_none() {
                        g.rates.per_round.push(bulk.bytes_per_sec);
                    } else if g.rates.error.is_none() {
                        g.rates.error = bulk.error;
                    }
                    g.bytes += bulk.bytes;
                    g.usage.add(&usage);
                    g.wall += wall;
                }
            }
        }
        Ok(results)
    }

    /// One latency run of `n` requests.
    async fn latency(&self, path: Path, mode: Mode, n: u32) -> anyhow::Result<load::Run> {
        let c = self.settings.concurrency;
        let url = format!("http://{}/", self.upstream.addr);
        match path {
            Path::EgressDirect => {
                load::remote_latency(self.direct.addr, &url, n, c, mode.keepalive()).await
            }
            Path::EgressSidecar => {
                load::remote_latency(self.pass.app.addr, &url, n, c, mode.keepalive()).await
            }
            Path::EgressHandler => {
                load::remote_latency(self.handler.app.addr, &url, n, c, mode.keepalive()).await
            }
            Path::IngressDirect | Path::IngressPorts | Path::IngressHttp => {
                let route = self.ingress[&path].clone();
                self.client.run(load::latency(route, n, c, mode.keepalive())).await
            }
        }
    }

    /// One bulk transfer of `bytes`.
    async fn bulk(&self, path: Path, bytes: u64) -> anyhow::Result<load::Bulk> {
        let url = format!("http://{}/bytes", self.upstream.addr);
        match path {
            Path::EgressDirect => load::remote_bulk(self.direct.addr, &url, bytes).await,
            Path::EgressSidecar => load::remote_bulk(self.pass.app.addr, &url, bytes).await,
            Path::EgressHandler => load::remote_bulk(self.handler.app.addr, &url, bytes).await,
            Path::IngressDirect | Path::IngressPorts | Path::IngressHttp => {
                let route = self.ingress[&path].clone();
                self.client.run(load::bulk(route, bytes)).await
            }
        }
    }

    /// Whose CPU time is whose on `path`.
    fn roles(&self, path: Path) -> Roles {
        let pass = (Some(self.pass.app.id.clone()), Some(self.pass.sidecar_id.clone()));
        match path {
            Path::EgressDirect => Roles {
                client: Some(self.direct.id.clone()),
                sidecar: None,
                engine: false,
                server: self.upstream.id.clone(),
            },
            Path::EgressSidecar => Roles {
                client: pass.0,
                sidecar: pass.1,
                engine: true,
                server: self.upstream.id.clone(),
            },
            Path::EgressHandler => Roles {
                client: Some(self.handler.app.id.clone()),
                sidecar: Some(self.handler.sidecar_id.clone()),
                engine: true,
                server: self.upstream.id.clone(),
            },
            Path::IngressDirect => Roles {
                client: None,
                sidecar: None,
                engine: false,
                server: self.pass.app.id.clone(),
            },
            Path::IngressPorts | Path::IngressHttp => Roles {
                client: None,
                sidecar: Some(self.pass.sidecar_id.clone()),
                engine: true,
                server: self.pass.app.id.clone(),
            },
        }
    }
}

/// Runs `work`, printing how long it took on stderr.
async fn step<T>(what: &str, work: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    let began = Instant::now();
    let value = work.await.with_context(|| what.to_owned())?;
    output::note(&format!("{what}: ok ({} ms)", began.elapsed().as_millis()));
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        use crate::cli::parse_size;
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12T").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("-1").is_err());
    }

    #[test]
    fn every_path_compares_with_its_own_direct() {
        let baselines: Vec<_> = Path::ALL.iter().map(|p| p.baseline().key()).collect();
        assert_eq!(
            baselines,
            ["egress_direct"; 3].into_iter().chain(["ingress_direct"; 3]).collect::<Vec<_>>()
        );
    }
}
