//! The sidecars syncing with this replica, one entry per Sync stream: which node holds which
//! revision of which account. The Sync streams update it (the version sent, the version the sidecar
//! acknowledged, its last rejection); the management listener shows it (`GET /v1/sidecars`) and
//! sums it up as Prometheus metrics (`GET /metrics`). Nothing here is kept once a stream ends:
//! a replica's list is its own streams.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::control_plane::Store;

/// The longest node name kept.
pub const MAX_NODE_LEN: usize = 128;
/// The longest rejection message kept.
pub const MAX_ERROR_LEN: usize = 512;

/// A rejected version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejection {
    /// The version rejected.
    pub version: u64,
    /// Why, as the sidecar said.
    pub error: String,
}

/// One Sync stream.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SidecarStatus {
    /// The node the sidecar named (its pod), or empty.
    pub node: String,
    /// The address the stream comes from.
    pub peer: String,
    /// The account synced.
    pub account: String,
    /// When the stream opened (Unix seconds).
    pub connected_at: i64,
    /// The version the sidecar held when it subscribed.
    pub resumed_from: u64,
    /// The last version sent.
    pub sent_version: u64,
    /// The last version the sidecar acknowledged (applied).
    pub acked_version: u64,
    /// Its last rejection, if any.
    pub rejected: Option<Rejection>,
}

/// Every Sync stream of this replica and the totals since start.
#[derive(Debug, Default)]
pub struct Sidecars {
    next_id: AtomicU64,
    streams: Mutex<HashMap<u64, SidecarStatus>>,
    deltas_sent: AtomicU64,
    snapshots_sent: AtomicU64,
    rejections: AtomicU64,
}

/// A stream's entry, removed when it is dropped (the stream ended).
#[derive(Debug)]
pub struct Registration {
    sidecars: Arc<Sidecars>,
    id: u64,
}

/// Cuts `text` to `max` characters and drops control characters (it is shown and logged).
fn clean(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

impl Sidecars {
    /// Adds a stream of `account` from `peer`, whose sidecar holds `known_version`.
    pub fn register(
        self: &Arc<Self>,
        node: &str,
        peer: String,
        account: &str,
        known_version: u64,
    ) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let status = SidecarStatus {
            node: clean(node, MAX_NODE_LEN),
            peer,
            account: account.to_owned(),
            connected_at: crate::clock::now_unix(),
            resumed_from: known_version,
            sent_version: known_version,
            acked_version: known_version,
            rejected: None,
        };
        if let Ok(mut streams) = self.streams.lock() {
            streams.insert(id, status);
        }
        Registration {
            sidecars: Arc::clone(self),
            id,
        }
    }

    /// The streams of `account` (every stream when `None`), oldest first.
    pub fn list(&self, account: Option<&str>) -> Vec<SidecarStatus> {
        let Ok(streams) = self.streams.lock() else {
            return Vec::new();
        };
        let mut listed: Vec<(u64, SidecarStatus)> = streams
            .iter()
            .filter(|(_, s)| account.is_none_or(|a| s.account == a))
            .map(|(id, s)| (*id, s.clone()))
            .collect();
        listed.sort_by_key(|(id, _)| *id);
        listed.into_iter().map(|(_, s)| s).collect()
    }

    /// The Prometheus text of the streams and `store`: streams open, streams whose sidecar has not
    /// acknowledged the version served, accounts served, and the totals since start.
    pub fn metrics(&self, store: &Store) -> String {
        let streams = self.list(None);
        let behind = streams
            .iter()
            .filter(|s| {
                store
                    .served(&s.account)
                    .is_some_and(|v| s.acked_version < v.version())
            })
            .count();
        let (published, refused) = store.counts();
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP scopegate_control_plane_{name} {help}\n# TYPE scopegate_control_plane_{name} {kind}\nscopegate_control_plane_{name} {value}"
            );
        };
        metric("accounts", "gauge", "Accounts served.", store.len() as u64);
        metric(
            "sync_streams",
            "gauge",
            "Sync streams open.",
            streams.len() as u64,
        );
        metric(
            "sync_streams_behind",
            "gauge",
            "Sync streams whose sidecar has not acknowledged the version served.",
            behind as u64,
        );
        metric(
            "versions_published_total",
            "counter",
            "Versions published.",
            published,
        );
        metric("versions_refused_total", "counter", "Versions refused.", refused);
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        metric(
            "deltas_sent_total",
            "counter",
            "Deltas sent on Sync streams.",
            load(&self.deltas_sent),
        );
        metric(
            "snapshots_sent_total",
            "counter",
            "Whole snapshots sent on Sync streams.",
            load(&self.snapshots_sent),
        );
        metric(
            "sync_rejections_total",
            "counter",
            "Versions sidecars rejected (NACK).",
            load(&self.rejections),
        );
        out
    }

    fn update(&self, id: u64, change: impl FnOnce(&mut SidecarStatus)) {
        if let Ok(mut streams) = self.streams.lock()
            && let Some(status) = streams.get_mut(&id)
        {
            change(status);
        }
    }
}

impl Registration {
    /// `version` was sent, as a delta or as a whole snapshot.
    pub fn sent(&self, version: u64, deltas: usize) {
        let counters = &self.sidecars;
        if deltas == 0 {
            counters.snapshots_sent.fetch_add(1, Ordering::Relaxed);
        } else {
            counters.deltas_sent.fetch_add(deltas as u64, Ordering::Relaxed);
        }
        self.sidecars.update(self.id, |s| s.sent_version = version);
    }

    /// The sidecar applied `version`.
    pub fn acked(&self, version: u64) {
        self.sidecars
            .update(self.id, |s| s.acked_version = s.acked_version.max(version));
    }

    /// The sidecar rejected `version`; returns the version it still holds (its last acknowledged).
    pub fn rejected(&self, version: u64, error: &str) -> u64 {
        self.sidecars.rejections.fetch_add(1, Ordering::Relaxed);
        let mut held = 0;
        self.sidecars.update(self.id, |s| {
            s.rejected = Some(Rejection {
                version,
                error: clean(error, MAX_ERROR_LEN),
            });
            held = s.acked_version;
        });
        held
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut streams) = self.sidecars.streams.lock() {
            streams.remove(&self.id);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_listed_while_open_and_summed_up() {
        let sidecars = Arc::new(Sidecars::default());
        let store = Store::default();
        let first = sidecars.register("pod-a\n", "10.0.0.1:5".to_owned(), "acme", 3);
        let second = sidecars.register(&"x".repeat(500), "10.0.0.2:5".to_owned(), "other", 0);
        first.sent(4, 1);
        first.acked(4);
        assert_eq!(second.rejected(1, "bad"), 0);
        let listed = sidecars.list(Some("acme"));
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].node, "pod-a");
        assert_eq!((listed[0].resumed_from, listed[0].acked_version), (3, 4));
        assert_eq!(sidecars.list(None)[1].node.len(), MAX_NODE_LEN);
        let metrics = sidecars.metrics(&store);
        assert!(
            metrics.contains("scopegate_control_plane_sync_streams 2\n"),
            "{metrics}"
        );
        assert!(metrics.contains("scopegate_control_plane_deltas_sent_total 1\n"));
        assert!(metrics.contains("scopegate_control_plane_sync_rejections_total 1\n"));
        drop(first);
        assert_eq!(sidecars.list(None).len(), 1);
    }
}
