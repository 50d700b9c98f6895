//! Command-line flags: proxy-everything's, so workerd can run our image unchanged, plus wharf's.
//!
//! This is also the one module that reads the environment (`WHARF_LOG`).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Parser;

/// The environment variable holding the tracing filter, e.g. `debug` or `wharf_sidecar=trace`.
pub const LOG_ENV: &str = "WHARF_LOG";
/// The tracing filter when [`LOG_ENV`] is unset.
pub const DEFAULT_LOG_FILTER: &str = "info";

/// The sidecar's flags.
///
/// The first seven are proxy-everything's (engine spec §3.1), with its defaults; the rest are
/// wharf's. Unknown flags are a usage error rather than being ignored, so a typo cannot silently
/// weaken the sidecar.
#[derive(Debug, Clone, Parser)]
#[command(name = "wharf-sidecar", version, about = "wharf's egress sidecar", long_about = None)]
pub struct Config {
    /// Port of the host egress listener that intercepted connections are tunnelled to, until
    /// the first `PUT /egress` names another.
    #[arg(long, value_name = "PORT", default_value_t = 49121)]
    pub http_egress_port: u16,

    /// Address of the control and ingress listener.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:39001")]
    pub http_ingress_address: SocketAddr,

    /// The Docker bridge subnet, which interception leaves alone.
    #[arg(long, value_name = "CIDR")]
    pub docker_gateway_cidr: Option<Cidr>,

    /// Intercept DNS (UDP/53) and answer it by the allow-list.
    #[arg(long)]
    pub dns_enabled: bool,

    /// Generate an interception CA and terminate TLS for intercepted connections.
    #[arg(long)]
    pub tls_intercept: bool,

    /// Set up no IPv6 interception (the Docker daemon has no IPv6).
    #[arg(long)]
    pub disable_ipv6: bool,

    /// Address of the egress gateway. Defaults to `host.docker.internal` from /etc/hosts.
    #[arg(long, value_name = "IP")]
    pub gateway_ip: Option<IpAddr>,

    /// Require this bearer token on every control-port request (wharf addition, weakness W5).
    #[arg(long, value_name = "TOKEN")]
    pub control_token: Option<ControlToken>,

    /// Directory to write the interception CA to (`ca.crt`, `ca.key`).
    #[arg(long, value_name = "PATH", default_value = "/ca")]
    pub ca_dir: PathBuf,

    /// Port of the sidecar's listener for intercepted TCP, bound on 127.0.0.1 and, unless
    /// --disable-ipv6, on `::1`. Interception delivers every outbound connection here. 0 lets
    /// the OS pick (tests).
    #[arg(long, value_name = "PORT", default_value_t = 41209)]
    pub egress_listen_port: u16,

    /// Port of the sidecar's DNS listener (UDP and TCP) on 127.0.0.1 and, unless
    /// --disable-ipv6, on `::1`. With --dns-enabled, interception redirects port 53 here. 0 lets
    /// the OS pick (tests).
    #[arg(long, value_name = "PORT", default_value_t = 41253)]
    pub dns_listen_port: u16,

    /// The firewall mark (SO_MARK) on the sidecar's own sockets (tunnels to the engine, DNS
    /// forwarding), which interception lets through. Setting it needs CAP_NET_ADMIN; 0 sets no
    /// mark (unprivileged tests only: without it the sidecar's DNS forwarding is intercepted).
    #[arg(long, value_name = "MARK", default_value_t = 100)]
    pub own_mark: u32,

    /// How long to wait for an intercepted connection's first bytes (to read a TLS server name
    /// or an HTTP Host) before tunnelling it as plain TCP, for protocols where the server speaks
    /// first (SSH, SMTP, MySQL).
    #[arg(long, value_name = "MS", default_value_t = 150)]
    pub peek_timeout_ms: u64,

    /// The resolver that DNS is forwarded to while the internet is on, `IP` or `IP:PORT`.
    /// Defaults to the first `nameserver` in /etc/resolv.conf.
    #[arg(long, value_name = "IP[:PORT]")]
    pub dns_upstream: Option<DnsUpstream>,

    /// How long a forwarded DNS query may take before the app gets SERVFAIL.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub dns_forward_timeout_ms: u64,

    /// Whether the internet is on until the first `PUT /egress` says otherwise. On by default,
    /// as in proxy-everything; the engine always sends a full `PUT` before the app starts.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub internet_initially: bool,
}

/// An IP network in CIDR notation, e.g. `172.17.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Where forwarded DNS goes: an IP and port (53 unless given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsUpstream(SocketAddr);

/// The secret a control-port request must present. `Debug` does not reveal it.
#[derive(Clone, PartialEq, Eq)]
pub struct ControlToken(String);

/// Why a flag value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlagError {
    /// Not `<ip>/<prefix>` with a prefix that fits the address family.
    #[error("expected <ip>/<prefix>, got {0:?}")]
    Cidr(String),
    /// An empty token, or one that cannot travel in a header.
    #[error("control token must be non-empty visible ascii without spaces")]
    Token,
    /// Not `IP`, `IP:PORT` or `[IPv6]:PORT`.
    #[error("expected <ip> or <ip>:<port>, got {0:?}")]
    Upstream(String),
}

/// The tracing filter from [`LOG_ENV`], or [`DEFAULT_LOG_FILTER`].
// This module is the sidecar's one reader of the environment (clippy.toml).
#[allow(clippy::disallowed_methods)]
pub fn log_filter_from_env() -> String {
    std::env::var(LOG_ENV).unwrap_or_else(|_| DEFAULT_LOG_FILTER.to_owned())
}

// === impl Config ===

impl Config {
    /// `--peek-timeout-ms` as a duration.
    pub fn peek_timeout(&self) -> Duration {
        Duration::from_millis(self.peek_timeout_ms)
    }

    /// `--dns-forward-timeout-ms` as a duration.
    pub fn dns_forward_timeout(&self) -> Duration {
        Duration::from_millis(self.dns_forward_timeout_ms)
    }
}

// === impl Cidr ===

impl Cidr {
    /// The network address as given.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
}

impl FromStr for Cidr {
    type Err = FlagError;

    fn from_str(s: &str) -> Result<Cidr, FlagError> {
        let bad = || FlagError::Cidr(s.to_owned());
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

// === impl DnsUpstream ===

impl DnsUpstream {
    /// The DNS port used when none is given.
    pub const DEFAULT_PORT: u16 = 53;

    /// The resolver's socket address.
    pub fn addr(&self) -> SocketAddr {
        self.0
    }
}

impl From<IpAddr> for DnsUpstream {
    fn from(ip: IpAddr) -> DnsUpstream {
        DnsUpstream(SocketAddr::new(ip, DnsUpstream::DEFAULT_PORT))
    }
}

impl From<SocketAddr> for DnsUpstream {
    fn from(addr: SocketAddr) -> DnsUpstream {
        DnsUpstream(addr)
    }
}

impl FromStr for DnsUpstream {
    type Err = FlagError;

    fn from_str(s: &str) -> Result<DnsUpstream, FlagError> {
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(DnsUpstream(addr));
        }
        s.parse::<IpAddr>().map(DnsUpstream::from).map_err(|_| FlagError::Upstream(s.to_owned()))
    }
}

impl fmt::Display for DnsUpstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

// === impl ControlToken ===

impl ControlToken {
    /// The token, to compare with what a request carries.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ControlToken {
    type Err = FlagError;

    fn from_str(s: &str) -> Result<ControlToken, FlagError> {
        // An empty token would match `Authorization: Bearer ` and so guard nothing.
        let valid = !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
        if valid { Ok(ControlToken(s.to_owned())) } else { Err(FlagError::Token) }
    }
}

impl fmt::Debug for ControlToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ControlToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;

    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("wharf-sidecar").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_are_proxy_everythings() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.http_egress_port, 49121);
        assert_eq!(config.http_ingress_address, "0.0.0.0:39001".parse().unwrap());
        assert_eq!(config.docker_gateway_cidr, None);
        assert!(!config.dns_enabled && !config.tls_intercept && !config.disable_ipv6);
        assert_eq!(config.gateway_ip, None);
        assert_eq!(config.control_token, None);
        assert_eq!(config.ca_dir, PathBuf::from("/ca"));
        assert_eq!((config.egress_listen_port, config.dns_listen_port), (41209, 41253));
        assert_eq!(config.own_mark, 100);
        assert_eq!(config.peek_timeout(), Duration::from_millis(150));
        assert_eq!(config.dns_upstream, None);
        assert_eq!(config.dns_forward_timeout(), Duration::from_secs(5));
        assert!(config.internet_initially);
    }

    #[test]
    fn accepts_what_workerd_sends() {
        let config = parse(&[
            "--http-egress-port",
            "40123",
            "--http-ingress-address",
            "0.0.0.0:39001",
            "--docker-gateway-cidr",
            "172.17.0.0/16",
            "--dns-enabled",
            "--tls-intercept",
            "--disable-ipv6",
        ])
        .unwrap();
        assert_eq!(config.http_egress_port, 40123);
        assert_eq!(config.docker_gateway_cidr.unwrap().to_string(), "172.17.0.0/16");
        assert!(config.dns_enabled && config.tls_intercept && config.disable_ipv6);
    }

    #[test]
    fn accepts_wharf_additions() {
        let config =
            parse(&["--gateway-ip", "10.0.0.1", "--control-token", "abc", "--ca-dir", "/tmp/x"])
                .unwrap();
        assert_eq!(config.gateway_ip, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(config.control_token.as_ref().map(ControlToken::as_str), Some("abc"));
        assert_eq!(format!("{:?}", config.control_token), "Some(ControlToken(<redacted>))");
        assert_eq!(config.ca_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn accepts_traffic_path_flags() {
        let config = parse(&[
            "--egress-listen-port",
            "15001",
            "--dns-listen-port",
            "15053",
            "--own-mark",
            "0",
            "--peek-timeout-ms",
            "20",
            "--dns-upstream",
            "[fd00::53]:5353",
            "--internet-initially",
            "false",
        ])
        .unwrap();
        assert_eq!((config.egress_listen_port, config.dns_listen_port), (15001, 15053));
        assert_eq!(config.own_mark, 0);
        assert_eq!(config.peek_timeout(), Duration::from_millis(20));
        assert_eq!(config.dns_upstream.unwrap().to_string(), "[fd00::53]:5353");
        assert!(!config.internet_initially);
    }

    #[test]
    fn dns_upstreams() {
        let check = |s: &str| s.parse::<DnsUpstream>().map(|u| u.to_string());
        assert_eq!(check("1.1.1.1"), Ok("1.1.1.1:53".to_owned()));
        assert_eq!(check("127.0.0.1:5353"), Ok("127.0.0.1:5353".to_owned()));
        assert_eq!(check("::1"), Ok("[::1]:53".to_owned()));
        assert_eq!(check("[::1]:54"), Ok("[::1]:54".to_owned()));
        assert_eq!(check("dns.google"), Err(FlagError::Upstream("dns.google".to_owned())));
        assert!(check("1.1.1.1:70000").is_err());
    }

    #[test]
    fn refuses_unknown_and_bad_flags() {
        let kind = |args: &[&str]| parse(args).map(drop).map_err(|e| e.kind());
        assert_eq!(kind(&["--proxy-everything"]), Err(ErrorKind::UnknownArgument));
        assert_eq!(kind(&["--http-egress-port", "70000"]), Err(ErrorKind::ValueValidation));
        assert_eq!(
            kind(&["--docker-gateway-cidr", "10.0.0.0/33"]),
            Err(ErrorKind::ValueValidation)
        );
        assert_eq!(kind(&["--docker-gateway-cidr", "10.0.0.0"]), Err(ErrorKind::ValueValidation));
        assert_eq!(kind(&["--control-token", ""]), Err(ErrorKind::ValueValidation));
        assert_eq!(kind(&["--control-token", "a b"]), Err(ErrorKind::ValueValidation));
        assert_eq!(
            kind(&["--gateway-ip", "host.docker.internal"]),
            Err(ErrorKind::ValueValidation)
        );
        assert_eq!(kind(&["--dns-upstream", "dns.google"]), Err(ErrorKind::ValueValidation));
        assert_eq!(kind(&["--internet-initially", "maybe"]), Err(ErrorKind::InvalidValue));
        assert_eq!(kind(&["--own-mark", "-1"]), Err(ErrorKind::UnknownArgument));
    }

    #[test]
    fn cidrs_of_both_families() {
        assert_eq!("fd00::/8".parse::<Cidr>().unwrap().prefix(), 8);
        assert!("fd00::/129".parse::<Cidr>().is_err());
        assert!("1.2.3.4/x".parse::<Cidr>().is_err());
    }
}
