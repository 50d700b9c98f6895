//! Tier-1 tests of the engine's verbs against the fake Docker and fake sidecar control: the
//! lifecycle semantics of spec §2, the queue (W1), timeouts under paused time, adoption.

use std::time::Duration;

use futures_util::FutureExt;

use crate::docker::fake::{Call, Op, SignalReaction};
use crate::docker::{self, DockerApi, NetworkMode, RunState};
use crate::lifecycle::{ExitReason, Status};
use crate::params::{ExecParams, ImageRef, Labels, Signal};
use crate::{Error, labels};

use crate::testing::{APP, IMAGE, SIDECAR, harness, id, params};

fn labels_of(pairs: &[(&str, &str)]) -> Labels {
    Labels::new(pairs.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()).unwrap()
}

#[tokio::test]
async fn start_builds_sidecar_then_app_in_its_namespace() {
    let h = harness().await;
    h.engine.start(&id("c1"), params()).await.unwrap();
    let status = h.engine.status(&id("c1")).snapshot;
    assert_eq!(status.status, Status::Running);
    assert_eq!(status.image.as_deref(), Some(IMAGE));

    assert_eq!(h.docker.spec(APP).unwrap().network, NetworkMode::Container(SIDECAR.to_owned()));
    let calls = h.docker.calls();
    let pos = |c: Call| calls.iter().position(|x| *x == c).unwrap();
    assert!(
        pos(Call::StartContainer(SIDECAR.to_owned())) < pos(Call::CreateContainer(APP.to_owned()))
    );
    // Readiness (a PUT /egress) came before the app existed.
    let puts = h.control.puts();
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0].1.internet.map(|i| i.enabled), Some(false));
    // The sidecar image was built on first use, once.
    assert_eq!(h.docker.builds().len(), 1);
}

#[tokio::test]
async fn start_on_running_is_already_running() {
    let h = harness().await;
    h.engine.start(&id("c1"), params()).await.unwrap();
    let err = h.engine.start(&id("c1"), params()).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyRunning(_)), "{err:?}");
}

#[tokio::test]
async fn wait_after_destroy_is_137_destroyed_and_only_the_warm_sidecar_is_left() {
    let h = harness().await;
    h.engine.start(&id("c1"), params()).await.unwrap();
    let waiter = tokio::spawn({
        let engine = h.engine.clone();
        async move { engine.wait(&id("c1")).await }
    });
    tokio::task::yield_now().await;
    h.engine.destroy(&id("c1")).await.unwrap();
    let exit = waiter.await.unwrap().unwrap();
    assert_eq!((exit.code, exit.reason), (137, ExitReason::Destroyed));
    let again = h.engine.wait(&id("c1")).await.unwrap();
    assert!(again.destroyed());
    assert_eq!(h.docker.container_names(), [SIDECAR], "the sidecar stays warm");
    assert_eq!(h.engine.status(&id("c1")).snapshot.sidecar, None);
    // Destroying again, or destroying what never ran, is fine.
    h.engine.destroy(&id("c1")).await.unwrap();
    h.engine.destroy(&id("never")).await.unwrap();
    // The engine's shutdown removes the kept sidecar too.
    h.engine.shutdown().await;
    assert!(h.docker.container_names().is_empty(), "{:?}", h.docker.container_names());
}

/// Seed 000: the next start reuses the kept sidecar, pushing the current config to it first.
#[tokio::test]
async fn a_start_after_destroy_reuses_the_sidecar_with_the_new_config() {
    let h = harness().await;
    h.engine.start(&id("c1"), params()).await.unwrap();
    let token = h.token();
    h.engine.destroy(&id("c1")).await.unwrap();
    h.docker.clear_calls();
    let puts_before = h.control.puts().len();
    let mut events = h.engine.subscribe();
    let mut p = params();
    p.enable_internet = true;
    h.engine.start(&id("c1"), p).await.unwrap();
    let calls = h.docker.calls();
    assert!(!calls.contains(&Call::CreateContainer(SIDECAR.to_owned())), "{calls:?}");
    assert!(calls.contains(&Call::CreateContainer(APP.to_owned())), "{calls:?}");
    assert_eq!(h.token(), token, "the same sidecar");
    let puts = h.control.puts();
    assert_eq!(puts.len(), puts_before + 1, "the check pushed the config once");
    assert_eq!(puts.last().and_then(|p| p.1.internet).map(|i| i.enabled), Some(true));
    let started = loop {
        let event = events.recv().await.unwrap();
        if let crate::events::EventKind::Started { sidecar, .. } = event.kind {
            break sidecar.is_warm();
        }
    };
    assert!(started, "the started event says the sidecar was warm");
    assert!(h.engine.metrics().contains("wharf_warm_starts_total 1"));
    // An app that exited on its own leaves its sidecar warm as well.
    h.docker.exit(APP, 0);
    h.engine.wait(&id("c1")).await.unwrap();
    h.docker.clear_calls();
    h.engine.start(&id("c1"), params()).await.unwrap();
    assert!(!h.docker.calls().contains(&Call::CreateContainer(SIDECAR.to_owned())));
    assert!(h.engine.metrics().contains("wharf_warm_starts_total 2"));
}

/// W2: a kept sidecar that fails its check is replaced in the same call, with no error.
#[tokio::test]
async fn a_kept_sidecar_that_fails_its_check_is_replaced() {
    let h = harness().await;
    h.engine.start(&id("c1"), params()).await.unwrap();
    let token = h.token();
    h.engine.destroy(&id("c1")).await.unwrap();
    h.control.refuse_puts(1);
    h.engine.start(&id("c1"), params()).await.unwrap();
    assert_ne!(h.token(), token, "a fresh sidecar");
    assert!(h.engine.status(&id("c1")).snapshot.status.is_running());
    assert!(h.engine.metrics().contains("wharf_warm_sidecars_replaced_total 1"));
    // And one removed behind our back too.
    h.engine.destroy(&id("c1")).await.unwrap();
    h.docker.remove_behind_our_back(SIDECAR);
    h.control.refuse_puts(1);
    h.engine.start(&id("c1"), params()).await.unwrap();
    assert_eq!(h.docker.state(SIDECAR), Some(RunState::Running));
}

/// A kept sidecar no start claims is removed after the warm TTL.
#[tokio::test(start_paused = true)]
async fn a_kept_sidecar_is_removed_after_the_warm_ttl() {
    let h = crate::testing::harness_with(|c| c.warm_ttl = Duration::from_secs(60)).await;
    h.engine.start(&id("c1"), params()).await.unwrap();
    h.engine.destroy(&id("c1")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(h.docker.container_names(), [SIDECAR]);
    tokio::time::sleep(Duration::from_secs(31)).await;
    h.engine.status(&id("c1"));
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(h.docker.container_names().is_empty(), "{:?}", h.docker.container_names());
}

#[tokio::test]
async fn a_clean_exit_is_reported_and_the_slot_restarts() {
    let h = harness().await;
    h.engine.start(&id("c1"), params()).await.unwrap();
    h.docker.exit(APP, 0);
    let exit = h.engine.wait(&id("c1")).await.unwrap();
    assert_eq!((exit.code, exit.reason), (0, ExitReason::Exited));
    let snap = h.engine.status(&id("c1")).snapshot;
    assert_eq!(snap.status.exit().map(|e| e.code), Some(0));
    assert!(snap.labels.is_empty());
    // Not restarted behind our back (W13), and a new start replaces the exited pair.
    assert_eq!(h.docker.state(APP), Some(RunState::Exited));
    h.engine.start(&id("c1"), params()).await.unwrap();
    assert_eq!(h.docker.state(APP), Some(RunState::Running));
}

#[tokio::test]
async fn wait_before_any_start_is_not_started() {
    let h = harness().await;
    assert!(matches!(h.engine.wait(&id("c1")).await, Err(Error::NotStarted(_))));
}

#[tokio::test]
async fn a_missing_image_is_404_and_leaves_nothing() {
    let h = harness().await;
    let mut p = params();
    p.image = ImageRef::new("nope:1").unwrap();
    let err = h.engine.start(&id("c1"), p).await.unwrap_err();
    assert!(matches!(err, Error::ImageNotFound { .. }), "{err:?}");
    assert!(h.docker.container_names().is_empty());
    assert_eq!(h.engine.status(&id("c1")).snapshot.status, Status::Empty);
}

#[tokio::test]
async fn readiness_retries_until_the_sidecar_answers() {
    let h = harness().await;
    h.control.refuse_puts(3);
    h.engine.start(&id("c1"), params()).await.unwrap();
    assert_eq!(h.control.puts().len(), 1);
}

#[tokio::test]
async fn a_sidecar_that_never_answers_fails_the_start_cleanly() {
    let h = harness().await;
    h.control.refuse_puts(usize::MAX);
    let err = h.engine.start(&id("c1"), params()).await.unwrap_err();
    assert!(err.to_string().contains("not ready"), "{err}");
    assert!(h.docker.container_names().is_empty(), "{:?}", h.docker.container_names());
}

#[tokio::test]
async fn a_failed_app_create_rolls_back_the_sidecar() {
    let h = harness().await;
    h.docker.fail_next(
        Op::StartContainer,
        docker::Error::Other { status: 500, message: "boom".to_owned() },
    );
    let err = h.engine.start(&id("c1"), params()).await.unwrap_err();
    assert!(matches!(err, Error::Docker { .. }), "{err:?}");
    assert!(h.docker.container_names().is_empty());
    h.engine.start(&id("c1"), params()).await.unwrap();
}

#[tokio::test]
async fn labels_replace_and_the_last_concurrent_write_wins() {
    let h = harness().await;
    let mut p = params();
    p.labels = labels_of(&[("a", "1"), ("b", "2")]);
    h.engine.start(&id("c1"), p).await.unwrap();
    let c1 = id("c1");
    let first = h.engine.set_labels(&c1, labels_of(&[("a", "1")]));
    let second = h.engine.set_labels(&c1, labels_of(&[("b", "2")]));
    let (r1, r2) = tokio::join!(first, second);
    r1.unwrap();
    r2.unwrap();
    let got: Vec<_> = h
        .engine
        .status(&id("c1"))
        .snapshot
        .labels
        .iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(got, [("b".to_owned(), "2".to_owned())]);
    h.engine.set_labels(&id("c1"), Labels::default()).await.unwrap();
    assert!(h.engine.status(&id("c1")).snapshot.labels.is_empty());
}

#[tokio::test]
async fn labels_and_signals_need_a_running_app() {
    let h = harness().await;
    assert!(matches!(
        h.engine.set_labels(&id("c1"), Labels::default()).await,
        Err(Error::NotRunning(_))
    ));
    assert!(matches!(h.engine.signal(&id("c1"), Signal::TERM).await, Err(Error::NotRunning(_))));
    h.engine.start(&id("c1"), params()).await.unwrap();
    h.engine.destroy(&id("c1")).await.unwrap();
    assert!(matches!(
        h.engine.set_labels(&id("c1"), Labels::default()).await,
        Err(Error::NotRunning(_))
    ));
}

/// See: W1. A queued call whose caller gave up is skipped; the calls behind it run.
#[tokio::test]
async fn a_cancelled_queued_call_does_not_poison_the_queue() {
    let h = harness().await;
    let gate = h.docker.gate(Op::InspectImage);
    let start = tokio::spawn({
        let engine = h.engine.clone();
        async move { engine.start(&id("c1"), params()).await }
    });
    gate.arrived(1).await;
    // Queue a labels call behind the blocked start, then give up on it.
    let c1 = id("c1");
    let mut labels_call = Box::pin(h.engine.set_labels(&c1, labels_of(&[("x", "1")])));
    assert!((&mut labels_call).now_or_never().is_none());
    drop(labels_call);
    let destroy = tokio::spawn({
        let engine = h.engine.clone();
        async move { engine.destroy(&id("c1")).await }
    });
    gate.open();
    start.await.unwrap().unwrap();
    destroy.await.unwrap().unwrap();
    assert!(h.engine.metrics().contains("wharf_skipped_calls_total 1\n"));
    // The queue still works.
    h.engine.start(&id("c1"), params()).await.unwrap();
    assert!(h.engine.status(&id("c1")).snapshot.status.is_running());
}

#[tokio::test]
async fn signals_1_to_64_are_delivered_as_numbers() {
    let h = harness().await;
    h.engine.start(&id("c1"), params()).await.unwrap();
    h.docker.on_signal(APP, 40, SignalReaction::Ignore);
    h.engine.signal(&id("c1"), Signal::new(40).unwrap()).await.unwrap();
    assert!(h.docker.calls().contains(&Call::KillContainer { name: APP.to_owned(), signal: 40 }));
    h.engine.signal(&id("c1"), Signal::TERM).await.unwrap();
    let exit = h.engine.wait(&id("c1")).await.unwrap();
    assert_eq!((exit.code, exit.reason), (143, ExitReason::Exited));
}

#[tokio::test]
async fn exec_separates_or_combines_output() {
    let h = harness().await;
    h.engine.start(&id("c1"), params()).await.unwrap();
    h.docker
        .set_exec_handler(|_| crate::docker::fake::ExecScript::exit(7).stdout("out").stderr("err"));
    let exec = |combined| ExecParams {
        cmd: vec!["x".to_owned()],
        env: Vec::new(),
        cwd: None,
        user: None,
        combined_output: combined,
    };
    let out = h.engine.exec(&id("c1"), exec(false)).await.unwrap();
    assert_eq!(
        (out.exit_code, out.stdout.as_slice(), out.stderr.as_slice()),
        (7, &b"out"[..], &b"err"[..])
    );
    let out = h.engine.exec(&id("c1"), exec(true)).await.unwrap();
    assert_eq!((out.stdout.as_slice(), out.stderr.as_slice()), (&b"outerr"[..], &b""[..]));
}

#[tokio::test]
async fn an_oom_kill_says_so() {
    let h = harness().await;
    h.engine.start(&id("c1"), params()).await.unwrap();
    h.docker.oom_kill(APP);
    let exit = h.engine.wait(&id("c1")).await.unwrap();
    assert_eq!((exit.code, exit.reason), (137, ExitReason::OomKilled));
}

#[tokio::test(start_paused = true)]
async fn the_hard_timeout_kills_at_its_deadline() {
    let h = harness().await;
    let mut p = params();
    p.hard_timeout = Some(Duration::from_secs(30));
    h.engine.start(&id("c1"), p).await.unwrap();
    let exit = h.engine.wait(&id("c1")).await.unwrap();
    assert_eq!((exit.code, exit.reason), (137, ExitReason::HardTimeout));
}

/// See: W16. Inactivity counts from the last activity and signals before it kills.
#[tokio::test(start_paused = true)]
async fn inactivity_sends_term_then_kill_after_the_grace() {
    let h = harness().await;
    h.engine.start(&id("c1"), params()).await.unwrap();
    h.docker.on_signal(APP, 15, SignalReaction::Ignore);
    h.engine.set_inactivity_timeout(&id("c1"), Duration::from_secs(10)).await.unwrap();
    let began = tokio::time::Instant::now();
    let exit = h.engine.wait(&id("c1")).await.unwrap();
    assert_eq!((exit.code, exit.reason), (137, ExitReason::InactivityTimeout));
    // 10 s idle, then 5 s of grace after SIGTERM.
    assert!(began.elapsed() >= Duration::from_secs(15), "{:?}", began.elapsed());
    let kills: Vec<_> =
        h.docker.calls().into_iter().filter(|c| matches!(c, Call::KillContainer { .. })).collect();
    assert_eq!(kills.len(), 2, "{kills:?}");
}

#[tokio::test(start_paused = true)]
async fn activity_postpones_the_inactivity_timeout() {
    let h = harness().await;
    h.engine.start(&id("c1"), params()).await.unwrap();
    h.engine.set_inactivity_timeout(&id("c1"), Duration::from_secs(10)).await.unwrap();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(8)).await;
        h.engine
            .exec(
                &id("c1"),
                ExecParams {
                    cmd: vec!["true".to_owned()],
                    env: Vec::new(),
                    cwd: None,
                    user: None,
                    combined_output: false,
                },
            )
            .await
            .unwrap();
    }
    assert!(h.engine.status(&id("c1")).snapshot.status.is_running());
    let exit = h.engine.wait(&id("c1")).await.unwrap();
    assert_eq!(exit.reason, ExitReason::InactivityTimeout);
}

/// See: W3. A restarted engine adopts a running pair with its settings.
#[tokio::test]
async fn a_restarted_engine_adopts_with_settings() {
    let h = harness().await;
    let mut p = params();
    p.enable_internet = true;
    p.labels = labels_of(&[("tier", "gold")]);
    h.engine.start(&id("c1"), p).await.unwrap();
    let h = h.restart().await;
    let snap = h.engine.status(&id("c1")).snapshot;
    assert_eq!(snap.status, Status::Running);
    assert_eq!(snap.labels.iter().collect::<Vec<_>>(), [("tier", "gold")]);
    let last_put = h.control.puts().last().cloned().unwrap().1;
    assert_eq!(last_put.internet.map(|i| i.enabled), Some(true));
    // And it still manages it.
    h.engine.destroy(&id("c1")).await.unwrap();
    assert_eq!(h.docker.container_names(), [SIDECAR], "kept warm");
    h.engine.shutdown().await;
    assert!(h.docker.container_names().is_empty());
}

/// See: W4. An app whose sidecar is gone is removed, never fatal.
#[tokio::test]
async fn a_restarted_engine_removes_an_app_without_its_sidecar() {
    let h = harness().await;
    h.engine.start(&id("c1"), params()).await.unwrap();
    h.engine.start(&id("c2"), params()).await.unwrap();
    h.docker.remove_behind_our_back(SIDECAR);
    let h = h.restart().await;
    assert_eq!(h.engine.status(&id("c1")).snapshot.status, Status::Empty);
    assert!(h.engine.status(&id("c2")).snapshot.status.is_running());
    assert_eq!(h.docker.container_names(), ["wharf-t-c2", "wharf-t-c2-sidecar"]);
}

#[tokio::test]
async fn shutdown_reaps_everything() {
    let h = harness().await;
    h.engine.start(&id("c1"), params()).await.unwrap();
    h.engine.start(&id("c2"), params()).await.unwrap();
    h.engine.shutdown().await;
    assert!(h.docker.container_names().is_empty());
}

#[tokio::test]
async fn gc_removes_only_dead_engines_objects() {
    let h = harness().await;
    h.engine.start(&id("c1"), params()).await.unwrap();
    // An object of a dead engine: its lock file is not held by anyone.
    let dead_lock = h.dir.path().join("dead.lock");
    std::fs::write(&dead_lock, b"").unwrap();
    let owner = labels::Owner { engine: "dead", lock: &dead_lock };
    h.docker.add_object(
        docker::ObjectKind::Volume,
        "dead-vol",
        owner.labels(labels::Role::Helper, None),
    );
    let report = crate::gc::collect(&h.docker, &crate::gc::GcOptions::default()).await.unwrap();
    assert_eq!(report.removed.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), ["dead-vol"]);
    assert_eq!(report.live_engines, ["t"]);
    assert_eq!(h.docker.container_names().len(), 2);
    let _ = h.docker.list_containers(&[]).await.unwrap();
}

/// A restart that fails after removing the previous run's exited containers keeps the last
/// exit, and no longer points at containers that are gone.
#[tokio::test]
async fn a_failed_restart_forgets_the_removed_containers() {
    let h = harness().await;
    h.engine.start(&id("c1"), params()).await.unwrap();
    h.docker.exit(APP, 3);
    assert_eq!(h.engine.wait(&id("c1")).await.unwrap().code, 3);
    h.docker.fail_next(
        Op::CreateContainer,
        docker::Error::Other { status: 500, message: "boom".to_owned() },
    );
    assert!(h.engine.start(&id("c1"), params()).await.is_err());
    let snap = h.engine.status(&id("c1")).snapshot;
    assert_eq!(snap.status.exit().map(|e| e.code), Some(3));
    assert_eq!(snap.app_container, None);
    assert!(h.docker.container_names().is_empty());
    assert!(matches!(h.engine.logs(&id("c1"), false), Err(Error::NoAppContainer(_))));
}

/// A harness whose warm pool aims at `min` to `max` sidecars.
async fn pool_harness(min: usize, max: usize) -> crate::testing::Harness {
    crate::testing::harness_with(|c| {
        c.pool_min = min;
        c.pool_max = max;
    })
    .await
}

/// Waits until the warm pool holds `n` ready sidecars.
async fn pool_holds(h: &crate::testing::Harness, n: usize) {
    for _ in 0..500 {
        if h.engine.pool_sizes().0 >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the pool never held {n}: {:?}", h.engine.pool_sizes());
}

fn pooled_names(h: &crate::testing::Harness) -> Vec<String> {
    h.docker.container_names().into_iter().filter(|n| n.starts_with("wharf-t-pool-")).collect()
}

/// The first start of an id claims a pooled sidecar: no sidecar is made on its path, the app
/// joins the pooled sidecar's namespace and names it in its labels, and the pool refills.
#[tokio::test]
async fn a_first_start_claims_a_pooled_sidecar() {
    let h = pool_harness(1, 2).await;
    pool_holds(&h, 1).await;
    let pooled = pooled_names(&h);
    assert_eq!(pooled.len(), 1, "{pooled:?}");
    h.docker.clear_calls();
    h.engine.start(&id("c1"), params()).await.unwrap();
    let app = h.docker.spec(APP).unwrap();
    assert_eq!(app.network, NetworkMode::Container(pooled[0].clone()));
    assert_eq!(app.labels[labels::SIDECAR], pooled[0]);
    assert!(h.engine.metrics().contains("wharf_pooled_starts_total 1"));
    assert!(!h.docker.calls().contains(&Call::CreateContainer(SIDECAR.to_owned())));
    // The claim found the pool non-empty: the target stays, and the pool refills.
    pool_holds(&h, 1).await;
    assert_eq!(pooled_names(&h).len(), 2, "the claimed one and a new one");
    // Destroy keeps the claimed sidecar for this id, under its own name.
    h.engine.destroy(&id("c1")).await.unwrap();
    h.docker.clear_calls();
    h.engine.start(&id("c1"), params()).await.unwrap();
    assert!(h.engine.metrics().contains("wharf_warm_starts_total 1"));
    assert_eq!(h.docker.spec(APP).unwrap().network, NetworkMode::Container(pooled[0].clone()));
    h.engine.shutdown().await;
    assert!(h.docker.container_names().is_empty(), "{:?}", h.docker.container_names());
}

/// An empty pool raises its target; a pooled sidecar that fails its check is replaced by a
/// fresh one in the same start.
#[tokio::test]
async fn an_empty_pool_grows_and_a_bad_pooled_sidecar_is_skipped() {
    let h = pool_harness(1, 3).await;
    pool_holds(&h, 1).await;
    h.control.refuse_puts(1);
    h.engine.start(&id("c1"), params()).await.unwrap();
    assert_eq!(h.docker.spec(APP).unwrap().network, NetworkMode::Container(SIDECAR.to_owned()));
    assert!(h.engine.metrics().contains("wharf_warm_sidecars_replaced_total 1"));
    // c2 and c3 find the pool empty or nearly: the target grows, within the bound.
    h.engine.start(&id("c2"), params()).await.unwrap();
    h.engine.start(&id("c3"), params()).await.unwrap();
    h.engine.start(&id("c4"), params()).await.unwrap();
    assert!(h.engine.pool_sizes().1 <= 3);
    h.engine.shutdown().await;
    assert!(h.docker.container_names().is_empty(), "{:?}", h.docker.container_names());
}

/// After a crash, an app on a claimed pooled sidecar is adopted with it, and the pool's
/// unclaimed sidecars are removed.
#[tokio::test]
async fn a_restarted_engine_adopts_a_pooled_pair_and_removes_the_rest() {
    let h = pool_harness(2, 2).await;
    pool_holds(&h, 2).await;
    h.engine.start(&id("c1"), params()).await.unwrap();
    let sidecar = h.docker.spec(APP).unwrap().labels[labels::SIDECAR].clone();
    pool_holds(&h, 2).await;
    let h = h.restart().await;
    assert!(h.engine.status(&id("c1")).snapshot.status.is_running());
    let mut left = h.docker.container_names();
    left.sort();
    assert_eq!(left, [APP.to_owned(), sidecar.clone()]);
    h.engine.destroy(&id("c1")).await.unwrap();
    assert_eq!(h.docker.container_names(), [sidecar], "kept warm under its own name");
    h.engine.shutdown().await;
    assert!(h.docker.container_names().is_empty());
}
