//! The HTTP routes: dispatch on the path, and the response helpers they share.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde::Serialize;
use tracing::debug;

use crate::config::{Config, WsMode};
use crate::dial::Dialer;
use crate::resolve::Resolver;
use crate::target::Scheme;
use crate::{errors, fetch, files, probes, proc_info, tcp_probe, ws};

/// The body of every response the app sends.
pub type Body = Full<Bytes>;

/// What the routes share.
#[derive(Debug)]
pub struct App {
    ws: WsMode,
    dialer: Dialer,
    env: BTreeMap<String, String>,
}

// === impl App ===

impl App {
    /// The app for `config`, dialling out with `resolver`; `/env` reports `env`.
    pub fn new(config: Config, resolver: Resolver, env: BTreeMap<String, String>) -> App {
        App { ws: config.ws, dialer: Dialer::new(resolver, config.ca_files), env }
    }

    /// What `/ws` does.
    pub fn ws(&self) -> &WsMode {
        &self.ws
    }

    /// How the routes dial out.
    pub fn dialer(&self) -> &Dialer {
        &self.dialer
    }
}

/// Answers one request. Never fails: every error is a response.
pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    debug!(method = %parts.method, uri = %parts.uri, "request");
    let query = parts.uri.query();
    match parts.uri.path() {
        "/ws" => ws::handle(&app, parts),
        "/write-file" => files::write(query, body).await,
        path => {
            // Read what the client sent so the connection can be kept alive.
            drain(body).await;
            match path {
                "/pid-namespace" => pid_namespace().await,
                "/read-file" => files::read(query).await,
                "/env" => json(&app.env),
                "/intercept" => fetch::handle(&app.dialer, &parts.headers, Scheme::Http).await,
                "/intercept-https" => {
                    fetch::handle(&app.dialer, &parts.headers, Scheme::Https).await
                }
                "/intercept-tcp" => tcp_probe::handle(&app.dialer, &parts.headers).await,
                "/dns-query" => probes::dns_query::handle(query).await,
                "/udp" => probes::udp::handle(app.dialer.resolver(), query).await,
                "/tcp-greeting" => probes::tcp_greeting::handle(&app.dialer, query).await,
                "/connect" => probes::connect::handle(app.dialer.resolver(), query).await,
                "/resolve" => probes::resolve::handle(app.dialer.resolver(), query).await,
                "/ping" => crate::ping::handle(query).await,
                "/bytes" | "/bench" | "/bench-bulk" => {
                    crate::bench::handle(&app.dialer, path, query).await
                }
                _ => text(StatusCode::OK, "Hello World!"),
            }
        }
    }
}

/// A `text/plain` response.
pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    with_type(status, body.into(), "text/plain; charset=utf-8")
}

/// A 200 `application/json` response.
pub fn json(value: &impl Serialize) -> Response<Body> {
    json_with_status(StatusCode::OK, value)
}

/// An `application/json` response.
pub fn json_with_status(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(body) => with_type(status, body.into(), "application/json"),
        Err(err) => text(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    }
}

fn with_type(status: StatusCode, body: Bytes, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Reads and discards a request body.
pub async fn drain(mut body: Incoming) {
    while let Some(frame) = body.frame().await {
        if let Err(err) = frame {
            debug!(error = %err, "request body ended early");
            break;
        }
    }
}

async fn pid_namespace() -> Response<Body> {
    match proc_info::read().await {
        Ok(info) => json(&info),
        Err(err) => text(StatusCode::INTERNAL_SERVER_ERROR, errors::chain(&err)),
    }
}
