//! `ImageBuilder`: makes sure Docker has an image whose content hash matches its recipe,
//! building each reference at most once at a time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use std::time::Duration;

use crate::docker::{self, BuildSpec, DockerApi};
use crate::labels;

use super::{ImageError, ImageRecipe};

/// How many times a failing build is tried.
const BUILD_ATTEMPTS: u64 = 3;

/// What [`ImageBuilder::ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnsureOutcome {
    /// An image with this reference and content hash was already there.
    Present,
    /// The image was built.
    Built,
}

/// Builds recipes into Docker images on demand. Share one per process: concurrent
/// [`ensure`](ImageBuilder::ensure)s of one reference build once.
#[derive(Debug)]
pub struct ImageBuilder {
    docker: Arc<dyn DockerApi>,
    /// One turn lock per reference; held across the inspect and the build.
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl ImageBuilder {
    /// A builder that talks to `docker`.
    pub fn new(docker: Arc<dyn DockerApi>) -> ImageBuilder {
        ImageBuilder { docker, turns: Mutex::new(HashMap::new()) }
    }

    /// Makes sure `recipe.reference` exists with `recipe.content_hash` as its
    /// [`labels::CONTENT_HASH`] label, building it (with [`labels::image_labels`]) otherwise.
    /// `progress` receives each line of build output.
    pub async fn ensure(
        &self,
        recipe: &ImageRecipe,
        progress: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<EnsureOutcome, ImageError> {
        let turn = self.turn(&recipe.reference);
        let _turn = turn.lock().await;
        if self.is_current(recipe).await? {
            return Ok(EnsureOutcome::Present);
        }
        tracing::info!(image = %recipe.reference, hash = %recipe.content_hash, "building image");
        let spec = BuildSpec {
            tag: recipe.reference.clone(),
            labels: labels::image_labels(&recipe.content_hash),
            context: recipe.context.clone(),
        };
        let mut attempt = 1;
        loop {
            match self.docker.build_image(spec.clone(), progress).await {
                Ok(()) => return Ok(EnsureOutcome::Built),
                // A build is idempotent, and the legacy builder can lose a cached layer that a
                // concurrent `rmi` (another engine, `wharf gc`) removed mid-build: try again.
                Err(source)
                    if attempt < BUILD_ATTEMPTS
                        && !matches!(source, docker::Error::Unavailable(_)) =>
                {
                    tracing::warn!(image = %recipe.reference, attempt, error = %source, "image build failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                    attempt += 1;
                }
                Err(source) => {
                    return Err(ImageError::Build { reference: recipe.reference.clone(), source });
                }
            }
        }
    }

    async fn is_current(&self, recipe: &ImageRecipe) -> Result<bool, ImageError> {
        let image = self.docker.inspect_image(&recipe.reference).await.map_err(|source| {
            ImageError::Inspect { reference: recipe.reference.clone(), source }
        })?;
        let hash = image.as_ref().and_then(|i| i.labels.get(labels::CONTENT_HASH));
        Ok(hash == Some(&recipe.content_hash))
    }

    fn turn(&self, reference: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut turns = self.turns.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(turns.entry(reference.to_owned()).or_default())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use expect_test::expect;

    use super::*;
    use crate::docker::fake::{FakeDocker, Op};
    use crate::docker::{self, Error};

    fn recipe(content: &'static str) -> ImageRecipe {
        ImageRecipe::new("wharf/testapp:latest", Bytes::from_static(content.as_bytes()))
    }

    fn quiet(_: &str) {}

    #[tokio::test]
    async fn concurrent_ensures_build_once() {
        let fake = FakeDocker::new();
        let builder = Arc::new(ImageBuilder::new(Arc::new(fake.clone())));
        let gate = fake.gate(Op::BuildImage);
        let ensures: Vec<_> = (0..3)
            .map(|_| {
                let builder = Arc::clone(&builder);
                tokio::spawn(async move { builder.ensure(&recipe("v1"), &quiet).await })
            })
            .collect();
        gate.arrived(1).await;
        // Let the other two run into the turn lock before the build finishes.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        gate.open();
        let mut outcomes = Vec::new();
        for ensure in ensures {
            outcomes.push(ensure.await.expect("join").expect("ensure"));
        }
        outcomes.sort_by_key(|o| *o == EnsureOutcome::Present);
        assert_eq!(
            outcomes,
            [EnsureOutcome::Built, EnsureOutcome::Present, EnsureOutcome::Present]
        );
        assert_eq!(fake.builds().len(), 1);
        expect![[r#"
            inspect-image wharf/testapp:latest
            build wharf/testapp:latest
            inspect-image wharf/testapp:latest
            inspect-image wharf/testapp:latest
        "#]]
        .assert_eq(&fake.call_log());
    }

    #[tokio::test]
    async fn present_with_the_same_hash_is_kept() {
        let fake = FakeDocker::new();
        let v1 = recipe("v1");
        fake.add_image(&v1.reference, labels::image_labels(&v1.content_hash));
        let builder = ImageBuilder::new(Arc::new(fake.clone()));
        assert_eq!(builder.ensure(&v1, &quiet).await.ok(), Some(EnsureOutcome::Present));
        assert!(fake.builds().is_empty());
    }

    #[tokio::test]
    async fn a_different_hash_is_rebuilt_with_image_labels() {
        let fake = FakeDocker::new();
        let builder = ImageBuilder::new(Arc::new(fake.clone()));
        let v1 = recipe("v1");
        fake.add_image(&v1.reference, labels::image_labels("stale"));
        assert_eq!(builder.ensure(&v1, &quiet).await.ok(), Some(EnsureOutcome::Built));
        let v2 = recipe("v2");
        assert_eq!(builder.ensure(&v2, &quiet).await.ok(), Some(EnsureOutcome::Built));
        assert_eq!(builder.ensure(&v2, &quiet).await.ok(), Some(EnsureOutcome::Present));

        let builds = fake.builds();
        assert_eq!(builds.len(), 2);
        assert_eq!(builds[1].labels, labels::image_labels(&v2.content_hash));
        assert_eq!(builds[1].context, v2.context);
    }

    #[tokio::test(start_paused = true)]
    async fn docker_failures_name_the_image() {
        let fake = FakeDocker::new();
        let builder = ImageBuilder::new(Arc::new(fake.clone()));
        fake.fail_next(Op::InspectImage, Error::Unavailable("connection refused".to_owned()));
        let err = builder.ensure(&recipe("v1"), &quiet).await.expect_err("inspect fails");
        assert_eq!(err.to_string(), "cannot inspect image wharf/testapp:latest");
        assert!(matches!(err, ImageError::Inspect { source: docker::Error::Unavailable(_), .. }));

        let copy_failed = || Error::Other { status: 0, message: "COPY failed".to_owned() };
        for _ in 0..BUILD_ATTEMPTS {
            fake.fail_next(Op::BuildImage, copy_failed());
        }
        let err = builder.ensure(&recipe("v1"), &quiet).await.expect_err("build fails");
        assert_eq!(err.to_string(), "building image wharf/testapp:latest failed");
        assert!(builder.ensure(&recipe("v1"), &quiet).await.is_ok(), "a later ensure retries");
    }

    /// A build that loses a cached layer to a concurrent `rmi` succeeds on a later attempt.
    #[tokio::test(start_paused = true)]
    async fn a_failed_build_is_retried() {
        let fake = FakeDocker::new();
        let builder = ImageBuilder::new(Arc::new(fake.clone()));
        fake.fail_next(
            Op::BuildImage,
            Error::Other { status: 0, message: "failed to get digest".to_owned() },
        );
        assert_eq!(
            builder.ensure(&recipe("v1"), &quiet).await.expect("retried"),
            EnsureOutcome::Built
        );
        assert_eq!(fake.builds().len(), 1, "the failed attempt has no effect");
    }
}
