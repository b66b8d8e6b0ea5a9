//! `scopegate control-plane`: serves a folder of account snapshots to sidecars over
//! `scopegate.v1.SnapshotService` (see [`crate::control_plane`]).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::cli::{InputError, load_catalog};
use crate::control_plane::{Options, SCAN_INTERVAL, TlsFiles};

/// Arguments of `control-plane`.
#[derive(Debug, Args)]
pub struct ControlPlaneArgs {
    /// The folder of account snapshot files (`.yaml`/`.yml`/`.json`) to serve, rescanned on change.
    #[arg(long, value_name = "DIR")]
    pub source: PathBuf,
    /// The gRPC listen address (also serves gRPC health).
    #[arg(long, default_value = "127.0.0.1:9300")]
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
}

/// Runs the control plane until SIGINT or SIGTERM.
pub fn run(args: &ControlPlaneArgs) -> Result<ExitCode, InputError> {
    crate::cli::init_logging();
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: args.client_ca.clone(),
        }),
        _ => None,
    };
    let options = Options {
        source: args.source.clone(),
        catalog: load_catalog(args.catalog.as_deref())?,
        tls,
        scan_interval: SCAN_INTERVAL,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| InputError(format!("cannot start the runtime: {e}")))?;
    runtime
        .block_on(crate::control_plane::run(&args.listen, options))
        .map_err(|e| InputError(e.to_string()))?;
    Ok(ExitCode::SUCCESS)
}
