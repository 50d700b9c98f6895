//! `wharf egress`, `wharf egress-log` and `wharf why`.

use std::process::ExitCode;

use http::Method;
use http_body_util::BodyExt;
use serde_json::json;
use wharf_api::dto::{EgressList, EventBody, WhyBody};

use super::container_path;
use crate::cli::{EgressArgs, EgressLogArgs, WhyArgs};
use crate::client::Client;
use crate::{UsageError, output};

pub(crate) async fn egress(
    client: &Client,
    args: EgressArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let path = container_path(&args.id, "/egress")?;
    match (args.protocol, args.host_port, args.target) {
        (Some(protocol), Some(host_port), Some(target)) => {
            let body = json!({"protocol": protocol, "hostPort": host_port, "target": target});
            client.ok(Method::POST, &path, Some(&body)).await?;
            output::line(&format!("{} {protocol} {host_port} -> {target}", args.id));
        }
        (None, None, None) => {
            let list: EgressList = client.json(Method::GET, &path, None).await?;
            if json {
                output::json(&list);
            } else {
                output::line(&format!("internet: {}", if list.internet { "on" } else { "off" }));
                for (i, m) in list.mappings.iter().enumerate() {
                    output::line(&format!(
                        "{:>3}  {:<5} {:<32} -> {}",
                        i + 1,
                        m.protocol,
                        m.host_port,
                        m.target
                    ));
                }
                output::line(&format!("dns allow-list: {:?}", list.dns_allow_list));
            }
        }
        _ => {
            return Err(UsageError(
                "give PROTOCOL HOST_PORT TARGET to add a mapping, or nothing to list them"
                    .to_owned(),
            )
            .into());
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn log(
    client: &Client,
    args: EgressLogArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let history: Vec<EventBody> =
        client.json(Method::GET, &container_path(&args.id, "/egress/log")?, None).await?;
    let last = history.last().map_or(0, |e| e.seq);
    for event in &history {
        print_event(event, json);
    }
    if args.follow {
        follow(client, &args.id, last, json).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Streams `/v1/events` and prints this container's egress and DNS events after `after`.
async fn follow(client: &Client, id: &str, after: u64, json: bool) -> anyhow::Result<()> {
    let mut body = client.stream(Method::GET, "/v1/events").await?.into_body();
    let mut pending = String::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else { continue };
        pending.push_str(&String::from_utf8_lossy(&data));
        while let Some(end) = pending.find("\n\n") {
            let block: String = pending.drain(..end + 2).collect();
            let Some(line) = block.lines().find_map(|l| l.strip_prefix("data:")) else { continue };
            let Ok(event) = serde_json::from_str::<EventBody>(line.trim()) else { continue };
            let mine = event.container.as_deref() == Some(id)
                && matches!(event.kind.as_str(), "egress" | "dns");
            if mine && event.seq > after {
                print_event(&event, json);
            }
        }
    }
    Ok(())
}

fn print_event(event: &EventBody, json: bool) {
    if json {
        output::line(&serde_json::to_string(event).unwrap_or_default());
        return;
    }
    let d = &event.details;
    let text = |k: &str| d.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
    let num = |k: &str| d.get(k).and_then(serde_json::Value::as_f64).unwrap_or(0.0);
    let line = if event.kind == "dns" {
        let addresses = d.get("addresses").map(ToString::to_string).unwrap_or_default();
        format!(
            "dns    {:<30} {:<10} {addresses} rule={}",
            text("name"),
            text("decision"),
            text("rule")
        )
    } else {
        let name =
            [text("sni"), text("host")].into_iter().find(|s| !s.is_empty()).unwrap_or_default();
        format!(
            "{:<6} {:<22} {:<24} {:<12} rule={} up={} down={} {:.1}ms {}",
            text("protocol"),
            text("destination"),
            name,
            text("decision"),
            text("rule"),
            num("bytesUp"),
            num("bytesDown"),
            num("durationMs"),
            text("reason")
        )
    };
    output::line(&line);
}

pub(crate) async fn why(client: &Client, args: WhyArgs, json: bool) -> anyhow::Result<ExitCode> {
    let mut query = format!("/egress/why?to={}", encode(&args.destination));
    if let Some(p) = &args.protocol {
        query.push_str(&format!("&protocol={}", encode(p)));
    }
    let why: WhyBody = client.json(Method::GET, &container_path(&args.id, &query)?, None).await?;
    if json {
        output::json(&why);
    } else {
        output::line(&why.explanation);
        let via = why.rule.map(|r| format!(" by {r}")).unwrap_or_default();
        let to = why.target.map(|t| format!(" -> {t}")).unwrap_or_default();
        output::line(&format!("=> {}{via}{to}", why.decision));
    }
    Ok(ExitCode::SUCCESS)
}

/// Percent-encodes a query value.
fn encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
