//! Accepting and serving connections (HTTP/1.1, hyper directly rather than
//! `axum::serve`), so that every connection is bounded: its request heads and idle
//! keep-alive by `http.header_read_timeout_seconds` (hyper's timer, which starts as soon
//! as a request may arrive), its bodies by a deadline `ApiJson` reads, and the number of
//! open connections by `http.max_connections`, kept below the open-file limit. Shutdown
//! stops accepting, lets requests in flight finish for `http.shutdown_grace_seconds`,
//! then closes whatever is left.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::http::extract::BodyDeadline;

/// File descriptors kept free of connections: the database pool's, plus key, list and
/// GeoIP files, logs and the listener.
const RESERVED_FILES: u64 = 64;

/// How often refused connections (or failed accepts) are logged at most.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The bounds every connection is served with.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read: Duration,
    pub body_read: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
}

impl ConnectionLimits {
    /// The configured bounds, with `max_connections` lowered to fit the process's
    /// open-file limit (each connection holds one descriptor).
    pub fn from_config(config: &Config) -> Self {
        let http = &config.http;
        let reserved = RESERVED_FILES + config.database_max_connections as u64;
        let fits = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .map(|soft| {
                usize::try_from(soft.saturating_sub(reserved).max(1)).unwrap_or(usize::MAX)
            });
        let max_connections = match fits {
            Some(fits) if fits < http.max_connections => {
                tracing::info!(
                    configured = http.max_connections,
                    used = fits,
                    "http.max_connections lowered to fit the open-file limit"
                );
                fits
            }
            _ => http.max_connections,
        };
        Self {
            header_read: Duration::from_secs(http.header_read_timeout_seconds),
            body_read: Duration::from_secs(http.body_read_timeout_seconds),
            max_connections,
            shutdown_grace: Duration::from_secs(http.shutdown_grace_seconds),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then drains the
/// connections (see the module doc). Returns when every connection is closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read);
    let mut connections = JoinSet::new();
    let mut refused = Throttled::default();
    let mut failed = Throttled::default();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or similar: back off instead of spinning.
                    if let Some(count) = failed.note() {
                        tracing::warn!(error = %e, count, "accepting a connection failed");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            if let Some(count) = refused.note() {
                tracing::warn!(
                    count,
                    max = limits.max_connections,
                    "refusing connections: http.max_connections are open"
                );
            }
            drop(tcp);
            continue;
        };
        // Small responses must not wait for Nagle's algorithm (a ~40 ms stall per
        // request against a client with delayed ACKs).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let router = router.clone();
        let body_read = limits.body_read;
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req.extensions_mut()
                    .insert(BodyDeadline(tokio::time::Instant::now() + body_read));
                tower::Service::call(&mut router.clone(), req)
            });
        let connection = graceful.watch(http1.serve_connection(TokioIo::new(tcp), service));
        connections.spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "closing the connections still open after http.shutdown_grace_seconds"
        );
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

/// Counts events and says when to log them: at most once per [`WARN_EVERY`], with the
/// number seen since the last log.
#[derive(Default)]
struct Throttled {
    last: Option<Instant>,
    count: u64,
}

impl Throttled {
    fn note(&mut self) -> Option<u64> {
        self.count += 1;
        if self.last.is_some_and(|at| at.elapsed() < WARN_EVERY) {
            return None;
        }
        self.last = Some(Instant::now());
        Some(std::mem::take(&mut self.count))
    }
}
