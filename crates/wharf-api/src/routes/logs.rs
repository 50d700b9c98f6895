//! `GET /v1/containers/{id}/logs?follow=bool`: the app's stdout and stderr, streamed as text.

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use wharf_engine::docker::Output;

use crate::extract::{ApiPath, ApiQuery, id};
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize)]
pub(crate) struct LogsQuery {
    #[serde(default)]
    follow: bool,
}

pub(crate) async fn logs(
    State(s): State<AppState>,
    ApiPath(raw): ApiPath<String>,
    ApiQuery(q): ApiQuery<LogsQuery>,
) -> Result<Response, ApiError> {
    let stream = s.engine.logs(&id(&raw)?, q.follow)?;
    let bytes = stream.map(|chunk| match chunk {
        Ok(Output::Stdout(b) | Output::Stderr(b)) => Ok(b),
        Err(e) => Err(std::io::Error::other(e.to_string())),
    });
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], Body::from_stream(bytes))
        .into_response())
}
