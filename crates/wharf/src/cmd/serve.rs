//! `wharf serve`: run the daemon until SIGINT or SIGTERM.

use std::process::ExitCode;

use tokio::signal::unix::{SignalKind, signal};
use wharf_engine::EngineName;

use crate::cli::ServeArgs;
use crate::daemon::{Daemon, DaemonOptions, Listen, Warmth};
use crate::{UsageError, config, output};

pub(crate) async fn serve(args: ServeArgs, token: Option<String>) -> anyhow::Result<ExitCode> {
    let warmth = warmth(&args)?;
    let name = EngineName::new(&args.name).map_err(|e| UsageError(e.to_string()))?;
    let root = args.state_dir.unwrap_or_else(config::default_state_root);
    let listen = match args.listen {
        Some(addr) => Listen::Tcp(addr),
        None => Listen::Unix(args.socket.unwrap_or_else(config::default_socket)),
    };
    let options = DaemonOptions {
        state_dir: root.join(name.as_str()),
        name,
        listen,
        token,
        docker_host: args.docker.docker_host.or_else(config::docker_host),
        busybox: args.docker.busybox,
        upstream_dns: args.upstream_dns,
        reap_on_shutdown: !args.keep_containers,
        warmth,
    };
    let daemon = Daemon::start(options).await?;
    output::line(&format!("listening on {}", daemon.addr()));
    tracing::info!(engine = daemon.engine().name(), addr = %daemon.addr(), "wharf daemon ready");
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    daemon.stop().await;
    Ok(ExitCode::SUCCESS)
}

/// The pool's bounds and the warm TTL from the flags; a minimum above the maximum is a usage
/// error.
fn warmth(args: &ServeArgs) -> Result<Warmth, UsageError> {
    if args.pool_min > args.pool_max {
        return Err(UsageError(format!(
            "--pool-min {} is above --pool-max {}: lower --pool-min or raise --pool-max",
            args.pool_min, args.pool_max
        )));
    }
    Ok(Warmth {
        pool_min: args.pool_min,
        pool_max: args.pool_max,
        ttl: std::time::Duration::from_secs(args.warm_ttl),
    })
}
