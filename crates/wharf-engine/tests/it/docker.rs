//! Tier 2: `BollardDocker` against the real daemon, and the Docker rules `FakeDocker` assumes.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use wharf_engine::docker::{
    BuildSpec, DockerApi, Error, ExecSpec, NetworkMode, ObjectKind, Publish, RunState,
};
use wharf_engine::images::{self, EnsureOutcome, ImageBuilder, ImageError};
use wharf_engine::labels;

use crate::harness::{RUN_LABEL, Scope, busybox, retag, small_context, split_output};

/// Traps TERM and real-time signal 40 with distinct exit codes, then says it is ready.
const TRAPPING: &str = "trap 'exit 143' TERM; trap 'exit 77' 40; echo ready; sleep 600 & wait";

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The exec's final state; Docker may close the stream a moment before it records the exit.
async fn exec_exit(t: &Scope, id: &str) -> Option<i64> {
    for _ in 0..50 {
        let state = t.docker.inspect_exec(id).await.expect("inspect exec");
        if !state.running {
            return state.exit_code;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("exec {id} still running");
}

docker_test! {
    async fn version_and_bridge(t: &Scope) {
        let version = t.docker.version().await.expect("version");
        assert!(version.api_version.starts_with("1."), "{version:?}");
        assert!(!version.version.is_empty());
        let bridge = t.docker.bridge().await.expect("bridge");
        // Our machines: 172.17.0.0/16 and no IPAM gateway (W43); only the subnet is promised.
        assert!(bridge.subnet.is_some(), "{bridge:?}");
    }
}

docker_test! {
    async fn lifecycle_with_term_and_real_time_signals(t: &Scope) {
        let image = t.image().await;
        let spec = t.spec("life", &image, TRAPPING);
        let id = t.docker.create_container(&spec).await.expect("create");
        let info = t.docker.inspect_container(&spec.name).await.expect("inspect");
        assert_eq!((info.id.as_str(), info.state), (id.as_str(), RunState::Created));
        assert_eq!(t.docker.wait_container(&spec.name).await, Ok(0), "created: answers at once");

        t.docker.start_container(&spec.name).await.expect("start");
        assert_eq!(t.docker.start_container(&spec.name).await, Err(Error::NotModified));
        let mut logs = t.docker.logs(&spec.name, true);
        let first = futures_util::StreamExt::next(&mut logs).await;
        assert!(matches!(&first, Some(Ok(wharf_engine::docker::Output::Stdout(l))) if l.starts_with(b"ready")), "{first:?}");

        let info = t.docker.inspect_container(&spec.name).await.expect("inspect");
        assert_eq!(info.state, RunState::Running);
        assert_eq!(info.image, image);
        assert_eq!(info.cmd, spec.cmd.clone().unwrap_or_default());
        assert_eq!(info.labels.get(RUN_LABEL), spec.labels.get(RUN_LABEL));
        assert!(info.gateway.is_some(), "a running bridge container has a gateway: {info:?}");

        t.docker.kill_container(&spec.name, 40).await.expect("kill 40");
        assert_eq!(t.docker.wait_container(&spec.name).await, Ok(77), "signal 40 arrived as itself");
        let info = t.docker.inspect_container(&spec.name).await.expect("inspect");
        assert_eq!((info.state, info.exit_code, info.gateway), (RunState::Exited, 77, None));
        assert!(matches!(t.docker.kill_container(&spec.name, 15).await, Err(Error::Conflict(_))));

        t.start_ready_again(&spec.name).await;
        t.docker.kill_container(&spec.name, 15).await.expect("kill TERM");
        assert_eq!(t.docker.wait_container(&spec.name).await, Ok(143));

        t.docker.remove_container(&spec.name).await.expect("remove");
        assert!(matches!(t.docker.inspect_container(&spec.name).await, Err(Error::NotFound(_))));
        assert!(matches!(t.docker.remove_container(&spec.name).await, Err(Error::NotFound(_))));
    }
}

impl Scope {
    /// Starts an exited container again and waits for its next `ready` line.
    async fn start_ready_again(&self, name: &str) {
        self.docker.start_container(name).await.expect("start again");
        let info = self.docker.inspect_container(name).await.expect("inspect");
        assert_eq!((info.state, info.exit_code), (RunState::Running, 0), "exit code reset");
        let mut logs = self.docker.logs(name, true);
        let mut readies = 0;
        while readies < 2 {
            match futures_util::StreamExt::next(&mut logs).await {
                Some(Ok(wharf_engine::docker::Output::Stdout(l))) => {
                    readies += String::from_utf8_lossy(&l).matches("ready").count();
                }
                other => panic!("{name} did not say ready again: {other:?}"),
            }
        }
    }
}

docker_test! {
    async fn removal_wakes_waiters_with_137(t: &Scope) {
        let image = t.image().await;
        let spec = t.spec("rm", &image, "echo ready; sleep 600");
        t.start_ready(&spec).await;
        let waiting = {
            let docker = Arc::clone(&t.docker);
            let name = spec.name.clone();
            tokio::spawn(async move { docker.wait_container(&name).await })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        t.docker.remove_container(&spec.name).await.expect("remove");
        assert_eq!(waiting.await.expect("join"), Ok(137));
    }
}

docker_test! {
    async fn not_found_and_conflict_are_classified(t: &Scope) {
        let image = t.image().await;
        let missing = t.name("missing");
        assert!(matches!(t.docker.inspect_container(&missing).await, Err(Error::NotFound(_))));
        assert!(matches!(t.docker.start_container(&missing).await, Err(Error::NotFound(_))));
        assert!(matches!(t.docker.kill_container(&missing, 9).await, Err(Error::NotFound(_))));
        assert!(matches!(t.docker.wait_container(&missing).await, Err(Error::NotFound(_))));
        assert!(matches!(t.docker.inspect_exec("0000").await, Err(Error::NotFound(_))));
        assert!(matches!(t.docker.remove_object(ObjectKind::Volume, &missing).await, Err(Error::NotFound(_))));
        assert_eq!(t.docker.inspect_image("wharf-test/never-built:0").await, Ok(None));

        let no_image = t.spec("noimage", "wharf-test/never-built:0", "true");
        assert!(matches!(t.docker.create_container(&no_image).await, Err(Error::NotFound(_))));

        let spec = t.spec("dup", &image, "sleep 600");
        t.docker.create_container(&spec).await.expect("create");
        assert!(matches!(t.docker.create_container(&spec).await, Err(Error::Conflict(_))));
        assert!(matches!(t.docker.kill_container(&spec.name, 15).await, Err(Error::Conflict(_))), "not running");
        let exec = ExecSpec { cmd: strings(&["true"]), ..ExecSpec::default() };
        assert!(matches!(t.docker.exec(&spec.name, &exec).await, Err(Error::Conflict(_))), "not running");

        let mut bad = t.spec("bad", &image, "true");
        bad.name = "-bad".to_owned();
        assert!(matches!(t.docker.create_container(&bad).await, Err(Error::Other { status: 400, .. })));
    }
}

docker_test! {
    async fn joined_namespace_and_published_port(t: &Scope) {
        let image = t.image().await;
        let mut sidecar = t.spec("proxy", &image, "echo ready; sleep 600");
        sidecar.publish = vec![Publish { container_port: 39001, host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST) }];
        let mut app = t.spec("app", &image, "echo ready; sleep 600");
        app.network = NetworkMode::Container(sidecar.name.clone());

        // `container:<x>` is checked at start, not at create.
        t.docker.create_container(&app).await.expect("create before the owner exists");
        assert!(matches!(t.docker.start_container(&app.name).await, Err(Error::NotFound(_))));
        t.docker.create_container(&sidecar).await.expect("create sidecar");
        let refused = t.docker.start_container(&app.name).await;
        assert!(
            matches!(&refused, Err(Error::Conflict(m)) if m.contains("cannot join network of a non running container")),
            "{refused:?}"
        );
        let info = t.docker.inspect_container(&sidecar.name).await.expect("inspect");
        assert!(info.published.is_empty(), "no ports before start: {info:?}");

        t.docker.start_container(&sidecar.name).await.expect("start sidecar");
        t.docker.start_container(&app.name).await.expect("start app");
        let proxy = t.docker.inspect_container(&sidecar.name).await.expect("inspect");
        let addrs = proxy.published.get(&39001).cloned().unwrap_or_default();
        assert_eq!(addrs.len(), 1, "{proxy:?}");
        assert_eq!(addrs[0].ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_ne!(addrs[0].port(), 0);
        let joined = t.docker.inspect_container(&app.name).await.expect("inspect");
        assert_eq!((joined.gateway, joined.published.len()), (None, 0), "{joined:?}");

        let mut publishing = t.spec("app2", &image, "true");
        publishing.network = NetworkMode::Container(sidecar.name.clone());
        publishing.publish = sidecar.publish.clone();
        let refused = t.docker.create_container(&publishing).await;
        assert!(matches!(refused, Err(Error::Other { status: 400, .. })), "{refused:?}");

        // Removing the namespace owner leaves the joined container running.
        t.docker.remove_container(&sidecar.name).await.expect("remove sidecar");
        let joined = t.docker.inspect_container(&app.name).await.expect("inspect");
        assert_eq!(joined.state, RunState::Running);
    }
}

docker_test! {
    async fn exec_with_env_cwd_user_and_separate_streams(t: &Scope) {
        let image = t.image().await;
        let spec = t.spec("exec", &image, "echo ready; sleep 600");
        t.start_ready(&spec).await;

        let exec = ExecSpec {
            cmd: strings(&["/bin/sh", "-c", "echo out-$FOO; pwd; id -u; echo err >&2; exit 3"]),
            env: strings(&["FOO=bar"]),
            cwd: Some("/tmp".to_owned()),
            user: Some("nobody".to_owned()),
            stdin: false,
            tty: None,
        };
        let session = t.docker.exec(&spec.name, &exec).await.expect("exec");
        let id = session.id.clone();
        let (out, err) = split_output(session.output).await;
        assert_eq!((out.as_str(), err.as_str()), ("out-bar\n/tmp\n65534\n", "err\n"));
        assert_eq!(exec_exit(t, &id).await, Some(3));

        let cat = ExecSpec { cmd: strings(&["cat"]), stdin: true, ..ExecSpec::default() };
        let mut session = t.docker.exec(&spec.name, &cat).await.expect("exec cat");
        session.input.write_all(b"hello\n").await.expect("write stdin");
        session.input.shutdown().await.expect("close stdin");
        let (out, _) = split_output(session.output).await;
        assert_eq!(out, "hello\n");

        // busybox `stty size` fails while the size is still 0x0; the resize follows the start.
        let script = "for i in 1 2 3 4 5 6 7 8 9 10; do s=$(stty size 2>/dev/null); case \"$s\" in [1-9]*) break;; esac; sleep 0.2; done; echo \"$s\"";
        // An interactive exec: stdin and a TTY, whose size must reach the process.
        let tty = ExecSpec {
            cmd: strings(&["/bin/sh", "-c", script]),
            stdin: true,
            tty: Some((100, 30)),
            ..ExecSpec::default()
        };
        let session = t.docker.exec(&spec.name, &tty).await.expect("exec tty");
        let (out, err) = split_output(session.output).await;
        assert_eq!((out.trim_end(), err.as_str()), ("30 100", ""), "tty output arrives as stdout");
    }
}

docker_test! {
    async fn logs_keep_stdout_and_stderr_apart(t: &Scope) {
        let image = t.image().await;
        let spec = t.spec("logs", &image, "echo to-out; echo to-err >&2; exit 5");
        t.docker.create_container(&spec).await.expect("create");
        t.docker.start_container(&spec.name).await.expect("start");
        assert_eq!(t.docker.wait_container(&spec.name).await, Ok(5));
        let (out, err) = split_output(t.docker.logs(&spec.name, false)).await;
        assert_eq!((out.as_str(), err.as_str()), ("to-out\n", "to-err\n"));
        let (out, _) = split_output(t.docker.logs(&spec.name, true)).await;
        assert_eq!(out, "to-out\n", "follow ends when the container has stopped");
        let listed = t.docker.list_containers(&[(RUN_LABEL, spec.labels[RUN_LABEL].as_str())]).await.expect("list");
        assert_eq!(listed.iter().map(|c| (c.name.as_str(), c.state)).collect::<Vec<_>>(), [(spec.name.as_str(), RunState::Exited)]);
    }
}

docker_test! {
    async fn volumes_are_listed_and_removed_by_label(t: &Scope) {
        let name = t.name("vol");
        t.docker.create_volume(&name, &t.labels()).await.expect("create volume");
        let listed = t.docker.list_labelled(ObjectKind::Volume, RUN_LABEL).await.expect("list");
        let ours: Vec<_> = listed.iter().filter(|v| v.name == name).collect();
        assert_eq!(ours.len(), 1, "{listed:?}");
        assert_eq!(ours[0].labels, t.labels());
        t.docker.remove_object(ObjectKind::Volume, &ours[0].id).await.expect("remove");
        let listed = t.docker.list_labelled(ObjectKind::Volume, RUN_LABEL).await.expect("list");
        assert!(listed.iter().all(|v| v.name != name));
    }
}

docker_test! {
    async fn image_builder_builds_once_then_finds_it(t: &Scope) {
        let recipe = images::ImageRecipe::new(&t.image_tag("ensure"), small_context());
        let docker: Arc<dyn DockerApi> = t.docker.clone();
        let quiet = |_: &str| {};
        let outcome = ImageBuilder::new(Arc::clone(&docker)).ensure(&recipe, &quiet).await.expect("ensure");
        assert_eq!(outcome, EnsureOutcome::Built);
        let outcome = ImageBuilder::new(Arc::clone(&docker)).ensure(&recipe, &quiet).await.expect("ensure");
        assert_eq!(outcome, EnsureOutcome::Present);
        let info = t.docker.inspect_image(&recipe.reference).await.expect("inspect").expect("present");
        assert_eq!(info.labels, labels::image_labels(&recipe.content_hash));
        let listed = t.docker.list_labelled(ObjectKind::Image, labels::CONTENT_HASH).await.expect("list");
        assert!(listed.iter().any(|i| i.name == recipe.reference && i.id == info.id), "{listed:?}");

        let lines = std::sync::Mutex::new(Vec::new());
        let broken = BuildSpec {
            tag: t.image_tag("broken"),
            labels: t.labels(),
            context: images::build_context(&[], "FROM scratch\nCOPY missing /\n").expect("context"),
        };
        let failed = t.docker.build_image(broken, &|l| lines.lock().expect("lock").push(l.to_owned())).await;
        assert!(matches!(&failed, Err(Error::Other { .. })), "{failed:?}");
        assert!(!lines.lock().expect("lock").is_empty(), "progress saw the steps before the failure");

        let broken = images::ImageRecipe::new(&t.image_tag("broken2"), images::build_context(&[], "FROM scratch\nRUN true\n").expect("context"));
        let failed = ImageBuilder::new(docker).ensure(&broken, &quiet).await;
        assert!(matches!(failed, Err(ImageError::Build { .. })), "{failed:?}");
    }
}

docker_test! {
    async fn real_recipes_build_and_run(t: &Scope) {
        let busybox = busybox();
        let quiet = |_: &str| {};
        let builder = ImageBuilder::new(t.docker.clone());
        // Busybox stands in for both payloads: only the rootfs layout is under test.
        let testapp = retag(t, "testapp", &images::testapp_recipe(&busybox, &busybox));
        let sidecar = retag(t, "sidecar", &images::sidecar_recipe(&busybox, &busybox));
        for recipe in [&testapp, &sidecar] {
            builder.ensure(recipe, &quiet).await.expect("build a real recipe");
        }
        let checks = [
            (&testapp, "stat -c '%a %u' /tmp /etc/passwd /bin/busybox; id nobody; [ -x /testapp ] && pwd"),
            (&sidecar, "cp /etc/group /tmp/g && echo copied; [ -d /ca ] && [ -x /wharf-sidecar ] && echo layout"),
        ];
        for (i, (recipe, script)) in checks.into_iter().enumerate() {
            let mut spec = t.spec(&format!("recipe{i}"), &recipe.reference, script);
            spec.entrypoint = Some(strings(&["/bin/sh", "-c"]));
            spec.cmd = Some(vec![script.to_owned()]);
            t.docker.create_container(&spec).await.expect("create");
            t.docker.start_container(&spec.name).await.expect("start");
            assert_eq!(t.docker.wait_container(&spec.name).await, Ok(0), "{script}");
            let (out, err) = split_output(t.docker.logs(&spec.name, false)).await;
            let expected = if i == 0 {
                "1777 0\n644 0\n755 0\nuid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n/\n"
            } else {
                "copied\nlayout\n"
            };
            assert_eq!((out.as_str(), err.as_str()), (expected, ""));
        }
    }
}
