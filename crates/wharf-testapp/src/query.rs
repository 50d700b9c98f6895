//! Query-string parameters, decoded the way a browser's `URLSearchParams` does.

/// The first value of `key` in `query` (the part after `?`), percent- and `+`-decoded.
pub fn param(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k) == key).then(|| decode(v))
    })
}

/// Decodes `%XX` escapes and `+`. Malformed escapes stay as written; invalid UTF-8 is replaced.
fn decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = (b == b'%').then(|| hex_byte(bytes.get(i + 1..i + 3)?)).flatten();
        match (b, escaped) {
            (_, Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (_, None) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_byte(two: &[u8]) -> Option<u8> {
    let text = std::str::from_utf8(two).ok()?;
    u8::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::param;

    #[test]
    fn decodes_like_url_search_params() {
        let check = |query: &str| param(Some(query), "path");
        assert_eq!(check("path=/app/data/test.txt").as_deref(), Some("/app/data/test.txt"));
        assert_eq!(check("x=1&path=%2Ftmp%2Fa%20b+c").as_deref(), Some("/tmp/a b c"));
        assert_eq!(check("path=%zz%2").as_deref(), Some("%zz%2"));
        assert_eq!(check("path=%C3%A9").as_deref(), Some("é"));
        assert_eq!(check("path").as_deref(), Some(""));
        assert_eq!(check("paths=/x"), None);
        assert_eq!(param(None, "path"), None);
    }
}
