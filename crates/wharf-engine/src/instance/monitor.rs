//! Watching the app for its exit: one Docker wait per run, reported back to the actor.
//!
//! The report carries the run's generation, so a late report of a destroyed or replaced run
//! changes nothing (W39). A daemon that is briefly unreachable is waited out.

use std::time::Duration;

use super::{Command, Instance};
use crate::docker::{self, DockerApi};
use crate::lifecycle::{Exit, ExitReason, Status};

impl Instance {
    /// Spawns the exit watcher for the current run.
    pub(super) fn watch_exit(&self) {
        let docker = self.ctx.docker.clone();
        let name = self.names.app.clone();
        let generation = self.generation;
        let me = self.me.clone();
        tokio::spawn(async move {
            let result = wait_exit(&*docker, &name, &me).await;
            if let Some(tx) = me.upgrade() {
                let _ = tx.send(Command::Exited { generation, result });
            }
        });
    }

    pub(super) async fn on_exit(&mut self, generation: u64, result: Result<i64, docker::Error>) {
        if generation != self.generation || self.snapshot().status != Status::Running {
            return;
        }
        let info = self.docker().inspect_container(&self.names.app).await.ok();
        let oom = info.as_ref().is_some_and(|i| i.oom_killed);
        let code = match (&result, &info) {
            (Ok(code), _) => *code,
            (Err(_), Some(info)) => info.exit_code,
            // Removed behind our back: it was killed.
            (Err(_), None) => super::destroy::DESTROYED_EXIT_CODE,
        };
        let reason = match self.pending_stop {
            Some((reason, _)) => reason,
            None if oom => ExitReason::OomKilled,
            None if info.is_none() => ExitReason::Lost,
            None => ExitReason::Exited,
        };
        tracing::debug!(container.id = %self.id, code, reason = %reason, "app exited");
        self.finish_run(Exit { code, reason });
    }
}

async fn wait_exit(
    docker: &dyn DockerApi,
    name: &str,
    me: &tokio::sync::mpsc::WeakUnboundedSender<Command>,
) -> Result<i64, docker::Error> {
    let mut pause = Duration::from_millis(200);
    loop {
        match docker.wait_container(name).await {
            Err(docker::Error::Unavailable(why)) if me.strong_count() > 0 => {
                tracing::warn!(%name, %why, "docker unreachable while watching for exit; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}
