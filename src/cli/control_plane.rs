//! `scopegate control-plane`: serves account snapshots to sidecars over
//! `scopegate.v1.SnapshotService` (see [`crate::control_plane`]), from a folder of snapshot files
//! (`--source`) or a PostgreSQL database (`--database`, any number of replicas).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::cli::{InputError, load_catalog};
use crate::config::{DEFAULT_CONTROL_PLANE_PORT, is_loopback_host};
use crate::control_plane::management::audit::ChangeLog;
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
    /// The management API's HTTP listen address (Harness's organization, project, service account,
    /// API key, token, role, role assignment, user group and resource group endpoints), or `off`.
    /// Served with the gRPC listener's TLS when it has one. In folder mode its writes are held in
    /// memory and lost on restart (docs/management-api.md).
    #[arg(long, value_name = "ADDR", default_value_t = format!("127.0.0.1:{DEFAULT_MANAGEMENT_PORT}"))]
    pub http_listen: String,
    /// Where the management API's change log goes: `stdout` (default), `off`, or a file path.
    #[arg(long, value_name = "FILE", default_value = "stdout")]
    pub audit: String,
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

/// The management API's default port.
pub const DEFAULT_MANAGEMENT_PORT: u16 = 9301;

fn host_of(addr: &str) -> String {
    match addr.parse::<std::net::SocketAddr>() {
        Ok(addr) => addr.ip().to_string(),
        Err(_) => addr.rsplit_once(':').map_or(addr, |(host, _)| host).to_owned(),
    }
}

/// Refuses a listen address that is not loopback unless TLS with client certificates is on or
/// `--insecure` is given: a snapshot is the policy, token hashes included. The management API's
/// address needs TLS (its callers send API tokens) or `--insecure`.
fn check_exposure(args: &ControlPlaneArgs) -> Result<(), InputError> {
    if args.insecure {
        return Ok(());
    }
    let mutual_tls = args.tls_cert.is_some() && args.client_ca.is_some();
    if !mutual_tls && !is_loopback_host(&host_of(&args.listen)) {
        return Err(InputError(format!(
            "refusing to serve snapshots on `{}` (not loopback) without mutual TLS: give --tls-cert, --tls-key and --client-ca, or --insecure to serve them to anyone who reaches the port",
            args.listen
        )));
    }
    if args.http_listen != "off" && args.tls_cert.is_none() && !is_loopback_host(&host_of(&args.http_listen))
    {
        return Err(InputError(format!(
            "refusing to serve the management API on `{}` (not loopback) without TLS: give --tls-cert and --tls-key, or --insecure to accept API tokens in plaintext",
            args.http_listen
        )));
    }
    Ok(())
}

fn change_log(audit: &str) -> Result<ChangeLog, InputError> {
    use crate::audit::sink::{RotatingFile, StdoutSink};
    Ok(match audit {
        "off" => ChangeLog::off(),
        "stdout" | "-" => ChangeLog::new(Box::new(StdoutSink::new())),
        path => {
            let path = path.strip_prefix("file:").unwrap_or(path);
            let file = RotatingFile::open(std::path::Path::new(path), 100 * 1024 * 1024, 5)
                .map_err(|e| InputError(format!("cannot open the change log `{path}`: {e}")))?;
            ChangeLog::new(Box::new(file))
        }
    })
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
    let management = match args.http_listen.as_str() {
        "off" => None,
        addr => Some((addr, change_log(&args.audit)?)),
    };
    let served = runtime.block_on(crate::control_plane::run_all(&args.listen, management, options));
    guard.shutdown();
    served.map_err(|e| InputError(e.to_string()))?;
    Ok(ExitCode::SUCCESS)
}
