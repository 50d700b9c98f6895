//! Tier-1 tests of `FakeDocker`'s own semantics: the Docker rules its module docs promise.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use expect_test::expect;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::*;
use crate::docker::{NetworkMode, Publish, Resources};

const IMAGE: &str = "wharf/testapp:latest";

fn spec(name: &str) -> ContainerSpec {
    ContainerSpec {
        name: name.to_owned(),
        image: IMAGE.to_owned(),
        entrypoint: None,
        cmd: Some(vec!["/testapp".to_owned()]),
        env: Vec::new(),
        labels: BTreeMap::from([("dev.wharf.managed".to_owned(), "true".to_owned())]),
        network: NetworkMode::Bridge,
        publish: vec![Publish { container_port: 39001, host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST) }],
        cap_add: Vec::new(),
        cap_drop: Vec::new(),
        extra_hosts: Vec::new(),
        dns: Vec::new(),
        sysctls: BTreeMap::new(),
        resources: Resources::default(),
    }
}

fn joined(name: &str, owner: &str) -> ContainerSpec {
    ContainerSpec {
        network: NetworkMode::Container(owner.to_owned()),
        publish: Vec::new(),
        ..spec(name)
    }
}

async fn running(fake: &FakeDocker, spec: &ContainerSpec) {
    fake.create_container(spec).await.expect("create");
    fake.start_container(&spec.name).await.expect("start");
}

/// Yields until the spawned tasks have recorded `n` calls (a current-thread runtime makes
/// this deterministic: each task runs until it waits).
async fn settle(fake: &FakeDocker, n: usize) {
    while fake.calls().len() < n {
        tokio::task::yield_now().await;
    }
}

async fn collect(stream: BoxStream<'static, Result<Output, Error>>) -> Vec<Result<Output, Error>> {
    stream.collect().await
}

#[tokio::test]
async fn lifecycle_of_a_bridge_container() {
    let fake = FakeDocker::new().with_image(IMAGE);
    let id = fake.create_container(&spec("app")).await.expect("create");
    assert_eq!(fake.state(&id[..12]), Some(RunState::Created), "found by id prefix");
    assert_eq!(fake.wait_container("app").await, Ok(0), "not running: answers at once");

    fake.start_container("app").await.expect("start");
    assert_eq!(fake.start_container("app").await, Err(Error::NotModified));
    let info = fake.inspect_container("app").await.expect("inspect");
    expect![[r#"Running {39001: [127.0.0.1:32768]} Some(172.17.0.1)"#]]
        .assert_eq(&format!("{:?} {:?} {:?}", info.state, info.published, info.gateway));

    fake.kill_container("app", 15).await.expect("kill");
    assert_eq!(fake.wait_container("app").await, Ok(143));
    let info = fake.inspect_container("app").await.expect("inspect");
    expect![[r#"Exited 143 {} None"#]].assert_eq(&format!(
        "{:?} {} {:?} {:?}",
        info.state, info.exit_code, info.published, info.gateway
    ));
    assert_eq!(
        fake.kill_container("app", 15).await,
        Err(Error::Conflict(format!("Cannot kill container: app: Container {id} is not running")))
    );

    fake.start_container("app").await.expect("restart");
    let info = fake.inspect_container("app").await.expect("inspect");
    assert_eq!((info.state, info.exit_code), (RunState::Running, 0), "exit code reset");
}

#[tokio::test]
async fn create_errors() {
    let fake = FakeDocker::new().with_image("wharf/testapp");
    let missing = ContainerSpec { image: "nope:1".to_owned(), ..spec("app") };
    fake.create_container(&spec("app")).await.expect("`wharf/testapp` is `:latest`");
    let mut bad_name = spec("-x");
    bad_name.publish.clear();
    let publish_in_joined = ContainerSpec { publish: spec("x").publish, ..joined("app2", "app") };
    let results = [
        fake.create_container(&missing).await,
        fake.create_container(&spec("app")).await,
        fake.create_container(&bad_name).await,
        fake.create_container(&publish_in_joined).await,
    ];
    let text: Vec<String> = results
        .iter()
        .map(|r| format!("{r:?}").split(" by container").next().unwrap_or_default().to_owned())
        .collect();
    expect![[r#"
        [
            "Err(NotFound(\"No such image: nope:1\"))",
            "Err(Conflict(\"Conflict. The container name \\\"/app\\\" is already in use",
            "Err(Other { status: 400, message: \"Invalid container name (-x), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed\" })",
            "Err(Other { status: 400, message: \"conflicting options: port publishing and the container type network mode\" })",
        ]
    "#]]
    .assert_debug_eq(&text);
}

#[tokio::test]
async fn joining_a_namespace_needs_a_running_owner() {
    let fake = FakeDocker::new().with_image(IMAGE);
    fake.create_container(&joined("app", "app-proxy")).await.expect("not checked at create");
    assert_eq!(
        fake.start_container("app").await,
        Err(Error::NotFound("No such container: app-proxy".to_owned()))
    );
    let owner_id = fake.create_container(&spec("app-proxy")).await.expect("create");
    assert_eq!(
        fake.start_container("app").await,
        Err(Error::Conflict(format!("cannot join network of a non running container: {owner_id}")))
    );
    fake.start_container("app-proxy").await.expect("start owner");
    fake.start_container("app").await.expect("start app");
    let info = fake.inspect_container("app").await.expect("inspect");
    assert_eq!((info.gateway, info.published.len()), (None, 0));

    fake.remove_container("app-proxy").await.expect("remove owner");
    assert_eq!(fake.state("app"), Some(RunState::Running), "joined containers keep running");
}

#[tokio::test]
async fn signal_reactions() {
    let fake = FakeDocker::new().with_image(IMAGE);
    fake.on_signal("app", 15, SignalReaction::Ignore);
    fake.on_signal("app", 40, SignalReaction::Exit(77));
    running(&fake, &spec("app")).await;

    fake.kill_container("app", 15).await.expect("kill");
    assert_eq!(fake.state("app"), Some(RunState::Running), "TERM is trapped");
    fake.kill_container("app", 40).await.expect("kill");
    assert_eq!(fake.wait_container("app").await, Ok(77));

    fake.on_signal("app", 9, SignalReaction::Ignore);
    fake.start_container("app").await.expect("start");
    fake.kill_container("app", 9).await.expect("kill");
    assert_eq!(fake.wait_container("app").await, Ok(137), "SIGKILL cannot be trapped");
}

#[tokio::test]
async fn waiters_wake_on_kill_exit_oom_and_removal() {
    let fake = FakeDocker::new().with_image(IMAGE);
    for name in ["c-a", "c-b", "c-c", "c-d"] {
        running(&fake, &spec(name)).await;
    }
    fake.clear_calls();
    let waits: Vec<_> = ["c-a", "c-b", "c-c", "c-d"]
        .into_iter()
        .map(|name| {
            let fake = fake.clone();
            tokio::spawn(async move { fake.wait_container(name).await })
        })
        .collect();
    settle(&fake, 4).await;

    fake.kill_container("c-a", 2).await.expect("kill");
    fake.exit("c-b", 3);
    fake.oom_kill("c-c");
    fake.remove_behind_our_back("c-d");

    let mut codes = Vec::new();
    for wait in waits {
        codes.push(wait.await.expect("join"));
    }
    assert_eq!(codes, [Ok(130), Ok(3), Ok(137), Ok(137)]);
    let c = fake.inspect_container("c-c").await.expect("inspect");
    assert!(c.oom_killed);
    assert_eq!(
        fake.inspect_container("c-d").await,
        Err(Error::NotFound("No such container: c-d".to_owned()))
    );
    assert_eq!(
        fake.wait_container("c-d").await,
        Err(Error::NotFound("No such container: c-d".to_owned()))
    );
    assert_eq!(
        fake.remove_container("c-d").await,
        Err(Error::NotFound("No such container: c-d".to_owned()))
    );
}

#[tokio::test]
async fn scripted_failures_are_one_shot_and_have_no_effect() {
    let fake = FakeDocker::new().with_image(IMAGE);
    fake.fail_next(Op::CreateContainer, Error::Unavailable("daemon restarting".to_owned()));
    assert_eq!(
        fake.create_container(&spec("app")).await,
        Err(Error::Unavailable("daemon restarting".to_owned()))
    );
    assert_eq!(fake.state("app"), None);
    fake.create_container(&spec("app")).await.expect("second try");
    expect![[r#"
        create app
        create app
    "#]]
    .assert_eq(&fake.call_log());
}

#[tokio::test]
async fn gates_order_concurrent_calls() {
    let fake = FakeDocker::new().with_image(IMAGE);
    let gate = fake.gate(Op::CreateContainer);
    let creating = {
        let fake = fake.clone();
        tokio::spawn(async move { fake.create_container(&spec("app")).await })
    };
    gate.arrived(1).await;
    assert_eq!(fake.state("app"), None, "held at the gate");
    assert!(fake.remove_container("app").await.is_err(), "a remove overtakes the create");

    gate.release(1);
    creating.await.expect("join").expect("create");
    assert_eq!(fake.state("app"), Some(RunState::Created));

    drop(gate);
    fake.create_container(&spec("app2")).await.expect("a dropped gate is open");
}

#[tokio::test]
async fn exec_scripts_and_echo() {
    let fake = FakeDocker::new().with_image(IMAGE);
    running(&fake, &spec("app")).await;

    let echo = ExecSpec { cmd: vec!["cat".to_owned()], stdin: true, ..ExecSpec::default() };
    let mut session = fake.exec("app", &echo).await.expect("exec");
    session.input.write_all(b"hi").await.expect("write");
    session.input.shutdown().await.expect("eof");
    assert_eq!(fake.inspect_exec(&session.id).await.map(|s| s.running), Ok(true));
    let out = collect(session.output).await;
    expect![[r#"[Ok(Stdout(b"cat\n")), Ok(Stdout(b"hi"))]"#]].assert_eq(&format!("{out:?}"));
    let done = fake.inspect_exec(&session.id).await.expect("inspect");
    assert_eq!((done.running, done.exit_code), (false, Some(0)));

    fake.set_exec_handler(|spec| {
        ExecScript::exit(3).stdout(format!("cwd={:?}\n", spec.cwd)).stderr("oops\n")
    });
    let scripted =
        ExecSpec { cmd: vec!["x".to_owned()], cwd: Some("/tmp".to_owned()), ..ExecSpec::default() };
    let session = fake.exec("app", &scripted).await.expect("exec");
    let id = session.id.clone();
    let out = collect(session.output).await;
    expect![[r#"[Ok(Stdout(b"cwd=Some(\"/tmp\")\n")), Ok(Stderr(b"oops\n"))]"#]]
        .assert_eq(&format!("{out:?}"));
    assert_eq!(fake.inspect_exec(&id).await.map(|s| s.exit_code), Ok(Some(3)));

    fake.exit("app", 0);
    assert!(matches!(fake.exec("app", &scripted).await, Err(Error::Conflict(_))));
    assert!(matches!(fake.inspect_exec("nope").await, Err(Error::NotFound(_))));
}

#[tokio::test]
async fn logs_are_scripted_and_follow_ends_when_the_container_stops() {
    let fake = FakeDocker::new().with_image(IMAGE);
    fake.set_logs(
        "app",
        vec![Output::Stdout(Bytes::from("out\n")), Output::Stderr(Bytes::from("err\n"))],
    );
    running(&fake, &spec("app")).await;

    let logs = collect(fake.logs("app", false)).await;
    expect![[r#"[Ok(Stdout(b"out\n")), Ok(Stderr(b"err\n"))]"#]].assert_eq(&format!("{logs:?}"));

    let following = tokio::spawn(collect(fake.logs("app", true)));
    settle(&fake, 4).await;
    assert!(!following.is_finished());
    fake.exit("app", 0);
    assert_eq!(following.await.expect("join").len(), 2);

    let missing = collect(fake.logs("nope", false)).await;
    expect![[r#"[Err(NotFound("No such container: nope"))]"#]].assert_eq(&format!("{missing:?}"));
}

#[tokio::test]
async fn images_build_retag_and_removal() {
    let fake = FakeDocker::new();
    let labels =
        |hash: &str| BTreeMap::from([("dev.wharf.content-hash".to_owned(), hash.to_owned())]);
    let build = |hash: &str| BuildSpec {
        tag: "wharf/testapp:latest".to_owned(),
        labels: labels(hash),
        context: Bytes::from(hash.to_owned()),
    };
    let lines = Mutex::new(Vec::new());
    let progress = |line: &str| lines.lock().expect("test lock").push(line.to_owned());
    fake.build_image(build("one"), &progress).await.expect("build");
    let first = fake.inspect_image("wharf/testapp").await.expect("inspect").expect("present");
    fake.build_image(build("two"), &progress).await.expect("rebuild");
    let second =
        fake.inspect_image("wharf/testapp:latest").await.expect("inspect").expect("present");
    assert_ne!(first.id, second.id);
    assert_eq!(second.labels, labels("two"));
    assert_eq!(fake.builds().len(), 2);
    assert_eq!(lines.lock().expect("test lock").len(), 4);

    let images =
        fake.list_labelled(ObjectKind::Image, "dev.wharf.content-hash").await.expect("list");
    let names: Vec<&str> = images.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, [first.id.as_str(), "wharf/testapp:latest"], "the old one dangles");

    fake.create_container(&spec("app")).await.expect("create");
    assert!(matches!(
        fake.remove_object(ObjectKind::Image, "wharf/testapp:latest").await,
        Err(Error::Conflict(_))
    ));
    fake.remove_object(ObjectKind::Image, &first.id).await.expect("dangling image goes");
    fake.remove_container("app").await.expect("remove");
    fake.remove_object(ObjectKind::Image, "wharf/testapp").await.expect("unused image goes");
    assert_eq!(fake.image_tags(), Vec::<String>::new());
    assert_eq!(fake.inspect_image("wharf/testapp").await, Ok(None));
}

#[tokio::test]
async fn listing_by_labels() {
    let fake = FakeDocker::new().with_image(IMAGE);
    let mut other = spec("other");
    other.labels.insert("dev.wharf.engine".to_owned(), "ci".to_owned());
    fake.create_container(&spec("app")).await.expect("create");
    fake.create_container(&other).await.expect("create");
    let listed = fake.list_containers(&[("dev.wharf.engine", "ci")]).await.expect("list");
    assert_eq!(listed.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["other"]);
    let all = fake.list_containers(&[]).await.expect("list");
    assert_eq!(all.len(), 2);

    fake.add_object(
        ObjectKind::Volume,
        "snap",
        BTreeMap::from([("dev.wharf.managed".to_owned(), "true".to_owned())]),
    );
    fake.add_object(ObjectKind::Volume, "theirs", BTreeMap::new());
    let volumes = fake.list_labelled(ObjectKind::Volume, "dev.wharf.managed").await.expect("list");
    assert_eq!(volumes.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(), ["snap"]);
    fake.remove_object(ObjectKind::Volume, "snap").await.expect("remove");
    assert!(matches!(
        fake.remove_object(ObjectKind::Volume, "snap").await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(fake.object_names(ObjectKind::Volume), ["theirs"]);
}

#[tokio::test]
async fn bridge_defaults_to_our_machines() {
    let fake = FakeDocker::new().with_image(IMAGE);
    expect![[r#"Ok(BridgeInfo { subnet: Some(172.17.0.0/16), gateway: None, ipv6: false })"#]]
        .assert_eq(&format!("{:?}", fake.bridge().await));
    fake.set_bridge(BridgeInfo { subnet: "10.9.0.0/16".parse().ok(), gateway: None, ipv6: true });
    running(&fake, &spec("app")).await;
    let info = fake.inspect_container("app").await.expect("inspect");
    assert_eq!(info.gateway, "10.9.0.1".parse().ok(), "the subnet's first host");
}

#[tokio::test]
async fn call_log_names_targets() {
    let fake = FakeDocker::new().with_image(IMAGE);
    running(&fake, &spec("app")).await;
    fake.kill_container("app", 40).await.expect("kill");
    let _ = fake.list_containers(&[("k", "v")]).await;
    let _ = collect(fake.logs("app", true)).await;
    let _ = fake.remove_object(ObjectKind::Network, "n").await;
    expect![[r#"
        create app
        start app
        kill app 40
        list k=v
        logs -f app
        remove-object network n
    "#]]
    .assert_eq(&fake.call_log());
}
