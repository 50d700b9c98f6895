//! Hostname globs: the one wildcard dialect shared by mappings and the DNS allow-list (W33).
//!
//! Only `*` is special. It matches any run of characters, dots and the empty run included, so
//! `*.example.com` matches `a.b.example.com` but not `example.com`, and `*` matches every name.
//! Everything else, `?` and `[` included, is rejected when the glob is built, so the engine's
//! matcher and the sidecar's DNS server cannot disagree about what a pattern means.

use std::fmt;
use std::str::FromStr;

use crate::{GlobProblem, PolicyError};

/// The longest DNS name, in bytes, without the trailing dot.
const MAX_NAME: usize = 253;
/// The longest DNS label, in bytes.
const MAX_LABEL: usize = 63;

/// A validated, lowercase hostname glob such as `example.com`, `*.cloudflare.com` or `*`.
///
/// Built by [`HostGlob::new`], which lowercases, drops one trailing dot, folds runs of `*` into
/// one, and checks that the glob is made of non-empty labels of `[a-z0-9-_*]`, at most 253
/// bytes, with no label longer than 63 bytes unless it holds a `*`, and not ending in an
/// all-digit label (that is a mistyped IP address; no top-level domain is numeric).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostGlob(String);

// === impl HostGlob ===

impl HostGlob {
    /// Validates and normalises `raw`; see the type's documentation for the rules.
    pub fn new(raw: &str) -> Result<HostGlob, PolicyError> {
        validate(raw).map_err(|problem| PolicyError::BadGlob { glob: raw.to_owned(), problem })?;
        let mut glob = String::with_capacity(raw.len());
        for c in strip_dot(raw).chars() {
            if !(c == '*' && glob.ends_with('*')) {
                glob.push(c.to_ascii_lowercase());
            }
        }
        Ok(HostGlob(glob))
    }

    /// Does `host` match? ASCII case is ignored, and so is one trailing dot on `host`.
    pub fn matches(&self, host: &str) -> bool {
        glob_matches(&self.0, host)
    }

    /// The normalised glob.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Is this the glob `*`, which matches every name?
    pub fn is_everything(&self) -> bool {
        self.0 == "*"
    }
}

impl fmt::Display for HostGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for HostGlob {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<HostGlob, PolicyError> {
        HostGlob::new(s)
    }
}

impl AsRef<str> for HostGlob {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Checks the glob rules without allocating; ASCII case does not matter here.
pub(crate) fn validate(raw: &str) -> Result<(), GlobProblem> {
    let glob = strip_dot(raw);
    if glob.is_empty() {
        return Err(GlobProblem::Empty);
    }
    if let Some(c) = glob.chars().find(|c| !is_glob_char(*c)) {
        return Err(if c.is_ascii() { GlobProblem::Char(c) } else { GlobProblem::NonAscii });
    }
    let mut last = "";
    for label in glob.split('.') {
        if label.is_empty() {
            return Err(GlobProblem::EmptyLabel);
        }
        if label.len() > MAX_LABEL && !label.contains('*') {
            return Err(GlobProblem::LabelTooLong);
        }
        last = label;
    }
    if glob.len() > MAX_NAME {
        return Err(GlobProblem::TooLong);
    }
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(GlobProblem::Numeric);
    }
    Ok(())
}

/// `*` matches any run of bytes (dots and the empty run included); every other byte matches
/// itself, ignoring ASCII case on both sides. One trailing dot is ignored on both sides.
///
/// The classic two-pointer wildcard match: on a mismatch, go back to just after the last `*`
/// and let it swallow one more byte. Worst case O(pattern × name), no recursion, no allocation.
pub(crate) fn glob_matches(pattern: &str, name: &str) -> bool {
    let (pattern, name) = (strip_dot(pattern).as_bytes(), strip_dot(name).as_bytes());
    let (mut p, mut n) = (0, 0);
    // After the last `*` seen: where the pattern resumes, and where the name resumed last time.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                p += 1;
                star = Some((p, n));
            }
            Some(c) if c.eq_ignore_ascii_case(&name[n]) => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((resume, swallowed)) => {
                    p = resume;
                    n = swallowed + 1;
                    star = Some((resume, n));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

fn is_glob_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '*')
}

fn strip_dot(s: &str) -> &str {
    s.strip_suffix('.').unwrap_or(s)
}

#[cfg(test)]
mod tests;
