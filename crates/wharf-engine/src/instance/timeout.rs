//! Timeouts: the hard deadline from start, and the inactivity timeout that counts from the last
//! connection or exec and is reset by activity (W16). Inactivity signals first: SIGTERM, then
//! SIGKILL after the grace period.

use std::time::Duration;

use tokio::time::Instant;

use super::Instance;
use crate::Error;
use crate::lifecycle::{ExitReason, Status};
use crate::params::Signal;

impl Instance {
    pub(super) fn set_inactivity_timeout(&mut self, after: Duration) -> Result<(), Error> {
        self.inactivity = Some(after);
        self.activity.touch();
        if self.snapshot().status == Status::Running {
            self.save_record();
        }
        Ok(())
    }

    /// The next moment a timer needs the actor, if any.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        if self.snapshot().status != Status::Running {
            return self.warm.as_ref().map(|w| w.until);
        }
        if let Some((_, kill_at)) = self.pending_stop {
            return Some(kill_at);
        }
        let idle = self.inactivity.and_then(|after| Some(self.activity.idle_since()? + after));
        [self.hard_deadline, idle].into_iter().flatten().min()
    }

    pub(super) async fn on_deadline(&mut self) {
        let now = Instant::now();
        if self.snapshot().status != Status::Running {
            if self.warm.as_ref().is_some_and(|w| now >= w.until) {
                self.retire_warm("it was idle longer than the warm TTL").await;
            }
            return;
        }
        if let Some((_, kill_at)) = self.pending_stop {
            if now >= kill_at {
                self.stop_with(Signal::KILL).await;
            }
            return;
        }
        if self.hard_deadline.is_some_and(|at| now >= at) {
            tracing::info!(container.id = %self.id, "hard timeout reached; killing");
            self.pending_stop = Some((ExitReason::HardTimeout, now));
            self.stop_with(Signal::KILL).await;
            return;
        }
        let idle = self.inactivity.and_then(|after| Some(self.activity.idle_since()? + after));
        if idle.is_some_and(|at| now >= at) {
            tracing::info!(container.id = %self.id, "inactivity timeout reached; sending SIGTERM");
            self.pending_stop =
                Some((ExitReason::InactivityTimeout, now + self.ctx.config.stop_grace));
            self.stop_with(Signal::TERM).await;
        }
    }

    async fn stop_with(&mut self, signal: Signal) {
        if let Err(e) = self.docker().kill_container(&self.names.app, signal.number()).await {
            tracing::debug!(container.id = %self.id, error = %e, "stop signal not delivered");
        }
        if signal == Signal::KILL {
            // The exit report will come; don't fire again before it does.
            let later = Instant::now() + Duration::from_secs(3600);
            let reason = self.pending_stop.map_or(ExitReason::HardTimeout, |(r, _)| r);
            self.pending_stop = Some((reason, later));
        }
    }
}
