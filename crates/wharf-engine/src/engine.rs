//! [`Engine`]: the Container API over Docker. **API boundary** for the daemon.
//!
//! It owns one actor per container slot (`crate::instance`), the engine lock, the egress
//! listener and the engine-wide context the actors share.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use crate::docker::{BridgeInfo, DockerApi, DockerVersion, Output};
use crate::egress::{self, DenyList, EgressListener, Target};
use crate::events::{Event, EventBus};
use crate::images::ImageBuilder;
use crate::instance::{ActivityGuard, Command, InstanceHandle, Snapshot, collect_exec};
use crate::io_util::BoxIo;
use crate::labels::Owner;
use crate::lifecycle::{Exit, Status};
use crate::lock::EngineLock;
use crate::metrics::Metrics;
use crate::params::{AppPort, ContainerId, ExecParams, Labels, Signal, StartParams};
use crate::persist::Store;
use crate::pool::{self, Pool};
use crate::sidecar::{ControlError, SidecarControl};
use crate::{EngineConfig, Error, ExecOutput, adopt, spec};

/// What every instance actor shares.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) docker: Arc<dyn DockerApi>,
    pub(crate) control: Arc<dyn SidecarControl>,
    pub(crate) images: ImageBuilder,
    pub(crate) config: EngineConfig,
    pub(crate) lock_path: PathBuf,
    pub(crate) bridge: BridgeInfo,
    pub(crate) egress_port: u16,
    pub(crate) events: Arc<EventBus>,
    /// The egress listener's shared state: sidecar tokens, the egress log.
    pub(crate) egress: Arc<egress::Shared>,
    /// How the latest sidecar intercepts traffic (`tproxy`, `redirect`), for health.
    pub(crate) interception: Mutex<Option<String>>,
    pub(crate) metrics: Metrics,
    pub(crate) store: Store,
    /// Ready sidecars no app has claimed yet.
    pub(crate) pool: Arc<Pool>,
    /// Each image's system CA bundle (path and content), by image id: `None` when it has none.
    pub(crate) bundles: Mutex<HashMap<String, Option<(&'static str, bytes::Bytes)>>>,
}

impl Ctx {
    pub(crate) fn owner(&self) -> Owner<'_> {
        Owner { engine: self.config.name.as_str(), lock: &self.lock_path }
    }
}

/// The container engine.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    ctx: Arc<Ctx>,
    instances: Mutex<HashMap<ContainerId, InstanceHandle>>,
    docker_version: DockerVersion,
    egress: EgressListener,
    /// The warm pool's refill task.
    refill: Mutex<Option<tokio::task::JoinHandle<()>>>,
    _lock: EngineLock,
}

/// `GET /v1/health`.
#[derive(Debug, Clone)]
pub struct Health {
    /// wharf's version.
    pub version: &'static str,
    /// The daemon's version, or why it could not be reached.
    pub docker: Result<DockerVersion, String>,
    /// The sidecar image reference.
    pub sidecar_image: String,
    /// How sidecars intercept traffic: `tproxy` or `redirect`, as the latest sidecar probed.
    pub interception: String,
    /// The engine instance name.
    pub engine: String,
    /// Where the egress listener accepts sidecars.
    pub egress_listener: std::net::SocketAddr,
}

/// One slot, for `status` and `list`.
#[derive(Debug, Clone)]
pub struct ContainerView {
    /// The id.
    pub id: ContainerId,
    /// The snapshot.
    pub snapshot: Snapshot,
}

impl Engine {
    /// Takes the engine lock, reads the daemon, binds the egress listener and adopts what this
    /// engine left running before a crash.
    pub async fn new(
        config: EngineConfig,
        docker: Arc<dyn DockerApi>,
        control: Arc<dyn SidecarControl>,
    ) -> Result<Engine, Error> {
        let lock_path = config.lock_path();
        let lock = EngineLock::acquire(config.name.as_str(), &lock_path)?;
        let docker_version = docker.version().await.map_err(Error::docker("version", "daemon"))?;
        let bridge = docker.bridge().await.map_err(Error::docker("inspect network", "bridge"))?;
        let events = Arc::new(EventBus::new());
        let deny = DenyList::new(
            &bridge
                .subnet
                .into_iter()
                .chain(config.passthrough_deny.iter().copied())
                .collect::<Vec<_>>(),
        );
        let egress =
            EgressListener::bind(spec::bridge_gateway(&bridge), deny, Arc::clone(&events)).await?;
        let records = config.records_dir();
        let store = Store::open(&records).map_err(|e| Error::State {
            path: records.display().to_string(),
            message: e.to_string(),
        })?;
        let pool = Arc::new(Pool::new(config.pool_min, config.pool_max, config.warm_ttl));
        let ctx = Arc::new(Ctx {
            pool: Arc::clone(&pool),
            images: ImageBuilder::new(docker.clone()),
            docker,
            control,
            config,
            lock_path,
            bridge,
            egress_port: egress.addr().port(),
            events,
            egress: Arc::clone(egress.shared()),
            interception: Mutex::new(None),
            metrics: Metrics::default(),
            store,
            bundles: Mutex::new(HashMap::new()),
        });
        let adopted = adopt::adopt(&ctx).await?;
        let instances = adopted
            .into_iter()
            .map(|(id, a)| (id.clone(), InstanceHandle::spawn(ctx.clone(), id, Some(a))))
            .collect();
        let refill = pool
            .enabled()
            .then(|| tokio::spawn(pool::refill(Arc::clone(&pool), Arc::downgrade(&ctx))));
        let inner = Inner {
            ctx,
            instances: Mutex::new(instances),
            docker_version,
            egress,
            refill: Mutex::new(refill),
            _lock: lock,
        };
        Ok(Engine { inner: Arc::new(inner) })
    }

    /// Starts `id`. 409-style [`Error::AlreadyRunning`] when it runs.
    pub async fn start(&self, id: &ContainerId, params: StartParams) -> Result<(), Error> {
        self.handle(id).call(|r| Command::Start(Box::new(params), r)).await
    }

    /// Destroys `id`; fine when nothing runs.
    pub async fn destroy(&self, id: &ContainerId) -> Result<(), Error> {
        match self.existing(id) {
            Some(handle) => handle.call(Command::Destroy).await,
            None => Ok(()),
        }
    }

    /// Sends `signal` to the app.
    pub async fn signal(&self, id: &ContainerId, signal: Signal) -> Result<(), Error> {
        self.running_handle(id)?.call(|r| Command::Signal(signal, r)).await
    }

    /// Replaces the labels of a running container.
    pub async fn set_labels(&self, id: &ContainerId, labels: Labels) -> Result<(), Error> {
        self.running_handle(id)?.call(|r| Command::SetLabels(labels, r)).await
    }

    /// Stops the container after `after` without connections or execs.
    pub async fn set_inactivity_timeout(
        &self,
        id: &ContainerId,
        after: std::time::Duration,
    ) -> Result<(), Error> {
        self.handle(id).call(|r| Command::SetInactivityTimeout(after, r)).await
    }

    /// Upserts an egress mapping; allowed before start (it applies at the next start).
    pub async fn set_egress(
        &self,
        id: &ContainerId,
        mapping: wharf_policy::Mapping<Target>,
    ) -> Result<(), Error> {
        self.handle(id).call(|r| Command::SetEgress(Box::new(mapping), r)).await
    }

    /// The egress mappings of `id`, in order, and its internet flag.
    pub fn egress(&self, id: &ContainerId) -> (Vec<wharf_policy::Mapping<Target>>, bool) {
        match self.existing(id) {
            Some(h) => {
                let policy = h.policy();
                let policy = policy.read().unwrap_or_else(PoisonError::into_inner);
                (policy.table.mappings().to_vec(), policy.internet)
            }
            None => (Vec::new(), false),
        }
    }

    /// What would happen to a connection from `id` to `host:port` with `protocol`.
    pub fn why(
        &self,
        id: &ContainerId,
        host: &str,
        port: u16,
        protocol: wharf_policy::Protocol,
    ) -> egress::why::Why {
        let policy = self.existing(id).map(|h| h.policy()).unwrap_or_default();
        let policy = policy.read().unwrap_or_else(PoisonError::into_inner);
        egress::why::explain(&policy, host, port, protocol)
    }

    /// The recent egress and DNS events of `id`, oldest first.
    pub fn egress_log(&self, id: &ContainerId) -> Vec<Event> {
        self.inner.ctx.egress.log_of(id)
    }

    /// Waits until the current run ends (after every call queued before this one).
    pub async fn wait(&self, id: &ContainerId) -> Result<Exit, Error> {
        let handle = self.existing(id).ok_or_else(|| Error::NotStarted(id.clone()))?;
        handle.barrier().await?;
        let mut rx = handle.watch();
        let snap = rx
            .wait_for(|s| s.status != Status::Running)
            .await
            .map_err(|_| Error::ShuttingDown)?
            .clone();
        snap.status.exit().ok_or_else(|| Error::NotStarted(id.clone()))
    }

    /// Runs a command to its end.
    pub async fn exec(&self, id: &ContainerId, params: ExecParams) -> Result<ExecOutput, Error> {
        let handle = self.running_handle(id)?;
        let _active = handle.activity().guard();
        let combined = params.combined_output;
        let session = handle.call(|r| Command::Exec(params, r)).await?;
        let ctx = &self.inner.ctx;
        collect_exec(&*ctx.docker, session, combined, ctx.config.max_exec_output).await
    }

    /// A byte stream to the app's `port`, through the sidecar. The guard keeps the container
    /// "active" for the inactivity timeout; hold it as long as the stream.
    pub async fn connect_port(
        &self,
        id: &ContainerId,
        port: AppPort,
    ) -> Result<(BoxIo, ActivityGuard), Error> {
        let (endpoint, guard, _run) = self.port_access(id).await?;
        Metrics::inc(&self.inner.ctx.metrics.port_connects);
        match self.inner.ctx.control.connect(&endpoint, port).await {
            Ok(io) => Ok((io, guard)),
            Err(ControlError::Rejected { status: 400, .. }) => {
                Err(Error::PortNotListening { port: port.number() })
            }
            Err(e) => Err(Error::sidecar(id, &e)),
        }
    }

    /// Marks `id` active for one exchange over a connection opened earlier (the HTTP proxy's
    /// pooled tunnels), after every call queued before this one; `NotRunning` when it does not
    /// run. Hold the guard as long as the exchange. Also returns the current run, so pooled
    /// connections of an earlier run are not reused.
    pub async fn port_guard(&self, id: &ContainerId) -> Result<(ActivityGuard, u64), Error> {
        self.port_access(id).await.map(|(_, guard, run)| (guard, run))
    }

    /// The running sidecar's endpoint, an activity guard and the run, after the queue.
    async fn port_access(
        &self,
        id: &ContainerId,
    ) -> Result<(crate::sidecar::Endpoint, ActivityGuard, u64), Error> {
        let handle = self.existing(id).ok_or_else(|| Error::NotRunning(id.clone()))?;
        handle.barrier().await?;
        let snap = handle.snapshot();
        let (Status::Running, Some(endpoint)) = (snap.status, snap.sidecar) else {
            return Err(Error::NotRunning(id.clone()));
        };
        Ok((endpoint, handle.activity().guard(), snap.run))
    }

    /// The app's stdout and stderr.
    pub fn logs(
        &self,
        id: &ContainerId,
        follow: bool,
    ) -> Result<BoxStream<'static, Result<Output, Error>>, Error> {
        let name = self
            .existing(id)
            .and_then(|h| h.snapshot().app_container)
            .ok_or_else(|| Error::NoAppContainer(id.clone()))?;
        let stream = self.inner.ctx.docker.logs(&name, follow);
        Ok(stream.map(move |r| r.map_err(Error::docker("logs", &name))).boxed())
    }

    /// The slot `id`, whether or not it ever started.
    pub fn status(&self, id: &ContainerId) -> ContainerView {
        let snapshot = self.existing(id).map_or_else(Snapshot::empty, |h| h.snapshot());
        ContainerView { id: id.clone(), snapshot }
    }

    /// The slots that have an app container (running, or exited and not destroyed).
    pub fn list(&self) -> Vec<ContainerView> {
        let mut views: Vec<ContainerView> = self
            .lock_instances()
            .iter()
            .map(|(id, h)| ContainerView { id: id.clone(), snapshot: h.snapshot() })
            .filter(|v| v.snapshot.app_container.is_some())
            .collect();
        views.sort_by(|a, b| a.id.cmp(&b.id));
        views
    }

    /// Health: versions, the sidecar image, the interception mode.
    pub async fn health(&self) -> Health {
        let ctx = &self.inner.ctx;
        Health {
            version: env!("CARGO_PKG_VERSION"),
            docker: ctx.docker.version().await.map_err(|e| e.to_string()),
            sidecar_image: ctx.config.sidecar_image.reference.clone(),
            interception: ctx
                .interception
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
                .unwrap_or_else(|| "unknown (no sidecar has started yet)".to_owned()),
            engine: ctx.config.name.to_string(),
            egress_listener: self.inner.egress.addr(),
        }
    }

    /// The daemon version read at start.
    pub fn docker_version(&self) -> &DockerVersion {
        &self.inner.docker_version
    }

    /// Lifecycle events from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.inner.ctx.events.subscribe()
    }

    /// Prometheus text.
    pub fn metrics(&self) -> String {
        let running =
            self.lock_instances().values().filter(|h| h.snapshot().status.is_running()).count();
        self.inner.ctx.metrics.render(running, self.pool_sizes())
    }

    /// The engine's name.
    pub fn name(&self) -> &str {
        self.inner.ctx.config.name.as_str()
    }

    /// Ends every actor; removes their containers when the config says to reap.
    pub async fn shutdown(&self) {
        let reap = self.inner.ctx.config.reap_on_shutdown;
        let handles: Vec<InstanceHandle> = self.lock_instances().drain().map(|(_, h)| h).collect();
        let ctx = &self.inner.ctx;
        // The pool holds nothing after shutdown, reaping or not: no app depends on it.
        let pool = async {
            ctx.pool.drain(ctx).await;
            let refill = self.inner.refill.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(refill) = refill {
                let _ = refill.await;
            }
        };
        let actors = futures_util::future::join_all(handles.iter().map(|h| h.shutdown(reap)));
        tokio::join!(pool, actors);
    }

    /// Idle sidecars in the warm pool, and how many it aims at.
    pub fn pool_sizes(&self) -> (usize, usize) {
        self.inner.ctx.pool.sizes()
    }

    /// Upstream DNS servers handed to sidecars.
    pub fn upstream_dns(&self) -> &[IpAddr] {
        &self.inner.ctx.config.upstream_dns
    }

    fn handle(&self, id: &ContainerId) -> InstanceHandle {
        let mut map = self.lock_instances();
        map.entry(id.clone())
            .or_insert_with(|| InstanceHandle::spawn(self.inner.ctx.clone(), id.clone(), None))
            .clone()
    }

    fn existing(&self, id: &ContainerId) -> Option<InstanceHandle> {
        self.lock_instances().get(id).cloned()
    }

    /// The handle of a slot that runs now; verbs re-check in their turn.
    fn running_handle(&self, id: &ContainerId) -> Result<InstanceHandle, Error> {
        self.existing(id).ok_or_else(|| Error::NotRunning(id.clone()))
    }

    fn lock_instances(&self) -> std::sync::MutexGuard<'_, HashMap<ContainerId, InstanceHandle>> {
        self.inner.instances.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
