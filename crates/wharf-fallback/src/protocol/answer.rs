//! The answers (spec §1.4): a module as the JSON form of `Worker.Module`, a 301 alias, or
//! not-found; encoded as a server sends them and classified as workerd's client reads them.

use std::fmt;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use http::{HeaderValue, StatusCode};
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserializer, Serialize, Serializer};

/// How much of a not-found body is kept for the message.
const NOT_FOUND_MESSAGE_BYTES: usize = 512;

/// One reply from the fallback service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `200` with a module.
    Module(Module),
    /// `301` with `Location`: an alias to another specifier, taken verbatim.
    Redirect(String),
    /// Anything else: an empty `200`, a `404`, a `500`, a `302`…
    NotFound(NotFound),
}

/// A not-found answer, kept for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotFound {
    /// The status the server sent.
    pub status: u16,
    /// The start of the body, as text.
    pub message: String,
}

/// A module: the JSON form of capnp's `Worker.Module`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// Must equal the effective specifier when present; a client fills it in when absent.
    pub name: Option<String>,
    /// The union member.
    pub kind: ModuleKind,
}

/// The members of the module union that the fallback service may answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleKind {
    /// `esModule`: ES module source.
    EsModule(String),
    /// `commonJsModule`, with `namedExports`.
    CommonJs {
        /// The CommonJS source.
        source: String,
        /// Names the module exports, for `import { a } from "cjs"`.
        named_exports: Vec<String>,
    },
    /// `text`: the default export is the string.
    Text(String),
    /// `data`: an `ArrayBuffer`, sent as a JSON array of integers 0..=255.
    Data(Vec<u8>),
    /// `wasm`: compiled to a `WebAssembly.Module`, sent like `data`.
    Wasm(Vec<u8>),
    /// `json`: text that the runtime parses as JSON.
    Json(String),
}

/// Why an answer cannot be used. workerd logs each of these and reports not-found; this
/// crate's client returns them as errors so the caller can tell them apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnswerError {
    /// A `200` body that is not the module JSON.
    #[error("the module JSON is malformed: {0}")]
    Json(String),
    /// A module type the fallback path cannot load (`pythonModule`, `obsolete…`).
    #[error("the fallback service answered a {0} module, which cannot be loaded this way")]
    Unsupported(&'static str),
    /// `name` differs from the specifier asked for.
    #[error("returned module name {name:?} does not match specifier {expected:?}")]
    NameMismatch {
        /// The name in the answer.
        name: String,
        /// The effective specifier of the request.
        expected: String,
    },
    /// A `301` without `Location`.
    #[error("the fallback service returned a redirect with no location")]
    RedirectWithoutLocation,
    /// A `Location` that is empty, not text, or not usable as the next specifier.
    #[error("the redirect location {0:?} is not a usable specifier")]
    BadLocation(String),
}

/// The union member being decoded, `None` for the unsupported ones.
enum Member {
    Supported(ModuleKind),
    Unsupported(&'static str),
}

/// Decodes the module JSON object with capnp's `JsonCodec` rules.
struct ModuleVisitor;

// === impl Answer ===

impl Answer {
    /// Classifies a response the way workerd's client does (spec §1.4), with `effective` the
    /// request's effective specifier for the name check.
    pub fn from_http(
        status: u16,
        location: Option<&[u8]>,
        body: &[u8],
        effective: &str,
    ) -> Result<Answer, AnswerError> {
        match status {
            301 => match location {
                None => Err(AnswerError::RedirectWithoutLocation),
                Some(raw) => match std::str::from_utf8(raw) {
                    Ok(location) if !location.is_empty() => {
                        Ok(Answer::Redirect(location.to_owned()))
                    }
                    _ => Err(AnswerError::BadLocation(String::from_utf8_lossy(raw).into_owned())),
                },
            },
            200 if body.is_empty() => Ok(Answer::NotFound(NotFound::new(200, body))),
            200 => {
                let mut module = Module::decode(body)?;
                match &module.name {
                    Some(name) if name != effective => Err(AnswerError::NameMismatch {
                        name: name.clone(),
                        expected: effective.to_owned(),
                    }),
                    Some(_) => Ok(Answer::Module(module)),
                    None => {
                        module.name = Some(effective.to_owned());
                        Ok(Answer::Module(module))
                    }
                }
            }
            _ => Ok(Answer::NotFound(NotFound::new(status, body))),
        }
    }

    /// The response a server sends, always with an explicit `Content-Length` (spec §3.4), so
    /// that even a client that does not drain can reuse the connection.
    pub fn to_http(&self) -> Result<http::Response<Bytes>, AnswerError> {
        let (status, body, content_type) = match self {
            Answer::Module(module) => {
                let json =
                    serde_json::to_vec(module).map_err(|e| AnswerError::Json(e.to_string()))?;
                (StatusCode::OK, Bytes::from(json), "application/json")
            }
            Answer::Redirect(_) => (StatusCode::MOVED_PERMANENTLY, Bytes::new(), ""),
            Answer::NotFound(nf) => {
                let status = StatusCode::from_u16(nf.status)
                    .ok()
                    .filter(|s| *s != StatusCode::OK && *s != StatusCode::MOVED_PERMANENTLY)
                    .unwrap_or(StatusCode::NOT_FOUND);
                (status, Bytes::from(nf.message.clone()), "text/plain; charset=utf-8")
            }
        };
        let length = body.len();
        let mut response = http::Response::new(body);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
        if !content_type.is_empty() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        if let Answer::Redirect(location) = self {
            let value = HeaderValue::from_str(location)
                .ok()
                .filter(|_| !location.is_empty())
                .ok_or_else(|| AnswerError::BadLocation(location.clone()))?;
            response.headers_mut().insert(LOCATION, value);
        }
        Ok(response)
    }
}

// === impl NotFound ===

impl NotFound {
    /// A not-found with the start of `body` as its message.
    pub fn new(status: u16, body: &[u8]) -> Self {
        let end = body.len().min(NOT_FOUND_MESSAGE_BYTES);
        NotFound { status, message: String::from_utf8_lossy(&body[..end]).into_owned() }
    }
}

// === impl Module ===

impl Module {
    /// Decodes a `200` body (spec §1.4): unknown keys are ignored, the last union key wins, no
    /// union key is an empty ES module, `data`/`wasm` must be arrays of integers 0..=255.
    pub fn decode(body: &[u8]) -> Result<Module, AnswerError> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let module =
            de.deserialize_map(ModuleVisitor).map_err(|e| AnswerError::Json(e.to_string()))?;
        de.end().map_err(|e| AnswerError::Json(e.to_string()))?;
        module
    }

    /// The module JSON, keys in the order `name`, the union member, `namedExports`.
    pub fn encode(&self) -> Result<Vec<u8>, AnswerError> {
        serde_json::to_vec(self).map_err(|e| AnswerError::Json(e.to_string()))
    }
}

impl Serialize for Module {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if let Some(name) = &self.name {
            map.serialize_entry("name", name)?;
        }
        match &self.kind {
            ModuleKind::EsModule(s) => map.serialize_entry("esModule", s)?,
            ModuleKind::CommonJs { source, named_exports } => {
                map.serialize_entry("commonJsModule", source)?;
                if !named_exports.is_empty() {
                    map.serialize_entry("namedExports", named_exports)?;
                }
            }
            ModuleKind::Text(s) => map.serialize_entry("text", s)?,
            ModuleKind::Data(b) => map.serialize_entry("data", b)?,
            ModuleKind::Wasm(b) => map.serialize_entry("wasm", b)?,
            ModuleKind::Json(s) => map.serialize_entry("json", s)?,
        }
        map.end()
    }
}

// === impl ModuleKind ===

impl ModuleKind {
    /// The JSON key of this member.
    pub fn key(&self) -> &'static str {
        match self {
            ModuleKind::EsModule(_) => "esModule",
            ModuleKind::CommonJs { .. } => "commonJsModule",
            ModuleKind::Text(_) => "text",
            ModuleKind::Data(_) => "data",
            ModuleKind::Wasm(_) => "wasm",
            ModuleKind::Json(_) => "json",
        }
    }
}

// === impl ModuleVisitor ===

impl<'de> Visitor<'de> for ModuleVisitor {
    type Value = Result<Module, AnswerError>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Worker.Module JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut name = None;
        let mut member = None;
        let mut named_exports = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let next = match key.as_str() {
                "name" => {
                    name = Some(map.next_value::<String>()?);
                    continue;
                }
                "namedExports" => {
                    named_exports = map.next_value::<Vec<String>>()?;
                    continue;
                }
                "esModule" => ModuleKind::EsModule(map.next_value()?),
                "commonJsModule" => {
                    ModuleKind::CommonJs { source: map.next_value()?, named_exports: Vec::new() }
                }
                "text" => ModuleKind::Text(map.next_value()?),
                "data" => ModuleKind::Data(map.next_value()?),
                "wasm" => ModuleKind::Wasm(map.next_value()?),
                "json" => ModuleKind::Json(map.next_value()?),
                "pythonModule" | "obsolete" | "obsoletePythonRequirement" => {
                    map.next_value::<String>()?;
                    member = Some(Member::Unsupported(unsupported_key(&key)));
                    continue;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            member = Some(Member::Supported(next));
        }
        let kind = match member {
            None => ModuleKind::EsModule(String::new()),
            Some(Member::Unsupported(key)) => return Ok(Err(AnswerError::Unsupported(key))),
            Some(Member::Supported(ModuleKind::CommonJs { source, .. })) => {
                ModuleKind::CommonJs { source, named_exports }
            }
            Some(Member::Supported(kind)) => kind,
        };
        Ok(Ok(Module { name, kind }))
    }
}

fn unsupported_key(key: &str) -> &'static str {
    match key {
        "pythonModule" => "pythonModule",
        "obsolete" => "obsolete",
        _ => "obsoletePythonRequirement",
    }
}
