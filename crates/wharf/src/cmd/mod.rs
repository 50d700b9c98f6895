//! One module per verb group; [`run`] dispatches.

use std::process::ExitCode;

use crate::cli::{BenchCommand, Cli, Command, FallbackCommand, ImagesCommand};
use crate::client::{Client, DaemonAddr};
use crate::{UsageError, config};

mod bench;
mod containers;
mod demo;
mod egress;
mod exec;
mod fallback;
mod gc;
mod images;
mod logs;
mod port_forward;
mod serve;

pub(crate) async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let json = cli.json;
    let client = || client(cli.url.as_deref(), cli.token.clone());
    match cli.command {
        Command::Serve(args) => serve::serve(args, cli.token.or_else(config::daemon_token)).await,
        Command::Start(args) => containers::start(&client()?, args).await,
        Command::Status(args) => containers::status(&client()?, &args.id, json).await,
        Command::Ps => containers::ps(&client()?, json).await,
        Command::Wait(args) => containers::wait(&client()?, &args.id, json).await,
        Command::Destroy(args) => containers::destroy(&client()?, &args.id).await,
        Command::Signal(args) => containers::signal(&client()?, args).await,
        Command::Health => containers::health(&client()?, json).await,
        Command::Egress(args) => egress::egress(&client()?, args, json).await,
        Command::EgressLog(args) => egress::log(&client()?, args, json).await,
        Command::Why(args) => egress::why(&client()?, args, json).await,
        Command::Exec(args) => exec::exec(&client()?, args, json).await,
        Command::Logs(args) => logs::logs(&client()?, args).await,
        Command::PortForward(args) => port_forward::port_forward(&client()?, args).await,
        Command::Gc(args) => gc::gc(args, json).await,
        Command::Images { command: ImagesCommand::Build(args) } => images::build(args, json).await,
        Command::Demo(args) => demo::demo(args).await,
        Command::Bench { command: BenchCommand::Egress(args) } => bench::egress(args, json).await,
        Command::Bench { command: BenchCommand::Lifecycle(args) } => {
            bench::lifecycle(args, json).await
        }
        Command::Bench { command: BenchCommand::Fallback(args) } => {
            bench::fallback(args, json).await
        }
        Command::Fallback { command: FallbackCommand::Serve(args) } => {
            fallback::serve(args, json).await
        }
        Command::Fallback { command: FallbackCommand::Resolve(args) } => {
            fallback::resolve(args, json).await
        }
    }
}

fn client(url: Option<&str>, token: Option<String>) -> anyhow::Result<Client> {
    let addr = match url.map(str::to_owned).or_else(config::daemon_url) {
        Some(raw) => DaemonAddr::parse(&raw).map_err(UsageError)?,
        None => DaemonAddr::Unix(config::default_socket()),
    };
    Ok(Client::new(addr, token.or_else(config::daemon_token)))
}

/// `/v1/containers/{id}` plus `rest`, with the id checked first for a clear usage error.
fn container_path(id: &str, rest: &str) -> anyhow::Result<String> {
    wharf_engine::params::ContainerId::new(id).map_err(|e| UsageError(e.to_string()))?;
    Ok(format!("/v1/containers/{id}{rest}"))
}
