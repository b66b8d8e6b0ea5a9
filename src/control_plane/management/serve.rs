//! Serving the management API on the control plane's HTTP listener: a [`Listener`] (plaintext, or
//! TLS from the control plane's own certificate, HTTP/1.1 and h2) through the one HTTP accept loop
//! ([`crate::tls::serve_router`]), whose graceful shutdown lets in-flight writes finish.

use std::future::Future;
use std::sync::Arc;

use super::{Management, router};
use crate::tls::Listener;

/// Serves `management` on `listener` until `shutdown` completes, then drains in-flight requests.
pub async fn serve_on(
    listener: Listener,
    management: Arc<Management>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    crate::tls::serve_router(listener, router(management), shutdown).await
}
