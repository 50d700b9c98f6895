//! The bench's own Docker objects: a network of its own with the upstream server and the
//! direct-baseline client on it, both plain test-app containers; and the two app containers
//! the engine runs behind sidecars. Everything is labelled as the in-process engine's
//! (`dev.wharf.role=helper`), so that `wharf gc` collects it if the bench is killed, and
//! [`Fixture::teardown`] removes it all otherwise.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use http::Method;
use serde_json::json;
use tokio::time::Instant;
use wharf_engine::docker::{self, ContainerSpec, DockerApi, NetworkMode, ObjectKind, Resources};
use wharf_engine::labels::{self, Owner, Role};

use super::load;
use crate::client::Client;

/// The test app's HTTP port.
pub(super) const APP_PORT: u16 = 8080;
/// How long a container may take to answer its first request.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A container and where the host reaches its app.
#[derive(Debug, Clone)]
pub(super) struct Container {
    /// The full Docker id, for its CPU time.
    pub(super) id: String,
    /// The app's address (for engine containers: the sidecar's bridge address, whose network
    /// namespace the app shares).
    pub(super) addr: SocketAddr,
}

/// An app container the engine runs behind a sidecar.
#[derive(Debug, Clone)]
pub(super) struct Sidecarred {
    /// The client-chosen id.
    pub(super) id: String,
    /// The app container.
    pub(super) app: Container,
    /// The sidecar container's full id.
    pub(super) sidecar_id: String,
    /// The sidecar's Docker name.
    pub(super) sidecar_name: String,
}

/// What the bench created, to remove at the end.
#[derive(Debug)]
pub(super) struct Fixture {
    docker: Arc<dyn DockerApi>,
    labels: BTreeMap<String, String>,
    prefix: String,
    engine: String,
    created: Mutex<Created>,
}

#[derive(Debug, Default)]
struct Created {
    containers: Vec<String>,
    network: Option<String>,
}

/// The bench's network.
#[derive(Debug, Clone)]
pub(super) struct Network {
    /// Its name.
    pub(super) name: String,
    /// Its subnet, as CIDR.
    pub(super) subnet: String,
}

// === impl Fixture ===

impl Fixture {
    /// A fixture whose objects belong to the engine `owner`.
    pub(super) fn new(docker: Arc<dyn DockerApi>, owner: Owner<'_>) -> Fixture {
        Fixture {
            docker,
            labels: owner.labels(Role::Helper, None),
            prefix: format!("wharf-bench-{}", std::process::id()),
            engine: owner.engine.to_owned(),
            created: Mutex::new(Created::default()),
        }
    }

    /// The Docker client.
    pub(super) fn docker(&self) -> &dyn DockerApi {
        &*self.docker
    }

    fn created(&self) -> std::sync::MutexGuard<'_, Created> {
        self.created.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates the bench's network on the first free /24 of a few in 10.231.0.0/16.
    pub(super) async fn network(&self) -> anyhow::Result<Network> {
        let name = format!("{}-net", self.prefix);
        let first = std::process::id() % 200;
        let mut last = None;
        for k in 0..8 {
            let subnet = format!("10.231.{}.0/24", (first + k * 7) % 250);
            match self.docker.create_network(&name, subnet.parse()?, &self.labels).await {
                Ok(id) => {
                    self.created().network = Some(id);
                    return Ok(Network { name, subnet });
                }
                Err(e @ docker::Error::Unavailable(_)) => return Err(e.into()),
                // Most likely the subnet overlaps one in use: try the next.
                Err(e) => last = Some(e),
            }
        }
        Err(anyhow!(
            "cannot create a network for the bench: {}",
            last.map(|e| e.to_string()).unwrap_or_default()
        ))
    }

    /// Starts a plain test-app container `what` on `network` (no sidecar) and waits for its app.
    pub(super) async fn plain(
        &self,
        what: &str,
        image: &str,
        network: &Network,
    ) -> anyhow::Result<Container> {
        let name = format!("{}-{what}", self.prefix);
        let spec = self.spec(&name, image, NetworkMode::Named(network.name.clone()));
        self.created().containers.push(name.clone());
        let id =
            self.docker.create_container(&spec).await.with_context(|| format!("create {name}"))?;
        self.docker.start_container(&name).await.with_context(|| format!("start {name}"))?;
        let info = self.docker.inspect_container(&name).await?;
        let ip = info.ip.ok_or_else(|| anyhow!("{name} has no address on {}", network.name))?;
        let addr = SocketAddr::new(ip, APP_PORT);
        ready(addr).await.with_context(|| format!("the test app in {name}"))?;
        Ok(Container { id, addr })
    }

    /// Starts app `id` from `image` through the engine, with the internet on, and waits for it.
    pub(super) async fn sidecarred(
        &self,
        client: &Client,
        id: &str,
        image: &str,
    ) -> anyhow::Result<Sidecarred> {
        let body = json!({"image": image, "enableInternet": true, "labels": {"bench": "egress"}});
        client.ok(Method::POST, &format!("/v1/containers/{id}/start"), Some(&body)).await?;
        let owned = self
            .docker
            .list_containers(&[(labels::ENGINE, self.engine.as_str()), (labels::CONTAINER, id)])
            .await?;
        let find = |role: Role| {
            owned
                .iter()
                .find(|c| labels::role_of(&c.labels) == Some(role))
                .ok_or_else(|| anyhow!("the engine made no {} container for {id}", role.as_str()))
        };
        let (app, sidecar) = (find(Role::App)?, find(Role::Sidecar)?);
        let info = self.docker.inspect_container(&sidecar.name).await?;
        let ip: IpAddr = info.ip.ok_or_else(|| anyhow!("the sidecar of {id} has no address"))?;
        let addr = SocketAddr::new(ip, APP_PORT);
        ready(addr).await.with_context(|| format!("the test app of {id}"))?;
        Ok(Sidecarred {
            id: id.to_owned(),
            app: Container { id: app.id.clone(), addr },
            sidecar_id: sidecar.id.clone(),
            sidecar_name: sidecar.name.clone(),
        })
    }

    /// One bare `docker create` + `start` of `image` on the default bridge, timed, then removed:
    /// the floor under any engine's start.
    pub(super) async fn bare_cycle(&self, what: &str, image: &str) -> anyhow::Result<Duration> {
        let name = format!("{}-{what}", self.prefix);
        let spec = self.spec(&name, image, NetworkMode::Bridge);
        self.created().containers.push(name.clone());
        let began = Instant::now();
        self.docker.create_container(&spec).await.with_context(|| format!("create {name}"))?;
        self.docker.start_container(&name).await.with_context(|| format!("start {name}"))?;
        let took = began.elapsed();
        self.docker.remove_container(&name).await.with_context(|| format!("remove {name}"))?;
        self.created().containers.retain(|c| *c != name);
        Ok(took)
    }

    /// A plain container of `image` on `network`, with the bench's labels.
    fn spec(&self, name: &str, image: &str, network: NetworkMode) -> ContainerSpec {
        ContainerSpec {
            name: name.to_owned(),
            image: image.to_owned(),
            entrypoint: None,
            cmd: None,
            env: Vec::new(),
            labels: self.labels.clone(),
            network,
            publish: Vec::new(),
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            extra_hosts: Vec::new(),
            dns: Vec::new(),
            sysctls: BTreeMap::new(),
            resources: Resources::default(),
        }
    }

    /// Removes the containers, then the network; returns what could not be removed.
    pub(super) async fn teardown(&self) -> Vec<String> {
        let created = std::mem::take(&mut *self.created());
        let mut problems = Vec::new();
        for name in created.containers {
            match self.docker.remove_container(&name).await {
                Ok(()) | Err(docker::Error::NotFound(_)) => {}
                Err(e) => problems.push(format!("container {name}: {e}")),
            }
        }
        if let Some(id) = created.network {
            match self.docker.remove_object(ObjectKind::Network, &id).await {
                Ok(()) | Err(docker::Error::NotFound(_)) => {}
                Err(e) => problems.push(format!("network {id}: {e}")),
            }
        }
        problems
    }

    /// Containers and networks of the bench's engine still present.
    pub(super) async fn leftovers(&self) -> anyhow::Result<Vec<String>> {
        let mut left: Vec<String> = self
            .docker
            .list_containers(&[(labels::ENGINE, self.engine.as_str())])
            .await?
            .into_iter()
            .map(|c| format!("container {}", c.name))
            .collect();
        let networks = self.docker.list_labelled(ObjectKind::Network, labels::ENGINE).await?;
        left.extend(
            networks
                .into_iter()
                .filter(|n| n.labels.get(labels::ENGINE) == Some(&self.engine))
                .map(|n| format!("network {}", n.name)),
        );
        Ok(left)
    }
}

/// Waits until the test app at `addr` answers `GET /`.
async fn ready(addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let last = match load::get(addr, "/", Duration::from_secs(2)).await {
            Ok((status, _)) if status.is_success() => return Ok(()),
            Ok((status, _)) => format!("answered {status}"),
            Err(e) => format!("{e:#}"),
        };
        if Instant::now() >= deadline {
            bail!("no answer at {addr} within {READY_TIMEOUT:?}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
