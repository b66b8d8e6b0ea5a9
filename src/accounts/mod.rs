//! Where compiled accounts come from: snapshot files (or the embedded demo), polled and reloaded
//! ([`files`]), or a control plane ([`remote`]: load on first request, single-flight, one Watch
//! stream per loaded account, idle eviction, reconnect with backoff and jitter, last-known-good
//! copies on disk). Both sit behind [`Accounts`], so callers never branch on the source; both
//! report their published versions, ages and counters through [`Accounts::stats`], which `/metrics`
//! renders. Nothing here evaluates a request.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::rbac::{Catalog, CompiledAccount};

mod apply;
pub mod backoff;
pub mod demo;
pub mod failure_log;
pub mod files;
pub mod last_known_good;
pub mod remote;
pub mod scan;
mod watch;

pub use crate::telemetry::metrics::{AccountStats, SnapshotStats};
pub use backoff::Backoff;
pub use demo::DEMO_SNAPSHOT_YAML;
pub use files::{FileAccounts, SnapshotLoader};
pub use remote::{ControlPlaneSource, RemoteOptions, SourceError};

/// Where account snapshots come from.
// Built once at start: the size of the control-plane options does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotSource {
    /// The embedded demo snapshot; never reloaded.
    Embedded,
    /// A snapshot file, or a folder of them, polled for changes.
    Path(PathBuf),
    /// A control plane ([`ControlPlaneSource`]).
    ControlPlane(RemoteOptions),
}

/// The published accounts, from whichever source is configured.
// One per process: the size difference of the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Accounts {
    /// Snapshot files or the embedded demo.
    Files(FileAccounts),
    /// A control plane.
    Remote(ControlPlaneSource),
}

impl Accounts {
    /// The source of `source`, compiling against `catalog`; files are read once at once (the
    /// control plane is not contacted before [`start`](Self::start) or the first [`load`](Self::load)).
    pub fn new(source: SnapshotSource, catalog: Arc<Catalog>) -> Result<Self, SourceError> {
        let accounts = match &source {
            SnapshotSource::ControlPlane(options) => Self::Remote(ControlPlaneSource::new(options, catalog)?),
            _ => Self::Files(FileAccounts::new(source, catalog)),
        };
        accounts.reload();
        Ok(accounts)
    }

    /// The published account, if loaded (the hot path: no I/O).
    pub fn account(&self, account: &str) -> Option<Arc<CompiledAccount>> {
        match self {
            Self::Files(files) => files.account(account),
            Self::Remote(remote) => remote.account(account),
        }
    }

    /// Loads `account` if it is not loaded yet (control plane: single-flight, bounded by the load
    /// timeout). Returns whether it is now available; files never load on demand (`false`).
    pub async fn load(&self, account: &str) -> bool {
        match self {
            Self::Files(_) => false,
            Self::Remote(remote) => remote.load_account(account).await,
        }
    }

    /// Waits, up to `bound`, until the published `account` is at `version` or newer (read-your-writes:
    /// a request demanding the revision a management write produced). Returns whether it is; a zero
    /// `bound` only looks. Control plane: woken by every version its Watch stream publishes; files:
    /// woken by every reload that publishes (the poll, SIGHUP). An account not loaded is not loaded
    /// here ([`load`](Self::load) is).
    pub async fn wait_for_version(&self, account: &str, version: u64, bound: Duration) -> bool {
        match self {
            Self::Files(files) => files.wait_for_version(account, version, bound).await,
            Self::Remote(remote) => remote.wait_for_version(account, version, bound).await,
        }
    }

    /// Whether `account` is known not to exist here, as opposed to not loaded (yet) or unreachable:
    /// with files, at least one account is published and this one is not; with a control plane,
    /// it answered NOT_FOUND for it a moment ago (the negative cache). No I/O.
    pub fn is_unknown(&self, account: &str) -> bool {
        match self {
            Self::Files(files) => files.is_ready() && files.account(account).is_none(),
            Self::Remote(remote) => remote.is_unknown(account),
        }
    }

    /// Whether requests can be decided: with files, at least one account is published; with a
    /// control plane, every preloaded account is.
    pub fn is_ready(&self) -> bool {
        match self {
            Self::Files(files) => files.is_ready(),
            Self::Remote(remote) => remote.is_ready(),
        }
    }

    /// Starts background work (control plane: preloading and cache housekeeping). Idempotent.
    pub fn start(&self) {
        if let Self::Remote(remote) = self {
            remote.start();
        }
    }

    /// Whether files on disk are watched, so the server polls them ([`reload`](Self::reload)).
    pub fn watches_files(&self) -> bool {
        match self {
            Self::Files(files) => files.watches_files(),
            Self::Remote(_) => false,
        }
    }

    /// Re-reads changed snapshot files and publishes them; returns whether anything changed
    /// (a control plane pushes on its own: always `false`). Blocking I/O: call from a blocking
    /// context.
    pub fn reload(&self) -> bool {
        match self {
            Self::Files(files) => files.reload(),
            Self::Remote(_) => false,
        }
    }

    /// The published accounts (version, age) and the source's counters, for metrics.
    pub fn stats(&self) -> SnapshotStats {
        match self {
            Self::Files(files) => files.stats(),
            Self::Remote(remote) => remote.stats(),
        }
    }
}

/// Waits, up to `bound`, until `reached()`, looking again at each change `changes` sees (taken
/// before the first look, so a change in between is not missed); a zero `bound` only looks.
async fn wait_until<T>(
    mut changes: tokio::sync::watch::Receiver<T>,
    bound: Duration,
    reached: impl Fn() -> bool,
) -> bool {
    if reached() || bound.is_zero() {
        return reached();
    }
    let waited = tokio::time::timeout(bound, async {
        loop {
            if reached() {
                return true;
            }
            if changes.changed().await.is_err() {
                return reached();
            }
        }
    });
    waited.await.unwrap_or(false)
}
