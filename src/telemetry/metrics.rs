//! The Prometheus metrics served on `GET /metrics` (OpenMetrics text, which Prometheus scrapes).
//!
//! [`Metrics`] holds the event counters the hot path bumps (decisions, Check latency) in its
//! registry; values that already exist elsewhere (the verified-token caches, the JWKS key store,
//! the published accounts and their source's counters, the audit queue) are read at scrape time
//! into a [`MetricsView`] by the request policy and rendered by [`render`], so nothing is counted
//! twice. To add a metric: add a field to [`Metrics`] and register it in [`Metrics::new`] (an
//! event), or add a field to [`MetricsView`] and render it (a value kept elsewhere).

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The `content-type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of `scopegate_decisions_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// `grpc`, `http` or `acl`.
    pub frontend: &'static str,
    /// `allow` or `deny` (the real decision, also in dry-run mode).
    pub result: &'static str,
    /// The stable reason code.
    pub reason: &'static str,
}

/// Labels naming a front end.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FrontendLabels {
    /// `grpc`, `http` or `acl`.
    pub frontend: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    kind: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AccountLabels {
    account: String,
}

type LatencyFamily = Family<FrontendLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 10 µs … ~0.33 s
    Histogram::new(exponential_buckets(0.000_01, 2.0, 16))
}

/// One published account, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountStats {
    /// The account identifier.
    pub account: String,
    /// The snapshot version in force.
    pub version: u64,
    /// How long ago that version was published in this process (`None` when not known).
    pub age: Option<Duration>,
}

/// A point-in-time view of the account source: the published accounts and the source's counters
/// (all zero for files).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    /// The accounts loaded now, sorted by identifier.
    pub accounts: Vec<AccountStats>,
    /// Snapshots that could not be fetched, or were fetched and rejected, since start.
    pub load_failures: u64,
    /// Watch streams re-opened after a failure or an end of stream, since start.
    pub reconnects: u64,
    /// Snapshot versions applied since start (first loads included), whole or as deltas.
    pub versions_applied: u64,
    /// Versions applied as deltas (incremental compile) since start.
    pub deltas_applied: u64,
    /// Deltas rejected (the control plane then sends the whole snapshot) since start.
    pub deltas_rejected: u64,
    /// Accounts dropped from the cache (idle or over capacity) since start.
    pub evictions: u64,
    /// Watch streams (one per loaded account) running now.
    pub watch_streams: u64,
}

/// The JWKS key store's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JwksCounts {
    /// Fetches that published keys.
    pub fetches: u64,
    /// Fetches that failed.
    pub fetch_failures: u64,
    /// Unknown-kid refetches.
    pub refetches: u64,
    /// Unknown-kid refetches skipped by the rate limit.
    pub refetches_limited: u64,
}

/// The audit log's queue and counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditCounts {
    /// Records waiting for the writer.
    pub queue_depth: usize,
    /// Records dropped.
    pub dropped: u64,
    /// Records written.
    pub written: u64,
    /// Records the sink failed to take.
    pub write_errors: u64,
}

/// The values read at scrape time from where they are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsView {
    /// API-key verified-token cache (hits, misses).
    pub api_key_cache: (u64, u64),
    /// JWT verified-token cache (hits, misses).
    pub jwt_cache: (u64, u64),
    /// bcrypt checks computed.
    pub bcrypt_runs: u64,
    /// API-key checks refused as busy.
    pub bcrypt_busy: u64,
    /// The JWKS key store, when JWT issuers are configured.
    pub jwks: Option<JwksCounts>,
    /// The account source.
    pub accounts: SnapshotStats,
    /// The audit log.
    pub audit: AuditCounts,
}

/// The event metrics of one server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    decisions: Family<DecisionLabels, Counter>,
    check_duration: LatencyFamily,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty metrics, registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("scopegate");
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "decisions",
            "Decisions by front end, result and reason code",
            decisions.clone(),
        );
        let check_duration: LatencyFamily = Family::new_with_constructor(latency_histogram);
        registry.register(
            "check_duration_seconds",
            "Time to decide one request, by front end (fetching a JWT issuer's new keys included)",
            check_duration.clone(),
        );
        Self {
            registry,
            decisions,
            check_duration,
        }
    }

    /// Counts one decision and its latency.
    pub fn decision(&self, frontend: &'static str, allowed: bool, reason: &'static str, latency: Duration) {
        let result = if allowed { "allow" } else { "deny" };
        self.decisions
            .get_or_create(&DecisionLabels {
                frontend,
                result,
                reason,
            })
            .inc();
        self.check_duration
            .get_or_create(&FrontendLabels { frontend })
            .observe(latency.as_secs_f64());
    }
}

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let metric = Counter::<u64>::default();
    metric.inc_by(value);
    registry.register(name, help, metric);
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let metric = Gauge::<i64>::default();
    metric.set(value);
    registry.register(name, help, metric);
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The scrape: the event metrics, then the values of `view`.
pub fn render(metrics: &Metrics, view: &MetricsView) -> String {
    let mut now = Registry::with_prefix("scopegate");
    let caches = Family::<CacheLabels, Counter>::default();
    for (kind, result, value) in [
        ("api_key", "hit", view.api_key_cache.0),
        ("api_key", "miss", view.api_key_cache.1),
        ("jwt", "hit", view.jwt_cache.0),
        ("jwt", "miss", view.jwt_cache.1),
    ] {
        caches.get_or_create(&CacheLabels { kind, result }).inc_by(value);
    }
    now.register(
        "token_cache_lookups",
        "Verified-token cache lookups by credential kind and result",
        caches,
    );
    counter(
        &mut now,
        "bcrypt_checks",
        "bcrypt secret checks computed (refused secrets are remembered briefly and not hashed again)",
        view.bcrypt_runs,
    );
    counter(
        &mut now,
        "bcrypt_busy",
        "API-key checks answered 503 because the bound on concurrent bcrypt checks was reached",
        view.bcrypt_busy,
    );
    if let Some(jwks) = &view.jwks {
        counter(
            &mut now,
            "jwks_fetches",
            "JWKS fetches that published keys",
            jwks.fetches,
        );
        counter(
            &mut now,
            "jwks_fetch_failures",
            "JWKS fetches that failed",
            jwks.fetch_failures,
        );
        counter(
            &mut now,
            "jwks_refetches",
            "Unknown-kid JWKS refetches",
            jwks.refetches,
        );
        counter(
            &mut now,
            "jwks_refetches_limited",
            "Unknown-kid JWKS refetches skipped by the rate limit",
            jwks.refetches_limited,
        );
    }
    render_accounts(&mut now, &view.accounts);
    let audit = &view.audit;
    gauge(
        &mut now,
        "audit_queue_depth",
        "Audit records waiting for the writer",
        saturating_i64(audit.queue_depth as u64),
    );
    counter(
        &mut now,
        "audit_dropped",
        "Audit records dropped (queue full or log closed)",
        audit.dropped,
    );
    counter(&mut now, "audit_written", "Audit records written", audit.written);
    counter(
        &mut now,
        "audit_write_errors",
        "Audit records the sink failed to take",
        audit.write_errors,
    );
    let mut text = String::with_capacity(4096);
    // writing to a String cannot fail
    let _ = encode_registry(&mut text, &metrics.registry);
    let _ = encode_registry(&mut text, &now);
    let _ = encode_eof(&mut text);
    text
}

/// The published accounts (count, version and age of each) and the account source's counters.
fn render_accounts(now: &mut Registry, stats: &SnapshotStats) {
    gauge(
        now,
        "accounts_loaded",
        "Accounts with a published snapshot",
        saturating_i64(stats.accounts.len() as u64),
    );
    let versions = Family::<AccountLabels, Gauge>::default();
    let ages = Family::<AccountLabels, Gauge<f64, AtomicU64>>::default();
    for account in &stats.accounts {
        let labels = AccountLabels {
            account: account.account.clone(),
        };
        versions
            .get_or_create(&labels)
            .set(saturating_i64(account.version));
        if let Some(age) = account.age {
            ages.get_or_create(&labels).set(age.as_secs_f64());
        }
    }
    now.register(
        "snapshot_version",
        "The published snapshot version, per account",
        versions,
    );
    now.register(
        "snapshot_age_seconds",
        "Seconds since the account's snapshot was published",
        ages,
    );
    counter(
        now,
        "snapshot_load_failures",
        "Snapshots that could not be fetched, or were fetched and rejected (control plane)",
        stats.load_failures,
    );
    counter(
        now,
        "snapshot_versions_applied",
        "Snapshot versions applied, first loads included (control plane)",
        stats.versions_applied,
    );
    counter(
        now,
        "snapshot_deltas_applied",
        "Versions applied as deltas, compiled incrementally (control plane)",
        stats.deltas_applied,
    );
    counter(
        now,
        "snapshot_deltas_rejected",
        "Deltas rejected; the control plane then sends the whole snapshot (control plane)",
        stats.deltas_rejected,
    );
    counter(
        now,
        "control_plane_reconnects",
        "Watch streams re-opened after a failure or an end of stream",
        stats.reconnects,
    );
    counter(
        now,
        "account_evictions",
        "Accounts dropped from the cache, idle or over capacity (control plane)",
        stats.evictions,
    );
    gauge(
        now,
        "control_plane_watch_streams",
        "Watch streams (one per loaded account) running now",
        saturating_i64(stats.watch_streams),
    );
}
