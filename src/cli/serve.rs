//! `scopegate serve`: the sidecar. With no options it runs the embedded demo (demo snapshot and
//! default route table) on `127.0.0.1:9191`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use crate::cli::InputError;
use crate::serve::{SnapshotSource, State};

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The ext_authz gRPC listen address (also serves gRPC health).
    #[arg(long, default_value = "127.0.0.1:9191")]
    pub listen: String,
    /// A snapshot file or a folder of them (reloaded on change); default: the embedded demo.
    #[arg(long)]
    pub snapshots: Option<PathBuf>,
    /// A route-table file; default: the embedded Harness table.
    #[arg(long)]
    pub routes: Option<PathBuf>,
}

/// Runs the server until SIGINT or SIGTERM.
pub fn run(args: &ServeArgs) -> Result<ExitCode, InputError> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    let source = args
        .snapshots
        .clone()
        .map_or(SnapshotSource::Embedded, SnapshotSource::Path);
    let state = State::load(source, args.routes.as_deref()).map_err(|e| InputError(e.to_string()))?;
    if !state.is_ready() {
        tracing::warn!("no account snapshot loaded yet: health reports NOT_SERVING");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| InputError(format!("cannot start the runtime: {e}")))?;
    runtime
        .block_on(crate::serve::run(&args.listen, Arc::new(state)))
        .map_err(|e| InputError(e.to_string()))?;
    Ok(ExitCode::SUCCESS)
}
