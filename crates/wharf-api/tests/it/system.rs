//! Health, list, events, metrics, fallbacks, the bearer token, and the 501 endpoints.

use http::header::AUTHORIZATION;
use http_body_util::BodyExt;
use serde_json::{Value, json};

use wharf_engine::docker::Error as DockerError;
use wharf_engine::docker::fake::Op;

use crate::support::{IMAGE, api, api_with_token, request, within};

#[tokio::test]
async fn health_reports_versions_sidecar_image_and_interception() {
    let api = api().await;
    let reply = api.get("/v1/health").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply.content_type().starts_with("application/json"));
    let body = reply.json();
    let string = |v: &Value| v.as_str().is_some_and(|s| !s.is_empty());
    assert!(string(&body["version"]), "{body}");
    assert_eq!(body["docker"], json!({"version": "20.10.24+fake", "apiVersion": "1.41"}), "{body}");
    assert!(string(&body["sidecarImage"]), "{body}");
    assert!(string(&body["interception"]), "{body}");
}

#[tokio::test]
async fn health_with_docker_down_is_a_health_body_or_a_json_error() {
    let api = api().await;
    api.docker.fail_next(Op::Version, DockerError::Unavailable("connection refused".to_owned()));
    let reply = api.get("/v1/health").await;
    // Either the contract's 200 body (with the daemon's error inside), or an error status with
    // the contract's error body: an error status with another body is neither.
    if reply.status.is_success() {
        let body = reply.json();
        assert!(body["docker"]["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
    } else if let Err(why) = reply.try_error() {
        panic!("health with Docker down: {why}");
    }
}

#[tokio::test]
async fn list_has_the_owned_containers_with_their_labels() {
    let api = api().await;
    let reply = api.get("/v1/containers").await;
    assert_eq!((reply.status.as_u16(), reply.json()), (200, json!([])));

    api.start_with("web-2", json!({"labels": {"tier": "gold", "a": "b"}})).await;
    api.start("web-1").await;
    let reply = api.get("/v1/containers").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        json!([
            {"id": "web-1", "running": true, "image": IMAGE, "labels": {}},
            {"id": "web-2", "running": true, "image": IMAGE, "labels": {"tier": "gold", "a": "b"}},
        ])
    );
    // Label order is the caller's, not sorted.
    assert!(reply.text().contains(r#""labels":{"tier":"gold","a":"b"}"#), "{}", reply.text());
    // A destroyed container is no longer owned.
    assert_eq!(api.post("/v1/containers/web-1/destroy", "").await.status, 204);
    let ids: Vec<Value> = api
        .get("/v1/containers")
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].clone())
        .collect();
    assert_eq!(ids, [json!("web-2")]);
}

#[tokio::test]
async fn events_stream_starting_and_started_with_the_container_id() {
    let api = api().await;
    // The handler subscribes before it answers, so the start below cannot be missed.
    let res = api.send_raw(request("GET", "/v1/events", "")).await;
    assert_eq!(res.status(), 200);
    let content_type = res.headers().get(http::header::CONTENT_TYPE).unwrap().to_str().unwrap();
    assert!(content_type.starts_with("text/event-stream"), "{content_type}");
    api.start("c1").await;

    let mut body = res.into_body();
    let mut text = String::new();
    let mut seen: Vec<(String, Value)> = Vec::new();
    while !seen.iter().any(|(kind, _)| kind == "started") {
        let frame = within(body.frame()).await.expect("the event stream ended").unwrap();
        let Ok(data) = frame.into_data() else { continue };
        text.push_str(std::str::from_utf8(&data).unwrap());
        while let Some(end) = text.find("\n\n") {
            let event: String = text.drain(..end + 2).collect();
            let field = |name: &str| {
                event.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim_start().to_owned())
            };
            if let (Some(kind), Some(data)) = (field("event:"), field("data:")) {
                seen.push((kind, serde_json::from_str(&data).unwrap()));
            }
        }
    }
    let ours: Vec<&(String, Value)> = seen.iter().filter(|(_, d)| d["container"] == "c1").collect();
    let kinds: Vec<&str> = ours.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["starting", "started"], "{seen:?}");
    let started = &ours[1].1;
    assert_eq!(started["type"], "started");
    assert_eq!(started["image"], IMAGE);
    assert!(started["seq"].as_u64().unwrap() > ours[0].1["seq"].as_u64().unwrap(), "{seen:?}");
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_counters() {
    let api = api().await;
    api.start("c1").await;
    let reply = api.get("/metrics").await;
    assert_eq!(reply.status, 200);
    assert!(reply.content_type().starts_with("text/plain"), "{}", reply.content_type());
    let text = reply.text();
    for line in [
        "# TYPE wharf_starts_total counter",
        "wharf_starts_total 1",
        "wharf_start_failures_total 0",
        "wharf_running_containers 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no line {line:?} in:\n{text}");
    }
}

#[tokio::test]
async fn unknown_paths_and_methods_are_json_errors() {
    let api = api().await;
    for path in ["/", "/v2/health", "/v1/containers/c1/nope", "/v1/containers/c1/start/extra"] {
        api.get(path).await.assert_error(404, "not_found");
    }
    for (method, path) in [
        ("POST", "/v1/health"),
        ("DELETE", "/v1/containers"),
        ("GET", "/v1/containers/c1/start"),
        ("PUT", "/v1/containers/c1/wait"),
        ("POST", "/v1/containers/c1/labels"),
        ("POST", "/v1/containers/c1/ports/80"),
    ] {
        let reply = api.call(method, path, "").await;
        assert_eq!(reply.status, 405, "{method} {path}: {}", reply.text());
        assert_eq!(reply.error().0, "method_not_allowed", "{method} {path}");
    }
}

#[tokio::test]
async fn a_token_is_required_when_configured() {
    let api = api_with_token(Some("s3cret")).await;
    let with = |auth: Option<&str>, path: &str| {
        let mut req = request("GET", path, "");
        if let Some(auth) = auth {
            req.headers_mut().insert(AUTHORIZATION, auth.parse().unwrap());
        }
        req
    };
    for auth in
        [None, Some("Bearer wrong"), Some("s3cret"), Some("Basic s3cret"), Some("Bearer s3cret2")]
    {
        for path in ["/v1/health", "/v1/containers/c1", "/metrics", "/nope"] {
            let reply = api.send(with(auth, path)).await;
            assert_eq!(reply.status, 401, "{auth:?} {path}: {}", reply.text());
            assert_eq!(reply.error().0, "unauthorized");
        }
    }
    let reply = api.send(with(Some("Bearer s3cret"), "/v1/health")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let reply = api.send(with(Some("Bearer s3cret"), "/v1/containers/c1")).await;
    assert_eq!(reply.json()["started"], false);
}

#[tokio::test]
async fn snapshots_are_not_implemented_yet() {
    let api = api().await;
    api.start("c1").await;
    let bodies =
        [("snapshots/directory", json!({"dir": "/app/data"})), ("snapshots/container", json!({}))];
    for (what, body) in bodies {
        let reply = api.post(&format!("/v1/containers/c1/{what}"), &body.to_string()).await;
        reply.assert_error(501, "not_implemented");
        let reply = api.post(&format!("/v1/containers/bad%20id/{what}"), &body.to_string()).await;
        reply.assert_error(400, "invalid_id");
    }
}
