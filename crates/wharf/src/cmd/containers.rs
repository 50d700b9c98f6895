//! Lifecycle verbs: start, status, ps, wait, destroy, signal, health.

use std::process::ExitCode;

use http::Method;
use serde_json::{Map, Value, json};
use wharf_api::dto::{ContainerStatus, ContainerSummary, HealthBody, WaitBody};

use super::container_path;
use crate::cli::{SignalArgs, StartArgs};
use crate::client::Client;
use crate::{UsageError, output};

pub(crate) async fn start(client: &Client, args: StartArgs) -> anyhow::Result<ExitCode> {
    let path = container_path(&args.id, "/start")?;
    let mut labels = Map::new();
    for raw in &args.labels {
        let (name, value) = raw
            .split_once('=')
            .ok_or_else(|| UsageError(format!("--label {raw:?} must look like name=value")))?;
        labels.insert(name.to_owned(), Value::String(value.to_owned()));
    }
    let mut body = json!({
        "image": args.image,
        "env": args.env,
        "enableInternet": args.internet,
        "labels": labels,
    });
    if !args.entrypoint.is_empty() {
        body["entrypoint"] = json!(args.entrypoint);
    }
    if let Some(ms) = args.hard_timeout_ms {
        body["hardTimeoutMs"] = json!(ms);
    }
    if args.vcpu.is_some() || args.memory_mib.is_some() {
        body["instance"] = json!({"vcpu": args.vcpu, "memoryMib": args.memory_mib});
    }
    client.ok(Method::POST, &path, Some(&body)).await?;
    output::line(&format!("started {}", args.id));
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn status(client: &Client, id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let s: ContainerStatus = client.json(Method::GET, &container_path(id, "")?, None).await?;
    if json {
        output::json(&s);
    } else {
        let exit = match (s.exit_code, &s.exit_reason) {
            (Some(code), Some(reason)) => format!(" (exit {code}, {reason})"),
            _ => String::new(),
        };
        output::line(&format!("{}: {}{exit}", s.id, s.state));
        if let Some(image) = &s.image {
            output::line(&format!("  image:  {image}"));
        }
        if !s.labels.is_empty() {
            output::line(&format!("  labels: {}", Value::Object(s.labels)));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn ps(client: &Client, json: bool) -> anyhow::Result<ExitCode> {
    let list: Vec<ContainerSummary> = client.json(Method::GET, "/v1/containers", None).await?;
    if json {
        output::json(&list);
        return Ok(ExitCode::SUCCESS);
    }
    output::line(&format!("{:<32} {:<8} {}", "ID", "STATE", "IMAGE"));
    for c in list {
        let state = if c.running { "running" } else { "stopped" };
        output::line(&format!("{:<32} {:<8} {}", c.id, state, c.image.unwrap_or_default()));
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn wait(client: &Client, id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let w: WaitBody = client.json(Method::POST, &container_path(id, "/wait")?, None).await?;
    if json {
        output::json(&w);
    } else {
        output::line(&format!("{} ({})", w.exit_code, w.reason));
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn destroy(client: &Client, id: &str) -> anyhow::Result<ExitCode> {
    client.ok(Method::POST, &container_path(id, "/destroy")?, None).await?;
    output::line(&format!("destroyed {id}"));
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn signal(client: &Client, args: SignalArgs) -> anyhow::Result<ExitCode> {
    let signal =
        wharf_engine::params::Signal::parse(&args.signal).map_err(|e| UsageError(e.to_string()))?;
    let body = json!({"signal": signal.number()});
    client.ok(Method::POST, &container_path(&args.id, "/signal")?, Some(&body)).await?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn health(client: &Client, json: bool) -> anyhow::Result<ExitCode> {
    let h: HealthBody = client.json(Method::GET, "/v1/health", None).await?;
    if json {
        output::json(&h);
    } else {
        let docker = match (&h.docker.version, &h.docker.error) {
            (Some(v), _) => {
                format!("{v} (API {})", h.docker.api_version.clone().unwrap_or_default())
            }
            (None, Some(e)) => format!("unreachable: {e}"),
            _ => "unknown".to_owned(),
        };
        output::line(&format!("wharf {} (engine {})", h.version, h.engine));
        output::line(&format!("  docker:        {docker}"));
        output::line(&format!("  sidecar image: {}", h.sidecar_image));
        output::line(&format!("  interception:  {}", h.interception));
        output::line(&format!("  egress:        {}", h.egress_listener));
    }
    Ok(ExitCode::SUCCESS)
}
