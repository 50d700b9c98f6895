//! Decision tests: the Container API test suite's egress cases (engine spec §5.3 #29–#33) as
//! pure tables and connections, the fixed weaknesses W8, W9 and W10, and `explain` snapshots.

use expect_test::{Expect, expect};
use proptest::prelude::*;

use crate::table::tests::table;
use crate::*;

/// A connection written as `<dst> [tls] [sni=<name>] [host=<Host>]`.
fn conn(spec: &str) -> Connection<'_> {
    let mut words = spec.split(' ');
    let dst = words.next().unwrap().parse().unwrap();
    let mut conn = Connection { dst, sni: None, hostname: None, tls: false };
    for word in words {
        match word.split_once('=') {
            None if word == "tls" => conn.tls = true,
            Some(("sni", name)) => conn.sni = Some(name),
            Some(("host", name)) => conn.hostname = Some(name),
            _ => panic!("bad connection spec {spec:?}"),
        }
    }
    conn
}

/// Decides each connection and shows the target id, or pass/refuse.
fn check(table: &Table<u32>, internet: bool, conns: &[&str], expect: Expect) {
    let mut out = String::new();
    for spec in conns {
        let shown = match decide(table, &conn(spec), internet) {
            Decision::Handle { index, mapping } => {
                format!("{} (#{index} {})", mapping.target, mapping.rule())
            }
            Decision::PassThrough => "pass through".to_owned(),
            Decision::Refuse => "refuse".to_owned(),
        };
        out.push_str(&format!("{spec} => {shown}\n"));
    }
    expect.assert_eq(&out);
}

/// The name's DNS fate with internet off: the synthetic address, or NXDOMAIN.
fn resolve<'l>(table: &'l [String], name: &str) -> Option<&'l str> {
    allow_list_matches(table, name)
}

/// `interceptAllOutboundHttp(id)`: two parallel `setEgressHttp` calls.
fn intercept_all(t: &mut Table<u32>, id: u32) {
    for raw in ["0.0.0.0/0", "::/0"] {
        t.upsert(Mapping::parse(Protocol::Http, raw, id).unwrap());
    }
}

// See: engine spec §5.3 #29, testSetEgressHttpWithInternet.
#[test]
fn set_egress_http_with_internet() {
    let mut t = table(&[("http", "googlefakedomain.com", 2)]);
    let allow = t.dns_allow_list();
    assert_eq!(resolve(&allow, "googlefakedomain.com"), Some("googlefakedomain.com"));
    // The other name is NXDOMAIN upstream and not allowed, so DNS fails: "fetch failed".
    assert_eq!(resolve(&allow, "googlefakedomainother.com"), None);
    check(
        &t,
        true,
        &["11.0.0.1:80 host=googlefakedomain.com"],
        expect![[r#"
        11.0.0.1:80 host=googlefakedomain.com => 2 (#0 http googlefakedomain.com:80)
    "#]],
    );
    intercept_all(&mut t, 5);
    assert_eq!(t.dns_allow_list(), ["*"]);
    check(
        &t,
        true,
        &["142.250.74.46:80 host=google.com", "[2a00:1450::200e]:80 host=google.com"],
        expect![[r#"
        142.250.74.46:80 host=google.com => 5 (#1 http 0.0.0.0/0:80)
        [2a00:1450::200e]:80 host=google.com => 5 (#2 http [::/0]:80)
    "#]],
    );
}

// See: engine spec §5.3 #30, testSetEgressHttpNoInternet.
#[test]
fn set_egress_http_no_internet() {
    let mut t = table(&[("http", "google.com", 2)]);
    let allow = t.dns_allow_list();
    assert_eq!(resolve(&allow, "google2.com"), None);
    check(
        &t,
        false,
        &["11.0.0.1:80 host=google.com", "11.0.0.1:80 host=google2.com"],
        expect![[r#"
        11.0.0.1:80 host=google.com => 2 (#0 http google.com:80)
        11.0.0.1:80 host=google2.com => refuse
    "#]],
    );
    t.upsert(Mapping::parse(Protocol::Http, "google2.com", 4).unwrap());
    intercept_all(&mut t, 6);
    assert_eq!(resolve(&t.dns_allow_list(), "google3.com"), Some("*"));
    check(
        &t,
        false,
        &[
            "11.0.0.1:80 host=google.com",
            "11.0.0.1:80 host=google2.com",
            "11.0.0.1:80 host=google3.com",
            "1.1.1.1:80 host=1.1.1.1",
            "1.1.1.1:90 host=1.1.1.1:90",
            "11.0.0.1:9000 host=google.com:9000",
        ],
        expect![[r#"
            11.0.0.1:80 host=google.com => 2 (#0 http google.com:80)
            11.0.0.1:80 host=google2.com => 4 (#1 http google2.com:80)
            11.0.0.1:80 host=google3.com => 6 (#2 http 0.0.0.0/0:80)
            1.1.1.1:80 host=1.1.1.1 => 6 (#2 http 0.0.0.0/0:80)
            1.1.1.1:90 host=1.1.1.1:90 => refuse
            11.0.0.1:9000 host=google.com:9000 => refuse
        "#]],
    );
}

// See: engine spec §5.3 #31, testSetEgressHttp.
#[test]
fn set_egress_http() {
    let mut t = table(&[
        ("http", "1.2.3.4", 1234),
        ("http", "11.0.0.1:9999", 1),
        ("http", "11.0.0.2:9999", 2),
    ]);
    intercept_all(&mut t, 3);
    let requests = [
        "1.2.3.4:80 host=1.2.3.4",
        "11.0.0.1:9999 host=11.0.0.1:9999",
        "11.0.0.2:9999 host=11.0.0.2:9999",
        "15.0.0.2:80 host=15.0.0.2",
        "[111::]:80 host=[111::]",
        "11.0.0.1:80 host=google.com",
    ];
    check(
        &t,
        false,
        &requests,
        expect![[r#"
        1.2.3.4:80 host=1.2.3.4 => 1234 (#0 http 1.2.3.4:80)
        11.0.0.1:9999 host=11.0.0.1:9999 => 1 (#1 http 11.0.0.1:9999)
        11.0.0.2:9999 host=11.0.0.2:9999 => 2 (#2 http 11.0.0.2:9999)
        15.0.0.2:80 host=15.0.0.2 => 3 (#3 http 0.0.0.0/0:80)
        [111::]:80 host=[111::] => 3 (#4 http [::/0]:80)
        11.0.0.1:80 host=google.com => 3 (#3 http 0.0.0.0/0:80)
    "#]],
    );
    intercept_all(&mut t, 1212);
    assert_eq!(t.len(), 5, "interceptAll replaced, not appended");
    check(
        &t,
        false,
        &[
            "11.0.0.2:9999 host=11.0.0.2:9999",
            "15.0.0.2:80 host=15.0.0.2",
            "15.0.0.55:80 host=15.0.0.55",
        ],
        expect![[r#"
        11.0.0.2:9999 host=11.0.0.2:9999 => 2 (#2 http 11.0.0.2:9999)
        15.0.0.2:80 host=15.0.0.2 => 1212 (#3 http 0.0.0.0/0:80)
        15.0.0.55:80 host=15.0.0.55 => 1212 (#3 http 0.0.0.0/0:80)
    "#]],
    );
}

// See: engine spec §5.3 #32, testSetEgressHttps.
#[test]
fn set_egress_https() {
    let mut t = table(&[
        ("https", "example.com:443", 1000),
        ("https", "*.cloudflare.com:443", 2000),
        ("https", "*", 3000),
    ]);
    let requests = [
        "11.0.0.1:443 tls sni=example.com",
        "104.16.1.1:443 tls sni=www.cloudflare.com",
        "142.250.74.46:443 tls sni=google.com",
    ];
    check(
        &t,
        false,
        &requests,
        expect![[r#"
        11.0.0.1:443 tls sni=example.com => 1000 (#0 https example.com:443)
        104.16.1.1:443 tls sni=www.cloudflare.com => 2000 (#1 https *.cloudflare.com:443)
        142.250.74.46:443 tls sni=google.com => 3000 (#2 https *:443)
    "#]],
    );
    assert_eq!(t.upsert(Mapping::parse(Protocol::Https, "*", 4000).unwrap()), Upsert::Replaced(2));
    check(
        &t,
        false,
        &["11.0.0.1:443 tls sni=example.com", "140.82.121.3:443 tls sni=github.com"],
        expect![[r#"
        11.0.0.1:443 tls sni=example.com => 1000 (#0 https example.com:443)
        140.82.121.3:443 tls sni=github.com => 4000 (#2 https *:443)
    "#]],
    );
}

// See: engine spec §5.3 #33, testSetEgressTcp.
#[test]
fn set_egress_tcp() {
    let t = table(&[("tcp", "11.0.0.1:7777", 500), ("tcp", "11.0.0.2:7777", 600)]);
    check(
        &t,
        false,
        &["11.0.0.1:7777", "11.0.0.2:7777", "11.0.0.1:7778", "11.0.0.3:7777"],
        expect![[r#"
        11.0.0.1:7777 => 500 (#0 tcp 11.0.0.1:7777)
        11.0.0.2:7777 => 600 (#1 tcp 11.0.0.2:7777)
        11.0.0.1:7778 => refuse
        11.0.0.3:7777 => refuse
    "#]],
    );
    check(
        &t,
        true,
        &["11.0.0.3:7777"],
        expect![[r#"
        11.0.0.3:7777 => pass through
    "#]],
    );
}

/// W8: TLS without SNI to an https CIDR mapping is handled (the sidecar mints a certificate
/// for the IP); with an SNI, a CIDR https mapping matches too.
#[test]
fn w8_https_cidr_without_sni() {
    let t = table(&[("https", "*", 1), ("https", "1.2.3.4", 2), ("http", "0.0.0.0/0", 3)]);
    check(
        &t,
        false,
        &["1.2.3.4:443 tls", "1.2.3.4:443 tls sni=x.org", "5.6.7.8:443 tls", "1.2.3.4:8443 tls"],
        expect![[r#"
        1.2.3.4:443 tls => 2 (#1 https 1.2.3.4:443)
        1.2.3.4:443 tls sni=x.org => 1 (#0 https *:443)
        5.6.7.8:443 tls => refuse
        1.2.3.4:8443 tls => refuse
    "#]],
    );
}

/// W9: a tcp rule catches TLS and HTTP traffic that no https or http mapping took.
#[test]
fn w9_tcp_is_not_shadowed() {
    let t = table(&[
        ("https", "example.com", 1),
        ("http", "example.com", 2),
        ("tcp", "1.2.3.4:443", 3),
        ("tcp", "1.2.3.4:80", 4),
    ]);
    check(
        &t,
        true,
        &[
            "1.2.3.4:443 tls sni=example.com",
            "1.2.3.4:443 tls sni=other.com",
            "1.2.3.4:443 tls",
            "1.2.3.4:80 host=example.com",
            "1.2.3.4:80 host=other.com",
            "5.6.7.8:443 tls sni=other.com",
        ],
        expect![[r#"
            1.2.3.4:443 tls sni=example.com => 1 (#0 https example.com:443)
            1.2.3.4:443 tls sni=other.com => 3 (#2 tcp 1.2.3.4:443)
            1.2.3.4:443 tls => 3 (#2 tcp 1.2.3.4:443)
            1.2.3.4:80 host=example.com => 2 (#1 http example.com:80)
            1.2.3.4:80 host=other.com => 4 (#3 tcp 1.2.3.4:80)
            5.6.7.8:443 tls sni=other.com => pass through
        "#]],
    );
}

/// W10: an http glob on another port matches, since the sidecar sends `Host` on any port.
#[test]
fn w10_http_globs_on_any_port() {
    let t = table(&[("http", "example.com:8080", 1), ("http", "*.dev:0", 2)]);
    check(
        &t,
        false,
        &[
            "11.0.0.1:8080 host=example.com:8080",
            "11.0.0.1:80 host=example.com",
            "11.0.0.1:3000 host=app.dev:3000",
            "11.0.0.1:3000 host=APP.DEV.",
        ],
        expect![[r#"
        11.0.0.1:8080 host=example.com:8080 => 1 (#0 http example.com:8080)
        11.0.0.1:80 host=example.com => refuse
        11.0.0.1:3000 host=app.dev:3000 => 2 (#1 http *.dev:0)
        11.0.0.1:3000 host=APP.DEV. => 2 (#1 http *.dev:0)
    "#]],
    );
}

/// Step 5: raw bytes (no TLS, no Host) never reach an http mapping, even a CIDR one; a Host
/// on a TLS connection is not plain HTTP.
#[test]
fn http_needs_a_plain_http_request() {
    let t = table(&[("http", "1.2.3.4", 1), ("http", "*", 2)]);
    check(
        &t,
        false,
        &[
            "1.2.3.4:80",
            "1.2.3.4:80 host=1.2.3.4",
            "1.2.3.4:80 tls host=1.2.3.4",
            "1.2.3.4:80 host=",
        ],
        expect![[r#"
        1.2.3.4:80 => refuse
        1.2.3.4:80 host=1.2.3.4 => 1 (#0 http 1.2.3.4:80)
        1.2.3.4:80 tls host=1.2.3.4 => refuse
        1.2.3.4:80 host= => refuse
    "#]],
    );
}

#[test]
fn ipv4_mapped_destinations_match_ipv4_rules() {
    let t = table(&[("tcp", "10.0.0.0/8", 1)]);
    check(
        &t,
        false,
        &["[::ffff:10.1.2.3]:22", "[::ffff:11.1.2.3]:22"],
        expect![[r#"
        [::ffff:10.1.2.3]:22 => 1 (#0 tcp 10.0.0.0/8:0)
        [::ffff:11.1.2.3]:22 => refuse
    "#]],
    );
}

fn check_explain(table: &Table<u32>, spec: &str, internet: bool, expect: Expect) {
    expect.assert_eq(&explain(table, &conn(spec), internet).to_string());
}

#[test]
fn explain_tls_falls_through_to_tcp() {
    let t = table(&[
        ("https", "example.com", 1),
        ("http", "0.0.0.0/0", 2),
        ("https", "10.0.0.0/8", 3),
        ("tcp", "1.2.3.4:443", 4),
    ]);
    check_explain(
        &t,
        "1.2.3.4:443 tls sni=other.com",
        false,
        expect![[r#"
        connection to 1.2.3.4:443, TLS, SNI "other.com"; internet off
        1. https by TLS server name: name "other.com", address 1.2.3.4, port 443
           #0 https example.com:443: name does not match
           #2 https 10.0.0.0/8:443: address outside
        2. http by Host: skipped, no plain HTTP request with a Host was seen
        3. https by address (TLS without a server name): skipped, it had a server name, so step 1 already tried the address
        4. tcp by address: address 1.2.3.4, port 443
           #3 tcp 1.2.3.4:443: matches
        decision: handle with #3 tcp 1.2.3.4:443
    "#]],
    );
}

#[test]
fn explain_refusal() {
    let t = table(&[
        ("http", "google.com", 2),
        ("http", "example.com:8080", 3),
        ("tcp", "10.0.0.0/8:5432", 4),
    ]);
    check_explain(
        &t,
        "11.0.0.1:9000 host=google.com:9000",
        false,
        expect![[r#"
        connection to 11.0.0.1:9000, Host "google.com:9000"; internet off
        1. https by TLS server name: skipped, no TLS server name
        2. http by Host: name "google.com", address 11.0.0.1, port 9000
           #0 http google.com:80: other port
           #1 http example.com:8080: other port
        3. https by address (TLS without a server name): skipped, the connection is not TLS
        4. tcp by address: address 11.0.0.1, port 9000
           #2 tcp 10.0.0.0/8:5432: other port
        decision: refuse (no mapping matched; the internet is off)
    "#]],
    );
    check_explain(
        &t,
        "10.0.0.7:22",
        true,
        expect![[r#"
        connection to 10.0.0.7:22, no TLS and no HTTP Host; internet on
        1. https by TLS server name: skipped, no TLS server name
        2. http by Host: skipped, no plain HTTP request with a Host was seen
        3. https by address (TLS without a server name): skipped, the connection is not TLS
        4. tcp by address: address 10.0.0.7, port 22
           #2 tcp 10.0.0.0/8:5432: other port
        decision: pass through to the destination (no mapping matched; the internet is on)
    "#]],
    );
}

#[test]
fn explain_tls_without_sni() {
    let t = table(&[("https", "*", 1), ("https", "[2001:db8::/32]:0", 2)]);
    check_explain(
        &t,
        "[2001:db8::7]:8443 tls",
        false,
        expect![[r#"
        connection to [2001:db8::7]:8443, TLS; internet off
        1. https by TLS server name: skipped, no TLS server name
        2. http by Host: skipped, no plain HTTP request with a Host was seen
        3. https by address (TLS without a server name): address 2001:db8::7, port 8443
           #0 https *:443: other port
           #1 https [2001:db8::/32]:0: matches
        decision: handle with #1 https [2001:db8::/32]:0
    "#]],
    );
}

#[test]
fn explain_empty_table() {
    check_explain(
        &Table::new(),
        "1.2.3.4:80",
        false,
        expect![[r#"
        connection to 1.2.3.4:80, no TLS and no HTTP Host; internet off
        1. https by TLS server name: skipped, no TLS server name
        2. http by Host: skipped, no plain HTTP request with a Host was seen
        3. https by address (TLS without a server name): skipped, the connection is not TLS
        4. tcp by address: address 1.2.3.4, port 80
           no tcp mappings
        decision: refuse (no mapping matched; the internet is off)
    "#]],
    );
}

fn arbitrary_table() -> impl Strategy<Value = Table<u32>> {
    let row = (
        prop::sample::select(vec!["http", "https", "tcp"]),
        prop::sample::select(vec![
            "0.0.0.0/0",
            "1.2.3.4",
            "10.0.0.0/8:443",
            "::/0",
            "[fd00::/8]:80",
            "a.com",
            "*.a.com:0",
            "*:443",
            "b.com:8080",
        ]),
    );
    prop::collection::vec(row, 0..8).prop_map(|rows| {
        rows.iter()
            .enumerate()
            .filter_map(|(i, (p, raw))| Mapping::parse(p.parse().unwrap(), raw, i as u32).ok())
            .collect()
    })
}

proptest! {
    /// `explain` runs the same walk as `decide`.
    #[test]
    fn explain_agrees_with_decide(
        t in arbitrary_table(),
        ip in prop::sample::select(vec!["1.2.3.4", "10.1.1.1", "11.0.0.1", "fd00::1", "2001:db8::1"]),
        port in prop::sample::select(vec![80u16, 443, 8080, 22]),
        sni in prop::option::of(prop::sample::select(vec!["a.com", "x.a.com", "b.com", ""])),
        hostname in prop::option::of(prop::sample::select(vec!["a.com", "b.com:8080", "c.org", ""])),
        tls in any::<bool>(),
        internet in any::<bool>(),
    ) {
        let conn = Connection { dst: (ip.parse::<std::net::IpAddr>().unwrap(), port).into(), sni, hostname, tls };
        let decision = decide(&t, &conn, internet);
        let explanation = explain(&t, &conn, internet);
        prop_assert_eq!(&explanation.verdict, &Verdict::of(&decision));
        // The last attempt of a handled connection is the match; nothing matched otherwise.
        let matched: Vec<usize> = explanation.steps.iter().flat_map(|s| match s {
            Step::Lookup { attempts, .. } => attempts.iter().filter(|a| a.outcome == Outcome::Match).map(|a| a.index).collect(),
            Step::Skipped { .. } => vec![],
        }).collect();
        match decision {
            Decision::Handle { index, .. } => prop_assert_eq!(matched, vec![index]),
            _ => prop_assert!(matched.is_empty()),
        }
    }
}
