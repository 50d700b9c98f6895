//! The three egress protocols, their names and default ports.

use std::fmt;
use std::str::FromStr;

use crate::PolicyError;

/// Which kind of egress mapping: what the engine serves on an accepted connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// Plain HTTP, matched by the `Host` name or the destination address.
    Http,
    /// HTTPS, decrypted in the sidecar, matched by the TLS server name or the destination address.
    Https,
    /// Raw TCP, matched by the destination address only.
    Tcp,
}

// === impl Protocol ===

impl Protocol {
    /// Every protocol, in declaration order.
    pub const ALL: [Protocol; 3] = [Protocol::Http, Protocol::Https, Protocol::Tcp];

    /// The port a `hostPort` without one gets: 80, 443, or 0 (every port) for TCP.
    pub fn default_port(self) -> u16 {
        match self {
            Protocol::Http => 80,
            Protocol::Https => 443,
            Protocol::Tcp => 0,
        }
    }

    /// The lowercase name: `http`, `https` or `tcp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Https => "https",
            Protocol::Tcp => "tcp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses `http`, `https` or `tcp`, in any case.
impl FromStr for Protocol {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Protocol, PolicyError> {
        Protocol::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| PolicyError::UnknownProtocol(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ports_round_trip() {
        for p in Protocol::ALL {
            assert_eq!(p.as_str().parse::<Protocol>(), Ok(p));
            assert_eq!(p.as_str().to_uppercase().parse::<Protocol>(), Ok(p));
            assert_eq!(p.to_string(), p.as_str());
        }
        let ports = Protocol::ALL.map(Protocol::default_port);
        assert_eq!(ports, [80, 443, 0]);
        let err = "udp".parse::<Protocol>().unwrap_err();
        assert_eq!(err.to_string(), r#"unknown egress protocol "udp"; use http, https or tcp"#);
    }
}
