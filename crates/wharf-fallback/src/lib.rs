//! workerd's module fallback service, both sides: the protocol, a client that never exhausts
//! ports, and a reference server that resolves like Node.
//!
//! # Brief overview
//!
//! * [`protocol`] holds the two wire versions as typed values with no I/O: a [`Request`] (V1's
//!   `GET` or V2's `POST`) and an [`Answer`] (a [`Module`], a 301 redirect, or not-found).
//! * [`client::Client`] asks a fallback server over one shared, bounded keep-alive pool. Every
//!   request has its own reply; every body is drained, so connections go back to the pool; an
//!   idle socket the server closed is found before reuse, or the request is retried once when it
//!   cannot have been processed. [`client::BlockingClient`] offers the same to threads with no
//!   runtime, doing its socket I/O on the calling thread.
//! * [`server::Server`] is the reference server: it resolves specifiers under a directory with
//!   Node's rules, answers 301 aliases, picks the module type from the file, serves both versions
//!   and caches what it resolved until a file it looked at changes.
//!
//! ```
//! use wharf_fallback::{Answer, Request, ResolveMethod, V1Request};
//!
//! let request = Request::V1(V1Request::new("/lib/dep.js", "/main.js", "./lib/dep.js", ResolveMethod::Import));
//! let http = request.to_http()?;
//! assert_eq!(http.uri(), "/?specifier=%2Flib%2Fdep.js&referrer=%2Fmain.js&rawSpecifier=.%2Flib%2Fdep.js");
//!
//! // A server answers `{"esModule": …}` without a name; the client fills in the specifier.
//! let answer = Answer::from_http(200, None, br#"{"esModule":"export default 1"}"#, request.effective_specifier())?;
//! let Answer::Module(module) = answer else { unreachable!() };
//! assert_eq!(module.name.as_deref(), Some("lib/dep.js"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod protocol;
pub mod server;

pub use protocol::{
    Answer, AnswerError, Attribute, Module, ModuleKind, NotFound, Request, RequestError,
    ResolveMethod, V1Request, V2Kind, V2Request,
};
