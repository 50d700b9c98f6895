//! `start`: a sidecar (the one kept from the last run when it passes its check, `warm.rs`, else
//! a fresh one, ready once it accepts `PUT /egress`), then the app in its namespace.
//!
//! Any failure rolls back what this call created, so a failed start leaves no container and
//! the slot as it was.

use std::time::Duration;

use std::sync::PoisonError;

use bytes::Bytes;
use tokio::time::Instant;
use wharf_wire::control::EgressUpdate;

use super::Instance;
use crate::Error;
use crate::docker::{self, ContainerSpec};
use crate::events::EventKind;
use crate::images::EnsureOutcome;
use crate::lifecycle::{SidecarSource, Status};
use crate::metrics::Metrics;
use crate::params::StartParams;
use crate::persist::{self, Record};
use crate::sidecar::Endpoint;
use crate::sidecar::launch::{self, LaunchError};
use crate::spec::{self, SidecarPlan};
use crate::trust;

impl Instance {
    pub(super) async fn start(&mut self, params: StartParams) -> Result<(), Error> {
        if !self.snapshot().status.can_start() {
            return Err(Error::AlreadyRunning(self.id.clone()));
        }
        let began = Instant::now();
        self.publish(|s| s.starting = true);
        self.ctx.events.emit(Some(&self.id), EventKind::Starting);
        match self.bring_up(&params).await {
            Ok((sidecar, phase)) => {
                self.running(params, sidecar);
                let took = began.elapsed();
                self.ctx.metrics.observe_start(took);
                Metrics::inc(&self.ctx.metrics.starts);
                let image = self.snapshot().image.unwrap_or_default();
                self.ctx.events.emit(
                    Some(&self.id),
                    EventKind::Started {
                        image,
                        duration: took,
                        sidecar: phase.source,
                        sidecar_duration: phase.took,
                    },
                );
                tracing::debug!(container.id = %self.id, took_ms = took.as_millis() as u64, sidecar = phase.source.as_str(), "started");
                Ok(())
            }
            Err(err) => {
                self.remove_both().await;
                self.publish(|s| s.starting = false);
                Metrics::inc(&self.ctx.metrics.start_failures);
                let message = err.to_string();
                self.ctx.events.emit(Some(&self.id), EventKind::StartFailed { message });
                Err(err)
            }
        }
    }

    async fn bring_up(&mut self, params: &StartParams) -> Result<(Endpoint, SidecarPhase), Error> {
        let image_id = self.check_image(params.image.as_str()).await?;
        self.ensure_sidecar_image().await?;
        if self.snapshot().app_container.is_some() {
            // The previous run's exited app: gone from here on, whatever happens next. Its
            // sidecar is kept for the check below.
            if let Err(e) = self.remove_container(&self.names.app).await {
                tracing::warn!(container.id = %self.id, error = %e, "could not remove the exited app");
            }
            self.keep_warm().await;
            self.publish(|s| {
                s.app_container = None;
                s.image = None;
                s.sidecar = None;
            });
        }
        let began = Instant::now();
        self.write_policy().internet = params.enable_internet;
        let (sidecar, source) = if let Some(kept) = self.claim_warm().await {
            (kept, SidecarSource::Kept)
        } else if let Some(pooled) = self.claim_pooled().await {
            (pooled, SidecarSource::Pooled)
        } else {
            (self.fresh_sidecar().await?, SidecarSource::Fresh)
        };
        let phase = SidecarPhase { source, took: began.elapsed() };
        let app = spec::app(&self.names, &self.id, self.ctx.owner(), params);
        self.create(&app).await?;
        self.install_trust(&sidecar, &app.name, &image_id).await?;
        self.docker()
            .start_container(&app.name)
            .await
            .map_err(Error::docker("start", &app.name))?;
        Ok((sidecar, phase))
    }

    fn running(&mut self, params: StartParams, sidecar: Endpoint) {
        self.generation += 1;
        self.hard_deadline = params.hard_timeout.map(|d| Instant::now() + d);
        self.pending_stop = None;
        self.activity.touch();
        let app = self.names.app.clone();
        let image = params.image.as_str().to_owned();
        let run = self.generation;
        self.publish(|s| {
            s.run = run;
            s.status = Status::Running;
            s.starting = false;
            s.image = Some(image);
            s.labels = params.labels;
            s.sidecar = Some(sidecar);
            s.app_container = Some(app);
        });
        self.save_record();
        self.watch_exit();
    }

    /// The image's id, or `ImageNotFound` (wharf never pulls).
    async fn check_image(&self, image: &str) -> Result<String, Error> {
        match self.docker().inspect_image(image).await {
            Ok(Some(info)) => Ok(info.id),
            Ok(None) => Err(Error::ImageNotFound { image: image.to_owned() }),
            Err(e) => Err(Error::docker("inspect image", image)(e)),
        }
    }

    /// Makes the created (not yet started) app trust the sidecar's CA (`crate::trust`).
    async fn install_trust(
        &self,
        sidecar: &Endpoint,
        app: &str,
        image_id: &str,
    ) -> Result<(), Error> {
        let ca =
            self.ctx.control.get_ca(sidecar).await.map_err(|e| Error::sidecar(&self.id, &e))?;
        let system = self.system_bundle(app, image_id).await;
        let system = system.as_ref().map(|(path, bytes)| (*path, bytes.as_ref()));
        let tar = trust::archive(&ca, system).map_err(|e| Error::State {
            path: trust::CA_FILE.to_owned(),
            message: e.to_string(),
        })?;
        self.docker()
            .upload_archive(app, "/", tar)
            .await
            .map_err(Error::docker("write the CA into", app))
    }

    /// The image's system CA bundle, if it has one; looked up once per image id.
    async fn system_bundle(&self, app: &str, image_id: &str) -> Option<(&'static str, Bytes)> {
        if let Some(known) =
            self.ctx.bundles.lock().unwrap_or_else(PoisonError::into_inner).get(image_id)
        {
            return known.clone();
        }
        let mut found = None;
        for path in trust::SYSTEM_BUNDLES {
            match self.docker().download_archive(app, path, trust::MAX_BUNDLE).await {
                Ok(tar) => {
                    if let Ok(Some(bytes)) = trust::first_file(&tar) {
                        found = Some((path, Bytes::from(bytes)));
                        break;
                    }
                }
                Err(docker::Error::NotFound(_)) => {}
                Err(e) => {
                    tracing::debug!(container.id = %self.id, %path, error = %e, "cannot read the system CA bundle");
                    return None;
                }
            }
        }
        let mut bundles = self.ctx.bundles.lock().unwrap_or_else(PoisonError::into_inner);
        bundles.insert(image_id.to_owned(), found.clone());
        found
    }

    /// Builds the sidecar image on first use; `ImageBuilder` logs the progress line.
    async fn ensure_sidecar_image(&self) -> Result<(), Error> {
        let recipe = &self.ctx.config.sidecar_image;
        let progress = |line: &str| tracing::debug!(target: "wharf::images", "{}", line.trim_end());
        if self.ctx.images.ensure(recipe, &progress).await? == EnsureOutcome::Built {
            let reference = recipe.reference.clone();
            self.ctx.events.emit(None, EventKind::ImageBuilt { reference });
        }
        Ok(())
    }

    /// Creates a container; a leftover of the same name (a crash mid-start) is removed first.
    async fn create(&self, spec: &ContainerSpec) -> Result<(), Error> {
        launch::create_replacing(self.docker(), spec).await
    }

    /// A new sidecar with a new token, ready and registered with the egress listener.
    async fn fresh_sidecar(&mut self) -> Result<Endpoint, Error> {
        let token = new_token()?;
        let plan = SidecarPlan {
            image: &self.ctx.config.sidecar_image.reference,
            egress_port: self.ctx.egress_port,
            bridge: &self.ctx.bridge,
            token: &token,
            dns: &self.ctx.config.upstream_dns,
        };
        let spec = spec::sidecar(&self.names, &self.id, self.ctx.owner(), plan);
        self.register(&token);
        let update = self.egress_update();
        launch::launch(&self.ctx, &spec, &token, &update).await.map_err(|e| match e {
            LaunchError::Docker(e) => e,
            LaunchError::NotReady(message) => self.sidecar_error(message),
        })
    }

    /// The full egress config: the listener port, the DNS allow-list derived from the
    /// mappings, and the internet flag.
    pub(super) fn egress_update(&self) -> EgressUpdate {
        self.read_policy().update(self.ctx.egress_port)
    }

    fn sidecar_error(&self, message: String) -> Error {
        Error::Sidecar { container: self.id.clone(), message }
    }

    pub(super) fn save_record(&self) {
        let snap = self.snapshot();
        let record = Record {
            v: 1,
            image: snap.image.unwrap_or_default(),
            internet: self.read_policy().internet,
            mappings: self
                .read_policy()
                .table
                .mappings()
                .iter()
                .map(persist::MappingRecord::from)
                .collect(),
            labels: snap.labels.iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect(),
            inactivity_ms: self.inactivity.map(|d| d.as_millis() as u64),
        };
        if let Err(e) = self.ctx.store.save(&self.id, &record) {
            tracing::warn!(container.id = %self.id, error = %e, "could not save state record; a restarted engine will not restore its settings");
        }
    }
}

/// How the start got its sidecar.
#[derive(Debug, Clone, Copy)]
struct SidecarPhase {
    source: SidecarSource,
    /// From the start of the check (or the create) to a sidecar with the config in force.
    took: Duration,
}

/// 32 random bytes, hex.
pub(crate) fn new_token() -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::State { path: "getrandom".to_owned(), message: e.to_string() })?;
    Ok(hex::encode(bytes))
}
