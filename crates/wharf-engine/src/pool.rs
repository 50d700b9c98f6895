//! The warm pool: sidecars made ahead of demand, so that the first start of an id joins a
//! network namespace that already exists too (issue 5; the seed only kept an id's own sidecar).
//!
//! * **Sized by config, adapted to demand.** The pool aims at `target` idle sidecars, between
//!   `pool_min` and `pool_max`: a claim that finds the pool empty raises the target by one, and
//!   a `warm_ttl` with no such miss lowers it by one.
//! * **Off the critical path.** One background task refills it; a start only pops a sidecar
//!   (and checks it, `instance/warm.rs`), and never waits for a refill.
//! * **Nothing kept for ever.** A pooled sidecar idle longer than `warm_ttl` is removed, and
//!   [`Pool::drain`] removes every one at shutdown; a refill under way then removes what it
//!   made. Claimed sidecars never come back to the pool.
//! * **Why claiming needs no new CA or token.** A pooled sidecar has never carried an app: its
//!   CA was generated inside it when it started and its key never leaves it, and its token is
//!   known only to the engine (the app never sees the sidecar's command line). The id that
//!   claims it is the first and only one to use either.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::egress::Policy;
use crate::engine::Ctx;
use crate::metrics::Metrics;
use crate::sidecar::Endpoint;
use crate::sidecar::launch::{self, LaunchError};
use crate::spec::{self, SidecarPlan};

/// The longest the refill task sleeps between looks at the pool.
const MAX_NAP: Duration = Duration::from_secs(30);
/// The first pause after a failed refill; it doubles up to [`MAX_NAP`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// The engine's warm pool.
#[derive(Debug)]
pub(crate) struct Pool {
    state: Mutex<State>,
    /// Wakes the refill task: a claim, or the engine stopping.
    wake: Notify,
    stopping: AtomicBool,
    min: usize,
    max: usize,
    ttl: Duration,
}

#[derive(Debug)]
struct State {
    /// Ready sidecars, newest last.
    idle: Vec<Pooled>,
    /// How many idle sidecars the pool aims at.
    target: usize,
    /// The last claim that found the pool empty (or when the target last went down).
    last_change: Instant,
}

/// A ready sidecar that no app has claimed.
#[derive(Debug)]
pub(crate) struct Pooled {
    /// Its Docker name.
    pub(crate) name: String,
    /// Its control endpoint and token.
    pub(crate) endpoint: Endpoint,
    made: Instant,
}

// === impl Pool ===

impl Pool {
    /// A pool aiming at `min` sidecars at first, never more than `max`.
    pub(crate) fn new(min: usize, max: usize, ttl: Duration) -> Pool {
        let max = max.max(min);
        let state = State { idle: Vec::new(), target: min, last_change: Instant::now() };
        Pool {
            state: Mutex::new(state),
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
            min,
            max,
            ttl,
        }
    }

    /// Whether the pool can ever hold a sidecar.
    pub(crate) fn enabled(&self) -> bool {
        self.max > 0
    }

    /// The newest pooled sidecar. An empty pool raises its target, within the bound.
    pub(crate) fn take(&self) -> Option<Pooled> {
        if !self.enabled() || self.stopping.load(Ordering::SeqCst) {
            return None;
        }
        let taken = {
            let mut state = self.lock();
            let taken = state.idle.pop();
            if taken.is_none() {
                state.target = (state.target + 1).min(self.max);
                state.last_change = Instant::now();
            }
            taken
        };
        self.wake.notify_one();
        taken
    }

    /// Idle sidecars now, and the target.
    pub(crate) fn sizes(&self) -> (usize, usize) {
        let state = self.lock();
        (state.idle.len(), state.target)
    }

    /// Stops refilling and removes every pooled sidecar.
    pub(crate) async fn drain(&self, ctx: &Ctx) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        let idle = std::mem::take(&mut self.lock().idle);
        for pooled in idle {
            remove(ctx, &pooled.name, "the engine is shutting down").await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Expired sidecars to remove, and whether one more is wanted; lowers the target after a
    /// quiet TTL.
    fn review(&self) -> (Vec<Pooled>, bool) {
        let mut state = self.lock();
        let now = Instant::now();
        if state.target > self.min && now.duration_since(state.last_change) >= self.ttl {
            state.target -= 1;
            state.last_change = now;
        }
        let (expired, kept) =
            std::mem::take(&mut state.idle).into_iter().partition(|p| now - p.made >= self.ttl);
        state.idle = kept;
        let want = state.idle.len() < state.target;
        (expired, want)
    }

    /// The next moment the refill task must look: the oldest sidecar's expiry or the
    /// target's decay, at most [`MAX_NAP`] away.
    fn next_look(&self) -> Instant {
        let state = self.lock();
        let mut at = Instant::now() + MAX_NAP;
        if let Some(oldest) = state.idle.first() {
            at = at.min(oldest.made + self.ttl);
        }
        if state.target > self.min {
            at = at.min(state.last_change + self.ttl);
        }
        at
    }
}

/// The refill task: keeps the pool at its target until the engine stops or is gone.
pub(crate) async fn refill(pool: Arc<Pool>, ctx: Weak<Ctx>) {
    let mut backoff = FIRST_BACKOFF;
    while !pool.stopping.load(Ordering::SeqCst) {
        let (expired, want) = pool.review();
        let Some(strong) = ctx.upgrade() else { return };
        for pooled in expired {
            remove(&strong, &pooled.name, "it was idle longer than the warm TTL").await;
        }
        if !want {
            drop(strong);
            let nap = tokio::time::sleep_until(pool.next_look());
            tokio::select! {
                () = nap => {}
                () = pool.wake.notified() => {}
            }
            continue;
        }
        match make(&strong).await {
            Ok(pooled) if pool.stopping.load(Ordering::SeqCst) => {
                remove(&strong, &pooled.name, "the engine is shutting down").await;
            }
            Ok(pooled) => {
                backoff = FIRST_BACKOFF;
                Metrics::inc(&strong.metrics.pool_made);
                pool.lock().idle.push(pooled);
            }
            Err(why) => {
                tracing::warn!(%why, retry_in = ?backoff, "could not make a sidecar for the warm pool");
                drop(strong);
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = pool.wake.notified() => {}
                }
                backoff = (backoff * 2).min(MAX_NAP);
            }
        }
    }
}

/// One ready sidecar with the default config (internet off, no names allowed): what it
/// enforces until an app claims it and pushes its own.
async fn make(ctx: &Ctx) -> Result<Pooled, String> {
    let progress = |line: &str| tracing::debug!(target: "wharf::images", "{}", line.trim_end());
    ctx.images.ensure(&ctx.config.sidecar_image, &progress).await.map_err(|e| e.to_string())?;
    let token = crate::instance::new_token().map_err(|e| e.to_string())?;
    let name = format!("wharf-{}-pool-{}", ctx.config.name.as_str(), &token[..12]);
    let plan = SidecarPlan {
        image: &ctx.config.sidecar_image.reference,
        egress_port: ctx.egress_port,
        bridge: &ctx.bridge,
        token: &token,
        dns: &ctx.config.upstream_dns,
    };
    let spec = spec::pooled_sidecar(&name, ctx.owner(), plan);
    let update = Policy::default().update(ctx.egress_port);
    match launch::launch(ctx, &spec, &token, &update).await {
        Ok(endpoint) => Ok(Pooled { name, endpoint, made: Instant::now() }),
        Err(e) => {
            remove(ctx, &name, "it did not come up").await;
            Err(match e {
                LaunchError::Docker(e) => e.to_string(),
                LaunchError::NotReady(message) => message,
            })
        }
    }
}

async fn remove(ctx: &Ctx, name: &str, why: &str) {
    tracing::debug!(%name, %why, "removing a pooled sidecar");
    if let Err(e) = launch::remove(&*ctx.docker, name).await {
        tracing::warn!(%name, error = %e, "could not remove a pooled sidecar; wharf gc will");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_pool_raises_its_target_within_the_bound() {
        let pool = Pool::new(1, 3, Duration::from_secs(60));
        assert_eq!(pool.sizes(), (0, 1));
        for _ in 0..5 {
            assert!(pool.take().is_none());
        }
        assert_eq!(pool.sizes(), (0, 3));
        let off = Pool::new(0, 0, Duration::from_secs(60));
        assert!(!off.enabled() && off.take().is_none());
        assert_eq!(off.sizes(), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_ttl_lowers_the_target_to_the_minimum() {
        let pool = Pool::new(1, 4, Duration::from_secs(60));
        for _ in 0..3 {
            pool.take();
        }
        assert_eq!(pool.sizes().1, 4);
        tokio::time::advance(Duration::from_secs(61)).await;
        pool.review();
        assert_eq!(pool.sizes().1, 3);
        tokio::time::advance(Duration::from_secs(200)).await;
        for _ in 0..5 {
            pool.review();
            tokio::time::advance(Duration::from_secs(61)).await;
        }
        assert_eq!(pool.sizes().1, 1);
    }
}
