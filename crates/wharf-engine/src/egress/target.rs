//! Pure: where a mapping sends matching traffic (http-api.md, "Egress mappings").
//!
//! `http`/`https` mappings name an HTTP base URL on the host (`http://127.0.0.1:9000`, an
//! optional path prefix); `tcp` mappings name `HOST:PORT` on the host.

use std::fmt;

use wharf_policy::Protocol;

/// A validated handler target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An HTTP server on the host that receives each request.
    Http {
        /// `host:port` to connect to.
        authority: String,
        /// A path prefix (no trailing `/`), prepended to each request's path.
        prefix: String,
    },
    /// A TCP endpoint on the host that gets the raw bytes.
    Tcp {
        /// `host:port` to connect to.
        authority: String,
    },
}

/// Why a target string is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TargetError(String);

impl Target {
    /// Parses the `target` of a mapping of `protocol`.
    pub fn parse(protocol: Protocol, raw: &str) -> Result<Target, TargetError> {
        let raw = raw.trim();
        match protocol {
            Protocol::Http | Protocol::Https => parse_http(raw),
            Protocol::Tcp => {
                check_authority(raw).map_err(|why| {
                    TargetError(format!("tcp target {raw:?} must be HOST:PORT on the host ({why})"))
                })?;
                Ok(Target::Tcp { authority: raw.to_owned() })
            }
        }
    }

    /// `host:port` to connect to.
    pub fn authority(&self) -> &str {
        match self {
            Target::Http { authority, .. } | Target::Tcp { authority } => authority,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Http { authority, prefix } => write!(f, "http://{authority}{prefix}"),
            Target::Tcp { authority } => f.write_str(authority),
        }
    }
}

fn parse_http(raw: &str) -> Result<Target, TargetError> {
    let bad = |why: &str| {
        TargetError(format!(
            "http target {raw:?} must be an http:// base URL on the host, e.g. http://127.0.0.1:9000 ({why})"
        ))
    };
    let rest = raw.strip_prefix("http://").ok_or_else(|| bad("only http:// is supported"))?;
    if rest.contains(['?', '#']) {
        return Err(bad("no query or fragment"));
    }
    let (authority, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let authority = if authority.contains(':') || authority.ends_with(']') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    check_authority(&authority).map_err(|why| bad(&why))?;
    Ok(Target::Http { authority, prefix: prefix.to_owned() })
}

fn check_authority(raw: &str) -> Result<(), String> {
    let (host, port) = raw.rsplit_once(':').ok_or("no port")?;
    let port: u16 = port.parse().map_err(|_| format!("bad port {port:?}"))?;
    if port == 0 {
        return Err("port 0".to_owned());
    }
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let ok = !host.is_empty()
        && (host.parse::<std::net::IpAddr>().is_ok()
            || host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')));
    if ok { Ok(()) } else { Err(format!("bad host {host:?}")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_targets() {
        let t = Target::parse(Protocol::Http, "http://127.0.0.1:9000").unwrap();
        assert_eq!(
            t,
            Target::Http { authority: "127.0.0.1:9000".to_owned(), prefix: String::new() }
        );
        let t = Target::parse(Protocol::Https, "http://localhost/hooks/").unwrap();
        assert_eq!(
            t,
            Target::Http { authority: "localhost:80".to_owned(), prefix: "/hooks".to_owned() }
        );
        assert_eq!(t.to_string(), "http://localhost:80/hooks");
        let t = Target::parse(Protocol::Http, "http://[::1]:8080").unwrap();
        assert_eq!(t.authority(), "[::1]:8080");
        for bad in [
            "https://x:1",
            "127.0.0.1:9000",
            "http://:9000",
            "http://x:0",
            "http://x:99999",
            "http://x:1/?q",
            "http://a b:1",
        ] {
            assert!(Target::parse(Protocol::Http, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tcp_targets() {
        assert_eq!(
            Target::parse(Protocol::Tcp, "127.0.0.1:7000").unwrap().to_string(),
            "127.0.0.1:7000"
        );
        assert!(Target::parse(Protocol::Tcp, "http://127.0.0.1:7000").is_err());
        assert!(Target::parse(Protocol::Tcp, "127.0.0.1").is_err());
    }
}
