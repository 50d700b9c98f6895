//! `wharf images build`: build both images offline, from the embedded binaries.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use serde_json::json;
use wharf_engine::docker::bollard::BollardDocker;
use wharf_engine::images::{EnsureOutcome, ImageBuilder};

use crate::artifacts::Recipes;
use crate::cli::DockerArgs;
use crate::{config, output};

pub(crate) async fn build(args: DockerArgs, json: bool) -> anyhow::Result<ExitCode> {
    let recipes = Recipes::load(&args.busybox)?;
    let host = args.docker_host.or_else(config::docker_host);
    let docker =
        BollardDocker::connect(host.as_deref()).await.context("cannot reach the Docker daemon")?;
    let builder = ImageBuilder::new(Arc::new(docker));
    let mut built = Vec::new();
    for recipe in [&recipes.sidecar, &recipes.testapp] {
        output::note(&format!("building {} …", recipe.reference));
        let progress = |line: &str| tracing::debug!(target: "wharf::images", "{}", line.trim_end());
        let outcome = builder.ensure(recipe, &progress).await?;
        let what = if matches!(outcome, EnsureOutcome::Present) { "up to date" } else { "built" };
        output::note(&format!("{} {what}", recipe.reference));
        built.push(
            json!({"image": recipe.reference, "outcome": what, "contentHash": recipe.content_hash}),
        );
    }
    if json {
        output::json(&built);
    }
    Ok(ExitCode::SUCCESS)
}
