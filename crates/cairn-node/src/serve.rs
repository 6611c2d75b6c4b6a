//! The HTTP server loop, with the limits a port open to a network needs.
//!
//! axum's own `serve` has no timeouts and no connection limits: a client could hold any
//! number of connections open forever by never finishing its headers (slowloris). Here every
//! connection must send its request headers within [`HEADER_TIMEOUT`], a streamed body (a
//! file or chunk upload) that stops flowing for `body_timeout` is cut off (`api::router` puts
//! a `RequestBodyTimeoutLayer` on those routes only: a timer per request costs the small
//! metadata RPCs a third of their rate), and a node holds at most [`MAX_CONNECTIONS`]
//! connections, [`MAX_PER_ADDRESS`] of them from one address. The peer door serves TLS only,
//! and demands a certificate from the cluster CA (`pki`).

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Longest a connection may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Most connections one node holds open.
pub const MAX_CONNECTIONS: usize = 4096;
/// Most connections one node holds open from a single address.
pub const MAX_PER_ADDRESS: usize = 512;
/// Longest a stopping node waits for requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Open connections per client address.
#[derive(Default)]
struct Counts(Mutex<HashMap<IpAddr, usize>>);

/// One admitted connection; leaving releases its place.
struct Admitted {
    counts: Arc<Counts>,
    ip: IpAddr,
}

impl Counts {
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admitted> {
        let mut m = self.0.lock().expect("connection counts");
        let total: usize = m.values().sum();
        let here = m.entry(ip).or_default();
        if total >= MAX_CONNECTIONS || *here >= MAX_PER_ADDRESS {
            return None;
        }
        *here += 1;
        Some(Admitted { counts: self.clone(), ip })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut m = self.counts.0.lock().expect("connection counts");
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// The node id of the peer on the other end of a mutually authenticated connection, read from
/// its certificate (handlers of the peer door find it among the request's extensions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerNode(pub u64);

/// Serves `app` on `listener` until `stop` turns true, then lets requests in flight finish
/// (up to [`DRAIN_TIMEOUT`]). With `tls`, every connection is TLS: its handshake must end
/// within [`HEADER_TIMEOUT`], and the node named by a client certificate is handed to the
/// handlers as [`PeerNode`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    mut stop: watch::Receiver<bool>,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let counts = Arc::new(Counts::default());
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
    builder.http2().timer(TokioTimer::new());
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        let Some(admitted) = counts.admit(peer.ip()) else {
            tracing::debug!(%peer, "connection refused: too many open");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (app, builder, watcher, acceptor) = (app.clone(), builder.clone(), graceful.watcher(), acceptor.clone());
        tokio::spawn(async move {
            match acceptor {
                None => {
                    let svc = hyper::service::service_fn(move |req| handle(app.clone(), peer, None, req));
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc).into_owned();
                    let _ = watcher.watch(conn).await;
                }
                Some(acceptor) => {
                    let stream = match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => return tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                    };
                    let node =
                        stream.get_ref().1.peer_certificates().and_then(|c| c.first()).and_then(crate::pki::node_id_of);
                    let svc = hyper::service::service_fn(move |req| handle(app.clone(), peer, node, req));
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc).into_owned();
                    let _ = watcher.watch(conn).await;
                }
            }
            drop(admitted);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await;
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Serves one connection's requests with the router, telling handlers who is calling.
async fn handle(
    app: Router,
    peer: SocketAddr,
    node: Option<u64>,
    mut req: hyper::Request<hyper::body::Incoming>,
) -> Result<axum::response::Response, std::convert::Infallible> {
    req.extensions_mut().insert(ConnectInfo(peer));
    if let Some(id) = node {
        req.extensions_mut().insert(PeerNode(id));
    }
    let mut app = app;
    tower_service::Service::call(&mut app, req).await
}
