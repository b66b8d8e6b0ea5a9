//! `scopegate serve`: the sidecar. With no options it runs the embedded demo (demo snapshot and
//! default route table) on `127.0.0.1:9191`; `--http-listen` (or `listen.http`) adds the HTTP
//! listener beside it; the configuration's `tls` puts both behind TLS. `--config FILE` reads the configuration file
//! (formats.md "Server configuration"); command-line flags override its values.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use crate::cli::InputError;
use crate::config::Config;
use crate::http::HttpOptions;
use crate::jwks::JwtSettings;
use crate::serve::{SnapshotSource, State, StateOptions};
use crate::tls::{ServerTls, TlsSettings};

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A configuration file (YAML, or JSON by extension); flags below override its values.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The ext_authz gRPC listen address (also serves gRPC health); default: the configuration's
    /// `listen.grpc`, else `127.0.0.1:9191`.
    #[arg(long)]
    pub listen: Option<String>,
    /// The HTTP listen address (HTTP-mode authz for nginx/Traefik/Envoy HTTP, `/authz/api/acl`,
    /// `/healthz`, `/readyz`); default: the configuration's `listen.http`, else none.
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Option<String>,
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
    let config = match &args.config {
        Some(path) => {
            let config = Config::load(path).map_err(|e| InputError(e.to_string()))?;
            config.validate().map_err(|errors| {
                InputError(format!("invalid configuration `{}`:\n{errors}", path.display()))
            })?;
            config
        }
        None => Config::default(),
    };
    for section in config.unsupported() {
        tracing::warn!(
            section,
            "configuration section `{section}` is not supported yet: it is ignored"
        );
    }
    if snapshots_from_control_plane_only(args, &config) {
        return Err(InputError(
            "`snapshot.control_plane` is not supported yet: set `snapshot.files` or `--snapshots` (refusing to serve the embedded demo in its place)"
                .to_owned(),
        ));
    }
    let listen = args.listen.clone().unwrap_or_else(|| config.listen.grpc.clone());
    let http_listen = args.http_listen.clone().or_else(|| config.listen.http.clone());
    let http_options = HttpOptions {
        path_prefix: config.listen.http_path_prefix.clone(),
    };
    let snapshots = args.snapshots.clone().or_else(|| config.snapshot.files.clone());
    let routes = args.routes.clone().or_else(|| config.routes.clone());
    let source = snapshots.map_or(SnapshotSource::Embedded, SnapshotSource::Path);
    let defaults = StateOptions::default();
    let token_ttl = config.token_ttl().unwrap_or(defaults.token_ttl);
    let jwt = JwtSettings::from_config(&config.jwt, config.cache.tokens, token_ttl)
        .map_err(|e| InputError(e.to_string()))?;
    let options = StateOptions {
        catalog: config.catalog.clone(),
        token_cache_capacity: config.cache.tokens,
        token_ttl,
        jwt,
    };
    let state =
        State::load_with(source, routes.as_deref(), &options).map_err(|e| InputError(e.to_string()))?;
    let tls = load_tls(&config)?;
    if !state.is_ready() {
        tracing::warn!("no account snapshot loaded yet: health reports NOT_SERVING");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| InputError(format!("cannot start the runtime: {e}")))?;
    runtime
        .block_on(crate::serve::run_with(
            &listen,
            http_listen.as_deref().map(|addr| (addr, http_options)),
            tls,
            Arc::new(state),
        ))
        .map_err(|e| InputError(e.to_string()))?;
    Ok(ExitCode::SUCCESS)
}

/// The listeners' TLS from the configuration's `tls` section; a bad file refuses to start.
fn load_tls(config: &Config) -> Result<Option<Arc<ServerTls>>, InputError> {
    let Some(section) = &config.tls else {
        return Ok(None);
    };
    let tls = TlsSettings::from_config(section)
        .and_then(ServerTls::load)
        .map_err(|e| InputError(format!("tls: {e}")))?;
    tracing::info!(
        min_version = section.min_version,
        client_auth = section.client_ca.is_some(),
        "tls enabled on every listener"
    );
    Ok(Some(Arc::new(tls)))
}

/// Whether the only snapshot source configured is the (not yet supported) control plane.
fn snapshots_from_control_plane_only(args: &ServeArgs, config: &Config) -> bool {
    args.snapshots.is_none() && config.snapshot.files.is_none() && config.snapshot.control_plane.is_some()
}
