//! The public JSON shapes of API v1 (`../shared/spec/http-api.md`). Only this crate knows them;
//! the CLI reuses them to read answers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthBody {
    /// wharf's version.
    pub version: String,
    /// The Docker daemon.
    pub docker: DockerBody,
    /// The sidecar image reference.
    pub sidecar_image: String,
    /// How sidecars intercept traffic.
    pub interception: String,
    /// The engine instance name.
    pub engine: String,
    /// Where sidecars reach the engine's egress listener.
    pub egress_listener: String,
}

/// `docker` in [`HealthBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerBody {
    /// Engine version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Negotiated API version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Why the daemon could not be reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An entry of `GET /v1/containers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSummary {
    /// The id.
    pub id: String,
    /// Whether the app runs.
    pub running: bool,
    /// The image.
    pub image: Option<String>,
    /// The labels, in order.
    pub labels: Map<String, Value>,
}

/// `GET /v1/containers/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus {
    /// The id.
    pub id: String,
    /// Whether the app runs.
    pub running: bool,
    /// Whether the slot ever started.
    pub started: bool,
    /// The image of the current or last (not destroyed) app container.
    pub image: Option<String>,
    /// The labels, in order.
    pub labels: Map<String, Value>,
    /// The last exit code, once stopped.
    pub exit_code: Option<i64>,
    /// `empty`, `running` or `stopped`.
    pub state: String,
    /// A start is in progress.
    pub starting: bool,
    /// Why the last run ended, once stopped.
    pub exit_reason: Option<String>,
}

/// `POST /v1/containers/{id}/wait`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitBody {
    /// The exit code; 137 after destroy.
    pub exit_code: i64,
    /// Whether `destroy` ended the run.
    pub destroyed: bool,
    /// Why the run ended: `exited`, `destroyed`, `oom_killed`, `hard_timeout`,
    /// `inactivity_timeout` or `lost`.
    pub reason: String,
}

/// StartParams.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartBody {
    /// The image (required unless `containerSnapshotId`).
    #[serde(default)]
    pub image: Option<String>,
    /// Replaces the image's CMD.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// `NAME=VALUE` entries.
    #[serde(default)]
    pub env: Option<Vec<String>>,
    /// Internet on or off (default off).
    #[serde(default)]
    pub enable_internet: Option<bool>,
    /// Labels, in order.
    #[serde(default)]
    pub labels: Option<Map<String, Value>>,
    /// Hard timeout; 0 for none.
    #[serde(default)]
    pub hard_timeout_ms: Option<i64>,
    /// A named instance type or `{vcpu, memoryMib, diskMb}`.
    #[serde(default)]
    pub instance: Option<Value>,
    /// Directory snapshots to restore.
    #[serde(default)]
    pub directory_snapshots: Option<Vec<Value>>,
    /// A container snapshot to start from.
    #[serde(default)]
    pub container_snapshot_id: Option<String>,
}

/// `POST /v1/containers/{id}/signal`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalBody {
    /// 1 to 64, or a name such as `TERM`.
    pub signal: Value,
}

/// `PUT /v1/containers/{id}/inactivity-timeout`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InactivityBody {
    /// Milliseconds, > 0.
    pub ms: Value,
}

/// ExecParams.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecBody {
    /// argv.
    pub cmd: Vec<String>,
    /// `NAME=VALUE` entries.
    #[serde(default)]
    pub env: Option<Vec<String>>,
    /// Working directory.
    #[serde(default)]
    pub cwd: Option<String>,
    /// User.
    #[serde(default)]
    pub user: Option<String>,
    /// `false` or `{cols, rows}`.
    #[serde(default)]
    pub tty: Option<Value>,
    /// Attach stdin (streaming exec only).
    #[serde(default)]
    pub stdin: Option<bool>,
    /// stderr into stdout.
    #[serde(default)]
    pub combined_output: Option<bool>,
}

/// The answer of a run-to-completion exec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecResult {
    /// Exit code.
    pub exit_code: i64,
    /// stdout, UTF-8 (lossy).
    pub stdout: String,
    /// stderr, UTF-8 (lossy).
    pub stderr: String,
}

/// One server-sent event's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventBody {
    /// Sequence number.
    pub seq: u64,
    /// Unix milliseconds.
    pub time_ms: u64,
    /// The container, if any.
    pub container: Option<String>,
    /// `starting`, `started`, `start_failed`, `exited`, `signalled`, `labels_set`,
    /// `adopted`, `repaired`, `image_built`, `skipped`, `lagged`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Details of the event.
    #[serde(flatten)]
    pub details: BTreeMap<String, Value>,
}

/// `POST /v1/containers/{id}/egress`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EgressBody {
    /// `http`, `https` or `tcp`.
    pub protocol: String,
    /// `<ip|cidr|hostnameGlob>[:port]`.
    pub host_port: String,
    /// An `http://` base URL on the host, or `HOST:PORT` for tcp.
    pub target: String,
}

/// `GET /v1/containers/{id}/egress`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EgressList {
    /// Whether unmatched traffic may pass through.
    pub internet: bool,
    /// The mappings, in the order they are tried.
    pub mappings: Vec<EgressBody>,
    /// The DNS allow-list the sidecar gets.
    pub dns_allow_list: Vec<String>,
}

/// `GET /v1/containers/{id}/egress/why?to=host[:port]&protocol=…`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WhyBody {
    /// `handler`, `pass_through`, `refused` or `unresolvable`.
    pub decision: String,
    /// The mapping that decides, if one does.
    pub rule: Option<String>,
    /// Where its handler sends the traffic.
    pub target: Option<String>,
    /// One step per line.
    pub explanation: String,
}
