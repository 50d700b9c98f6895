//! The container verbs' happy paths and conflicts: status, start, wait, destroy, signal,
//! labels, inactivity timeout, exec and logs.

use bytes::Bytes;
use serde_json::json;
use wharf_engine::docker::Output;
use wharf_engine::docker::fake::ExecScript;

use crate::support::{IMAGE, api, app_name, blocked, request, within};

#[tokio::test]
async fn a_never_started_id_has_an_empty_slot() {
    let api = api().await;
    let reply = api.get("/v1/containers/never").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    for (field, want) in [
        ("id", json!("never")),
        ("running", json!(false)),
        ("started", json!(false)),
        ("image", json!(null)),
        ("labels", json!({})),
        ("exitCode", json!(null)),
    ] {
        assert_eq!(body[field], want, "{field} in {body}");
    }
}

#[tokio::test]
async fn start_then_status_is_running_with_the_image_and_labels_in_order() {
    let api = api().await;
    api.start_with(
        "c1",
        json!({"labels": {"zeta": "1", "alpha": "2", "mid": "3"}, "env": ["A=1"]}),
    )
    .await;
    let reply = api.get("/v1/containers/c1").await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(
        (&body["running"], &body["started"], &body["image"], &body["exitCode"]),
        (&json!(true), &json!(true), &json!(IMAGE), &json!(null)),
        "{body}"
    );
    assert!(
        reply.text().contains(r#""labels":{"zeta":"1","alpha":"2","mid":"3"}"#),
        "{}",
        reply.text()
    );
}

#[tokio::test]
async fn start_twice_is_already_running() {
    let api = api().await;
    api.start("c1").await;
    let body = json!({"image": IMAGE}).to_string();
    api.post("/v1/containers/c1/start", &body).await.assert_error(409, "already_running");
}

#[tokio::test]
async fn a_missing_image_is_image_not_found() {
    let api = api().await;
    let reply = api.post("/v1/containers/c1/start", r#"{"image": "nope:1"}"#).await;
    reply.assert_error(404, "image_not_found");
    let status = api.get("/v1/containers/c1").await.json();
    assert_eq!(
        (&status["running"], &status["started"]),
        (&json!(false), &json!(false)),
        "{status}"
    );
}

#[tokio::test]
async fn wait_before_any_start_is_not_started() {
    let api = api().await;
    api.post("/v1/containers/c1/wait", "").await.assert_error(409, "not_started");
}

#[tokio::test(start_paused = true)]
async fn a_waiter_returns_137_destroyed_when_the_container_is_destroyed() {
    let api = api().await;
    api.start("c1").await;
    let mut waiter = api.spawn(request("POST", "/v1/containers/c1/wait", ""));
    assert!(blocked(&mut waiter).await, "wait returned while the container runs");
    let reply = api.post("/v1/containers/c1/destroy", "").await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    assert!(reply.body.is_empty());

    let reply = within(waiter).await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    assert_eq!((&body["exitCode"], &body["destroyed"]), (&json!(137), &json!(true)), "{body}");
    // A later wait reports the same run.
    let body = api.post("/v1/containers/c1/wait", "").await.json();
    assert_eq!((&body["exitCode"], &body["destroyed"]), (&json!(137), &json!(true)), "{body}");
    assert_eq!(api.docker.container_names(), ["wharf-t-c1-sidecar"], "only the sidecar, kept warm");
}

#[tokio::test]
async fn wait_after_a_clean_exit_is_0_not_destroyed() {
    let api = api().await;
    api.start("c1").await;
    api.docker.exit(&app_name("c1"), 0);
    let reply = api.post("/v1/containers/c1/wait", "").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    assert_eq!((&body["exitCode"], &body["destroyed"]), (&json!(0), &json!(false)), "{body}");
    let status = api.get("/v1/containers/c1").await.json();
    assert_eq!(
        (&status["running"], &status["started"], &status["exitCode"]),
        (&json!(false), &json!(true), &json!(0)),
        "{status}"
    );
}

#[tokio::test]
async fn destroy_is_204_also_when_nothing_runs() {
    let api = api().await;
    for id in ["never", "c1"] {
        let reply = api.post(&format!("/v1/containers/{id}/destroy"), "").await;
        assert_eq!(reply.status, 204, "{id}: {}", reply.text());
    }
    api.start("c1").await;
    for _ in 0..2 {
        assert_eq!(api.post("/v1/containers/c1/destroy", "").await.status, 204);
    }
    let status = api.get("/v1/containers/c1").await.json();
    assert_eq!(status["running"], false, "{status}");
}

#[tokio::test]
async fn signal_is_delivered_or_not_running() {
    let api = api().await;
    api.post("/v1/containers/c1/signal", r#"{"signal": 15}"#)
        .await
        .assert_error(409, "not_running");
    api.start("c1").await;
    let reply = api.post("/v1/containers/c1/signal", r#"{"signal": 15}"#).await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    // The fake's app dies of an untrapped signal with 128 + n.
    let body = api.post("/v1/containers/c1/wait", "").await.json();
    assert_eq!((&body["exitCode"], &body["destroyed"]), (&json!(143), &json!(false)), "{body}");
    api.post("/v1/containers/c1/signal", r#"{"signal": 15}"#)
        .await
        .assert_error(409, "not_running");
}

#[tokio::test]
async fn labels_replace_the_whole_set_in_order() {
    let api = api().await;
    api.put("/v1/containers/c1/labels", r#"{"a": "1"}"#).await.assert_error(409, "not_running");
    api.start_with("c1", json!({"labels": {"old": "x", "keep": "y"}})).await;
    let reply = api.put("/v1/containers/c1/labels", r#"{"z": "1", "b": "2", "keep": "y2"}"#).await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    let status = api.get("/v1/containers/c1").await;
    assert!(
        status.text().contains(r#""labels":{"z":"1","b":"2","keep":"y2"}"#),
        "{}",
        status.text()
    );
    let reply = api.put("/v1/containers/c1/labels", "{}").await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    assert_eq!(api.get("/v1/containers/c1").await.json()["labels"], json!({}));
}

#[tokio::test]
async fn inactivity_timeout_takes_positive_ms() {
    let api = api().await;
    api.start("c1").await;
    let reply = api.put("/v1/containers/c1/inactivity-timeout", r#"{"ms": 600000}"#).await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    for ms in ["0", "-1", "-600000"] {
        let reply =
            api.put("/v1/containers/c1/inactivity-timeout", &format!(r#"{{"ms": {ms}}}"#)).await;
        assert_eq!(reply.status, 400, "ms {ms}: {}", reply.text());
        assert_eq!(reply.error().0, "invalid_timeout", "ms {ms}");
    }
}

#[tokio::test]
async fn exec_runs_to_the_end() {
    let api = api().await;
    api.post("/v1/containers/c1/exec", r#"{"cmd": ["true"]}"#)
        .await
        .assert_error(409, "not_running");
    api.start("c1").await;

    // The fake's default exec prints its argv.
    let reply = api.post("/v1/containers/c1/exec", r#"{"cmd": ["echo", "hi"]}"#).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json(), json!({"exitCode": 0, "stdout": "echo hi\n", "stderr": ""}));

    api.docker.set_exec_handler(|_| {
        ExecScript::exit(3).stdout("out\n").stderr("err\n").stdout(vec![0xff, b'\n'])
    });
    let reply = api
        .post("/v1/containers/c1/exec", r#"{"cmd": ["x"], "env": ["A=1"], "cwd": "/tmp"}"#)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json(),
        json!({"exitCode": 3, "stdout": "out\n\u{fffd}\n", "stderr": "err\n"})
    );

    let reply =
        api.post("/v1/containers/c1/exec", r#"{"cmd": ["x"], "combinedOutput": true}"#).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json(),
        json!({"exitCode": 3, "stdout": "out\nerr\n\u{fffd}\n", "stderr": ""})
    );
}

#[tokio::test]
async fn exec_refuses_what_needs_the_streaming_exec() {
    let api = api().await;
    api.start("c1").await;
    for body in [
        r#"{"cmd": ["sh"], "stdin": true}"#,
        r#"{"cmd": ["sh"], "tty": {"cols": 100, "rows": 40}}"#,
        r#"{"cmd": ["sh"], "tty": true}"#,
    ] {
        let reply = api.post("/v1/containers/c1/exec", body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text());
        reply.error();
    }
    let reply = api
        .post("/v1/containers/c1/exec", r#"{"cmd": ["sh"], "tty": false, "stdin": false}"#)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test(start_paused = true)]
async fn logs_are_the_apps_stdout_and_stderr_as_text() {
    let api = api().await;
    // Nothing to read yet: a JSON error, not an empty stream.
    let reply = api.get("/v1/containers/c1/logs").await;
    assert!(reply.status.is_client_error(), "{}", reply.text());
    reply.error();
    api.start("c1").await;
    api.docker.set_logs(
        &app_name("c1"),
        vec![
            Output::Stdout(Bytes::from_static(b"out 1\n")),
            Output::Stderr(Bytes::from_static(b"err 1\n")),
        ],
    );
    for path in ["/v1/containers/c1/logs", "/v1/containers/c1/logs?follow=false"] {
        let reply = api.get(path).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert!(reply.content_type().starts_with("text/plain"), "{}", reply.content_type());
        assert_eq!(reply.text(), "out 1\nerr 1\n");
    }
    // follow=true ends once the app stops.
    let mut follower = api.spawn(request("GET", "/v1/containers/c1/logs?follow=true", ""));
    assert!(blocked(&mut follower).await, "logs?follow=true ended while the app runs");
    api.docker.exit(&app_name("c1"), 0);
    let reply = within(follower).await.unwrap();
    assert_eq!((reply.status.as_u16(), reply.text()), (200, "out 1\nerr 1\n"));
}

#[tokio::test]
async fn an_exited_container_is_not_running_until_started_again() {
    let api = api().await;
    api.control.route(9000, crate::support::echo_server().await);
    api.start_with("c1", json!({"labels": {"a": "1"}})).await;
    api.docker.exit(&app_name("c1"), 7);
    let body = api.post("/v1/containers/c1/wait", "").await.json();
    assert_eq!((&body["exitCode"], &body["destroyed"]), (&json!(7), &json!(false)), "{body}");

    api.put("/v1/containers/c1/labels", r#"{"b": "2"}"#).await.assert_error(409, "not_running");
    api.post("/v1/containers/c1/signal", r#"{"signal": 9}"#).await.assert_error(409, "not_running");
    api.post("/v1/containers/c1/exec", r#"{"cmd": ["ls"]}"#).await.assert_error(409, "not_running");
    api.get("/v1/containers/c1/http/9000/").await.assert_error(409, "not_running");
    let status = api.get("/v1/containers/c1").await.json();
    assert_eq!((&status["running"], &status["exitCode"]), (&json!(false), &json!(7)), "{status}");

    // A new start replaces the exited run; destroy, then start once more.
    api.start("c1").await;
    assert_eq!(api.get("/v1/containers/c1").await.json()["running"], true);
    assert_eq!(api.post("/v1/containers/c1/destroy", "").await.status, 204);
    api.start("c1").await;
    let status = api.get("/v1/containers/c1").await.json();
    assert_eq!(
        (&status["running"], &status["exitCode"], &status["labels"]),
        (&json!(true), &json!(null), &json!({})),
        "{status}"
    );
}
