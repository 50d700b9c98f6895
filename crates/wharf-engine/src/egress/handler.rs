//! HTTP inside an intercepted tunnel: each request goes to the mapping's handler on the host.
//!
//! The mapping is looked up again for every request, so a replaced mapping applies to tunnels
//! already open (spec §3.9). The handler receives the request with its method, path, query,
//! headers (`Host` unchanged) and body, plus `Forwarded` and `X-Wharf-Container`; its answer,
//! a WebSocket upgrade included, goes back to the app.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::upgrade::OnUpgrade;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use wharf_policy::{Connection, Protocol};

use super::{Route, Shared, Target, Verdict};
use crate::io_util::AsyncIo;

type Body = BoxBody<Bytes, hyper::Error>;

/// What the tunnel was opened for.
#[derive(Debug, Clone)]
pub(super) struct Tunnel {
    pub(super) route: Route,
    pub(super) dst: SocketAddr,
    pub(super) sni: Option<String>,
    pub(super) tls: bool,
    /// The protocol of the mapping that opened it.
    pub(super) protocol: Protocol,
}

/// Serves HTTP/1.1 on `io` until the app closes it.
pub(super) async fn serve(
    shared: &Shared,
    tunnel: Tunnel,
    io: impl AsyncIo,
) -> Result<(), hyper::Error> {
    let service = service_fn(|req| forward(shared, &tunnel, req));
    http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades()
        .await
}

async fn forward(
    shared: &Shared,
    tunnel: &Tunnel,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let host = request_host(&req, tunnel);
    let Some(target) = current_target(tunnel, &host) else {
        return Ok(text(
            StatusCode::BAD_GATEWAY,
            "no egress mapping handles this request any more",
        ));
    };
    let Target::Http { authority, prefix } = &target else {
        return Ok(text(
            StatusCode::BAD_GATEWAY,
            "the egress mapping for this request is not an HTTP handler",
        ));
    };
    let Ok(uri) = handler_uri(authority, prefix, req.uri()) else {
        return Ok(text(StatusCode::BAD_REQUEST, "cannot build the handler URL for this request"));
    };
    let upgrade = req.headers().contains_key(header::UPGRADE);
    let app_upgrade = if upgrade { req.extensions_mut().remove::<OnUpgrade>() } else { None };
    *req.uri_mut() = uri;
    let proto = if tunnel.tls { "https" } else { "http" };
    prepare_headers(req.headers_mut(), proto, &host, tunnel.route.container.as_str(), upgrade);
    let mut res = match shared.client.request(req).await {
        Ok(res) => res,
        Err(e) => {
            return Ok(text(
                StatusCode::BAD_GATEWAY,
                &format!("the egress handler at {authority} failed: {e}"),
            ));
        }
    };
    if res.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(app) = app_upgrade
    {
        splice(app, hyper::upgrade::on(&mut res));
    }
    Ok(res.map(BodyExt::boxed))
}

/// The host the app asked for: its `Host` header, else the SNI, else the destination.
fn request_host(req: &Request<Incoming>, tunnel: &Tunnel) -> String {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| tunnel.sni.clone())
        .unwrap_or_else(|| tunnel.dst.to_string())
}

/// Looks the mapping up again with this request's name.
fn current_target(tunnel: &Tunnel, host: &str) -> Option<Target> {
    let name = strip_port(host);
    let conn = Connection {
        dst: tunnel.dst,
        sni: if tunnel.tls { tunnel.sni.as_deref() } else { None },
        hostname: if tunnel.tls { None } else { Some(name) },
        tls: tunnel.tls,
    };
    let policy = tunnel.route.policy.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    match policy.verdict(&conn) {
        Verdict::Handler { target, protocol, .. } if protocol == tunnel.protocol => Some(target),
        _ => None,
    }
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) && !name.contains(':') => {
            name
        }
        _ => host,
    }
}

/// `http://<authority><prefix><path and query of the app's request>`.
fn handler_uri(authority: &str, prefix: &str, original: &Uri) -> Result<Uri, hyper::http::Error> {
    let path = original.path_and_query().map_or("/", |p| p.as_str());
    let path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
    Uri::builder()
        .scheme("http")
        .authority(authority)
        .path_and_query(format!("{prefix}{path}"))
        .build()
}

fn prepare_headers(
    headers: &mut HeaderMap,
    proto: &str,
    host: &str,
    container: &str,
    upgrade: bool,
) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|t| t.trim().to_ascii_lowercase()))
        .filter(|t| !(upgrade && t == "upgrade"))
        .filter_map(|t| HeaderName::try_from(t).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in ["keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding"] {
        headers.remove(name);
    }
    if !upgrade {
        headers.remove(header::CONNECTION);
        headers.remove(header::UPGRADE);
    }
    let forwarded = format!("proto={proto};host={}", quote_if_needed(host));
    if let Ok(v) = HeaderValue::from_str(&forwarded) {
        headers.insert(header::FORWARDED, v);
    }
    if let Ok(v) = HeaderValue::from_str(container) {
        headers.insert("x-wharf-container", v);
    }
}

/// RFC 7239: a host with a port or an IPv6 literal is a quoted string.
fn quote_if_needed(host: &str) -> String {
    if host.contains([':', '[']) { format!("\"{host}\"") } else { host.to_owned() }
}

fn splice(app: OnUpgrade, handler: OnUpgrade) {
    tokio::spawn(async move {
        let (app, handler) = match tokio::try_join!(app, handler) {
            Ok(pair) => pair,
            Err(e) => {
                return tracing::debug!(target: "wharf::egress", error = %e, "handler upgrade failed");
            }
        };
        let (mut app, mut handler) = (TokioIo::new(app), TokioIo::new(handler));
        if let Err(e) = crate::io_util::relay(&mut app, &mut handler).await {
            tracing::debug!(target: "wharf::egress", error = %e, "upgraded handler stream ended");
        }
    });
}

fn text(status: StatusCode, message: &str) -> Response<Body> {
    let body = Full::new(Bytes::from(message.to_owned())).map_err(|never| match never {}).boxed();
    let mut res = Response::new(body);
    *res.status_mut() = status;
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_urls_keep_path_and_query() {
        let uri: Uri = "/a/b?x=1".parse().unwrap();
        assert_eq!(
            handler_uri("127.0.0.1:9000", "", &uri).unwrap(),
            "http://127.0.0.1:9000/a/b?x=1"
        );
        assert_eq!(
            handler_uri("127.0.0.1:9000", "/hooks", &uri).unwrap(),
            "http://127.0.0.1:9000/hooks/a/b?x=1"
        );
        let absolute: Uri = "http://example.com/z".parse().unwrap();
        assert_eq!(handler_uri("h:1", "", &absolute).unwrap(), "http://h:1/z");
    }

    #[test]
    fn ports_are_stripped_for_matching() {
        assert_eq!(strip_port("example.com:8080"), "example.com");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_port("[::1]:80"), "::1");
        assert_eq!(strip_port("11.0.0.1:9999"), "11.0.0.1");
    }

    #[test]
    fn forwarded_headers() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, "keep-alive".parse().unwrap());
        h.insert(header::HOST, "example.com".parse().unwrap());
        prepare_headers(&mut h, "https", "example.com", "c1", false);
        assert_eq!(h[header::FORWARDED], "proto=https;host=example.com");
        assert_eq!(h["x-wharf-container"], "c1");
        assert_eq!(h[header::HOST], "example.com");
        assert!(h.get(header::CONNECTION).is_none());
        let mut h = HeaderMap::new();
        prepare_headers(&mut h, "http", "11.0.0.1:9999", "c1", false);
        assert_eq!(h[header::FORWARDED], "proto=http;host=\"11.0.0.1:9999\"");
    }
}
