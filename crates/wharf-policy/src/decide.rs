//! The per-connection decision: which mapping, if any, handles an intercepted connection.
//!
//! [`decide()`] and [`explain`](fn@crate::explain) share one walk, so `wharf why` can never tell a
//! story that differs from what the engine did.

use std::net::{IpAddr, SocketAddr};

use crate::explain::{Outcome, Skip, Stage};
use crate::{Destination, Mapping, Protocol, Table};

/// What the sidecar learned about an intercepted connection (the egress `CONNECT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection<'a> {
    /// The original destination the app dialled.
    pub dst: SocketAddr,
    /// The TLS server name from the ClientHello. Implies TLS. Empty counts as absent.
    pub sni: Option<&'a str>,
    /// The `Host` of a plain HTTP request, on any port (W10). A `:port` suffix and IPv6
    /// brackets are ignored; empty counts as absent.
    pub hostname: Option<&'a str>,
    /// The app's first bytes were a TLS ClientHello, with or without SNI.
    pub tls: bool,
}

/// What to do with a connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision<'a, T> {
    /// Serve it with this mapping's target: HTTP for http and https mappings (the sidecar
    /// terminates TLS for https), a byte pump to the handler for tcp.
    Handle {
        /// The mapping's position in the table.
        index: usize,
        /// The mapping.
        mapping: &'a Mapping<T>,
    },
    /// No mapping matched and the internet is on: connect to the original destination.
    PassThrough,
    /// No mapping matched and the internet is off: reset the connection.
    Refuse,
}

/// Decides what happens to `conn`, given the table and whether the instance may reach the
/// internet. The order (engine spec §3.6, with W8, W9 and W10 fixed):
///
/// 1. **SNI** present: the https lookup, with the SNI for globs and the address for CIDRs.
/// 2. **Host** present on a connection that is not TLS, on any port (W10): the http lookup,
///    with the `Host` for globs and the address for CIDRs.
/// 3. **TLS without SNI**: the https lookup by address only, so CIDR https mappings handle
///    it and the sidecar mints a certificate for the IP (W8).
/// 4. **TCP**, by address and port, whether or not steps 1–3 ran (W9: a TCP rule is never
///    shadowed by pass-through).
/// 5. Otherwise [`Decision::PassThrough`] with `internet`, else [`Decision::Refuse`].
///
/// Each lookup scans the table in order, skips mappings of other protocols and those whose
/// port is neither 0 nor the destination port, and takes the first whose CIDR contains the
/// address or whose glob matches the name.
///
/// A connection with neither TLS nor a `Host` (raw bytes, or nothing sent yet) never reaches
/// an http mapping, not even a CIDR one: serving HTTP on it would break whatever protocol it
/// speaks, as in workerd, which consults http mappings only with `X-Hostname`.
///
/// IPv4-mapped IPv6 destinations (`::ffff:1.2.3.4`) are looked up as IPv4.
pub fn decide<'a, T>(
    table: &'a Table<T>,
    conn: &Connection<'_>,
    internet: bool,
) -> Decision<'a, T> {
    walk(table, conn, internet, &mut Silent)
}

// === impl Connection ===

impl<'a> Connection<'a> {
    /// The server name, if non-empty.
    pub fn sni(&self) -> Option<&'a str> {
        self.sni.filter(|s| !s.is_empty())
    }

    /// The `Host` name without port or brackets, if non-empty.
    pub fn host_name(&self) -> Option<&'a str> {
        self.hostname.map(without_port).filter(|s| !s.is_empty())
    }

    /// Did the app speak TLS (a ClientHello, or a server name)?
    pub fn is_tls(&self) -> bool {
        self.tls || self.sni().is_some()
    }

    /// The destination address, IPv4-mapped IPv6 turned into IPv4.
    pub fn ip(&self) -> IpAddr {
        self.dst.ip().to_canonical()
    }
}

// === impl Decision ===

impl<'a, T> Decision<'a, T> {
    /// The handling mapping, if any.
    pub fn mapping(&self) -> Option<&'a Mapping<T>> {
        match self {
            Decision::Handle { mapping, .. } => Some(mapping),
            Decision::PassThrough | Decision::Refuse => None,
        }
    }

    /// The handling mapping's target, if any.
    pub fn target(&self) -> Option<&'a T> {
        self.mapping().map(|m| &m.target)
    }
}

impl<T> Clone for Decision<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

// Not derived: the derive would ask for `T: Copy`, but only a reference is held.
impl<T> Copy for Decision<'_, T> {}

/// One lookup: a protocol, the name (if this step has one), and the destination.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Query<'n> {
    pub(crate) protocol: Protocol,
    pub(crate) name: Option<&'n str>,
    pub(crate) ip: IpAddr,
    pub(crate) port: u16,
}

/// Watches the walk; [`explain`](fn@crate::explain) records it, [`decide()`] ignores it.
pub(crate) trait Tracer {
    /// `stage` did not run.
    fn skipped(&mut self, stage: Stage, why: Skip);
    /// `stage` runs `query`; its attempts follow.
    fn lookup(&mut self, stage: Stage, query: &Query<'_>);
    /// The mapping at `index` was tried.
    fn attempt<T>(&mut self, index: usize, mapping: &Mapping<T>, outcome: Outcome);
}

struct Silent;

impl Tracer for Silent {
    fn skipped(&mut self, _: Stage, _: Skip) {}
    fn lookup(&mut self, _: Stage, _: &Query<'_>) {}
    fn attempt<T>(&mut self, _: usize, _: &Mapping<T>, _: Outcome) {}
}

/// The decision procedure documented on [`decide()`].
pub(crate) fn walk<'a, T>(
    table: &'a Table<T>,
    conn: &Connection<'_>,
    internet: bool,
    tracer: &mut impl Tracer,
) -> Decision<'a, T> {
    let (ip, port) = (conn.ip(), conn.dst.port());
    let query = |protocol, name| Query { protocol, name, ip, port };

    match conn.sni() {
        Some(sni) => {
            if let Some(hit) = lookup(table, Stage::Sni, query(Protocol::Https, Some(sni)), tracer)
            {
                return hit;
            }
        }
        None => tracer.skipped(Stage::Sni, Skip::NoSni),
    }

    match conn.host_name() {
        Some(_) if conn.is_tls() => tracer.skipped(Stage::Hostname, Skip::HostnameOnTls),
        Some(host) => {
            if let Some(hit) =
                lookup(table, Stage::Hostname, query(Protocol::Http, Some(host)), tracer)
            {
                return hit;
            }
        }
        None => tracer.skipped(Stage::Hostname, Skip::NoHostname),
    }

    if conn.sni().is_some() {
        tracer.skipped(Stage::TlsAddress, Skip::SniPresent);
    } else if !conn.is_tls() {
        tracer.skipped(Stage::TlsAddress, Skip::NotTls);
    } else if let Some(hit) = lookup(table, Stage::TlsAddress, query(Protocol::Https, None), tracer)
    {
        return hit;
    }

    if let Some(hit) = lookup(table, Stage::Tcp, query(Protocol::Tcp, None), tracer) {
        return hit;
    }

    if internet { Decision::PassThrough } else { Decision::Refuse }
}

/// First match for `query` in table order (engine spec §3.8).
fn lookup<'a, T>(
    table: &'a Table<T>,
    stage: Stage,
    query: Query<'_>,
    tracer: &mut impl Tracer,
) -> Option<Decision<'a, T>> {
    tracer.lookup(stage, &query);
    for (index, mapping) in table.mappings().iter().enumerate() {
        if mapping.protocol != query.protocol {
            continue;
        }
        let outcome = try_mapping(mapping, &query);
        tracer.attempt(index, mapping, outcome);
        if outcome == Outcome::Match {
            return Some(Decision::Handle { index, mapping });
        }
    }
    None
}

/// Does `mapping` (of the query's protocol) match?
fn try_mapping<T>(mapping: &Mapping<T>, query: &Query<'_>) -> Outcome {
    if mapping.port != 0 && mapping.port != query.port {
        return Outcome::PortDiffers;
    }
    match (&mapping.dest, query.name) {
        (Destination::Cidr(net), _) if net.contains(&query.ip) => Outcome::Match,
        (Destination::Cidr(_), _) => Outcome::AddressOutside,
        (Destination::Host(_), None) => Outcome::NoName,
        (Destination::Host(glob), Some(name)) if glob.matches(name) => Outcome::Match,
        (Destination::Host(_), Some(_)) => Outcome::NameDiffers,
    }
}

/// `example.com:8080` → `example.com`, `[::1]:80` → `::1`; anything else unchanged.
fn without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(inside, _)| inside);
    }
    match host.split_once(':') {
        Some((name, port)) if !port.contains(':') => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests;
