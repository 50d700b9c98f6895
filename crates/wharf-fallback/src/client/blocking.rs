//! The blocking client: a [`Client`] on a runtime thread of its own, for callers on threads
//! with no runtime (reqwest's `blocking` pattern, spec §5).
//!
//! Each call sends its request with a reply channel of its own and waits on that channel, so any
//! number of threads may call at once and each gets its own answer: no shared slot to overwrite
//! (spec §2.8). The runtime thread keeps running between calls, so idle sockets that the server
//! closes are noticed while nobody is asking.

use std::io;
use std::sync::mpsc as std_mpsc;

use tokio::sync::mpsc;

use super::{Client, ClientConfig, Error, Followed, Stats};
use crate::protocol::{Answer, Request};

/// A client for threads with no runtime. Clones share one pool and one runtime thread, which
/// ends when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct BlockingClient {
    jobs: mpsc::UnboundedSender<Job>,
    client: Client,
}

/// One call, with where its answer goes.
#[derive(Debug)]
enum Job {
    Resolve(Request, std_mpsc::SyncSender<Result<Answer, Error>>),
    Follow(Request, std_mpsc::SyncSender<Result<Followed, Error>>),
}

// === impl BlockingClient ===

impl BlockingClient {
    /// Starts the runtime thread. Call it from a plain thread, not from async code.
    pub fn new(config: ClientConfig) -> io::Result<BlockingClient> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let client = Client::new(config);
        let (jobs, queue) = mpsc::unbounded_channel();
        let serving = client.clone();
        std::thread::Builder::new()
            .name("wharf-fallback-client".to_owned())
            .spawn(move || runtime.block_on(serve(serving, queue)))?;
        Ok(BlockingClient { jobs, client })
    }

    /// [`Client::resolve`], blocking this thread until the answer or an error.
    pub fn resolve(&self, request: &Request) -> Result<Answer, Error> {
        let (reply, answer) = std_mpsc::sync_channel(1);
        self.jobs.send(Job::Resolve(request.clone(), reply)).map_err(|_| Error::Stopped)?;
        answer.recv().map_err(|_| Error::Stopped)?
    }

    /// [`Client::resolve_following`], blocking this thread until the answer or an error.
    pub fn resolve_following(&self, request: &Request) -> Result<Followed, Error> {
        let (reply, answer) = std_mpsc::sync_channel(1);
        self.jobs.send(Job::Follow(request.clone(), reply)).map_err(|_| Error::Stopped)?;
        answer.recv().map_err(|_| Error::Stopped)?
    }

    /// What the pool has done so far.
    pub fn stats(&self) -> Stats {
        self.client.stats()
    }

    /// Closes the idle connections now.
    pub fn close_idle(&self) {
        self.client.close_idle();
    }
}

/// The runtime thread: every job runs as a task of its own, so slow answers do not hold up
/// others. Ends when every sender is gone.
async fn serve(client: Client, mut queue: mpsc::UnboundedReceiver<Job>) {
    while let Some(job) = queue.recv().await {
        let client = client.clone();
        tokio::spawn(async move {
            // A caller that stopped waiting has dropped its receiver: nothing to tell it.
            match job {
                Job::Resolve(request, reply) => {
                    let _ = reply.send(client.resolve(&request).await);
                }
                Job::Follow(request, reply) => {
                    let _ = reply.send(client.resolve_following(&request).await);
                }
            }
        });
    }
    client.close_idle();
}
