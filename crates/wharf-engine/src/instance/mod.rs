//! One actor per container slot: the mutation queue (engine spec §2.1), with W1 fixed.
//!
//! Every mutating verb is a [`Command`] sent to the slot's task, which runs them one at a time
//! in arrival order; all state changes happen in [`Instance::handle`]. A command whose caller
//! has gone (its reply channel closed) before its turn is skipped, so a caller that gives up
//! never blocks or breaks the calls behind it. A command that has begun runs to the end, so
//! Docker is never left half-changed by a cancelled HTTP request.
//!
//! Readers (`status`, `wait`, ports) do not take a turn: they read the published [`Snapshot`].
//! `wait` and port connects first pass a [`Command::Barrier`], so they see the effect of every
//! call queued before them (a `start` in flight) without holding anything up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::Error;
use crate::docker::{self, DockerApi, ExecSession};
use crate::egress::{Policy, Route, SharedPolicy, Target};
use crate::events::EventKind;
use crate::lifecycle::{Exit, ExitReason, Status};
use crate::metrics::Metrics;
use crate::params::{ContainerId, ExecParams, Labels, Signal, StartParams};
use crate::sidecar::Endpoint;
use crate::spec::Names;
use wharf_policy::Mapping;

mod destroy;
mod egress;
mod exec;
mod labels;
mod monitor;
mod signal;
mod start;
mod timeout;
mod warm;

pub use exec::ExecOutput;
pub(crate) use exec::{collect_exec, log_tail};
pub(crate) use start::new_token;

/// The engine-wide parts every instance uses.
pub(crate) type Ctx = crate::engine::Ctx;

type Reply<T> = oneshot::Sender<Result<T, Error>>;

/// What an instance can be asked to do.
pub(crate) enum Command {
    Start(Box<StartParams>, Reply<()>),
    Destroy(Reply<()>),
    Signal(Signal, Reply<()>),
    SetLabels(Labels, Reply<()>),
    SetInactivityTimeout(Duration, Reply<()>),
    Exec(ExecParams, Reply<ExecSession>),
    /// Upserts one egress mapping (allowed before start; applied at the next start).
    SetEgress(Box<Mapping<Target>>, Reply<()>),
    /// Answers once everything queued before it is done.
    Barrier(Reply<()>),
    /// From the exit monitor: the app of run `generation` stopped.
    Exited {
        generation: u64,
        result: Result<i64, docker::Error>,
    },
    /// Engine shutdown: destroy when `reap`, then end the task.
    Shutdown {
        reap: bool,
        done: oneshot::Sender<()>,
    },
}

/// What readers see of a slot, published after every change.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Lifecycle status.
    pub status: Status,
    /// A start is in progress.
    pub starting: bool,
    /// The image of the current (or last, not destroyed) app container.
    pub image: Option<String>,
    /// Labels; cleared when the run ends.
    pub labels: Labels,
    /// The sidecar's control endpoint while it runs.
    pub sidecar: Option<Endpoint>,
    /// The app container's Docker name while it exists (running or exited, not destroyed).
    pub app_container: Option<String>,
    /// Which run of this slot the snapshot describes; a new start is a new run, so
    /// connections made for one run are never reused for another.
    pub run: u64,
}

/// Recent use of a slot, for the inactivity timeout: open connections and the last touch.
#[derive(Debug)]
pub(crate) struct Activity {
    open: AtomicUsize,
    last: Mutex<Instant>,
}

/// Holds a slot "active" for the inactivity timeout while alive (an open connection or exec).
#[derive(Debug)]
pub struct ActivityGuard(Arc<Activity>);

/// A cheap handle to a slot's actor.
#[derive(Debug, Clone)]
pub(crate) struct InstanceHandle {
    tx: mpsc::UnboundedSender<Command>,
    state: watch::Receiver<Snapshot>,
    activity: Arc<Activity>,
    policy: SharedPolicy,
}

/// The actor's state. Only [`Instance::handle`] and the verbs it calls change it.
pub(crate) struct Instance {
    id: ContainerId,
    ctx: Arc<Ctx>,
    names: Names,
    /// Bumped per run, so exit reports of an old run are ignored (W39).
    generation: u64,
    state: watch::Sender<Snapshot>,
    me: mpsc::WeakUnboundedSender<Command>,
    activity: Arc<Activity>,
    /// Mappings and the internet flag, shared with the egress listener.
    policy: SharedPolicy,
    /// The running sidecar's token, registered with the egress listener.
    token: Option<String>,
    inactivity: Option<Duration>,
    hard_deadline: Option<Instant>,
    /// A stop wharf began (timeouts): why, and when SIGKILL follows.
    pending_stop: Option<(ExitReason, Instant)>,
    /// The sidecar kept running after its app ended, for the next start to reuse.
    warm: Option<warm::Warm>,
}

// === impl Snapshot ===

impl Snapshot {
    /// A slot that never started.
    pub(crate) fn empty() -> Snapshot {
        Snapshot {
            status: Status::Empty,
            starting: false,
            image: None,
            labels: Labels::default(),
            sidecar: None,
            app_container: None,
            run: 0,
        }
    }
}

// === impl Activity ===

impl Activity {
    fn new() -> Activity {
        Activity { open: AtomicUsize::new(0), last: Mutex::new(Instant::now()) }
    }

    /// Marks use now.
    pub(crate) fn touch(&self) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    /// Counts a connection or exec as open until the guard drops.
    pub(crate) fn guard(self: &Arc<Self>) -> ActivityGuard {
        self.open.fetch_add(1, Ordering::SeqCst);
        self.touch();
        ActivityGuard(self.clone())
    }

    fn idle_since(&self) -> Option<Instant> {
        let last = *self.last.lock().unwrap_or_else(PoisonError::into_inner);
        (self.open.load(Ordering::SeqCst) == 0).then_some(last)
    }
}

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        self.0.touch();
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

// === impl InstanceHandle ===

impl InstanceHandle {
    /// Spawns the actor for `id`, starting from `initial` (adoption) or empty.
    pub(crate) fn spawn(
        ctx: Arc<Ctx>,
        id: ContainerId,
        initial: Option<Adopted>,
    ) -> InstanceHandle {
        let (tx, rx) = mpsc::unbounded_channel();
        let (state_tx, state_rx) = watch::channel(Snapshot::empty());
        let activity = Arc::new(Activity::new());
        let policy = SharedPolicy::default();
        let names = Names::new(ctx.config.name.as_str(), &id);
        let mut instance = Instance {
            id,
            ctx,
            names,
            generation: 0,
            state: state_tx,
            me: tx.downgrade(),
            activity: activity.clone(),
            policy: Arc::clone(&policy),
            token: None,
            inactivity: None,
            hard_deadline: None,
            pending_stop: None,
            warm: None,
        };
        if let Some(adopted) = initial {
            instance.adopt(adopted);
        }
        tokio::spawn(instance.run(rx));
        InstanceHandle { tx, state: state_rx, activity, policy }
    }

    /// Sends a command and awaits its reply. Dropping the returned future withdraws the call if
    /// its turn has not come yet.
    pub(crate) async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, Error> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).map_err(|_| Error::ShuttingDown)?;
        rx.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Waits for every call queued before this one.
    pub(crate) async fn barrier(&self) -> Result<(), Error> {
        self.call(Command::Barrier).await
    }

    /// The current snapshot.
    pub(crate) fn snapshot(&self) -> Snapshot {
        self.state.borrow().clone()
    }

    /// A receiver to wait for changes on.
    pub(crate) fn watch(&self) -> watch::Receiver<Snapshot> {
        self.state.clone()
    }

    /// Activity tracking for the inactivity timeout.
    pub(crate) fn activity(&self) -> &Arc<Activity> {
        &self.activity
    }

    /// The slot's egress policy.
    pub(crate) fn policy(&self) -> SharedPolicy {
        Arc::clone(&self.policy)
    }

    /// Asks the actor to end, destroying first when `reap`.
    pub(crate) async fn shutdown(&self, reap: bool) {
        let (done, rx) = oneshot::channel();
        if self.tx.send(Command::Shutdown { reap, done }).is_ok() {
            let _ = rx.await;
        }
    }
}

/// A running container found by adoption, to continue managing.
#[derive(Debug, Clone)]
pub(crate) struct Adopted {
    /// The Docker name of its sidecar (a claimed pooled sidecar keeps its own).
    pub(crate) sidecar_name: String,
    pub(crate) image: String,
    pub(crate) labels: Labels,
    pub(crate) sidecar: Endpoint,
    pub(crate) internet: bool,
    pub(crate) mappings: Vec<Mapping<Target>>,
    pub(crate) inactivity: Option<Duration>,
}

// === impl Instance ===

impl Instance {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        loop {
            let deadline = self.next_deadline();
            let cmd = tokio::select! {
                cmd = rx.recv() => cmd,
                () = sleep_until(deadline) => {
                    self.on_deadline().await;
                    continue;
                }
            };
            match cmd {
                Some(Command::Shutdown { reap, done }) => {
                    if reap {
                        let _ = self.destroy().await;
                        self.retire_warm("the engine is shutting down").await;
                    }
                    let _ = done.send(());
                    break;
                }
                Some(cmd) => self.handle(cmd).await,
                None => break,
            }
        }
    }

    /// The one place commands change state.
    async fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Start(params, reply) => {
                if self.live(&reply, "start") {
                    let _ = reply.send(self.start(*params).await);
                }
            }
            Command::Destroy(reply) => {
                if self.live(&reply, "destroy") {
                    let _ = reply.send(self.destroy().await);
                }
            }
            Command::Signal(signal, reply) => {
                if self.live(&reply, "signal") {
                    let _ = reply.send(self.signal(signal).await);
                }
            }
            Command::SetLabels(labels, reply) => {
                if self.live(&reply, "labels") {
                    let _ = reply.send(self.set_labels(labels));
                }
            }
            Command::SetInactivityTimeout(after, reply) => {
                if self.live(&reply, "inactivity-timeout") {
                    let _ = reply.send(self.set_inactivity_timeout(after));
                }
            }
            Command::Exec(params, reply) => {
                if self.live(&reply, "exec") {
                    let _ = reply.send(self.open_exec(params).await);
                }
            }
            Command::SetEgress(mapping, reply) => {
                if self.live(&reply, "egress") {
                    let _ = reply.send(self.set_egress(*mapping).await);
                }
            }
            Command::Barrier(reply) => {
                let _ = reply.send(Ok(()));
            }
            Command::Exited { generation, result } => self.on_exit(generation, result).await,
            // Handled by `run`.
            Command::Shutdown { .. } => {}
        }
    }

    /// Whether the caller still waits; a gone caller's call is skipped (W1).
    fn live<T>(&self, reply: &Reply<T>, verb: &'static str) -> bool {
        if reply.is_closed() {
            tracing::debug!(container.id = %self.id, verb, "caller gone before its turn; skipped");
            Metrics::inc(&self.ctx.metrics.skipped_calls);
            self.ctx.events.emit(Some(&self.id), EventKind::Skipped { verb });
            return false;
        }
        true
    }

    fn write_policy(&self) -> std::sync::RwLockWriteGuard<'_, Policy> {
        self.policy.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn read_policy(&self) -> std::sync::RwLockReadGuard<'_, Policy> {
        self.policy.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lets the egress listener accept this sidecar's tunnels.
    fn register(&mut self, token: &str) {
        let route = Route { container: self.id.clone(), policy: Arc::clone(&self.policy) };
        self.ctx.egress.register(token, route);
        self.token = Some(token.to_owned());
    }

    /// Forgets the sidecar's token.
    fn unregister(&mut self) {
        if let Some(token) = self.token.take() {
            self.ctx.egress.unregister(&token);
        }
    }

    fn snapshot(&self) -> Snapshot {
        self.state.borrow().clone()
    }

    fn publish(&self, change: impl FnOnce(&mut Snapshot)) {
        self.state.send_modify(change);
    }

    fn docker(&self) -> &dyn DockerApi {
        &*self.ctx.docker
    }

    fn not_running(&self) -> Error {
        Error::NotRunning(self.id.clone())
    }

    /// Marks the run over: clears what only a running app has.
    fn finish_run(&mut self, exit: Exit) {
        self.hard_deadline = None;
        self.pending_stop = None;
        self.publish(|s| {
            s.status = Status::Stopped(exit);
            s.labels = Labels::default();
            s.starting = false;
        });
        Metrics::inc(&self.ctx.metrics.exits);
        self.ctx.events.emit(Some(&self.id), EventKind::Exited { exit });
    }

    fn adopt(&mut self, adopted: Adopted) {
        {
            let mut policy = self.write_policy();
            policy.internet = adopted.internet;
            for mapping in adopted.mappings {
                policy.table.upsert(mapping);
            }
        }
        self.names.sidecar = adopted.sidecar_name;
        self.register(&adopted.sidecar.token);
        self.inactivity = adopted.inactivity;
        self.generation += 1;
        let app = self.names.app.clone();
        let run = self.generation;
        self.publish(|s| {
            s.run = run;
            s.status = Status::Running;
            s.image = Some(adopted.image);
            s.labels = adopted.labels;
            s.sidecar = Some(adopted.sidecar);
            s.app_container = Some(app);
        });
        self.watch_exit();
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
