//! The control-plane account source of the sidecar.
//!
//! An account is loaded on its first request: the request's front end calls
//! [`ControlPlaneSource::load_account`], which puts a slot for the account in a moka cache
//! (`get_with` runs the initialiser once, so concurrent first requests share one slot) and waits, up
//! to a timeout, for the slot's first snapshot. Each slot owns one task holding one Watch stream:
//! it applies every version the control plane pushes (compiled off the async workers; a snapshot
//! that fails to compile never replaces the valid one), writes each one to `cache_dir` as the
//! account's last-known-good copy, and reconnects with exponential backoff and jitter. When the
//! control plane cannot be reached the last-known-good copy is served. Idle slots are evicted after
//! `account_idle` (at most `max_accounts` are held); dropping a slot aborts its task. Accounts
//! named in `preload` are loaded at start, never evicted, and make up readiness.
//!
//! Request-driven names are untrusted: a slot waits in a separate bounded `pending` cache until
//! its first snapshot is published, and only then joins the loaded accounts, so names that never
//! load cannot evict an account that did. A name the control plane answers NOT_FOUND for ends its
//! task at once and is remembered in a bounded negative cache for `unknown_ttl`: asking again within
//! that time costs no control-plane call and no task.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::accounts::watch::{Context, Counters, LoadState, Shared, watch_account};
use crate::accounts::{AccountStats, SnapshotStats};
use crate::rbac::{Catalog, CompiledAccount};

/// The longest account identifier looked up (a longer one is unavailable without a fetch).
pub const MAX_ACCOUNT_LEN: usize = 256;
/// The default largest snapshot message accepted: 64 MiB (a 100,000-assignment account is ~11 MB).
pub const DEFAULT_MAX_SNAPSHOT_BYTES: usize = 64 * 1024 * 1024;
/// The longest `account_idle` honoured (moka refuses absurd durations).
const MAX_IDLE: Duration = Duration::from_secs(10 * 365 * 86_400);

/// How the sidecar reaches the control plane and keeps accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteOptions {
    /// `http://host:port` or `https://host:port`.
    pub url: String,
    /// Further control-plane replicas, tried in turn after `url` whenever a Watch stream breaks,
    /// ends or cannot be opened (every account's task follows the one in use); empty = `url` only.
    pub alternate_urls: Vec<String>,
    /// A CA bundle (PEM) to verify the control plane with; `None` = the system roots.
    pub ca: Option<PathBuf>,
    /// A client certificate chain and key (PEM) for mutual TLS.
    pub identity: Option<(PathBuf, PathBuf)>,
    /// Accounts loaded at start, never evicted; readiness waits for them.
    pub preload: Vec<String>,
    /// Where last-known-good copies are kept; `None` = nowhere.
    pub cache_dir: Option<PathBuf>,
    /// Accounts held at most (preloaded ones aside).
    pub max_accounts: u64,
    /// How long an unused account is kept.
    pub account_idle: Duration,
    /// How long a request waits for its account's first load.
    pub load_timeout: Duration,
    /// The first reconnect delay.
    pub backoff_min: Duration,
    /// The longest reconnect delay.
    pub backoff_max: Duration,
    /// Accept a plaintext `http://` url whose host is not loopback (see
    /// [`crate::config::is_plaintext_remote`]); otherwise [`ControlPlaneSource::new`] refuses it.
    pub insecure: bool,
    /// The largest snapshot message accepted; a bigger one is refused and the version in force kept.
    pub max_snapshot_bytes: usize,
    /// How long a name the control plane does not know is answered "unavailable" without asking.
    pub unknown_ttl: Duration,
    /// Unknown names remembered at most (the oldest are forgotten first).
    pub max_unknown: u64,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:9300".to_owned(),
            alternate_urls: Vec::new(),
            ca: None,
            identity: None,
            preload: Vec::new(),
            cache_dir: None,
            max_accounts: 1000,
            account_idle: Duration::from_secs(3600),
            load_timeout: Duration::from_millis(150),
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
            insecure: false,
            max_snapshot_bytes: DEFAULT_MAX_SNAPSHOT_BYTES,
            unknown_ttl: Duration::from_secs(10),
            max_unknown: 10_000,
        }
    }
}

/// Why the control-plane source could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The URL is not usable.
    #[error("control plane url `{url}`: {message}")]
    Url {
        /// The URL.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// A plaintext url to a host that is not loopback, without `insecure`.
    #[error(
        "control plane url `{0}` is plaintext to a host that is not loopback: use https:// with a client certificate, or allow it explicitly (`snapshot.control_plane.insecure: true`, `--control-plane-insecure`)"
    )]
    Plaintext(String),
    /// A TLS file cannot be read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A cached account: what it publishes and its Watch task, aborted when the slot is dropped
/// (evicted).
#[derive(Debug)]
struct Slot {
    shared: Arc<Shared>,
    task: tokio::task::AbortHandle,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accounts fetched from the control plane and kept fresh (see the module documentation).
#[derive(Debug)]
pub struct ControlPlaneSource {
    ctx: Arc<Context>,
    slots: moka::sync::Cache<String, Arc<Slot>>,
    pending: moka::sync::Cache<String, Arc<Slot>>,
    unknown: moka::sync::Cache<String, ()>,
    preload: Vec<String>,
    pinned: OnceLock<HashMap<String, Arc<Slot>>>,
    load_timeout: Duration,
    started: AtomicBool,
}

fn read_pem(path: &std::path::Path) -> Result<Vec<u8>, SourceError> {
    std::fs::read(path).map_err(|source| SourceError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn endpoint(options: &RemoteOptions, url: &str) -> Result<Endpoint, SourceError> {
    let url_error = |message: String| SourceError::Url {
        url: url.to_owned(),
        message,
    };
    if !options.insecure && crate::config::is_plaintext_remote(url) {
        return Err(SourceError::Plaintext(url.to_owned()));
    }
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| url_error(e.to_string()))?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true);
    if url.starts_with("https://") {
        let mut tls = ClientTlsConfig::new();
        tls = match &options.ca {
            Some(ca) => tls.ca_certificate(Certificate::from_pem(read_pem(ca)?)),
            None => tls.with_native_roots(),
        };
        if let Some((cert, key)) = &options.identity {
            tls = tls.identity(Identity::from_pem(read_pem(cert)?, read_pem(key)?));
        }
        endpoint = endpoint.tls_config(tls).map_err(|e| url_error(e.to_string()))?;
    }
    Ok(endpoint)
}

/// The name this sidecar gives the control plane: `POD_NAME` (the Kubernetes downward API), else
/// `HOSTNAME` (a pod's hostname is its name), else empty.
fn node_name() -> String {
    ["POD_NAME", "HOSTNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .unwrap_or_default()
}

impl ControlPlaneSource {
    /// Sets the source up without connecting: nothing runs until [`start`](Self::start) or the
    /// first [`load_account`](Self::load_account).
    pub fn new(options: &RemoteOptions, catalog: Arc<Catalog>) -> Result<Self, SourceError> {
        let endpoints = std::iter::once(&options.url)
            .chain(&options.alternate_urls)
            .map(|url| endpoint(options, url))
            .collect::<Result<Vec<_>, _>>()?;
        let ctx = Arc::new(Context {
            channels: endpoints.into_iter().map(|e| (e, OnceLock::new())).collect(),
            in_use: std::sync::atomic::AtomicUsize::new(0),
            catalog,
            cache_dir: options.cache_dir.clone(),
            backoff: (options.backoff_min, options.backoff_max),
            max_snapshot_bytes: options.max_snapshot_bytes.max(1),
            node: node_name(),
            counters: Counters::default(),
        });
        let evicted = Arc::clone(&ctx);
        let slots = moka::sync::Cache::builder()
            .max_capacity(options.max_accounts.max(1))
            .time_to_idle(options.account_idle.min(MAX_IDLE))
            .eviction_policy(moka::policy::EvictionPolicy::lru())
            .eviction_listener(move |account: Arc<String>, _slot, cause| {
                evicted.counters.evictions.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(account = %account, ?cause, "account dropped from the cache");
            })
            .build();
        // Names not loaded yet: a pool of their own, so they never push a loaded account out.
        let pending = moka::sync::Cache::builder()
            .max_capacity(options.max_accounts.max(1))
            .time_to_idle(options.account_idle.min(MAX_IDLE))
            .build();
        let unknown = moka::sync::Cache::builder()
            .max_capacity(options.max_unknown.max(1))
            .time_to_live(options.unknown_ttl.min(MAX_IDLE))
            .build();
        Ok(Self {
            ctx,
            slots,
            pending,
            unknown,
            preload: options.preload.clone(),
            pinned: OnceLock::new(),
            load_timeout: options.load_timeout,
            started: AtomicBool::new(false),
        })
    }

    /// Starts loading the preloaded accounts and the cache's housekeeping (idle eviction without
    /// traffic). Call once inside the runtime; later calls do nothing.
    pub fn start(&self) {
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let pinned = self
            .preload
            .iter()
            .map(|account| (account.clone(), Arc::new(self.new_slot(account, true))))
            .collect();
        let _ = self.pinned.set(pinned);
        let caches = (self.slots.clone(), self.pending.clone(), self.unknown.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tick.tick().await;
                let caches = caches.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    caches.0.run_pending_tasks();
                    caches.1.run_pending_tasks();
                    caches.2.run_pending_tasks();
                })
                .await;
            }
        });
    }

    /// A slot and its Watch task; `pinned` slots (preloaded) keep asking about an account the
    /// control plane does not know, request-driven ones give up at the first NOT_FOUND.
    fn new_slot(&self, account: &str, pinned: bool) -> Slot {
        let shared = Arc::new(Shared::new());
        let task = tokio::spawn(watch_account(
            Arc::clone(&self.ctx),
            Arc::clone(&shared),
            account.to_owned(),
            pinned,
        ));
        Slot {
            shared,
            task: task.abort_handle(),
        }
    }

    fn slot(&self, account: &str) -> Option<Arc<Slot>> {
        if let Some(slot) = self.pinned.get().and_then(|p| p.get(account)) {
            return Some(Arc::clone(slot));
        }
        if let Some(slot) = self.slots.get(account) {
            return Some(slot);
        }
        let slot = self.pending.get(account)?;
        if slot.shared.account.load().is_some() {
            self.promote(account, &slot);
        }
        Some(slot)
    }

    /// Moves a pending slot that published its first snapshot to the loaded accounts.
    fn promote(&self, account: &str, slot: &Arc<Slot>) {
        self.slots.insert(account.to_owned(), Arc::clone(slot));
        self.pending.invalidate(account);
    }

    /// The published account, if loaded (the hot path: a cache lookup, no I/O).
    pub fn account(&self, account: &str) -> Option<Arc<CompiledAccount>> {
        self.slot(account)?.shared.account.load_full()
    }

    /// Whether the control plane answered NOT_FOUND for `account` within the last `unknown_ttl`.
    pub fn is_unknown(&self, account: &str) -> bool {
        self.unknown.contains_key(account)
    }

    /// Loads `account` if it is not loaded yet, waiting up to the load timeout; concurrent callers
    /// share one fetch. Returns whether the account is available.
    pub async fn load_account(&self, account: &str) -> bool {
        if account.is_empty() || account.len() > MAX_ACCOUNT_LEN {
            return false;
        }
        self.start();
        if self.unknown.contains_key(account) {
            return false;
        }
        let slot = match self.slot(account) {
            Some(slot) => slot,
            None => self
                .pending
                .get_with(account.to_owned(), || Arc::new(self.new_slot(account, false))),
        };
        let mut state = slot.shared.state.subscribe();
        let settled = tokio::time::timeout(self.load_timeout, state.wait_for(|s| *s != LoadState::Loading));
        let settled = match settled.await {
            Ok(Ok(state)) => *state,
            _ => LoadState::Loading,
        };
        match settled {
            LoadState::Loaded => {
                if self.pending.contains_key(account) {
                    self.promote(account, &slot);
                }
                true
            }
            LoadState::Unknown => {
                // Its task has ended; remember the answer instead of the slot.
                self.unknown.insert(account.to_owned(), ());
                self.pending.invalidate(account);
                false
            }
            LoadState::Loading | LoadState::Unavailable => false,
        }
    }

    /// Whether every preloaded account is available.
    pub fn is_ready(&self) -> bool {
        match self.pinned.get() {
            Some(pinned) => pinned.values().all(|s| s.shared.account.load().is_some()),
            None => self.preload.is_empty(),
        }
    }

    /// The counters and the loaded accounts, for metrics.
    pub fn stats(&self) -> SnapshotStats {
        let now = Instant::now();
        let mut accounts: Vec<AccountStats> = Vec::new();
        let pinned = self.pinned.get().into_iter().flatten();
        let cached: Vec<(String, Arc<Slot>)> = self
            .slots
            .iter()
            .chain(self.pending.iter())
            .map(|(k, v)| ((*k).clone(), v))
            .collect();
        for (account, slot) in pinned.map(|(k, v)| (k.clone(), Arc::clone(v))).chain(cached) {
            let Some(version) = slot.shared.version() else {
                continue;
            };
            let age = slot
                .shared
                .published_at
                .lock()
                .ok()
                .and_then(|at| at.map(|at| now.duration_since(at)));
            accounts.push(AccountStats {
                account,
                version,
                age,
            });
        }
        accounts.sort_by(|a, b| a.account.cmp(&b.account));
        let c = &self.ctx.counters;
        SnapshotStats {
            accounts,
            load_failures: c.load_failures.load(Ordering::Relaxed),
            reconnects: c.reconnects.load(Ordering::Relaxed),
            versions_applied: c.versions_applied.load(Ordering::Relaxed),
            deltas_applied: c.deltas_applied.load(Ordering::Relaxed),
            deltas_rejected: c.deltas_rejected.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
            watch_streams: c.watch_streams.load(Ordering::Relaxed),
        }
    }

    /// Waits, up to `bound`, until `account`'s published version is `version` or newer; returns
    /// whether it is. The slot's load state is replaced on every publish, so a subscriber wakes on
    /// each new version; an account with no slot (not loaded, evicted) is not waited for.
    pub async fn wait_for_version(&self, account: &str, version: u64, bound: Duration) -> bool {
        let Some(slot) = self.slot(account) else {
            return false;
        };
        let reached = || slot.shared.version().is_some_and(|held| held >= version);
        super::wait_until(slot.shared.state.subscribe(), bound, reached).await
    }
}
