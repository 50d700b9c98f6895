//! `wharf-testapp`: the HTTP server that wharf's container tests run (see the library docs).

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;
use wharf_testapp::config::{self, Config, ProcessEnv, Strings};
use wharf_testapp::resolve::{Resolver, ResolverConfig};
use wharf_testapp::roles::Roles;
use wharf_testapp::routes::App;
use wharf_testapp::signals::ExitSignals;
use wharf_testapp::{errors, server};

/// `EX_USAGE`: the environment does not make a configuration.
const EX_USAGE: u8 = 64;

fn main() -> ExitCode {
    init_tracing(&ProcessEnv);
    match run() {
        Ok(code) => code,
        Err(err) => {
            error!(error = format!("{err:#}"), "wharf-testapp failed");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let config = match Config::from_strings(&ProcessEnv) {
        Ok(config) => config,
        Err(err) => {
            error!(error = %errors::chain(&err), "bad configuration");
            return Ok(ExitCode::from(EX_USAGE));
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    let code = runtime.block_on(serve(config));
    // Leave blocking file reads behind rather than delaying the exit.
    runtime.shutdown_timeout(Duration::from_millis(100));
    code
}

fn init_tracing(env: &dyn Strings) {
    let filter =
        EnvFilter::try_new(config::log_filter(env)).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: `docker logs` shows escape codes verbatim.
    let ansi = std::io::stderr().is_terminal();
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_env_filter(filter)
        .try_init();
}

async fn serve(config: Config) -> anyhow::Result<ExitCode> {
    let mut signals = ExitSignals::install().context("installing signal handlers")?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    info!(addr = %listener.local_addr()?, "listening");
    Roles::bind(&config).await?.spawn();
    let app =
        Arc::new(App::new(config, Resolver::new(ResolverConfig::system()), config::process_env()));
    tokio::select! {
        termination = signals.recv() => Ok(ExitCode::from(termination.exit_code)),
        () = server::serve(listener, app) => anyhow::bail!("the http server stopped"),
    }
}
