//! The egress policy of a wharf instance: what each intercepted connection may do, and which
//! names its DNS may resolve. Pure: no I/O, no runtime, no clock, no logging.
//!
//! # Brief overview
//!
//! * A [`Mapping`] says that connections of one [`Protocol`] to one [`Destination`] (a CIDR or
//!   a [`HostGlob`]) on one port go to a target of the caller's choosing. [`HostPort::parse`]
//!   reads the Container API's `hostPort` strings into a destination and a port.
//! * A [`Table`] keeps the mappings in order. [`Table::upsert`] replaces a mapping with the
//!   same protocol, destination and port in place, so it keeps its position.
//! * [`decide()`] takes a [`Connection`] (what the sidecar learned: destination, TLS server
//!   name, HTTP `Host`) and returns a [`Decision`]: handle with a mapping, pass through, or
//!   refuse. [`explain()`] runs the same walk and records every step as an [`Explanation`], for
//!   `wharf why`.
//! * [`Table::dns_allow_list`] derives the names the sidecar's DNS may resolve, and
//!   [`AllowList`] (or [`allow_list_matches`]) is how the sidecar checks a name against it.
//!   Allowed names without a real address get [`SYNTHETIC_V4`] / [`SYNTHETIC_V6`].
//!
//! The rules follow workerd's container engine (engine spec §3.3–3.8), with its weaknesses
//! W8, W9, W10, W31, W32 and W33 fixed; [`decide()`] lists the order.
//!
//! ```
//! use wharf_policy::{Connection, Decision, Mapping, Protocol, Table, decide};
//!
//! let mut table = Table::new();
//! table.upsert(Mapping::parse(Protocol::Https, "*.example.com", "api handler")?);
//! table.upsert(Mapping::parse(Protocol::Tcp, "10.0.0.0/8:5432", "database")?);
//!
//! let tls = Connection {
//!     dst: "203.0.113.9:443".parse().unwrap(),
//!     sni: Some("api.example.com"),
//!     hostname: None,
//!     tls: true,
//! };
//! assert_eq!(decide(&table, &tls, false).target(), Some(&"api handler"));
//!
//! let postgres = Connection { dst: "10.1.2.3:5432".parse().unwrap(), sni: None, hostname: None, tls: false };
//! assert_eq!(decide(&table, &postgres, false).target(), Some(&"database"));
//!
//! let other = Connection { dst: "10.1.2.3:22".parse().unwrap(), ..postgres };
//! assert!(matches!(decide(&table, &other, false), Decision::Refuse));
//! assert!(matches!(decide(&table, &other, true), Decision::PassThrough));
//!
//! // Only the glob opens names: 10.0.0.0/8 does not hold the synthetic 11.0.0.1.
//! assert_eq!(table.dns_allow_list(), ["*.example.com"]);
//! # Ok::<(), wharf_policy::PolicyError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod decide;
mod dns;
mod error;
mod explain;
mod glob;
mod host_port;
mod protocol;
mod table;

pub use decide::{Connection, Decision, decide};
pub use dns::{AllowList, SYNTHETIC_TTL, SYNTHETIC_V4, SYNTHETIC_V6, allow_list_matches};
pub use error::{GlobProblem, PolicyError};
pub use explain::{Attempt, Explanation, Outcome, Skip, Stage, Step, Verdict, explain};
pub use glob::HostGlob;
pub use host_port::{Destination, HostPort};
pub use protocol::Protocol;
pub use table::{Mapping, Table, Upsert};

/// The body of a future cargo-fuzz target (STYLE habit 23): parses arbitrary bytes as a
/// `hostPort` and as a glob for every protocol and panics if an accepted value does not read
/// back from its canonical form.
#[doc(hidden)]
pub fn fuzz_logic(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    for protocol in Protocol::ALL {
        if let Ok(hp) = HostPort::parse(raw, protocol) {
            assert_eq!(HostPort::parse(&hp.to_string(), protocol).as_ref(), Ok(&hp), "{raw:?}");
        }
    }
    if let Ok(glob) = HostGlob::new(raw) {
        assert_eq!(HostGlob::new(glob.as_str()).as_ref(), Ok(&glob), "{raw:?}");
        // `*` matches the empty run, so the glob matches itself with its stars removed.
        assert!(glob.matches(&glob.as_str().replace('*', "")), "{raw:?}");
    }
}
