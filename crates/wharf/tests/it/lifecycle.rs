//! The lifecycle verbs against real containers: wait, destroy, exits, restarts, signals,
//! labels, the queue under cancellation, and the inactivity timeout.

use std::time::Duration;

use http::Method;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::harness::{Events, TESTAPP, TestDaemon, connect, docker, expect_error, metric, start};

docker_test! {
    /// destroy makes `wait` return 137 with `destroyed: true`, for a waiter that began before
    /// the destroy and for one that asks after; `wait` on a never-started id is 409.
    // See: spec §5.3 #4, W14.
    async fn wait_after_destroy_is_137_destroyed() -> anyhow::Result<()> {
        let d = TestDaemon::spawn().await?;
        let never = d.request(Method::POST, "/v1/containers/nobody/wait", None).await?;
        expect_error(&never, 409, "not_started")?;

        d.start_app("doomed", &[]).await?;
        let early = {
            let client = d.client().clone();
            tokio::spawn(async move { client.json::<Value>(Method::POST, "/v1/containers/doomed/wait", None).await })
        };
        // Let the early waiter reach the engine before the destroy.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!early.is_finished(), "wait returned while the app runs: {:?}", early.await?);
        d.destroy("doomed").await?;
        let early = early.await??;
        assert_eq!(early["exitCode"], 137, "{early}");
        assert_eq!(early["destroyed"], true, "{early}");
        let late = d.wait("doomed").await?;
        assert_eq!((&late["exitCode"], &late["destroyed"]), (&json!(137), &json!(true)), "{late}");
        let s = d.status("doomed").await?;
        assert_eq!(s["running"], false, "{s}");
        // A second destroy is fine (204) when nothing runs.
        d.destroy("doomed").await?;

        // A wait and a destroy fired together right after start: the wait still reports the
        // destroy, never a Docker error (W39).
        d.start("race", json!({"image": TESTAPP})).await?;
        let waiter = {
            let client = d.client().clone();
            tokio::spawn(async move { client.json::<Value>(Method::POST, "/v1/containers/race/wait", None).await })
        };
        d.destroy("race").await?;
        let w = waiter.await??;
        assert_eq!((&w["exitCode"], &w["destroyed"]), (&json!(137), &json!(true)), "{w}");
        d.stop().await
    }
}

docker_test! {
    /// `exit 0` ends the run by itself: wait gives 0, not destroyed, status stopped. An
    /// `exit 3` gives 3 and Docker does not restart the app.
    // See: spec §5.3 #5, W13.
    async fn entrypoint_exit_codes_and_no_restart() -> anyhow::Result<()> {
        let d = TestDaemon::spawn().await?;
        d.start("zero", json!({"image": TESTAPP, "entrypoint": ["/bin/sh", "-c", "exit 0"]})).await?;
        let w = d.wait("zero").await?;
        assert_eq!((&w["exitCode"], &w["destroyed"]), (&json!(0), &json!(false)), "{w}");
        let s = d.status("zero").await?;
        assert_eq!((&s["running"], &s["started"], &s["exitCode"]), (&json!(false), &json!(true), &json!(0)), "{s}");
        assert_eq!(s["state"], "stopped", "{s}");
        // A run that ended by itself can start again on the same id, and a wait sent while
        // that start is still in flight waits for it (the JS layer fires start, then
        // monitor, without awaiting: spec §2.1, §2.4).
        let starting = {
            let client = d.client().clone();
            let body = json!({"image": TESTAPP, "entrypoint": ["/bin/sh", "-c", "sleep 1; exit 0"]});
            tokio::spawn(async move { start(&client, "zero", body).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let w = d.wait("zero").await?;
        assert!(starting.is_finished(), "wait returned before the start it queued behind");
        starting.await??;
        assert_eq!((&w["exitCode"], &w["destroyed"]), (&json!(0), &json!(false)), "{w}");

        d.start("three", json!({"image": TESTAPP, "entrypoint": ["/bin/sh", "-c", "exit 3"]})).await?;
        let w = d.wait("three").await?;
        assert_eq!((&w["exitCode"], &w["destroyed"]), (&json!(3), &json!(false)), "{w}");
        // Give a restart policy time to show itself, then ask Docker directly.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let app = format!("wharf-{}-three", d.name());
        let inspect = docker(&["inspect", "--format", "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}", &app]);
        assert_eq!(inspect.trim(), "exited 0 3", "docker inspect {app}");
        let s = d.status("three").await?;
        assert_eq!((&s["running"], &s["exitCode"]), (&json!(false), &json!(3)), "{s}");
        d.stop().await
    }
}

docker_test! {
    /// start, healthy, destroy, then start again (with `exit 0`) on the same id works.
    // See: spec §5.3 #6.
    async fn restart_after_destroy() -> anyhow::Result<()> {
        let d = TestDaemon::spawn().await?;
        d.start_app("again", &[]).await?;
        d.destroy("again").await?;
        assert_eq!(d.status("again").await?["running"], false);
        d.start("again", json!({"image": TESTAPP, "entrypoint": ["/bin/sh", "-c", "exit 0"]})).await?;
        let w = d.wait("again").await?;
        assert_eq!((&w["exitCode"], &w["destroyed"]), (&json!(0), &json!(false)), "{w}");
        assert_eq!(d.status("again").await?["running"], false);
        d.stop().await
    }
}

docker_test! {
    /// SIGTERM reaches the app (the test app exits 143 on it); a stopped app cannot be
    /// signalled.
    async fn signal_term_then_not_running() -> anyhow::Result<()> {
        let d = TestDaemon::spawn().await?;
        d.start_app("sig", &[]).await?;
        let reply = d.request(Method::POST, "/v1/containers/sig/signal", Some(json!({"signal": 15}))).await?;
        assert_eq!(reply.status, 204, "{reply:?}");
        let w = d.wait("sig").await?;
        assert_eq!((&w["exitCode"], &w["destroyed"]), (&json!(143), &json!(false)), "{w}");
        let again = d.request(Method::POST, "/v1/containers/sig/signal", Some(json!({"signal": 15}))).await?;
        expect_error(&again, 409, "not_running")?;
        let never = d.request(Method::POST, "/v1/containers/other/signal", Some(json!({"signal": 15}))).await?;
        expect_error(&never, 409, "not_running")?;

        // A real-time signal arrives as itself, not as SIGKILL (W12).
        let trapping = "trap 'exit 77' 40; echo ready; sleep 600 & wait";
        d.start("rt", json!({"image": TESTAPP, "entrypoint": ["/bin/sh", "-c", trapping]})).await?;
        let mut logs = d.client().stream(Method::GET, "/v1/containers/rt/logs?follow=true").await?.into_body();
        crate::harness::read_until(&mut logs, &mut String::new(), |t| t.contains("ready")).await?;
        let reply = d.request(Method::POST, "/v1/containers/rt/signal", Some(json!({"signal": 40}))).await?;
        assert_eq!(reply.status, 204, "{reply:?}");
        let w = d.wait("rt").await?;
        assert_eq!(w["exitCode"], 77, "signal 40 must reach the trap: {w}");
        d.stop().await
    }
}

docker_test! {
    /// Labels: PUT replaces the whole set and `{}` clears it; two concurrent PUTs apply in
    /// arrival order; unicode and maximal names and values round-trip; a stopped container
    /// refuses.
    // See: spec §5.3 #12, #20, #21, #22, #24, #27.
    async fn labels_replace_clear_serialize_and_round_trip() -> anyhow::Result<()> {
        let d = TestDaemon::spawn().await?;
        d.start("lab", json!({"image": TESTAPP, "labels": {"a": "1", "b": "2"}})).await?;
        assert_eq!(d.status("lab").await?["labels"], json!({"a": "1", "b": "2"}));

        put_labels(&d, "lab", json!({"c": "3"})).await?;
        assert_eq!(d.status("lab").await?["labels"], json!({"c": "3"}), "replace, not merge");
        put_labels(&d, "lab", json!({})).await?;
        assert_eq!(d.status("lab").await?["labels"], json!({}), "{{}} clears");

        // Two concurrent PUTs: the second is sent once the first is on its way; the later wins.
        let first = {
            let client = d.client().clone();
            tokio::spawn(async move { client.ok(Method::PUT, "/v1/containers/lab/labels", Some(&json!({"a": "1"}))).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let second = {
            let client = d.client().clone();
            tokio::spawn(async move { client.ok(Method::PUT, "/v1/containers/lab/labels", Some(&json!({"b": "2"}))).await })
        };
        first.await??;
        second.await??;
        assert_eq!(d.status("lab").await?["labels"], json!({"b": "2"}));

        let exact = json!({
            "emoji": "🚀 ünïcödé ✓",
            "sixteen-bytes-ok": "x",
            "long": "v".repeat(64),
            "eq": "a=b=c",
            "日本語ラbcde": "値",
            "empty": "",
        });
        put_labels(&d, "lab", exact.clone()).await?;
        let s = d.status("lab").await?;
        assert_eq!(s["labels"], exact, "{s}");
        let keys: Vec<&String> = s["labels"].as_object().map(|o| o.keys().collect()).unwrap_or_default();
        let want: Vec<&String> = exact.as_object().map(|o| o.keys().collect()).unwrap_or_default();
        assert_eq!(keys, want, "labels keep their order");

        d.destroy("lab").await?;
        let reply = d.request(Method::PUT, "/v1/containers/lab/labels", Some(json!({"x": "y"}))).await?;
        expect_error(&reply, 409, "not_running")?;
        let reply = d.request(Method::PUT, "/v1/containers/never/labels", Some(json!({"x": "y"}))).await?;
        expect_error(&reply, 409, "not_running")?;
        d.stop().await
    }
}

async fn put_labels(d: &TestDaemon, id: &str, labels: Value) -> anyhow::Result<()> {
    let reply =
        d.client().ok(Method::PUT, &format!("/v1/containers/{id}/labels"), Some(&labels)).await?;
    anyhow::ensure!(reply.status == 204, "labels PUT answered {}", reply.status);
    Ok(())
}

docker_test! {
    /// A call queued behind a slow start whose caller hangs up before its turn must not break
    /// the calls behind it: destroy and status still work. Whether hyper dropped the handler
    /// (the call is skipped) or let it run (the labels are set) is reported in the events;
    /// exactly one of the two happens.
    // See: W1.
    async fn cancelled_queued_call_does_not_poison_the_queue() -> anyhow::Result<()> {
        let d = TestDaemon::spawn().await?;
        let mut events = Events::subscribe(d.client()).await?;
        let starting = {
            let client = d.client().clone();
            tokio::spawn(async move { start(&client, "w1", json!({"image": TESTAPP})).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!starting.is_finished(), "the start finished too soon to queue behind it");

        // A labels PUT on a raw connection, closed before its answer.
        let body = r#"{"late": "yes"}"#;
        let request = format!(
            "PUT /v1/containers/w1/labels HTTP/1.1\r\nHost: wharf\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut conn = connect(d.client().addr()).await?;
        conn.write_all(request.as_bytes()).await?;
        conn.flush().await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(conn);

        let destroy = d.request(Method::POST, "/v1/containers/w1/destroy", None).await?;
        assert_eq!(destroy.status, 204, "destroy behind the cancelled call: {destroy:?}");
        starting.await??;
        let s = d.status("w1").await?;
        assert_eq!((&s["running"], &s["labels"]), (&json!(false), &json!({})), "{s}");

        let seen = events.until(|e| e["container"] == "w1" && e["type"] == "exited").await?;
        let skipped = seen.iter().any(|e| e["type"] == "skipped" && e["verb"] == "labels");
        let labels_set = seen.iter().any(|e| e["type"] == "labels_set");
        assert!(skipped != labels_set, "the PUT must be either skipped or applied, once: {seen:?}");
        let metrics = d.request(Method::GET, "/metrics", None).await?;
        let skipped_total = metric(&String::from_utf8_lossy(&metrics.body), "wharf_skipped_calls_total");
        assert_eq!(skipped_total, Some(if skipped { 1.0 } else { 0.0 }), "{seen:?}");

        // The queue still serves: a fresh start, a labels PUT and a destroy.
        d.start_app("w1", &[]).await?;
        put_labels(&d, "w1", json!({"after": "ok"})).await?;
        assert_eq!(d.status("w1").await?["labels"], json!({"after": "ok"}));
        d.stop().await
    }
}

docker_test! {
    /// An inactivity timeout on an idle app stops it with SIGTERM (the test app exits 143),
    /// and status says why.
    async fn inactivity_timeout_stops_an_idle_app() -> anyhow::Result<()> {
        let d = TestDaemon::spawn().await?;
        d.start_app("idle", &[]).await?;
        let reply = d.request(Method::PUT, "/v1/containers/idle/inactivity-timeout", Some(json!({"ms": 1500}))).await?;
        assert_eq!(reply.status, 204, "{reply:?}");
        let w = d.wait("idle").await?;
        assert_eq!((&w["exitCode"], &w["destroyed"]), (&json!(143), &json!(false)), "{w}");
        assert_eq!(w["reason"], "inactivity_timeout", "{w}");
        let s = d.status("idle").await?;
        assert_eq!((&s["running"], &s["exitReason"], &s["exitCode"]), (&json!(false), &json!("inactivity_timeout"), &json!(143)), "{s}");
        d.stop().await
    }
}

docker_test! {
    /// The proxy keeps an app alive: with traffic, the timeout does not fire.
    async fn inactivity_timeout_is_reset_by_traffic() -> anyhow::Result<()> {
        let d = TestDaemon::spawn().await?;
        d.start_app("busy", &[]).await?;
        let reply = d.request(Method::PUT, "/v1/containers/busy/inactivity-timeout", Some(json!({"ms": 1500}))).await?;
        assert_eq!(reply.status, 204, "{reply:?}");
        for _ in 0..8 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            d.wait_healthy("busy").await?;
        }
        assert_eq!(d.status("busy").await?["running"], true, "3.2 s of traffic every 0.4 s kept it running");
        d.stop().await
    }
}

docker_test! {
    /// `hardTimeoutMs` kills the app when it elapses; wait and status say why.
    async fn hard_timeout_kills_the_app() -> anyhow::Result<()> {
        let d = TestDaemon::spawn().await?;
        d.start("hard", json!({"image": TESTAPP, "hardTimeoutMs": 1000})).await?;
        let w = d.wait("hard").await?;
        assert_eq!((&w["exitCode"], &w["destroyed"], &w["reason"]), (&json!(137), &json!(false), &json!("hard_timeout")), "{w}");
        let s = d.status("hard").await?;
        assert_eq!((&s["running"], &s["exitReason"]), (&json!(false), &json!("hard_timeout")), "{s}");
        d.stop().await
    }
}

docker_test! {
    /// `instance` becomes cgroup limits on the app container.
    // See: W15.
    async fn instance_shape_becomes_limits() -> anyhow::Result<()> {
        let d = TestDaemon::spawn().await?;
        let body = json!({"image": TESTAPP, "instance": {"vcpu": 0.5, "memoryMib": 256}});
        d.start("shape", body).await?;
        let app = format!("wharf-{}-shape", d.name());
        let limits = docker(&["inspect", "--format", "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}}", &app]);
        assert_eq!(limits.trim(), format!("500000000 {}", 256 << 20), "docker inspect {app}");
        d.stop().await
    }
}

docker_test! {
    /// Ids at the edges of `[A-Za-z0-9_.-]{1,128}` make valid Docker names and work end to
    /// end, dot segments included.
    // See: W27.
    async fn edge_ids_work_end_to_end() -> anyhow::Result<()> {
        let d = TestDaemon::spawn().await?;
        let long = format!("A.b_c-{}", "z".repeat(122));
        for id in ["..", "-", long.as_str()] {
            d.start_app(id, &[]).await?;
            let s = d.status(id).await?;
            assert_eq!((&s["id"], &s["running"]), (&json!(id), &json!(true)), "{s}");
            d.destroy(id).await?;
            assert_eq!(d.wait(id).await?["destroyed"], true);
        }
        d.stop().await
    }
}

docker_test! {
    /// A sidecar removed behind the engine's back breaks ingress with a 502, and destroy then
    /// start recover with a fresh pair (wharf never reuses a sidecar it has not checked).
    // See: W2.
    async fn a_lost_sidecar_is_replaced_by_the_next_start() -> anyhow::Result<()> {
        let d = TestDaemon::spawn().await?;
        d.start_app("sc", &[]).await?;
        let sidecar = format!("wharf-{}-sc-sidecar", d.name());
        docker(&["rm", "-f", &sidecar]);
        let reply = d.request(Method::GET, "/v1/containers/sc/http/8080/", None).await?;
        assert_eq!(reply.status, 502, "{reply:?}");
        d.destroy("sc").await?;
        d.start_app("sc", &[]).await?;
        assert_eq!(d.wait_healthy("sc").await?, "Hello World!");
        d.stop().await
    }
}
