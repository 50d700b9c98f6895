//! Bad input gets a 400 whose code names what was wrong.
//!
//! Data-driven: each test sends a table of requests through one [`Table`] and compares the
//! whole transcript (request, then `status code`) with one `expect!` snapshot, so a failure
//! shows every row that differs. The error shape is asserted on every row. Update with
//! `UPDATE_EXPECT=1`.

use std::fmt::Write as _;

use expect_test::expect;
use serde_json::{Value, json};

use crate::support::{Api, api};

/// A transcript of requests and their answers' `status code`.
struct Table<'a> {
    api: &'a Api,
    out: String,
}

impl<'a> Table<'a> {
    fn new(api: &'a Api) -> Table<'a> {
        Table { api, out: String::new() }
    }

    async fn row(&mut self, method: &str, path: &str, body: &str) {
        let reply = self.api.call(method, path, body).await;
        assert!(!reply.status.is_server_error(), "{method} {path} {body}: {}", reply.text());
        let _ = writeln!(self.out, "{method} {path} {}\n  {}", short(body), reply.describe());
    }

    /// `POST /v1/containers/c1/start` with `body`.
    async fn start(&mut self, body: Value) {
        self.row("POST", "/v1/containers/c1/start", &body.to_string()).await;
    }
}

/// `body`, or its start and length when it is long.
fn short(body: &str) -> String {
    if body.chars().count() <= 60 {
        return body.escape_debug().to_string();
    }
    let head: String = body.chars().take(30).collect();
    format!("{}…({} bytes)", head.escape_debug(), body.len())
}

#[tokio::test]
async fn bodies_that_are_not_the_shape() {
    let api = api().await;
    let mut t = Table::new(&api);
    let start = "/v1/containers/c1/start";
    t.row("POST", start, "{").await;
    t.row("POST", start, "not json").await;
    t.row("POST", start, r#"{"image": 1}"#).await;
    t.row("POST", start, r#"{"image": "app:1", "enableInternt": true}"#).await;
    t.row("POST", start, r#"{"image": "app:1"} trailing"#).await;
    // An empty body is an empty object, and `image` is required.
    t.row("POST", start, "").await;
    t.row("POST", start, " \n").await;
    t.row("POST", start, "{}").await;
    let signal = "/v1/containers/c1/signal";
    t.row("POST", signal, "").await;
    t.row("POST", signal, r#"{"signal": 9, "extra": 1}"#).await;
    t.row("PUT", "/v1/containers/c1/inactivity-timeout", r#"{"ms": "1000"}"#).await;
    t.row("PUT", "/v1/containers/c1/labels", r#"["a"]"#).await;
    t.row("POST", "/v1/containers/c1/exec", "{}").await;
    t.row("POST", "/v1/containers/c1/exec", r#"{"cmd": "ls"}"#).await;
    // Bodies are JSON objects; an array is not a StartParams, a signal or a timeout.
    t.row("POST", start, "[]").await;
    t.row("POST", start, r#"["app:1"]"#).await;
    t.row("POST", signal, "[9]").await;
    t.row("PUT", "/v1/containers/c1/inactivity-timeout", "[1000]").await;
    t.row("POST", "/v1/containers/c1/exec", r#"[["ls"]]"#).await;
    expect![[r#"
        POST /v1/containers/c1/start {
          400 invalid_body
        POST /v1/containers/c1/start not json
          400 invalid_body
        POST /v1/containers/c1/start {\"image\": 1}
          400 invalid_body
        POST /v1/containers/c1/start {\"image\": \"app:1\", \"enableInternt\": true}
          400 invalid_body
        POST /v1/containers/c1/start {\"image\": \"app:1\"} trailing
          400 invalid_body
        POST /v1/containers/c1/start 
          400 invalid_image
        POST /v1/containers/c1/start  \n
          400 invalid_image
        POST /v1/containers/c1/start {}
          400 invalid_image
        POST /v1/containers/c1/signal 
          400 invalid_body
        POST /v1/containers/c1/signal {\"signal\": 9, \"extra\": 1}
          400 invalid_body
        PUT /v1/containers/c1/inactivity-timeout {\"ms\": \"1000\"}
          400 invalid_timeout
        PUT /v1/containers/c1/labels [\"a\"]
          400 invalid_body
        POST /v1/containers/c1/exec {}
          400 invalid_body
        POST /v1/containers/c1/exec {\"cmd\": \"ls\"}
          400 invalid_body
        POST /v1/containers/c1/start []
          400 invalid_body
        POST /v1/containers/c1/start [\"app:1\"]
          400 invalid_body
        POST /v1/containers/c1/signal [9]
          400 invalid_body
        PUT /v1/containers/c1/inactivity-timeout [1000]
          400 invalid_body
        POST /v1/containers/c1/exec [[\"ls\"]]
          400 invalid_body
    "#]]
    .assert_eq(&t.out);
}

#[tokio::test]
async fn bad_ids_in_every_path() {
    let api = api().await;
    let long = "a".repeat(129);
    let ok_long = "a".repeat(128);
    let reply = api.get(&format!("/v1/containers/{ok_long}")).await;
    assert_eq!(reply.status, 200, "a 128-character id is fine: {}", reply.text());
    for id in ["bad%20id", long.as_str(), "a%2Fb", "caf%C3%A9", "a:b", "%00"] {
        let rows = [
            ("GET", String::new(), ""),
            ("POST", "/start".to_owned(), r#"{"image": "app:1"}"#),
            ("POST", "/wait".to_owned(), ""),
            ("POST", "/destroy".to_owned(), ""),
            ("POST", "/signal".to_owned(), r#"{"signal": 9}"#),
            ("PUT", "/labels".to_owned(), "{}"),
            ("PUT", "/inactivity-timeout".to_owned(), r#"{"ms": 1000}"#),
            ("POST", "/exec".to_owned(), r#"{"cmd": ["ls"]}"#),
            ("GET", "/logs".to_owned(), ""),
            ("GET", "/ports/8080".to_owned(), ""),
            ("GET", "/http/8080/".to_owned(), ""),
            ("DELETE", "/http/8080/a/b".to_owned(), ""),
            ("POST", "/egress".to_owned(), "{}"),
            ("POST", "/snapshots/directory".to_owned(), "{}"),
            ("POST", "/snapshots/container".to_owned(), "{}"),
        ];
        for (method, rest, body) in rows {
            let path = format!("/v1/containers/{id}{rest}");
            let reply = api.call(method, &path, body).await;
            assert_eq!(reply.summary(), "400 invalid_id", "{method} {path}: {}", reply.text());
        }
    }
}

#[tokio::test]
async fn start_params() {
    let api = api().await;
    let mut t = Table::new(&api);
    let eleven: serde_json::Map<String, Value> =
        (0..11).map(|i| (format!("l{i}"), json!("v"))).collect();
    for body in [
        // image
        json!({"image": "bad image"}),
        json!({"image": ""}),
        json!({"image": "caf\u{e9}:1"}),
        json!({"image": "a\tb"}),
        json!({"image": "a".repeat(4097)}),
        json!({"image": null}),
        json!({"image": "app:1", "containerSnapshotId": "snap"}),
        // labels
        json!({"image": "app:1", "labels": eleven}),
        json!({"image": "app:1", "labels": {"a".repeat(17): "v"}}),
        json!({"image": "app:1", "labels": {"": "v"}}),
        json!({"image": "app:1", "labels": {"a": "v".repeat(65)}}),
        json!({"image": "app:1", "labels": {"a\nb": "v"}}),
        json!({"image": "app:1", "labels": {"a": "v\u{7}"}}),
        json!({"image": "app:1", "labels": {"a": 1}}),
        json!({"image": "app:1", "labels": {"a": null}}),
        // env, entrypoint, timeout, instance
        json!({"image": "app:1", "env": ["NOEQUALS"]}),
        json!({"image": "app:1", "env": ["=x"]}),
        json!({"image": "app:1", "env": ["A B=x"]}),
        json!({"image": "app:1", "entrypoint": []}),
        json!({"image": "app:1", "hardTimeoutMs": -1}),
        json!({"image": "app:1", "instance": "invalid"}),
        json!({"image": "app:1", "instance": {"vcpu": 0}}),
        json!({"image": "app:1", "instance": {"vcpu": -1}}),
        json!({"image": "app:1", "instance": {"memoryMib": 0.5}}),
        json!({"image": "app:1", "instance": {"gpus": 1}}),
        json!({"image": "app:1", "instance": 3}),
    ] {
        t.start(body).await;
    }
    // None of the refusals left anything behind, and the same slot still starts.
    assert!(api.docker.container_names().is_empty(), "{:?}", api.docker.container_names());
    t.start(json!({
        "image": "app:1", "entrypoint": ["/bin/sh", "-c", "exit 0"], "env": ["NAME=VALUE", "EMPTY="],
        "enableInternet": false, "labels": {"tier": "gold"}, "hardTimeoutMs": 0,
        "instance": {"vcpu": 0.5, "memoryMib": 256, "diskMb": 2000},
    }))
    .await;
    expect![[r#"
        POST /v1/containers/c1/start {\"image\":\"bad image\"}
          400 invalid_image
        POST /v1/containers/c1/start {\"image\":\"\"}
          400 invalid_image
        POST /v1/containers/c1/start {\"image\":\"café:1\"}
          400 invalid_image
        POST /v1/containers/c1/start {\"image\":\"a\\tb\"}
          400 invalid_image
        POST /v1/containers/c1/start {\"image\":\"aaaaaaaaaaaaaaaaaaaa…(4109 bytes)
          400 invalid_image
        POST /v1/containers/c1/start {\"image\":null}
          400 invalid_image
        POST /v1/containers/c1/start {\"image\":\"app:1\",\"containerSnapshotId\":\"snap\"}
          400 invalid_params
        POST /v1/containers/c1/start {\"image\":\"app:1\",\"labels\":{\"l0…(128 bytes)
          400 invalid_labels
        POST /v1/containers/c1/start {\"image\":\"app:1\",\"labels\":{\"aaaaaaaaaaaaaaaaa\":\"v\"}}
          400 invalid_labels
        POST /v1/containers/c1/start {\"image\":\"app:1\",\"labels\":{\"\":\"v\"}}
          400 invalid_labels
        POST /v1/containers/c1/start {\"image\":\"app:1\",\"labels\":{\"a\"…(100 bytes)
          400 invalid_labels
        POST /v1/containers/c1/start {\"image\":\"app:1\",\"labels\":{\"a\\nb\":\"v\"}}
          400 invalid_labels
        POST /v1/containers/c1/start {\"image\":\"app:1\",\"labels\":{\"a\":\"v\\u0007\"}}
          400 invalid_labels
        POST /v1/containers/c1/start {\"image\":\"app:1\",\"labels\":{\"a\":1}}
          400 invalid_labels
        POST /v1/containers/c1/start {\"image\":\"app:1\",\"labels\":{\"a\":null}}
          400 invalid_labels
        POST /v1/containers/c1/start {\"image\":\"app:1\",\"env\":[\"NOEQUALS\"]}
          400 invalid_env
        POST /v1/containers/c1/start {\"image\":\"app:1\",\"env\":[\"=x\"]}
          400 invalid_env
        POST /v1/containers/c1/start {\"image\":\"app:1\",\"env\":[\"A B=x\"]}
          400 invalid_env
        POST /v1/containers/c1/start {\"image\":\"app:1\",\"entrypoint\":[]}
          400 invalid_command
        POST /v1/containers/c1/start {\"image\":\"app:1\",\"hardTimeoutMs\":-1}
          400 invalid_timeout
        POST /v1/containers/c1/start {\"image\":\"app:1\",\"instance\":\"invalid\"}
          400 invalid_instance
        POST /v1/containers/c1/start {\"image\":\"app:1\",\"instance\":{\"vcpu\":0}}
          400 invalid_instance
        POST /v1/containers/c1/start {\"image\":\"app:1\",\"instance\":{\"vcpu\":-1}}
          400 invalid_instance
        POST /v1/containers/c1/start {\"image\":\"app:1\",\"instance\":{\"memoryMib\":0.5}}
          400 invalid_instance
        POST /v1/containers/c1/start {\"image\":\"app:1\",\"instance\":{\"gpus\":1}}
          400 invalid_instance
        POST /v1/containers/c1/start {\"image\":\"app:1\",\"instance\":3}
          400 invalid_instance
        POST /v1/containers/c1/start {\"image\":\"app:1\",\"entrypoint\":…(206 bytes)
          204
    "#]]
    .assert_eq(&t.out);
}

#[tokio::test]
async fn other_bodies() {
    let api = api().await;
    api.start("c1").await;
    let mut t = Table::new(&api);
    for body in [
        r#"{"signal": 0}"#,
        r#"{"signal": 65}"#,
        r#"{"signal": -9}"#,
        r#"{"signal": 256}"#,
        r#"{"signal": "x"}"#,
    ] {
        t.row("POST", "/v1/containers/c1/signal", body).await;
    }
    let eleven: serde_json::Map<String, Value> =
        (0..11).map(|i| (format!("l{i}"), json!("v"))).collect();
    for body in [
        Value::Object(eleven),
        json!({"a".repeat(17): "v"}),
        json!({"a": "v".repeat(65)}),
        json!({"a\u{1b}": "v"}),
        json!({"a": true}),
        json!({"a".repeat(16): "v".repeat(64)}),
    ] {
        t.row("PUT", "/v1/containers/c1/labels", &body.to_string()).await;
    }
    for body in [
        json!({"cmd": []}),
        json!({"cmd": ["ls"], "env": ["NOEQUALS"]}),
        json!({"cmd": ["ls"], "cwd": "relative"}),
        json!({"cmd": ["ls"], "stdin": true}),
        json!({"cmd": ["ls"], "tty": {"cols": 100, "rows": 40}}),
    ] {
        t.row("POST", "/v1/containers/c1/exec", &body.to_string()).await;
    }
    expect![[r#"
        POST /v1/containers/c1/signal {\"signal\": 0}
          400 invalid_signal
        POST /v1/containers/c1/signal {\"signal\": 65}
          400 invalid_signal
        POST /v1/containers/c1/signal {\"signal\": -9}
          400 invalid_signal
        POST /v1/containers/c1/signal {\"signal\": 256}
          400 invalid_signal
        POST /v1/containers/c1/signal {\"signal\": \"x\"}
          400 invalid_signal
        PUT /v1/containers/c1/labels {\"l0\":\"v\",\"l1\":\"v\",\"l2\":\"v\",\"l…(101 bytes)
          400 invalid_labels
        PUT /v1/containers/c1/labels {\"aaaaaaaaaaaaaaaaa\":\"v\"}
          400 invalid_labels
        PUT /v1/containers/c1/labels {\"a\":\"vvvvvvvvvvvvvvvvvvvvvvvv…(73 bytes)
          400 invalid_labels
        PUT /v1/containers/c1/labels {\"a\\u001b\":\"v\"}
          400 invalid_labels
        PUT /v1/containers/c1/labels {\"a\":true}
          400 invalid_labels
        PUT /v1/containers/c1/labels {\"aaaaaaaaaaaaaaaa\":\"vvvvvvvvv…(87 bytes)
          204
        POST /v1/containers/c1/exec {\"cmd\":[]}
          400 invalid_command
        POST /v1/containers/c1/exec {\"cmd\":[\"ls\"],\"env\":[\"NOEQUALS\"]}
          400 invalid_env
        POST /v1/containers/c1/exec {\"cmd\":[\"ls\"],\"cwd\":\"relative\"}
          400 invalid_exec
        POST /v1/containers/c1/exec {\"cmd\":[\"ls\"],\"stdin\":true}
          400 invalid_exec
        POST /v1/containers/c1/exec {\"cmd\":[\"ls\"],\"tty\":{\"cols\":100,\"rows\":40}}
          400 invalid_exec
    "#]]
    .assert_eq(&t.out);
    let status = api.get("/v1/containers/c1").await.json();
    assert_eq!(status["running"], true, "{status}");
}

#[tokio::test]
async fn bad_ports() {
    let api = api().await;
    api.start("c1").await;
    for port in ["0", "70000", "abc", "-1", "65536", "1.5", "%20"] {
        let reply = api
            .send(
                http::Request::get(format!("/v1/containers/c1/ports/{port}"))
                    .header(http::header::CONNECTION, "Upgrade")
                    .header(http::header::UPGRADE, "tcp")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.summary(), "400 invalid_port", "ports/{port}: {}", reply.text());
        for rest in ["", "/", "/a/b?x=1"] {
            let path = format!("/v1/containers/c1/http/{port}{rest}");
            let reply = api.get(&path).await;
            assert_eq!(reply.summary(), "400 invalid_port", "{path}: {}", reply.text());
        }
    }
}

#[tokio::test]
async fn what_the_extractors_refuse_is_still_a_json_error() {
    let api = api().await;
    api.start("c1").await;
    let mut t = Table::new(&api);
    // Not UTF-8 once percent-decoded: still a bad id, or a bad port.
    t.row("GET", "/v1/containers/%FF", "").await;
    t.row("POST", "/v1/containers/%FF/start", r#"{"image": "app:1"}"#).await;
    t.row("GET", "/v1/containers/%C3%28/logs", "").await;
    t.row("GET", "/v1/containers/c1/http/%FF/x", "").await;
    // A body over the size limit.
    let huge = format!(r#"{{"image": "app:1", "env": ["A={}"]}}"#, "x".repeat(3 << 20));
    t.row("POST", "/v1/containers/c2/start", &huge).await;
    expect![[r#"
        GET /v1/containers/%FF 
          400 invalid_id
        POST /v1/containers/%FF/start {\"image\": \"app:1\"}
          400 invalid_id
        GET /v1/containers/%C3%28/logs 
          400 invalid_id
        GET /v1/containers/c1/http/%FF/x 
          400 invalid_port
        POST /v1/containers/c2/start {\"image\": \"app:1\", \"env\": [\"A=…(3145761 bytes)
          413 body_too_large
    "#]]
    .assert_eq(&t.out);

    // A query that is not a bool: the contract names no code, but it is a JSON error.
    let reply = api.get("/v1/containers/c1/logs?follow=maybe").await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    if let Err(why) = reply.try_error() {
        panic!("logs?follow=maybe: {why}");
    }
}

#[tokio::test]
async fn extreme_but_valid_numbers_are_accepted() {
    let api = api().await;
    let mut t = Table::new(&api);
    t.start(json!({"image": "app:1", "hardTimeoutMs": i64::MAX})).await;
    t.row("PUT", "/v1/containers/c1/inactivity-timeout", &json!({"ms": i64::MAX}).to_string())
        .await;
    t.row("PUT", "/v1/containers/c1/inactivity-timeout", &json!({"ms": 1u64 << 63}).to_string())
        .await;
    t.row("POST", "/v1/containers/c1/signal", r#"{"signal": 64}"#).await;
    t.row(
        "POST",
        "/v1/containers/c2/start",
        &json!({"image": "app:1", "instance": {"vcpu": 1e300, "memoryMib": 9007199254740991u64}})
            .to_string(),
    )
    .await;
    t.row(
        "POST",
        "/v1/containers/c3/start",
        &json!({"image": "app:1", "instance": {"memoryMib": 9007199254740992u64}}).to_string(),
    )
    .await;
    t.row("GET", "/v1/containers/c1", "").await;
    expect![[r#"
        POST /v1/containers/c1/start {\"image\":\"app:1\",\"hardTimeoutMs\":9223372036854775807}
          204
        PUT /v1/containers/c1/inactivity-timeout {\"ms\":9223372036854775807}
          204
        PUT /v1/containers/c1/inactivity-timeout {\"ms\":9223372036854775808}
          400 invalid_timeout
        POST /v1/containers/c1/signal {\"signal\": 64}
          204
        POST /v1/containers/c2/start {\"image\":\"app:1\",\"instance\":{\"…(73 bytes)
          204
        POST /v1/containers/c3/start {\"image\":\"app:1\",\"instance\":{\"memoryMib\":9007199254740992}}
          400 invalid_instance
        GET /v1/containers/c1 
          200
    "#]]
    .assert_eq(&t.out);
}
