//! Where to dial: the `host[:port][/path]` strings the tests send (`x-host`, `x-tcp-target`,
//! `WS_PROXY_TARGET`), parsed into a host, a port and a path.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

/// Why a target string cannot be dialled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// The string names no host.
    #[error("empty host in {0:?}")]
    EmptyHost(String),
    /// The host is neither an IP literal nor a plausible DNS name.
    #[error("invalid host in {0:?}")]
    BadHost(String),
    /// The port is not a number from 0 to 65535.
    #[error("invalid port in {0:?}")]
    BadPort(String),
    /// A port is required but absent.
    #[error("missing port in {0:?}")]
    MissingPort(String),
}

/// The URL schemes the app dials, which decide the default port and whether TLS is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `http://`, port 80.
    Http,
    /// `https://`, port 443.
    Https,
    /// `ws://`, port 80.
    Ws,
    /// `wss://`, port 443.
    Wss,
}

/// A host as dialled: a name to resolve, or an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A DNS name, lowercase.
    Name(String),
    /// An IP literal.
    Ip(IpAddr),
}

/// A host and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    host: Host,
    port: u16,
}

/// An authority plus the path to request, from `x-host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    authority: Authority,
    path: String,
}

// === impl Scheme ===

impl Scheme {
    /// The port used when none is given.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http | Scheme::Ws => 80,
            Scheme::Https | Scheme::Wss => 443,
        }
    }

    /// Whether the connection is wrapped in TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Scheme::Https | Scheme::Wss)
    }

    /// The scheme as written in a URL, without `://`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
        }
    }
}

// === impl Host ===

impl Host {
    fn parse(raw: &str, whole: &str) -> Result<Host, TargetError> {
        if raw.is_empty() {
            return Err(TargetError::EmptyHost(whole.to_owned()));
        }
        if let Ok(ip) = raw.parse::<IpAddr>() {
            return Ok(Host::Ip(ip));
        }
        let valid = raw.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
        if !valid {
            return Err(TargetError::BadHost(whole.to_owned()));
        }
        Ok(Host::Name(raw.to_ascii_lowercase()))
    }
}

impl FromStr for Host {
    type Err = TargetError;

    /// Parses an IP literal (IPv6 without brackets) or a DNS name, which is lowercased.
    fn from_str(raw: &str) -> Result<Host, TargetError> {
        Host::parse(raw.trim(), raw)
    }
}

impl fmt::Display for Host {
    /// Writes the host as in a URL: IPv6 literals in brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V4(v4)) => write!(f, "{v4}"),
            Host::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]"),
        }
    }
}

// === impl Authority ===

impl Authority {
    /// Parses `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 literal, using
    /// `default_port` when none is written.
    pub fn parse_with_default(raw: &str, default_port: u16) -> Result<Authority, TargetError> {
        let (host, port) = split_host_port(raw)?;
        Ok(Authority { host, port: port.unwrap_or(default_port) })
    }

    /// Parses `host:port` or `[v6]:port`, where the port is required.
    pub fn parse_host_port(raw: &str) -> Result<Authority, TargetError> {
        match split_host_port(raw)? {
            (host, Some(port)) => Ok(Authority { host, port }),
            (_, None) => Err(TargetError::MissingPort(raw.to_owned())),
        }
    }

    /// The host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `Host` header value for `scheme`: the port is left out when it is the default.
    pub fn host_header(&self, scheme: Scheme) -> String {
        if self.port == scheme.default_port() { self.host.to_string() } else { self.to_string() }
    }
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

// === impl HttpTarget ===

impl HttpTarget {
    /// Parses `authority[/path]`; the path defaults to `/`.
    pub fn parse(raw: &str, scheme: Scheme) -> Result<HttpTarget, TargetError> {
        let (authority, path) = match raw.find('/') {
            Some(slash) => raw.split_at(slash),
            None => (raw, "/"),
        };
        let authority = Authority::parse_with_default(authority, scheme.default_port())?;
        Ok(HttpTarget { authority, path: path.to_owned() })
    }

    /// Where to connect.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The request target, starting with `/`.
    pub fn path(&self) -> &str {
        &self.path
    }
}

/// Splits off an optional port. A bare IPv6 literal (`111::`) is a host without a port.
fn split_host_port(raw: &str) -> Result<(Host, Option<u16>), TargetError> {
    let raw = raw.trim();
    if let Some(rest) = raw.strip_prefix('[') {
        let (v6, after) =
            rest.split_once(']').ok_or_else(|| TargetError::BadHost(raw.to_owned()))?;
        let ip = v6.parse::<Ipv6Addr>().map_err(|_| TargetError::BadHost(raw.to_owned()))?;
        let port = match after {
            "" => None,
            _ => Some(parse_port(after.strip_prefix(':'), raw)?),
        };
        return Ok((Host::Ip(IpAddr::V6(ip)), port));
    }
    if let Ok(v6) = raw.parse::<Ipv6Addr>() {
        return Ok((Host::Ip(IpAddr::V6(v6)), None));
    }
    match raw.rsplit_once(':') {
        Some((host, port)) => Ok((Host::parse(host, raw)?, Some(parse_port(Some(port), raw)?))),
        None => Ok((Host::parse(raw, raw)?, None)),
    }
}

fn parse_port(port: Option<&str>, whole: &str) -> Result<u16, TargetError> {
    port.and_then(|p| p.parse().ok()).ok_or_else(|| TargetError::BadPort(whole.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, scheme: Scheme, expect: &str) {
        let got = match HttpTarget::parse(raw, scheme) {
            Ok(t) => format!(
                "dial {} host {:?} path {}",
                t.authority,
                t.authority.host_header(scheme),
                t.path
            ),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expect, "{raw}");
    }

    #[test]
    fn x_host_forms() {
        use Scheme::*;
        check("11.0.0.1", Http, r#"dial 11.0.0.1:80 host "11.0.0.1" path /"#);
        check("11.0.0.1:9999", Http, r#"dial 11.0.0.1:9999 host "11.0.0.1:9999" path /"#);
        check("1.2.3.4:80", Http, r#"dial 1.2.3.4:80 host "1.2.3.4" path /"#);
        check("[111::]:80", Http, r#"dial [111::]:80 host "[111::]" path /"#);
        check("[111::]", Http, r#"dial [111::]:80 host "[111::]" path /"#);
        check("111::", Http, r#"dial [111::]:80 host "[111::]" path /"#);
        check(
            "Google.com/hello/world",
            Http,
            r#"dial google.com:80 host "google.com" path /hello/world"#,
        );
        check("example.com", Https, r#"dial example.com:443 host "example.com" path /"#);
        check(
            "example.com:8443/x?y=1",
            Https,
            r#"dial example.com:8443 host "example.com:8443" path /x?y=1"#,
        );
        check("", Http, r#"error: empty host in """#);
        check("host:http", Http, r#"error: invalid port in "host:http""#);
        check("host:70000", Http, r#"error: invalid port in "host:70000""#);
        check("[::1", Http, r#"error: invalid host in "[::1""#);
        check("[::1]x", Http, r#"error: invalid port in "[::1]x""#);
        check("a b", Http, r#"error: invalid host in "a b""#);
    }

    #[test]
    fn tcp_targets_need_a_port() {
        let ok = Authority::parse_host_port("11.0.0.1:7777").unwrap();
        assert_eq!(ok.to_string(), "11.0.0.1:7777");
        assert_eq!(ok.port(), 7777);
        let named = Authority::parse_host_port("db.internal:5432").unwrap();
        assert_eq!(named.host(), &Host::Name("db.internal".to_owned()));
        assert_eq!(
            Authority::parse_host_port("11.0.0.1"),
            Err(TargetError::MissingPort("11.0.0.1".to_owned()))
        );
    }
}
