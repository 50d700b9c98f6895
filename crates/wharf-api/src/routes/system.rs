//! Health, events (SSE), metrics, and the JSON 404/405 fallbacks.

use std::convert::Infallible;
use std::time::UNIX_EPOCH;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use wharf_engine::events::{Event, EventKind};

use crate::dto::{DockerBody, EventBody, HealthBody};
use crate::{ApiError, AppState};

pub(crate) async fn health(State(s): State<AppState>) -> Response {
    let h = s.engine.health().await;
    let docker = match h.docker {
        Ok(v) => {
            DockerBody { version: Some(v.version), api_version: Some(v.api_version), error: None }
        }
        // Unhealthy: a 503 in the error shape, as every 5xx is.
        Err(e) => {
            let message = format!(
                "the Docker daemon does not answer: {e}; check that it runs and that --docker-host points at it"
            );
            return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "docker_unavailable", message)
                .into_response();
        }
    };
    let body = HealthBody {
        version: h.version.to_owned(),
        docker,
        sidecar_image: h.sidecar_image,
        interception: h.interception.to_owned(),
        engine: h.engine,
        egress_listener: h.egress_listener.to_string(),
    };
    Json(body).into_response()
}

pub(crate) async fn metrics(State(s): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.engine.metrics()).into_response()
}

pub(crate) async fn events(
    State(s): State<AppState>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = s.engine.subscribe();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let body = match rx.recv().await {
            Ok(event) => event_body(&event),
            Err(RecvError::Lagged(n)) => lagged(n),
            Err(RecvError::Closed) => return None,
        };
        let sse = SseEvent::default().event(body.kind.clone()).json_data(&body).unwrap_or_default();
        Some((Ok(sse), rx))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

pub(crate) async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no such endpoint {}: see http-api.md for the v1 paths", uri.path()),
    )
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method",
    )
}

/// The JSON form of an engine event.
pub(crate) fn event_body(event: &Event) -> EventBody {
    let (kind, details) = kind_and_details(&event.kind);
    EventBody {
        seq: event.seq,
        time_ms: event.time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
        container: event.container.as_ref().map(ToString::to_string),
        kind: kind.to_owned(),
        details: details.as_object().cloned().unwrap_or_default().into_iter().collect(),
    }
}

fn kind_and_details(kind: &EventKind) -> (&'static str, Value) {
    match kind {
        EventKind::Starting => ("starting", json!({})),
        EventKind::Started { image, duration, sidecar, sidecar_duration } => (
            "started",
            json!({
                "image": image, "durationMs": duration.as_secs_f64() * 1000.0,
                "sidecar": sidecar.as_str(), "sidecarWarm": sidecar.is_warm(),
                "sidecarMs": sidecar_duration.as_secs_f64() * 1000.0,
            }),
        ),
        EventKind::StartFailed { message } => ("start_failed", json!({"message": message})),
        EventKind::Exited { exit } => (
            "exited",
            json!({"exitCode": exit.code, "reason": exit.reason.as_str(), "destroyed": exit.destroyed()}),
        ),
        EventKind::Signalled { signal } => ("signalled", json!({"signal": signal})),
        EventKind::LabelsSet => ("labels_set", json!({})),
        EventKind::Adopted => ("adopted", json!({})),
        EventKind::Repaired { action } => ("repaired", json!({"action": action})),
        EventKind::ImageBuilt { reference } => ("image_built", json!({"image": reference})),
        EventKind::Skipped { verb } => ("skipped", json!({"verb": verb})),
        EventKind::Egress(r) => (
            "egress",
            json!({
                "destination": r.dst.to_string(), "sni": r.sni, "host": r.hostname,
                "protocol": r.protocol, "decision": r.decision.as_str(), "rule": r.rule,
                "target": r.target, "reason": r.reason, "bytesUp": r.bytes_up,
                "bytesDown": r.bytes_down, "durationMs": r.duration.as_secs_f64() * 1000.0,
            }),
        ),
        EventKind::Dns(d) => (
            "dns",
            json!({
                "name": d.name, "qtype": d.qtype, "decision": d.decision, "addresses": d.addresses,
                "rule": d.rule, "durationMs": d.duration_ms,
            }),
        ),
        _ => ("other", json!({})),
    }
}

fn lagged(missed: u64) -> EventBody {
    EventBody {
        seq: 0,
        time_ms: 0,
        container: None,
        kind: "lagged".to_owned(),
        details: [("missed".to_owned(), json!(missed))].into_iter().collect(),
    }
}
