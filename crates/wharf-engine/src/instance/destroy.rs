//! `destroy`: remove the app (SIGKILL, so waiters see 137). Its sidecar stays up, warm, for the
//! next start of the same id (`warm.rs`), until the warm TTL or the engine's shutdown.
//!
//! Idempotent: destroying a slot with nothing running succeeds. Any waiter returns with
//! `destroyed: true`.

use super::Instance;
use crate::Error;
use crate::lifecycle::{Exit, ExitReason, Status};
use crate::metrics::Metrics;

/// The exit code a destroyed app reports (SIGKILL), as workerd's tests pin (W14).
pub(crate) const DESTROYED_EXIT_CODE: i64 = 137;

impl Instance {
    pub(super) async fn destroy(&mut self) -> Result<(), Error> {
        let was_running = self.snapshot().status == Status::Running;
        // Ignore the exit report of the run we are about to end (W39).
        self.generation += 1;
        self.remove_container(&self.names.app).await?;
        self.keep_warm().await;
        self.ctx.store.remove(&self.id);
        if was_running {
            self.finish_run(Exit { code: DESTROYED_EXIT_CODE, reason: ExitReason::Destroyed });
        }
        self.publish(|s| {
            s.image = None;
            s.labels = Default::default();
            s.sidecar = None;
            s.app_container = None;
        });
        Metrics::inc(&self.ctx.metrics.destroys);
        Ok(())
    }

    /// Removes both containers, logging failures; for rollbacks where the first error matters.
    pub(super) async fn remove_both(&mut self) {
        self.warm = None;
        let app = self.names.app.clone();
        if let Err(e) = self.remove_container(&app).await {
            tracing::warn!(container.id = %self.id, name = %app, error = %e, "could not remove container");
        }
        self.drop_sidecar().await;
    }

    /// Force-removes `name`; gone already is fine; a removal in progress is waited for.
    pub(super) async fn remove_container(&self, name: &str) -> Result<(), Error> {
        crate::sidecar::launch::remove(self.docker(), name).await
    }
}
