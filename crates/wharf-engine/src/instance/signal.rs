//! `signal`: deliver any signal 1–64 to the app, as asked (W12).

use super::Instance;
use crate::Error;
use crate::docker;
use crate::events::EventKind;
use crate::metrics::Metrics;
use crate::params::Signal;

impl Instance {
    pub(super) async fn signal(&mut self, signal: Signal) -> Result<(), Error> {
        if !self.snapshot().status.is_running() {
            return Err(self.not_running());
        }
        let name = self.names.app.clone();
        match self.docker().kill_container(&name, signal.number()).await {
            Ok(()) => {}
            // It stopped between our check and the kill; the exit report is on its way.
            Err(docker::Error::Conflict(_) | docker::Error::NotFound(_)) => {
                return Err(self.not_running());
            }
            Err(e) => return Err(Error::docker("kill", &name)(e)),
        }
        Metrics::inc(&self.ctx.metrics.signals);
        self.ctx.events.emit(Some(&self.id), EventKind::Signalled { signal: signal.number() });
        Ok(())
    }
}
