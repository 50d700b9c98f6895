//! Pure: destinations pass-through never dials, even with the internet on.
//!
//! Pass-through connects from the host, so without this an app could reach the host's loopback
//! services, other containers' sidecars on the bridge, or the engine's own listener (W6).

use std::net::IpAddr;

use ipnet::IpNet;

/// A set of networks pass-through refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyList(Vec<IpNet>);

impl DenyList {
    /// A list refusing exactly `nets`.
    pub fn new(nets: &[IpNet]) -> DenyList {
        DenyList(nets.to_vec())
    }

    /// What is always refused: loopback, unspecified, link-local and multicast. The engine adds
    /// the Docker bridge subnet.
    pub fn defaults() -> Vec<IpNet> {
        let fixed = [
            "127.0.0.0/8",
            "0.0.0.0/8",
            "169.254.0.0/16",
            "224.0.0.0/4",
            "255.255.255.255/32",
            "::1/128",
            "::/128",
            "fe80::/10",
            "ff00::/8",
        ];
        fixed.iter().filter_map(|n| n.parse().ok()).collect()
    }

    /// The network that refuses `ip`, if any.
    pub fn refuses(&self, ip: IpAddr) -> Option<&IpNet> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().find(|net| net.contains(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_local_and_bridge() {
        let mut nets = DenyList::defaults();
        nets.push("172.17.0.0/16".parse().unwrap());
        let deny = DenyList::new(&nets);
        for ip in [
            "127.0.0.1",
            "172.17.0.1",
            "172.17.3.4",
            "169.254.169.254",
            "::1",
            "::ffff:127.0.0.1",
            "fe80::1",
        ] {
            assert!(deny.refuses(ip.parse().unwrap()).is_some(), "{ip}");
        }
        for ip in ["10.201.0.5", "203.0.113.9", "172.18.0.2", "2001:db8::1"] {
            assert!(deny.refuses(ip.parse().unwrap()).is_none(), "{ip}");
        }
    }
}
