//! `egress`: upsert one mapping; a running sidecar gets the new DNS allow-list at once.

use wharf_policy::Mapping;

use super::Instance;
use crate::Error;
use crate::egress::Target;

impl Instance {
    pub(super) async fn set_egress(&mut self, mapping: Mapping<Target>) -> Result<(), Error> {
        self.write_policy().table.upsert(mapping);
        if self.snapshot().status.is_running() {
            self.save_record();
        }
        // A warm or running sidecar learns the new allow-list before the answer (spec §2.10).
        let Some(sidecar) = self.snapshot().sidecar else { return Ok(()) };
        let update = self.egress_update();
        self.ctx
            .control
            .put_egress(&sidecar, &update)
            .await
            .map_err(|e| Error::sidecar(&self.id, &e))
    }
}
