//! `wharf gc`: remove what belongs to no live engine.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;
use wharf_engine::docker::bollard::BollardDocker;
use wharf_engine::gc::{self, GcOptions};

use crate::cli::GcArgs;
use crate::{config, output};

pub(crate) async fn gc(args: GcArgs, json: bool) -> anyhow::Result<ExitCode> {
    let host = args.docker_host.or_else(config::docker_host);
    let docker =
        BollardDocker::connect(host.as_deref()).await.context("cannot reach the Docker daemon")?;
    let options = GcOptions { engine: args.engine, dry_run: args.dry_run };
    let report = gc::collect(&docker, &options).await.context("listing Docker objects failed")?;
    let verb = if args.dry_run { "would remove" } else { "removed" };
    if json {
        let removed: Vec<_> = report.removed.iter().map(|o| json!({"kind": format!("{:?}", o.kind).to_lowercase(), "id": o.id, "name": o.name})).collect();
        let failures: Vec<_> =
            report.failures.iter().map(|(o, why)| json!({"name": o.name, "error": why})).collect();
        output::json(
            &json!({"dryRun": args.dry_run, "removed": removed, "liveEngines": report.live_engines, "failures": failures}),
        );
    } else {
        for o in &report.removed {
            output::line(&format!("{verb} {:?} {}", o.kind, o.name).to_lowercase());
        }
        for (o, why) in &report.failures {
            output::error(&format!("could not remove {}: {why}", o.name));
        }
        output::line(&format!(
            "{verb} {} object(s); kept {} live engine(s)",
            report.removed.len(),
            report.live_engines.len()
        ));
    }
    Ok(if report.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
