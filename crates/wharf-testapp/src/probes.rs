//! The leak-probe routes: single, bare exchanges the tests ask the app to make, so they can see
//! what crosses (or does not cross) the egress sidecar.
//!
//! * [`dns_query`] (`/dns-query`): one DNS query straight to a given server, over UDP or TCP.
//! * [`udp`] (`/udp`): one datagram out, one back.
//! * [`tcp_greeting`] (`/tcp-greeting`): a server-speaks-first exchange, the client silent until
//!   greeted.
//! * [`connect`] (`/connect`): a bare TCP connect that tells refused, reset and timed out apart.
//! * [`resolve`] (`/resolve`): the app's normal resolver, with NXDOMAIN told apart.
//!
//! Every probe takes its arguments from the query string; a missing or malformed one is a 400.
//! Each probe logs its outcome at `info`: a failure is often what the test wants to see.

use http::{Response, StatusCode};

use crate::query;
use crate::routes::{Body, text};
use crate::target::Authority;

pub mod connect;
pub mod dns_query;
pub mod resolve;
pub mod tcp_greeting;
pub mod udp;

/// A missing or malformed query-string argument: a 400 with this message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BadRequest(String);

impl BadRequest {
    fn into_response(self) -> Response<Body> {
        text(StatusCode::BAD_REQUEST, self.0)
    }
}

/// The non-empty value of `key`, or `Missing "<key>" query param`.
fn required(query: Option<&str>, key: &str) -> Result<String, BadRequest> {
    query::param(query, key)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| BadRequest(format!("Missing {key:?} query param")))
}

/// The `target` argument: `HOST:PORT`, with the port required.
fn target(query: Option<&str>) -> Result<Authority, BadRequest> {
    let raw = required(query, "target")?;
    Authority::parse_host_port(&raw)
        .map_err(|err| BadRequest(format!("target must be HOST:PORT: {err}")))
}
