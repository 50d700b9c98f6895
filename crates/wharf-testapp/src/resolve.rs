//! Name resolution without glibc: IP literal, then `/etc/hosts`, then DNS over UDP to the first
//! `nameserver` in `/etc/resolv.conf` (A first, AAAA if there is no A).
//!
//! The binary is static, and static glibc cannot load the NSS modules `getaddrinfo` needs, so
//! every name the app dials goes through here. Inside a wharf container the nameserver's
//! traffic is intercepted by the sidecar, which may answer with synthetic addresses.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tracing::debug;
use wharf_wire::dns::{DnsError, Response, rcode, rtype};

use crate::dns_client::{EncodedQuery, connect_udp, recv_answer};
use crate::target::Host;

/// Why a name has no address.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The server said the name does not exist (NXDOMAIN).
    #[error("{name}: no such host")]
    NxDomain {
        /// The name looked up.
        name: String,
    },
    /// The server answered NOERROR for both A and AAAA, but with no address.
    #[error("{name}: no such host")]
    NotFound {
        /// The name looked up.
        name: String,
    },
    /// `resolv.conf` names no usable nameserver.
    #[error("no nameserver in {}", path.display())]
    NoNameserver {
        /// The file read.
        path: PathBuf,
    },
    /// `resolv.conf` could not be read.
    #[error("reading {}", path.display())]
    ResolvConf {
        /// The file read.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The nameserver did not answer in time, on any attempt.
    #[error("{name}: dns query to {server} timed out")]
    Timeout {
        /// The name looked up.
        name: String,
        /// The nameserver asked.
        server: SocketAddr,
    },
    /// The nameserver answered with an error code other than NXDOMAIN.
    #[error("{name}: dns server {server} answered rcode {rcode}")]
    Server {
        /// The name looked up.
        name: String,
        /// The nameserver asked.
        server: SocketAddr,
        /// The response code.
        rcode: u8,
    },
    /// The name cannot be put in a query.
    #[error("{name}: not a valid dns name")]
    BadName {
        /// The name looked up.
        name: String,
        /// The cause.
        source: DnsError,
    },
    /// Sending or receiving the query failed.
    #[error("dns query to {server}")]
    Io {
        /// The nameserver asked.
        server: SocketAddr,
        /// The cause.
        source: io::Error,
    },
}

/// Where the nameserver comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameServer {
    /// The first `nameserver` line of this `resolv.conf`, port 53, read at every lookup.
    ResolvConf(PathBuf),
    /// This address (tests run a stub server on loopback).
    Fixed(SocketAddr),
}

/// How the resolver finds answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverConfig {
    /// The hosts file, read at every lookup (Docker writes it when the container starts).
    pub hosts_file: PathBuf,
    /// The nameserver to ask when the hosts file has no entry.
    pub nameserver: NameServer,
    /// How long to wait for each answer.
    pub timeout: Duration,
    /// How many times to send each query.
    pub attempts: u32,
}

/// Resolves hosts to addresses. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Resolver {
    config: Arc<ResolverConfig>,
}

// === impl ResolverConfig ===

impl ResolverConfig {
    /// The container's own files: `/etc/hosts` and `/etc/resolv.conf`, 5 s timeout, one retry.
    pub fn system() -> ResolverConfig {
        ResolverConfig {
            hosts_file: PathBuf::from("/etc/hosts"),
            nameserver: NameServer::ResolvConf(PathBuf::from("/etc/resolv.conf")),
            timeout: Duration::from_secs(5),
            attempts: 2,
        }
    }
}

// === impl Resolver ===

impl Resolver {
    /// A resolver using `config`.
    pub fn new(config: ResolverConfig) -> Resolver {
        Resolver { config: Arc::new(config) }
    }

    /// The addresses of `host`, in the order to try them.
    pub async fn resolve(&self, host: &Host) -> Result<Vec<IpAddr>, ResolveError> {
        match host {
            Host::Ip(ip) => Ok(vec![*ip]),
            Host::Name(name) => self.resolve_name(name).await,
        }
    }

    async fn resolve_name(&self, name: &str) -> Result<Vec<IpAddr>, ResolveError> {
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        let hosts = read_optional(&self.config.hosts_file).await;
        let from_hosts = hosts_lookup(&hosts, &name);
        if !from_hosts.is_empty() {
            debug!(%name, addrs = ?from_hosts, "resolved from hosts file");
            return Ok(from_hosts);
        }
        let server = self.nameserver().await?;
        for qtype in [rtype::A, rtype::AAAA] {
            let response = self.exchange(server, &name, qtype).await?;
            let ips: Vec<IpAddr> = response.ips().collect();
            if !ips.is_empty() {
                debug!(%name, %server, addrs = ?ips, "resolved by dns");
                return Ok(ips);
            }
        }
        Err(ResolveError::NotFound { name })
    }

    async fn nameserver(&self) -> Result<SocketAddr, ResolveError> {
        let path = match &self.config.nameserver {
            NameServer::Fixed(addr) => return Ok(*addr),
            NameServer::ResolvConf(path) => path,
        };
        let contents = tokio::fs::read_to_string(path)
            .await
            .map_err(|source| ResolveError::ResolvConf { path: path.clone(), source })?;
        let ip = first_nameserver(&contents)
            .ok_or_else(|| ResolveError::NoNameserver { path: path.clone() })?;
        Ok(SocketAddr::new(ip, 53))
    }

    /// Sends one query, retrying on timeout, and returns the matching response. NXDOMAIN and
    /// server errors become errors; an empty NOERROR answer is returned as is.
    async fn exchange(
        &self,
        server: SocketAddr,
        name: &str,
        qtype: u16,
    ) -> Result<Response, ResolveError> {
        let EncodedQuery { id, bytes: query } = EncodedQuery::new(name, qtype)
            .map_err(|source| ResolveError::BadName { name: name.to_owned(), source })?;
        let socket =
            connect_udp(server).await.map_err(|source| ResolveError::Io { server, source })?;
        for attempt in 1..=self.config.attempts.max(1) {
            socket.send(&query).await.map_err(|source| ResolveError::Io { server, source })?;
            let answer =
                tokio::time::timeout(self.config.timeout, recv_answer(&socket, id, name, qtype));
            match answer.await {
                Ok(Ok(response)) => return check_rcode(response, name, server),
                Ok(Err(source)) => return Err(ResolveError::Io { server, source }),
                Err(_elapsed) => debug!(%name, %server, attempt, "dns query timed out"),
            }
        }
        Err(ResolveError::Timeout { name: name.to_owned(), server })
    }
}

/// The addresses `hosts` (the contents of a hosts file) lists for `name`, IPv4 first.
pub fn hosts_lookup(hosts: &str, name: &str) -> Vec<IpAddr> {
    let mut found: Vec<IpAddr> = hosts
        .lines()
        .filter_map(|line| {
            let line = line.split('#').next().unwrap_or_default();
            let mut fields = line.split_whitespace();
            let ip = fields.next()?.parse::<IpAddr>().ok()?;
            fields.any(|alias| alias.trim_end_matches('.').eq_ignore_ascii_case(name)).then_some(ip)
        })
        .collect();
    found.sort_by_key(|ip| ip.is_ipv6());
    found.dedup();
    found
}

/// The first `nameserver` in `resolv_conf` (the contents of a resolv.conf) that is an IP
/// address. Scoped IPv6 addresses (`fe80::1%eth0`) are skipped.
pub fn first_nameserver(resolv_conf: &str) -> Option<IpAddr> {
    resolv_conf.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        (fields.next()? == "nameserver").then_some(())?;
        fields.next()?.parse().ok()
    })
}

async fn read_optional(path: &Path) -> String {
    match tokio::fs::read_to_string(path).await {
        Ok(contents) => contents,
        Err(err) => {
            debug!(path = %path.display(), error = %err, "no hosts file");
            String::new()
        }
    }
}

fn check_rcode(
    response: Response,
    name: &str,
    server: SocketAddr,
) -> Result<Response, ResolveError> {
    match response.rcode {
        rcode::NOERROR => Ok(response),
        rcode::NXDOMAIN => Err(ResolveError::NxDomain { name: name.to_owned() }),
        rcode => Err(ResolveError::Server { name: name.to_owned(), server, rcode }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKER_HOSTS: &str = "\
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::\tip6-localnet
172.17.0.2\t4f2a9c0e1b7d
# 10.0.0.9 commented.example
10.0.0.7 db.internal db  # trailing comment
10.0.0.8 DB.internal.
";

    #[test]
    fn hosts_file_lookups() {
        let check = |name| format!("{:?}", hosts_lookup(DOCKER_HOSTS, name));
        assert_eq!(check("localhost"), "[127.0.0.1, ::1]");
        assert_eq!(check("4f2a9c0e1b7d"), "[172.17.0.2]");
        assert_eq!(check("db"), "[10.0.0.7]");
        assert_eq!(check("db.internal"), "[10.0.0.7, 10.0.0.8]");
        assert_eq!(check("commented.example"), "[]");
        assert_eq!(check("example.com"), "[]");
    }

    #[test]
    fn resolv_conf_first_nameserver() {
        let check = |conf| first_nameserver(conf).map(|ip| ip.to_string());
        let docker = "# Generated by Docker Engine.\nnameserver 127.0.0.11\nsearch example\noptions ndots:0\n";
        assert_eq!(check(docker).as_deref(), Some("127.0.0.11"));
        assert_eq!(
            check("nameserver fe80::1%eth0\nnameserver 2001:db8::53\n").as_deref(),
            Some("2001:db8::53")
        );
        assert_eq!(check("search x\n#nameserver 1.1.1.1\n"), None);
        assert_eq!(check("nameservers 10.0.0.1\n"), None);
    }
}
