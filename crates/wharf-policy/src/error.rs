//! The crate's errors: each message says what was wrong and how to write it instead.

/// Why a protocol name, a `hostPort` or a hostname glob was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The protocol is not `http`, `https` or `tcp`.
    #[error("unknown egress protocol {0:?}; use http, https or tcp")]
    UnknownProtocol(String),
    /// Nothing before the port, e.g. `:80` or `[]`.
    #[error("hostPort {raw:?} has no host; write <host>[:port], e.g. example.com:443")]
    EmptyHost {
        /// The `hostPort` as given.
        raw: String,
    },
    /// A `[` without its `]`.
    #[error("hostPort {raw:?} has an unclosed '['; write [addr]:port")]
    UnclosedBracket {
        /// The `hostPort` as given.
        raw: String,
    },
    /// Something other than `:port` after the `]`.
    #[error("hostPort {raw:?} has {rest:?} after ']'; write [addr] or [addr]:port")]
    AfterBracket {
        /// The `hostPort` as given.
        raw: String,
        /// What followed the `]`.
        rest: String,
    },
    /// Brackets around something that is not an IPv6 address or CIDR.
    #[error(
        "hostPort {raw:?} puts brackets around {host:?}, which is not an IPv6 address or CIDR; \
         brackets are only for IPv6, write host:port otherwise"
    )]
    BracketNotIpv6 {
        /// The `hostPort` as given.
        raw: String,
        /// What was inside the brackets.
        host: String,
    },
    /// A `:` with nothing after it.
    #[error(
        "hostPort {raw:?} ends in ':' with no port; write a port (0 for every port) or drop the ':'"
    )]
    EmptyPort {
        /// The `hostPort` as given.
        raw: String,
    },
    /// The port is not a decimal number from 0 to 65535.
    #[error(
        "hostPort {raw:?} has port {port:?}; a port is a number from 0 to 65535 (0 means every port)"
    )]
    BadPort {
        /// The `hostPort` as given.
        raw: String,
        /// The text after the `:`.
        port: String,
    },
    /// The host has a `/` but is not a CIDR.
    #[error(
        "{host:?} in hostPort {raw:?} is not a valid CIDR; \
         write <address>/<prefix length>, e.g. 10.0.0.0/8 or fd00::/8"
    )]
    BadCidr {
        /// The `hostPort` as given.
        raw: String,
        /// The host part.
        host: String,
    },
    /// The host has a `:` but is not an IPv6 address or CIDR.
    #[error(
        "{host:?} in hostPort {raw:?} has ':' but is not an IPv6 address or CIDR; \
         write IPv6 with a port as [addr]:port and a hostname as name:port"
    )]
    BadIpv6 {
        /// The `hostPort` as given.
        raw: String,
        /// The host part.
        host: String,
    },
    /// A `tcp` mapping named a host: TCP connections carry no name to match (weakness W31).
    #[error(
        "tcp hostPort {raw:?} names the host {host:?}; TCP rules match addresses, \
         so write an IP or CIDR, e.g. 203.0.113.7:5432 or 10.0.0.0/8"
    )]
    TcpHostname {
        /// The `hostPort` as given.
        raw: String,
        /// The host part.
        host: String,
    },
    /// A hostname glob that no DNS name or `Host` could be written as.
    #[error("hostname glob {glob:?} {problem}")]
    BadGlob {
        /// The glob as given.
        glob: String,
        /// What is wrong with it.
        problem: GlobProblem,
    },
}

/// What is wrong with a hostname glob; the message completes "hostname glob "…" ".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GlobProblem {
    /// Nothing (or only a dot).
    #[error("is empty; write a name such as example.com or *.example.com")]
    Empty,
    /// A character outside `[A-Za-z0-9-_.*]`, including `?`, `[` and spaces.
    #[error(
        "contains {0:?}; a glob holds letters, digits, '-', '_' and '.', and only '*' is a wildcard"
    )]
    Char(char),
    /// A character outside ASCII.
    #[error("is not ASCII; write the name in its punycode (xn--) form")]
    NonAscii,
    /// `a..b`, `.a`, or two trailing dots.
    #[error("has an empty label; remove the extra '.'")]
    EmptyLabel,
    /// A label without `*` longer than 63 bytes.
    #[error("has a label longer than 63 bytes, which no DNS name can have")]
    LabelTooLong,
    /// Longer than 253 bytes.
    #[error("is longer than 253 bytes, the most a DNS name can hold")]
    TooLong,
    /// The last label is all digits: a mistyped IP address, since no top-level domain is numeric.
    #[error(
        "ends in a numeric label, so it looks like an IP address but is not one; check the address"
    )]
    Numeric,
}
