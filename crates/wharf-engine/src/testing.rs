//! Test support: an engine over the fake Docker and fake sidecar control (tier 1).

use std::sync::Arc;
use std::time::Duration;

use crate::docker::fake::FakeDocker;
use crate::params::{ContainerId, ImageRef, Labels, Shape, StartParams};
use crate::sidecar::fake::FakeControl;
use crate::{Engine, EngineConfig, EngineName, images};

pub(crate) const IMAGE: &str = "app:1";
/// The Docker names of container `c1` of engine `t`.
pub(crate) const APP: &str = "wharf-t-c1";
pub(crate) const SIDECAR: &str = "wharf-t-c1-sidecar";

pub(crate) struct Harness {
    pub(crate) engine: Engine,
    pub(crate) docker: FakeDocker,
    pub(crate) control: FakeControl,
    pub(crate) dir: tempfile::TempDir,
}

fn recipe() -> images::ImageRecipe {
    images::sidecar_recipe(b"sidecar binary", b"busybox")
}

pub(crate) fn config(dir: &std::path::Path) -> EngineConfig {
    let mut config = EngineConfig::new(EngineName::new("t").unwrap(), dir, recipe());
    config.readiness_timeout = Duration::from_secs(2);
    config.stop_grace = Duration::from_secs(5);
    // Off unless a test turns it on: a background refill would change every call log.
    config.pool_min = 0;
    config.pool_max = 0;
    config
}

pub(crate) async fn harness() -> Harness {
    harness_with(|_| {}).await
}

/// A harness whose config `tweak` adjusts first.
pub(crate) async fn harness_with(tweak: impl FnOnce(&mut EngineConfig)) -> Harness {
    let docker = FakeDocker::new().with_image(IMAGE);
    let control = FakeControl::new();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    tweak(&mut config);
    let engine =
        Engine::new(config, Arc::new(docker.clone()), Arc::new(control.clone())).await.unwrap();
    Harness { engine, docker, control, dir }
}

impl Harness {
    /// A second engine on the same daemon and state, as after a crash and restart.
    pub(crate) async fn restart(self) -> Harness {
        let Harness { engine, docker, control, dir } = self;
        drop(engine);
        // Let the old actors see their handles go.
        tokio::task::yield_now().await;
        let engine =
            Engine::new(config(dir.path()), Arc::new(docker.clone()), Arc::new(control.clone()))
                .await
                .unwrap();
        Harness { engine, docker, control, dir }
    }

    /// The token the engine gave container `c1`'s sidecar (from its command line).
    pub(crate) fn token(&self) -> String {
        let cmd = self.docker.spec(SIDECAR).and_then(|s| s.cmd).unwrap();
        let at = cmd.iter().position(|a| a == "--control-token").unwrap();
        cmd[at + 1].clone()
    }
}

pub(crate) fn id(raw: &str) -> ContainerId {
    ContainerId::new(raw).unwrap()
}

pub(crate) fn params() -> StartParams {
    StartParams {
        image: ImageRef::new(IMAGE).unwrap(),
        entrypoint: None,
        env: Vec::new(),
        enable_internet: false,
        labels: Labels::default(),
        hard_timeout: None,
        shape: Shape::default(),
    }
}
