//! wharf, the daemon and CLI: the library behind the `wharf` binary.
//!
//! # Brief overview
//!
//! * [`cli`] declares the verbs; [`run`] dispatches them to `cmd/*`.
//! * [`daemon::Daemon`] runs an engine behind the v1 API; `wharf serve`, `wharf demo` and the
//!   integration tests all use it.
//! * [`client::Client`] speaks the API over the unix socket or TCP.
//! * [`artifacts`] embeds the static sidecar and test-app binaries (built by `build.rs`) and
//!   makes the image recipes from them.
//! * [`config`] is the one place the environment is read; [`output`] the one place the CLI
//!   prints.
//!
//! ```
//! use wharf::client::DaemonAddr;
//! assert!(matches!(DaemonAddr::parse("unix:/run/wharf.sock"), Ok(DaemonAddr::Unix(_))));
//! ```

use std::process::ExitCode;

pub mod artifacts;
pub mod cli;
pub mod client;
mod cmd;
pub mod config;
pub mod daemon;
pub mod output;
#[cfg(test)]
mod tidy;

/// A mistake in the arguments or configuration: exit code 64 (`EX_USAGE`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Runs one CLI invocation.
pub async fn run(cli: cli::Cli) -> anyhow::Result<ExitCode> {
    cmd::run(cli).await
}

/// Sets up logging to stderr: `info` for the daemon, `warn` for client verbs, unless
/// `WHARF_LOG`/`RUST_LOG` says otherwise.
pub fn init_logging(daemon: bool) {
    let default = if daemon { "info" } else { "warn" };
    let filter = config::log_filter().unwrap_or_else(|| default.to_owned());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
