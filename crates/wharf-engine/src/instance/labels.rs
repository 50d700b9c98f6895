//! `labels`: replace the whole label set of a running container.

use super::Instance;
use crate::Error;
use crate::events::EventKind;
use crate::params::Labels;

impl Instance {
    pub(super) fn set_labels(&mut self, labels: Labels) -> Result<(), Error> {
        if !self.snapshot().status.is_running() {
            return Err(self.not_running());
        }
        self.publish(|s| s.labels = labels);
        self.save_record();
        self.ctx.events.emit(Some(&self.id), EventKind::LabelsSet);
        Ok(())
    }
}
