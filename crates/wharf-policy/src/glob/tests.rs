//! Tests for hostname globs: validation messages, the match table, and a reference matcher.

use expect_test::{Expect, expect};
use proptest::prelude::*;

use super::*;

/// Builds each glob and shows it, or the error's message.
fn check_new(raws: &[&str], expect: Expect) {
    let mut out = String::new();
    for raw in raws {
        let shown = match HostGlob::new(raw) {
            Ok(glob) => format!("ok {glob}"),
            Err(e) => format!("error: {e}"),
        };
        out.push_str(&format!("{raw:?} => {shown}\n"));
    }
    expect.assert_eq(&out);
}

/// Matches each glob against each name and shows a yes/no table.
fn check_matches(glob: &str, names: &[&str], expect: Expect) {
    let glob = HostGlob::new(glob).unwrap();
    let mut out = String::new();
    for name in names {
        let hit = if glob.matches(name) { "yes" } else { "no" };
        out.push_str(&format!("{glob} ~ {name:?}: {hit}\n"));
    }
    expect.assert_eq(&out);
}

#[test]
fn new_normalises() {
    check_new(
        &["Example.COM", "example.com.", "*.Cloudflare.com", "**.a.b", "*", "a*b", "x_y-z.io"],
        expect![[r#"
            "Example.COM" => ok example.com
            "example.com." => ok example.com
            "*.Cloudflare.com" => ok *.cloudflare.com
            "**.a.b" => ok *.a.b
            "*" => ok *
            "a*b" => ok a*b
            "x_y-z.io" => ok x_y-z.io
        "#]],
    );
}

#[test]
fn new_rejects() {
    check_new(
        &[
            "",
            ".",
            "a..b",
            ".example.com",
            "example.com..",
            "exa mple.com",
            "ex?mple.com",
            "[ab].com",
            "bücher.de",
            "1.2.3.999",
            "*.10",
            "a/b",
        ],
        expect![[r#"
            "" => error: hostname glob "" is empty; write a name such as example.com or *.example.com
            "." => error: hostname glob "." is empty; write a name such as example.com or *.example.com
            "a..b" => error: hostname glob "a..b" has an empty label; remove the extra '.'
            ".example.com" => error: hostname glob ".example.com" has an empty label; remove the extra '.'
            "example.com.." => error: hostname glob "example.com.." has an empty label; remove the extra '.'
            "exa mple.com" => error: hostname glob "exa mple.com" contains ' '; a glob holds letters, digits, '-', '_' and '.', and only '*' is a wildcard
            "ex?mple.com" => error: hostname glob "ex?mple.com" contains '?'; a glob holds letters, digits, '-', '_' and '.', and only '*' is a wildcard
            "[ab].com" => error: hostname glob "[ab].com" contains '['; a glob holds letters, digits, '-', '_' and '.', and only '*' is a wildcard
            "bücher.de" => error: hostname glob "bücher.de" is not ASCII; write the name in its punycode (xn--) form
            "1.2.3.999" => error: hostname glob "1.2.3.999" ends in a numeric label, so it looks like an IP address but is not one; check the address
            "*.10" => error: hostname glob "*.10" ends in a numeric label, so it looks like an IP address but is not one; check the address
            "a/b" => error: hostname glob "a/b" contains '/'; a glob holds letters, digits, '-', '_' and '.', and only '*' is a wildcard
        "#]],
    );
}

#[test]
fn new_rejects_long_names() {
    let problem = |raw: &str| match HostGlob::new(raw) {
        Err(PolicyError::BadGlob { problem, .. }) => Some(problem),
        _ => None,
    };
    let label = "a".repeat(63);
    assert_eq!(problem(&format!("{label}.com")), None);
    assert_eq!(problem(&format!("{label}a.com")), Some(GlobProblem::LabelTooLong));
    assert_eq!(problem(&format!("{label}*.com")), None, "a label with '*' may match a long label");
    let name = format!("{label}.{label}.{label}.{}.com", "a".repeat(57));
    assert_eq!(name.len(), 253);
    assert_eq!(problem(&name), None);
    assert_eq!(problem(&format!("{name}.")), None, "the trailing dot does not count");
    assert_eq!(problem(&format!("a.{name}")), Some(GlobProblem::TooLong));
}

#[test]
fn subdomain_glob_needs_a_subdomain() {
    check_matches(
        "*.cloudflare.com",
        &[
            "cloudflare.com",
            "www.cloudflare.com",
            "a.b.cloudflare.com",
            ".cloudflare.com",
            "WWW.CloudFlare.COM.",
            "evilcloudflare.com",
        ],
        expect![[r#"
            *.cloudflare.com ~ "cloudflare.com": no
            *.cloudflare.com ~ "www.cloudflare.com": yes
            *.cloudflare.com ~ "a.b.cloudflare.com": yes
            *.cloudflare.com ~ ".cloudflare.com": yes
            *.cloudflare.com ~ "WWW.CloudFlare.COM.": yes
            *.cloudflare.com ~ "evilcloudflare.com": no
        "#]],
    );
}

#[test]
fn star_matches_everything() {
    check_matches(
        "*",
        &["", "a", "example.com", "a.b.c.d", "1.2.3.4", "::1"],
        expect![[r#"
        * ~ "": yes
        * ~ "a": yes
        * ~ "example.com": yes
        * ~ "a.b.c.d": yes
        * ~ "1.2.3.4": yes
        * ~ "::1": yes
    "#]],
    );
}

#[test]
fn star_spans_dots() {
    check_matches(
        "a*b",
        &["ab", "axb", "a.x.b", "a.b", "ba", "a", "axbx"],
        expect![[r#"
        a*b ~ "ab": yes
        a*b ~ "axb": yes
        a*b ~ "a.x.b": yes
        a*b ~ "a.b": yes
        a*b ~ "ba": no
        a*b ~ "a": no
        a*b ~ "axbx": no
    "#]],
    );
    check_matches(
        "api.*.example.com",
        &["api.eu.example.com", "api.a.b.example.com", "api..example.com", "api.example.com"],
        expect![[r#"
        api.*.example.com ~ "api.eu.example.com": yes
        api.*.example.com ~ "api.a.b.example.com": yes
        api.*.example.com ~ "api..example.com": yes
        api.*.example.com ~ "api.example.com": no
    "#]],
    );
}

#[test]
fn literal_globs_match_exactly_and_ignore_case() {
    check_matches(
        "example.com",
        &[
            "example.com",
            "EXAMPLE.com",
            "example.com.",
            "example.com..",
            "www.example.com",
            "example.co",
        ],
        expect![[r#"
        example.com ~ "example.com": yes
        example.com ~ "EXAMPLE.com": yes
        example.com ~ "example.com.": yes
        example.com ~ "example.com..": no
        example.com ~ "www.example.com": no
        example.com ~ "example.co": no
    "#]],
    );
}

/// The obvious recursive definition; exponential, so only for short inputs.
fn reference(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|skip| reference(rest, &name[skip..])),
        Some((c, rest)) => {
            name.first().is_some_and(|n| n.eq_ignore_ascii_case(c)) && reference(rest, &name[1..])
        }
    }
}

proptest! {
    #[test]
    fn matcher_agrees_with_reference(pattern in "[ab.*]{0,8}", name in "[abAB.]{0,10}") {
        let strip = |s: &str| s.strip_suffix('.').unwrap_or(s).to_owned();
        let want = reference(strip(&pattern).as_bytes(), strip(&name).as_bytes());
        prop_assert_eq!(glob_matches(&pattern, &name), want);
        if let Ok(glob) = HostGlob::new(&pattern) {
            prop_assert_eq!(glob.matches(&name), want);
        }
    }

    #[test]
    fn a_star_b(name in "[a-z.]{0,10}") {
        let bare = name.strip_suffix('.').unwrap_or(&name);
        let want = bare.len() >= 2 && bare.starts_with('a') && bare.ends_with('b');
        prop_assert_eq!(HostGlob::new("a*b").unwrap().matches(&name), want);
    }

    #[test]
    fn new_never_panics_and_is_idempotent(raw in "\\PC{0,40}|[a-zA-Z0-9*._ -]{0,40}") {
        if let Ok(glob) = HostGlob::new(&raw) {
            prop_assert_eq!(HostGlob::new(glob.as_str()), Ok(glob.clone()));
            prop_assert!(glob.as_str().len() <= 253);
        }
    }
}
