//! The reload loop of a running server: snapshot files polled every [`POLL_INTERVAL`] and on
//! SIGHUP, and readiness (which a control plane changes on its own) re-read as often, so gRPC
//! health follows it.

use std::sync::Arc;
use std::time::Duration;

use tonic_health::server::HealthReporter;

use super::health::set_health;
use crate::authz::Authorizer;

/// How often snapshot files are polled for changes.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How often readiness is re-read for gRPC health when no files are polled.
pub const READINESS_INTERVAL: Duration = Duration::from_millis(250);

/// Spawns the loop; abort the handle to stop it. SIGHUP is subscribed before this returns, so from
/// the first answered check on the signal asks for a reload and can never kill the process (its
/// default action).
pub fn spawn(authorizer: Arc<Authorizer>, reporter: HealthReporter) -> tokio::task::JoinHandle<()> {
    let mut hangup = crate::tls::hangups();
    let files = authorizer.accounts().watches_files();
    tokio::spawn(async move {
        let mut ready = authorizer.is_ready();
        let mut tick = tokio::time::interval(if files { POLL_INTERVAL } else { READINESS_INTERVAL });
        loop {
            tokio::select! {
                _ = tick.tick() => {},
                () = crate::tls::next_hangup(&mut hangup) => {
                    tracing::info!(code = "sighup_reload", files, "SIGHUP: reloading snapshot files and tls certificates");
                },
            }
            if files {
                let polled = Arc::clone(&authorizer);
                let _ = tokio::task::spawn_blocking(move || polled.accounts().reload()).await;
            }
            if authorizer.is_ready() != ready {
                ready = authorizer.is_ready();
                set_health(&reporter, ready).await;
            }
        }
    })
}
