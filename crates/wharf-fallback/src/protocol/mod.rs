//! The module fallback protocol in both versions, as typed values: no I/O, no clock, no runtime.
//!
//! * [`Request`] is one question: [`V1Request`] (`GET /?specifier=&referrer=&rawSpecifier=` with
//!   `x-resolve-method`, spec §1.2) or [`V2Request`] (`POST /` with a JSON body, spec §1.3).
//!   [`Request::to_http`] and [`Request::from_http`] are the two directions on the wire.
//! * [`Answer`] is one reply (spec §1.4): a [`Module`], a 301 redirect, or not-found.
//!   [`Answer::to_http`] encodes what a server sends; [`Answer::from_http`] classifies what a
//!   client receives, with workerd's rules (only 301 redirects, empty 200 is not-found, the name
//!   check, the last union key wins, unknown keys are ignored).
//! * [`redirect`] turns a `Location` into the next request the way the runtime does: relative to
//!   the requested path's directory in V1, to the bundle base in V2.
//! * [`form`] is the `application/x-www-form-urlencoded` codec of the V1 query.
//!
//! **Invariant:** nothing in this module reads a socket, a file or a clock, so every codec can be
//! property-tested on arbitrary input (`protocol/tests.rs`).

mod answer;
pub mod form;
pub mod redirect;
mod request;

pub use answer::{Answer, AnswerError, Module, ModuleKind, NotFound};
pub(crate) use request::is_builtin;
pub use request::{
    Attribute, RESOLVE_METHOD_HEADER, Request, RequestError, ResolveMethod, V1Request, V2Kind,
    V2Request,
};

/// The `Host` header both versions send, whatever the configured address (spec §0).
pub const HOST: &str = "localhost";

#[cfg(test)]
mod tests;
