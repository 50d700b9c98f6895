//! Engine configuration: a plain struct the binary fills in; no environment is read here.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::images::ImageRecipe;
use crate::params::ParamError;

/// The name of an engine instance: `[a-z0-9][a-z0-9_.-]{0,31}`. Docker objects are named and
/// labelled with it, and its lock file lives under the state directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EngineName(String);

impl EngineName {
    /// Validates a name.
    pub fn new(raw: &str) -> Result<EngineName, ParamError> {
        let ok =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-');
        let first_ok =
            raw.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !first_ok || raw.len() > 32 || !raw.chars().all(ok) {
            return Err(ParamError::Id(format!(
                "engine name must be 1 to 32 characters of [a-z0-9_.-] starting with a letter or digit, got {raw:?}"
            )));
        }
        Ok(EngineName(raw.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for EngineName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Everything an [`crate::Engine`] needs besides its Docker and sidecar clients.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Instance name; objects of other names are never touched, except by `wharf gc`.
    pub name: EngineName,
    /// This engine's state directory: its lock file and container records.
    pub state_dir: PathBuf,
    /// The sidecar image, built on first use when missing.
    pub sidecar_image: ImageRecipe,
    /// Upstream DNS resolvers handed to sidecars (empty: Docker's default).
    pub upstream_dns: Vec<IpAddr>,
    /// Budget for a new sidecar to answer its first `PUT /egress`.
    pub readiness_timeout: Duration,
    /// Deadline of one control-port exchange.
    pub control_timeout: Duration,
    /// Time between SIGTERM and SIGKILL when a timeout stops an app.
    pub stop_grace: Duration,
    /// How long a sidecar is kept running after its app is gone, for the next start of the
    /// same id to reuse (seed 000), and how long a pooled one waits for a claim; zero keeps
    /// none.
    pub warm_ttl: Duration,
    /// The fewest ready sidecars the warm pool aims at (`crate::pool`).
    pub pool_min: usize,
    /// The most it holds, however high demand goes; 0 turns the pool off.
    pub pool_max: usize,
    /// The most bytes a run-to-completion exec may return.
    pub max_exec_output: usize,
    /// Remove every owned container when the engine shuts down.
    pub reap_on_shutdown: bool,
    /// Networks pass-through never dials (default: loopback, link-local, multicast); the Docker
    /// bridge subnet is always added.
    pub passthrough_deny: Vec<ipnet::IpNet>,
}

impl EngineConfig {
    /// Defaults for everything but the name, state dir and sidecar image.
    pub fn new(name: EngineName, state_dir: &Path, sidecar_image: ImageRecipe) -> EngineConfig {
        EngineConfig {
            name,
            state_dir: state_dir.to_owned(),
            sidecar_image,
            upstream_dns: Vec::new(),
            readiness_timeout: Duration::from_secs(20),
            control_timeout: Duration::from_secs(2),
            stop_grace: Duration::from_secs(10),
            warm_ttl: Duration::from_secs(600),
            pool_min: 1,
            pool_max: 8,
            max_exec_output: 256 << 20,
            reap_on_shutdown: true,
            passthrough_deny: crate::egress::DenyList::defaults(),
        }
    }

    /// The lock file path.
    pub fn lock_path(&self) -> PathBuf {
        self.state_dir.join("lock")
    }

    /// The container-record directory.
    pub fn records_dir(&self) -> PathBuf {
        self.state_dir.join("containers")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_names() {
        assert!(EngineName::new("default").is_ok());
        assert!(EngineName::new("ci-42.a_b").is_ok());
        for bad in ["", "-x", "Upper", "a b", &"a".repeat(33)] {
            assert!(EngineName::new(bad).is_err(), "{bad:?}");
        }
    }
}
