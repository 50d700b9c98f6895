//! Warm sidecars (seed 000): a sidecar outlives its app, so the next start of the same id
//! joins a network namespace that already exists instead of building a new one.
//!
//! Unlike the seed, a kept sidecar is checked before it is trusted (W2): the start pushes the
//! current egress config to it, and only a sidecar that accepts it within [`WARM_CHECK`] is
//! reused, with that config in force. One that died, was removed or stopped answering is
//! removed and replaced by a fresh one in the same call; the caller sees no error.
//!
//! The kept sidecar keeps its CA and token: both belong to this id alone, the token was never
//! in an app container, and the CA's key never leaves the sidecar.

use std::time::Duration;

use tokio::time::Instant;

use super::Instance;
use crate::events::EventKind;
use crate::metrics::Metrics;
use crate::sidecar::Endpoint;

/// How long a kept sidecar may take to accept the egress config before a fresh one is made.
const WARM_CHECK: Duration = Duration::from_millis(500);

/// A running sidecar whose app has ended.
#[derive(Debug, Clone)]
pub(super) struct Warm {
    endpoint: Endpoint,
    /// When it is removed if no start has claimed it.
    pub(super) until: Instant,
}

impl Instance {
    /// Keeps the current sidecar, if one runs, for the next start.
    pub(super) fn keep_warm(&mut self) {
        if let Some(endpoint) = self.snapshot().sidecar {
            let until = Instant::now() + self.ctx.config.warm_ttl;
            self.warm = Some(Warm { endpoint, until });
        }
    }

    /// The kept sidecar, once it has accepted the current egress config; `None` when there is
    /// none or it failed the check (it is removed then, so a fresh one can take its name).
    pub(super) async fn claim_warm(&mut self) -> Option<Endpoint> {
        let Warm { endpoint, .. } = self.warm.take()?;
        let update = self.egress_update();
        let why =
            match tokio::time::timeout(WARM_CHECK, self.ctx.control.put_egress(&endpoint, &update))
                .await
            {
                Ok(Ok(())) => {
                    Metrics::inc(&self.ctx.metrics.warm_starts);
                    return Some(endpoint);
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {WARM_CHECK:?}"),
            };
        tracing::info!(container.id = %self.id, %why, "the kept sidecar failed its check; making a fresh one");
        Metrics::inc(&self.ctx.metrics.warm_replaced);
        let action = format!("replaced the kept sidecar, which failed its check: {why}");
        self.ctx.events.emit(Some(&self.id), EventKind::Repaired { action });
        self.unregister();
        if let Err(e) = self.remove_container(&self.names.sidecar).await {
            tracing::warn!(container.id = %self.id, error = %e, "could not remove the kept sidecar");
        }
        None
    }

    /// Removes the kept sidecar, if any, and forgets its token.
    pub(super) async fn retire_warm(&mut self, why: &str) {
        if self.warm.take().is_none() {
            return;
        }
        tracing::debug!(container.id = %self.id, %why, "removing the kept sidecar");
        self.unregister();
        if let Err(e) = self.remove_container(&self.names.sidecar).await {
            tracing::warn!(container.id = %self.id, error = %e, "could not remove the kept sidecar; wharf gc will");
        }
    }
}
