//! `wharf bench lifecycle`: seed 000's measurement at this machine's scale. N ids at once, each
//! running M cycles of start, probe `/` through the engine until `Hello World!`, destroy, in
//! three modes on the same daemon, plus bare `docker create` + `start` as the floor:
//!
//! * `naive`: a fresh sidecar every start and none kept (`Warmth::OFF`, workerd before the
//!   seed);
//! * `warm`: an id's sidecar kept across destroy and start (`Warmth::KEEP_ONLY`, the seed);
//! * `wharf`: kept sidecars plus a warm pool filled to N before the clock starts.
//!
//! The sidecar phase comes from each `started` event (`sidecar_duration`); the app phase is
//! the rest of the start. wharf has no admission control yet, so there is no queue phase.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use http::Method;
use serde::Serialize;
use serde_json::json;
use tokio::time::Instant;
use wharf_engine::EngineName;
use wharf_engine::docker::DockerApi;
use wharf_engine::events::EventKind;
use wharf_engine::labels::Owner;

use super::fixture::Fixture;
use super::stats::percentile;
use crate::artifacts::Recipes;
use crate::client::Client;
use crate::daemon::{Daemon, DaemonOptions, Warmth};
use crate::output;

/// A start is a failure when its app does not answer within this budget (seed 000).
const BUDGET: Duration = Duration::from_secs(10);

/// One mode's figures.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ModeResult {
    mode: &'static str,
    lifecycles: usize,
    failures: usize,
    first_failure: Option<String>,
    /// start() as the caller saw it, ms.
    start_ms: Quantiles,
    /// From start() to the first `Hello World!`, ms.
    ready_ms: Quantiles,
    /// The sidecar phase, ms, all starts and first starts of each id.
    sidecar_ms: Quantiles,
    first_sidecar_ms: Quantiles,
    /// The rest of the start, ms.
    app_ms: Quantiles,
    /// Starts whose sidecar was kept or pooled.
    warm_share: f64,
    lifecycles_per_s: f64,
}

#[derive(Debug, Default, Serialize)]
pub(super) struct Quantiles {
    p50: f64,
    p99: f64,
    max: f64,
}

/// Runs the modes in `modes` (and the bare floor) with `ids` ids of `cycles` cycles each.
pub(super) async fn run(
    docker: Arc<dyn DockerApi>,
    recipes: &Recipes,
    options: &DaemonOptions,
    modes: &[String],
    ids: usize,
    cycles: usize,
) -> anyhow::Result<Vec<ModeResult>> {
    let mut results = Vec::new();
    let image = recipes.testapp.reference.clone();
    for mode in modes {
        let (label, warmth) = match mode.as_str() {
            "bare" => {
                results.push(bare(docker.clone(), options, &image, ids, cycles).await?);
                continue;
            }
            "naive" => ("naive", Warmth::OFF),
            "warm" => ("warm", Warmth::KEEP_ONLY),
            "wharf" => ("wharf", Warmth { pool_min: ids, pool_max: ids.max(8), ..Warmth::DEFAULT }),
            other => bail!("unknown mode {other:?}: use bare, naive, warm or wharf"),
        };
        let mut options = options.clone();
        options.name = EngineName::new(&format!("{}-{label}", options.name.as_str()))?;
        options.state_dir = options.state_dir.join(label);
        options.warmth = warmth;
        let daemon = Daemon::start(options).await.context("starting the daemon")?;
        let result = daemon_mode(&daemon, label, &image, ids, cycles).await;
        daemon.stop().await;
        results.push(result?);
    }
    Ok(results)
}

async fn daemon_mode(
    daemon: &Daemon,
    mode: &'static str,
    image: &str,
    ids: usize,
    cycles: usize,
) -> anyhow::Result<ModeResult> {
    if mode == "wharf" {
        let began = Instant::now();
        while daemon.engine().pool_sizes().0 < ids {
            if began.elapsed() > Duration::from_secs(600) {
                bail!("the warm pool did not fill to {ids} within 10 minutes");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        output::note(&format!("  {mode}: the warm pool holds {ids} after {:?}", began.elapsed()));
    }
    let mut events = daemon.engine().subscribe();
    let phases = Arc::new(std::sync::Mutex::new(Vec::new()));
    let collector = tokio::spawn({
        let phases = phases.clone();
        async move {
            while let Ok(event) = events.recv().await {
                if let EventKind::Started { sidecar, sidecar_duration, duration, .. } = event.kind {
                    let id = event.container.map(|c| c.to_string()).unwrap_or_default();
                    let phase = (id, sidecar.is_warm(), sidecar_duration, duration);
                    phases.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(phase);
                }
            }
        }
    });
    let began = Instant::now();
    let tasks: Vec<_> = (0..ids)
        .map(|i| {
            let client = daemon.client();
            let image = image.to_owned();
            tokio::spawn(async move { cycle_id(client, format!("b{i}"), image, cycles).await })
        })
        .collect();
    let Tally { ok, failures, first_failure } = tally(tasks).await?;
    let (starts, readies): (Vec<_>, Vec<_>) = ok.into_iter().unzip();
    let wall = began.elapsed();
    output::note(&format!("  {mode}: {} lifecycles in {wall:.1?}", ids * cycles));
    // Let the last events arrive; stopping the daemon closes the stream.
    tokio::time::sleep(Duration::from_millis(200)).await;
    collector.abort();
    let phases =
        std::mem::take(&mut *phases.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    let mut seen = std::collections::HashSet::new();
    let first: Vec<Duration> =
        phases.iter().filter(|p| seen.insert(p.0.clone())).map(|p| p.2).collect();
    let warm = phases.iter().filter(|p| p.1).count();
    Ok(ModeResult {
        mode,
        lifecycles: ids * cycles,
        failures,
        first_failure,
        start_ms: quantiles(&starts),
        ready_ms: quantiles(&readies),
        sidecar_ms: quantiles(&phases.iter().map(|p| p.2).collect::<Vec<_>>()),
        first_sidecar_ms: quantiles(&first),
        app_ms: quantiles(&phases.iter().map(|p| p.3.saturating_sub(p.2)).collect::<Vec<_>>()),
        warm_share: warm as f64 / phases.len().max(1) as f64,
        lifecycles_per_s: (ids * cycles - failures) as f64 / wall.as_secs_f64(),
    })
}

/// `cycles` lifecycles of one id: start, probe until `Hello World!`, destroy.
async fn cycle_id(
    client: Client,
    id: String,
    image: String,
    cycles: usize,
) -> Vec<anyhow::Result<(Duration, Duration)>> {
    let mut out = Vec::new();
    for _ in 0..cycles {
        out.push(one_cycle(&client, &id, &image).await);
    }
    out
}

async fn one_cycle(client: &Client, id: &str, image: &str) -> anyhow::Result<(Duration, Duration)> {
    let began = Instant::now();
    let body = json!({"image": image});
    client.ok(Method::POST, &format!("/v1/containers/{id}/start"), Some(&body)).await?;
    let start = began.elapsed();
    let probe = format!("/v1/containers/{id}/http/8080/");
    let ready = loop {
        match client.ok(Method::GET, &probe, None).await {
            Ok(reply) if reply.body.as_ref() == b"Hello World!" => break began.elapsed(),
            _ if began.elapsed() > BUDGET * 3 => bail!("{id} never answered"),
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    };
    client.ok(Method::POST, &format!("/v1/containers/{id}/destroy"), None).await?;
    if ready > BUDGET {
        bail!("ready after {ready:?}");
    }
    Ok((start, ready))
}

/// What the cycles of every id came to.
struct Tally<T> {
    ok: Vec<T>,
    failures: usize,
    first_failure: Option<String>,
}

/// Awaits every id's task and counts its cycles' outcomes.
async fn tally<T>(
    tasks: Vec<tokio::task::JoinHandle<Vec<anyhow::Result<T>>>>,
) -> anyhow::Result<Tally<T>> {
    let mut tally = Tally { ok: Vec::new(), failures: 0, first_failure: None };
    for task in tasks {
        for outcome in task.await? {
            match outcome {
                Ok(value) => tally.ok.push(value),
                Err(e) => {
                    tally.failures += 1;
                    tally.first_failure.get_or_insert(format!("{e:#}"));
                }
            }
        }
    }
    Ok(tally)
}

/// The floor: bare create + start of the test app, at the same concurrency.
async fn bare(
    docker: Arc<dyn DockerApi>,
    options: &DaemonOptions,
    image: &str,
    ids: usize,
    cycles: usize,
) -> anyhow::Result<ModeResult> {
    let name = EngineName::new(&format!("{}-bare", options.name.as_str()))?;
    // No engine runs under this name: `wharf gc` removes what a killed bench left.
    let lock = options.state_dir.join("bare.lock");
    let fixture = Arc::new(Fixture::new(docker, Owner { engine: name.as_str(), lock: &lock }));
    let began = Instant::now();
    let tasks: Vec<_> = (0..ids)
        .map(|i| {
            let (fixture, image) = (fixture.clone(), image.to_owned());
            tokio::spawn(async move {
                let mut out = Vec::new();
                for c in 0..cycles {
                    out.push(fixture.bare_cycle(&format!("bare-{i}-{c}"), &image).await);
                }
                out
            })
        })
        .collect();
    let Tally { ok: starts, failures, first_failure } = tally(tasks).await?;
    let wall = began.elapsed();
    let problems = fixture.teardown().await;
    if !problems.is_empty() {
        bail!("the bare floor could not clean up: {}", problems.join("; "));
    }
    output::note(&format!("  bare: {} create+start+remove in {wall:.1?}", ids * cycles));
    Ok(ModeResult {
        mode: "bare",
        lifecycles: ids * cycles,
        failures,
        first_failure,
        start_ms: quantiles(&starts),
        ready_ms: Quantiles::default(),
        sidecar_ms: Quantiles::default(),
        first_sidecar_ms: Quantiles::default(),
        app_ms: Quantiles::default(),
        warm_share: 0.0,
        lifecycles_per_s: (ids * cycles - failures) as f64 / wall.as_secs_f64(),
    })
}

fn quantiles(samples: &[Duration]) -> Quantiles {
    let mut us: Vec<u32> =
        samples.iter().map(|d| u32::try_from(d.as_micros()).unwrap_or(u32::MAX)).collect();
    us.sort_unstable();
    if us.is_empty() {
        return Quantiles::default();
    }
    let ms = |v: u32| f64::from(v) / 1000.0;
    Quantiles {
        p50: ms(percentile(&us, 50.0)),
        p99: ms(percentile(&us, 99.0)),
        max: ms(us.last().copied().unwrap_or(0)),
    }
}

/// Prints the table and the targets.
pub(super) fn print(results: &[ModeResult], ids: usize, cycles: usize) {
    output::line(&format!(
        "{ids} ids x {cycles} cycles (start, probe / until Hello World!, destroy); budget {BUDGET:?}; times in ms"
    ));
    output::line(
        "| mode | lifecycles | failures | start p50 / p99 / max | sidecar p50 / p99 / max | first-start sidecar p99 | app phase p50 / p99 | ready p50 / p99 | warm share | lifecycles/s |",
    );
    output::line("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in results {
        output::line(&format!(
            "| {} | {} | {} | {:.1} / {:.1} / {:.1} | {:.3} / {:.3} / {:.3} | {:.3} | {:.1} / {:.1} | {:.1} / {:.1} | {:.0}% | {:.2} |",
            r.mode,
            r.lifecycles,
            r.failures,
            r.start_ms.p50,
            r.start_ms.p99,
            r.start_ms.max,
            r.sidecar_ms.p50,
            r.sidecar_ms.p99,
            r.sidecar_ms.max,
            r.first_sidecar_ms.p99,
            r.app_ms.p50,
            r.app_ms.p99,
            r.ready_ms.p50,
            r.ready_ms.p99,
            r.warm_share * 100.0,
            r.lifecycles_per_s,
        ));
        if let Some(f) = &r.first_failure {
            output::line(&format!("  {} first failure: {f}", r.mode));
        }
    }
    let find = |m: &str| results.iter().find(|r| r.mode == m);
    if let (Some(w), Some(b)) = (find("wharf"), find("bare")) {
        output::line(&format!(
            "wharf start p50 / p99 vs bare create+start: {:.2}x / {:.2}x (target <= 0.5x); lifecycles/s {:.2}x bare (target >= 1x)",
            w.start_ms.p50 / b.start_ms.p50.max(0.001),
            w.start_ms.p99 / b.start_ms.p99.max(0.001),
            w.lifecycles_per_s / b.lifecycles_per_s.max(0.001),
        ));
    }
    if let (Some(w), Some(n)) = (find("wharf"), find("naive")) {
        output::line(&format!(
            "wharf lifecycles/s {:.2}x naive (target >= 2x); wharf failures {} (target 0); wharf sidecar p99 {:.3} ms, first starts {:.3} ms (target <= 1 ms)",
            w.lifecycles_per_s / n.lifecycles_per_s.max(0.001),
            w.failures,
            w.sidecar_ms.p99,
            w.first_sidecar_ms.p99,
        ));
    }
}
