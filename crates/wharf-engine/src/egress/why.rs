//! Pure: what would happen to a connection the app makes, without making one (`wharf why`).
//!
//! A name is first looked at as the sidecar's DNS would: allowed names that do not exist
//! resolve to the synthetic address; with the internet off, other names do not resolve at all.
//! Then the connection is decided as the engine would decide it.

use std::net::{IpAddr, SocketAddr};

use wharf_policy::{Connection, Protocol};

use super::Policy;

/// The answer to "what would happen".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Why {
    /// `handler`, `pass_through`, `refused` or `unresolvable`.
    pub decision: &'static str,
    /// The mapping that decides, if one does.
    pub rule: Option<String>,
    /// Where the handler would send it.
    pub target: Option<String>,
    /// The reasoning, one step per line.
    pub explanation: String,
}

/// Explains a connection to `host` (a name or an IP) on `port` with `protocol` under `policy`.
pub fn explain(policy: &Policy, host: &str, port: u16, protocol: Protocol) -> Why {
    let mut steps = Vec::new();
    let (ip, name) = match host.trim_matches(['[', ']']).parse::<IpAddr>() {
        Ok(ip) => (ip, None),
        Err(_) => {
            let name = host.to_ascii_lowercase();
            let allow = policy.table.dns_allow_list();
            let allowed = wharf_policy::allow_list_matches(&allow, &name).map(str::to_owned);
            match (&allowed, policy.internet) {
                (Some(rule), _) => steps.push(format!(
                    "DNS: {name} is allowed by {rule:?}; if it does not exist upstream it resolves to {}",
                    wharf_policy::SYNTHETIC_V4
                )),
                (None, true) => steps.push(format!(
                    "DNS: {name} is forwarded upstream (internet on); assuming it resolves, to an address wharf cannot know here, shown as {}",
                    wharf_policy::SYNTHETIC_V4
                )),
                (None, false) => {
                    steps.push(format!("DNS: no mapping allows {name} and the internet is off: NXDOMAIN, so no connection is made"));
                    return Why { decision: "unresolvable", rule: None, target: None, explanation: steps.join("\n") };
                }
            }
            (IpAddr::V4(wharf_policy::SYNTHETIC_V4), Some(name))
        }
    };
    let dst = SocketAddr::new(ip, port);
    let tls = protocol == Protocol::Https;
    // An HTTP client always sends a Host: the name, or the address when it dialled one.
    let host = name.clone().unwrap_or_else(|| ip.to_string());
    let conn = Connection {
        dst,
        sni: name.as_deref().filter(|_| tls),
        hostname: Some(host.as_str()).filter(|_| protocol == Protocol::Http),
        tls,
    };
    steps.push(wharf_policy::explain(&policy.table, &conn, policy.internet).to_string());
    let (decision, rule, target) = match policy.verdict(&conn) {
        super::Verdict::Handler { target, rule, .. } => {
            ("handler", Some(rule), Some(target.to_string()))
        }
        super::Verdict::PassThrough => ("pass_through", None, None),
        super::Verdict::Refuse => ("refused", None, None),
    };
    Why { decision, rule, target, explanation: steps.join("\n") }
}
