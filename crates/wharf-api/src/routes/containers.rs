//! `/v1/containers`: lifecycle, labels, timeouts and exec.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};
use wharf_engine::ContainerView;

use crate::dto::{
    ContainerStatus, ContainerSummary, ExecBody, ExecResult, InactivityBody, SignalBody, StartBody,
    WaitBody,
};
use crate::extract::{ApiJson, ApiPath, id};
use crate::{ApiError, AppState, validate};

type Answer<T> = Result<T, ApiError>;

pub(crate) async fn list(State(s): State<AppState>) -> Json<Vec<ContainerSummary>> {
    let views = s.engine.list();
    Json(
        views
            .into_iter()
            .map(|v| ContainerSummary {
                running: v.snapshot.status.is_running(),
                image: v.snapshot.image.clone(),
                labels: labels_json(&v),
                id: v.id.to_string(),
            })
            .collect(),
    )
}

pub(crate) async fn status(
    State(s): State<AppState>,
    ApiPath(raw): ApiPath<String>,
) -> Answer<Json<ContainerStatus>> {
    let view = s.engine.status(&id(&raw)?);
    let snap = &view.snapshot;
    let exit = snap.status.exit();
    Ok(Json(ContainerStatus {
        id: view.id.to_string(),
        running: snap.status.is_running(),
        started: snap.status.has_started(),
        image: snap.image.clone(),
        labels: labels_json(&view),
        exit_code: exit.map(|e| e.code),
        state: snap.status.as_str().to_owned(),
        starting: snap.starting,
        exit_reason: exit.map(|e| e.reason.as_str().to_owned()),
    }))
}

pub(crate) async fn start(
    State(s): State<AppState>,
    ApiPath(raw): ApiPath<String>,
    ApiJson(body): ApiJson<StartBody>,
) -> Answer<StatusCode> {
    let id = id(&raw)?;
    let params = validate::start(body)?;
    s.engine.start(&id, params).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn wait(
    State(s): State<AppState>,
    ApiPath(raw): ApiPath<String>,
) -> Answer<Json<WaitBody>> {
    let exit = s.engine.wait(&id(&raw)?).await?;
    Ok(Json(WaitBody {
        exit_code: exit.code,
        destroyed: exit.destroyed(),
        reason: exit.reason.as_str().to_owned(),
    }))
}

pub(crate) async fn destroy(
    State(s): State<AppState>,
    ApiPath(raw): ApiPath<String>,
) -> Answer<StatusCode> {
    s.engine.destroy(&id(&raw)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn signal(
    State(s): State<AppState>,
    ApiPath(raw): ApiPath<String>,
    ApiJson(body): ApiJson<SignalBody>,
) -> Answer<StatusCode> {
    let id = id(&raw)?;
    let signal = validate::signal(&body.signal)?;
    s.engine.signal(&id, signal).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn labels(
    State(s): State<AppState>,
    ApiPath(raw): ApiPath<String>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> Answer<StatusCode> {
    let id = id(&raw)?;
    let labels = validate::labels(body)?;
    s.engine.set_labels(&id, labels).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn inactivity_timeout(
    State(s): State<AppState>,
    ApiPath(raw): ApiPath<String>,
    ApiJson(body): ApiJson<InactivityBody>,
) -> Answer<StatusCode> {
    let id = id(&raw)?;
    let after = validate::inactivity_ms(&body.ms)?;
    s.engine.set_inactivity_timeout(&id, after).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn exec(
    State(s): State<AppState>,
    ApiPath(raw): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ExecBody>,
) -> Answer<Json<ExecResult>> {
    let id = id(&raw)?;
    if headers.contains_key(axum::http::header::UPGRADE) {
        return Err(ApiError::not_implemented("streaming exec over a WebSocket"));
    }
    let params = validate::exec(body)?;
    let out = s.engine.exec(&id, params).await?;
    Ok(Json(ExecResult {
        exit_code: out.exit_code,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }))
}

pub(crate) async fn snapshot_directory(ApiPath(raw): ApiPath<String>) -> Answer<StatusCode> {
    id(&raw)?;
    Err(ApiError::not_implemented("directory snapshots"))
}

pub(crate) async fn snapshot_container(ApiPath(raw): ApiPath<String>) -> Answer<StatusCode> {
    id(&raw)?;
    Err(ApiError::not_implemented("container snapshots"))
}

fn labels_json(view: &ContainerView) -> Map<String, Value> {
    view.snapshot.labels.iter().map(|(n, v)| (n.to_owned(), Value::String(v.to_owned()))).collect()
}
