//! The pieces of the sidecar paths, timed one by one from the host, so that a path's overhead
//! can be split into its legs: the engine's `CONNECT` to a sidecar's control port (through
//! Docker's userland proxy on the published port, and straight to the sidecar's bridge
//! address), with and without the first request on the tunnel; and the host's own leg to the
//! upstream, which the engine's pass-through and handler dials take.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;
use wharf_engine::docker::DockerApi;
use wharf_engine::params::AppPort;
use wharf_engine::sidecar::http::HttpControl;
use wharf_engine::sidecar::{Endpoint, SidecarControl};
use wharf_wire::control::CONTROL_PORT;

use super::fixture::APP_PORT;
use super::load::{self, Ingress, Run};
use super::stats::{Latency, Samples};
use super::{Bench, Path};

/// One piece and its latency.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Piece {
    /// What was timed.
    pub(super) name: String,
    /// Its latency.
    #[serde(flatten)]
    pub(super) latency: Latency,
    /// Failures.
    pub(super) errors: u32,
    /// The first failure.
    pub(super) first_error: Option<String>,
}

/// Times every piece `n` times, in turn.
pub(super) async fn measure(
    bench: &Bench,
    docker: &dyn DockerApi,
    engine_endpoint: Endpoint,
    n: u32,
) -> anyhow::Result<Vec<Piece>> {
    let sidecar = docker.inspect_container(&bench.pass.sidecar_name).await?;
    let published = sidecar.published.get(&CONTROL_PORT).and_then(|a| a.first()).map(|a| {
        if a.ip().is_unspecified() { SocketAddr::from(([127, 0, 0, 1], a.port())) } else { *a }
    });
    let bridge = SocketAddr::new(bench.pass.app.addr.ip(), CONTROL_PORT);
    let token = engine_endpoint.token.clone();
    let used = |addr: SocketAddr| if addr == engine_endpoint.addr { " (the engine's)" } else { "" };

    let mut pieces = Vec::new();
    let run = tokio::task::spawn_blocking(move || wakeups(n)).await?;
    pieces.push(piece(
        "machine: two threads ping-pong one byte over a socket pair (wakeups alone)",
        &run,
    ));
    let run = load::remote_latency(
        bench.direct.addr,
        &format!("http://127.0.0.1:{APP_PORT}/"),
        n,
        1,
        true,
    )
    .await?;
    pieces.push(piece(
        "test app -> itself on 127.0.0.1: GET / kept alive (client and server floor)",
        &run,
    ));
    let app = Arc::new(Ingress::Direct(bench.pass.app.addr));
    let run = bench.client.run(load::latency(app, n, 1, false)).await?;
    pieces.push(piece("host -> app: connect + GET /", &run));
    let ports = bench.ingress[&Path::IngressPorts].clone();
    let run = bench.client.run(load::connects(ports, n)).await?;
    pieces
        .push(piece("host -> API: ports upgrade answered (101, after the engine's CONNECT)", &run));
    let upstream = Arc::new(Ingress::Direct(bench.upstream.addr));
    let run = bench.client.run(load::latency(upstream.clone(), n, 1, false)).await?;
    pieces.push(piece("host -> upstream: connect + GET / (the engine's egress leg)", &run));
    let run = bench.client.run(load::latency(upstream, n, 1, true)).await?;
    pieces.push(piece("host -> upstream: GET / kept alive", &run));
    for (addr, how) in
        [(published, "published port (docker-proxy)"), (Some(bridge), "bridge address")]
    {
        let Some(addr) = addr else { continue };
        let ep = Endpoint { addr, token: token.clone() };
        for with_get in [false, true] {
            let run = bench.client.run(connects(ep.clone(), n, with_get)).await?;
            let what = if with_get { "CONNECT + GET /" } else { "CONNECT answered" };
            pieces.push(piece(
                &format!("engine -> sidecar {addr} {how}{}: {what}", used(addr)),
                &run,
            ));
        }
    }
    Ok(pieces)
}

fn piece(name: &str, run: &Run) -> Piece {
    let mut samples = Samples::default();
    samples.add(&run.us, run.errors, run.first_error.clone());
    Piece {
        name: name.to_owned(),
        latency: samples.latency(),
        errors: samples.errors,
        first_error: samples.first_error,
    }
}

/// `n` round trips of one byte between two threads over a Unix socket pair: what waking a
/// sleeping thread and being woken back costs on this machine, with no network stack.
fn wakeups(n: u32) -> Run {
    use std::io::{Read, Write};
    let mut run = Run::default();
    let (mut here, mut there) = match std::os::unix::net::UnixStream::pair() {
        Ok(pair) => pair,
        Err(e) => {
            run.errors = n;
            run.first_error = Some(e.to_string());
            return run;
        }
    };
    let echo = std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        while matches!(there.read(&mut byte), Ok(1)) && there.write_all(&byte).is_ok() {}
    });
    let mut byte = [0u8; 1];
    for _ in 0..n {
        let began = std::time::Instant::now();
        if here.write_all(&byte).and_then(|()| here.read_exact(&mut byte)).is_err() {
            run.errors += 1;
            continue;
        }
        run.us.push(u32::try_from(began.elapsed().as_micros()).unwrap_or(u32::MAX));
    }
    drop(here);
    let _ = echo.join();
    run
}

/// `n` ingress `CONNECT`s to the app's port as the engine makes them, each followed by one
/// `GET /` on the tunnel when `with_get`.
async fn connects(ep: Endpoint, n: u32, with_get: bool) -> Run {
    let control = HttpControl::new(Duration::from_secs(2));
    let mut run = Run::default();
    let port = match AppPort::new(i64::from(APP_PORT)) {
        Ok(port) => port,
        Err(e) => {
            run.errors = n;
            run.first_error = Some(e.to_string());
            return run;
        }
    };
    for _ in 0..n {
        let began = Instant::now();
        let outcome = match control.connect(&ep, port).await {
            Ok(io) if with_get => load::get_on(io, "/").await.map(drop),
            Ok(_) => Ok(()),
            Err(e) => Err(e.into()),
        };
        match outcome {
            Ok(()) => run.us.push(u32::try_from(began.elapsed().as_micros()).unwrap_or(u32::MAX)),
            Err(e) => {
                run.errors += 1;
                run.first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    run
}
