//! `GET /resolve?name=N`: the app's normal resolution (IP literal, then the hosts file, then
//! the `resolv.conf` nameserver), as every dial does it.
//!
//! Answers 200 `{"addresses": ["ip", …]}`, or 502 `{"error": …}`: `"nxdomain"` when the
//! nameserver said the name does not exist, `"nodata"` when it exists without A or AAAA
//! records, and the error's message otherwise (a timeout, no nameserver, …).

use http::{Response, StatusCode};
use serde::Serialize;
use tracing::info;

use super::{BadRequest, required};
use crate::errors;
use crate::resolve::{ResolveError, Resolver};
use crate::routes::{Body, json, json_with_status};
use crate::target::Host;

/// The body of a 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolved {
    /// The addresses, in the order a dial tries them.
    pub addresses: Vec<String>,
}

/// The body of a 502.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotResolved {
    /// `nxdomain`, `nodata`, or a message.
    pub error: String,
}

/// Resolves `name` and reports the addresses.
pub async fn handle(resolver: &Resolver, query: Option<&str>) -> Response<Body> {
    let name = match required(query, "name") {
        Ok(name) => name,
        Err(bad) => return bad.into_response(),
    };
    let host: Host = match name.parse() {
        Ok(host) => host,
        Err(err) => return BadRequest(format!("name is not a host name: {err}")).into_response(),
    };
    match resolver.resolve(&host).await {
        Ok(ips) => {
            let addresses: Vec<String> = ips.iter().map(ToString::to_string).collect();
            info!(%name, ?addresses, "resolve probe answered");
            json(&Resolved { addresses })
        }
        Err(err) => {
            let error = match &err {
                ResolveError::NxDomain { .. } => "nxdomain".to_owned(),
                ResolveError::NotFound { .. } => "nodata".to_owned(),
                other => errors::chain(other),
            };
            info!(%name, %error, "resolve probe failed");
            json_with_status(StatusCode::BAD_GATEWAY, &NotResolved { error })
        }
    }
}
