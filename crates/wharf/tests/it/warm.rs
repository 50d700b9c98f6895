//! Warm sidecars (issue 5, seed 000) against the real daemon on the fake internet: a destroyed
//! app's sidecar is reused by the next start of the same id, with that start's egress config
//! in force (internet off, then on, then a new allow-list), and one that died in between is
//! replaced without the caller seeing an error (W2). With a warm pool, a first start claims a
//! pooled sidecar, and nothing of the pool outlives the daemon.

use serde_json::json;

use crate::fakenet::{FakeNet, HttpBinding, intercept, map};
use crate::harness::{TESTAPP, TestDaemon, docker};

/// Starts the test app as `id`, internet on or off, and waits until it answers.
async fn start(d: &TestDaemon, id: &str, internet: bool) -> anyhow::Result<()> {
    d.start(id, json!({"image": TESTAPP, "enableInternet": internet})).await?;
    d.wait_healthy(id).await.map(drop)
}

/// The Docker id of `id`'s sidecar, and whether it runs.
fn sidecar(d: &TestDaemon, id: &str) -> (String, bool) {
    let name = format!("wharf-{}-{id}-sidecar", d.name());
    let out = docker(&["inspect", "-f", "{{.Id}} {{.State.Running}}", &name]);
    let mut words = out.split_whitespace();
    let docker_id = words.next().unwrap_or_default().to_owned();
    (docker_id, words.next() == Some("true"))
}

async fn metric(d: &TestDaemon, name: &str) -> anyhow::Result<String> {
    let reply = d.request(http::Method::GET, "/metrics", None).await?;
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    Ok(text.lines().find_map(|l| l.strip_prefix(&format!("{name} "))).unwrap_or("-").to_owned())
}

docker_test! {
    /// The same sidecar serves three runs, and each run's policy is the one in force.
    async fn warm_reuse_applies_each_starts_policy() -> anyhow::Result<()> {
        let net = FakeNet::get().await?;
        let d = net.daemon().await?;
        let binding = HttpBinding::spawn("allowed").await?;

        start(&d, "w", false).await?;
        let (first, _) = sidecar(&d, "w");
        assert_eq!(intercept(&d, "w", "real.test:8080").await?, "500 real.test:8080 fetch failed", "internet off");
        d.destroy("w").await?;
        assert_eq!(sidecar(&d, "w"), (first.clone(), true), "the sidecar stays up after destroy");

        start(&d, "w", true).await?;
        assert_eq!(sidecar(&d, "w").0, first, "reused");
        assert_eq!(intercept(&d, "w", "real.test:8080").await?, "200 Hello World!", "internet on");
        d.destroy("w").await?;

        map(&d, "w", "http", "allowed.test", &binding.target()).await?;
        start(&d, "w", false).await?;
        assert_eq!(sidecar(&d, "w").0, first, "reused again");
        assert_eq!(intercept(&d, "w", "allowed.test").await?, format!("200 hello binding: allowed http://allowed.test/"), "the new allow-list");
        assert_eq!(intercept(&d, "w", "real.test:8080").await?, "500 real.test:8080 fetch failed", "internet off again");
        assert_eq!(metric(&d, "wharf_warm_starts_total").await?, "2");
        d.stop().await
    }
}

docker_test! {
    /// A sidecar killed between destroy and start, or removed, is replaced in the same start.
    // See: W2.
    async fn a_dead_kept_sidecar_is_replaced_by_the_next_start() -> anyhow::Result<()> {
        let d = TestDaemon::spawn().await?;
        d.start_app("k", &[]).await?;
        let (first, _) = sidecar(&d, "k");
        d.destroy("k").await?;
        docker(&["kill", &first]);
        d.start_app("k", &[]).await?;
        let (second, running) = sidecar(&d, "k");
        assert!(running && second != first, "a fresh sidecar: {first} then {second}");
        assert_eq!(d.wait_healthy("k").await?, "Hello World!");
        d.destroy("k").await?;
        docker(&["rm", "-f", &second]);
        d.start_app("k", &[]).await?;
        assert_eq!(d.wait_healthy("k").await?, "Hello World!");
        assert_eq!(metric(&d, "wharf_warm_sidecars_replaced_total").await?, "2");
        assert_eq!(metric(&d, "wharf_warm_starts_total").await?, "0");
        d.stop().await
    }
}

docker_test! {
    /// A first start claims a pooled sidecar: the app runs in its namespace with the start's
    /// policy, the pool refills, and stopping the daemon removes the pool too.
    async fn a_first_start_claims_a_pooled_sidecar() -> anyhow::Result<()> {
        let d = TestDaemon::spawn_with_pool(1, 2).await?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while metric(&d, "wharf_pool_idle").await? != "1" {
            anyhow::ensure!(std::time::Instant::now() < deadline, "the pool never filled");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        d.start_app("p", &[]).await?;
        assert_eq!(metric(&d, "wharf_pooled_starts_total").await?, "1");
        let app = format!("wharf-{}-p", d.name());
        let joined = docker(&["inspect", "-f", "{{index .Config.Labels \"dev.wharf.sidecar\"}}", &app]);
        assert!(joined.trim().starts_with(&format!("wharf-{}-pool-", d.name())), "{joined}");
        assert_eq!(d.wait_healthy("p").await?, "Hello World!");
        let exec = d.exec("p", json!({"cmd": ["/bin/sh", "-c", "cat /etc/cloudflare/certs/cloudflare-containers-ca.crt | head -1"]})).await?;
        assert_eq!(exec["stdout"], "-----BEGIN CERTIFICATE-----\n", "the pooled sidecar's CA is trusted: {exec}");
        d.stop().await
    }
}
