//! Serving the management API on the control plane's HTTP listener: a [`Listener`] (plaintext, or
//! TLS from the control plane's own certificate, HTTP/1.1 and h2), hyper-util's server with the
//! listener's header-read timeout, graceful shutdown that lets in-flight writes finish.

use std::future::Future;
use std::sync::Arc;

use super::{Management, router};
use crate::tls::Listener;

/// Serves `management` on `listener` until `shutdown` completes, then drains in-flight requests.
pub async fn serve_on(
    mut listener: Listener,
    management: Arc<Management>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;
    let limits = listener.limits();
    let app = router(management);
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
            if let Err(error) = served.await {
                tracing::debug!(%error, "management connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
