//! The ordered mapping table: upsert in place, first match wins, and the DNS allow-list it implies.

use std::net::IpAddr;

use crate::{Destination, HostPort, PolicyError, Protocol, SYNTHETIC_V4, SYNTHETIC_V6};

/// One egress rule: connections of `protocol` to `dest` on `port` go to `target`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mapping<T> {
    /// Which lookup the mapping takes part in.
    pub protocol: Protocol,
    /// The addresses or names it matches.
    pub dest: Destination,
    /// The destination port; 0 matches every port.
    pub port: u16,
    /// Where matched connections go (a channel, a handler URL, an id in tests).
    pub target: T,
}

/// The mappings of one instance, in the order they were first added.
///
/// Lookups scan in order and the first hit wins. There is no removal: a mapping lives as long
/// as the instance's egress configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table<T> {
    mappings: Vec<Mapping<T>>,
}

/// What [`Table::upsert`] did, with the mapping's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Upsert {
    /// A mapping with the same protocol, destination and port was there; its target was
    /// replaced and it kept its position.
    Replaced(usize),
    /// The mapping was appended.
    Added(usize),
}

// === impl Mapping ===

impl<T> Mapping<T> {
    /// A mapping from a parsed `hostPort`.
    pub fn new(protocol: Protocol, host_port: HostPort, target: T) -> Mapping<T> {
        let HostPort { dest, port } = host_port;
        Mapping { protocol, dest, port, target }
    }

    /// Parses `raw` as a `hostPort` for `protocol` (see [`HostPort::parse`]).
    pub fn parse(protocol: Protocol, raw: &str, target: T) -> Result<Mapping<T>, PolicyError> {
        Ok(Mapping::new(protocol, HostPort::parse(raw, protocol)?, target))
    }

    /// The rule without its target, e.g. `https *.example.com:443` or `tcp [fd00::/8]:0`.
    pub fn rule(&self) -> String {
        let host_port = HostPort { dest: self.dest.clone(), port: self.port };
        format!("{} {host_port}", self.protocol)
    }

    /// Do the two mappings have the same protocol, destination and port, so that an upsert of
    /// one replaces the other? CIDRs compare in canonical form, globs by their text.
    pub fn same_rule<U>(&self, other: &Mapping<U>) -> bool {
        self.protocol == other.protocol && self.port == other.port && self.dest.same(&other.dest)
    }
}

// === impl Table ===

impl<T> Table<T> {
    /// An empty table.
    pub fn new() -> Self {
        Table { mappings: Vec::new() }
    }

    /// Adds `mapping`, or, when one with the same protocol, destination and port exists,
    /// replaces that one's target in place so that it keeps its position (engine spec §3.8).
    pub fn upsert(&mut self, mapping: Mapping<T>) -> Upsert {
        let mapping = Mapping { dest: mapping.dest.canonical(), ..mapping };
        match self.mappings.iter().position(|m| m.same_rule(&mapping)) {
            Some(index) => {
                self.mappings[index].target = mapping.target;
                Upsert::Replaced(index)
            }
            None => {
                self.mappings.push(mapping);
                Upsert::Added(self.mappings.len() - 1)
            }
        }
    }

    /// The mappings, in lookup order.
    pub fn mappings(&self) -> &[Mapping<T>] {
        &self.mappings
    }

    /// The number of mappings.
    pub fn len(&self) -> usize {
        self.mappings.len()
    }

    /// Has nothing been mapped yet?
    pub fn is_empty(&self) -> bool {
        self.mappings.is_empty()
    }

    /// The hostname globs the sidecar's DNS server must resolve (engine spec §3.4, with W32
    /// fixed), in mapping order:
    ///
    /// * each http or https glob, once;
    /// * `*` alone, as soon as some mapping would catch every name: a `*` glob, or a CIDR
    ///   mapping of any protocol that contains the synthetic address of its family
    ///   ([`SYNTHETIC_V4`], [`SYNTHETIC_V6`]). Only then does a synthetic answer for an
    ///   arbitrary name reach a handler; `1.2.3.4` or `10.0.0.0/8` open no names;
    /// * `[]` for an empty table.
    ///
    /// A tcp glob (only constructible by hand; [`HostPort::parse`] refuses it) opens nothing,
    /// since no TCP lookup has a name (W31).
    pub fn dns_allow_list(&self) -> Vec<String> {
        let mut list: Vec<String> = Vec::new();
        for mapping in &self.mappings {
            match &mapping.dest {
                Destination::Cidr(net) if net.contains(&synthetic_for(net.addr())) => {
                    return vec!["*".to_owned()];
                }
                Destination::Cidr(_) => {}
                Destination::Host(_) if mapping.protocol == Protocol::Tcp => {}
                Destination::Host(glob) if glob.is_everything() => return vec!["*".to_owned()],
                Destination::Host(glob) => {
                    if !list.iter().any(|g| g == glob.as_str()) {
                        list.push(glob.as_str().to_owned());
                    }
                }
            }
        }
        list
    }
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table::new()
    }
}

/// Upserts each mapping in turn.
impl<T> FromIterator<Mapping<T>> for Table<T> {
    fn from_iter<I: IntoIterator<Item = Mapping<T>>>(iter: I) -> Self {
        let mut table = Table::new();
        for mapping in iter {
            table.upsert(mapping);
        }
        table
    }
}

// === impl Upsert ===

impl Upsert {
    /// The mapping's index, either way.
    pub fn index(self) -> usize {
        match self {
            Upsert::Replaced(index) | Upsert::Added(index) => index,
        }
    }
}

/// The synthetic DNS answer of `addr`'s family.
fn synthetic_for(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => SYNTHETIC_V4.into(),
        IpAddr::V6(_) => SYNTHETIC_V6.into(),
    }
}

#[cfg(test)]
pub(crate) mod tests;
