//! `/v1/containers/{id}/egress`: mappings, `why`, and the egress log.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use wharf_engine::egress::Target;
use wharf_policy::{HostPort, Mapping, Protocol};

use super::system::event_body;
use crate::dto::{EgressBody, EgressList, EventBody, WhyBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Id, id};
use crate::{ApiError, AppState};

pub(crate) async fn set(
    State(s): State<AppState>,
    Id(id): Id,
    ApiJson(body): ApiJson<EgressBody>,
) -> Result<StatusCode, ApiError> {
    let mapping = mapping(&body)?;
    s.engine.set_egress(&id, mapping).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn list(
    State(s): State<AppState>,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<EgressList>, ApiError> {
    let (mappings, internet) = s.engine.egress(&id(&raw)?);
    let mut table = wharf_policy::Table::new();
    for m in &mappings {
        table.upsert(m.clone());
    }
    Ok(Json(EgressList {
        internet,
        dns_allow_list: table.dns_allow_list(),
        mappings: mappings
            .iter()
            .map(|m| EgressBody {
                protocol: m.protocol.as_str().to_owned(),
                host_port: HostPort { dest: m.dest.clone(), port: m.port }.to_string(),
                target: m.target.to_string(),
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct WhyQuery {
    to: String,
    #[serde(default)]
    protocol: Option<String>,
}

pub(crate) async fn why(
    State(s): State<AppState>,
    ApiPath(raw): ApiPath<String>,
    ApiQuery(q): ApiQuery<WhyQuery>,
) -> Result<Json<WhyBody>, ApiError> {
    let id = id(&raw)?;
    let (host, port) = split_host_port(&q.to)?;
    let protocol = match q.protocol.as_deref() {
        Some(p) => p.parse::<Protocol>().map_err(|_| bad_protocol(p))?,
        None if port == 443 => Protocol::Https,
        None if port == 80 => Protocol::Http,
        None => Protocol::Tcp,
    };
    let port = if port == 0 { protocol.default_port().max(1) } else { port };
    let why = s.engine.why(&id, host, port, protocol);
    Ok(Json(WhyBody {
        decision: why.decision.to_owned(),
        rule: why.rule,
        target: why.target,
        explanation: why.explanation,
    }))
}

pub(crate) async fn log(
    State(s): State<AppState>,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<Vec<EventBody>>, ApiError> {
    let events = s.engine.egress_log(&id(&raw)?);
    Ok(Json(events.iter().map(event_body).collect()))
}

/// Validates a mapping body.
pub(crate) fn mapping(body: &EgressBody) -> Result<Mapping<Target>, ApiError> {
    let protocol: Protocol = body.protocol.parse().map_err(|_| bad_protocol(&body.protocol))?;
    let host_port = HostPort::parse(&body.host_port, protocol)
        .map_err(|e| ApiError::bad_request("invalid_host_port", e.to_string()))?;
    let target = Target::parse(protocol, &body.target)
        .map_err(|e| ApiError::bad_request("invalid_target", e.to_string()))?;
    Ok(Mapping { protocol, dest: host_port.dest, port: host_port.port, target })
}

fn bad_protocol(raw: &str) -> ApiError {
    ApiError::bad_request(
        "invalid_protocol",
        format!("protocol must be http, https or tcp, got {raw:?}"),
    )
}

/// `host`, `host:port`, `[v6]:port` or a bare IPv6 → (host, port or 0).
fn split_host_port(raw: &str) -> Result<(&str, u16), ApiError> {
    let bad = || {
        ApiError::bad_request("invalid_host_port", format!("`to` must be host[:port], got {raw:?}"))
    };
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(bad());
    }
    if let Some(rest) = raw.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None if after.is_empty() => 0,
            None => return Err(bad()),
        };
        return Ok((host, port));
    }
    match raw.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Ok((host, port.parse().map_err(|_| bad())?)),
        _ => Ok((raw, 0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ports() {
        assert_eq!(split_host_port("example.com").unwrap(), ("example.com", 0));
        assert_eq!(split_host_port("example.com:8080").unwrap(), ("example.com", 8080));
        assert_eq!(split_host_port("[::1]:443").unwrap(), ("::1", 443));
        assert_eq!(split_host_port("fe80::1").unwrap(), ("fe80::1", 0));
        assert!(split_host_port("x:y").is_err());
        assert!(split_host_port("").is_err());
    }

    #[test]
    fn mapping_bodies() {
        let ok = |p: &str, hp: &str, t: &str| {
            mapping(&EgressBody {
                protocol: p.to_owned(),
                host_port: hp.to_owned(),
                target: t.to_owned(),
            })
        };
        assert!(ok("http", "example.com", "http://127.0.0.1:9000").is_ok());
        assert_eq!(ok("ftp", "x", "y").unwrap_err().code(), "invalid_protocol");
        assert_eq!(
            ok("tcp", "example.com", "127.0.0.1:1").unwrap_err().code(),
            "invalid_host_port"
        );
        assert_eq!(
            ok("http", "[::1", "http://127.0.0.1:1").unwrap_err().code(),
            "invalid_host_port"
        );
        assert_eq!(ok("http", "x.com", "127.0.0.1:1").unwrap_err().code(), "invalid_target");
    }
}
