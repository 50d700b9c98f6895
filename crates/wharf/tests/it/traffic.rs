//! Traffic into the app: raw ports, the HTTP proxy (WebSockets included), exec, the default
//! environment, and logs.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use wharf::client::{ClientError, DaemonAddr, Reply};

use crate::harness::{TestDaemon, connect, docker, expect_error, raw, read_until};

docker_test! {
    /// `ports/{p}` with `Upgrade: tcp` is a raw stream to the app's port; a port nobody
    /// listens on is 502 with the Container API's exact message; a stopped app is 409.
    // See: spec §5.3 #8.
    async fn ports_raw_stream_and_not_listening() -> anyhow::Result<()> {
        let d = TestDaemon::spawn().await?;
        d.start_app("p", &["TCP_PORT=9000"]).await?;

        let mut stream = d.client().upgrade("/v1/containers/p/ports/9000", "tcp").await?;
        stream.write_all(b"hi").await?;
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await??;
        assert_eq!(String::from_utf8_lossy(&answer), "echo:hi");

        let addr = d.client().addr().clone();
        let upgrade = [("connection", "Upgrade"), ("upgrade", "tcp")];
        let (status, _, body) = raw(&addr, Method::GET, "/v1/containers/p/ports/8081", &upgrade, "").await?;
        let message = expect_error(&Reply { status, body }, 502, "port_not_listening")?;
        assert_eq!(message, "Container is not listening to port 8081");
        let proxied = d.request(Method::GET, "/v1/containers/p/http/8081/", None).await?;
        let message = expect_error(&proxied, 502, "port_not_listening")?;
        assert_eq!(message, "Container is not listening to port 8081");

        d.destroy("p").await?;
        let (status, _, body) = raw(&addr, Method::GET, "/v1/containers/p/ports/9000", &upgrade, "").await?;
        expect_error(&Reply { status, body }, 409, "not_running")?;
        match d.client().upgrade("/v1/containers/never/ports/9000", "tcp").await {
            Err(ClientError::Api { status, code, .. }) => assert_eq!((status.as_u16(), code.as_str()), (409, "not_running")),
            Ok(_) => anyhow::bail!("a never-started id opened a stream"),
            Err(e) => return Err(e.into()),
        }
        let proxied = d.request(Method::GET, "/v1/containers/p/http/8080/", None).await?;
        expect_error(&proxied, 409, "not_running")?;
        d.stop().await
    }
}

docker_test! {
    /// The HTTP proxy carries method, query and body both ways, and a WebSocket upgrade.
    // See: spec §5.3 #7.
    async fn http_proxy_carries_bodies_and_websockets() -> anyhow::Result<()> {
        let d = TestDaemon::spawn().await?;
        d.start("web", json!({"image": crate::harness::TESTAPP, "env": ["WS_ENABLED=true"]})).await?;
        assert_eq!(d.wait_healthy("web").await?, "Hello World!");

        let addr = d.client().addr().clone();
        let content = "written through the proxy ✓\nsecond line\n";
        let (status, _, body) =
            raw(&addr, Method::POST, "/v1/containers/web/http/8080/write-file?path=/tmp/x", &[], content).await?;
        assert_eq!((status, String::from_utf8_lossy(&body).as_ref()), (StatusCode::OK, "ok"));
        let (status, _, body) = raw(&addr, Method::GET, "/v1/containers/web/http/8080/read-file?path=/tmp/x", &[], "").await?;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(String::from_utf8_lossy(&body), content);
        let (status, _, _) = raw(&addr, Method::GET, "/v1/containers/web/http/8080/read-file?path=/tmp/nope", &[], "").await?;
        assert_eq!(status, StatusCode::NOT_FOUND, "the app's own status comes back");

        // The query goes through still encoded, and one client connection carries several
        // proxied requests (keep-alive).
        let io = connect(&addr).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io)).await?;
        tokio::spawn(conn);
        let send = |method: Method, path: &str, body: &'static str| {
            http::Request::builder().method(method).uri(path).header("host", "wharf").body(http_body_util::Full::new(bytes::Bytes::from_static(body.as_bytes())))
        };
        let path = "/v1/containers/web/http/8080/write-file?path=/tmp/a%20b%26c";
        let res = sender.send_request(send(Method::POST, path, "spaced")?).await?;
        assert_eq!(res.status(), StatusCode::OK);
        http_body_util::BodyExt::collect(res.into_body()).await?;
        sender.ready().await?;
        let path = "/v1/containers/web/http/8080/read-file?path=/tmp/a%20b%26c";
        let res = sender.send_request(send(Method::GET, path, "")?).await?;
        assert_eq!(res.status(), StatusCode::OK, "second request on the same connection");
        let body = http_body_util::BodyExt::collect(res.into_body()).await?.to_bytes();
        assert_eq!(&body[..], b"spaced");
        let r = d.exec("web", json!({"cmd": ["cat", "/tmp/a b&c"]})).await?;
        assert_eq!(r["stdout"], "spaced", "{r}");

        let DaemonAddr::Unix(_) = &addr else { anyhow::bail!("expected a unix socket") };
        let io = connect(&addr).await?;
        let (mut ws, res) = tokio_tungstenite::client_async("ws://wharf/v1/containers/web/http/8080/ws", io).await?;
        assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
        let upgrade = res.headers().get("upgrade").and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(upgrade.eq_ignore_ascii_case("websocket"), "{:?}", res.headers());
        ws.send(Message::Text("Hello WebSocket!".into())).await?;
        let echo = tokio::time::timeout(Duration::from_secs(10), ws.next()).await?;
        match echo {
            Some(Ok(Message::Text(text))) => assert_eq!(text.as_str(), "Echo: Hello WebSocket!"),
            other => anyhow::bail!("expected the echo, got {other:?}"),
        }
        ws.close(None).await?;
        d.stop().await
    }
}

docker_test! {
    /// Run-to-completion exec: separate and combined output, exit code, cwd, env, user; a
    /// stopped container refuses.
    // See: spec §5.3 #3 (cases 4–9).
    async fn exec_output_exit_code_cwd_env_and_user() -> anyhow::Result<()> {
        let d = TestDaemon::spawn().await?;
        d.start("x", json!({"image": crate::harness::TESTAPP, "env": ["GREETING=start", "KEEP=kept"]})).await?;
        let sh = |script: &str| json!(["/bin/sh", "-c", script]);

        let r = d.exec("x", json!({"cmd": sh("echo out; echo err >&2; exit 7")})).await?;
        assert_eq!(r, json!({"exitCode": 7, "stdout": "out\n", "stderr": "err\n"}));

        let r = d.exec("x", json!({"cmd": sh("echo out; echo err >&2"), "combinedOutput": true})).await?;
        assert_eq!((&r["exitCode"], &r["stderr"]), (&json!(0), &json!("")), "{r}");
        let both = r["stdout"].as_str().unwrap_or_default();
        assert!(both == "out\nerr\n" || both == "err\nout\n", "{r}");

        let r = d.exec("x", json!({"cmd": ["pwd"], "cwd": "/tmp"})).await?;
        assert_eq!(r["stdout"], "/tmp\n", "{r}");

        let r = d.exec("x", json!({"cmd": sh("echo $GREETING $KEEP $EXTRA"), "env": ["GREETING=overridden", "EXTRA=per-exec"]})).await?;
        assert_eq!(r["stdout"], "overridden kept per-exec\n", "{r}");

        let r = d.exec("x", json!({"cmd": ["id", "-u"], "user": "nobody"})).await?;
        assert_eq!((&r["stdout"], &r["exitCode"]), (&json!("65534\n"), &json!(0)), "{r}");
        let r = d.exec("x", json!({"cmd": ["id", "-u"]})).await?;
        assert_eq!(r["stdout"], "0\n", "{r}");

        // No stdin: `cat` sees EOF at once and ends (spec #3 case 12).
        let r = d.exec("x", json!({"cmd": ["cat"]})).await?;
        assert_eq!(r, json!({"exitCode": 0, "stdout": "", "stderr": ""}));

        // Both streams at once, 4 MiB each, arrive whole (spec #3 case 10, scaled down).
        let script = "(yes o | head -c 4194304) & (yes e | head -c 4194304 >&2) & wait";
        let r = d.exec("x", json!({"cmd": sh(script)})).await?;
        let (out, err) = (r["stdout"].as_str().unwrap_or_default(), r["stderr"].as_str().unwrap_or_default());
        assert_eq!((out.len(), err.len(), &r["exitCode"]), (4 << 20, 4 << 20, &json!(0)));
        assert!(out.bytes().all(|b| b == b'o' || b == b'\n') && err.bytes().all(|b| b == b'e' || b == b'\n'));

        // A long exec holds nothing up: labels and destroy go through while it runs, and the
        // destroy ends it (SIGKILL: 137).
        let long = {
            let client = d.client().clone();
            tokio::spawn(async move { client.json::<serde_json::Value>(Method::POST, "/v1/containers/x/exec", Some(&json!({"cmd": ["sleep", "60"]}))).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let reply = d.request(Method::PUT, "/v1/containers/x/labels", Some(json!({"during": "exec"}))).await?;
        assert_eq!(reply.status, 204, "{reply:?}");
        assert!(!long.is_finished(), "the exec ended early: {:?}", long.await?);
        d.destroy("x").await?;
        let r = long.await??;
        assert_eq!(r["exitCode"], 137, "{r}");

        let reply = d.request(Method::POST, "/v1/containers/x/exec", Some(json!({"cmd": ["true"]}))).await?;
        expect_error(&reply, 409, "not_running")?;
        let reply = d.request(Method::POST, "/v1/containers/never/exec", Some(json!({"cmd": ["true"]}))).await?;
        expect_error(&reply, 409, "not_running")?;
        d.stop().await
    }
}

docker_test! {
    /// The `CLOUDFLARE_*` defaults are there, and a user entry replaces one instead of being
    /// shadowed by it; no name appears twice in the container's env.
    // See: W28, spec §4.6.
    async fn cloudflare_defaults_are_present_and_overridable() -> anyhow::Result<()> {
        let d = TestDaemon::spawn().await?;
        d.start("cf", json!({"image": crate::harness::TESTAPP, "env": ["CLOUDFLARE_REGION=EU"]})).await?;
        let r = d.exec("cf", json!({"cmd": ["/bin/sh", "-c", "echo $CLOUDFLARE_REGION $CLOUDFLARE_LOCATION $CLOUDFLARE_COUNTRY_A2"]})).await?;
        assert_eq!(r["stdout"], "EU loc01 XX\n", "{r}");
        let app = format!("wharf-{}-cf", d.name());
        let env = docker(&["inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", &app]);
        let regions: Vec<&str> = env.lines().filter(|l| l.starts_with("CLOUDFLARE_REGION=")).collect();
        assert_eq!(regions, ["CLOUDFLARE_REGION=EU"], "{env}");
        for name in ["CLOUDFLARE_DEPLOYMENT_ID", "CLOUDFLARE_APPLICATION_ID", "CLOUDFLARE_DURABLE_OBJECT_ID"] {
            assert_eq!(env.lines().filter(|l| l.starts_with(&format!("{name}="))).count(), 1, "{name} in {env}");
        }
        d.stop().await
    }
}

docker_test! {
    /// `logs` has the app's startup line; `follow=true` streams lines printed later and ends
    /// when the app exits.
    async fn logs_and_follow() -> anyhow::Result<()> {
        let d = TestDaemon::spawn().await?;
        let none = d.request(Method::GET, "/v1/containers/never/logs", None).await?;
        assert!(none.status.is_client_error(), "logs of a never-started id: {none:?}");

        d.start_app("log", &[]).await?;
        let all = d.request(Method::GET, "/v1/containers/log/logs", None).await?;
        assert_eq!(all.status, 200);
        let text = String::from_utf8_lossy(&all.body);
        assert!(text.contains("listening"), "startup line missing: {text:?}");

        let mut follow = d.client().stream(Method::GET, "/v1/containers/log/logs?follow=true").await?.into_body();
        let mut seen = String::new();
        read_until(&mut follow, &mut seen, |t| t.contains("listening")).await?;
        let marker = "wharf-it-log-marker";
        let r = d.exec("log", json!({"cmd": ["/bin/sh", "-c", format!("echo {marker} > /proc/1/fd/1")]})).await?;
        assert_eq!(r["exitCode"], 0, "{r}");
        read_until(&mut follow, &mut seen, |t| t.contains(marker)).await?;
        let reply = d.request(Method::POST, "/v1/containers/log/signal", Some(json!({"signal": 15}))).await?;
        assert_eq!(reply.status, 204);
        read_until(&mut follow, &mut seen, |t| t.contains("exiting on signal")).await?;
        // The app has exited: the followed stream ends.
        let ended = read_until(&mut follow, &mut seen, |_| false).await;
        let ended = ended.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(ended.starts_with("stream ended"), "{ended}");
        d.stop().await
    }
}
