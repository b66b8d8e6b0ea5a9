//! `scopegate control-plane`: serves account snapshots to sidecars over
//! `scopegate.v1.SnapshotService` (see [`crate::control_plane`]), from a folder of snapshot files
//! (`--source`) or a PostgreSQL database (`--database`, any number of replicas).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::cli::{InputError, load_catalog};
use crate::config::{DEFAULT_CONTROL_PLANE_PORT, is_loopback_host};
use crate::control_plane::{DEFAULT_MAX_SNAPSHOT_BYTES, Options, Source, tls_settings};
use crate::tls::ConnectionLimits;
use crate::tls::listener::MAX_CONNECTIONS;

/// Arguments of `control-plane`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("from").required(true).args(["source", "database"])))]
pub struct ControlPlaneArgs {
    /// The folder of account snapshot files (`.yaml`/`.yml`/`.json`) to serve, rescanned on change.
    #[arg(long, value_name = "DIR", conflicts_with = "database")]
    pub source: Option<PathBuf>,
    /// A PostgreSQL database holding every account (`postgres://user:password@host/db`): migrated at
    /// start, followed through LISTEN/NOTIFY and a 250 ms poll. Replicas on one database serve the
    /// same data and keep nothing of their own.
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
    /// The gRPC listen address (also serves gRPC health).
    #[arg(long, default_value_t = format!("127.0.0.1:{DEFAULT_CONTROL_PLANE_PORT}"))]
    pub listen: String,
    /// The server certificate chain (PEM); with `--tls-key`, serves TLS 1.3.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The server private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// A CA bundle (PEM): clients must present a certificate it signed (mutual TLS).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
    /// A permission catalog replacing the embedded one (snapshots are validated against it).
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
    /// The largest snapshot message sent, in bytes (a 100,000-assignment account is ~11 MB).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_SNAPSHOT_BYTES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_snapshot_bytes: usize,
    /// Connections held at once; more are closed as soon as they are accepted (each sidecar holds
    /// one). A connection has 10 s from accept to its first bytes (TLS handshake included), and
    /// one silent for 120 s is closed (sidecars ping every 10 s).
    #[arg(long, value_name = "N", default_value_t = MAX_CONNECTIONS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_connections: usize,
    /// Listen on an address that is not loopback without TLS and client certificates: anyone who
    /// reaches the port reads every account's snapshot, and anyone on the path can forge one.
    #[arg(long)]
    pub insecure: bool,
    /// The log format on stderr, `json` or `text`, as `serve --log-format`; default: `json`.
    #[arg(long, value_name = "FORMAT", default_value = "json", value_parser = ["json", "text"])]
    pub log_format: String,
}

/// Refuses a listen address that is not loopback unless TLS with client certificates is on or
/// `--insecure` is given: a snapshot is the policy, token hashes included.
fn check_exposure(args: &ControlPlaneArgs) -> Result<(), InputError> {
    let mutual_tls = args.tls_cert.is_some() && args.client_ca.is_some();
    if mutual_tls || args.insecure {
        return Ok(());
    }
    let host = match args.listen.parse::<std::net::SocketAddr>() {
        Ok(addr) => addr.ip().to_string(),
        Err(_) => args
            .listen
            .rsplit_once(':')
            .map_or(args.listen.as_str(), |(host, _)| host)
            .to_owned(),
    };
    if is_loopback_host(&host) {
        return Ok(());
    }
    Err(InputError(format!(
        "refusing to serve snapshots on `{}` (not loopback) without mutual TLS: give --tls-cert, --tls-key and --client-ca, or --insecure to serve them to anyone who reaches the port",
        args.listen
    )))
}

/// `--source` or `--database` (clap requires exactly one).
fn source(args: &ControlPlaneArgs) -> Result<Source, InputError> {
    match (&args.source, &args.database) {
        (Some(dir), None) => Ok(Source::Folder(dir.clone())),
        (None, Some(url)) => Ok(Source::Database(url.clone())),
        _ => Err(InputError("give --source DIR or --database URL".to_owned())),
    }
}

/// Runs the control plane until SIGINT or SIGTERM.
pub fn run(args: &ControlPlaneArgs) -> Result<ExitCode, InputError> {
    check_exposure(args)?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls_settings(cert.clone(), key.clone(), args.client_ca.clone())),
        _ => None,
    };
    let options = Options {
        tls,
        limits: ConnectionLimits {
            max_connections: args.max_connections,
            ..ConnectionLimits::default()
        },
        max_snapshot_bytes: args.max_snapshot_bytes,
        ..Options::with_source(source(args)?, load_catalog(args.catalog.as_deref())?)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| InputError(format!("cannot start the runtime: {e}")))?;
    // one log format and stream for both commands: the same subscriber `serve` installs
    let telemetry = crate::config::Telemetry {
        log_format: args.log_format.clone(),
        otlp_endpoint: None,
    };
    let guard = {
        let _entered = runtime.enter();
        crate::telemetry::init(&telemetry).map_err(|e| InputError(e.to_string()))?
    };
    let served = runtime.block_on(crate::control_plane::run(&args.listen, options));
    guard.shutdown();
    served.map_err(|e| InputError(e.to_string()))?;
    Ok(ExitCode::SUCCESS)
}
