//! The two request shapes, spec §1.2 (V1: a `GET` with a form-encoded query and
//! `x-resolve-method`) and §1.3 (V2: a `POST` with a compact JSON body), both directions.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HOST};
use http::{HeaderMap, HeaderValue, Method, Uri};
use serde::{Deserialize, Serialize};

use super::form;

/// The V1 header naming how the module is loaded: `import` or `require`.
pub const RESOLVE_METHOD_HEADER: &str = "x-resolve-method";

/// Segment prefixes that V1 sends on their own, without the path before them (spec §1.2).
const BUILTIN_PREFIXES: [&str; 3] = ["node:", "cloudflare:", "workerd:"];

/// One question to the fallback service.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Request {
    /// The legacy registry's `GET`.
    V1(V1Request),
    /// The new registry's `POST`.
    V2(V2Request),
}

/// How the module is being loaded, in V1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResolveMethod {
    /// A static or dynamic `import`.
    Import,
    /// A CommonJS `require()`.
    Require,
}

/// A V1 request: three query parameters, always present, always in this order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct V1Request {
    /// The resolved absolute path, e.g. `/a/b/dep.mjs`, or a bare prefixed segment (`node:fs`).
    pub specifier: String,
    /// The importing module's absolute path; empty when there is none.
    pub referrer: String,
    /// The specifier as written in the source; empty when unknown.
    pub raw_specifier: String,
    /// `import` or `require`.
    pub method: ResolveMethod,
}

/// The V2 `type` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum V2Kind {
    /// A static or dynamic `import`.
    Import,
    /// A CommonJS `require()`.
    Require,
    /// A resolution started by the runtime itself.
    Internal,
}

/// An import attribute; only `type` survives in workerd (spec §1.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Attribute {
    /// The attribute's name, e.g. `type`.
    pub name: String,
    /// Its value, e.g. `json`.
    pub value: String,
}

/// A V2 request: a JSON body whose keys go out in the capnp ordinal order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct V2Request {
    /// `import`, `require` or `internal`.
    pub kind: V2Kind,
    /// A normalized URL, e.g. `file:///bundle/esm.js`.
    pub specifier: String,
    /// The specifier as written; `None` (the key is left out) when unknown.
    pub raw_specifier: Option<String>,
    /// The importing module's URL, or the bundle base.
    pub referrer: String,
    /// Import attributes; the key is left out when empty.
    pub attributes: Vec<Attribute>,
}

/// Why bytes on the wire are not a fallback request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Neither `GET` with `x-resolve-method` nor `POST`.
    #[error("not a module fallback request: {0} without an x-resolve-method header")]
    NotFallback(String),
    /// `x-resolve-method` is neither `import` nor `require`.
    #[error("x-resolve-method must be import or require, not {0:?}")]
    BadResolveMethod(String),
    /// The `specifier` parameter or key is missing or empty.
    #[error("the request has no specifier")]
    MissingSpecifier,
    /// The V2 body is not the JSON object the protocol describes.
    #[error("the V2 body is not a fallback request: {0}")]
    BadBody(String),
    /// The request cannot be put on the wire (an internal invariant broke).
    #[error("the request cannot be encoded: {0}")]
    Unencodable(String),
}

/// The V2 body as it goes out: keys in ordinal order, unset ones left out.
#[derive(Serialize)]
struct V2Out<'a> {
    #[serde(rename = "type")]
    kind: V2Kind,
    specifier: &'a str,
    #[serde(rename = "rawSpecifier", skip_serializing_if = "Option::is_none")]
    raw_specifier: Option<&'a str>,
    referrer: &'a str,
    #[serde(skip_serializing_if = "<[Attribute]>::is_empty")]
    attributes: &'a [Attribute],
}

/// The V2 body as it comes in: unknown keys are ignored, only `specifier` is required.
#[derive(Deserialize)]
struct V2In {
    #[serde(rename = "type", default = "import")]
    kind: V2Kind,
    specifier: String,
    #[serde(rename = "rawSpecifier", default)]
    raw_specifier: Option<String>,
    #[serde(default)]
    referrer: String,
    #[serde(default)]
    attributes: Vec<Attribute>,
}

fn import() -> V2Kind {
    V2Kind::Import
}

// === impl Request ===

impl Request {
    /// The specifier a module answer's `name` must equal (spec §1.4): V1's without one leading
    /// `/`, V2's as sent.
    pub fn effective_specifier(&self) -> &str {
        match self {
            Request::V1(r) => r.specifier.strip_prefix('/').unwrap_or(&r.specifier),
            Request::V2(r) => &r.specifier,
        }
    }

    /// The specifier exactly as sent.
    pub fn specifier(&self) -> &str {
        match self {
            Request::V1(r) => &r.specifier,
            Request::V2(r) => &r.specifier,
        }
    }

    /// The request as workerd puts it on the wire, `Host: localhost` included.
    pub fn to_http(&self) -> Result<http::Request<Bytes>, RequestError> {
        let (method, target, body, resolve) = match self {
            Request::V1(r) => (Method::GET, r.target(), Bytes::new(), Some(r.method.as_str())),
            Request::V2(r) => (Method::POST, "/".to_owned(), r.body()?, None),
        };
        let length = body.len();
        let mut request = http::Request::new(body);
        *request.method_mut() = method;
        *request.uri_mut() =
            Uri::try_from(target).map_err(|e| RequestError::Unencodable(e.to_string()))?;
        let headers = request.headers_mut();
        headers.insert(HOST, HeaderValue::from_static(super::HOST));
        if let Some(resolve) = resolve {
            headers.insert(RESOLVE_METHOD_HEADER, HeaderValue::from_static(resolve));
        } else {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
        }
        Ok(request)
    }

    /// Reads a request the way the reference server does (spec §3.4): `GET` plus
    /// `x-resolve-method` is V1, any `POST` is V2.
    pub fn from_http(
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Request, RequestError> {
        let resolve = headers.get(RESOLVE_METHOD_HEADER);
        match (method, resolve) {
            (&Method::GET, Some(resolve)) => {
                let method = ResolveMethod::parse(resolve.as_bytes())?;
                V1Request::from_query(uri.query().unwrap_or(""), method).map(Request::V1)
            }
            (&Method::POST, _) => V2Request::from_body(body).map(Request::V2),
            _ => Err(RequestError::NotFallback(method.to_string())),
        }
    }
}

// === impl ResolveMethod ===

impl ResolveMethod {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            ResolveMethod::Import => "import",
            ResolveMethod::Require => "require",
        }
    }

    fn parse(value: &[u8]) -> Result<ResolveMethod, RequestError> {
        if value.eq_ignore_ascii_case(b"import") {
            Ok(ResolveMethod::Import)
        } else if value.eq_ignore_ascii_case(b"require") {
            Ok(ResolveMethod::Require)
        } else {
            Err(RequestError::BadResolveMethod(String::from_utf8_lossy(value).into_owned()))
        }
    }
}

// === impl V1Request ===

impl V1Request {
    /// The request the runtime sends for the absolute `path`, with the prefix rule applied: a
    /// last segment starting `node:`, `cloudflare:` or `workerd:` goes out alone.
    pub fn new(path: &str, referrer: &str, raw_specifier: &str, method: ResolveMethod) -> Self {
        V1Request {
            specifier: apply_prefix_rule(path).to_owned(),
            referrer: referrer.to_owned(),
            raw_specifier: raw_specifier.to_owned(),
            method,
        }
    }

    /// `/?specifier=…&referrer=…&rawSpecifier=…`.
    fn target(&self) -> String {
        let mut target = String::with_capacity(
            48 + 3 * (self.specifier.len() + self.referrer.len() + self.raw_specifier.len()),
        );
        target.push_str("/?specifier=");
        form::encode_into(&self.specifier, &mut target);
        target.push_str("&referrer=");
        form::encode_into(&self.referrer, &mut target);
        target.push_str("&rawSpecifier=");
        form::encode_into(&self.raw_specifier, &mut target);
        target
    }

    /// The first of each parameter wins; a missing `referrer` or `rawSpecifier` is empty.
    fn from_query(query: &str, method: ResolveMethod) -> Result<V1Request, RequestError> {
        let (mut specifier, mut referrer, mut raw_specifier) = (None, None, None);
        for (name, value) in form::pairs(query) {
            let slot = match &*name {
                "specifier" => &mut specifier,
                "referrer" => &mut referrer,
                "rawSpecifier" => &mut raw_specifier,
                _ => continue,
            };
            slot.get_or_insert_with(|| value.into_owned());
        }
        let specifier =
            specifier.filter(|s| !s.is_empty()).ok_or(RequestError::MissingSpecifier)?;
        Ok(V1Request {
            specifier,
            referrer: referrer.unwrap_or_default(),
            raw_specifier: raw_specifier.unwrap_or_default(),
            method,
        })
    }
}

/// The V1 prefix rule (spec §1.2): `/a/b/node:fs` is sent as `node:fs`.
pub(super) fn apply_prefix_rule(path: &str) -> &str {
    let last = path.rsplit('/').next().unwrap_or(path);
    if BUILTIN_PREFIXES.iter().any(|p| last.starts_with(p)) { last } else { path }
}

/// Whether `specifier` names a runtime builtin (`node:fs`, `cloudflare:sockets`, …).
pub(crate) fn is_builtin(specifier: &str) -> bool {
    BUILTIN_PREFIXES.iter().any(|p| specifier.starts_with(p))
}

// === impl V2Request ===

impl V2Request {
    fn body(&self) -> Result<Bytes, RequestError> {
        let out = V2Out {
            kind: self.kind,
            specifier: &self.specifier,
            raw_specifier: self.raw_specifier.as_deref(),
            referrer: &self.referrer,
            attributes: &self.attributes,
        };
        serde_json::to_vec(&out)
            .map(Bytes::from)
            .map_err(|e| RequestError::Unencodable(e.to_string()))
    }

    fn from_body(body: &[u8]) -> Result<V2Request, RequestError> {
        let v2: V2In =
            serde_json::from_slice(body).map_err(|e| RequestError::BadBody(e.to_string()))?;
        if v2.specifier.is_empty() {
            return Err(RequestError::MissingSpecifier);
        }
        Ok(V2Request {
            kind: v2.kind,
            specifier: v2.specifier,
            raw_specifier: v2.raw_specifier,
            referrer: v2.referrer,
            attributes: v2.attributes,
        })
    }
}
