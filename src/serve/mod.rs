//! `scopegate serve`: the sidecar's shared state (published accounts, route table, verified-token
//! cache, decision ids), snapshot loading and reloading, and the gRPC server (Envoy ext_authz +
//! gRPC health) with graceful shutdown, beside the HTTP listener of [`crate::http`] when configured.
//!
//! The request policy itself is the pure [`authorize()`](authorize::authorize); the Envoy wire
//! mapping lives in [`crate::envoy`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use envoy_types::ext_authz::v3::pb::AuthorizationServer;
use tonic_health::ServingStatus;

use crate::audit::AuditLog;
use crate::envoy::AuthzService;
use crate::http::HttpOptions;
use crate::jwks::{JwksError, JwtAuthenticator, JwtSettings};
use crate::rbac::{Catalog, CompiledAccount};
use crate::route::{RouteTable, RouteTableErrors};
use crate::snapshot::{AccountStats, ControlPlaneSource, SnapshotStats, SourceError};
use crate::telemetry::metrics::Metrics;
use crate::tls::{ConnectionLimits, Listener, Protocols, ServerTls};

pub mod authorize;
pub mod detail;
pub mod observe;
pub mod response;
pub mod snapshots;
pub mod verified_tokens;

pub use authorize::{Denial, FailedCheck, Outcome, Request, authorize};
pub use detail::Detail;
pub use snapshots::{DEMO_SNAPSHOT_YAML, SnapshotLoader, SnapshotSource};
pub use verified_tokens::{VerifiedToken, VerifiedTokens};

/// How long a verified token stays in the cache.
pub const TOKEN_TTL: Duration = Duration::from_secs(300);
/// How many verified tokens the cache holds at most.
pub const TOKEN_CACHE_CAPACITY: u64 = 100_000;
/// How often snapshot files are polled for changes.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How often readiness is re-read for gRPC health when no files are polled.
pub const READINESS_INTERVAL: Duration = Duration::from_millis(250);

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The embedded permission catalog failed to load.
    #[error("permission catalog: {0}")]
    Catalog(String),
    /// The route table could not be read.
    #[error("cannot read route table `{path}`: {source}")]
    RoutesRead {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The route table is invalid.
    #[error("invalid route table: {0}")]
    Routes(#[from] RouteTableErrors),
    /// Binding the listener failed.
    #[error("cannot listen on `{addr}`: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("grpc server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The control-plane source could not be set up.
    #[error(transparent)]
    ControlPlane(#[from] SourceError),
    /// JWT issuers could not be set up (e.g. a static key file is unreadable).
    #[error("jwt: {0}")]
    Jwt(#[from] JwksError),
    /// The HTTP server failed.
    #[error("http server: {0}")]
    Http(std::io::Error),
}

/// Everything a check reads, shared by all requests.
pub struct State {
    accounts: ArcSwap<HashMap<String, Arc<CompiledAccount>>>,
    routes: Arc<RouteTable>,
    /// Verified API tokens, bound to account, token id and stored hash (never the token).
    tokens: VerifiedTokens,
    loader: Mutex<SnapshotLoader>,
    /// The control-plane source, when accounts come from one (then `accounts` stays empty).
    remote: Option<ControlPlaneSource>,
    jwt: Option<Arc<JwtAuthenticator>>,
    id_prefix: u32,
    id_counter: AtomicU64,
    /// When each published account's current version was published, for `snapshot_age_seconds`.
    published_at: Mutex<HashMap<String, (u64, SystemTime)>>,
    audit: AuditLog,
    metrics: Metrics,
    dry_run: bool,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("accounts", &self.accounts.load().keys().collect::<Vec<_>>())
            .field("routes", &self.routes.len())
            .finish_non_exhaustive()
    }
}

/// Settings of the shared state beyond its sources.
#[derive(Debug, Clone)]
pub struct StateOptions {
    /// A catalog file replacing the embedded catalog.
    pub catalog: Option<std::path::PathBuf>,
    /// How many verified tokens the cache holds.
    pub token_cache_capacity: u64,
    /// How long a verified token stays cached.
    pub token_ttl: Duration,
    /// JWT issuers; `None` accepts API keys only.
    pub jwt: Option<JwtSettings>,
}

impl Default for StateOptions {
    fn default() -> Self {
        Self {
            catalog: None,
            token_cache_capacity: TOKEN_CACHE_CAPACITY,
            token_ttl: TOKEN_TTL,
            jwt: None,
        }
    }
}

impl State {
    /// Loads the route table (`None` = the embedded default) and the snapshots once.
    pub fn load(snapshots: SnapshotSource, routes: Option<&std::path::Path>) -> Result<Self, ServeError> {
        Self::load_with(snapshots, routes, &StateOptions::default())
    }

    /// Like `load`, with a catalog override and token-cache settings.
    pub fn load_with(
        snapshots: SnapshotSource,
        routes: Option<&std::path::Path>,
        options: &StateOptions,
    ) -> Result<Self, ServeError> {
        let catalog = match &options.catalog {
            Some(path) => Catalog::from_file(path),
            None => Catalog::embedded(),
        };
        let catalog = Arc::new(catalog.map_err(|e| ServeError::Catalog(e.to_string()))?);
        let known = |id: &str| catalog.permission_id(id).is_some();
        let table = match routes {
            None => RouteTable::default_harness(&known)?,
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ServeError::RoutesRead {
                    path: path.display().to_string(),
                    source,
                })?;
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                RouteTable::parse(&text, crate::route::Format::from_file_name(name), &known)?
            }
        };
        let remote = match &snapshots {
            SnapshotSource::ControlPlane(options) => {
                Some(ControlPlaneSource::new(options, Arc::clone(&catalog))?)
            }
            _ => None,
        };
        let jwt = match &options.jwt {
            Some(settings) => Some(Arc::new(JwtAuthenticator::new(settings.clone())?)),
            None => None,
        };
        let loader = SnapshotLoader::new(snapshots, catalog);
        let state = Self {
            accounts: ArcSwap::from_pointee(HashMap::new()),
            routes: Arc::new(table),
            tokens: VerifiedTokens::new(
                options.token_cache_capacity,
                options.token_ttl,
                verified_tokens::default_slow_limit(),
            ),
            loader: Mutex::new(loader),
            remote,
            jwt,
            id_prefix: rand::random(),
            id_counter: AtomicU64::new(0),
            published_at: Mutex::new(HashMap::new()),
            audit: AuditLog::off(),
            metrics: Metrics::new(),
            dry_run: false,
        };
        state.reload();
        Ok(state)
    }

    /// This state writing decision records to `audit`.
    #[must_use]
    pub fn with_audit(mut self, audit: AuditLog) -> Self {
        self.audit = audit;
        self
    }

    /// This state in dry-run mode (`mode: dry_run`): every request is decided, counted and audited
    /// with its real result, then allowed.
    #[must_use]
    pub fn with_dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// The audit log (off unless configured).
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// The event metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Whether the server runs in dry-run mode.
    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// Publishes a new set of accounts to the hot path, stamping the publication time of each
    /// account whose version changed. Every snapshot source publishes through here.
    pub fn publish(&self, accounts: HashMap<String, Arc<CompiledAccount>>) {
        if let Ok(mut published) = self.published_at.lock() {
            let now = SystemTime::now();
            published.retain(|name, _| accounts.contains_key(name));
            for (name, account) in &accounts {
                let version = account.version();
                let entry = published.entry(name.clone()).or_insert((version, now));
                if entry.0 != version {
                    *entry = (version, now);
                }
            }
        }
        self.accounts.store(Arc::new(accounts));
    }

    /// Every published account: name, snapshot version and when that version was published.
    pub fn published(&self) -> Vec<(String, u64, SystemTime)> {
        let mut list: Vec<_> = self.published_at.lock().map_or_else(
            |_| Vec::new(),
            |published| {
                published
                    .iter()
                    .map(|(name, (version, at))| (name.clone(), *version, *at))
                    .collect()
            },
        );
        list.sort();
        list
    }

    /// The embedded demo: demo snapshot and default route table.
    pub fn demo() -> Result<Self, ServeError> {
        Self::load(SnapshotSource::Embedded, None)
    }

    /// The published account, if loaded.
    pub fn account(&self, account: &str) -> Option<Arc<CompiledAccount>> {
        if let Some(remote) = &self.remote {
            return remote.account(account);
        }
        self.accounts.load().get(account).cloned()
    }

    /// Loads `account` from the control plane if it is not loaded yet (single-flight, bounded by
    /// the configured load timeout). Returns whether it is now available; always `false` for file
    /// sources. A front end calls this on [`Denial::SnapshotUnavailable`] and then authorizes again.
    pub async fn load_account(&self, account: &str) -> bool {
        match &self.remote {
            Some(remote) => remote.load_account(account).await,
            None => false,
        }
    }

    /// Starts background work of the snapshot source (control plane: preloading and cache
    /// housekeeping). Idempotent; `run_on` calls it.
    pub fn start(&self) {
        if let Some(remote) = &self.remote {
            remote.start();
        }
    }

    /// Snapshot versions, ages and source counters, for metrics.
    pub fn snapshot_stats(&self) -> SnapshotStats {
        if let Some(remote) = &self.remote {
            return remote.stats();
        }
        let mut accounts: Vec<AccountStats> = self
            .accounts
            .load()
            .values()
            .map(|a| AccountStats {
                account: a.account().to_owned(),
                version: a.version(),
                age: None,
            })
            .collect();
        accounts.sort_by(|a, b| a.account.cmp(&b.account));
        SnapshotStats {
            accounts,
            ..SnapshotStats::default()
        }
    }

    /// The route table.
    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    /// The verified-token cache.
    pub fn token_cache(&self) -> &VerifiedTokens {
        &self.tokens
    }

    /// JWT authentication, when issuers are configured.
    pub fn jwt(&self) -> Option<&JwtAuthenticator> {
        self.jwt.as_deref()
    }

    /// Fetches what a denial says is missing (an issuer's signing keys, an account not loaded yet), so that asking again may
    /// answer differently; returns whether it is worth asking again. The hot path never waits on
    /// the network: only the rare request that names something unknown does, here.
    pub async fn fetch_missing(&self, outcome: &Outcome) -> bool {
        match (outcome, &self.jwt) {
            (Outcome::Deny(Denial::UnknownSigningKey { issuer, kid }), Some(jwt)) => {
                jwt.refetch(*issuer, kid.as_deref()).await
            }
            (Outcome::Deny(Denial::SnapshotUnavailable { account }), _) => self.load_account(account).await,
            _ => false,
        }
    }

    /// Whether the server can decide (routes are loaded by construction): with files, at least one
    /// account snapshot is loaded; with a control plane, every preloaded account is.
    pub fn is_ready(&self) -> bool {
        if let Some(remote) = &self.remote {
            return remote.is_ready();
        }
        !self.accounts.load().is_empty()
    }

    /// A new decision id: a per-process random prefix and a counter.
    pub fn next_decision_id(&self) -> String {
        let n = self.id_counter.fetch_add(1, Ordering::Relaxed);
        format!("{:08x}-{n:x}", self.id_prefix)
    }

    /// Re-reads changed snapshot files and publishes the result; returns whether anything changed.
    /// Does blocking file I/O: call it from a blocking context.
    pub fn reload(&self) -> bool {
        let Ok(mut loader) = self.loader.lock() else {
            return false;
        };
        match loader.poll() {
            Some(accounts) => {
                self.publish(accounts);
                true
            }
            None => false,
        }
    }

    fn watches_files(&self) -> bool {
        self.loader
            .lock()
            .is_ok_and(|l| matches!(l.source(), SnapshotSource::Path(_)))
    }
}

async fn set_health(reporter: &tonic_health::server::HealthReporter, ready: bool) {
    let status = if ready {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    reporter.set_service_status("", status).await;
    reporter
        .set_service_status("envoy.service.auth.v3.Authorization", status)
        .await;
}

/// Serves ext_authz and gRPC health on `listener` (a `TcpListener`, or a TLS [`Listener`]) until
/// `shutdown` completes, then drains in-flight checks. Polls snapshot files every
/// [`POLL_INTERVAL`] while running.
pub async fn run_on(
    listener: impl Into<Listener>,
    state: Arc<State>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    state.start();
    set_health(&reporter, state.is_ready()).await;
    let key_refreshers = match &state.jwt {
        Some(jwt) => jwt.start().await,
        None => Vec::new(),
    };
    // SIGHUP asks for a reload, never an exit: subscribed before serving, so that from the first
    // answered check on the signal cannot kill the process (its default action).
    let mut hangup = crate::tls::hangups();
    let watcher = {
        let state = Arc::clone(&state);
        let files = state.watches_files();
        // Files are polled every POLL_INTERVAL and on SIGHUP; readiness (which a control plane
        // changes on its own) is re-read as often.
        tokio::spawn(async move {
            let mut ready = state.is_ready();
            let mut tick = tokio::time::interval(if files { POLL_INTERVAL } else { READINESS_INTERVAL });
            loop {
                tokio::select! {
                    _ = tick.tick() => {},
                    () = crate::tls::next_hangup(&mut hangup) => {
                        tracing::info!(code = "sighup_reload", files, "SIGHUP: reloading snapshot files and tls certificates");
                    },
                }
                if files {
                    let polled = Arc::clone(&state);
                    let _ = tokio::task::spawn_blocking(move || polled.reload()).await;
                }
                if state.is_ready() != ready {
                    ready = state.is_ready();
                    set_health(&reporter, ready).await;
                }
            }
        })
    };
    let result = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(AuthorizationServer::new(AuthzService::new(state)))
        .serve_with_incoming_shutdown(listener.into(), shutdown)
        .await;
    watcher.abort();
    for task in key_refreshers {
        task.abort();
    }
    Ok(result?)
}

/// Serves gRPC on `grpc` and, when given, the HTTP listener ([`crate::http`]) beside it, over the
/// same state, until `shutdown` completes; then both drain. If either server fails, both stop.
/// Listeners are `TcpListener`s or TLS [`Listener`]s.
pub async fn run_all(
    grpc: impl Into<Listener>,
    http: Option<(impl Into<Listener>, HttpOptions)>,
    state: Arc<State>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    run_listeners(grpc, http, None::<Listener>, state, shutdown).await
}

/// [`run_all`] with, when given, the admin listener (`/healthz`, `/readyz`, `/metrics`,
/// `/authz/api/acl`; [`HttpOptions::admin`]) too. If any server fails, all stop.
pub async fn run_listeners(
    grpc: impl Into<Listener>,
    http: Option<(impl Into<Listener>, HttpOptions)>,
    admin: Option<impl Into<Listener>>,
    state: Arc<State>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let signal = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let grpc = async {
        let result = run_on(grpc, Arc::clone(&state), signal(stopped.clone())).await;
        stop.send_replace(true);
        result
    };
    let stop = &stop;
    let serve_http = |served: Option<(Listener, HttpOptions)>| {
        let state = Arc::clone(&state);
        let stopped = stopped.clone();
        async move {
            let Some((listener, options)) = served else {
                return Ok(());
            };
            let result = crate::http::serve_on(listener, state, options, signal(stopped))
                .await
                .map_err(ServeError::Http);
            stop.send_replace(true);
            result
        }
    };
    let http = serve_http(http.map(|(listener, options)| (listener.into(), options)));
    let admin = serve_http(admin.map(|listener| (listener.into(), HttpOptions::admin())));
    let outer = async {
        tokio::select! {
            () = shutdown => { stop.send_replace(true); },
            () = signal(stopped.clone()) => {},
        }
    };
    let ((), grpc, http, admin) = tokio::join!(outer, grpc, http, admin);
    grpc.and(http).and(admin)
}

async fn bind(addr: &str) -> Result<tokio::net::TcpListener, ServeError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: addr.to_owned(),
            source,
        })
}

/// Binds `addr` and serves until SIGINT or SIGTERM.
pub async fn run(addr: &str, state: Arc<State>) -> Result<(), ServeError> {
    run_with(addr, None, None, None, state).await
}

/// Binds the gRPC address and, when given, the HTTP and admin addresses, and serves them all (over
/// TLS when `tls` is given, its certificates reloaded on change) until SIGINT or SIGTERM.
pub async fn run_with(
    grpc_addr: &str,
    http: Option<(&str, HttpOptions)>,
    admin_addr: Option<&str>,
    tls: Option<Arc<ServerTls>>,
    state: Arc<State>,
) -> Result<(), ServeError> {
    run_with_limits(
        grpc_addr,
        http,
        admin_addr,
        tls,
        ConnectionLimits::default(),
        state,
    )
    .await
}

/// [`run_with`], every listener's connections held to `limits` (`listen.connections`).
pub async fn run_with_limits(
    grpc_addr: &str,
    http: Option<(&str, HttpOptions)>,
    admin_addr: Option<&str>,
    tls: Option<Arc<ServerTls>>,
    limits: ConnectionLimits,
    state: Arc<State>,
) -> Result<(), ServeError> {
    let grpc = Listener::with_limits(bind(grpc_addr).await?, tls.as_ref(), Protocols::Grpc, limits);
    let (local, tls_on) = (grpc.local_addr(), grpc.is_tls());
    tracing::info!(%local, tls = tls_on, "scopegate ext_authz listening");
    let http = match http {
        Some((addr, options)) => {
            let listener = Listener::with_limits(bind(addr).await?, tls.as_ref(), Protocols::Http, limits);
            let (local, tls_on) = (listener.local_addr(), listener.is_tls());
            tracing::info!(%local, tls = tls_on, "scopegate http listening");
            Some((listener, options))
        }
        None => None,
    };
    let admin = match admin_addr {
        Some(addr) => {
            let listener = Listener::with_limits(bind(addr).await?, tls.as_ref(), Protocols::Http, limits);
            let (local, tls_on) = (listener.local_addr(), listener.is_tls());
            tracing::info!(%local, tls = tls_on, "scopegate admin listening");
            Some(listener)
        }
        None => None,
    };
    let reloader = tls.as_ref().map(ServerTls::spawn_reloader);
    let result = run_listeners(grpc, http, admin, state, shutdown_signal()).await;
    if let Some(reloader) = reloader {
        reloader.abort();
    }
    result
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: draining in-flight checks");
}
