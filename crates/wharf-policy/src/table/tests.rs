//! Tests for the mapping table: upsert identity and order, and the DNS allow-list (W32).

use expect_test::{Expect, expect};
use proptest::prelude::*;

use super::*;
use crate::{Connection, Decision, HostGlob, decide};

/// `(protocol, hostPort, target)` rows into a table, upserted in order.
pub(crate) fn table(rows: &[(&str, &str, u32)]) -> Table<u32> {
    rows.iter()
        .map(|(p, raw, target)| Mapping::parse(p.parse().unwrap(), raw, *target).unwrap())
        .collect()
}

fn show(table: &Table<u32>) -> String {
    table
        .mappings()
        .iter()
        .enumerate()
        .map(|(i, m)| format!("#{i} {} -> {}\n", m.rule(), m.target))
        .collect()
}

/// Upserts each row, showing what happened, then the table.
fn check_upserts(rows: &[(&str, &str, u32)], expect: Expect) {
    let mut t = Table::new();
    let mut out = String::new();
    for (p, raw, target) in rows {
        let upsert = t.upsert(Mapping::parse(p.parse().unwrap(), raw, *target).unwrap());
        out.push_str(&format!("{p} {raw} {target}: {upsert:?}\n"));
    }
    out.push_str("--\n");
    out.push_str(&show(&t));
    expect.assert_eq(&out);
}

fn check_allow(rows: &[(&str, &str, u32)], expect: Expect) {
    expect.assert_eq(&format!("{:?}", table(rows).dns_allow_list()));
}

#[test]
fn upsert_replaces_same_rule_in_place() {
    check_upserts(
        &[
            ("http", "example.com", 1),
            ("http", "0.0.0.0/0", 2),
            ("http", "example.com:80", 3),
            ("https", "example.com", 4),
            ("http", "example.com:8080", 5),
            ("http", "EXAMPLE.com.", 6),
            ("http", "10.1.2.3/8", 7),
            ("http", "10.0.0.0/8:80", 8),
            ("http", "0.0.0.0/0", 9),
        ],
        expect![[r#"
            http example.com 1: Added(0)
            http 0.0.0.0/0 2: Added(1)
            http example.com:80 3: Replaced(0)
            https example.com 4: Added(2)
            http example.com:8080 5: Added(3)
            http EXAMPLE.com. 6: Replaced(0)
            http 10.1.2.3/8 7: Added(4)
            http 10.0.0.0/8:80 8: Replaced(4)
            http 0.0.0.0/0 9: Replaced(1)
            --
            #0 http example.com:80 -> 6
            #1 http 0.0.0.0/0:80 -> 9
            #2 https example.com:443 -> 4
            #3 http example.com:8080 -> 5
            #4 http 10.0.0.0/8:80 -> 8
        "#]],
    );
}

#[test]
fn hand_built_cidrs_are_canonical_too() {
    let mut t = Table::new();
    let net = |s: &str| Destination::Cidr(s.parse().unwrap());
    t.upsert(Mapping { protocol: Protocol::Tcp, dest: net("10.1.2.3/8"), port: 0, target: 1 });
    let again =
        t.upsert(Mapping { protocol: Protocol::Tcp, dest: net("10.9.9.9/8"), port: 0, target: 2 });
    assert_eq!(again, Upsert::Replaced(0));
    expect![[r#"
        #0 tcp 10.0.0.0/8:0 -> 2
    "#]]
    .assert_eq(&show(&t));
}

#[test]
fn allow_list() {
    check_allow(&[], expect!["[]"]);
    check_allow(
        &[
            ("http", "example.com", 1),
            ("https", "*.cloudflare.com", 2),
            ("https", "example.com", 3),
        ],
        expect![[r#"["example.com", "*.cloudflare.com"]"#]],
    );
    // W32: addresses that a synthetic answer never reaches open no names.
    check_allow(
        &[
            ("http", "a.com", 1),
            ("http", "1.2.3.4", 2),
            ("tcp", "10.0.0.0/8", 3),
            ("https", "[fd00:1::/64]:443", 4),
            ("http", "b.com", 5),
        ],
        expect![[r#"["a.com", "b.com"]"#]],
    );
    // interceptAll, 11.0.0.0/8 and fd00::/8 hold the synthetic addresses.
    check_allow(&[("http", "a.com", 1), ("http", "0.0.0.0/0", 2)], expect![[r#"["*"]"#]]);
    check_allow(&[("tcp", "11.0.0.0/8:7777", 1)], expect![[r#"["*"]"#]]);
    check_allow(&[("https", "fd00::/8", 1)], expect![[r#"["*"]"#]]);
    check_allow(&[("http", "::/0", 1)], expect![[r#"["*"]"#]]);
    check_allow(&[("https", "a.com", 1), ("https", "*", 2)], expect![[r#"["*"]"#]]);
}

fn row() -> impl Strategy<Value = (Protocol, Destination, u16)> {
    let protocol = prop_oneof![Just(Protocol::Http), Just(Protocol::Https), Just(Protocol::Tcp)];
    // Few distinct values, so that upserts collide often.
    let dest = prop_oneof![
        prop::sample::select(vec![
            "0.0.0.0/0",
            "11.0.0.0/8",
            "10.0.0.0/8",
            "1.2.3.4/32",
            "::/0",
            "fd00::/8",
            "2001:db8::/32"
        ])
        .prop_map(|s| Destination::cidr(s.parse().unwrap())),
        prop::sample::select(vec!["a.com", "*.a.com", "*", "b.com", "*b*"])
            .prop_map(|s| Destination::Host(HostGlob::new(s).unwrap())),
    ];
    let port = prop::sample::select(vec![0u16, 80, 443, 7777]);
    (protocol, dest, port).prop_filter("tcp takes addresses", |(p, d, _)| {
        *p != Protocol::Tcp || d.as_cidr().is_some()
    })
}

fn connection()
-> impl Strategy<Value = (std::net::SocketAddr, Option<&'static str>, Option<&'static str>, bool)> {
    let ip = prop::sample::select(vec![
        "11.0.0.1",
        "10.1.1.1",
        "1.2.3.4",
        "8.8.8.8",
        "fd00::1",
        "2001:db8::5",
        "::1",
    ]);
    let port = prop::sample::select(vec![80u16, 443, 7777, 22]);
    let name = prop::option::of(prop::sample::select(vec!["a.com", "x.a.com", "b.com", "abc.org"]));
    (ip, port, name.clone(), name, any::<bool>()).prop_map(|(ip, port, sni, host, tls)| {
        ((ip.parse::<std::net::IpAddr>().unwrap(), port).into(), sni, host, tls)
    })
}

proptest! {
    #[test]
    fn upsert_of_existing_rule_keeps_order_and_retargets(
        rows in prop::collection::vec(row(), 1..12),
        pick in any::<prop::sample::Index>(),
        conns in prop::collection::vec(connection(), 1..16),
    ) {
        let mut t: Table<u32> = Table::new();
        for (i, (protocol, dest, port)) in rows.into_iter().enumerate() {
            t.upsert(Mapping { protocol, dest, port, target: i as u32 });
        }
        let before = t.clone();
        let index = pick.index(t.len());
        let old = &before.mappings()[index];
        let new = Mapping { protocol: old.protocol, dest: old.dest.clone(), port: old.port, target: 1000 };
        prop_assert_eq!(t.upsert(new), Upsert::Replaced(index));
        prop_assert_eq!(t.len(), before.len());
        for (i, (a, b)) in before.mappings().iter().zip(t.mappings()).enumerate() {
            prop_assert!(a.same_rule(b));
            prop_assert_eq!(a.target == b.target, i != index);
        }
        for (dst, sni, hostname, tls) in conns {
            let conn = Connection { dst, sni, hostname, tls };
            for internet in [false, true] {
                let (was, is) = (decide(&before, &conn, internet), decide(&t, &conn, internet));
                match (was, is) {
                    (Decision::Handle { index: a, mapping: old }, Decision::Handle { index: b, mapping: new }) => {
                        prop_assert_eq!(a, b);
                        prop_assert_eq!(new.target, if a == index { 1000 } else { old.target });
                    }
                    (was, is) => prop_assert_eq!(was, is),
                }
            }
        }
    }

    #[test]
    fn allow_list_is_star_iff_something_catches_synthetic_answers(rows in prop::collection::vec(row(), 0..8)) {
        let t: Table<()> = rows.into_iter().map(|(protocol, dest, port)| Mapping { protocol, dest, port, target: () }).collect();
        let catches_all = t.mappings().iter().any(|m| match &m.dest {
            Destination::Cidr(net) => net.contains(&std::net::IpAddr::from(SYNTHETIC_V4)) || net.contains(&std::net::IpAddr::from(SYNTHETIC_V6)),
            Destination::Host(glob) => glob.is_everything(),
        });
        let list = t.dns_allow_list();
        prop_assert_eq!(list.iter().any(|g| g == "*"), catches_all);
        if catches_all {
            prop_assert_eq!(list, vec!["*".to_owned()]);
        } else {
            let globs: Vec<&str> = t.mappings().iter().filter_map(|m| m.dest.as_glob()).map(HostGlob::as_str).collect();
            prop_assert!(list.iter().all(|g| globs.contains(&g.as_str())));
            prop_assert!(globs.iter().all(|g| list.iter().any(|l| l == g)));
        }
    }
}
