//! The Prometheus metrics served on `GET /metrics` (OpenMetrics text, which Prometheus scrapes).
//!
//! [`Metrics`] is held by [`State`]: event counters the hot path bumps (decisions, Check latency,
//! API-key cache lookups) live in its registry; values that already exist elsewhere (the JWT cache,
//! the JWKS key store, published snapshots, the audit queue) are read at scrape time by
//! [`render`], so nothing is counted twice. To add a metric: add a field to [`Metrics`], register
//! it in [`Metrics::new`] (an event), or read it in [`render`] (a value kept elsewhere).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::serve::State;

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

/// The event metrics of one server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    decisions: Family<DecisionLabels, Counter>,
    check_duration: LatencyFamily,
    api_key_cache_hits: AtomicU64,
    api_key_cache_misses: AtomicU64,
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
            api_key_cache_hits: AtomicU64::new(0),
            api_key_cache_misses: AtomicU64::new(0),
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

    /// Counts one verified-token cache lookup (`kind`: `api_key`; JWT lookups are counted by the
    /// JWT authenticator itself).
    pub fn token_cache_lookup(&self, _kind: &'static str, hit: bool) {
        let counter = if hit {
            &self.api_key_cache_hits
        } else {
            &self.api_key_cache_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
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

/// The scrape: the event metrics, then the values read from `state` now.
pub fn render(state: &State) -> String {
    let mut now = Registry::with_prefix("scopegate");
    let caches = Family::<CacheLabels, Counter>::default();
    let metrics = state.metrics();
    let (jwt_hits, jwt_misses) = state.jwt().map_or((0, 0), |jwt| jwt.cache_counts());
    for (kind, result, value) in [
        (
            "api_key",
            "hit",
            metrics.api_key_cache_hits.load(Ordering::Relaxed),
        ),
        (
            "api_key",
            "miss",
            metrics.api_key_cache_misses.load(Ordering::Relaxed),
        ),
        ("jwt", "hit", jwt_hits),
        ("jwt", "miss", jwt_misses),
    ] {
        caches.get_or_create(&CacheLabels { kind, result }).inc_by(value);
    }
    now.register(
        "token_cache_lookups",
        "Verified-token cache lookups by credential kind and result",
        caches,
    );
    let slow = state.token_cache().slow_check_counts();
    counter(
        &mut now,
        "bcrypt_checks",
        "bcrypt secret checks computed (refused secrets are remembered briefly and not hashed again)",
        slow.runs,
    );
    counter(
        &mut now,
        "bcrypt_busy",
        "API-key checks answered 503 because the bound on concurrent bcrypt checks was reached",
        slow.busy,
    );
    if let Some(jwt) = state.jwt() {
        let stats = jwt.store().stats();
        let load = |value: &AtomicU64| value.load(Ordering::Relaxed);
        counter(
            &mut now,
            "jwks_fetches",
            "JWKS fetches that published keys",
            load(&stats.fetches),
        );
        counter(
            &mut now,
            "jwks_fetch_failures",
            "JWKS fetches that failed",
            load(&stats.fetch_failures),
        );
        counter(
            &mut now,
            "jwks_refetches",
            "Unknown-kid JWKS refetches",
            load(&stats.refetches),
        );
        counter(
            &mut now,
            "jwks_refetches_limited",
            "Unknown-kid JWKS refetches skipped by the rate limit",
            load(&stats.refetches_limited),
        );
    }
    let published = state.published();
    gauge(
        &mut now,
        "accounts_loaded",
        "Accounts with a published snapshot",
        saturating_i64(published.len() as u64),
    );
    let versions = Family::<AccountLabels, Gauge>::default();
    let ages = Family::<AccountLabels, Gauge<f64, AtomicU64>>::default();
    let wall = SystemTime::now();
    for (account, version, at) in published {
        let labels = AccountLabels { account };
        versions.get_or_create(&labels).set(saturating_i64(version));
        let age = wall.duration_since(at).unwrap_or_default().as_secs_f64();
        ages.get_or_create(&labels).set(age);
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
    let audit = state.audit();
    gauge(
        &mut now,
        "audit_queue_depth",
        "Audit records waiting for the writer",
        saturating_i64(audit.queue_depth() as u64),
    );
    counter(
        &mut now,
        "audit_dropped",
        "Audit records dropped (queue full or log closed)",
        audit.dropped(),
    );
    counter(
        &mut now,
        "audit_written",
        "Audit records written",
        audit.written(),
    );
    counter(
        &mut now,
        "audit_write_errors",
        "Audit records the sink failed to take",
        audit.write_errors(),
    );
    let mut text = String::with_capacity(4096);
    // writing to a String cannot fail
    let _ = encode_registry(&mut text, &metrics.registry);
    let _ = encode_registry(&mut text, &now);
    let _ = encode_eof(&mut text);
    text
}
