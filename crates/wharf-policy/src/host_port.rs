//! `hostPort` strings: `<ip|cidr|hostnameGlob>[:port]`, parsed into a [`Destination`] and a port.
//!
//! The grammar is the Container API's (engine spec §3.8), with its holes closed:
//!
//! * `[v6]` or `[v6]:port`, where `v6` is an IPv6 address or CIDR. An unclosed `[` is an error,
//!   and so is anything after `]` but `:port`.
//! * Otherwise, a string with exactly one `:` is `host:port`, and a string with none is a host
//!   alone. A string with two or more is an IPv6 address or CIDR with no port (`fe80::1`,
//!   `::/0`, `::1`): it is never split.
//! * A port is 0–65535 in decimal digits; `:0` means every port. Without a port the protocol's
//!   default applies: 80 for http, 443 for https, every port for tcp.
//! * The host is an IP (which becomes a /32 or /128), a CIDR, or else a [`HostGlob`].
//!   `tcp` takes addresses only: a TCP connection carries no name to match (W31).
//!
//! **IPv4-mapped IPv6 is IPv4**: `::ffff:1.2.3.4` is stored as `1.2.3.4`, because that is how
//! such traffic leaves the app and how [`decide`](fn@crate::decide) looks it up.
//!
//! **CIDRs are normalised to their network**: `10.1.2.3/8` is stored, shown and compared as
//! `10.0.0.0/8`. Both match the same addresses, so they are one mapping for upsert, which is
//! also what workerd does by comparing CIDRs by their canonical string.

use std::fmt;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};

use crate::{GlobProblem, HostGlob, PolicyError, Protocol};

/// What a mapping matches: addresses, or names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Destination {
    /// Every address in the network. Built through [`Destination::cidr`] it is in canonical
    /// (network) form; a bare IP is a /32 or /128.
    Cidr(IpNet),
    /// Every name the glob matches: the TLS server name for https, the `Host` for http.
    Host(HostGlob),
}

/// A parsed `hostPort`: a destination and a port (0 = every port).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// What the mapping matches.
    pub dest: Destination,
    /// The destination port; 0 matches every port.
    pub port: u16,
}

// === impl Destination ===

impl Destination {
    /// A CIDR destination in canonical form: host bits cleared (`10.1.2.3/8` → `10.0.0.0/8`),
    /// and IPv4-mapped IPv6 written as IPv4 (`::ffff:10.0.0.0/104` → `10.0.0.0/8`), since
    /// that is how such traffic reaches the sidecar and how [`decide`](fn@crate::decide) sees it.
    pub fn cidr(net: IpNet) -> Destination {
        Destination::Cidr(canonical_net(net))
    }

    /// The single address `ip`, as a /32 or /128 (IPv4-mapped IPv6 as IPv4).
    pub fn ip(ip: IpAddr) -> Destination {
        Destination::cidr(IpNet::from(ip))
    }

    /// The same destination in canonical form (see [`Destination::cidr`]).
    pub fn canonical(self) -> Destination {
        match self {
            Destination::Cidr(net) => Destination::cidr(net),
            host @ Destination::Host(_) => host,
        }
    }

    /// Equal in canonical form, without building it: CIDRs by network, globs by text.
    pub(crate) fn same(&self, other: &Destination) -> bool {
        match (self, other) {
            (Destination::Cidr(a), Destination::Cidr(b)) => canonical_net(*a) == canonical_net(*b),
            (Destination::Host(a), Destination::Host(b)) => a == b,
            _ => false,
        }
    }

    /// The network, for a CIDR destination.
    pub fn as_cidr(&self) -> Option<&IpNet> {
        match self {
            Destination::Cidr(net) => Some(net),
            Destination::Host(_) => None,
        }
    }

    /// The glob, for a hostname destination.
    pub fn as_glob(&self) -> Option<&HostGlob> {
        match self {
            Destination::Cidr(_) => None,
            Destination::Host(glob) => Some(glob),
        }
    }

    /// Reads the host part of a `hostPort`; `raw` is the whole string, for error messages.
    fn parse(raw: &str, host: &str, bracketed: bool) -> Result<Destination, PolicyError> {
        let err = |make: fn(String, String) -> PolicyError| make(raw.to_owned(), host.to_owned());
        let parsed = if let Ok(ip) = host.parse::<IpAddr>() {
            Some(Destination::ip(ip))
        } else if host.contains('/') {
            // `::/0:80` lands here whole: the IPv6 message says to bracket it.
            let bad = if host.contains(':') { bad_ipv6 } else { bad_cidr };
            let net = host.parse::<IpNet>().map_err(|_| err(bad))?;
            Some(Destination::cidr(net))
        } else {
            None
        };
        match parsed {
            // An address that parsed is IPv6 exactly when it has a colon.
            Some(_) if bracketed && !host.contains(':') => Err(err(bracket_not_ipv6)),
            Some(dest) => Ok(dest),
            None if bracketed => Err(err(bracket_not_ipv6)),
            None if host.contains(':') => Err(err(bad_ipv6)),
            None => HostGlob::new(host).map(Destination::Host),
        }
    }
}

/// A full-length CIDR shows as its address (`1.2.3.4`), others as the network (`10.0.0.0/8`).
impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Cidr(net) if net.prefix_len() == net.max_prefix_len() => net.addr().fmt(f),
            Destination::Cidr(net) => net.fmt(f),
            Destination::Host(glob) => glob.fmt(f),
        }
    }
}

// === impl HostPort ===

impl HostPort {
    /// Parses `raw` for `protocol`, whose default port applies when `raw` has none. See the
    /// module documentation for the grammar.
    pub fn parse(raw: &str, protocol: Protocol) -> Result<HostPort, PolicyError> {
        let (host, port, bracketed) = split(raw)?;
        if host.is_empty() {
            return Err(PolicyError::EmptyHost { raw: raw.to_owned() });
        }
        let port = match port {
            None => protocol.default_port(),
            Some("") => return Err(PolicyError::EmptyPort { raw: raw.to_owned() }),
            Some(digits) => parse_port(digits).ok_or_else(|| PolicyError::BadPort {
                raw: raw.to_owned(),
                port: digits.to_owned(),
            })?,
        };
        let dest = Destination::parse(raw, host, bracketed);
        if protocol == Protocol::Tcp && names_a_host(&dest) {
            return Err(PolicyError::TcpHostname { raw: raw.to_owned(), host: host.to_owned() });
        }
        Ok(HostPort { dest: dest?, port })
    }
}

/// The canonical form, which [`HostPort::parse`] reads back to an equal value for any protocol:
/// the port is always written (`:0` for every port), and IPv6 is bracketed
/// (`[fd00::/8]:443`).
impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.dest {
            Destination::Cidr(IpNet::V6(_)) => write!(f, "[{}]:{}", self.dest, self.port),
            dest => write!(f, "{dest}:{}", self.port),
        }
    }
}

/// Splits `raw` into host, optional port text, and whether the host was bracketed.
fn split(raw: &str) -> Result<(&str, Option<&str>, bool), PolicyError> {
    if let Some(rest) = raw.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err(PolicyError::UnclosedBracket { raw: raw.to_owned() });
        };
        return match after {
            "" => Ok((host, None, true)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port), true)),
                None => {
                    Err(PolicyError::AfterBracket { raw: raw.to_owned(), rest: after.to_owned() })
                }
            },
        };
    }
    match raw.split_once(':') {
        // Exactly one colon: host and port. Two or more: an unbracketed IPv6 host.
        Some((host, port)) if !port.contains(':') => Ok((host, Some(port), false)),
        _ => Ok((raw, None, false)),
    }
}

/// Decimal digits only: `u16::from_str` would also take `+80`.
fn parse_port(digits: &str) -> Option<u16> {
    if digits.bytes().all(|b| b.is_ascii_digit()) { digits.parse().ok() } else { None }
}

/// Is this a hostname (valid or not) rather than an address? A mistyped IP address such as
/// `1.2.3.999` is not: its own error says so, which helps a tcp user more.
fn names_a_host(dest: &Result<Destination, PolicyError>) -> bool {
    match dest {
        Ok(dest) => matches!(dest, Destination::Host(_)),
        Err(PolicyError::BadGlob { problem, .. }) => *problem != GlobProblem::Numeric,
        Err(_) => false,
    }
}

/// Host bits cleared; IPv4-mapped IPv6 (`::ffff:0:0/96` and narrower) as IPv4.
fn canonical_net(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net
        && let Some(v4) = v6.addr().to_ipv4_mapped()
        && v6.prefix_len() >= 96
    {
        let v4 =
            Ipv4Net::new(v4, v6.prefix_len() - 96).expect("96..=128 minus 96 is a valid prefix");
        return IpNet::V4(v4.trunc());
    }
    net.trunc()
}

fn bad_cidr(raw: String, host: String) -> PolicyError {
    PolicyError::BadCidr { raw, host }
}

fn bad_ipv6(raw: String, host: String) -> PolicyError {
    PolicyError::BadIpv6 { raw, host }
}

fn bracket_not_ipv6(raw: String, host: String) -> PolicyError {
    PolicyError::BracketNotIpv6 { raw, host }
}

#[cfg(test)]
mod tests;
