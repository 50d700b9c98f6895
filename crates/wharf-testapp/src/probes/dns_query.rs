//! `GET /dns-query?name=N&server=IP[:PORT]&type=A|AAAA&transport=udp|tcp`: one DNS query sent
//! straight to `server` (port 53 by default), never through `/etc/resolv.conf`.
//!
//! Answers 200 `{"rcode": n, "answers": ["ip", …]}` for any response, NXDOMAIN included (the
//! answers are the A/AAAA addresses, in order), or 502 `DNS error: <message>` when there is no
//! usable response within [`DNS_QUERY_TIMEOUT`]. `type` defaults to `A` and `transport` to `udp`.

use std::net::SocketAddr;
use std::time::Duration;

use http::{Response, StatusCode};
use serde::Serialize;
use tracing::info;
use wharf_wire::dns::{FLAG_TC, Response as DnsResponse, rtype};

use super::{BadRequest, required};
use crate::dns_client::{self, QueryError};
use crate::errors;
use crate::query;
use crate::routes::{Body, json, text};
use crate::target::{Authority, Host};

/// How long the query may take, connecting (TCP) included.
pub const DNS_QUERY_TIMEOUT: Duration = Duration::from_secs(3);

/// The body of a 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsQueryAnswer {
    /// The response code.
    pub rcode: u8,
    /// The addresses in the answer section.
    pub answers: Vec<String>,
}

/// The transports `/dns-query` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsTransport {
    /// One datagram each way.
    Udp,
    /// A connection with length-prefixed messages.
    Tcp,
}

#[derive(Debug)]
struct Params {
    name: String,
    server: SocketAddr,
    qtype: u16,
    transport: DnsTransport,
}

/// Why there is no answer to report.
#[derive(Debug, thiserror::Error)]
enum DnsQueryError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("no answer from {server} within {DNS_QUERY_TIMEOUT:?}")]
    Timeout { server: SocketAddr },
    #[error("answer from {server} is truncated (TC); ask over tcp")]
    Truncated { server: SocketAddr },
}

/// Sends the query and reports the response.
pub async fn handle(query: Option<&str>) -> Response<Body> {
    let params = match Params::parse(query) {
        Ok(params) => params,
        Err(bad) => return bad.into_response(),
    };
    match ask(&params).await {
        Ok(response) => {
            let answers: Vec<String> = response.ips().map(|ip| ip.to_string()).collect();
            info!(name = %params.name, server = %params.server, rcode = response.rcode, ?answers, "dns query probe answered");
            json(&DnsQueryAnswer { rcode: response.rcode, answers })
        }
        Err(err) => {
            let message = errors::chain(&err);
            info!(name = %params.name, server = %params.server, error = %message, "dns query probe failed");
            text(StatusCode::BAD_GATEWAY, format!("DNS error: {message}"))
        }
    }
}

async fn ask(params: &Params) -> Result<DnsResponse, DnsQueryError> {
    let Params { name, server, qtype, transport } = params;
    let exchange = async {
        match transport {
            DnsTransport::Udp => dns_client::query_udp(*server, name, *qtype).await,
            DnsTransport::Tcp => dns_client::query_tcp(*server, name, *qtype).await,
        }
    };
    let response = tokio::time::timeout(DNS_QUERY_TIMEOUT, exchange)
        .await
        .map_err(|_elapsed| DnsQueryError::Timeout { server: *server })??;
    if response.flags & FLAG_TC != 0 {
        return Err(DnsQueryError::Truncated { server: *server });
    }
    Ok(response)
}

// === impl Params ===

impl Params {
    fn parse(query: Option<&str>) -> Result<Params, BadRequest> {
        let raw_name = required(query, "name")?;
        let name = raw_name.strip_suffix('.').unwrap_or(&raw_name).to_ascii_lowercase();
        let raw_server = required(query, "server")?;
        let bad_server = || BadRequest(format!("server must be IP[:PORT], got {raw_server:?}"));
        let authority = Authority::parse_with_default(&raw_server, 53).map_err(|_| bad_server())?;
        let Host::Ip(ip) = authority.host() else {
            return Err(bad_server());
        };
        let server = SocketAddr::new(*ip, authority.port());
        let qtype = match query::param(query, "type").as_deref() {
            None | Some("") => rtype::A,
            Some(t) if t.eq_ignore_ascii_case("a") => rtype::A,
            Some(t) if t.eq_ignore_ascii_case("aaaa") => rtype::AAAA,
            Some(other) => {
                return Err(BadRequest(format!("type must be A or AAAA, got {other:?}")));
            }
        };
        let transport = match query::param(query, "transport").as_deref() {
            None | Some("" | "udp") => DnsTransport::Udp,
            Some("tcp") => DnsTransport::Tcp,
            Some(other) => {
                return Err(BadRequest(format!("transport must be udp or tcp, got {other:?}")));
            }
        };
        Ok(Params { name, server, qtype, transport })
    }
}
