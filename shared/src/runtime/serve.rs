//! The embedded server's HTTP/1 accept loop: like `axum::serve`, plus a
//! header-read timeout (a client that opens a connection and trickles its
//! headers is dropped) and a cap on open connections (beyond it, new
//! connections wait in the kernel's backlog instead of costing memory).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// Limits of the embedded HTTP server.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Time a client has to send a request's headers (also between requests
    /// on a kept-alive connection).
    pub header_read_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self { header_read_timeout: Duration::from_secs(10), max_connections: 1024 }
    }
}

/// How long open connections get to finish after `stop` before they are dropped.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `stop` changes, then lets open
/// connections finish their request (for up to `DRAIN`).
pub async fn serve(listener: TcpListener, router: Router, limits: ServerLimits, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
            _ = stop.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let router = router.clone();
        let mut conn_stop = stop.clone();
        connections.spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                router.clone().oneshot(request.map(axum::body::Body::new))
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
            // A client that sends a whole request and hangs up (EOF) still
            // gets it handled: without this hyper drops the request's future
            // at the EOF, and whether a sign-up was taken would depend on
            // how busy the machine was. Half-open peers are still bounded by
            // the connection permit and the header timeout.
            builder.half_close(true);
            let connection = builder.serve_connection(TokioIo::new(stream), service).with_upgrades();
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = conn_stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(DRAIN, async { while connections.join_next().await.is_some() {} }).await;
}
