//! `wharf gc`: remove what belongs to no live engine.
//!
//! Every engine-owned object names its engine's lock file in a label (`crate::labels`). An
//! engine is dead when nobody holds that lock; its containers, volumes and networks are then
//! removed, with the lock taken meanwhile so the engine cannot restart half-way through.
//! Images are a shared cache: only dangling ones (a rebuilt `wharf/testapp:latest` leaves its
//! predecessor untagged) are removed, and one still used by a container is kept.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::docker::{self, DockerApi, LabelledObject, ObjectKind};
use crate::labels;
use crate::lock::{EngineLock, Liveness};

/// What to collect.
#[derive(Debug, Clone, Default)]
pub struct GcOptions {
    /// Only this engine's objects (tests use it to stay out of each other's way).
    pub engine: Option<String>,
    /// List, but remove nothing.
    pub dry_run: bool,
}

/// What `gc` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Objects removed (or, with `dry_run`, that would be).
    pub removed: Vec<LabelledObject>,
    /// Engines found alive, whose objects were kept.
    pub live_engines: Vec<String>,
    /// Objects that could not be removed, with why.
    pub failures: Vec<(LabelledObject, String)>,
}

/// Removes the objects of dead engines.
pub async fn collect(
    docker: &dyn DockerApi,
    options: &GcOptions,
) -> Result<GcReport, docker::Error> {
    let mut report = GcReport::default();
    for ((engine, lock), objects) in by_engine(docker, options).await? {
        let lock_path = PathBuf::from(&lock);
        // Hold a dead engine's lock while we remove, so it cannot restart half-way.
        let held = match EngineLock::liveness(&lock_path) {
            Ok(Liveness::Alive) => {
                report.live_engines.push(engine);
                continue;
            }
            Ok(Liveness::Dead) => EngineLock::try_take(&lock_path).ok().flatten(),
            Err(e) => {
                tracing::warn!(%engine, lock = %lock, error = %e, "cannot check the engine lock; treating the engine as dead");
                None
            }
        };
        remove_all(docker, objects, options.dry_run, &mut report).await;
        drop(held);
    }
    remove_dangling_images(docker, options, &mut report).await?;
    Ok(report)
}

/// Removes untagged wharf images; an image a container still uses is kept, not a failure.
async fn remove_dangling_images(
    docker: &dyn DockerApi,
    options: &GcOptions,
    report: &mut GcReport,
) -> Result<(), docker::Error> {
    if options.engine.is_some() {
        // Scoped to one engine: images belong to no engine.
        return Ok(());
    }
    let dangling = docker
        .list_labelled(ObjectKind::Image, labels::MANAGED)
        .await?
        .into_iter()
        .filter(|i| i.name == i.id);
    for image in dangling {
        let result = if options.dry_run {
            Ok(())
        } else {
            docker.remove_object(ObjectKind::Image, &image.id).await
        };
        match result {
            Ok(()) | Err(docker::Error::NotFound(_)) => report.removed.push(image),
            Err(docker::Error::Conflict(_)) => {}
            Err(e) => report.failures.push((image, e.to_string())),
        }
    }
    Ok(())
}

type Groups = BTreeMap<(String, String), Vec<LabelledObject>>;

async fn by_engine(docker: &dyn DockerApi, options: &GcOptions) -> Result<Groups, docker::Error> {
    let mut objects = Vec::new();
    for kind in [ObjectKind::Container, ObjectKind::Volume, ObjectKind::Network] {
        objects.extend(docker.list_labelled(kind, labels::ENGINE).await?);
    }
    let mut groups = Groups::new();
    for object in objects {
        let Some(engine) = object.labels.get(labels::ENGINE).cloned() else { continue };
        if options.engine.as_ref().is_some_and(|only| *only != engine) {
            continue;
        }
        let lock = object.labels.get(labels::ENGINE_LOCK).cloned().unwrap_or_default();
        groups.entry((engine, lock)).or_default().push(object);
    }
    Ok(groups)
}

async fn remove_all(
    docker: &dyn DockerApi,
    mut objects: Vec<LabelledObject>,
    dry_run: bool,
    report: &mut GcReport,
) {
    // Containers before the volumes and networks they use.
    objects.sort_by_key(|o| o.kind);
    for object in objects {
        let result =
            if dry_run { Ok(()) } else { docker.remove_object(object.kind, &object.id).await };
        match result {
            Ok(()) | Err(docker::Error::NotFound(_)) => report.removed.push(object),
            Err(e) => report.failures.push((object, e.to_string())),
        }
    }
}
