//! `/write-file` and `/read-file`: the tests' window on the container's filesystem.

use std::path::Path;

use http::{Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::query;
use crate::routes::{Body, text};

const MISSING_PATH: &str = r#"Missing "path" query param"#;

/// Writes the request body to `?path=`, creating parent directories. 200 `ok`, or 500.
pub async fn write(query: Option<&str>, body: Incoming) -> Response<Body> {
    let Some(path) = path_param(query) else {
        crate::routes::drain(body).await;
        return text(StatusCode::BAD_REQUEST, MISSING_PATH);
    };
    let contents = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => return text(StatusCode::INTERNAL_SERVER_ERROR, format!("reading body: {err}")),
    };
    match write_file(Path::new(&path), &contents).await {
        Ok(()) => text(StatusCode::OK, "ok"),
        Err(message) => text(StatusCode::INTERNAL_SERVER_ERROR, message),
    }
}

/// Answers the contents of `?path=`, or 404 with the error.
pub async fn read(query: Option<&str>) -> Response<Body> {
    let Some(path) = path_param(query) else {
        return text(StatusCode::BAD_REQUEST, MISSING_PATH);
    };
    match tokio::fs::read(&path).await {
        Ok(contents) => text(StatusCode::OK, contents),
        Err(err) => text(StatusCode::NOT_FOUND, format!("open {path}: {err}")),
    }
}

/// The `path` parameter; an empty one counts as missing.
fn path_param(query: Option<&str>) -> Option<String> {
    query::param(query, "path").filter(|p| !p.is_empty())
}

async fn write_file(path: &Path, contents: &[u8]) -> Result<(), String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|err| format!("mkdir {}: {err}", parent.display()))?;
    }
    tokio::fs::write(path, contents).await.map_err(|err| format!("open {}: {err}", path.display()))
}
