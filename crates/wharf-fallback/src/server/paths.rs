//! Pure: the server's virtual paths (`/`-rooted, normalized, never above the root) and how they
//! become `Location`s and come back as specifiers.

/// The prefix of a V1 `Location` whose path had bytes that are not printable ASCII; the rest is
/// percent-encoded (vitest's sentinel scheme, spec §3.2).
pub(super) const ENCODED_PREFIX: &str = "/__wharf_encoded__";

/// `path` made absolute and normalized: empty and `.` segments dropped, `..` collapsed, never
/// above `/`.
pub(super) fn normalize(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    if segments.is_empty() {
        return "/".to_owned();
    }
    let mut out = String::with_capacity(path.len() + 1);
    for s in segments {
        out.push('/');
        out.push_str(s);
    }
    out
}

/// The directory holding `path`; `/` for `/` itself.
pub(super) fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// `dir` joined with `relative`, normalized.
pub(super) fn join(dir: &str, relative: &str) -> String {
    normalize(&format!("{dir}/{relative}"))
}

/// The V1 `Location` for a resolved path: rooted, and ASCII-printable (spec §3.4).
pub(super) fn v1_location(path: &str) -> String {
    if path.bytes().all(|b| (0x21..0x7f).contains(&b)) && !path.starts_with(ENCODED_PREFIX) {
        return path.to_owned();
    }
    let mut out = String::from(ENCODED_PREFIX);
    percent_encode_into(path, &mut out);
    out
}

/// A V1 specifier as a path: the sentinel scheme undone.
pub(super) fn v1_path(specifier: &str) -> String {
    match specifier.strip_prefix(ENCODED_PREFIX) {
        Some(encoded) => normalize(&percent_decode(encoded)),
        None => normalize(specifier),
    }
}

/// Percent-encodes every byte but unreserved ones and `/`.
pub(super) fn percent_encode_into(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

/// Undoes `%XX`; anything else stays. Bytes that are not UTF-8 become U+FFFD.
pub(super) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |j: usize| bytes.get(j).and_then(|b| char::from(*b).to_digit(16));
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(u8::try_from(hi << 4 | lo).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(normalize("a/./b//../c.js"), "/a/c.js");
        assert_eq!(normalize("/../../etc/passwd"), "/etc/passwd");
        assert_eq!(normalize(""), "/");
        assert_eq!((parent("/a/b.js"), parent("/a"), parent("/")), ("/a", "/", "/"));
        assert_eq!(join("/a/b", "../c"), "/a/c");
        assert_eq!(v1_location("/a/b.js"), "/a/b.js");
        let odd = "/dir with space/é.js";
        let location = v1_location(odd);
        assert_eq!(location, "/__wharf_encoded__/dir%20with%20space/%C3%A9.js");
        assert_eq!(v1_path(&location), odd);
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
