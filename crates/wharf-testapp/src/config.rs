//! The app's configuration, read once from the environment. The only module that reads it.
//!
//! | variable | meaning |
//! |---|---|
//! | `WS_ENABLED`, `WS_PROXY_TARGET`, `WS_PROXY_SECURE` | what `/ws` does ([`WsMode`]) |
//! | `NODE_EXTRA_CA_CERTS`, `WHARF_EXTRA_CA_CERTS` | extra CA files for outbound TLS |
//! | `TCP_PORT` | the TCP echo server's port (off when unset) |
//! | `UDP_PORT` | the UDP echo server's port (off when unset) |
//! | `GREETING_PORT` | the server-speaks-first greeter's port (off when unset) |
//! | `DNS_STUB` | `1` or `true` runs the stub DNS server; `0`, `false` or unset does not |
//! | `DNS_PORT` | the stub's UDP and TCP port, default 53; only with `DNS_STUB=1` |
//! | `DNS_RECORDS` | the stub's records ([`crate::zone`]); only with `DNS_STUB=1` |
//! | `WHARF_LOG` | the tracing filter, default `info` |
//!
//! An empty value counts as unset. A value that does not parse is a [`ConfigError`], and the
//! binary exits with 64 (`EX_USAGE`); so does `DNS_PORT` or `DNS_RECORDS` without `DNS_STUB=1`.
//! A port of 0 binds a free port, which is logged.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use crate::target::{Authority, Scheme, TargetError};
use crate::zone::{Zone, ZoneError};

/// The port the HTTP server listens on, as in workerd's test image.
pub const HTTP_PORT: u16 = 8080;
/// Where wharf (like workerd) injects the egress sidecar's CA into the app container.
pub const INJECTED_CA_FILE: &str = "/etc/cloudflare/certs/cloudflare-containers-ca.crt";
/// The environment variables naming extra CA files, in load order.
pub const CA_FILE_VARS: [&str; 2] = ["NODE_EXTRA_CA_CERTS", "WHARF_EXTRA_CA_CERTS"];
/// The variable holding the tracing filter.
pub const LOG_VAR: &str = "WHARF_LOG";
/// The DNS stub's port unless `DNS_PORT` says otherwise.
pub const DEFAULT_DNS_PORT: u16 = 53;

/// Why the environment does not make a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A port variable (`TCP_PORT`, `UDP_PORT`, `GREETING_PORT`, `DNS_PORT`) is not a port
    /// number.
    #[error("{var} must be a port number, got {value:?}")]
    BadPort {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
    },
    /// An on/off variable (`DNS_STUB`) is neither.
    #[error("{var} must be 1 or 0 (or true or false), got {value:?}")]
    BadSwitch {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
    },
    /// `DNS_RECORDS` does not parse.
    #[error("DNS_RECORDS is not a list of name=ip")]
    BadDnsRecords(#[source] ZoneError),
    /// A DNS stub setting is given but the stub is off, which is surely a mistake.
    #[error("{var} is set but DNS_STUB is not 1")]
    DnsStubOff {
        /// The setting.
        var: &'static str,
    },
    /// `WS_PROXY_TARGET` is not `host[:port]`.
    #[error("WS_PROXY_TARGET is not host[:port]")]
    BadWsProxyTarget(#[source] TargetError),
}

/// Access to string settings, so tests pass a map instead of the process environment
/// (linkerd's `Strings`).
pub trait Strings {
    /// The value of `key`, if set and valid UTF-8.
    fn get(&self, key: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

/// Everything the app needs to know at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where the HTTP server listens.
    pub listen: SocketAddr,
    /// What `/ws` does.
    pub ws: WsMode,
    /// The port of the optional TCP echo server (`TCP_PORT`).
    pub tcp_echo_port: Option<u16>,
    /// The port of the optional UDP echo server (`UDP_PORT`).
    pub udp_echo_port: Option<u16>,
    /// The port of the optional server-speaks-first TCP server (`GREETING_PORT`).
    pub greeting_port: Option<u16>,
    /// The optional stub DNS server (`DNS_STUB=1`).
    pub dns_stub: Option<DnsStubConfig>,
    /// The PEM files trusted for outbound TLS, in order. Missing files are skipped.
    pub ca_files: Vec<PathBuf>,
}

/// The stub DNS server's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsStubConfig {
    /// The port it serves on, for both UDP and TCP (`DNS_PORT`, default 53; 0 picks a free one).
    pub port: u16,
    /// What it answers (`DNS_RECORDS`; none when unset).
    pub zone: Zone,
}

/// The behaviour of `/ws`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMode {
    /// `WS_ENABLED` is not `true`: `/ws` answers 400.
    Disabled,
    /// Echo every message back as `Echo: <msg>`.
    Echo,
    /// Relay both ways to `ws[s]://<target>/ws`.
    Proxy(WsProxy),
}

/// Where `/ws` relays to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsProxy {
    /// `ws` or `wss` (`WS_PROXY_SECURE=true`).
    pub scheme: Scheme,
    /// The upstream host and port.
    pub authority: Authority,
}

// === impl ProcessEnv ===

impl Strings for ProcessEnv {
    // This module is the app's one reader of the environment (clippy.toml).
    #[allow(clippy::disallowed_methods)]
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
}

impl Strings for HashMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        HashMap::get(self, key).cloned()
    }
}

/// A snapshot of the whole process environment, for `/env`. Non-UTF-8 bytes are replaced.
pub fn process_env() -> BTreeMap<String, String> {
    std::env::vars_os()
        .map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned()))
        .collect()
}

/// The tracing filter directive, `info` unless `WHARF_LOG` says otherwise.
pub fn log_filter(env: &dyn Strings) -> String {
    env.get(LOG_VAR).unwrap_or_else(|| "info".to_owned())
}

// === impl Config ===

impl Config {
    /// Reads the configuration from `env`.
    pub fn from_strings(env: &dyn Strings) -> Result<Config, ConfigError> {
        Ok(Config {
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, HTTP_PORT)),
            ws: ws_mode(env)?,
            tcp_echo_port: port(env, "TCP_PORT")?,
            udp_echo_port: port(env, "UDP_PORT")?,
            greeting_port: port(env, "GREETING_PORT")?,
            dns_stub: dns_stub(env)?,
            ca_files: ca_files(env),
        })
    }
}

fn is_true(env: &dyn Strings, key: &str) -> bool {
    env.get(key).as_deref() == Some("true")
}

fn ws_mode(env: &dyn Strings) -> Result<WsMode, ConfigError> {
    if !is_true(env, "WS_ENABLED") {
        return Ok(WsMode::Disabled);
    }
    let Some(target) = env.get("WS_PROXY_TARGET").filter(|t| !t.is_empty()) else {
        return Ok(WsMode::Echo);
    };
    let scheme = if is_true(env, "WS_PROXY_SECURE") { Scheme::Wss } else { Scheme::Ws };
    let authority = Authority::parse_with_default(&target, scheme.default_port())
        .map_err(ConfigError::BadWsProxyTarget)?;
    Ok(WsMode::Proxy(WsProxy { scheme, authority }))
}

/// A set, non-empty variable.
fn non_empty(env: &dyn Strings, var: &str) -> Option<String> {
    env.get(var).filter(|v| !v.is_empty())
}

fn port(env: &dyn Strings, var: &'static str) -> Result<Option<u16>, ConfigError> {
    match non_empty(env, var) {
        None => Ok(None),
        Some(value) => {
            value.trim().parse().map(Some).map_err(|_| ConfigError::BadPort { var, value })
        }
    }
}

fn switch(env: &dyn Strings, var: &'static str) -> Result<bool, ConfigError> {
    let Some(value) = non_empty(env, var) else {
        return Ok(false);
    };
    match value.trim() {
        "0" | "false" => Ok(false),
        "1" | "true" => Ok(true),
        _ => Err(ConfigError::BadSwitch { var, value }),
    }
}

fn dns_stub(env: &dyn Strings) -> Result<Option<DnsStubConfig>, ConfigError> {
    if !switch(env, "DNS_STUB")? {
        return match ["DNS_RECORDS", "DNS_PORT"].into_iter().find(|v| non_empty(env, v).is_some()) {
            Some(var) => Err(ConfigError::DnsStubOff { var }),
            None => Ok(None),
        };
    }
    let port = port(env, "DNS_PORT")?.unwrap_or(DEFAULT_DNS_PORT);
    let zone = match non_empty(env, "DNS_RECORDS") {
        None => Zone::default(),
        Some(raw) => raw.parse().map_err(ConfigError::BadDnsRecords)?,
    };
    Ok(Some(DnsStubConfig { port, zone }))
}

fn ca_files(env: &dyn Strings) -> Vec<PathBuf> {
    let named = CA_FILE_VARS.iter().filter_map(|var| env.get(var)).filter(|p| !p.is_empty());
    let mut files: Vec<PathBuf> = named.map(PathBuf::from).collect();
    let injected = PathBuf::from(INJECTED_CA_FILE);
    if !files.contains(&injected) {
        files.push(injected);
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_vars(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_strings(&env)
    }

    #[test]
    fn defaults() {
        let config = from_vars(&[]).unwrap();
        assert_eq!(config.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(config.ws, WsMode::Disabled);
        assert_eq!(config.tcp_echo_port, None);
        assert_eq!(config.udp_echo_port, None);
        assert_eq!(config.greeting_port, None);
        assert_eq!(config.dns_stub, None);
        assert_eq!(config.ca_files, [PathBuf::from(INJECTED_CA_FILE)]);
    }

    #[test]
    fn websocket_modes() {
        assert_eq!(from_vars(&[("WS_ENABLED", "1")]).unwrap().ws, WsMode::Disabled);
        assert_eq!(from_vars(&[("WS_ENABLED", "true")]).unwrap().ws, WsMode::Echo);
        let proxy = from_vars(&[
            ("WS_ENABLED", "true"),
            ("WS_PROXY_TARGET", "example.com"),
            ("WS_PROXY_SECURE", "true"),
        ])
        .unwrap();
        let WsMode::Proxy(proxy) = proxy.ws else { panic!("expected a proxy, got {:?}", proxy.ws) };
        assert_eq!(
            (proxy.scheme, proxy.authority.to_string()),
            (Scheme::Wss, "example.com:443".to_owned())
        );
        let bad = from_vars(&[("WS_ENABLED", "true"), ("WS_PROXY_TARGET", "a b")]);
        assert!(matches!(bad, Err(ConfigError::BadWsProxyTarget(_))));
    }

    #[test]
    fn tcp_port_and_ca_files() {
        let config = from_vars(&[
            ("TCP_PORT", "7777"),
            ("NODE_EXTRA_CA_CERTS", INJECTED_CA_FILE),
            ("WHARF_EXTRA_CA_CERTS", "/tmp/extra.pem"),
        ])
        .unwrap();
        assert_eq!(config.tcp_echo_port, Some(7777));
        assert_eq!(
            config.ca_files,
            [PathBuf::from(INJECTED_CA_FILE), PathBuf::from("/tmp/extra.pem")]
        );
        assert_eq!(
            from_vars(&[("TCP_PORT", "x")]),
            Err(ConfigError::BadPort { var: "TCP_PORT", value: "x".to_owned() })
        );
    }

    fn error(vars: &[(&str, &str)]) -> String {
        match from_vars(vars) {
            Ok(config) => format!("unexpectedly ok: {config:?}"),
            Err(err) => crate::errors::chain(&err),
        }
    }

    #[test]
    fn fake_internet_roles() {
        let config = from_vars(&[
            ("UDP_PORT", "5353"),
            ("GREETING_PORT", " 2525 "),
            ("DNS_STUB", "1"),
            ("DNS_RECORDS", "example.com=10.201.0.10,v6.example.com=2001:db8::10"),
        ])
        .unwrap();
        assert_eq!((config.udp_echo_port, config.greeting_port), (Some(5353), Some(2525)));
        let stub = config.dns_stub.unwrap();
        assert_eq!(stub.port, DEFAULT_DNS_PORT);
        assert_eq!(stub.zone.records().len(), 2);

        let stub = from_vars(&[("DNS_STUB", "true"), ("DNS_PORT", "0")]).unwrap().dns_stub;
        assert_eq!(stub, Some(DnsStubConfig { port: 0, zone: Zone::default() }));
        assert_eq!(from_vars(&[("DNS_STUB", "0")]).unwrap().dns_stub, None);
        assert_eq!(from_vars(&[("DNS_STUB", "")]).unwrap().dns_stub, None);
    }

    #[test]
    fn fake_internet_errors() {
        assert_eq!(error(&[("UDP_PORT", "-1")]), r#"UDP_PORT must be a port number, got "-1""#);
        assert_eq!(
            error(&[("GREETING_PORT", "65536")]),
            r#"GREETING_PORT must be a port number, got "65536""#
        );
        assert_eq!(
            error(&[("DNS_STUB", "yes")]),
            r#"DNS_STUB must be 1 or 0 (or true or false), got "yes""#
        );
        assert_eq!(
            error(&[("DNS_STUB", "1"), ("DNS_PORT", "dns")]),
            r#"DNS_PORT must be a port number, got "dns""#
        );
        assert_eq!(
            error(&[("DNS_STUB", "1"), ("DNS_RECORDS", "example.com")]),
            r#"DNS_RECORDS is not a list of name=ip: entry "example.com" is not name=ip"#
        );
        assert_eq!(
            error(&[("DNS_RECORDS", "example.com=10.0.0.1")]),
            "DNS_RECORDS is set but DNS_STUB is not 1"
        );
        assert_eq!(
            error(&[("DNS_STUB", "0"), ("DNS_PORT", "53")]),
            "DNS_PORT is set but DNS_STUB is not 1"
        );
    }
}
