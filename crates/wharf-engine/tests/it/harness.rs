//! The tier-2 harness: `docker_test!` runs a test body against the real daemon in a `Scope`
//! that names and labels everything it creates, and reaps it all afterwards, pass or fail.
//!
//! Cleanup is async and explicit rather than in `Drop` (which cannot await, and would have to
//! shell out): the macro catches the body's panic (and a timeout), reaps by the scope's run
//! label and tracked image tags, then re-raises. Only a killed test process leaks; such
//! leftovers carry `dev.wharf.test-run` and a `wharf-test-` / `wharf-test/` name.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex, Once, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use wharf_engine::docker::bollard::BollardDocker;
use wharf_engine::docker::{
    BuildSpec, ContainerSpec, DockerApi, Error, NetworkMode, ObjectKind, Output, Resources,
};
use wharf_engine::images::{self, Entry, ImageRecipe};

/// The label every object a scope creates carries, valued with the scope's run id.
pub(crate) const RUN_LABEL: &str = "dev.wharf.test-run";
/// The env var that turns tier 2 on.
const ENABLE: &str = "WHARF_DOCKER_TESTS";
/// Debian's busybox-static.
const BUSYBOX: &str = "/bin/busybox";
/// A test body's time limit (image builds on fuse-overlayfs are slow).
pub(crate) const TEST_TIMEOUT: Duration = Duration::from_secs(180);

/// Applets in the small test image.
const APPLETS: &[&str] =
    &["sh", "sleep", "cat", "echo", "pwd", "id", "env", "stty", "stat", "ls", "wc", "true"];

/// Runs `async fn name(t: &Scope) { … }` against the real daemon and reaps what it made.
macro_rules! docker_test {
    ($(#[$meta:meta])* async fn $name:ident($t:ident: &Scope) $body:block) => {
        $(#[$meta])*
        #[tokio::test]
        async fn $name() {
            let Some(scope) = $crate::harness::Scope::new(stringify!($name)).await else {
                return;
            };
            let outcome = {
                let $t = &scope;
                let body = tokio::time::timeout($crate::harness::TEST_TIMEOUT, async move $body);
                futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(body)).await
            };
            scope.finish(outcome).await;
        }
    };
}

/// One test's view of the daemon: unique names, labels, and what to reap.
pub(crate) struct Scope {
    pub(crate) docker: Arc<BollardDocker>,
    test: &'static str,
    run: String,
    image_tags: Mutex<Vec<String>>,
}

impl Scope {
    /// Connects, or says on stderr (once) why tier 2 is skipped and returns `None`.
    pub(crate) async fn new(test: &'static str) -> Option<Scope> {
        if !enabled() {
            static NOTICE: Once = Once::new();
            NOTICE.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "wharf-engine: tier-2 Docker tests skipped: set {ENABLE}=1 to run them against the Docker daemon"
                );
            });
            return None;
        }
        // Tier 2 was asked for: a missing daemon is a failure, never a skip.
        let docker = match BollardDocker::connect(None).await {
            Ok(docker) => Arc::new(docker),
            Err(e) => panic!("{ENABLE}=1 but the Docker daemon is unreachable: {e}"),
        };
        let mut id = [0u8; 6];
        getrandom::fill(&mut id).expect("random bytes");
        Some(Scope { docker, test, run: hex::encode(id), image_tags: Mutex::new(Vec::new()) })
    }

    /// A unique container (or volume) name: `wharf-test-<run>-<what>`.
    pub(crate) fn name(&self, what: &str) -> String {
        format!("wharf-test-{}-{what}", self.run)
    }

    /// A unique image tag `wharf-test/<repo>:<run>`, reaped at the end.
    pub(crate) fn image_tag(&self, repo: &str) -> String {
        let tag = format!("wharf-test/{repo}:{}", self.run);
        self.image_tags.lock().unwrap_or_else(PoisonError::into_inner).push(tag.clone());
        tag
    }

    /// The labels every object of this scope carries.
    pub(crate) fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (RUN_LABEL.to_owned(), self.run.clone()),
            ("dev.wharf.test".to_owned(), self.test.to_owned()),
        ])
    }

    /// A bridge container `what` from `image` running `sh -c script`.
    pub(crate) fn spec(&self, what: &str, image: &str, script: &str) -> ContainerSpec {
        ContainerSpec {
            name: self.name(what),
            image: image.to_owned(),
            entrypoint: None,
            cmd: Some(vec!["/bin/sh".to_owned(), "-c".to_owned(), script.to_owned()]),
            env: Vec::new(),
            labels: self.labels(),
            network: NetworkMode::Bridge,
            publish: Vec::new(),
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            extra_hosts: Vec::new(),
            dns: Vec::new(),
            sysctls: BTreeMap::new(),
            resources: Resources::default(),
        }
    }

    /// Builds the small busybox image (`CMD sleep 600`), tagged for this scope.
    pub(crate) async fn image(&self) -> String {
        let tag = self.image_tag("busybox");
        let spec = BuildSpec { tag: tag.clone(), labels: self.labels(), context: small_context() };
        // Tests build the same context in parallel and remove their tags when done; the legacy
        // builder can lose a shared cached layer to such an `rmi` mid-build, so try again.
        let mut last = None;
        for attempt in 0..3u64 {
            match self.docker.build_image(spec.clone(), &|_| {}).await {
                Ok(()) => return tag,
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(std::time::Duration::from_millis(200 * (attempt + 1))).await;
        }
        panic!("build the busybox test image: {last:?}")
    }

    /// Creates and starts `spec`, then waits for its first log line (`echo ready` in the
    /// script), so that traps are set before the test signals it.
    pub(crate) async fn start_ready(&self, spec: &ContainerSpec) {
        self.docker.create_container(spec).await.expect("create");
        self.docker.start_container(&spec.name).await.expect("start");
        let mut logs = self.docker.logs(&spec.name, true);
        match logs.next().await {
            Some(Ok(Output::Stdout(line))) if line.starts_with(b"ready") => {}
            other => panic!("{} did not say ready: {other:?}", spec.name),
        }
    }

    /// Reaps, then re-raises the body's panic or timeout; a clean body with a failed reap
    /// fails too.
    pub(crate) async fn finish(
        &self,
        outcome: std::thread::Result<Result<(), tokio::time::error::Elapsed>>,
    ) {
        let leftovers = self.reap().await;
        match outcome {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(Err(_)) => panic!("{} timed out after {TEST_TIMEOUT:?}", self.test),
            Ok(Ok(())) => assert!(leftovers.is_empty(), "cleanup failed: {leftovers:#?}"),
        }
    }

    /// Removes every container, volume and image of this run; returns what could not be.
    async fn reap(&self) -> Vec<String> {
        let mut failures = Vec::new();
        let docker = &*self.docker;
        let mine = |labels: &BTreeMap<String, String>| labels.get(RUN_LABEL) == Some(&self.run);
        for kind in [ObjectKind::Container, ObjectKind::Volume] {
            match docker.list_labelled(kind, RUN_LABEL).await {
                Ok(objects) => {
                    for object in objects.into_iter().filter(|o| mine(&o.labels)) {
                        note(
                            &mut failures,
                            &object.name,
                            docker.remove_object(kind, &object.id).await,
                        );
                    }
                }
                Err(e) => failures.push(format!("list {kind:?}: {e}")),
            }
        }
        let tags = self.image_tags.lock().unwrap_or_else(PoisonError::into_inner).clone();
        for tag in tags {
            note(&mut failures, &tag, docker.remove_object(ObjectKind::Image, &tag).await);
        }
        failures
    }
}

/// Whether `WHARF_DOCKER_TESTS=1`.
// The tier-2 gate is an env var by design (habit 22); tests have no config.rs to route it through.
#[allow(clippy::disallowed_methods)]
fn enabled() -> bool {
    std::env::var_os(ENABLE).is_some_and(|v| v == "1")
}

fn note(failures: &mut Vec<String>, what: &str, result: Result<(), Error>) {
    match result {
        Ok(()) | Err(Error::NotFound(_)) => {}
        Err(e) => failures.push(format!("remove {what}: {e}")),
    }
}

/// Debian's static busybox, which the test images are made of.
pub(crate) fn busybox() -> Vec<u8> {
    images::load_busybox(std::path::Path::new(BUSYBOX)).expect("busybox-static at /bin/busybox")
}

/// `FROM scratch` + busybox applets + `/etc/passwd` with nobody, `CMD sleep 600`.
pub(crate) fn small_context() -> Bytes {
    let mut rootfs = vec![
        Entry::File { path: "/bin/busybox".to_owned(), mode: 0o755, bytes: Bytes::from(busybox()) },
        Entry::Dir { path: "/tmp".to_owned(), mode: 0o1777 },
        Entry::File {
            path: "/etc/passwd".to_owned(),
            mode: 0o644,
            bytes: Bytes::from_static(b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
        },
        Entry::File { path: "/etc/group".to_owned(), mode: 0o644, bytes: Bytes::from_static(b"root:x:0:\nnogroup:x:65534:\n") },
    ];
    rootfs.extend(
        APPLETS
            .iter()
            .map(|a| Entry::Symlink { path: format!("/bin/{a}"), target: "busybox".to_owned() }),
    );
    let dockerfile = "FROM scratch\nCOPY rootfs/ /\nCMD [\"/bin/sh\", \"-c\", \"sleep 600\"]\n";
    images::build_context(&rootfs, dockerfile).expect("a valid context")
}

/// `recipe` retagged as this scope's `wharf-test/<repo>:<run>`.
pub(crate) fn retag(scope: &Scope, repo: &str, recipe: &ImageRecipe) -> ImageRecipe {
    ImageRecipe::new(&scope.image_tag(repo), recipe.context.clone())
}

/// Collects a stream's stdout and stderr separately.
pub(crate) async fn split_output(
    mut stream: futures_util::stream::BoxStream<'static, Result<Output, Error>>,
) -> (String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while let Some(chunk) = stream.next().await {
        match chunk.expect("output") {
            Output::Stdout(b) => out.extend_from_slice(&b),
            Output::Stderr(b) => err.extend_from_slice(&b),
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), String::from_utf8_lossy(&err).into_owned())
}
