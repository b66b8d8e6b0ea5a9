//! The one HTTP accept loop, for every axum router served on a [`Listener`] (the sidecar's HTTP
//! and admin listeners, the control plane's management API): hyper-util's server rather than
//! `axum::serve`, which cannot bound the time a client takes to send its headers (slowloris).
//! `header_read_timeout` bounds every HTTP/1 header block; the listener bounds the first bytes,
//! idle connections and how many are open. HTTP/1.1 and h2 (by ALPN under TLS, by preface in
//! plaintext). On shutdown: stop accepting, wait for the socket to close, then let in-flight
//! requests finish (idle connections close at once).

use std::future::Future;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;

use super::Listener;

/// Serves `app` on `listener` until `shutdown` completes, then drains in-flight requests. When it
/// returns, the listening socket is closed.
pub async fn serve_router(
    mut listener: Listener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let limits = listener.limits();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (conn, _peer) = tokio::select! {
            accepted = axum::serve::Listener::accept(&mut listener) => accepted,
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let served = builder
            .serve_connection_with_upgrades(TokioIo::new(conn), service)
            .into_owned();
        let served = graceful.watch(served);
        tokio::spawn(async move {
            // a client's error (a reset, a timeout) concerns that connection only
            if let Err(error) = served.await {
                tracing::debug!(%error, "http connection ended with an error");
            }
        });
    }
    let closed = listener.closed();
    drop(listener);
    closed.wait().await;
    graceful.shutdown().await;
    Ok(())
}
