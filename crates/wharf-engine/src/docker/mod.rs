//! The narrow Docker boundary: only the Engine API calls wharf makes, in wharf's own types.
//!
//! [`DockerApi`] is implemented by [`bollard::BollardDocker`] (the only file that names bollard)
//! and by [`fake::FakeDocker`] (in-memory, records calls, scripts failures) for tier-0/1 tests.
//! Create bodies are built by `crate::spec`, never here.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use tokio::io::AsyncWrite;

pub mod bollard;
pub mod fake;

/// A Docker failure, classified once (in `bollard.rs`) so callers match on kinds, not text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// 404: no such container, image, exec, network or volume.
    #[error("not found: {0}")]
    NotFound(String),
    /// 409: name in use, removal in progress, container not running, …
    #[error("conflict: {0}")]
    Conflict(String),
    /// 304: already started or already stopped.
    #[error("not modified")]
    NotModified,
    /// The daemon could not be reached, or did not answer in time.
    #[error("docker daemon unavailable: {0}")]
    Unavailable(String),
    /// Anything else the daemon answered.
    #[error("docker answered {status}: {message}")]
    Other {
        /// HTTP status (0 when the failure was not an HTTP answer, e.g. bad JSON).
        status: u16,
        /// The daemon's message.
        message: String,
    },
}

/// `GET /version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerVersion {
    /// Engine version, e.g. `20.10.24+dfsg1`.
    pub version: String,
    /// Negotiated API version, e.g. `1.41`.
    pub api_version: String,
}

/// What wharf needs to know about the default bridge network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeInfo {
    /// The IPv4 subnet, e.g. `172.17.0.0/16`.
    pub subnet: Option<ipnet::IpNet>,
    /// `IPAM.Config[].Gateway` as reported; often absent (W43). Do not depend on it.
    pub gateway: Option<IpAddr>,
    /// Whether any subnet is IPv6.
    pub ipv6: bool,
}

/// How a container's network is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkMode {
    /// The default bridge.
    Bridge,
    /// Join another container's network namespace (`container:<name>`).
    Container(String),
    /// A user-defined network, by name (wharf's own fake internets, benchmarks).
    Named(String),
}

/// A container port published on a host address with a port the daemon picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish {
    /// The TCP port inside the container.
    pub container_port: u16,
    /// The host address to bind, e.g. `127.0.0.1`.
    pub host_ip: IpAddr,
}

/// cgroup limits.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Resources {
    /// CPU quota in billionths of a CPU (`NanoCpus`), 0 for none.
    pub nano_cpus: i64,
    /// Memory limit in bytes, 0 for none.
    pub memory_bytes: i64,
}

/// Everything wharf sets on `POST /containers/create`.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    /// The container name.
    pub name: String,
    /// The image reference.
    pub image: String,
    /// `Entrypoint`, when overridden.
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd`, when overridden.
    pub cmd: Option<Vec<String>>,
    /// `Env`, `NAME=VALUE` entries in order (later entries win in Docker).
    pub env: Vec<String>,
    /// Docker labels: ownership first (see `crate::labels`).
    pub labels: BTreeMap<String, String>,
    /// Network mode.
    pub network: NetworkMode,
    /// Published ports.
    pub publish: Vec<Publish>,
    /// `HostConfig.CapAdd`.
    pub cap_add: Vec<String>,
    /// `HostConfig.CapDrop`.
    pub cap_drop: Vec<String>,
    /// `HostConfig.ExtraHosts`, e.g. `host.docker.internal:host-gateway`.
    pub extra_hosts: Vec<String>,
    /// `HostConfig.Dns`.
    pub dns: Vec<String>,
    /// `HostConfig.Sysctls`.
    pub sysctls: BTreeMap<String, String>,
    /// cgroup limits.
    pub resources: Resources,
}

/// Docker's `State.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Created, never started.
    Created,
    /// Running.
    Running,
    /// Paused.
    Paused,
    /// Being restarted by a restart policy.
    Restarting,
    /// Being removed.
    Removing,
    /// Exited.
    Exited,
    /// Dead (removal failed half-way).
    Dead,
}

/// `GET /containers/{name}/json`, reduced to what wharf reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    /// Full container id.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// `Config.Image`: the reference given at create.
    pub image: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// `Config.Cmd`.
    pub cmd: Vec<String>,
    /// State.
    pub state: RunState,
    /// `State.ExitCode`.
    pub exit_code: i64,
    /// `State.OOMKilled`.
    pub oom_killed: bool,
    /// Host addresses of published ports, keyed by container TCP port.
    pub published: BTreeMap<u16, Vec<SocketAddr>>,
    /// `NetworkSettings.Gateway` (bridge containers only).
    pub gateway: Option<IpAddr>,
    /// The container's address on its first network, while it runs.
    pub ip: Option<IpAddr>,
}

/// An entry of `GET /containers/json?all=true`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSummary {
    /// Full container id.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// State.
    pub state: RunState,
}

/// What kind of Docker object, for label-based listing and removal (gc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    /// A container.
    Container,
    /// A volume.
    Volume,
    /// A network.
    Network,
    /// An image.
    Image,
}

/// A labelled object of any kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledObject {
    /// Its kind.
    pub kind: ObjectKind,
    /// Id (containers, networks, images) or name (volumes).
    pub id: String,
    /// A name for people (container name, image tag, volume name).
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// `GET /images/{ref}/json`, reduced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// Image id.
    pub id: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Size in bytes.
    pub size: i64,
}

/// `POST /build` with an in-memory tar context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSpec {
    /// The tag to give the image.
    pub tag: String,
    /// Image labels.
    pub labels: BTreeMap<String, String>,
    /// A tar archive holding a `Dockerfile` and its files.
    pub context: Bytes,
}

/// `POST /containers/{name}/exec` + start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecSpec {
    /// argv; run directly, without a shell (W22).
    pub cmd: Vec<String>,
    /// Extra `NAME=VALUE` entries.
    pub env: Vec<String>,
    /// Working directory, when set.
    pub cwd: Option<String>,
    /// User, when set.
    pub user: Option<String>,
    /// Attach stdin.
    pub stdin: bool,
    /// Allocate a TTY of `(cols, rows)`.
    pub tty: Option<(u16, u16)>,
}

/// One chunk of exec or log output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// From stdout (or the TTY).
    Stdout(Bytes),
    /// From stderr.
    Stderr(Bytes),
}

/// A running exec: its output stream and, when asked for, its stdin.
pub struct ExecSession {
    /// The exec id, for inspect and resize.
    pub id: String,
    /// Output until the process ends.
    pub output: BoxStream<'static, Result<Output, Error>>,
    /// stdin; shut it down to send EOF.
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
}

impl fmt::Debug for ExecSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecSession").field("id", &self.id).finish_non_exhaustive()
    }
}

/// `GET /exec/{id}/json`, reduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecState {
    /// Still running.
    pub running: bool,
    /// Exit code, once it ended.
    pub exit_code: Option<i64>,
    /// Host pid (0 when unknown).
    pub pid: i64,
}

/// The Docker Engine calls wharf makes.
///
/// Every method maps 404 to [`Error::NotFound`], 409 to [`Error::Conflict`] and transport
/// failures to [`Error::Unavailable`].
#[async_trait]
pub trait DockerApi: Send + Sync + fmt::Debug + 'static {
    /// `GET /version`.
    async fn version(&self) -> Result<DockerVersion, Error>;
    /// `GET /networks/bridge`.
    async fn bridge(&self) -> Result<BridgeInfo, Error>;

    /// `GET /images/{reference}/json`; `Ok(None)` when absent.
    async fn inspect_image(&self, reference: &str) -> Result<Option<ImageInfo>, Error>;
    /// `POST /build`; `progress` receives each line of build output.
    async fn build_image(
        &self,
        spec: BuildSpec,
        // Spelled out: `#[async_trait]` would otherwise name the elided lifetime, and the
        // callback could then only take lines that outlive the call.
        progress: &(dyn for<'a> Fn(&'a str) + Send + Sync),
    ) -> Result<(), Error>;

    /// `POST /containers/create`; returns the container id.
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, Error>;
    /// `POST /containers/{name}/start`. Already started is [`Error::NotModified`].
    async fn start_container(&self, name: &str) -> Result<(), Error>;
    /// `POST /containers/{name}/kill?signal=…`. Not running is [`Error::Conflict`].
    async fn kill_container(&self, name: &str, signal: u8) -> Result<(), Error>;
    /// `DELETE /containers/{name}?force=true&v=true`. Gone already is [`Error::NotFound`].
    async fn remove_container(&self, name: &str) -> Result<(), Error>;
    /// `GET /containers/{name}/json`.
    async fn inspect_container(&self, name: &str) -> Result<ContainerInfo, Error>;
    /// `POST /containers/{name}/wait?condition=not-running`: the exit code, once it stops.
    async fn wait_container(&self, name: &str) -> Result<i64, Error>;
    /// `GET /containers/json?all=true` filtered by `key=value` labels (all must match).
    async fn list_containers(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Vec<ContainerSummary>, Error>;
    /// `GET /containers/{name}/logs` with stdout and stderr.
    fn logs(&self, name: &str, follow: bool) -> BoxStream<'static, Result<Output, Error>>;

    /// `PUT /containers/{name}/archive?path=…`: unpacks the tar `tar` at directory `path`.
    /// Works on a created container that was never started.
    async fn upload_archive(&self, container: &str, path: &str, tar: Bytes) -> Result<(), Error>;
    /// `GET /containers/{name}/archive?path=…`: a tar holding `path`; [`Error::NotFound`] when
    /// `path` does not exist. At most `limit` bytes are read.
    async fn download_archive(
        &self,
        container: &str,
        path: &str,
        limit: usize,
    ) -> Result<Bytes, Error>;

    /// Creates and starts an attached exec.
    async fn exec(&self, container: &str, spec: &ExecSpec) -> Result<ExecSession, Error>;
    /// `GET /exec/{id}/json`.
    async fn inspect_exec(&self, id: &str) -> Result<ExecState, Error>;

    /// `POST /networks/create`: a bridge network named `name` on `subnet`; returns its id.
    async fn create_network(
        &self,
        name: &str,
        subnet: ipnet::IpNet,
        labels: &BTreeMap<String, String>,
    ) -> Result<String, Error>;

    /// Lists objects of `kind` that carry label `key` (any value).
    async fn list_labelled(
        &self,
        kind: ObjectKind,
        key: &str,
    ) -> Result<Vec<LabelledObject>, Error>;
    /// Removes an object by id (or name): a container as [`DockerApi::remove_container`] does,
    /// an image without force (in use is [`Error::Conflict`]).
    async fn remove_object(&self, kind: ObjectKind, id: &str) -> Result<(), Error>;
}
