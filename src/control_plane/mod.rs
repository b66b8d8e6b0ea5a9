//! `scopegate control-plane`: the reference control plane. It serves every account over
//! `scopegate.v1.SnapshotService` (Watch + Get) from one of two sources ([`Source`]): a folder of
//! snapshot files, each validated before it is served (an invalid file is refused and logged; the
//! last valid version keeps being served), refusing versions that go backwards, rescanned every
//! [`SCAN_INTERVAL`]; or a PostgreSQL database ([`postgres`]), followed through notifications and a
//! poll, so any number of replicas serve the same data. Either way a new version is pushed to every
//! watcher as soon as it is read. gRPC health; TLS 1.3 with optional mutual TLS.
//!
//! Connections are accepted by the sidecar's own [`crate::tls::Listener`] (`Protocols::Grpc`): the
//! same handshake cap, first-bytes gate, `TCP_NODELAY`, connection cap and timeouts
//! ([`ConnectionLimits`]), and TLS from [`ServerTls`], whose certificate and client-CA files are
//! reloaded when they change (and on SIGHUP). It shares no other state with the sidecar:
//! the generated messages of [`crate::proto`], the snapshot compiler ([`crate::rbac`]), the folder
//! scan of [`crate::accounts::scan`] and the shutdown signal of [`crate::server::shutdown`].

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_stream::wrappers::WatchStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};
use tonic_health::ServingStatus;

use self::management::Management;
use self::management::audit::ChangeLog;
use crate::proto::encoded::Encoded;
use crate::proto::snapshot_service_server::{SnapshotService, SnapshotServiceServer};
use crate::proto::{GetRequest, SyncRequest, WatchRequest};
use crate::rbac::Catalog;
use crate::tls::{ConnectionLimits, Listener, MinVersion, Protocols, ServerTls, TlsError, TlsSettings};

pub mod admin;
pub mod changes;
pub mod history;
pub mod management;
pub mod postgres;
pub mod sidecars;
pub mod store;
pub mod sync;

pub use store::{Refusal, Scanner, Store};

/// How often the source folder is rescanned.
pub const SCAN_INTERVAL: Duration = Duration::from_millis(250);
/// The default largest snapshot message sent: the sidecar's default limit on what it accepts
/// (64 MiB; a 100,000-assignment account is ~11 MB).
pub const DEFAULT_MAX_SNAPSHOT_BYTES: usize = crate::config::DEFAULT_MAX_SNAPSHOT_BYTES as usize;
/// The gRPC service name reported by health.
pub const SERVICE_NAME: &str = "scopegate.v1.SnapshotService";

/// Why the control plane could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ControlPlaneError {
    /// The source folder cannot be read.
    #[error("cannot read the source `{path}`: {source}")]
    Source {
        /// The folder.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TLS configuration is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Binding the listener failed.
    #[error("cannot listen on `{addr}`: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The database cannot be used.
    #[error(transparent)]
    Database(#[from] postgres::DatabaseError),
    /// The gRPC server failed.
    #[error("grpc server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Where the served accounts come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A folder of account snapshot files (or one file), rescanned every `scan_interval`.
    Folder(PathBuf),
    /// A PostgreSQL database (`postgres://…`), migrated at start, followed through notifications
    /// and a poll every `scan_interval`.
    Database(String),
}

/// What the control plane serves and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the accounts come from.
    pub source: Source,
    /// The catalog snapshots are validated against.
    pub catalog: Arc<Catalog>,
    /// TLS; `None` = plaintext. The control plane serves TLS 1.3 only (see [`tls_settings`]).
    pub tls: Option<TlsSettings>,
    /// The connection cap and timeouts of the listener.
    pub limits: ConnectionLimits,
    /// How often the folder is rescanned, or the database polled.
    pub scan_interval: Duration,
    /// The largest snapshot message sent; a Watch or Get of a bigger one fails (sidecars keep the
    /// version they hold).
    pub max_snapshot_bytes: usize,
}

impl Options {
    /// Serves the folder `source`, validated against `catalog`, in plaintext, with the default scan
    /// interval, snapshot size limit and connection limits.
    pub fn new(source: PathBuf, catalog: Arc<Catalog>) -> Self {
        Self::with_source(Source::Folder(source), catalog)
    }

    /// Serves the database at `url` (see [`new`](Self::new) for the rest).
    pub fn database(url: String, catalog: Arc<Catalog>) -> Self {
        Self::with_source(Source::Database(url), catalog)
    }

    /// Serves `source` (see [`new`](Self::new) for the rest).
    pub fn with_source(source: Source, catalog: Arc<Catalog>) -> Self {
        Self {
            source,
            catalog,
            tls: None,
            limits: ConnectionLimits::default(),
            scan_interval: SCAN_INTERVAL,
            max_snapshot_bytes: DEFAULT_MAX_SNAPSHOT_BYTES,
        }
    }
}

/// The control plane's TLS: the certificate chain and key (PEM), client certificates required and
/// verified against `client_ca` when given (mutual TLS), TLS 1.3 only, files checked for changes
/// every [`crate::tls::RELOAD_INTERVAL`].
pub fn tls_settings(cert: PathBuf, key: PathBuf, client_ca: Option<PathBuf>) -> TlsSettings {
    TlsSettings {
        cert,
        key,
        client_ca,
        min_version: MinVersion::Tls13,
        reload_interval: crate::tls::RELOAD_INTERVAL,
    }
}

/// The tonic `SnapshotService` over a [`Store`].
#[derive(Debug, Clone)]
pub struct Service {
    store: Arc<Store>,
}

impl Service {
    /// A service over `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }
}

pub(crate) fn not_found(account: &str) -> Status {
    let shown: String = account.chars().take(128).collect();
    Status::not_found(format!("no snapshot for account `{shown}`"))
}

/// The answers of a Watch or Sync call.
pub type WatchResponses = Pin<Box<dyn Stream<Item = Result<Encoded, Status>> + Send>>;

#[tonic::async_trait]
impl SnapshotService for Service {
    async fn watch(&self, request: Request<WatchRequest>) -> Result<Response<WatchResponses>, Status> {
        let WatchRequest {
            account,
            known_version,
        } = request.into_inner();
        let rx = self
            .store
            .subscribe(&account)
            .ok_or_else(|| not_found(&account))?;
        let mut known = known_version;
        // WatchStream yields the current value first, then each change; it ends when the store
        // closes (shutdown), which lets the server drain. Each version was encoded once, when it
        // was published.
        let stream = WatchStream::new(rx).filter_map(move |served| {
            (served.version() > known).then(|| {
                known = served.version();
                Ok(served.encoded.clone())
            })
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get(&self, request: Request<GetRequest>) -> Result<Response<Encoded>, Status> {
        let account = request.into_inner().account;
        let served = self.store.served(&account).ok_or_else(|| not_found(&account))?;
        Ok(Response::new(served.encoded.clone()))
    }

    async fn sync(
        &self,
        request: Request<tonic::Streaming<SyncRequest>>,
    ) -> Result<Response<WatchResponses>, Status> {
        let peer = request.remote_addr().map(|a| a.to_string()).unwrap_or_default();
        let answers = sync::open(Arc::clone(&self.store), peer, request.into_inner()).await?;
        Ok(Response::new(Box::pin(answers)))
    }
}

/// Loads the source once (so every valid account is served from the first request on), then serves
/// on `listener` until `shutdown` completes, following the source every `scan_interval`.
pub async fn run_on(
    listener: tokio::net::TcpListener,
    options: Options,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ControlPlaneError> {
    run_with_management(listener, None, options, shutdown).await
}

/// The HTTP listener of the management API and where its change log goes.
#[derive(Debug)]
pub struct ManagementListener {
    /// The bound listener (TLS from [`Options::tls`] when set).
    pub listener: tokio::net::TcpListener,
    /// The change log.
    pub changes: ChangeLog,
    /// Where accounts are written: `None` = the source's own store (folder mode: an in-memory store
    /// seeded from what the folder scanner publishes, publishing its own changes; database mode:
    /// the database, whose follower publishes to the Watch streams); or a store given here.
    pub accounts: Option<Arc<dyn changes::AccountStore>>,
}

fn check_source(options: &Options) -> Result<(), ControlPlaneError> {
    if let Source::Folder(dir) = &options.source {
        std::fs::metadata(dir).map_err(|source| ControlPlaneError::Source {
            path: dir.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

/// [`run_on`], with the management API ([`management`]) on `http` when given: in folder mode it
/// writes to an in-memory store that takes up each version the folder scanner publishes, and
/// publishes its own changes to the same Watch streams; in database mode it writes to the database.
pub async fn run_with_management(
    listener: tokio::net::TcpListener,
    http: Option<ManagementListener>,
    options: Options,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ControlPlaneError> {
    check_source(&options)?;
    // startup reads a few small files: blocking here is fine (as the sidecar's start does)
    let tls = options
        .tls
        .clone()
        .map(ServerTls::load)
        .transpose()?
        .map(Arc::new);
    let store = Arc::new(Store::default());
    let (follower, database) = match &options.source {
        Source::Folder(dir) => (start_scanner(dir, &options, &store).await?, None),
        Source::Database(url) => {
            let pool = postgres::connect(url, 4).await?;
            let follower = postgres::follower::Follower::new(
                pool.clone(),
                Arc::clone(&options.catalog),
                Arc::clone(&store),
                options.scan_interval,
            );
            follower.sync().await?;
            (follower.spawn(), Some(pool))
        }
    };
    let management_addr = http
        .as_ref()
        .and_then(|h| h.listener.local_addr().ok())
        .map(|a| a.to_string());
    // Logged once every valid account is served: scripts and tests wait for this line.
    if let Ok(local) = listener.local_addr() {
        tracing::info!(
            %local, management = management_addr.as_deref().unwrap_or("off"), accounts = store.len(),
            tls = tls.is_some(), "scopegate control plane listening"
        );
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let management = http.map(|http| {
        let catalog = Arc::clone(&options.catalog);
        let accounts = http.accounts.or_else(|| {
            database.clone().map(|pool| {
                Arc::new(postgres::PgStore::new(pool, Arc::clone(&catalog))) as Arc<dyn changes::AccountStore>
            })
        });
        let state = Arc::new(match accounts {
            None => Management::over_folder(catalog, Arc::clone(&store), http.changes),
            Some(accounts) => Management::new(
                accounts,
                catalog,
                Arc::clone(&store),
                management::Publishing::Elsewhere,
                http.changes,
            ),
        });
        let incoming = Listener::with_limits(http.listener, tls.as_ref(), Protocols::Http, options.limits);
        let mut stopped = stopped.clone();
        tokio::spawn(management::serve_on(incoming, state, async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }))
    });
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_service_status("", ServingStatus::Serving).await;
    reporter
        .set_service_status(SERVICE_NAME, ServingStatus::Serving)
        .await;
    let service = SnapshotServiceServer::new(Service::new(Arc::clone(&store)))
        .max_encoding_message_size(options.max_snapshot_bytes.max(1))
        .max_decoding_message_size(64 * 1024);
    let router = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(service);
    let closing = {
        let store = Arc::clone(&store);
        async move {
            shutdown.await;
            tracing::info!("shutting down: closing watch streams");
            let _ = stop.send(true);
            store.close();
        }
    };
    let reloader = tls.as_ref().map(ServerTls::spawn_reloader);
    let incoming = Listener::with_limits(listener, tls.as_ref(), Protocols::Grpc, options.limits);
    let closed = incoming.closed();
    let result = router.serve_with_incoming_shutdown(incoming, closing).await;
    closed.wait().await;
    follower.abort();
    if let Some(reloader) = reloader {
        reloader.abort();
    }
    drop(stopped);
    if let Some(management) = management {
        let _ = management.await;
    }
    Ok(result?)
}

/// Scans the folder once, then spawns the task rescanning it every `scan_interval` and on SIGHUP.
async fn start_scanner(
    dir: &std::path::Path,
    options: &Options,
    store: &Arc<Store>,
) -> Result<tokio::task::JoinHandle<()>, ControlPlaneError> {
    std::fs::metadata(dir).map_err(|source| ControlPlaneError::Source {
        path: dir.display().to_string(),
        source,
    })?;
    let scanner = Arc::new(Mutex::new(Scanner::new(
        dir.to_path_buf(),
        Arc::clone(&options.catalog),
        Arc::clone(store),
    )));
    // SIGHUP rescans at once, never exits (subscribing replaces its default action, exit).
    let mut hangup = crate::tls::hangups();
    rescan(&scanner).await;
    let interval = options.scan_interval;
    Ok(tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {},
                () = crate::tls::next_hangup(&mut hangup) => {
                    tracing::info!(code = "sighup_rescan", "SIGHUP: rescanning the snapshot folder");
                },
            }
            rescan(&scanner).await;
        }
    }))
}

async fn rescan(scanner: &Arc<Mutex<Scanner>>) {
    let scanner = Arc::clone(scanner);
    let _ = tokio::task::spawn_blocking(move || {
        if let Ok(mut scanner) = scanner.lock() {
            scanner.scan();
        }
    })
    .await;
}

async fn bind(addr: &str) -> Result<tokio::net::TcpListener, ControlPlaneError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ControlPlaneError::Bind {
            addr: addr.to_owned(),
            source,
        })
}

/// Binds `addr` and serves until SIGINT or SIGTERM.
pub async fn run(addr: &str, options: Options) -> Result<(), ControlPlaneError> {
    run_all(addr, None, options).await
}

/// Binds `addr` (gRPC) and `management` (the management API's HTTP address and change log) and
/// serves until SIGINT or SIGTERM.
pub async fn run_all(
    addr: &str,
    management: Option<(&str, ChangeLog)>,
    options: Options,
) -> Result<(), ControlPlaneError> {
    check_source(&options)?;
    // unusable TLS files are reported before any port is taken
    if let Some(settings) = options.tls.clone() {
        ServerTls::load(settings)?;
    }
    let listener = bind(addr).await?;
    let http = match management {
        Some((http_addr, changes)) => Some(ManagementListener {
            listener: bind(http_addr).await?,
            changes,
            accounts: None,
        }),
        None => None,
    };
    run_with_management(
        listener,
        http,
        options,
        crate::server::shutdown::shutdown_signal(),
    )
    .await
}
