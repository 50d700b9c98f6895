//! The body of the sidecar's `PUT /egress`, in proxy-everything's schema (engine spec §3.4).
//!
//! Every key is optional, but at least one must be present. `dns.allowHostnames` replaces the
//! allow-list when present, and an empty array is honoured: nothing is allowed.

use serde::{Deserialize, Serialize};

/// The control port's well-known container port.
pub const CONTROL_PORT: u16 = 39001;
/// Path of the CA certificate inside the app container (the Container API's promise).
pub const APP_CA_PATH: &str = "/etc/cloudflare/certs/cloudflare-containers-ca.crt";

/// `PUT /egress` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressUpdate {
    /// The host egress listener's port, for new intercepted connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// The DNS allow-list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsUpdate>,
    /// Whether unmatched traffic may pass to the internet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internet: Option<InternetUpdate>,
}

/// `dns` in [`EgressUpdate`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsUpdate {
    /// Hostname globs that resolve (synthetically when they do not exist upstream).
    #[serde(rename = "allowHostnames", default)]
    pub allow_hostnames: Vec<String>,
}

/// `internet` in [`EgressUpdate`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InternetUpdate {
    /// Internet on or off.
    #[serde(default)]
    pub enabled: bool,
}

/// Why a `PUT /egress` body is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// Not JSON of the expected shape.
    #[error("invalid egress body: {0}")]
    Json(String),
    /// None of `port`, `dns`, `internet` is present.
    #[error("egress body must set at least one of port, dns, internet")]
    Empty,
    /// `port` outside 1..=65535.
    #[error("egress port must be 1..=65535, got {0}")]
    Port(u32),
}

impl EgressUpdate {
    /// Parses and validates a body.
    pub fn parse(body: &[u8]) -> Result<EgressUpdate, UpdateError> {
        let update: EgressUpdate =
            serde_json::from_slice(body).map_err(|e| UpdateError::Json(e.to_string()))?;
        if update.port.is_none() && update.dns.is_none() && update.internet.is_none() {
            return Err(UpdateError::Empty);
        }
        match update.port {
            Some(p) if p == 0 || p > u32::from(u16::MAX) => Err(UpdateError::Port(p)),
            _ => Ok(update),
        }
    }

    /// Encodes the body.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain structs of strings and numbers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_full_shape() {
        let body = br#"{"port": 40123, "dns": {"allowHostnames": ["example.com", "*"]}, "internet": {"enabled": false}}"#;
        let update = EgressUpdate::parse(body).unwrap();
        assert_eq!(update.port, Some(40123));
        assert_eq!(update.dns.unwrap().allow_hostnames, ["example.com", "*"]);
        assert_eq!(update.internet, Some(InternetUpdate { enabled: false }));
    }

    #[test]
    fn empty_allow_list_is_kept() {
        let update = EgressUpdate::parse(br#"{"dns": {"allowHostnames": []}}"#).unwrap();
        assert_eq!(update.dns, Some(DnsUpdate { allow_hostnames: vec![] }));
    }

    #[test]
    fn refuses_bad_bodies() {
        assert_eq!(EgressUpdate::parse(b"{}"), Err(UpdateError::Empty));
        assert_eq!(EgressUpdate::parse(br#"{"port": 0}"#), Err(UpdateError::Port(0)));
        assert_eq!(EgressUpdate::parse(br#"{"port": 70000}"#), Err(UpdateError::Port(70000)));
        assert!(matches!(EgressUpdate::parse(b"nope"), Err(UpdateError::Json(_))));
    }

    proptest::proptest! {
        /// Any bytes: an error or a valid update, never a panic.
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = EgressUpdate::parse(&bytes);
        }

        /// Every valid update survives encode → parse unchanged.
        #[test]
        fn valid_updates_round_trip(
            port in proptest::option::of(1u32..=65535),
            hosts in proptest::option::of(proptest::collection::vec("[a-z*.]{1,20}", 0..5)),
            internet in proptest::option::of(proptest::bool::ANY),
        ) {
            let update = EgressUpdate {
                port,
                dns: hosts.map(|allow_hostnames| DnsUpdate { allow_hostnames }),
                internet: internet.map(|enabled| InternetUpdate { enabled }),
            };
            let parsed = EgressUpdate::parse(&update.encode());
            if update.port.is_none() && update.dns.is_none() && update.internet.is_none() {
                proptest::prop_assert_eq!(parsed, Err(UpdateError::Empty));
            } else {
                proptest::prop_assert_eq!(parsed, Ok(update));
            }
        }

        /// Ports outside 1..=65535 are always refused.
        #[test]
        fn bad_ports_are_refused(port in proptest::prop_oneof![proptest::strategy::Just(0u32), 65536u32..]) {
            let body = format!("{{\"port\": {port}}}");
            proptest::prop_assert_eq!(EgressUpdate::parse(body.as_bytes()), Err(UpdateError::Port(port)));
        }
    }

    #[test]
    fn round_trip() {
        let update = EgressUpdate {
            port: Some(1),
            dns: Some(DnsUpdate { allow_hostnames: vec!["a".to_owned()] }),
            internet: Some(InternetUpdate { enabled: true }),
        };
        assert_eq!(EgressUpdate::parse(&update.encode()), Ok(update));
    }
}

/// `GET /egress`: the sidecar's current state (a wharf addition).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressState {
    /// The host egress listener's port.
    pub port: u32,
    /// The DNS allow-list.
    pub dns: DnsUpdate,
    /// Internet on or off.
    pub internet: InternetUpdate,
    /// How the sidecar intercepts traffic: `tproxy` or `redirect`.
    #[serde(default)]
    pub interception: String,
}

/// Path on the engine's egress listener where a sidecar posts its DNS answers, as a JSON array
/// of [`DnsEvent`]s, with its token (`Authorization: Bearer`).
pub const DNS_LOG_PATH: &str = "/dns-log";

/// One DNS question the sidecar answered, for the egress log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DnsEvent {
    /// The name asked for, lowercase, no trailing dot.
    pub name: String,
    /// The query type, e.g. 1 (A) or 28 (AAAA).
    pub qtype: u16,
    /// What the sidecar did.
    pub decision: DnsDecision,
    /// The addresses answered, if any.
    #[serde(default)]
    pub addresses: Vec<std::net::IpAddr>,
    /// The allow-list entry that matched, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Milliseconds the answer took.
    pub duration_ms: u64,
}

/// What the sidecar did with a DNS question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DnsDecision {
    /// Forwarded upstream; the upstream's answer was relayed.
    Forwarded,
    /// Allowed by a rule and answered with the synthetic address.
    Synthetic,
    /// Refused with NXDOMAIN (no rule allows it and the internet is off).
    Nxdomain,
    /// The upstream failed; SERVFAIL was answered.
    Failed,
}
