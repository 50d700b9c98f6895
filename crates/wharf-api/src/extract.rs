//! Request extraction with the API's error format: JSON bodies, ids, ports, and the bearer
//! token check.

use axum::body::Bytes;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use wharf_engine::params::{AppPort, ContainerId};
use wharf_wire::connect::token_matches;

use crate::{ApiError, AppState};

/// A JSON body whose rejections are [`ApiError`]s. No `Content-Type` is required.
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            let status = e.status();
            let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "body_too_large"
            } else {
                "invalid_body"
            };
            ApiError::new(status, code, e.body_text())
        })?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        let invalid = |e: serde_json::Error| {
            ApiError::bad_request("invalid_body", format!("invalid JSON body: {e}"))
        };
        // Every v1 body is an object; serde would otherwise take an array in field order.
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(invalid)?;
        if !value.is_object() {
            return Err(ApiError::bad_request("invalid_body", "the body must be a JSON object"));
        }
        serde_json::from_value(value).map(ApiJson).map_err(invalid)
    }
}

/// Path parameters whose rejections are [`ApiError`]s: a bad `{id}` is `invalid_id`, a bad
/// `{port}` is `invalid_port`.
#[derive(Debug)]
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                let key = match e.kind() {
                    ErrorKind::InvalidUtf8InPathParam { key }
                    | ErrorKind::ParseErrorAtKey { key, .. }
                    | ErrorKind::DeserializeError { key, .. } => Some(key.as_str()),
                    _ => None,
                };
                let (code, what) = match key {
                    Some("id") => {
                        ("invalid_id", "container id must be 1 to 128 characters of [A-Za-z0-9_.-]")
                    }
                    Some("port") => ("invalid_port", "port must be 1 to 65535"),
                    _ => ("invalid_path", "invalid path"),
                };
                Err(ApiError::bad_request(code, format!("{what}: {}", e.body_text())))
            }
            Err(other) => Err(ApiError::new(other.status(), "invalid_path", other.body_text())),
        }
    }
}

/// A validated `{id}` path segment; checked before any body, so a bad id is always
/// `invalid_id`.
#[derive(Debug)]
pub(crate) struct Id(pub(crate) ContainerId);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let ApiPath(raw) = ApiPath::<String>::from_request_parts(parts, state).await?;
        Ok(Id(id(&raw)?))
    }
}

/// A query string whose rejections are [`ApiError`]s.
#[derive(Debug)]
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
    }
}

/// Parses the `{id}` path segment.
pub(crate) fn id(raw: &str) -> Result<ContainerId, ApiError> {
    Ok(ContainerId::new(raw)?)
}

/// Parses the `{port}` path segment.
pub(crate) fn port(raw: &str) -> Result<AppPort, ApiError> {
    let n: i64 = raw.parse().map_err(|_| {
        ApiError::bad_request("invalid_port", format!("port must be 1 to 65535, got {raw:?}"))
    })?;
    Ok(AppPort::new(n)?)
}

/// Refuses requests without the bearer token, when one is configured.
pub(crate) async fn authorize(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(token) = &state.token {
        let given = req
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        if !token_matches(token, given) {
            let msg = "missing or wrong bearer token: send Authorization: Bearer <token> (the daemon's --token)";
            return ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", msg).into_response();
        }
    }
    next.run(req).await
}
