//! `wharf-sidecar`: flags → tracing → runtime → start (fail closed) → serve until SIGTERM/SIGINT.

use std::io::IsTerminal as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use clap::Parser as _;
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;
use wharf_sidecar::config::{self, Config};
use wharf_sidecar::gateway::HOSTS_PATH;
use wharf_sidecar::intercept::NetlinkInterception;
use wharf_sidecar::orig_dst::KernelOrigDst;
use wharf_sidecar::resolv::RESOLV_CONF_PATH;
use wharf_sidecar::startup::{self, StartEnv};

/// `EX_USAGE` from sysexits.h: the flags were wrong.
const EX_USAGE: u8 = 64;
/// How long in-flight work gets once a signal has stopped the accept loop. Tunnels are cut:
/// the container is going away, and `docker stop` should not wait.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(200);

fn main() -> ExitCode {
    let config = match Config::try_parse() {
        Ok(config) => config,
        Err(e) => {
            // Help and version are not errors; clap picks stdout or stderr for us.
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(EX_USAGE) } else { ExitCode::SUCCESS };
        }
    };
    init_tracing();
    match run(config) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: Config) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    let result = runtime.block_on(serve(config));
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    result
}

async fn serve(config: Config) -> anyhow::Result<ExitCode> {
    // First thing: the sidecar is PID 1, which ignores signals it has no handler for, so
    // without these `docker stop` would wait its full timeout and then SIGKILL.
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let shutdown = async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutting down");
    };

    let env = StartEnv {
        hosts_path: Path::new(HOSTS_PATH),
        resolv_conf_path: Path::new(RESOLV_CONF_PATH),
        interception: Arc::new(NetlinkInterception::new()),
        orig_dst: Arc::new(KernelOrigDst),
        now: SystemTime::now(),
    };
    let sidecar = startup::start(&config, env).await.context("starting the sidecar")?;
    let addr = sidecar.control_addr().context("reading the control listener's address")?;
    tracing::info!(control.addr = %addr, version = env!("CARGO_PKG_VERSION"), "sidecar ready");
    sidecar.serve(shutdown).await;
    Ok(ExitCode::SUCCESS)
}

fn init_tracing() {
    let filter = EnvFilter::try_new(config::log_filter_from_env())
        .unwrap_or_else(|_| EnvFilter::new(config::DEFAULT_LOG_FILTER));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
