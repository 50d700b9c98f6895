//! The real `wharf` binary: `serve` (address line, SIGTERM, adoption after SIGKILL, the
//! public-listen refusal), `gc`, the client verbs and `port-forward`.

use std::time::Duration;

use http::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use wharf::client::{Client, DaemonAddr};

use crate::harness::{
    Reaper, Serve, TESTAPP, engine_name, expect_error, owned_containers, signal_pid, start,
    wait_healthy, wharf, wharf_command,
};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

docker_test! {
    /// `serve --listen 127.0.0.1:0` prints its address first; SIGTERM exits 0 and removes the
    /// containers, the warm pool's included.
    async fn serve_prints_its_address_and_stops_on_sigterm() -> anyhow::Result<()> {
        let name = engine_name("itc");
        let _reaper = Reaper::new(&name);
        let state = tempfile::tempdir()?;
        let serve = Serve::spawn_with(&name, state.path(), &["--pool-min", "1", "--pool-max", "2"], &[]).await?;
        let client = serve.client();
        let health: Value = client.json(Method::GET, "/v1/health", None).await?;
        assert_eq!(health["engine"], name.as_str(), "{health}");
        pool_idle(&client, "1").await?;
        start(&client, "s", json!({"image": TESTAPP})).await?;
        pool_idle(&client, "1").await?;
        assert_eq!(owned_containers(&name, "{{.Names}}").len(), 3, "app, its sidecar, a pooled sidecar");

        // A second daemon of the same engine is refused while the first lives.
        let dir = state.path().to_str().unwrap_or_default().to_owned();
        let out = wharf(&["serve", "--listen", "127.0.0.1:0", "--name", &name, "--state-dir", &dir, "--upstream-dns", "127.0.0.1"]).await?;
        assert_ne!(out.status.code(), Some(0), "a second serve of {name} started");
        assert!(!text(&out.stdout).contains("listening on"), "{}", text(&out.stdout));
        assert!(text(&out.stderr).contains("error:"), "{}", text(&out.stderr));
        assert_eq!(owned_containers(&name, "{{.Names}}").len(), 3, "the refused daemon touched nothing");

        let log = serve.stderr();
        let status = serve.terminate().await?;
        assert!(status.success(), "exit {status:?}; stderr:\n{log}");
        let left = owned_containers(&name, "{{.Names}}");
        assert!(left.is_empty(), "left after SIGTERM: {left:?}");
        Ok(())
    }
}

docker_test! {
    /// After a SIGKILL the next `serve` of the same name adopts the running containers with
    /// their settings (labels; an inactivity timeout that then fires), the proxy reaches
    /// them, and destroy works.
    // See: W3, W4.
    async fn serve_adopts_after_sigkill() -> anyhow::Result<()> {
        let name = engine_name("itc");
        let _reaper = Reaper::new(&name);
        let state = tempfile::tempdir()?;
        let first = Serve::spawn(&name, state.path()).await?;
        let labels = json!({"tier": "gold", "who": "adopted ✓"});
        start(&first.client(), "keep", json!({"image": TESTAPP, "labels": labels, "enableInternet": true})).await?;
        start(&first.client(), "idle", json!({"image": TESTAPP})).await?;
        wait_healthy(&first.client(), "keep").await?;
        wait_healthy(&first.client(), "idle").await?;
        let timeout = json!({"ms": 4000});
        first.client().ok(Method::PUT, "/v1/containers/idle/inactivity-timeout", Some(&timeout)).await?;
        first.crash().await?;
        assert_eq!(owned_containers(&name, "{{.Names}}").len(), 4, "a crash leaves both pairs");

        let second = Serve::spawn(&name, state.path()).await?;
        let client = second.client();
        let s: Value = client.json(Method::GET, "/v1/containers/keep", None).await?;
        assert_eq!((&s["running"], &s["image"], &s["labels"]), (&json!(true), &json!(TESTAPP), &labels), "{s}");
        let list: Value = client.json(Method::GET, "/v1/containers", None).await?;
        assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
        assert_eq!(wait_healthy(&client, "keep").await?, "Hello World!");
        let metrics = client.ok(Method::GET, "/metrics", None).await?;
        let adopted = crate::harness::metric(&text(&metrics.body), "wharf_adopted_total");
        assert_eq!(adopted, Some(2.0), "{}", text(&metrics.body));

        // The inactivity timeout set before the crash still applies.
        let w: Value = client.json(Method::POST, "/v1/containers/idle/wait", None).await?;
        assert_eq!((&w["exitCode"], &w["reason"]), (&json!(143), &json!("inactivity_timeout")), "{w}");

        client.ok(Method::POST, "/v1/containers/keep/destroy", None).await?;
        let w: Value = client.json(Method::POST, "/v1/containers/keep/wait", None).await?;
        assert_eq!((&w["exitCode"], &w["destroyed"]), (&json!(137), &json!(true)), "{w}");
        let names = owned_containers(&name, "{{.Names}}");
        let keep_sidecar = format!("wharf-{name}-keep-sidecar");
        assert!(names.iter().all(|n| n.contains("-idle") || *n == keep_sidecar), "keep's app is gone, its sidecar kept warm: {names:?}");
        let log = second.stderr();
        let status = second.terminate().await?;
        assert!(status.success(), "exit {status:?}; stderr:\n{log}");
        assert!(owned_containers(&name, "{{.Names}}").is_empty(), "serve reaped the rest at SIGTERM");
        Ok(())
    }
}

docker_test! {
    /// `wharf gc` removes a crashed engine's app and sidecar, and spares a live engine.
    async fn gc_removes_a_dead_engine_and_spares_a_live_one() -> anyhow::Result<()> {
        let name = engine_name("itc");
        let _reaper = Reaper::new(&name);
        let state = tempfile::tempdir()?;
        let serve = Serve::spawn(&name, state.path()).await?;
        start(&serve.client(), "g", json!({"image": TESTAPP})).await?;

        // Live: nothing of it is removed.
        let out = wharf(&["gc", "--engine", &name, "--json"]).await?;
        assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
        let report: Value = serde_json::from_slice(&out.stdout)?;
        assert_eq!(report["removed"], json!([]), "{report}");
        assert_eq!(report["liveEngines"], json!([name]), "{report}");
        assert_eq!(owned_containers(&name, "{{.Names}}").len(), 2);

        serve.crash().await?;
        let out = wharf(&["gc", "--engine", &name, "--json", "--dry-run"]).await?;
        assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
        let report: Value = serde_json::from_slice(&out.stdout)?;
        assert_eq!(report["dryRun"], true, "{report}");
        assert_eq!(report["removed"].as_array().map(Vec::len), Some(2), "{report}");
        assert_eq!(owned_containers(&name, "{{.Names}}").len(), 2, "a dry run removes nothing");

        let out = wharf(&["gc", "--engine", &name, "--json"]).await?;
        assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
        let report: Value = serde_json::from_slice(&out.stdout)?;
        let mut removed: Vec<&str> = report["removed"].as_array().into_iter().flatten().filter_map(|o| o["name"].as_str()).collect();
        removed.sort_unstable();
        let app = format!("wharf-{name}-g");
        let sidecar = format!("{app}-sidecar");
        assert_eq!(removed, [app.as_str(), sidecar.as_str()], "{report}");
        assert!(report["removed"].as_array().into_iter().flatten().all(|o| o["kind"] == "container"), "{report}");
        assert_eq!(report["liveEngines"], json!([]), "{report}");
        assert_eq!(report["failures"], json!([]), "{report}");
        let left = owned_containers(&name, "{{.Names}}");
        assert!(left.is_empty(), "left after gc: {left:?}");
        Ok(())
    }
}

docker_test! {
    /// The client verbs against a running `serve`, their exit codes, and the error line.
    async fn cli_verbs_against_serve() -> anyhow::Result<()> {
        let name = engine_name("itc");
        let _reaper = Reaper::new(&name);
        let state = tempfile::tempdir()?;
        let serve = Serve::spawn(&name, state.path()).await?;
        let url = serve.url();
        let run = |args: &[&str]| {
            let mut all = vec!["--url", url.as_str()];
            all.extend_from_slice(args);
            let all: Vec<String> = all.into_iter().map(str::to_owned).collect();
            async move {
                let refs: Vec<&str> = all.iter().map(String::as_str).collect();
                wharf(&refs).await
            }
        };

        let out = run(&["start", "c1", "--image", TESTAPP, "--label", "k=v", "--", "/bin/sh", "-c", "sleep 600"]).await?;
        assert_eq!(out.status.code(), Some(0), "start: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout).trim(), "started c1");

        let out = run(&["status", "c1", "--json"]).await?;
        assert_eq!(out.status.code(), Some(0), "status: {}", text(&out.stderr));
        let s: Value = serde_json::from_slice(&out.stdout)?;
        assert_eq!((&s["id"], &s["running"], &s["labels"]), (&json!("c1"), &json!(true), &json!({"k": "v"})), "{s}");

        let out = run(&["ps", "--json"]).await?;
        assert_eq!(out.status.code(), Some(0), "ps: {}", text(&out.stderr));
        let list: Value = serde_json::from_slice(&out.stdout)?;
        assert!(list.as_array().is_some_and(|l| l.iter().any(|c| c["id"] == "c1" && c["running"] == true)), "{list}");

        let out = run(&["exec", "c1", "--", "/bin/sh", "-c", "echo hi; exit 5"]).await?;
        assert_eq!(out.status.code(), Some(5), "exec: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "hi\n");

        let out = run(&["signal", "c1", "KILL"]).await?;
        assert_eq!(out.status.code(), Some(0), "signal: {}", text(&out.stderr));
        let out = run(&["wait", "c1", "--json"]).await?;
        assert_eq!(out.status.code(), Some(0), "wait: {}", text(&out.stderr));
        let w: Value = serde_json::from_slice(&out.stdout)?;
        assert_eq!((&w["exitCode"], &w["destroyed"]), (&json!(137), &json!(false)), "{w}");

        let out = run(&["destroy", "c1"]).await?;
        assert_eq!(out.status.code(), Some(0), "destroy: {}", text(&out.stderr));
        assert_eq!(owned_containers(&name, "{{.Names}}"), [format!("wharf-{name}-c1-sidecar")], "only the sidecar, kept warm");

        // Errors: one `error:` line on stderr and a non-zero exit.
        for args in [&["status", "bad id"][..], &["signal", "c1", "KILL"][..], &["exec", "c1", "--", "true"][..]] {
            let out = run(args).await?;
            let err = text(&out.stderr);
            assert_ne!(out.status.code(), Some(0), "{args:?} succeeded");
            assert_eq!(err.lines().count(), 1, "{args:?}: one line on stderr: {err:?}");
            assert!(err.starts_with("error: "), "{args:?}: {err:?}");
        }
        let out = run(&["status", "c1", "--no-such-flag"]).await?;
        assert_eq!(out.status.code(), Some(64), "unknown flag: {}", text(&out.stderr));

        let log = serve.stderr();
        let status = serve.terminate().await?;
        assert!(status.success(), "exit {status:?}; stderr:\n{log}");
        Ok(())
    }
}

docker_test! {
    /// `port-forward ID 0:8080` prints its local address; HTTP to it reaches the app.
    async fn port_forward_reaches_the_app() -> anyhow::Result<()> {
        let name = engine_name("itc");
        let _reaper = Reaper::new(&name);
        let state = tempfile::tempdir()?;
        let serve = Serve::spawn(&name, state.path()).await?;
        start(&serve.client(), "pf", json!({"image": TESTAPP})).await?;
        wait_healthy(&serve.client(), "pf").await?;

        let url = serve.url();
        let mut forward = wharf_command(&["--url", &url, "port-forward", "pf", "0:8080"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let stdout = forward.stdout.take().ok_or_else(|| anyhow::anyhow!("stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await??.unwrap_or_default();
        let local = line
            .strip_prefix("forwarding ")
            .and_then(|rest| rest.split_once(" -> "))
            .map(|(local, _)| local.to_owned())
            .ok_or_else(|| anyhow::anyhow!("unexpected first line {line:?}"))?;
        assert!(local.starts_with("127.0.0.1:") && !local.ends_with(":0"), "{line}");

        let mut conn = TcpStream::connect(&local).await?;
        conn.write_all(b"GET / HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n").await?;
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut answer)).await??;
        let answer = text(&answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("Hello World!"), "{answer}");

        let pid = forward.id().ok_or_else(|| anyhow::anyhow!("port-forward exited early"))?;
        signal_pid(pid, "INT")?;
        let status = tokio::time::timeout(Duration::from_secs(10), forward.wait()).await??;
        assert!(status.success(), "port-forward after SIGINT: {status:?}");

        let log = serve.stderr();
        let status = serve.terminate().await?;
        assert!(status.success(), "exit {status:?}; stderr:\n{log}");
        Ok(())
    }
}

docker_test! {
    /// A non-loopback listener without a token is refused before anything starts.
    async fn serve_refuses_a_public_listener_without_a_token() -> anyhow::Result<()> {
        let name = engine_name("itc");
        let _reaper = Reaper::new(&name);
        let state = tempfile::tempdir()?;
        let dir = state.path().to_str().unwrap_or_default().to_owned();
        let out = wharf(&["serve", "--listen", "0.0.0.0:0", "--name", &name, "--state-dir", &dir]).await?;
        let err = text(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "serve on 0.0.0.0 without a token started; stdout {}", text(&out.stdout));
        assert!(!text(&out.stdout).contains("listening on"), "{}", text(&out.stdout));
        assert!(err.contains("--token"), "the refusal must say how to fix it: {err:?}");
        Ok(())
    }
}

docker_test! {
    /// With `WHARF_TOKEN` set, `serve` requires `Authorization: Bearer <token>` (401 JSON
    /// otherwise), and the CLI's `--token` sends it.
    async fn serve_with_a_token_requires_it() -> anyhow::Result<()> {
        let name = engine_name("itc");
        let _reaper = Reaper::new(&name);
        let state = tempfile::tempdir()?;
        let serve = Serve::spawn_with(&name, state.path(), &[], &[("WHARF_TOKEN", "s3cret")]).await?;
        let addr = DaemonAddr::Tcp(serve.addr.clone());

        let anonymous = Client::new(addr.clone(), None).request(Method::GET, "/v1/health", None).await?;
        expect_error(&anonymous, 401, "unauthorized")?;
        let wrong = Client::new(addr.clone(), Some("nope".to_owned())).request(Method::GET, "/v1/health", None).await?;
        expect_error(&wrong, 401, "unauthorized")?;
        let right = Client::new(addr, Some("s3cret".to_owned())).request(Method::GET, "/v1/health", None).await?;
        assert_eq!(right.status, 200, "{right:?}");

        let url = serve.url();
        let out = wharf(&["--url", &url, "--token", "s3cret", "health", "--json"]).await?;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let out = wharf(&["--url", &url, "health"]).await?;
        assert_ne!(out.status.code(), Some(0));
        assert!(text(&out.stderr).starts_with("error: "), "{}", text(&out.stderr));

        let log = serve.stderr();
        let status = serve.terminate().await?;
        assert!(status.success(), "exit {status:?}; stderr:\n{log}");
        Ok(())
    }
}

docker_test! {
    /// `serve --keep-containers` leaves them at SIGTERM, and the next `serve` adopts them.
    async fn serve_keep_containers_hands_over_to_the_next_serve() -> anyhow::Result<()> {
        let name = engine_name("itc");
        let _reaper = Reaper::new(&name);
        let state = tempfile::tempdir()?;
        let first = Serve::spawn_with(&name, state.path(), &["--keep-containers"], &[]).await?;
        start(&first.client(), "kept", json!({"image": TESTAPP, "labels": {"a": "1"}})).await?;
        let status = first.terminate().await?;
        assert!(status.success(), "exit {status:?}");
        assert_eq!(owned_containers(&name, "{{.Names}}").len(), 2, "--keep-containers kept both");

        let second = Serve::spawn(&name, state.path()).await?;
        let s: Value = second.client().json(Method::GET, "/v1/containers/kept", None).await?;
        assert_eq!((&s["running"], &s["labels"]), (&json!(true), &json!({"a": "1"})), "{s}");
        assert_eq!(wait_healthy(&second.client(), "kept").await?, "Hello World!");
        let status = second.terminate().await?;
        assert!(status.success(), "exit {status:?}");
        assert!(owned_containers(&name, "{{.Names}}").is_empty(), "the second serve reaps");
        Ok(())
    }
}

/// Waits until the daemon's warm pool holds `n` ready sidecars.
async fn pool_idle(client: &Client, n: &str) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let reply = client.ok(Method::GET, "/metrics", None).await?;
        let text = text(&reply.body);
        if text.lines().any(|l| l.strip_prefix("wharf_pool_idle ") == Some(n)) {
            return Ok(());
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "the pool never held {n}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
