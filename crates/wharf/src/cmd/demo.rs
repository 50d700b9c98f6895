//! `wharf demo`: the main job on embedded defaults, end to end through the real API.
//!
//! It builds the images, runs a daemon in-process on a private socket, starts a test-app
//! container, fetches `/` through the engine's HTTP proxy, runs an exec, destroys the
//! container, and checks that nothing is left behind.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use http::Method;
use serde_json::json;
use wharf_api::dto::{ExecResult, WaitBody};
use wharf_engine::EngineName;
use wharf_engine::docker::DockerApi;
use wharf_engine::docker::bollard::BollardDocker;
use wharf_engine::images::ImageBuilder;
use wharf_engine::labels;

use crate::artifacts::Recipes;
use crate::cli::DemoArgs;
use crate::client::{Client, ClientError};
use crate::daemon::{Daemon, DaemonOptions, Listen, Warmth};
use crate::{config, output};

const ID: &str = "demo";

pub(crate) async fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let host = args.docker.docker_host.or_else(config::docker_host);
    let docker = Arc::new(
        BollardDocker::connect(host.as_deref()).await.context("cannot reach the Docker daemon")?,
    );
    let recipes = Recipes::load(&args.docker.busybox)?;
    step("building images", build_images(docker.clone(), &recipes)).await?;

    let dir = tempdir()?;
    let name = EngineName::new(&format!("demo-{}", std::process::id()))?;
    let options = DaemonOptions {
        state_dir: dir.join("state"),
        listen: Listen::Unix(dir.join("wharf.sock")),
        name: name.clone(),
        token: None,
        docker_host: host,
        busybox: args.docker.busybox,
        upstream_dns: Vec::new(),
        reap_on_shutdown: true,
        warmth: Warmth::DEFAULT,
    };
    let daemon = step("starting the daemon", Daemon::start(options)).await?;
    let client = daemon.client();
    let result = run_container(&client, &recipes.testapp.reference).await;
    daemon.stop().await;
    let leftovers = docker.list_containers(&[(labels::ENGINE, name.as_str())]).await?;
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    if !leftovers.is_empty() {
        bail!(
            "{} container(s) left behind: {:?}",
            leftovers.len(),
            leftovers.iter().map(|c| &c.name).collect::<Vec<_>>()
        );
    }
    output::line("nothing left behind: the demo's containers are gone");
    Ok(ExitCode::SUCCESS)
}

async fn build_images(docker: Arc<BollardDocker>, recipes: &Recipes) -> anyhow::Result<()> {
    let builder = ImageBuilder::new(docker);
    let progress = |line: &str| tracing::debug!(target: "wharf::images", "{}", line.trim_end());
    for recipe in [&recipes.sidecar, &recipes.testapp] {
        builder.ensure(recipe, &progress).await?;
        output::line(&format!("  image {}", recipe.reference));
    }
    Ok(())
}

async fn run_container(client: &Client, image: &str) -> anyhow::Result<()> {
    let start = json!({"image": image, "labels": {"demo": "yes"}});
    step(
        "starting a test-app container",
        client.ok(Method::POST, "/v1/containers/demo/start", Some(&start)),
    )
    .await?;
    let body = step("fetching / through the engine", fetch_root(client)).await?;
    output::line(&format!("  GET / -> {body:?}"));
    let exec = json!({"cmd": ["/bin/sh", "-c", "echo hello from $(hostname) as $(id -u)"]});
    let r: ExecResult =
        step("running an exec", client.json(Method::POST, "/v1/containers/demo/exec", Some(&exec)))
            .await?;
    output::line(&format!("  exec -> exit {}, stdout {:?}", r.exit_code, r.stdout.trim_end()));
    step("destroying it", client.ok(Method::POST, "/v1/containers/demo/destroy", None)).await?;
    let w: WaitBody = client.json(Method::POST, "/v1/containers/demo/wait", None).await?;
    output::line(&format!("  wait -> exit {} (destroyed: {})", w.exit_code, w.destroyed));
    Ok(())
}

/// The app may take a moment to listen after its container starts.
async fn fetch_root(client: &Client) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match client.ok(Method::GET, &format!("/v1/containers/{ID}/http/8080/"), None).await {
            Ok(reply) => return Ok(String::from_utf8_lossy(&reply.body).into_owned()),
            Err(ClientError::Api { code, .. })
                if code == "port_not_listening" && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

async fn step<T, E>(
    what: &str,
    work: impl std::future::Future<Output = Result<T, E>>,
) -> anyhow::Result<T>
where
    anyhow::Error: From<E>,
{
    let began = Instant::now();
    let value = work.await?;
    output::line(&format!("{what}: ok ({} ms)", began.elapsed().as_millis()));
    Ok(value)
}

fn tempdir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("wharf-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}
