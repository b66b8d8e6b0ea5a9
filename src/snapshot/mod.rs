//! Where the sidecar's account snapshots come from when they are not local files: the control-plane
//! source ([`ControlPlaneSource`]: load on first request, single-flight, one Watch stream per loaded
//! account, idle eviction, reconnect with backoff and jitter, last-known-good copies on disk), and
//! the counters it keeps for metrics. It never evaluates a request.

use std::time::Duration;

pub mod backoff;
pub mod control_plane;
pub mod failure_log;
pub mod last_known_good;
mod watch;

pub use backoff::Backoff;
pub use control_plane::{ControlPlaneSource, RemoteOptions, SourceError};

/// One loaded account, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountStats {
    /// The account identifier.
    pub account: String,
    /// The snapshot version in force.
    pub version: u64,
    /// How long ago that version was published in this process (`None` when not tracked).
    pub age: Option<Duration>,
}

/// A point-in-time view of the snapshot source, ready to be exported as metrics
/// (`scopegate_snapshot_version{account}`, `scopegate_snapshot_age_seconds{account}`,
/// `scopegate_snapshot_load_failures_total`, `scopegate_control_plane_reconnects_total`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    /// The accounts loaded now, sorted by identifier.
    pub accounts: Vec<AccountStats>,
    /// Snapshots that could not be fetched, or were fetched and rejected, since start.
    pub load_failures: u64,
    /// Watch streams re-opened after a failure or an end of stream, since start.
    pub reconnects: u64,
    /// Snapshot versions applied since start (first loads included).
    pub versions_applied: u64,
    /// Accounts dropped from the cache (idle or over capacity) since start.
    pub evictions: u64,
    /// Watch streams (one per loaded account) running now.
    pub watch_streams: u64,
}
