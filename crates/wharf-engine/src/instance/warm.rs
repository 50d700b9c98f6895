//! Warm sidecars: a start joins a network namespace that already exists when it can.
//!
//! * **Kept** (seed 000): a sidecar outlives its app, and the next start of the same id reuses
//!   it, until the warm TTL or the engine's shutdown.
//! * **Pooled** (`crate::pool`): otherwise the start claims one the pool made ahead of demand.
//!
//! Unlike the seed, such a sidecar is checked before it is trusted (W2): the start pushes the
//! current egress config to it, and only one that accepts it within [`WARM_CHECK`] is used,
//! with that config in force. One that died, was removed or stopped answering is removed and
//! the start goes on with the next source (a fresh sidecar at the end); the caller sees no
//! error.
//!
//! A kept sidecar keeps its CA and token: both belong to this id alone, the token was never in
//! an app container, and the CA's key never leaves the sidecar. Why a pooled one needs no new
//! ones is in `crate::pool`.

use std::time::Duration;

use tokio::time::Instant;

use super::Instance;
use crate::events::EventKind;
use crate::metrics::Metrics;
use crate::sidecar::Endpoint;
use crate::spec::Names;

/// How long a warm sidecar may take to accept the egress config before it is given up on.
const WARM_CHECK: Duration = Duration::from_millis(500);

/// A running sidecar whose app has ended.
#[derive(Debug, Clone)]
pub(super) struct Warm {
    endpoint: Endpoint,
    /// When it is removed if no start has claimed it.
    pub(super) until: Instant,
}

impl Instance {
    /// Keeps the current sidecar, if one runs, for the next start; with a warm TTL of zero,
    /// removes it instead.
    pub(super) async fn keep_warm(&mut self) {
        let Some(endpoint) = self.snapshot().sidecar else { return };
        let ttl = self.ctx.config.warm_ttl;
        if ttl.is_zero() {
            self.drop_sidecar().await;
            return;
        }
        self.warm = Some(Warm { endpoint, until: Instant::now() + ttl });
    }

    /// The kept sidecar, once it has accepted the current egress config.
    pub(super) async fn claim_warm(&mut self) -> Option<Endpoint> {
        let Warm { endpoint, .. } = self.warm.take()?;
        match self.check(&endpoint).await {
            Ok(()) => {
                Metrics::inc(&self.ctx.metrics.warm_starts);
                Some(endpoint)
            }
            Err(why) => {
                self.give_up("kept", &why).await;
                None
            }
        }
    }

    /// A sidecar from the warm pool, once it has accepted the current egress config. It keeps
    /// its own name, which the app's labels record.
    pub(super) async fn claim_pooled(&mut self) -> Option<Endpoint> {
        let pooled = self.ctx.pool.take()?;
        self.names.sidecar = pooled.name;
        self.register(&pooled.endpoint.token);
        match self.check(&pooled.endpoint).await {
            Ok(()) => {
                Metrics::inc(&self.ctx.metrics.pooled_starts);
                Some(pooled.endpoint)
            }
            Err(why) => {
                self.give_up("pooled", &why).await;
                None
            }
        }
    }

    /// Removes the kept sidecar, if any, and forgets its token.
    pub(super) async fn retire_warm(&mut self, why: &str) {
        if self.warm.take().is_none() {
            return;
        }
        tracing::debug!(container.id = %self.id, %why, "removing the kept sidecar");
        self.drop_sidecar().await;
    }

    /// Removes the current sidecar (logging a failure, which `wharf gc` mends), forgets its
    /// token, and names the next one after the id again.
    pub(super) async fn drop_sidecar(&mut self) {
        self.unregister();
        let name = std::mem::replace(
            &mut self.names.sidecar,
            Names::new(self.ctx.config.name.as_str(), &self.id).sidecar,
        );
        if let Err(e) = self.remove_container(&name).await {
            tracing::warn!(container.id = %self.id, %name, error = %e, "could not remove the sidecar; wharf gc will");
        }
    }

    /// Pushes the current egress config to a sidecar this start did not make.
    async fn check(&self, endpoint: &Endpoint) -> Result<(), String> {
        let update = self.egress_update();
        match tokio::time::timeout(WARM_CHECK, self.ctx.control.put_egress(endpoint, &update)).await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {WARM_CHECK:?}")),
        }
    }

    async fn give_up(&mut self, which: &str, why: &str) {
        tracing::info!(container.id = %self.id, %why, "the {which} sidecar failed its check; trying the next");
        Metrics::inc(&self.ctx.metrics.warm_replaced);
        let action = format!("removed the {which} sidecar, which failed its check: {why}");
        self.ctx.events.emit(Some(&self.id), EventKind::Repaired { action });
        self.drop_sidecar().await;
    }
}
