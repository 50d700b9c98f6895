//! The HTTP/1.1 server: an accept loop, one task per connection, upgrades enabled for `/ws`.
//!
//! There is no graceful drain: the app stops only on a signal, and then it exits at once with
//! the code a default signal death would give (see `signals`).

use std::convert::Infallible;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tracing::{Instrument, debug, debug_span, warn};

use crate::routes::{self, App};

/// Serves `listener` forever.
pub async fn serve(listener: TcpListener, app: Arc<App>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let span = debug_span!("http", client.addr = %peer);
                tokio::spawn(serve_connection(stream, app.clone()).instrument(span));
            }
            Err(err) => accept_backoff(&err).await,
        }
    }
}

/// Accept errors (EMFILE and friends) are logged, then the loop pauses instead of spinning.
pub async fn accept_backoff(err: &io::Error) {
    warn!(error = %err, "accept failed; pausing");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

async fn serve_connection(stream: TcpStream, app: Arc<App>) {
    let service = service_fn(move |req| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(routes::handle(app, req).await) }
    });
    let conn =
        http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service);
    if let Err(err) = conn.with_upgrades().await {
        debug!(error = %err, "connection ended with an error");
    }
}
