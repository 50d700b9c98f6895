//! `GET /v1/containers/{id}/ports/{port}` with `Upgrade: tcp`: a raw TCP stream to the app.
//!
//! The tunnel to the app is opened before the 101 is sent, so "nothing listens" is a proper
//! 502 `port_not_listening` rather than a stream that closes at once.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::extract::{ApiPath, id, port};
use crate::{ApiError, AppState};

pub(crate) async fn upgrade(
    State(s): State<AppState>,
    ApiPath((raw_id, raw_port)): ApiPath<(String, String)>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let (id, port) = (id(&raw_id)?, port(&raw_port)?);
    if !wants_upgrade(req.headers(), "tcp") {
        return Err(ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "upgrade_required",
            "send Connection: Upgrade and Upgrade: tcp to open a raw stream (or use /http/{port}/ for HTTP)",
        ));
    }
    let on_upgrade = take_upgrade(&mut req)?;
    let (mut tunnel, guard) = s.engine.connect_port(&id, port).await?;
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let mut client = TokioIo::new(upgraded);
                if let Err(e) = wharf_engine::io_util::relay(&mut client, &mut tunnel).await {
                    tracing::debug!(target: "wharf::ports", error = %e, "port stream ended");
                }
            }
            Err(e) => tracing::debug!(target: "wharf::ports", error = %e, "client upgrade failed"),
        }
        drop(guard);
    });
    Ok(switching("tcp"))
}

/// Whether the request asks to switch to `protocol`.
pub(crate) fn wants_upgrade(headers: &HeaderMap, protocol: &str) -> bool {
    let has = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    has(header::CONNECTION, "upgrade") && has(header::UPGRADE, protocol)
}

/// The connection's upgrade handle.
pub(crate) fn take_upgrade(req: &mut Request) -> Result<OnUpgrade, ApiError> {
    req.extensions_mut().remove::<OnUpgrade>().ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "upgrade_unavailable",
            "this connection cannot be upgraded",
        )
    })
}

fn switching(protocol: &'static str) -> Response {
    let mut res = Response::new(Body::empty());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    res.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("Upgrade"));
    res.headers_mut().insert(header::UPGRADE, header::HeaderValue::from_static(protocol));
    res
}
