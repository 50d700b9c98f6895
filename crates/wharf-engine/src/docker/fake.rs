//! `FakeDocker`: an in-memory Docker Engine for tier-0/1 tests, and the written record of what
//! wharf assumes about Docker.
//!
//! Every rule below was checked against Debian's Docker 20.10 (API 1.41); the tier-2 tests in
//! `tests/it/docker.rs` hold the real daemon to the same rules.
//!
//! - **create**: 404 when the image is missing (checked before the name), then 409 when the name
//!   is taken. `container:<x>` is *not* checked at create, but publishing ports in that mode is
//!   a 400.
//! - **start**: 304 when already running. `container:<x>` is checked here: 404 when `x` does not
//!   exist, 409 "cannot join network of a non running container" when it is not running.
//!   Starting an exited container runs it again, with `ExitCode` back at 0.
//! - **kill**: 409 unless running. The container stops only if its process dies of the signal:
//!   SIGKILL always kills (137); for other signals the fake's default app dies with `128 + n`,
//!   and [`FakeDocker::on_signal`] scripts an app that traps or ignores a signal. (On the real
//!   daemon a PID 1 with no handler ignores every signal but SIGKILL.)
//! - **remove** (always forced): 404 when absent; a running container is killed first (137),
//!   which wakes its waiters. Removing the owner of a shared network namespace does not stop
//!   the containers that joined it.
//! - **wait** (`condition=not-running`): answers at once unless running, so waiting on a
//!   container that was created but never started returns 0 immediately.
//! - **inspect**: published ports and the bridge gateway are reported only while running; a
//!   container in another's namespace has neither.
//! - **exec**: 409 unless running.
//!
//! Not modelled: image defaults (`Config.Cmd` is what was passed), pause, restart policies,
//! real processes. Test controls are the inherent methods; a control used on a container that
//! does not exist panics, since that is a broken test rather than a Docker answer.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::{self, BoxStream};
use futures_util::{StreamExt, future};
use tokio::sync::{Semaphore, watch};
use tokio_util::io::ReaderStream;

use self::daemon::{
    Container, Inner, KILLED, State, digest, kind_name, no_such_container, normalize,
};
use super::{
    BridgeInfo, BuildSpec, ContainerInfo, ContainerSpec, ContainerSummary, DockerApi,
    DockerVersion, Error, ExecSession, ExecSpec, ExecState, ImageInfo, LabelledObject, ObjectKind,
    Output, RunState,
};

/// An in-memory Docker daemon. Cloning gives another handle to the same daemon.
#[derive(Clone)]
pub struct FakeDocker {
    inner: Arc<Inner>,
}

/// Which [`DockerApi`] method a call was, for [`FakeDocker::fail_next`] and [`FakeDocker::gate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)] // One variant per `DockerApi` method, named after it.
pub enum Op {
    Version,
    Bridge,
    InspectImage,
    BuildImage,
    CreateContainer,
    StartContainer,
    KillContainer,
    RemoveContainer,
    InspectContainer,
    WaitContainer,
    ListContainers,
    Logs,
    Exec,
    InspectExec,
    UploadArchive,
    DownloadArchive,
    CreateNetwork,
    ListLabelled,
    RemoveObject,
}

/// One recorded call, with its target. `Display` gives a compact line for snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // Fields are the call's arguments.
pub enum Call {
    Version,
    Bridge,
    InspectImage(String),
    BuildImage(String),
    CreateContainer(String),
    StartContainer(String),
    KillContainer { name: String, signal: u8 },
    RemoveContainer(String),
    InspectContainer(String),
    WaitContainer(String),
    ListContainers(Vec<(String, String)>),
    Logs { name: String, follow: bool },
    Exec { container: String, cmd: Vec<String> },
    InspectExec(String),
    UploadArchive { container: String, path: String },
    CreateNetwork(String),
    DownloadArchive { container: String, path: String },
    ListLabelled { kind: ObjectKind, key: String },
    RemoveObject { kind: ObjectKind, id: String },
}

/// What a container's app does when it receives a signal other than SIGKILL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalReaction {
    /// It exits with this code (the default is `128 + signal`).
    Exit(i64),
    /// It keeps running (a trapped or ignored signal).
    Ignore,
}

/// What a scripted exec prints and how it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecScript {
    /// Output chunks, in order.
    pub output: Vec<Output>,
    /// The exit code reported once the output is consumed.
    pub exit_code: i64,
    /// After `output`, copy whatever is written to stdin back as stdout until stdin is shut
    /// down (only when the exec attached stdin).
    pub echo_stdin: bool,
}

/// A handler that decides what each exec does.
pub type ExecHandler = Arc<dyn Fn(&ExecSpec) -> ExecScript + Send + Sync>;

/// Holds calls of one [`Op`] until opened; see [`FakeDocker::gate`]. Dropping it opens it.
#[derive(Debug)]
pub struct Gate {
    shared: Arc<GateShared>,
}

#[derive(Debug)]
struct GateShared {
    /// Closed = open gate; otherwise each permit lets one call through.
    permits: Semaphore,
    /// How many calls have reached the gate so far.
    arrived: watch::Sender<usize>,
}

// === impl FakeDocker ===

impl Default for FakeDocker {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for FakeDocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.lock();
        f.debug_struct("FakeDocker")
            .field("containers", &state.containers.keys().collect::<Vec<_>>())
            .field("images", &state.images.iter().map(|i| &i.tags).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Building the daemon.
impl FakeDocker {
    /// An empty daemon: no images, the bridge of our machines (`172.17.0.0/16`, no IPAM
    /// gateway, W43), and execs answered by [`ExecScript::echo`].
    pub fn new() -> FakeDocker {
        FakeDocker { inner: Arc::new(Inner { state: Mutex::new(State::new()) }) }
    }

    /// Adds an image with no labels (builder style).
    pub fn with_image(self, reference: &str) -> FakeDocker {
        self.add_image(reference, BTreeMap::new());
        self
    }

    /// Adds (or retags) an image with `labels`.
    pub fn add_image(&self, reference: &str, labels: BTreeMap<String, String>) {
        let id = format!("sha256:{}", digest(&[reference.as_bytes()]));
        self.inner.lock().tag_image(&id, &normalize(reference), labels);
    }

    /// Adds a volume or network named `name`.
    pub fn add_object(&self, kind: ObjectKind, name: &str, labels: BTreeMap<String, String>) {
        let object = LabelledObject { kind, id: name.to_owned(), name: name.to_owned(), labels };
        self.inner.lock().objects.insert((kind, name.to_owned()), object);
    }

    /// Replaces what `GET /networks/bridge` answers.
    pub fn set_bridge(&self, bridge: BridgeInfo) {
        self.inner.lock().bridge = bridge;
    }

    /// Decides what every later exec prints and returns.
    pub fn set_exec_handler(
        &self,
        handler: impl Fn(&ExecSpec) -> ExecScript + Send + Sync + 'static,
    ) {
        self.inner.lock().exec_handler = Arc::new(handler);
    }

    /// Sets what `logs` returns for the container named `name` (now or later).
    pub fn set_logs(&self, name: &str, output: Vec<Output>) {
        self.inner.lock().logs.insert(name.to_owned(), output);
    }

    /// Scripts how the app in the container named `name` (now or later) reacts to `signal`.
    pub fn on_signal(&self, name: &str, signal: u8, reaction: SignalReaction) {
        self.inner.lock().reactions.insert((name.to_owned(), signal), reaction);
    }
}

/// Scripting failures and ordering.
impl FakeDocker {
    /// The next call of `op` fails with `err` (after being recorded and passing any gate), with
    /// no effect. Several calls queue up in order.
    pub fn fail_next(&self, op: Op, err: Error) {
        self.inner.lock().failures.entry(op).or_default().push_back(err);
    }

    /// From now on, calls of `op` wait at the returned [`Gate`] until it lets them through.
    pub fn gate(&self, op: Op) -> Gate {
        let shared =
            Arc::new(GateShared { permits: Semaphore::new(0), arrived: watch::Sender::new(0) });
        self.inner.lock().gates.insert(op, Arc::clone(&shared));
        Gate { shared }
    }
}

/// Things that happen to containers outside wharf.
impl FakeDocker {
    /// Puts a file into a container, as if the image had it (e.g. a system CA bundle).
    pub fn put_file(&self, container: &str, path: &str, bytes: impl Into<Bytes>) {
        let mut state = self.inner.lock();
        if let Some(key) = state.key_of(container)
            && let Some(c) = state.containers.get_mut(&key)
        {
            c.files.insert(path.to_owned(), bytes.into());
        }
    }

    /// A file of a container: what was uploaded to it, or put with [`FakeDocker::put_file`].
    pub fn file(&self, container: &str, path: &str) -> Option<Bytes> {
        let state = self.inner.lock();
        let key = state.key_of(container)?;
        state.containers.get(&key)?.files.get(path).cloned()
    }

    /// The app exits by itself with `code`.
    pub fn exit(&self, name: &str, code: i64) {
        let mut state = self.inner.lock();
        let container = state.running_mut(name);
        container.stop(code, false);
    }

    /// The kernel's OOM killer ends the app (exit 137, `OOMKilled`).
    pub fn oom_kill(&self, name: &str) {
        let mut state = self.inner.lock();
        let container = state.running_mut(name);
        container.stop(KILLED, true);
    }

    /// As if `docker rm -f` was run by someone else.
    pub fn remove_behind_our_back(&self, name: &str) {
        let mut state = self.inner.lock();
        let Some(key) = state.key_of(name) else {
            panic!("fake docker: no container named {name}");
        };
        state.remove(&key);
    }
}

/// Looking at what happened.
impl FakeDocker {
    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().calls.clone()
    }

    /// Every call so far as `Display` lines, one per call, for snapshots.
    pub fn call_log(&self) -> String {
        self.inner.lock().calls.iter().map(|c| format!("{c}\n")).collect()
    }

    /// Forgets the calls recorded so far.
    pub fn clear_calls(&self) {
        self.inner.lock().calls.clear();
    }

    /// Every build so far, in order.
    pub fn builds(&self) -> Vec<BuildSpec> {
        self.inner.lock().builds.clone()
    }

    /// The spec a container was created with.
    pub fn spec(&self, name: &str) -> Option<ContainerSpec> {
        let state = self.inner.lock();
        state.key_of(name).map(|key| state.containers[&key].spec.clone())
    }

    /// A container's state, `None` when it does not exist.
    pub fn state(&self, name: &str) -> Option<RunState> {
        let state = self.inner.lock();
        state.key_of(name).map(|key| state.containers[&key].state)
    }

    /// Names of all containers, sorted.
    pub fn container_names(&self) -> Vec<String> {
        self.inner.lock().containers.keys().cloned().collect()
    }

    /// Tags of all images, sorted.
    pub fn image_tags(&self) -> Vec<String> {
        let state = self.inner.lock();
        let mut tags: Vec<String> = state.images.iter().flat_map(|i| i.tags.clone()).collect();
        tags.sort();
        tags
    }

    /// Names of all volumes and networks of `kind`.
    pub fn object_names(&self, kind: ObjectKind) -> Vec<String> {
        let state = self.inner.lock();
        state.objects.keys().filter(|(k, _)| *k == kind).map(|(_, n)| n.clone()).collect()
    }

    /// Records `call`, waits at its gate, then answers a scripted failure if there is one.
    async fn enter(&self, call: Call) -> Result<(), Error> {
        let op = call.op();
        let gate = {
            let mut state = self.inner.lock();
            state.calls.push(call);
            state.gates.get(&op).cloned()
        };
        if let Some(gate) = gate {
            gate.pass().await;
        }
        match self.inner.lock().failures.get_mut(&op).and_then(VecDeque::pop_front) {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    fn logs_stream(&self, name: String, follow: bool) -> BoxStream<'static, Result<Output, Error>> {
        let this = self.clone();
        let head = async move {
            this.enter(Call::Logs { name: name.clone(), follow }).await?;
            let state = this.inner.lock();
            let container = state.get(&name)?;
            let chunks = state.logs.get(&name).cloned().unwrap_or_default();
            let until_stopped = follow.then(|| container.stopped.subscribe());
            Ok((chunks, until_stopped))
        };
        stream::once(head)
            .flat_map(|head| match head {
                Err(e) => stream::iter([Err(e)]).boxed(),
                Ok((chunks, until_stopped)) => stream::iter(chunks.into_iter().map(Ok))
                    .chain(
                        stream::once(wait_stopped(until_stopped))
                            .filter_map(|()| future::ready(None)),
                    )
                    .boxed(),
            })
            .boxed()
    }

    fn session(&self, id: String, spec: &ExecSpec, script: ExecScript) -> ExecSession {
        let chunks = stream::iter(script.output.into_iter().map(Ok));
        let (input, echo): (std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>, _) =
            if script.echo_stdin && spec.stdin {
                let (ours, theirs) = tokio::io::duplex(64 * 1024);
                let echo = ReaderStream::new(theirs).map(|chunk| {
                    chunk.map(Output::Stdout).map_err(|e| Error::Unavailable(e.to_string()))
                });
                (Box::pin(ours), echo.boxed())
            } else {
                (Box::pin(tokio::io::sink()), stream::empty().boxed())
            };
        let this = self.clone();
        let exit_code = script.exit_code;
        let finish_id = id.clone();
        let finish = stream::once(async move {
            if let Some(exec) = this.inner.lock().execs.get_mut(&finish_id) {
                exec.running = false;
                exec.exit_code = Some(exit_code);
            }
        })
        .filter_map(|()| future::ready(None));
        ExecSession { id, output: chunks.chain(echo).chain(finish).boxed(), input }
    }
}

#[async_trait]
impl DockerApi for FakeDocker {
    async fn version(&self) -> Result<DockerVersion, Error> {
        self.enter(Call::Version).await?;
        Ok(DockerVersion { version: "20.10.24+fake".to_owned(), api_version: "1.41".to_owned() })
    }

    async fn bridge(&self) -> Result<BridgeInfo, Error> {
        self.enter(Call::Bridge).await?;
        Ok(self.inner.lock().bridge.clone())
    }

    async fn inspect_image(&self, reference: &str) -> Result<Option<ImageInfo>, Error> {
        self.enter(Call::InspectImage(reference.to_owned())).await?;
        let state = self.inner.lock();
        Ok(state.image(reference).map(|i| ImageInfo {
            id: i.id.clone(),
            labels: i.labels.clone(),
            size: 1 << 20,
        }))
    }

    async fn build_image(
        &self,
        spec: BuildSpec,
        progress: &(dyn for<'a> Fn(&'a str) + Send + Sync),
    ) -> Result<(), Error> {
        self.enter(Call::BuildImage(spec.tag.clone())).await?;
        // Same context and labels, same id: Docker's build cache does the same.
        let labels: String = spec.labels.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        let id = format!("sha256:{}", digest(&[&spec.context, labels.as_bytes()]));
        progress(&format!("Step 1/1 : fake build of {}", spec.tag));
        progress(&format!("Successfully tagged {}", spec.tag));
        let mut state = self.inner.lock();
        state.tag_image(&id, &normalize(&spec.tag), spec.labels.clone());
        state.builds.push(spec);
        Ok(())
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, Error> {
        self.enter(Call::CreateContainer(spec.name.clone())).await?;
        self.inner.lock().create(spec)
    }

    async fn start_container(&self, name: &str) -> Result<(), Error> {
        self.enter(Call::StartContainer(name.to_owned())).await?;
        self.inner.lock().start(name)
    }

    async fn kill_container(&self, name: &str, signal: u8) -> Result<(), Error> {
        self.enter(Call::KillContainer { name: name.to_owned(), signal }).await?;
        self.inner.lock().kill(name, signal)
    }

    async fn remove_container(&self, name: &str) -> Result<(), Error> {
        self.enter(Call::RemoveContainer(name.to_owned())).await?;
        let mut state = self.inner.lock();
        let key = state.key_of(name).ok_or_else(|| no_such_container(name))?;
        state.remove(&key);
        Ok(())
    }

    async fn inspect_container(&self, name: &str) -> Result<ContainerInfo, Error> {
        self.enter(Call::InspectContainer(name.to_owned())).await?;
        let state = self.inner.lock();
        let container = state.get(name)?;
        Ok(container.info(state.gateway()))
    }

    async fn wait_container(&self, name: &str) -> Result<i64, Error> {
        self.enter(Call::WaitContainer(name.to_owned())).await?;
        let mut stopped = self.inner.lock().get(name)?.stopped.subscribe();
        // The sender always holds `Some` before it is dropped (see `State::remove`).
        let code = stopped.wait_for(Option::is_some).await.map_err(|_| no_such_container(name))?;
        Ok(code.unwrap_or(0))
    }

    async fn list_containers(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Vec<ContainerSummary>, Error> {
        let wanted: Vec<(String, String)> =
            labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        self.enter(Call::ListContainers(wanted.clone())).await?;
        let state = self.inner.lock();
        Ok(state
            .containers
            .values()
            .filter(|c| wanted.iter().all(|(k, v)| c.spec.labels.get(k) == Some(v)))
            .map(Container::summary)
            .collect())
    }

    fn logs(&self, name: &str, follow: bool) -> BoxStream<'static, Result<Output, Error>> {
        self.logs_stream(name.to_owned(), follow)
    }

    async fn upload_archive(&self, container: &str, path: &str, tar: Bytes) -> Result<(), Error> {
        self.enter(Call::UploadArchive { container: container.to_owned(), path: path.to_owned() })
            .await?;
        let files = untar(&tar).map_err(|e| Error::Other { status: 400, message: e })?;
        let mut state = self.inner.lock();
        let key = state.key_of(container).ok_or_else(|| no_such_container(container))?;
        let target = state.containers.get_mut(&key).ok_or_else(|| no_such_container(container))?;
        for (name, bytes) in files {
            target.files.insert(join_path(path, &name), bytes);
        }
        Ok(())
    }

    async fn download_archive(
        &self,
        container: &str,
        path: &str,
        _limit: usize,
    ) -> Result<Bytes, Error> {
        self.enter(Call::DownloadArchive {
            container: container.to_owned(),
            path: path.to_owned(),
        })
        .await?;
        let state = self.inner.lock();
        let key = state.key_of(container).ok_or_else(|| no_such_container(container))?;
        let file = state.containers.get(&key).and_then(|c| c.files.get(path)).cloned();
        let bytes = file.ok_or_else(|| {
            Error::NotFound(format!("Could not find the file {path} in container {container}"))
        })?;
        let name = path.rsplit('/').next().unwrap_or(path);
        tar_one(name, &bytes).map_err(|e| Error::Other { status: 500, message: e })
    }

    async fn exec(&self, container: &str, spec: &ExecSpec) -> Result<ExecSession, Error> {
        let call = Call::Exec { container: container.to_owned(), cmd: spec.cmd.clone() };
        self.enter(call).await?;
        let (id, handler) = {
            let mut state = self.inner.lock();
            let target = state.get(container)?;
            if target.state != RunState::Running {
                return Err(Error::Conflict(format!("Container {} is not running", target.id)));
            }
            state.serial += 1;
            let serial = state.serial;
            let id = digest(&[b"exec", &serial.to_be_bytes()]);
            let pid = 10_000 + i64::try_from(serial).unwrap_or(0);
            state.execs.insert(id.clone(), ExecState { running: true, exit_code: None, pid });
            (id, Arc::clone(&state.exec_handler))
        };
        // The handler is test code: call it without holding the lock.
        let script = handler(spec);
        Ok(self.session(id, spec, script))
    }

    async fn inspect_exec(&self, id: &str) -> Result<ExecState, Error> {
        self.enter(Call::InspectExec(id.to_owned())).await?;
        let state = self.inner.lock();
        state
            .execs
            .get(id)
            .copied()
            .ok_or_else(|| Error::NotFound(format!("No such exec instance: {id}")))
    }

    async fn create_network(
        &self,
        name: &str,
        _subnet: ipnet::IpNet,
        labels: &BTreeMap<String, String>,
    ) -> Result<String, Error> {
        self.enter(Call::CreateNetwork(name.to_owned())).await?;
        self.add_object(ObjectKind::Network, name, labels.clone());
        Ok(format!("net-{name}"))
    }

    async fn list_labelled(
        &self,
        kind: ObjectKind,
        key: &str,
    ) -> Result<Vec<LabelledObject>, Error> {
        self.enter(Call::ListLabelled { kind, key: key.to_owned() }).await?;
        Ok(self.inner.lock().labelled(kind, key))
    }

    async fn remove_object(&self, kind: ObjectKind, id: &str) -> Result<(), Error> {
        self.enter(Call::RemoveObject { kind, id: id.to_owned() }).await?;
        let mut state = self.inner.lock();
        match kind {
            ObjectKind::Container => {
                let key = state.key_of(id).ok_or_else(|| no_such_container(id))?;
                state.remove(&key);
                Ok(())
            }
            ObjectKind::Image => state.remove_image(id),
            ObjectKind::Volume | ObjectKind::Network => {
                let key = state
                    .objects
                    .iter()
                    .find(|((k, name), o)| *k == kind && (name == id || o.id == id))
                    .map(|(key, _)| key.clone())
                    .ok_or_else(|| Error::NotFound(format!("no such {}: {id}", kind_name(kind))))?;
                state.objects.remove(&key);
                Ok(())
            }
        }
    }
}

// === impl Call / Op ===

impl Call {
    /// Which method this call was.
    pub fn op(&self) -> Op {
        match self {
            Call::Version => Op::Version,
            Call::Bridge => Op::Bridge,
            Call::InspectImage(_) => Op::InspectImage,
            Call::BuildImage(_) => Op::BuildImage,
            Call::CreateContainer(_) => Op::CreateContainer,
            Call::StartContainer(_) => Op::StartContainer,
            Call::KillContainer { .. } => Op::KillContainer,
            Call::RemoveContainer(_) => Op::RemoveContainer,
            Call::InspectContainer(_) => Op::InspectContainer,
            Call::WaitContainer(_) => Op::WaitContainer,
            Call::ListContainers(_) => Op::ListContainers,
            Call::Logs { .. } => Op::Logs,
            Call::Exec { .. } => Op::Exec,
            Call::InspectExec(_) => Op::InspectExec,
            Call::UploadArchive { .. } => Op::UploadArchive,
            Call::CreateNetwork(_) => Op::CreateNetwork,
            Call::DownloadArchive { .. } => Op::DownloadArchive,
            Call::ListLabelled { .. } => Op::ListLabelled,
            Call::RemoveObject { .. } => Op::RemoveObject,
        }
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Call::Version => write!(f, "version"),
            Call::Bridge => write!(f, "bridge"),
            Call::InspectImage(r) => write!(f, "inspect-image {r}"),
            Call::BuildImage(t) => write!(f, "build {t}"),
            Call::CreateContainer(n) => write!(f, "create {n}"),
            Call::StartContainer(n) => write!(f, "start {n}"),
            Call::KillContainer { name, signal } => write!(f, "kill {name} {signal}"),
            Call::RemoveContainer(n) => write!(f, "remove {n}"),
            Call::InspectContainer(n) => write!(f, "inspect {n}"),
            Call::WaitContainer(n) => write!(f, "wait {n}"),
            Call::ListContainers(labels) => {
                let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "list {}", labels.join(","))
            }
            Call::Logs { name, follow: true } => write!(f, "logs -f {name}"),
            Call::Logs { name, follow: false } => write!(f, "logs {name}"),
            Call::Exec { container, cmd } => write!(f, "exec {container} {}", cmd.join(" ")),
            Call::InspectExec(id) => write!(f, "inspect-exec {id}"),
            Call::CreateNetwork(name) => write!(f, "create-network {name}"),
            Call::UploadArchive { container, path } => {
                write!(f, "upload-archive {container} {path}")
            }
            Call::DownloadArchive { container, path } => {
                write!(f, "download-archive {container} {path}")
            }
            Call::ListLabelled { kind, key } => {
                write!(f, "list-labelled {} {key}", kind_name(*kind))
            }
            Call::RemoveObject { kind, id } => write!(f, "remove-object {} {id}", kind_name(*kind)),
        }
    }
}

// === impl ExecScript ===

impl ExecScript {
    /// Prints nothing and exits with `code`.
    pub fn exit(code: i64) -> ExecScript {
        ExecScript { output: Vec::new(), exit_code: code, echo_stdin: false }
    }

    /// Adds a stdout chunk.
    pub fn stdout(mut self, chunk: impl Into<Bytes>) -> ExecScript {
        self.output.push(Output::Stdout(chunk.into()));
        self
    }

    /// Adds a stderr chunk.
    pub fn stderr(mut self, chunk: impl Into<Bytes>) -> ExecScript {
        self.output.push(Output::Stderr(chunk.into()));
        self
    }

    /// Echoes stdin back on stdout after the scripted output.
    pub fn echo_stdin(mut self) -> ExecScript {
        self.echo_stdin = true;
        self
    }

    /// The default handler: prints the argv joined by spaces and a newline, echoes stdin, and
    /// exits 0.
    pub fn echo(spec: &ExecSpec) -> ExecScript {
        ExecScript::exit(0).stdout(format!("{}\n", spec.cmd.join(" "))).echo_stdin()
    }
}

// === impl Gate ===

impl Gate {
    /// Lets every waiting and later call through.
    pub fn open(&self) {
        self.shared.permits.close();
    }

    /// Lets `n` more calls through.
    pub fn release(&self, n: usize) {
        self.shared.permits.add_permits(n);
    }

    /// Resolves once `n` calls in total have reached the gate.
    pub async fn arrived(&self, n: usize) {
        let mut arrived = self.shared.arrived.subscribe();
        // The sender lives in `self.shared`, so the channel cannot close while we wait.
        let _ = arrived.wait_for(|count| *count >= n).await;
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.open();
    }
}

impl GateShared {
    async fn pass(&self) {
        self.arrived.send_modify(|count| *count += 1);
        // A closed semaphore is an open gate.
        if let Ok(permit) = self.permits.acquire().await {
            permit.forget();
        }
    }
}

// === helpers ===

async fn wait_stopped(until_stopped: Option<watch::Receiver<Option<i64>>>) {
    if let Some(mut stopped) = until_stopped {
        let _ = stopped.wait_for(Option::is_some).await;
    }
}

mod daemon;

#[cfg(test)]
mod tests;

/// The regular files of a tar, by their path inside it.
fn untar(tar: &[u8]) -> Result<Vec<(String, Bytes)>, String> {
    use std::io::Read as _;
    let mut archive = tar::Archive::new(tar);
    let mut files = Vec::new();
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = entry.path().map_err(|e| e.to_string())?.display().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
        files.push((name, Bytes::from(bytes)));
    }
    Ok(files)
}

/// A tar holding one file, as Docker's archive GET answers.
fn tar_one(name: &str, bytes: &[u8]) -> Result<Bytes, String> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, name, bytes).map_err(|e| e.to_string())?;
    builder.into_inner().map(Bytes::from).map_err(|e| e.to_string())
}

/// `dir` + `name`, normalised to one absolute path.
fn join_path(dir: &str, name: &str) -> String {
    let joined = format!("{}/{}", dir.trim_end_matches('/'), name.trim_start_matches("./"));
    let parts: Vec<&str> = joined.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    format!("/{}", parts.join("/"))
}
