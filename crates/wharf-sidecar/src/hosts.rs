//! Finds the egress gateway's address in `/etc/hosts` text, without the system resolver.
//!
//! The sidecar is a static glibc binary in a `FROM scratch` image, where `getaddrinfo` (NSS)
//! cannot work, so the one name it needs before starting is looked up here by hand. Docker
//! writes the line when the container runs with `--add-host host.docker.internal:host-gateway`.

use std::net::Ipv4Addr;

/// The name Docker's `host-gateway` entry carries (engine spec §3.1).
pub const GATEWAY_HOST: &str = "host.docker.internal";

/// The first IPv4 address that `hosts` (the text of a hosts file) gives for `name`.
///
/// Like glibc's `files` backend: `#` starts a comment, each line is an address followed by
/// names, names compare case-insensitively, and the first matching line wins. Lines whose
/// address is not an IPv4 literal (IPv6 entries, garbage) are skipped.
pub fn lookup_v4(hosts: &str, name: &str) -> Option<Ipv4Addr> {
    hosts.lines().find_map(|line| {
        let line = line.split_once('#').map_or(line, |(before, _)| before);
        let mut fields = line.split_whitespace();
        let addr: Ipv4Addr = fields.next()?.parse().ok()?;
        fields.any(|n| n.eq_ignore_ascii_case(name)).then_some(addr)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(hosts: &str, expected: Option<&str>) {
        let expected = expected.map(|e| e.parse::<Ipv4Addr>().unwrap());
        assert_eq!(lookup_v4(hosts, GATEWAY_HOST), expected, "hosts:\n{hosts}");
    }

    #[test]
    fn dockers_own_file() {
        check(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
             fe00::\tip6-localnet\n172.17.0.1\thost.docker.internal\n172.17.0.3\t1a2b3c4d5e6f\n",
            Some("172.17.0.1"),
        );
    }

    #[test]
    fn comments_are_ignored() {
        check("# 10.0.0.1 host.docker.internal\n", None);
        check("10.0.0.1 other # host.docker.internal\n", None);
        check("10.0.0.2 host.docker.internal# trailing comment\n", Some("10.0.0.2"));
        check("   # indented comment\n\n\t\n10.0.0.3 host.docker.internal\n", Some("10.0.0.3"));
    }

    #[test]
    fn any_name_on_the_line_matches() {
        check("10.0.0.1 gw HOST.Docker.Internal alias\n", Some("10.0.0.1"));
        check("10.0.0.1 host.docker.internal.example\n", None);
    }

    #[test]
    fn ipv6_entries_are_skipped_for_the_v4_gateway() {
        check("fd00::1 host.docker.internal\n10.0.0.9 host.docker.internal\n", Some("10.0.0.9"));
        check("fd00::1 host.docker.internal\n", None);
        check("::ffff:10.0.0.1 host.docker.internal\n", None);
    }

    #[test]
    fn first_line_wins_and_garbage_is_skipped() {
        check(
            "not-an-ip host.docker.internal\n10.0.0.1 host.docker.internal\n10.0.0.2 host.docker.internal\n",
            Some("10.0.0.1"),
        );
        check("10.0.0.1\n", None);
        check("", None);
        check("10.0.0.1 host.docker.internal\r\n", Some("10.0.0.1"));
    }
}
