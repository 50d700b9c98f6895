//! Where a `301` leads (spec §1.5): the next request the runtime makes for a `Location`.
//!
//! * V1 evaluates `Location` as a path relative to the *parent directory of the requested
//!   specifier*; a leading `/` makes it absolute; `.` and `..` collapse. The next request keeps
//!   the referrer, method and `rawSpecifier`.
//! * V2 parses `Location` as a URL relative to the *bundle base*, and keeps every other field.
//!
//! Loop detection lives with the caller that follows ([`crate::client`]), since it needs the
//! whole chain.

use url::Url;

use super::AnswerError;
use super::request::{Request, V1Request, V2Request, is_builtin};

/// The default V2 bundle base.
pub const DEFAULT_BUNDLE_BASE: &str = "file:///bundle/";

/// The request that follows `request` answered with a redirect to `location`.
pub fn next_request(
    request: &Request,
    location: &str,
    bundle_base: &Url,
) -> Result<Request, AnswerError> {
    match request {
        Request::V1(r) => {
            let path = eval_path(&r.specifier, location);
            Ok(Request::V1(V1Request::new(&path, &r.referrer, &r.raw_specifier, r.method)))
        }
        Request::V2(r) => {
            let url = bundle_base
                .join(location)
                .map_err(|_| AnswerError::BadLocation(location.to_owned()))?;
            Ok(Request::V2(V2Request { specifier: url.into(), ..r.clone() }))
        }
    }
}

/// `specifier.parent().eval(location)`: an absolute, normalized path.
pub fn eval_path(specifier: &str, location: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    if !location.starts_with('/') {
        // A prefixed builtin (`node:fs`) is rooted: its parent is `/`.
        let path = if is_builtin(specifier) { "" } else { specifier };
        segments.extend(path.split('/').filter(|s| !s.is_empty()));
        segments.pop();
    }
    for segment in location.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut path = String::with_capacity(location.len() + specifier.len() + 1);
    for segment in &segments {
        path.push('/');
        path.push_str(segment);
    }
    if path.is_empty() {
        path.push('/');
    }
    path
}
