//! The fake daemon's state and the Docker rules it follows (listed in `fake.rs`'s docs): what
//! each call does to containers, images, volumes and networks.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::{Call, ExecHandler, ExecScript, GateShared, Op, SignalReaction};
use crate::docker::{
    BridgeInfo, BuildSpec, ContainerInfo, ContainerSpec, ContainerSummary, Error, ExecState,
    LabelledObject, NetworkMode, ObjectKind, Output, RunState,
};

/// SIGKILL: always fatal, whatever the app does.
pub(super) const SIGKILL: u8 = 9;
/// What `docker rm -f` and an OOM kill leave as the exit code.
pub(super) const KILLED: i64 = 137;
/// The first host port the fake hands out, like Docker's ephemeral range.
pub(super) const FIRST_HOST_PORT: u16 = 32768;

/// Shared by every handle of one fake daemon.
pub(super) struct Inner {
    pub(super) state: Mutex<State>,
}

/// Everything the daemon knows, plus the test controls' scripts and records.
pub(super) struct State {
    /// By name.
    pub(super) containers: BTreeMap<String, Container>,
    pub(super) images: Vec<Image>,
    /// Volumes and networks, by name.
    pub(super) objects: BTreeMap<(ObjectKind, String), LabelledObject>,
    pub(super) execs: HashMap<String, ExecState>,
    /// Recorded calls, in order.
    pub(super) calls: Vec<Call>,
    pub(super) failures: HashMap<Op, VecDeque<Error>>,
    pub(super) gates: HashMap<Op, Arc<GateShared>>,
    /// By container name and signal.
    pub(super) reactions: HashMap<(String, u8), SignalReaction>,
    /// By container name.
    pub(super) logs: HashMap<String, Vec<Output>>,
    pub(super) exec_handler: ExecHandler,
    pub(super) builds: Vec<BuildSpec>,
    pub(super) bridge: BridgeInfo,
    /// Feeds ids.
    pub(super) serial: u64,
    pub(super) next_port: u16,
}

/// A container: what it was created with, and where it is in its life.
pub(super) struct Container {
    pub(super) id: String,
    pub(super) spec: ContainerSpec,
    pub(super) state: RunState,
    pub(super) exit_code: i64,
    pub(super) oom_killed: bool,
    pub(super) published: BTreeMap<u16, Vec<SocketAddr>>,
    /// `Some(exit code)` whenever the container is not running: what `wait` answers.
    pub(super) stopped: watch::Sender<Option<i64>>,
    /// Files put into it, by absolute path.
    pub(super) files: BTreeMap<String, bytes::Bytes>,
}

#[derive(Debug, Clone)]
/// An image: tagged, or dangling once its last tag moved to a newer build.
pub(super) struct Image {
    pub(super) id: String,
    pub(super) tags: Vec<String>,
    pub(super) labels: BTreeMap<String, String>,
}

// === impl Inner / State ===

impl Inner {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// An empty daemon with the bridge of our machines: `172.17.0.0/16`, no IPAM gateway (W43).
    pub(super) fn new() -> State {
        State {
            containers: BTreeMap::new(),
            images: Vec::new(),
            objects: BTreeMap::new(),
            execs: HashMap::new(),
            calls: Vec::new(),
            failures: HashMap::new(),
            gates: HashMap::new(),
            reactions: HashMap::new(),
            logs: HashMap::new(),
            exec_handler: Arc::new(ExecScript::echo),
            builds: Vec::new(),
            bridge: BridgeInfo {
                subnet: ipnet::Ipv4Net::new(Ipv4Addr::new(172, 17, 0, 0), 16)
                    .ok()
                    .map(ipnet::IpNet::V4),
                gateway: None,
                ipv6: false,
            },
            serial: 0,
            next_port: FIRST_HOST_PORT,
        }
    }

    /// The table key (name) of a container given by name, full id or unique id prefix.
    pub(super) fn key_of(&self, name_or_id: &str) -> Option<String> {
        if self.containers.contains_key(name_or_id) {
            return Some(name_or_id.to_owned());
        }
        let mut matches = self.containers.iter().filter(|(_, c)| c.id.starts_with(name_or_id));
        match (matches.next(), matches.next()) {
            (Some((name, _)), None) if !name_or_id.is_empty() => Some(name.clone()),
            _ => None,
        }
    }

    pub(super) fn get(&self, name: &str) -> Result<&Container, Error> {
        let key = self.key_of(name).ok_or_else(|| no_such_container(name))?;
        Ok(&self.containers[&key])
    }

    pub(super) fn get_mut(&mut self, name: &str) -> Result<&mut Container, Error> {
        let key = self.key_of(name).ok_or_else(|| no_such_container(name))?;
        self.containers.get_mut(&key).ok_or_else(|| no_such_container(name))
    }

    pub(super) fn running_mut(&mut self, name: &str) -> &mut Container {
        match self.get_mut(name) {
            Ok(c) if c.state == RunState::Running => c,
            Ok(_) => panic!("fake docker: container {name} is not running"),
            Err(_) => panic!("fake docker: no container named {name}"),
        }
    }

    /// The gateway a running bridge container reports: the IPAM one, else the subnet's first
    /// host (which is what the daemon gives containers even when IPAM names none, W43).
    pub(super) fn gateway(&self) -> Option<IpAddr> {
        self.bridge.gateway.or_else(|| self.bridge.subnet.and_then(|net| net.hosts().next()))
    }

    pub(super) fn create(&mut self, spec: &ContainerSpec) -> Result<String, Error> {
        if self.image(&spec.image).is_none() {
            return Err(Error::NotFound(format!("No such image: {}", spec.image)));
        }
        if !valid_name(&spec.name) {
            return Err(Error::Other {
                status: 400,
                message: format!(
                    "Invalid container name ({}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                    spec.name
                ),
            });
        }
        if let Some(existing) = self.containers.get(&spec.name) {
            return Err(Error::Conflict(format!(
                "Conflict. The container name \"/{}\" is already in use by container \"{}\".",
                spec.name, existing.id
            )));
        }
        if matches!(spec.network, NetworkMode::Container(_)) && !spec.publish.is_empty() {
            return Err(Error::Other {
                status: 400,
                message: "conflicting options: port publishing and the container type network mode"
                    .to_owned(),
            });
        }
        self.serial += 1;
        let id = digest(&[spec.name.as_bytes(), &self.serial.to_be_bytes()]);
        let container = Container {
            id: id.clone(),
            spec: spec.clone(),
            state: RunState::Created,
            exit_code: 0,
            oom_killed: false,
            published: BTreeMap::new(),
            stopped: watch::Sender::new(Some(0)),
            files: BTreeMap::new(),
        };
        self.containers.insert(spec.name.clone(), container);
        Ok(id)
    }

    pub(super) fn start(&mut self, name: &str) -> Result<(), Error> {
        let container = self.get(name)?;
        if container.state == RunState::Running {
            return Err(Error::NotModified);
        }
        if let NetworkMode::Container(owner) = &container.spec.network {
            let owner = self.get(owner)?;
            if owner.state != RunState::Running {
                return Err(Error::Conflict(format!(
                    "cannot join network of a non running container: {}",
                    owner.id
                )));
            }
        }
        let publish = match container.spec.network {
            NetworkMode::Bridge => container.spec.publish.clone(),
            NetworkMode::Container(_) | NetworkMode::Named(_) => Vec::new(),
        };
        let mut published: BTreeMap<u16, Vec<SocketAddr>> = BTreeMap::new();
        for p in publish {
            let port = self.next_port;
            self.next_port = self.next_port.checked_add(1).unwrap_or(FIRST_HOST_PORT);
            published.entry(p.container_port).or_default().push(SocketAddr::new(p.host_ip, port));
        }
        let container = self.get_mut(name)?;
        container.state = RunState::Running;
        container.exit_code = 0;
        container.oom_killed = false;
        container.published = published;
        container.stopped.send_replace(None);
        Ok(())
    }

    pub(super) fn kill(&mut self, name: &str, signal: u8) -> Result<(), Error> {
        let reaction = match self.key_of(name) {
            _ if signal == SIGKILL => SignalReaction::Exit(KILLED),
            Some(key) => self
                .reactions
                .get(&(key, signal))
                .copied()
                .unwrap_or(SignalReaction::Exit(128 + i64::from(signal))),
            None => return Err(no_such_container(name)),
        };
        let container = self.get_mut(name)?;
        if container.state != RunState::Running {
            return Err(Error::Conflict(format!(
                "Cannot kill container: {name}: Container {} is not running",
                container.id
            )));
        }
        if let SignalReaction::Exit(code) = reaction {
            container.stop(code, false);
        }
        Ok(())
    }

    /// `DELETE ?force=true`: kill if running (waking waiters with 137), then forget.
    pub(super) fn remove(&mut self, key: &str) {
        if let Some(mut container) = self.containers.remove(key)
            && container.state == RunState::Running
        {
            container.stop(KILLED, false);
        }
    }

    pub(super) fn image(&self, reference: &str) -> Option<&Image> {
        let tag = normalize(reference);
        self.images.iter().find(|i| i.tags.contains(&tag) || i.id == reference)
    }

    /// Gives `tag` to the image `id` (creating it), taking it from any other image; an image
    /// left with no tag stays, dangling, as in Docker.
    pub(super) fn tag_image(&mut self, id: &str, tag: &str, labels: BTreeMap<String, String>) {
        for image in &mut self.images {
            image.tags.retain(|t| t != tag);
        }
        match self.images.iter_mut().find(|i| i.id == id) {
            Some(image) => image.tags.push(tag.to_owned()),
            None => {
                self.images.push(Image { id: id.to_owned(), tags: vec![tag.to_owned()], labels })
            }
        }
    }

    /// `DELETE /images/{ref}` without force: a tag of a multi-tag image is just untagged; an
    /// image used by any container, or an id with several tags, is a conflict.
    pub(super) fn remove_image(&mut self, reference: &str) -> Result<(), Error> {
        let tag = normalize(reference);
        let index = self
            .images
            .iter()
            .position(|i| i.tags.contains(&tag) || i.id == reference)
            .ok_or_else(|| Error::NotFound(format!("No such image: {reference}")))?;
        let image = &self.images[index];
        let by_tag = image.tags.contains(&tag);
        if by_tag && image.tags.len() > 1 {
            self.images[index].tags.retain(|t| *t != tag);
            return Ok(());
        }
        if !by_tag && image.tags.len() > 1 {
            return Err(Error::Conflict(format!(
                "conflict: unable to delete {reference} (must be forced) - image is referenced in multiple repositories"
            )));
        }
        if let Some(user) = self
            .containers
            .values()
            .find(|c| self.image(&c.spec.image).is_some_and(|i| i.id == image.id))
        {
            return Err(Error::Conflict(format!(
                "conflict: unable to remove repository reference \"{reference}\" (must force) - container {} is using its referenced image {}",
                user.id, image.id
            )));
        }
        self.images.remove(index);
        Ok(())
    }

    pub(super) fn labelled(&self, kind: ObjectKind, key: &str) -> Vec<LabelledObject> {
        match kind {
            ObjectKind::Container => self
                .containers
                .values()
                .filter(|c| c.spec.labels.contains_key(key))
                .map(|c| LabelledObject {
                    kind,
                    id: c.id.clone(),
                    name: c.spec.name.clone(),
                    labels: c.spec.labels.clone(),
                })
                .collect(),
            ObjectKind::Image => self
                .images
                .iter()
                .filter(|i| i.labels.contains_key(key))
                .map(|i| LabelledObject {
                    kind,
                    id: i.id.clone(),
                    name: i.tags.first().cloned().unwrap_or_else(|| i.id.clone()),
                    labels: i.labels.clone(),
                })
                .collect(),
            ObjectKind::Volume | ObjectKind::Network => self
                .objects
                .values()
                .filter(|o| o.kind == kind && o.labels.contains_key(key))
                .cloned()
                .collect(),
        }
    }
}

// === impl Container ===

impl Container {
    pub(super) fn stop(&mut self, code: i64, oom_killed: bool) {
        self.state = RunState::Exited;
        self.exit_code = code;
        self.oom_killed = oom_killed;
        self.published.clear();
        self.stopped.send_replace(Some(code));
    }

    pub(super) fn info(&self, bridge_gateway: Option<IpAddr>) -> ContainerInfo {
        let running = self.state == RunState::Running;
        let on_bridge = self.spec.network == NetworkMode::Bridge;
        ContainerInfo {
            id: self.id.clone(),
            name: self.spec.name.clone(),
            image: self.spec.image.clone(),
            labels: self.spec.labels.clone(),
            cmd: self.spec.cmd.clone().unwrap_or_default(),
            state: self.state,
            exit_code: self.exit_code,
            oom_killed: self.oom_killed,
            published: self.published.clone(),
            gateway: bridge_gateway.filter(|_| running && on_bridge),
            // No address: the engine would probe it for real, and tier-1 tests stay on loopback.
            ip: None,
        }
    }

    pub(super) fn summary(&self) -> ContainerSummary {
        ContainerSummary {
            id: self.id.clone(),
            name: self.spec.name.clone(),
            image: self.spec.image.clone(),
            labels: self.spec.labels.clone(),
            state: self.state,
        }
    }
}

// === helpers ===

pub(super) fn no_such_container(name: &str) -> Error {
    Error::NotFound(format!("No such container: {name}"))
}

pub(super) fn kind_name(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Container => "container",
        ObjectKind::Volume => "volume",
        ObjectKind::Network => "network",
        ObjectKind::Image => "image",
    }
}

/// Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub(super) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `name` → `name:latest`, as Docker reads a reference without a tag or digest.
pub(super) fn normalize(reference: &str) -> String {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    if last.contains(':') || reference.contains('@') || reference.starts_with("sha256:") {
        reference.to_owned()
    } else {
        format!("{reference}:latest")
    }
}

/// A Docker-looking id: 64 hex digits derived from `parts`.
pub(super) fn digest(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}
