//! `/intercept` and `/intercept-https`: a `GET` to `http[s]://<x-host>`, as the app's `fetch()`
//! would send it, so the tests can watch it cross the egress sidecar.

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, HOST, HeaderMap, USER_AGENT};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tracing::{Instrument, debug, debug_span, warn};

use crate::dial::{DialError, Dialer};
use crate::errors;
use crate::routes::{Body, text};
use crate::target::{HttpTarget, Scheme, TargetError};

/// The header naming what to fetch: `host[:port][/path]`.
pub const X_HOST: &str = "x-host";
/// How long a whole fetch may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a fetch failed. The response says only `<x-host> fetch failed`; this goes to the log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// `x-host` is not `host[:port][/path]`.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// No connection.
    #[error(transparent)]
    Dial(#[from] DialError),
    /// The request could not be built (an invalid path or host header).
    #[error("building the request")]
    Request(#[from] http::Error),
    /// The HTTP exchange failed.
    #[error("http exchange")]
    Http(#[from] hyper::Error),
    /// The whole fetch took longer than [`FETCH_TIMEOUT`].
    #[error("timed out after {FETCH_TIMEOUT:?}")]
    Timeout,
}

/// Fetches `<scheme>://<x-host or the default>` and answers 200 with the upstream body, or 500
/// `<x-host> fetch failed`.
pub async fn handle(dialer: &Dialer, headers: &HeaderMap, scheme: Scheme) -> Response<Body> {
    let x_host = headers.get(X_HOST).and_then(|v| v.to_str().ok()).unwrap_or(default_host(scheme));
    match tokio::time::timeout(FETCH_TIMEOUT, fetch(dialer, x_host, scheme)).await {
        Ok(Ok(body)) => text(StatusCode::OK, body),
        Ok(Err(err)) => failed(x_host, scheme, &err),
        Err(_elapsed) => failed(x_host, scheme, &FetchError::Timeout),
    }
}

/// What to fetch when `x-host` is absent, as in workerd's test app.
fn default_host(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::Https | Scheme::Wss => "example.com",
        Scheme::Http | Scheme::Ws => "11.0.0.1",
    }
}

fn failed(x_host: &str, scheme: Scheme, err: &FetchError) -> Response<Body> {
    warn!(x_host, scheme = scheme.as_str(), error = %errors::chain(err), "fetch failed");
    text(StatusCode::INTERNAL_SERVER_ERROR, format!("{x_host} fetch failed"))
}

/// One `GET` on a fresh connection; returns the body whatever the status.
pub async fn fetch(dialer: &Dialer, x_host: &str, scheme: Scheme) -> Result<Bytes, FetchError> {
    let target = HttpTarget::parse(x_host, scheme)?;
    let io = dialer.connect(target.authority(), scheme).await?;
    let (mut sender, conn) = http1::handshake(TokioIo::new(io)).await?;
    let span = debug_span!("fetch_conn", dst = %target.authority());
    tokio::spawn(
        async move {
            if let Err(err) = conn.await {
                debug!(error = %err, "upstream connection ended with an error");
            }
        }
        .instrument(span),
    );
    let request = Request::get(target.path())
        .header(HOST, target.authority().host_header(scheme))
        .header(USER_AGENT, "wharf-testapp")
        .header(ACCEPT, "*/*")
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    debug!(status = %response.status(), "upstream answered");
    Ok(response.into_body().collect().await?.to_bytes())
}
