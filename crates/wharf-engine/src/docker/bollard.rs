//! The real [`DockerApi`]: the Docker Engine API through bollard. The only file that names bollard.
//!
//! Everything bollard returns is external input: nothing here unwraps it. Errors are classified
//! once, in `classify`. Two bollard behaviours shape this file:
//!
//! - bollard treats `304 Not Modified` as success, so [`DockerApi::start_container`] inspects
//!   first and reports an already running container as [`Error::NotModified`] itself;
//! - bollard's request timeout covers only the response headers, so long waits (`wait`, `logs`
//!   with follow, exec output) are not cut off by it. Docker flushes those headers at once.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum,
    ContainerSummaryStateEnum, ExecConfig, HostConfig, Ipam, IpamConfig, NetworkCreateRequest,
    PortBinding, PortMap, RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    KillContainerOptionsBuilder, ListContainersOptionsBuilder, ListImagesOptionsBuilder,
    ListNetworksOptionsBuilder, ListVolumesOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder, RemoveVolumeOptionsBuilder,
    ResizeExecOptionsBuilder, UploadToContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use bollard::{API_DEFAULT_VERSION, Docker};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, future};

use super::{
    BridgeInfo, BuildSpec, ContainerInfo, ContainerSpec, ContainerSummary, DockerApi,
    DockerVersion, Error, ExecSession, ExecSpec, ExecState, ImageInfo, LabelledObject, NetworkMode,
    ObjectKind, Output, RunState,
};

/// The socket used when no host is given.
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
/// How long a request may wait for its response headers.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The Docker Engine API over a unix socket or plain TCP, with a negotiated API version.
#[derive(Debug, Clone)]
pub struct BollardDocker {
    docker: Docker,
}

/// Where the daemon listens, parsed from a `DOCKER_HOST`-style string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    /// A unix socket path.
    Unix(String),
    /// `host:port` spoken to over plain HTTP.
    Http(String),
}

// === impl BollardDocker ===

impl BollardDocker {
    /// Connects to `host` and negotiates the API version with the daemon.
    ///
    /// `None` is `/var/run/docker.sock`. `unix:///path`, `unix:/path` and `/path` name a unix
    /// socket; `tcp://host:port` and `http://host:port` a plain-HTTP daemon. The environment is
    /// never read here: pass `DOCKER_HOST` in.
    pub async fn connect(host: Option<&str>) -> Result<BollardDocker, Error> {
        let timeout = REQUEST_TIMEOUT.as_secs();
        let docker = match parse_host(host)? {
            Endpoint::Unix(path) => Docker::connect_with_unix(&path, timeout, API_DEFAULT_VERSION),
            Endpoint::Http(addr) => Docker::connect_with_http(&addr, timeout, API_DEFAULT_VERSION),
        }
        .map_err(classify)?;
        let docker = docker.negotiate_version().await.map_err(classify)?;
        Ok(BollardDocker { docker })
    }

    /// `POST /volumes/create` with `labels`.
    ///
    /// Not on [`DockerApi`] yet: nothing in the engine creates volumes until directory
    /// snapshots land. Tier-2 tests use it to exercise [`DockerApi::list_labelled`].
    pub async fn create_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let request = VolumeCreateRequest {
            name: Some(name.to_owned()),
            labels: Some(to_hash_map(labels)),
            ..Default::default()
        };
        self.docker.create_volume(request).await.map_err(classify)?;
        Ok(())
    }

    async fn list_labelled_containers(&self, key: &str) -> Result<Vec<LabelledObject>, Error> {
        let summaries = self.list_by_filter(vec![key.to_owned()]).await?;
        Ok(summaries
            .into_iter()
            .map(|c| LabelledObject {
                kind: ObjectKind::Container,
                id: c.id,
                name: c.name,
                labels: c.labels,
            })
            .collect())
    }

    async fn list_labelled_volumes(&self, key: &str) -> Result<Vec<LabelledObject>, Error> {
        let options = ListVolumesOptionsBuilder::new().filters(&label_filter(key)).build();
        let answer = self.docker.list_volumes(Some(options)).await.map_err(classify)?;
        Ok(answer
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| LabelledObject {
                kind: ObjectKind::Volume,
                id: v.name.clone(),
                name: v.name,
                labels: v.labels.into_iter().collect(),
            })
            .collect())
    }

    async fn list_labelled_networks(&self, key: &str) -> Result<Vec<LabelledObject>, Error> {
        let options = ListNetworksOptionsBuilder::new().filters(&label_filter(key)).build();
        let networks = self.docker.list_networks(Some(options)).await.map_err(classify)?;
        Ok(networks
            .into_iter()
            .filter_map(|n| {
                let id = n.id?;
                Some(LabelledObject {
                    kind: ObjectKind::Network,
                    name: n.name.unwrap_or_else(|| id.clone()),
                    id,
                    labels: n.labels.unwrap_or_default().into_iter().collect(),
                })
            })
            .collect())
    }

    async fn list_labelled_images(&self, key: &str) -> Result<Vec<LabelledObject>, Error> {
        let options = ListImagesOptionsBuilder::new().filters(&label_filter(key)).build();
        let images = self.docker.list_images(Some(options)).await.map_err(classify)?;
        Ok(images
            .into_iter()
            .map(|i| LabelledObject {
                kind: ObjectKind::Image,
                name: image_name(&i.repo_tags, &i.id),
                id: i.id,
                labels: i.labels.into_iter().collect(),
            })
            .collect())
    }

    async fn list_by_filter(
        &self,
        label_filters: Vec<String>,
    ) -> Result<Vec<ContainerSummary>, Error> {
        let mut filters = HashMap::new();
        if !label_filters.is_empty() {
            filters.insert("label".to_owned(), label_filters);
        }
        let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
        let summaries = self.docker.list_containers(Some(options)).await.map_err(classify)?;
        summaries.into_iter().map(summary).collect()
    }

    /// Sets the TTY size of a started exec. API 1.41 ignores `ConsoleSize` at create, so this is
    /// how the size reaches the process there. Best effort: a process that already ended has no
    /// TTY left to size.
    async fn resize_exec(&self, id: &str, (cols, rows): (u16, u16)) {
        let options = ResizeExecOptionsBuilder::new().h(i32::from(rows)).w(i32::from(cols)).build();
        if let Err(e) = self.docker.resize_exec(id, options).await {
            tracing::debug!(exec = id, error = %classify(e), "exec tty resize failed");
        }
    }
}

#[async_trait]
impl DockerApi for BollardDocker {
    async fn version(&self) -> Result<DockerVersion, Error> {
        let answer = self.docker.version().await.map_err(classify)?;
        Ok(DockerVersion {
            version: answer.version.unwrap_or_default(),
            api_version: self.docker.client_version().to_string(),
        })
    }

    async fn bridge(&self) -> Result<BridgeInfo, Error> {
        let network = self.docker.inspect_network("bridge", None).await.map_err(classify)?;
        let configs = network.ipam.and_then(|ipam| ipam.config).unwrap_or_default();
        Ok(bridge_info(&configs))
    }

    async fn inspect_image(&self, reference: &str) -> Result<Option<ImageInfo>, Error> {
        let image = match self.docker.inspect_image(reference).await.map_err(classify) {
            Ok(image) => image,
            Err(Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Some(ImageInfo {
            id: required(image.id, "image Id")?,
            labels: image.config.and_then(|c| c.labels).unwrap_or_default().into_iter().collect(),
            size: image.size.unwrap_or(0),
        }))
    }

    async fn build_image(
        &self,
        spec: BuildSpec,
        progress: &(dyn for<'a> Fn(&'a str) + Send + Sync),
    ) -> Result<(), Error> {
        let options = BuildImageOptionsBuilder::new()
            .t(&spec.tag)
            .labels(&to_hash_map(&spec.labels))
            .rm(true)
            .forcerm(true)
            .build();
        let mut stream =
            self.docker.build_image(options, None, Some(bollard::body_full(spec.context)));
        while let Some(item) = stream.next().await {
            let info = item.map_err(classify)?;
            if let Some(detail) = info.error_detail {
                let message = detail.message.unwrap_or_else(|| "build failed".to_owned());
                return Err(Error::Other { status: 0, message });
            }
            for line in info.stream.iter().chain(info.status.iter()).flat_map(|s| s.lines()) {
                if !line.trim().is_empty() {
                    progress(line);
                }
            }
        }
        Ok(())
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, Error> {
        let options = CreateContainerOptionsBuilder::new().name(&spec.name).build();
        let answer = self
            .docker
            .create_container(Some(options), create_body(spec))
            .await
            .map_err(classify)?;
        for warning in &answer.warnings {
            tracing::warn!(container = %spec.name, %warning, "docker warned on create");
        }
        Ok(answer.id)
    }

    async fn start_container(&self, name: &str) -> Result<(), Error> {
        // bollard answers Ok for 304, so ask first (see the module docs).
        if self.inspect_container(name).await?.state == RunState::Running {
            return Err(Error::NotModified);
        }
        self.docker.start_container(name, None).await.map_err(classify)
    }

    async fn kill_container(&self, name: &str, signal: u8) -> Result<(), Error> {
        // The number, not a name, so that real-time signals 32–64 arrive as themselves (W12).
        let options = KillContainerOptionsBuilder::new().signal(&signal.to_string()).build();
        self.docker.kill_container(name, Some(options)).await.map_err(classify)
    }

    async fn remove_container(&self, name: &str) -> Result<(), Error> {
        let options = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
        self.docker.remove_container(name, Some(options)).await.map_err(classify)
    }

    async fn inspect_container(&self, name: &str) -> Result<ContainerInfo, Error> {
        let answer = self.docker.inspect_container(name, None).await.map_err(classify)?;
        container_info(answer)
    }

    async fn wait_container(&self, name: &str) -> Result<i64, Error> {
        let options = WaitContainerOptionsBuilder::new().condition("not-running").build();
        let mut stream = self.docker.wait_container(name, Some(options));
        match stream.next().await {
            Some(Ok(answer)) => Ok(answer.status_code),
            // bollard turns a non-zero exit into an error; for wharf it is the answer.
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(classify(e)),
            None => Err(Error::Other {
                status: 0,
                message: format!("wait for {name} ended without a status"),
            }),
        }
    }

    async fn list_containers(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Vec<ContainerSummary>, Error> {
        self.list_by_filter(labels.iter().map(|(k, v)| format!("{k}={v}")).collect()).await
    }

    fn logs(&self, name: &str, follow: bool) -> BoxStream<'static, Result<Output, Error>> {
        let options = LogsOptionsBuilder::new().follow(follow).stdout(true).stderr(true).build();
        self.docker.logs(name, Some(options)).filter_map(|item| future::ready(output(item))).boxed()
    }

    async fn upload_archive(&self, container: &str, path: &str, tar: Bytes) -> Result<(), Error> {
        let options = UploadToContainerOptionsBuilder::new().path(path).build();
        self.docker
            .upload_to_container(container, Some(options), bollard::body_full(tar))
            .await
            .map_err(classify)
    }

    async fn download_archive(
        &self,
        container: &str,
        path: &str,
        limit: usize,
    ) -> Result<Bytes, Error> {
        let options = DownloadFromContainerOptionsBuilder::new().path(path).build();
        let mut stream = self.docker.download_from_container(container, Some(options));
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.map_err(classify)?);
            if out.len() > limit {
                return Err(Error::Other {
                    status: 0,
                    message: format!("{path} in {container} is larger than {limit} bytes"),
                });
            }
        }
        Ok(Bytes::from(out))
    }

    async fn exec(&self, container: &str, spec: &ExecSpec) -> Result<ExecSession, Error> {
        let created =
            self.docker.create_exec(container, exec_config(spec)).await.map_err(classify)?;
        let options =
            StartExecOptions { detach: false, tty: spec.tty.is_some(), output_capacity: None };
        let started = self.docker.start_exec(&created.id, Some(options)).await.map_err(classify)?;
        let StartExecResults::Attached { output: stream, input } = started else {
            return Err(Error::Other {
                status: 0,
                message: format!("exec {} in {container} started detached", created.id),
            });
        };
        if let Some(size) = spec.tty {
            self.resize_exec(&created.id, size).await;
        }
        Ok(ExecSession {
            id: created.id,
            output: stream.filter_map(|item| future::ready(output(item))).boxed(),
            input,
        })
    }

    async fn inspect_exec(&self, id: &str) -> Result<ExecState, Error> {
        let answer = self.docker.inspect_exec(id).await.map_err(classify)?;
        let running = answer.running.unwrap_or(false);
        Ok(ExecState {
            running,
            exit_code: if running { None } else { answer.exit_code },
            pid: answer.pid.unwrap_or(0),
        })
    }

    async fn create_network(
        &self,
        name: &str,
        subnet: ipnet::IpNet,
        labels: &BTreeMap<String, String>,
    ) -> Result<String, Error> {
        let config = NetworkCreateRequest {
            name: name.to_owned(),
            driver: Some("bridge".to_owned()),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(subnet.to_string()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            labels: Some(labels.clone().into_iter().collect()),
            ..Default::default()
        };
        Ok(self.docker.create_network(config).await.map_err(classify)?.id)
    }

    async fn list_labelled(
        &self,
        kind: ObjectKind,
        key: &str,
    ) -> Result<Vec<LabelledObject>, Error> {
        match kind {
            ObjectKind::Container => self.list_labelled_containers(key).await,
            ObjectKind::Volume => self.list_labelled_volumes(key).await,
            ObjectKind::Network => self.list_labelled_networks(key).await,
            ObjectKind::Image => self.list_labelled_images(key).await,
        }
    }

    async fn remove_object(&self, kind: ObjectKind, id: &str) -> Result<(), Error> {
        match kind {
            ObjectKind::Container => self.remove_container(id).await,
            ObjectKind::Volume => {
                let options = RemoveVolumeOptionsBuilder::new().force(false).build();
                self.docker.remove_volume(id, Some(options)).await.map_err(classify)
            }
            ObjectKind::Network => self.docker.remove_network(id).await.map_err(classify),
            ObjectKind::Image => {
                // Not forced: an image still used by a container is a Conflict, not yanked.
                let options = RemoveImageOptionsBuilder::new().force(false).build();
                self.docker.remove_image(id, Some(options), None).await.map_err(classify)?;
                Ok(())
            }
        }
    }
}

// === errors ===

/// The one place a bollard error becomes a [`Error`]: by variant, never by message text.
fn classify(err: BollardError) -> Error {
    match err {
        BollardError::DockerResponseServerError { status_code, message } => match status_code {
            404 => Error::NotFound(message),
            409 => Error::Conflict(message),
            304 => Error::NotModified,
            status => Error::Other { status, message },
        },
        BollardError::RequestTimeoutError => {
            Error::Unavailable(format!("no answer within {}s", REQUEST_TIMEOUT.as_secs()))
        }
        e @ (BollardError::HyperResponseError { .. }
        | BollardError::HyperLegacyError { .. }
        | BollardError::IOError { .. }
        | BollardError::SocketNotFoundError(_)) => Error::Unavailable(e.to_string()),
        e => Error::Other { status: 0, message: e.to_string() },
    }
}

/// A required field of a Docker answer, or an error naming it.
fn required<T>(value: Option<T>, what: &str) -> Result<T, Error> {
    value.ok_or_else(|| Error::Other { status: 0, message: format!("docker answer has no {what}") })
}

// === host parsing ===

fn parse_host(host: Option<&str>) -> Result<Endpoint, Error> {
    let Some(host) = host else {
        return Ok(Endpoint::Unix(DEFAULT_SOCKET.to_owned()));
    };
    let unix = host
        .strip_prefix("unix://")
        .or_else(|| host.strip_prefix("unix:"))
        .or_else(|| host.starts_with('/').then_some(host));
    if let Some(path) = unix
        && path.starts_with('/')
    {
        return Ok(Endpoint::Unix(path.to_owned()));
    }
    let http = host.strip_prefix("tcp://").or_else(|| host.strip_prefix("http://"));
    match http.map(|a| a.trim_end_matches('/')) {
        Some(addr) if !addr.is_empty() && !addr.contains('/') => {
            Ok(Endpoint::Http(addr.to_owned()))
        }
        _ => Err(Error::Other {
            status: 0,
            message: format!(
                "unsupported docker host {host:?}: use unix:///path, /path, tcp://host:port or http://host:port"
            ),
        }),
    }
}

// === request bodies ===

/// The create body for `spec`: only what wharf sets, with no zero-valued fields (W42).
fn create_body(spec: &ContainerSpec) -> ContainerCreateBody {
    let exposed: Vec<String> = spec.publish.iter().map(|p| port_key(p.container_port)).collect();
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint: spec.entrypoint.clone(),
        cmd: spec.cmd.clone(),
        env: non_empty(&spec.env),
        labels: (!spec.labels.is_empty()).then(|| to_hash_map(&spec.labels)),
        exposed_ports: (!exposed.is_empty()).then(|| dedup(exposed)),
        host_config: Some(host_config(spec)),
        ..Default::default()
    }
}

fn host_config(spec: &ContainerSpec) -> HostConfig {
    let network_mode = match &spec.network {
        NetworkMode::Bridge => "bridge".to_owned(),
        NetworkMode::Container(name) => format!("container:{name}"),
        NetworkMode::Named(name) => name.clone(),
    };
    HostConfig {
        network_mode: Some(network_mode),
        port_bindings: (!spec.publish.is_empty()).then(|| port_bindings(spec)),
        cap_add: non_empty(&spec.cap_add),
        cap_drop: non_empty(&spec.cap_drop),
        extra_hosts: non_empty(&spec.extra_hosts),
        dns: non_empty(&spec.dns),
        sysctls: (!spec.sysctls.is_empty()).then(|| to_hash_map(&spec.sysctls)),
        nano_cpus: (spec.resources.nano_cpus != 0).then_some(spec.resources.nano_cpus),
        memory: (spec.resources.memory_bytes != 0).then_some(spec.resources.memory_bytes),
        // Never restart behind the caller's back (W13).
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        }),
        ..Default::default()
    }
}

/// `HostPort` empty: the daemon picks a free port.
fn port_bindings(spec: &ContainerSpec) -> PortMap {
    let mut map: PortMap = HashMap::new();
    for publish in &spec.publish {
        let binding = PortBinding {
            host_ip: Some(publish.host_ip.to_string()),
            host_port: Some(String::new()),
        };
        map.entry(port_key(publish.container_port))
            .or_insert(None)
            .get_or_insert_with(Vec::new)
            .push(binding);
    }
    map
}

fn exec_config(spec: &ExecSpec) -> ExecConfig {
    ExecConfig {
        attach_stdin: Some(spec.stdin),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(spec.tty.is_some()),
        // API ≥ 1.42 reads this; 1.41 ignores it and gets a resize after start instead.
        console_size: spec.tty.map(|(cols, rows)| vec![usize::from(rows), usize::from(cols)]),
        env: non_empty(&spec.env),
        cmd: Some(spec.cmd.clone()),
        user: spec.user.clone(),
        working_dir: spec.cwd.clone(),
        ..Default::default()
    }
}

fn port_key(port: u16) -> String {
    format!("{port}/tcp")
}

fn non_empty(items: &[String]) -> Option<Vec<String>> {
    (!items.is_empty()).then(|| items.to_vec())
}

fn dedup(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items.dedup();
    items
}

fn to_hash_map(map: &BTreeMap<String, String>) -> HashMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn label_filter(key: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_owned(), vec![key.to_owned()])])
}

// === answers ===

fn bridge_info(configs: &[IpamConfig]) -> BridgeInfo {
    let subnets: Vec<&str> = configs.iter().filter_map(|c| c.subnet.as_deref()).collect();
    BridgeInfo {
        subnet: subnets
            .iter()
            .filter_map(|s| s.parse::<ipnet::IpNet>().ok())
            .find(|net| matches!(net, ipnet::IpNet::V4(_))),
        gateway: configs
            .iter()
            .filter_map(|c| c.gateway.as_deref())
            .find_map(|g| g.parse::<IpAddr>().ok()),
        ipv6: subnets.iter().any(|s| s.contains(':')),
    }
}

fn container_info(answer: ContainerInspectResponse) -> Result<ContainerInfo, Error> {
    let name = answer.name.unwrap_or_default().trim_start_matches('/').to_owned();
    let state = required(answer.state, "container State")?;
    let status = required(state.status, "container State.Status")?;
    let config = answer.config.unwrap_or_default();
    let network = answer.network_settings.unwrap_or_default();
    let gateway = network.networks.as_ref().and_then(endpoint_gateway);
    let ip = network.networks.as_ref().and_then(endpoint_ip);
    Ok(ContainerInfo {
        id: required(answer.id, "container Id")?,
        state: run_state(status).ok_or_else(|| Error::Other {
            status: 0,
            message: format!("container {name} has an empty State.Status"),
        })?,
        name,
        image: config.image.unwrap_or_default(),
        labels: config.labels.unwrap_or_default().into_iter().collect(),
        cmd: config.cmd.unwrap_or_default(),
        exit_code: state.exit_code.unwrap_or(0),
        oom_killed: state.oom_killed.unwrap_or(false),
        published: published(network.ports.as_ref()),
        gateway,
        ip,
    })
}

/// The container's address on the bridge (or its first network, by name).
fn endpoint_ip(networks: &HashMap<String, bollard::models::EndpointSettings>) -> Option<IpAddr> {
    let parse = |e: &bollard::models::EndpointSettings| -> Option<IpAddr> {
        e.ip_address.as_deref().filter(|a| !a.is_empty())?.parse().ok()
    };
    networks.get("bridge").and_then(parse).or_else(|| {
        let mut names: Vec<&String> = networks.keys().collect();
        names.sort();
        names.into_iter().find_map(|n| networks.get(n).and_then(parse))
    })
}

/// The container's gateway on the bridge (or its first network). bollard's models follow API
/// 1.44+, which dropped the top-level `NetworkSettings.Gateway`; the per-network entry carries
/// the same address on 20.10.
fn endpoint_gateway(
    networks: &HashMap<String, bollard::models::EndpointSettings>,
) -> Option<IpAddr> {
    let parse = |e: &bollard::models::EndpointSettings| -> Option<IpAddr> {
        e.gateway.as_deref().filter(|g| !g.is_empty())?.parse().ok()
    };
    networks.get("bridge").and_then(parse).or_else(|| {
        let mut names: Vec<&String> = networks.keys().collect();
        names.sort();
        names.into_iter().find_map(|n| networks.get(n).and_then(parse))
    })
}

/// `"39001/tcp" → [{HostIp, HostPort}]` as socket addresses; an empty `HostIp` means all
/// addresses (`0.0.0.0`). UDP and unparsable entries are skipped.
fn published(ports: Option<&PortMap>) -> BTreeMap<u16, Vec<SocketAddr>> {
    let mut out = BTreeMap::new();
    for (key, bindings) in ports.into_iter().flatten() {
        let Some(port) = key.strip_suffix("/tcp").and_then(|p| p.parse::<u16>().ok()) else {
            continue;
        };
        let addrs: Vec<SocketAddr> = bindings.iter().flatten().filter_map(binding_addr).collect();
        if !addrs.is_empty() {
            out.insert(port, addrs);
        }
    }
    out
}

fn binding_addr(binding: &PortBinding) -> Option<SocketAddr> {
    let ip = match binding.host_ip.as_deref() {
        None | Some("") => IpAddr::from([0, 0, 0, 0]),
        Some(ip) => ip.parse().ok()?,
    };
    let port = binding.host_port.as_deref()?.parse().ok()?;
    Some(SocketAddr::new(ip, port))
}

fn run_state(status: ContainerStateStatusEnum) -> Option<RunState> {
    Some(match status {
        ContainerStateStatusEnum::EMPTY => return None,
        ContainerStateStatusEnum::CREATED => RunState::Created,
        // `stopping` is newer than API 1.41; the process still runs.
        ContainerStateStatusEnum::RUNNING | ContainerStateStatusEnum::STOPPING => RunState::Running,
        ContainerStateStatusEnum::PAUSED => RunState::Paused,
        ContainerStateStatusEnum::RESTARTING => RunState::Restarting,
        ContainerStateStatusEnum::REMOVING => RunState::Removing,
        ContainerStateStatusEnum::EXITED => RunState::Exited,
        ContainerStateStatusEnum::DEAD => RunState::Dead,
    })
}

fn summary_state(status: ContainerSummaryStateEnum) -> Option<RunState> {
    Some(match status {
        ContainerSummaryStateEnum::EMPTY => return None,
        ContainerSummaryStateEnum::CREATED => RunState::Created,
        ContainerSummaryStateEnum::RUNNING | ContainerSummaryStateEnum::STOPPING => {
            RunState::Running
        }
        ContainerSummaryStateEnum::PAUSED => RunState::Paused,
        ContainerSummaryStateEnum::RESTARTING => RunState::Restarting,
        ContainerSummaryStateEnum::REMOVING => RunState::Removing,
        ContainerSummaryStateEnum::EXITED => RunState::Exited,
        ContainerSummaryStateEnum::DEAD => RunState::Dead,
    })
}

fn summary(c: bollard::models::ContainerSummary) -> Result<ContainerSummary, Error> {
    let id = required(c.id, "container Id")?;
    let state = c.state.and_then(summary_state).ok_or_else(|| Error::Other {
        status: 0,
        message: format!("container {id} is listed without a state"),
    })?;
    let name = c
        .names
        .unwrap_or_default()
        .first()
        .map(|n| n.trim_start_matches('/').to_owned())
        .unwrap_or_else(|| id.clone());
    Ok(ContainerSummary {
        id,
        name,
        image: c.image.unwrap_or_default(),
        labels: c.labels.unwrap_or_default().into_iter().collect(),
        state,
    })
}

/// The first real tag, else the id (untagged images list `<none>:<none>`).
fn image_name(tags: &[String], id: &str) -> String {
    tags.iter().find(|t| t.as_str() != "<none>:<none>").cloned().unwrap_or_else(|| id.to_owned())
}

fn output(item: Result<LogOutput, BollardError>) -> Option<Result<Output, Error>> {
    match item {
        Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
            Some(Ok(Output::Stdout(message)))
        }
        Ok(LogOutput::StdErr { message }) => Some(Ok(Output::Stderr(message))),
        Ok(LogOutput::StdIn { .. }) => None,
        Err(e) => Some(Err(classify(e))),
    }
}

#[cfg(test)]
mod tests;
