//! `{ANY} /v1/containers/{id}/http/{port}/{path…}`: an HTTP request proxied to the app.
//!
//! Method, headers (minus hop-by-hop ones), query and body go to the app's `port` at
//! `/{path…}` over a fresh tunnel; the answer streams back. A WebSocket (or any) upgrade the
//! app accepts is spliced through.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, Uri, header};
use axum::response::Response;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::ports::take_upgrade;
use wharf_engine::params::{AppPort, ContainerId};

use crate::extract::{ApiPath, id, port};
use crate::{ApiError, AppState};

pub(crate) async fn root(
    State(s): State<AppState>,
    ApiPath((raw_id, raw_port)): ApiPath<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    forward(s, &raw_id, &raw_port, req).await
}

pub(crate) async fn path(
    State(s): State<AppState>,
    ApiPath((raw_id, raw_port, _path)): ApiPath<(String, String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    forward(s, &raw_id, &raw_port, req).await
}

async fn forward(
    s: AppState,
    raw_id: &str,
    raw_port: &str,
    mut req: Request,
) -> Result<Response, ApiError> {
    let (id, port) = (id(raw_id)?, port(raw_port)?);
    let target = app_uri(req.uri())?;
    *req.uri_mut() = target;
    if req.headers().contains_key(header::UPGRADE) {
        return upgrade(s, &id, port, req).await;
    }
    strip_hop_by_hop(req.headers_mut(), false);
    let active = s.engine.port_guard(&id).await?;
    let res = s.tunnels.send(&s.engine, &id, port, req, active).await?;
    Ok(res.map(Body::new))
}

/// An upgrade consumes its connection: a fresh, unpooled tunnel, spliced once switched.
async fn upgrade(
    s: AppState,
    id: &ContainerId,
    port: AppPort,
    mut req: Request,
) -> Result<Response, ApiError> {
    let client_upgrade = take_upgrade(&mut req)?;
    let (tunnel, guard) = s.engine.connect_port(id, port).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(tunnel)).await.map_err(app_gone)?;
    tokio::spawn(async move {
        // The guard keeps the container "active" while the exchange lasts.
        let _active = guard;
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(target: "wharf::proxy", error = %e, "app connection ended");
        }
    });
    strip_hop_by_hop(req.headers_mut(), true);
    let mut res = sender.send_request(req).await.map_err(app_gone)?;
    if res.status() == StatusCode::SWITCHING_PROTOCOLS {
        splice(client_upgrade, hyper::upgrade::on(&mut res));
    }
    Ok(res.map(Body::new))
}

/// `/{path…}?{query}` as the app should see it, from the raw (still percent-encoded) URI:
/// everything after the `{id}/http/{port}` segments, whatever their encoding.
fn app_uri(uri: &Uri) -> Result<Uri, ApiError> {
    let full = uri.path();
    // Inside the nested router the URI starts at the id; outside it starts at /v1/containers.
    let inner = full.strip_prefix("/v1/containers").unwrap_or(full);
    let rest = inner.splitn(5, '/').nth(4).map_or_else(|| "/".to_owned(), |r| format!("/{r}"));
    let with_query = match uri.query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest,
    };
    with_query.parse().map_err(|_| {
        ApiError::bad_request("invalid_path", format!("cannot proxy path {with_query:?}"))
    })
}

fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|t| t.trim().to_ascii_lowercase()))
        .filter(|t| !(keep_upgrade && t == "upgrade"))
        .filter_map(|t| HeaderName::try_from(t).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
    ] {
        headers.remove(name);
    }
    if !keep_upgrade {
        headers.remove(header::CONNECTION);
        headers.remove(header::UPGRADE);
    }
}

fn splice(client: OnUpgrade, app: OnUpgrade) {
    tokio::spawn(async move {
        let (client, app) = match tokio::try_join!(client, app) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(target: "wharf::proxy", error = %e, "upgrade failed");
                return;
            }
        };
        let (mut client, mut app) = (TokioIo::new(client), TokioIo::new(app));
        if let Err(e) = wharf_engine::io_util::relay(&mut client, &mut app).await {
            tracing::debug!(target: "wharf::proxy", error = %e, "upgraded stream ended");
        }
    });
}

pub(super) fn app_gone(e: hyper::Error) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "app_error",
        format!("the app's HTTP answer failed: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_uri_keeps_encoding_and_query() {
        let uri: Uri = "/web-1/http/8080/a%20b/c?x=1&y=%2F".parse().unwrap();
        assert_eq!(app_uri(&uri).unwrap(), "/a%20b/c?x=1&y=%2F");
        let root: Uri = "/web-1/http/8080".parse().unwrap();
        assert_eq!(app_uri(&root).unwrap(), "/");
        let slash: Uri = "/web-1/http/8080/?q".parse().unwrap();
        assert_eq!(app_uri(&slash).unwrap(), "/?q");
        let full: Uri = "/v1/containers/web-1/http/8080/x".parse().unwrap();
        assert_eq!(app_uri(&full).unwrap(), "/x");
        let encoded: Uri = "/c%31/http/%38080/x/y?q=1".parse().unwrap();
        assert_eq!(app_uri(&encoded).unwrap(), "/x/y?q=1");
    }

    #[test]
    fn hop_by_hop_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, "keep-alive, x-private".parse().unwrap());
        h.insert("x-private", "1".parse().unwrap());
        h.insert(header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        h.insert(header::HOST, "foo".parse().unwrap());
        strip_hop_by_hop(&mut h, false);
        assert!(h.get("x-private").is_none() && h.get(header::CONNECTION).is_none());
        assert!(h.get(header::TRANSFER_ENCODING).is_none());
        assert_eq!(h.get(header::HOST).unwrap(), "foo");
    }
}
