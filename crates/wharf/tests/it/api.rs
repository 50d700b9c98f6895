//! The API surface over the unix socket (and once over TCP): health, status and list, start
//! refusals, the 400 error format, events and metrics.

use http::Method;
use serde_json::{Value, json};

use crate::harness::{Events, TESTAPP, TestDaemon, expect_error, metric, owned_containers, raw};

docker_test! {
    /// `GET /v1/health` names Docker, the sidecar image and the interception mode.
    async fn health_reports_docker_and_sidecar_image() -> anyhow::Result<()> {
        let d = TestDaemon::spawn().await?;
        let reply = d.request(Method::GET, "/v1/health", None).await?;
        assert_eq!(reply.status, 200, "{reply:?}");
        let h: Value = serde_json::from_slice(&reply.body)?;
        assert!(h["version"].as_str().is_some_and(|v| !v.is_empty()), "{h}");
        assert!(h["docker"]["version"].as_str().is_some_and(|v| !v.is_empty()), "{h}");
        assert!(h["docker"]["apiVersion"].as_str().is_some_and(|v| v.starts_with("1.")), "{h}");
        assert!(h["sidecarImage"].as_str().is_some_and(|v| v.starts_with("wharf/sidecar:")), "{h}");
        assert!(h["interception"].is_string(), "{h}");
        // The socket drives containers: only its owner may use it.
        let wharf::client::DaemonAddr::Unix(socket) = d.client().addr() else { anyhow::bail!("not a unix socket") };
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(socket)?.permissions());
        assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");
        d.stop().await
    }
}

docker_test! {
    /// An id never started has a slot that says so, and `list` leaves it out.
    // See: spec §5.3 #1, #17.
    async fn status_before_start_is_empty() -> anyhow::Result<()> {
        let d = TestDaemon::spawn().await?;
        let s = d.status("never").await?;
        assert_eq!(s["id"], "never");
        assert_eq!(s["started"], false, "{s}");
        assert_eq!(s["running"], false, "{s}");
        assert_eq!(s["image"], Value::Null, "{s}");
        assert_eq!(s["labels"], json!({}), "{s}");
        assert_eq!(s["exitCode"], Value::Null, "{s}");
        let list: Value = d.client().json(Method::GET, "/v1/containers", None).await?;
        assert_eq!(list, json!([]));
        d.stop().await
    }
}

docker_test! {
    /// start → 204; status and list show it; a second start is 409 `already_running`.
    // See: spec §5.3 #18, W38.
    async fn start_shows_in_status_and_list_and_cannot_start_twice() -> anyhow::Result<()> {
        let d = TestDaemon::spawn().await?;
        d.start("web", json!({"image": TESTAPP})).await?;
        let s = d.status("web").await?;
        assert_eq!((&s["running"], &s["started"], &s["image"]), (&json!(true), &json!(true), &json!(TESTAPP)), "{s}");
        assert_eq!(s["labels"], json!({}), "{s}");
        assert_eq!(s["exitCode"], Value::Null, "{s}");
        let list: Value = d.client().json(Method::GET, "/v1/containers", None).await?;
        assert_eq!(list, json!([{"id": "web", "running": true, "image": TESTAPP, "labels": {}}]));

        let again = d.request(Method::POST, "/v1/containers/web/start", Some(json!({"image": TESTAPP}))).await?;
        expect_error(&again, 409, "already_running")?;
        assert_eq!(d.status("web").await?["running"], true, "the refused start changed nothing");
        d.stop().await
    }
}

docker_test! {
    /// An image Docker does not have is 404 `image_not_found`, and nothing is left behind.
    async fn unknown_image_is_404_and_leaves_nothing() -> anyhow::Result<()> {
        let d = TestDaemon::spawn().await?;
        let body = json!({"image": "wharf/no-such-image:never"});
        let reply = d.request(Method::POST, "/v1/containers/ghost/start", Some(body)).await?;
        expect_error(&reply, 404, "image_not_found")?;
        let ours = owned_containers(d.name(), "{{.Names}}");
        assert!(ours.is_empty(), "a failed start left containers: {ours:?}");
        let s = d.status("ghost").await?;
        assert_eq!((&s["running"], &s["started"]), (&json!(false), &json!(false)), "{s}");
        let wait = d.request(Method::POST, "/v1/containers/ghost/wait", None).await?;
        expect_error(&wait, 409, "not_started")?;
        d.stop().await
    }
}

docker_test! {
    /// Every refusal is a 400 with `{"error": {"code", "message"}}` and the right code.
    async fn bad_requests_are_400_with_the_error_format() -> anyhow::Result<()> {
        let d = TestDaemon::spawn().await?;
        let addr = d.client().addr().clone();
        let long_id = format!("/v1/containers/{}", "a".repeat(129));

        let (status, _, body) = raw(&addr, Method::POST, "/v1/containers/a/start", &[], "{not json").await?;
        expect_error(&wharf::client::Reply { status, body }, 400, "invalid_body")?;

        let cases: Vec<(Method, &str, Value, &str)> = vec![
            (Method::POST, "/v1/containers/a/start", json!({"image": TESTAPP, "enableInternt": true}), "invalid_body"),
            (Method::POST, "/v1/containers/bad%20id/start", json!({"image": TESTAPP}), "invalid_id"),
            (Method::GET, "/v1/containers/bad%20id", Value::Null, "invalid_id"),
            (Method::GET, "/v1/containers/caf%C3%A9", Value::Null, "invalid_id"),
            (Method::GET, &long_id, Value::Null, "invalid_id"),
            (Method::POST, "/v1/containers/a/start", json!({"image": "bad image"}), "invalid_image"),
            (Method::POST, "/v1/containers/a/start", json!({"image": TESTAPP, "labels": eleven_labels()}), "invalid_labels"),
            (Method::POST, "/v1/containers/a/start", json!({"image": TESTAPP, "labels": {"a".repeat(17): "x"}}), "invalid_labels"),
            (Method::PUT, "/v1/containers/a/labels", eleven_labels(), "invalid_labels"),
            (Method::POST, "/v1/containers/a/start", json!({"image": TESTAPP, "env": ["NOEQUALS"]}), "invalid_env"),
            (Method::POST, "/v1/containers/a/signal", json!({"signal": 0}), "invalid_signal"),
            (Method::POST, "/v1/containers/a/signal", json!({"signal": 65}), "invalid_signal"),
            (Method::PUT, "/v1/containers/a/inactivity-timeout", json!({"ms": 0}), "invalid_timeout"),
            (Method::GET, "/v1/containers/a/ports/0", Value::Null, "invalid_port"),
            (Method::GET, "/v1/containers/a/ports/70000", Value::Null, "invalid_port"),
            (Method::GET, "/v1/containers/a/http/0/", Value::Null, "invalid_port"),
            (Method::GET, "/v1/containers/a/http/70000/x", Value::Null, "invalid_port"),
        ];
        for (method, path, body, code) in cases {
            let body = (!body.is_null()).then_some(body);
            let reply = d.request(method.clone(), path, body.clone()).await?;
            expect_error(&reply, 400, code).map_err(|e| e.context(format!("{method} {path} {body:?}")))?;
        }
        let reply = d.request(Method::GET, "/v1/no-such-endpoint", None).await?;
        expect_error(&reply, 404, "not_found")?;
        let reply = d.request(Method::DELETE, "/v1/health", None).await?;
        expect_error(&reply, 405, "method_not_allowed")?;
        assert!(owned_containers(d.name(), "{{.Names}}").is_empty(), "a refused request created containers");
        d.stop().await
    }
}

fn eleven_labels() -> Value {
    Value::Object((0..11).map(|i| (format!("l{i}"), json!("v"))).collect())
}

docker_test! {
    /// `/v1/events` streams `starting`, `started`, then `exited` (reason `destroyed`). Over
    /// TCP, to cover that listener too.
    async fn events_stream_the_lifecycle() -> anyhow::Result<()> {
        let d = TestDaemon::spawn_tcp().await?;
        let mut events = Events::subscribe(d.client()).await?;
        d.start("ev", json!({"image": TESTAPP})).await?;
        let mine = |e: &Value, kind: &str| e["container"] == "ev" && e["type"] == kind;
        let seen = events.until(|e| mine(e, "started")).await?;
        let kinds: Vec<&Value> = seen.iter().filter(|e| e["container"] == "ev").map(|e| &e["type"]).collect();
        assert_eq!(kinds.first().copied(), Some(&json!("starting")), "{seen:?}");
        assert_eq!(kinds.last().copied(), Some(&json!("started")), "{seen:?}");
        let started = seen.last().cloned().unwrap_or_default();
        assert_eq!(started["image"], TESTAPP, "{started}");
        assert!(started["seq"].is_u64() && started["timeMs"].is_u64(), "{started}");

        let labels = json!({"k": "v"});
        d.client().ok(Method::PUT, "/v1/containers/ev/labels", Some(&labels)).await?;
        events.until(|e| mine(e, "labels_set")).await?;

        d.destroy("ev").await?;
        let seen = events.until(|e| mine(e, "exited")).await?;
        let exited = seen.last().cloned().unwrap_or_default();
        assert_eq!((&exited["reason"], &exited["exitCode"], &exited["destroyed"]), (&json!("destroyed"), &json!(137), &json!(true)), "{exited}");
        d.stop().await
    }
}

docker_test! {
    /// `/metrics` is Prometheus text with the start counter and the running gauge.
    async fn metrics_count_starts_and_running_containers() -> anyhow::Result<()> {
        let d = TestDaemon::spawn().await?;
        d.start("m", json!({"image": TESTAPP})).await?;
        let reply = d.request(Method::GET, "/metrics", None).await?;
        assert_eq!(reply.status, 200);
        let text = String::from_utf8_lossy(&reply.body);
        assert!(metric(&text, "wharf_starts_total").is_some_and(|n| n >= 1.0), "{text}");
        assert_eq!(metric(&text, "wharf_running_containers"), Some(1.0), "{text}");
        assert!(text.contains("# TYPE wharf_running_containers gauge"), "{text}");
        d.destroy("m").await?;
        let reply = d.request(Method::GET, "/metrics", None).await?;
        assert_eq!(metric(&String::from_utf8_lossy(&reply.body), "wharf_running_containers"), Some(0.0));
        d.stop().await
    }
}
