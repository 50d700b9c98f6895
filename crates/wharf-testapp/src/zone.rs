//! The DNS stub's records (`DNS_RECORDS`): parsing and lookup, pure.
//!
//! The syntax is a comma-separated list of `name=ip` entries, for example
//! `example.com=10.201.0.10,v6.example.com=2001:db8::10,*.apps.test=10.201.0.20`:
//!
//! * the address family picks the record type (`A` or `AAAA`); a name may be listed several
//!   times, and its records are answered in the order written;
//! * names are case-insensitive and may end with one `.`;
//! * `*.suffix` matches every name strictly below `suffix` (any depth), and a bare `*` matches
//!   every name. A name with entries of its own never falls back to a wildcard, and among
//!   wildcards the longest suffix wins (RFC 4592's closest encloser, simplified);
//! * blanks around entries are ignored, as are empty entries (a trailing comma).
//!
//! A name with no entry (and no wildcard) does not exist: NXDOMAIN, even when it is the parent of
//! a listed name (real DNS would call such an "empty non-terminal" NOERROR; the stub keeps it
//! simple).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use wharf_wire::dns::rtype;

/// The longest name, in presentation form without the trailing dot.
const MAX_NAME_CHARS: usize = 253;
/// The longest label.
const MAX_LABEL_CHARS: usize = 63;

/// Why `DNS_RECORDS` does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ZoneError {
    /// An entry has no `=`.
    #[error("entry {entry:?} is not name=ip")]
    MissingEquals {
        /// The entry as written.
        entry: String,
    },
    /// The name is not a DNS name or a `*.` wildcard.
    #[error("entry {entry:?}: invalid name")]
    BadName {
        /// The entry as written.
        entry: String,
    },
    /// The address is not an IPv4 or IPv6 literal.
    #[error("entry {entry:?}: invalid ip address")]
    BadIp {
        /// The entry as written.
        entry: String,
    },
}

/// The names a record answers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamePattern {
    /// Exactly this name (lowercase, no trailing dot).
    Exact(String),
    /// Every name strictly below this suffix; the empty suffix (a bare `*`) matches every name.
    Wildcard(String),
}

/// One `name=ip` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneRecord {
    /// The names it answers for.
    pub pattern: NamePattern,
    /// The address: an `A` record for IPv4, `AAAA` for IPv6.
    pub ip: IpAddr,
}

/// The stub's records, in the order written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Zone {
    records: Vec<ZoneRecord>,
}

/// What the zone says about a name and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The name does not exist (NXDOMAIN).
    NxDomain,
    /// The name exists; these are its addresses of the asked type, possibly none (NOERROR).
    Found(Vec<IpAddr>),
}

// === impl NamePattern ===

impl NamePattern {
    /// Whether `name` (lowercase, no trailing dot) is one of this pattern's names.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            NamePattern::Exact(exact) => exact == name,
            NamePattern::Wildcard(suffix) if suffix.is_empty() => !name.is_empty(),
            NamePattern::Wildcard(suffix) => name
                .strip_suffix(suffix.as_str())
                .and_then(|head| head.strip_suffix('.'))
                .is_some_and(|head| !head.is_empty()),
        }
    }
}

impl FromStr for NamePattern {
    type Err = ();

    fn from_str(raw: &str) -> Result<NamePattern, ()> {
        let name = normalize(raw);
        if name == "*" {
            return Ok(NamePattern::Wildcard(String::new()));
        }
        match name.strip_prefix("*.") {
            Some(suffix) if is_valid_name(suffix) => Ok(NamePattern::Wildcard(suffix.to_owned())),
            Some(_) => Err(()),
            None if is_valid_name(&name) => Ok(NamePattern::Exact(name)),
            None => Err(()),
        }
    }
}

impl fmt::Display for NamePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NamePattern::Exact(name) => f.write_str(name),
            NamePattern::Wildcard(suffix) if suffix.is_empty() => f.write_str("*"),
            NamePattern::Wildcard(suffix) => write!(f, "*.{suffix}"),
        }
    }
}

// === impl Zone ===

impl Zone {
    /// The records, in the order written.
    pub fn records(&self) -> &[ZoneRecord] {
        &self.records
    }

    /// What to answer for `name` and `qtype`. `name` is matched case-insensitively, with or
    /// without its trailing dot. `A` and `AAAA` get the addresses of that family, `ANY` gets
    /// all of them, and any other type gets none.
    pub fn lookup(&self, name: &str, qtype: u16) -> Lookup {
        let name = normalize(name);
        let Some(pattern) = self.best_pattern(&name) else {
            return Lookup::NxDomain;
        };
        let ips = self
            .records
            .iter()
            .filter(|r| &r.pattern == pattern && type_matches(qtype, r.ip))
            .map(|r| r.ip)
            .collect();
        Lookup::Found(ips)
    }

    /// The exact pattern for `name` if there is one, else the matching wildcard with the longest
    /// suffix.
    fn best_pattern(&self, name: &str) -> Option<&NamePattern> {
        let mut best: Option<&NamePattern> = None;
        for record in self.records.iter().filter(|r| r.pattern.matches(name)) {
            match (&record.pattern, best) {
                (NamePattern::Exact(_), _) => return Some(&record.pattern),
                (NamePattern::Wildcard(suffix), Some(NamePattern::Wildcard(current)))
                    if suffix.len() <= current.len() => {}
                (pattern, _) => best = Some(pattern),
            }
        }
        best
    }
}

impl FromStr for Zone {
    type Err = ZoneError;

    /// Parses the `DNS_RECORDS` syntax (see the module docs). Duplicate entries are kept once.
    fn from_str(raw: &str) -> Result<Zone, ZoneError> {
        let mut records = Vec::new();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let record = parse_entry(entry)?;
            if !records.contains(&record) {
                records.push(record);
            }
        }
        Ok(Zone { records })
    }
}

fn parse_entry(entry: &str) -> Result<ZoneRecord, ZoneError> {
    let (name, ip) = entry
        .split_once('=')
        .ok_or_else(|| ZoneError::MissingEquals { entry: entry.to_owned() })?;
    let pattern =
        name.trim().parse().map_err(|()| ZoneError::BadName { entry: entry.to_owned() })?;
    let ip = ip.trim().parse().map_err(|_| ZoneError::BadIp { entry: entry.to_owned() })?;
    Ok(ZoneRecord { pattern, ip })
}

fn type_matches(qtype: u16, ip: IpAddr) -> bool {
    match qtype {
        rtype::A => ip.is_ipv4(),
        rtype::AAAA => ip.is_ipv6(),
        rtype::ANY => true,
        _ => false,
    }
}

/// Lowercase, without one trailing dot.
fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// Letters, digits, `-` and `_`, in labels of 1 to 63 characters, 253 in all.
fn is_valid_name(name: &str) -> bool {
    let label_ok = |label: &str| {
        (1..=MAX_LABEL_CHARS).contains(&label.len())
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    !name.is_empty() && name.len() <= MAX_NAME_CHARS && name.split('.').all(label_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORDS: &str = "example.com=10.201.0.10, www.example.com=10.201.0.10,\
        v6.example.com=2001:db8::10, Dual.Example.com.=10.201.0.11,dual.example.com=2001:db8::11,\
        dual.example.com=10.201.0.12, *.apps.test=10.201.0.20, *.deep.apps.test=10.201.0.21,\
        *.deep.apps.test=2001:db8::21, pinned.deep.apps.test=10.201.0.22,";

    fn zone() -> Zone {
        RECORDS.parse().unwrap()
    }

    fn check_lookup(name: &str, qtype: u16, expect: &str) {
        let got = match zone().lookup(name, qtype) {
            Lookup::NxDomain => "NXDOMAIN".to_owned(),
            Lookup::Found(ips) => format!("{ips:?}"),
        };
        assert_eq!(got, expect, "{name} {qtype}");
    }

    #[test]
    fn exact_names() {
        use rtype::{A, AAAA, ANY};
        check_lookup("example.com", A, "[10.201.0.10]");
        check_lookup("EXAMPLE.com.", A, "[10.201.0.10]");
        check_lookup("example.com", AAAA, "[]");
        check_lookup("v6.example.com", AAAA, "[2001:db8::10]");
        check_lookup("v6.example.com", A, "[]");
        check_lookup("dual.example.com", A, "[10.201.0.11, 10.201.0.12]");
        check_lookup("dual.example.com", ANY, "[10.201.0.11, 2001:db8::11, 10.201.0.12]");
        check_lookup("dual.example.com", 15, "[]");
        check_lookup("nope.example.com", A, "NXDOMAIN");
        check_lookup("com", A, "NXDOMAIN");
        check_lookup("", A, "NXDOMAIN");
    }

    #[test]
    fn wildcards() {
        use rtype::{A, AAAA};
        check_lookup("a.apps.test", A, "[10.201.0.20]");
        check_lookup("a.b.apps.test", A, "[10.201.0.20]");
        check_lookup("a.apps.test", AAAA, "[]");
        check_lookup("apps.test", A, "NXDOMAIN");
        check_lookup("xapps.test", A, "NXDOMAIN");
        // The longest matching suffix wins, and an exact name beats every wildcard.
        check_lookup("x.deep.apps.test", A, "[10.201.0.21]");
        check_lookup("x.deep.apps.test", AAAA, "[2001:db8::21]");
        check_lookup("pinned.deep.apps.test", AAAA, "[]");
        let all: Zone = "*=10.0.0.1,x.test=10.0.0.2".parse().unwrap();
        assert_eq!(
            all.lookup("anything.example", A),
            Lookup::Found(vec!["10.0.0.1".parse().unwrap()])
        );
        assert_eq!(all.lookup("x.test", A), Lookup::Found(vec!["10.0.0.2".parse().unwrap()]));
        assert_eq!(all.lookup("", A), Lookup::NxDomain);
    }

    #[test]
    fn parsing() {
        let check = |raw: &str| match raw.parse::<Zone>() {
            Ok(zone) => {
                let entries: Vec<String> =
                    zone.records().iter().map(|r| format!("{}={}", r.pattern, r.ip)).collect();
                entries.join(",")
            }
            Err(err) => format!("error: {err}"),
        };
        assert_eq!(check(""), "");
        assert_eq!(check(" , ,"), "");
        assert_eq!(check("A.test=1.2.3.4,a.test.=1.2.3.4"), "a.test=1.2.3.4");
        assert_eq!(check("*=::1, *.X_y.test = 1.2.3.4"), "*=::1,*.x_y.test=1.2.3.4");
        assert_eq!(check("a.test"), r#"error: entry "a.test" is not name=ip"#);
        assert_eq!(check("a.test=1.2.3"), r#"error: entry "a.test=1.2.3": invalid ip address"#);
        assert_eq!(check("a.test=[::1]"), r#"error: entry "a.test=[::1]": invalid ip address"#);
        for bad in ["=1.2.3.4", "a..b=1.2.3.4", "a*.b=1.2.3.4", "a.*.b=1.2.3.4", "*.*.b=1.2.3.4"] {
            assert_eq!(check(bad), format!("error: entry {bad:?}: invalid name"));
        }
        let long_label = format!("{}.test=1.2.3.4", "a".repeat(64));
        assert!(check(&long_label).ends_with("invalid name"));
        let long_name = format!("{}test=1.2.3.4", "a.".repeat(126));
        assert!(check(&long_name).ends_with("invalid name"));
    }
}
