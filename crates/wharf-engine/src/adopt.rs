//! Adoption at engine start: take back what this engine owned before it crashed (W3, W4).
//!
//! * App and sidecar both running: adopted, with the settings saved in `crate::persist`
//!   pushed to the sidecar again.
//! * App running without a running sidecar: the app would run unenforced, so it is removed.
//! * Anything else (an exited app, a lone sidecar, a half-created pair, an unclaimed sidecar of
//!   the warm pool): removed.
//!
//! An app finds its sidecar by the name in its `dev.wharf.sidecar` label (a claimed pooled
//! sidecar keeps its own name and has no container id), else by the id's sidecar name.
//!
//! Nothing here is fatal: a container that cannot be repaired is logged and left for `wharf gc`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use wharf_wire::control::EgressUpdate;

use crate::docker::{self, ContainerSummary, RunState};
use crate::egress::Policy;
use crate::engine::Ctx;
use crate::events::EventKind;
use crate::instance::Adopted;
use crate::labels::{self, Role};
use crate::metrics::Metrics;
use crate::params::{ContainerId, Labels};
use crate::sidecar::{Endpoint, best_endpoint};
use crate::{Error, persist};

#[derive(Debug, Default)]
struct Pair {
    app: Option<ContainerSummary>,
    sidecar: Option<ContainerSummary>,
}

/// Adopts or repairs every container of this engine; returns the adopted ones.
pub(crate) async fn adopt(ctx: &Arc<Ctx>) -> Result<Vec<(ContainerId, Adopted)>, Error> {
    let name = ctx.config.name.as_str();
    let owned = ctx
        .docker
        .list_containers(&[(labels::MANAGED, "true"), (labels::ENGINE, name)])
        .await
        .map_err(Error::docker("list", "owned containers"))?;
    let mut adopted = Vec::new();
    let (pairs, unclaimed) = pair_up(ctx.config.name.as_str(), owned);
    for c in unclaimed {
        match crate::sidecar::launch::remove(&*ctx.docker, &c.name).await {
            Ok(()) => {
                tracing::info!(name = %c.name, "removed an unclaimed sidecar of the warm pool")
            }
            Err(e) => {
                tracing::warn!(name = %c.name, error = %e, "could not remove a pooled sidecar; wharf gc will retry");
            }
        }
    }
    for (id, pair) in pairs {
        match adopt_pair(ctx, &id, &pair).await {
            Some(a) => adopted.push((id, a)),
            None => {
                remove_pair(ctx, &id, &pair).await;
                ctx.store.remove(&id);
            }
        }
    }
    Ok(adopted)
}

/// Pairs each id's app with its sidecar; returns the pairs and the pool's unclaimed sidecars.
fn pair_up(
    engine: &str,
    owned: Vec<ContainerSummary>,
) -> (BTreeMap<ContainerId, Pair>, Vec<ContainerSummary>) {
    let mut pairs: BTreeMap<ContainerId, Pair> = BTreeMap::new();
    // Sidecars without an id are the pool's: claimed ones belong to the app naming them.
    let (pooled, owned): (Vec<_>, Vec<_>) = owned.into_iter().partition(|c| {
        labels::role_of(&c.labels) == Some(Role::Sidecar)
            && !c.labels.contains_key(labels::CONTAINER)
    });
    let mut pooled: BTreeMap<String, ContainerSummary> =
        pooled.into_iter().map(|c| (c.name.clone(), c)).collect();
    for c in owned {
        let Some(id) = c.labels.get(labels::CONTAINER).and_then(|v| ContainerId::new(v).ok())
        else {
            tracing::warn!(name = %c.name, "owned container without a valid id label; leaving it to wharf gc");
            continue;
        };
        let role = labels::role_of(&c.labels);
        let sidecar = (role == Some(Role::App)).then(|| {
            let expected = || crate::spec::Names::new(engine, &id).sidecar;
            c.labels.get(labels::SIDECAR).cloned().unwrap_or_else(expected)
        });
        let pair = pairs.entry(id).or_default();
        match role {
            Some(Role::App) => {
                if let Some(claimed) = sidecar.and_then(|name| pooled.remove(&name)) {
                    pair.sidecar = Some(claimed);
                }
                pair.app = Some(c);
            }
            Some(Role::Sidecar) => pair.sidecar = Some(c),
            _ => {}
        }
    }
    (pairs, pooled.into_values().collect())
}

async fn adopt_pair(ctx: &Ctx, id: &ContainerId, pair: &Pair) -> Option<Adopted> {
    let (app, sidecar) = (pair.app.as_ref()?, pair.sidecar.as_ref()?);
    if app.state != RunState::Running || sidecar.state != RunState::Running {
        return None;
    }
    let info = ctx.docker.inspect_container(&sidecar.name).await.ok()?;
    let token = flag_value(&info.cmd, "--control-token")?;
    let endpoint = best_endpoint(&info, &token).await?;
    let record = ctx.store.load(id).unwrap_or_default();
    let mappings: Vec<_> =
        record.mappings.iter().filter_map(persist::MappingRecord::to_mapping).collect();
    let mut policy = Policy { internet: record.internet, ..Policy::default() };
    for mapping in &mappings {
        policy.table.upsert(mapping.clone());
    }
    let update = policy.update(ctx.egress_port);
    if let Err(e) = put_with_retry(ctx, &endpoint, &update).await {
        tracing::warn!(container.id = %id, error = %e, "adopted sidecar does not answer; removing the pair");
        return None;
    }
    tracing::info!(container.id = %id, "adopted a running container");
    Metrics::inc(&ctx.metrics.adopted);
    ctx.events.emit(Some(id), EventKind::Adopted);
    Some(Adopted {
        sidecar_name: sidecar.name.clone(),
        image: app.image.clone(),
        labels: restored_labels(&record),
        sidecar: endpoint,
        internet: record.internet,
        mappings,
        inactivity: record.inactivity_ms.map(Duration::from_millis),
    })
}

async fn put_with_retry(
    ctx: &Ctx,
    ep: &Endpoint,
    update: &EgressUpdate,
) -> Result<(), crate::sidecar::ControlError> {
    let mut last = None;
    for _ in 0..3 {
        match ctx.control.put_egress(ep, update).await {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(last.unwrap_or(crate::sidecar::ControlError::Timeout(ep.addr)))
}

fn restored_labels(record: &persist::Record) -> Labels {
    Labels::new(record.labels.clone()).unwrap_or_default()
}

async fn remove_pair(ctx: &Ctx, id: &ContainerId, pair: &Pair) {
    let names = [&pair.app, &pair.sidecar];
    for c in names.into_iter().flatten() {
        let outcome = match ctx.docker.remove_container(&c.name).await {
            Ok(()) | Err(docker::Error::NotFound(_)) => "removed",
            Err(e) => {
                tracing::warn!(container.id = %id, name = %c.name, error = %e, "could not remove a leftover; wharf gc will retry");
                continue;
            }
        };
        let action = format!("{outcome} leftover {} ({:?})", c.name, c.state);
        tracing::info!(container.id = %id, "{action}");
        ctx.events.emit(Some(id), EventKind::Repaired { action });
    }
}

/// The value after `flag` in an argv.
fn flag_value(argv: &[String], flag: &str) -> Option<String> {
    argv.iter().position(|a| a == flag).and_then(|i| argv.get(i + 1)).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_values() {
        let argv: Vec<String> =
            ["--a", "1", "--control-token", "tok"].iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(flag_value(&argv, "--control-token").as_deref(), Some("tok"));
        assert_eq!(flag_value(&argv, "--missing"), None);
        assert_eq!(flag_value(&argv[..3], "--control-token"), None);
    }
}
