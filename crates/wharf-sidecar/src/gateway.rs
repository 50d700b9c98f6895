//! Which address the sidecar tunnels intercepted connections to: `--gateway-ip`, else
//! `host.docker.internal` from the hosts file (engine spec §3.3, startup step 2).

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::hosts::{self, GATEWAY_HOST};

/// The default hosts file, which Docker writes into every container.
pub const HOSTS_PATH: &str = "/etc/hosts";

/// The host egress gateway's address (the host side of the Docker bridge, normally).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EgressGateway(IpAddr);

/// Why no gateway address could be found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// Neither the flag nor a hosts entry names the gateway.
    #[error(
        "no --gateway-ip and no {GATEWAY_HOST} in {}; run with --add-host {GATEWAY_HOST}:host-gateway",
        hosts_path.display()
    )]
    Missing {
        /// The hosts file that was searched.
        hosts_path: PathBuf,
    },
    /// The hosts file exists but could not be read.
    #[error("no --gateway-ip, and reading {} failed", hosts_path.display())]
    ReadHosts {
        /// The hosts file.
        hosts_path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// The gateway: `flag` when given, else the first IPv4 `host.docker.internal` in `hosts_path`.
pub fn resolve(flag: Option<IpAddr>, hosts_path: &Path) -> Result<EgressGateway, GatewayError> {
    if let Some(ip) = flag {
        return Ok(EgressGateway(ip));
    }
    let text = match std::fs::read_to_string(hosts_path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(GatewayError::ReadHosts { hosts_path: hosts_path.to_owned(), source });
        }
    };
    hosts::lookup_v4(&text, GATEWAY_HOST)
        .map(|v4| EgressGateway(IpAddr::V4(v4)))
        .ok_or_else(|| GatewayError::Missing { hosts_path: hosts_path.to_owned() })
}

// === impl EgressGateway ===

impl EgressGateway {
    /// The address.
    pub fn ip(&self) -> IpAddr {
        self.0
    }

    /// The socket address of the egress listener on `port`.
    pub fn listener(&self, port: u16) -> SocketAddr {
        SocketAddr::new(self.0, port)
    }
}

impl From<IpAddr> for EgressGateway {
    fn from(ip: IpAddr) -> EgressGateway {
        EgressGateway(ip)
    }
}

impl fmt::Display for EgressGateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_wins_without_reading_the_file() {
        let gw = resolve(Some("fd00::1".parse().unwrap()), Path::new("/nonexistent/hosts"));
        assert_eq!(gw.unwrap().to_string(), "fd00::1");
    }

    #[test]
    fn falls_back_to_the_hosts_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        std::fs::write(&path, "127.0.0.1 localhost\n172.17.0.1\thost.docker.internal\n").unwrap();
        assert_eq!(resolve(None, &path).unwrap().listener(49121).to_string(), "172.17.0.1:49121");
    }

    #[test]
    fn missing_names_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        std::fs::write(&path, "127.0.0.1 localhost\n").unwrap();
        let err = resolve(None, &path).unwrap_err().to_string();
        assert!(err.starts_with("no --gateway-ip and no host.docker.internal in "), "{err}");
        assert!(err.ends_with("; run with --add-host host.docker.internal:host-gateway"), "{err}");
        // A missing file is the same situation as a missing line.
        let err = resolve(None, &dir.path().join("absent")).unwrap_err();
        assert!(matches!(err, GatewayError::Missing { .. }));
    }
}
