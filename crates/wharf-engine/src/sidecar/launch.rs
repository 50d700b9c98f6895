//! Bringing one sidecar up: create it (replacing a leftover of the same name), start it, and
//! wait until it accepts its first `PUT /egress`, which proves its interception is in place
//! (readiness). A start that needs a fresh sidecar and the warm pool's refill both use it.

use std::sync::PoisonError;
use std::time::Duration;

use tokio::time::Instant;
use wharf_wire::control::EgressUpdate;

use super::{Endpoint, best_endpoint};
use crate::Error;
use crate::docker::{self, ContainerInfo, ContainerSpec, DockerApi, RunState};
use crate::engine::Ctx;

/// Why a sidecar did not come up.
#[derive(Debug)]
pub(crate) enum LaunchError {
    /// A Docker call failed.
    Docker(Error),
    /// It started but never became ready, or died; the message says which, with its last words.
    NotReady(String),
}

/// Creates and starts `spec`, then waits for readiness with `update`, within the engine's
/// readiness budget. Returns the endpoint that answered: the sidecar's bridge address when the
/// host reaches it, else the published port.
pub(crate) async fn launch(
    ctx: &Ctx,
    spec: &ContainerSpec,
    token: &str,
    update: &EgressUpdate,
) -> Result<Endpoint, LaunchError> {
    let docker = &*ctx.docker;
    create_replacing(docker, spec).await.map_err(LaunchError::Docker)?;
    let name = &spec.name;
    docker
        .start_container(name)
        .await
        .map_err(|e| LaunchError::Docker(Error::docker("start", name)(e)))?;
    let info = docker
        .inspect_container(name)
        .await
        .map_err(|e| LaunchError::Docker(Error::docker("inspect", name)(e)))?;
    await_ready(ctx, &info, token, update).await
}

/// Creates a container; a leftover of the same name (a crash mid-start) is removed first.
pub(crate) async fn create_replacing(
    docker: &dyn DockerApi,
    spec: &ContainerSpec,
) -> Result<(), Error> {
    match docker.create_container(spec).await {
        Err(docker::Error::Conflict(_)) => {
            tracing::debug!(name = %spec.name, "removing a leftover container of the same name");
            remove(docker, &spec.name).await?;
            docker
                .create_container(spec)
                .await
                .map(drop)
                .map_err(Error::docker("create", &spec.name))
        }
        Err(docker::Error::NotFound(_)) => Err(Error::ImageNotFound { image: spec.image.clone() }),
        other => other.map(drop).map_err(Error::docker("create", &spec.name)),
    }
}

/// Force-removes `name`; gone already is fine; a removal in progress is waited for.
pub(crate) async fn remove(docker: &dyn DockerApi, name: &str) -> Result<(), Error> {
    match docker.remove_container(name).await {
        Ok(()) | Err(docker::Error::NotFound(_)) => Ok(()),
        Err(docker::Error::Conflict(_)) => await_removal(docker, name).await,
        Err(e) => Err(Error::docker("remove", name)(e)),
    }
}

async fn await_removal(docker: &dyn DockerApi, name: &str) -> Result<(), Error> {
    for _ in 0..100 {
        match docker.inspect_container(name).await {
            Err(docker::Error::NotFound(_)) => return Ok(()),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    Err(Error::docker("remove", name)(docker::Error::Conflict(
        "removal did not finish within 10s".to_owned(),
    )))
}

/// Readiness: the first successful `PUT /egress`, retried with backoff until the budget ends
/// or the sidecar dies.
async fn await_ready(
    ctx: &Ctx,
    info: &ContainerInfo,
    token: &str,
    update: &EgressUpdate,
) -> Result<Endpoint, LaunchError> {
    let deadline = Instant::now() + ctx.config.readiness_timeout;
    let mut pause = Duration::from_millis(20);
    loop {
        let ep = best_endpoint(info, token).await.ok_or_else(|| {
            LaunchError::NotReady(format!(
                "started sidecar {} publishes no control port",
                info.name
            ))
        })?;
        let last = match ctx.control.put_egress(&ep, update).await {
            Ok(()) => {
                note_interception(ctx, &ep).await;
                return Ok(ep);
            }
            Err(e) => e,
        };
        if let Some(died) = died(&*ctx.docker, &info.name).await {
            return Err(LaunchError::NotReady(died));
        }
        if Instant::now() + pause > deadline {
            let budget = ctx.config.readiness_timeout;
            return Err(LaunchError::NotReady(format!("not ready after {budget:?}: {last}")));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// Remembers how sidecars intercept, for health.
async fn note_interception(ctx: &Ctx, ep: &Endpoint) {
    match ctx.control.get_state(ep).await {
        Ok(state) => {
            *ctx.interception.lock().unwrap_or_else(PoisonError::into_inner) =
                Some(state.interception);
        }
        Err(e) => tracing::debug!(error = %e, "cannot read the sidecar's state"),
    }
}

/// When the sidecar has exited, its exit code and last log lines.
async fn died(docker: &dyn DockerApi, name: &str) -> Option<String> {
    let info = docker.inspect_container(name).await.ok()?;
    if matches!(info.state, RunState::Running | RunState::Created) {
        return None;
    }
    let tail = crate::instance::log_tail(docker, name, 2048).await;
    Some(format!("sidecar exited with code {}: {}", info.exit_code, tail.trim()))
}
