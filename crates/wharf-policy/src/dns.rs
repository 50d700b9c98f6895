//! The DNS side of the policy: the synthetic answer and the allow-list the sidecar resolves by.
//!
//! The engine derives the list with [`Table::dns_allow_list`](crate::Table::dns_allow_list) and
//! sends it in `PUT /egress`; the sidecar's DNS server asks [`AllowList::matches`] (or
//! [`allow_list_matches`] on the raw strings) which entry, if any, lets a name resolve. Entries
//! are [`HostGlob`]s, so the server and the engine share one glob dialect (W33).

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::{HostGlob, PolicyError, glob};

/// The `A` answer for an allowed name that has no real address (engine spec §3.3).
pub const SYNTHETIC_V4: Ipv4Addr = Ipv4Addr::new(11, 0, 0, 1);
/// The `AAAA` answer for an allowed name that has no real address.
pub const SYNTHETIC_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
/// The TTL of synthetic answers, in seconds.
pub const SYNTHETIC_TTL: u32 = 60;

/// A parsed DNS allow-list. Empty allows nothing; `*` allows everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    globs: Vec<HostGlob>,
}

// === impl AllowList ===

impl AllowList {
    /// Parses every entry as a [`HostGlob`]; the first invalid one is the error.
    pub fn new<I>(entries: I) -> Result<AllowList, PolicyError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let globs =
            entries.into_iter().map(|e| HostGlob::new(e.as_ref())).collect::<Result<_, _>>()?;
        Ok(AllowList { globs })
    }

    /// `["*"]`: what the sidecar allows before the engine's first `PUT /egress`.
    pub fn everything() -> AllowList {
        AllowList { globs: vec![HostGlob::new("*").expect("`*` is a valid glob")] }
    }

    /// The first entry that allows `name` (ASCII case and one trailing dot ignored).
    pub fn matches(&self, name: &str) -> Option<&HostGlob> {
        self.globs.iter().find(|g| g.matches(name))
    }

    /// The entries, in order.
    pub fn entries(&self) -> &[HostGlob] {
        &self.globs
    }
}

/// The first entry of `list` that allows `name`, as written in `list`.
///
/// Entries follow [`HostGlob`]'s rules; one that breaks them allows nothing (the engine never
/// sends one). ASCII case and one trailing dot are ignored on both sides. Does not allocate.
pub fn allow_list_matches<'a>(list: &'a [String], name: &str) -> Option<&'a str> {
    list.iter()
        .map(String::as_str)
        .find(|entry| glob::validate(entry).is_ok() && glob::glob_matches(entry, name))
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    fn check(list: &[&str], names: &[&str], expect: Expect) {
        let list: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
        let parsed = AllowList::new(&list);
        let mut out = String::new();
        for name in names {
            let raw = allow_list_matches(&list, name);
            if let Ok(parsed) = &parsed {
                // Both forms agree, up to the parsed form's normalisation.
                let via_parsed = parsed.matches(name).map(HostGlob::as_str);
                let normalised = raw.map(|r| HostGlob::new(r).unwrap());
                assert_eq!(via_parsed, normalised.as_ref().map(HostGlob::as_str), "{name}");
            }
            out.push_str(&format!("{name:?} => {raw:?}\n"));
        }
        expect.assert_eq(&out);
    }

    #[test]
    fn entries_allow_names() {
        check(
            &["example.com", "*.Cloudflare.com."],
            &[
                "example.com",
                "EXAMPLE.COM.",
                "www.example.com",
                "cloudflare.com",
                "a.b.cloudflare.com",
            ],
            expect![[r#"
                "example.com" => Some("example.com")
                "EXAMPLE.COM." => Some("example.com")
                "www.example.com" => None
                "cloudflare.com" => None
                "a.b.cloudflare.com" => Some("*.Cloudflare.com.")
            "#]],
        );
    }

    #[test]
    fn star_allows_everything_and_empty_nothing() {
        check(
            &["a.com", "*"],
            &["a.com", "anything.at.all", "localhost"],
            expect![[r#"
            "a.com" => Some("a.com")
            "anything.at.all" => Some("*")
            "localhost" => Some("*")
        "#]],
        );
        check(
            &[],
            &["a.com"],
            expect![[r#"
            "a.com" => None
        "#]],
        );
    }

    #[test]
    fn invalid_entries_allow_nothing() {
        check(
            &["ex?mple.com", "[a-z]*", "b.com"],
            &["example.com", "exxmple.com", "b.com"],
            expect![[r#"
            "example.com" => None
            "exxmple.com" => None
            "b.com" => Some("b.com")
        "#]],
        );
        let err = AllowList::new(["ok.com", "ex?mple.com"]).unwrap_err();
        expect![[r#"hostname glob "ex?mple.com" contains '?'; a glob holds letters, digits, '-', '_' and '.', and only '*' is a wildcard"#]].assert_eq(&err.to_string());
    }

    #[test]
    fn everything_is_star() {
        assert_eq!(AllowList::everything(), AllowList::new(["*"]).unwrap());
        assert!(AllowList::everything().matches("x.y").is_some());
        assert!(AllowList::default().matches("x.y").is_none());
    }
}
