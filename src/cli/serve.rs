//! `scopegate serve`: the sidecar. With no options it runs the embedded demo (demo snapshot and
//! default route table) on `127.0.0.1:9191`; `--http-listen` (or `listen.http`) adds the HTTP
//! listener beside it (`--http-source` names the proxy in front), `--admin-listen` (or
//! `listen.admin`) the admin listener; the configuration's `tls` puts both behind TLS.
//! `--config FILE` reads the configuration file (docs/formats.md "Server configuration"); command-line flags override its values
//! ([`Config::merge_overrides`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use crate::accounts::{RemoteOptions, SnapshotSource};
use crate::audit::AuditLog;
use crate::authz::{Authorizer, AuthorizerOptions};
use crate::cli::InputError;
use crate::config::{Config, Mode, Overrides};
use crate::http::{Endpoints, HttpOptions, HttpSource};
use crate::jwks::JwtSettings;
use crate::tls::ServerTls;

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
    /// Leave gRPC server reflection off the ext_authz listener (as `listen.grpc_reflection:
    /// false`); by default `grpcurl` and `ghz` can list and describe its services.
    #[arg(long)]
    pub no_grpc_reflection: bool,
    /// The HTTP listen address (HTTP-mode authz for nginx/Traefik/Envoy HTTP; `/authz/api/acl`
    /// under nginx/Traefik); default: the configuration's `listen.http`, else none.
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Option<String>,
    /// The one proxy whose report of the original request the HTTP listener trusts: `envoy` (the
    /// request itself), `nginx` (`x-original-*`) or `traefik` (`x-forwarded-*`); default: the
    /// configuration's `listen.http_source`, else `envoy`.
    #[arg(long, value_name = "SOURCE", value_parser = ["envoy", "nginx", "traefik"])]
    pub http_source: Option<String>,
    /// The admin listen address (`/healthz`, `/readyz`, `/metrics`, `/authz/api/acl`; nothing is
    /// authorized there), e.g. `127.0.0.1:9193`; default: the configuration's `listen.admin`, else
    /// none.
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<String>,
    /// A snapshot file or a folder of them (reloaded on change); default: the configuration's
    /// `snapshot` section, else the embedded demo.
    #[arg(long, conflicts_with = "control_plane")]
    pub snapshots: Option<PathBuf>,
    /// Start even when the snapshot path does not exist yet, not ready until it appears (as
    /// `snapshot.wait_for_files: true`); by default a missing path refuses to start.
    #[arg(long)]
    pub wait_for_snapshots: bool,
    /// A control plane URL to load accounts from (`http://` or `https://`), replacing the
    /// configuration's `snapshot.control_plane.url`; several replicas comma-separated
    /// (`URL,URL,...`), tried in turn when a stream breaks.
    #[arg(long, value_name = "URL")]
    pub control_plane: Option<String>,
    /// Accept a plaintext `http://` control plane whose host is not loopback (as
    /// `snapshot.control_plane.insecure: true`): its snapshots can then be read and forged on the path.
    #[arg(long)]
    pub control_plane_insecure: bool,
    /// A route-table file; default: the embedded Harness table.
    #[arg(long)]
    pub routes: Option<PathBuf>,
    /// A permission catalog file replacing the embedded one (as `catalog`).
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
    /// Decide, log and audit, but allow every request (as `mode: dry_run`).
    #[arg(long)]
    pub dry_run: bool,
    /// The audit sink: `stdout`, `file:PATH` or `off` (as `audit.sink`); default: `stdout`.
    #[arg(long, value_name = "SINK")]
    pub audit: Option<String>,
    /// The log format on stderr, `json` or `text` (as `telemetry.log_format`); default: `json`.
    #[arg(long, value_name = "FORMAT", value_parser = ["json", "text"])]
    pub log_format: Option<String>,
    /// The listeners' certificate chain (PEM); with `--tls-key`, both listeners serve TLS.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The listeners' private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// A CA bundle (PEM): clients must present a certificate it signed (mutual TLS).
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
}

impl ServeArgs {
    /// The flags that override the configuration.
    fn overrides(&self) -> Overrides {
        Overrides {
            grpc: self.listen.clone(),
            no_grpc_reflection: self.no_grpc_reflection,
            http: self.http_listen.clone(),
            http_source: self.http_source.clone(),
            admin: self.admin_listen.clone(),
            snapshots: self.snapshots.clone(),
            control_plane: self.control_plane.clone(),
            control_plane_insecure: self.control_plane_insecure,
            wait_for_snapshots: self.wait_for_snapshots,
            routes: self.routes.clone(),
            catalog: self.catalog.clone(),
            dry_run: self.dry_run,
            audit: self.audit.clone(),
            log_format: self.log_format.clone(),
            tls: self.tls_cert.clone().zip(self.tls_key.clone()),
            client_ca: self.client_ca.clone(),
        }
    }
}

/// Runs the server until SIGINT or SIGTERM. Shutdown order: stop accepting, drain in-flight checks
/// (both listeners), then close the audit log (every queued record written and flushed), then
/// flush traces; only then does the process exit.
pub fn run(args: &ServeArgs) -> Result<ExitCode, InputError> {
    let mut config = match &args.config {
        Some(path) => Config::load(path).map_err(|e| InputError(e.to_string()))?,
        None => Config::default(),
    };
    config
        .merge_overrides(&args.overrides())
        .map_err(|e| InputError(e.to_string()))?;
    // validated after the flags are merged, so a flag's value is held to the file's rules
    // (`--control-plane 127.0.0.1:9300` without a scheme is refused here, not at request time)
    config.validate().map_err(|errors| match &args.config {
        Some(path) => InputError(format!("invalid configuration `{}`:\n{errors}", path.display())),
        None => InputError(format!("invalid flags:\n{errors}")),
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| InputError(format!("cannot start the runtime: {e}")))?;
    // the OTLP exporter (tonic) is built inside the runtime it exports from
    let telemetry = {
        let _entered = runtime.enter();
        crate::telemetry::init(&config.telemetry).map_err(|e| InputError(e.to_string()))?
    };
    for section in config.unsupported() {
        tracing::warn!(
            section,
            "configuration section `{section}` is not supported yet: it is ignored"
        );
    }
    let listen = config.listen.grpc.clone();
    let http_listen = config.listen.http.clone();
    let source_name = &config.listen.http_source;
    let source = HttpSource::parse(source_name).ok_or_else(|| {
        InputError(format!(
            "`--http-source`: `{source_name}` is not envoy, nginx or traefik"
        ))
    })?;
    let http_options = HttpOptions {
        path_prefix: config.listen.http_path_prefix.clone(),
        source,
        endpoints: Endpoints::Authz,
    };
    let admin_listen = config.listen.admin.clone();
    let routes = config.routes.clone();
    let source = snapshot_source(&config)?;
    let token_ttl = config.cache.token_ttl.get();
    let jwt = JwtSettings::from_config(&config.jwt, config.cache.tokens, token_ttl);
    let options = AuthorizerOptions {
        catalog: config.catalog.clone(),
        token_cache_capacity: config.cache.tokens,
        token_ttl,
        jwt,
        max_revision_wait: config.snapshot.max_revision_wait.get(),
    };
    let remote = matches!(source, SnapshotSource::ControlPlane(_));
    let audit = AuditLog::from_config(&config.audit)
        .map_err(|e| InputError(format!("cannot open the audit log `{}`: {e}", config.audit.sink)))?;
    let state = Authorizer::load_with(source, routes.as_deref(), &options)
        .map_err(|e| InputError(e.to_string()))?
        .with_audit(audit)
        .with_dry_run(config.mode.get() == Mode::DryRun);
    if remote {
        tracing::info!("accounts load from the control plane on first use (and preloaded ones at start)");
    } else if !state.is_ready() {
        tracing::warn!("no account snapshot loaded yet: health reports NOT_SERVING");
    }
    if state.dry_run() {
        tracing::warn!("mode: dry_run: every request is allowed; decisions are only logged and audited");
    }
    let tls = load_tls(&config)?;
    let state = Arc::new(state);
    let grpc_options = crate::server::GrpcOptions {
        reflection: config.listen.grpc_reflection,
    };
    let served = runtime.block_on(crate::server::run_with_limits(
        (&listen, grpc_options),
        http_listen.as_deref().map(|addr| (addr, http_options)),
        admin_listen.as_deref(),
        tls,
        config.listen.connections.limits(),
        Arc::clone(&state),
    ));
    // both listeners have drained: no check can still be deciding, so the audit log is complete
    state.audit().close();
    tracing::info!(
        written = state.audit().written(),
        dropped = state.audit().dropped(),
        "audit log closed"
    );
    telemetry.shutdown();
    drop(runtime);
    served.map_err(|e| InputError(e.to_string()))?;
    Ok(ExitCode::SUCCESS)
}

/// The snapshot source: the configuration's `snapshot.files` or `snapshot.control_plane` (flags
/// merged in), else the embedded demo.
fn snapshot_source(config: &Config) -> Result<SnapshotSource, InputError> {
    let Some(remote) = config.snapshot.control_plane.clone() else {
        return match config.snapshot.files.clone() {
            None => Ok(SnapshotSource::Embedded),
            Some(path) if !config.snapshot.wait_for_files && !path.exists() => Err(InputError(format!(
                "snapshot path `{}` does not exist: create it, or give --wait-for-snapshots \
                 (`snapshot.wait_for_files: true`) to start not ready and wait for it",
                path.display()
            ))),
            Some(path) => Ok(SnapshotSource::Path(path)),
        };
    };
    let defaults = RemoteOptions::default();
    let mut urls = remote.all_urls().into_iter();
    Ok(SnapshotSource::ControlPlane(RemoteOptions {
        url: urls.next().unwrap_or_default(),
        alternate_urls: urls.collect(),
        ca: remote.ca,
        identity: remote.cert.zip(remote.key),
        preload: remote.accounts,
        insecure: remote.insecure,
        max_snapshot_bytes: usize::try_from(remote.max_snapshot_bytes)
            .map_err(|_| InputError("`snapshot.control_plane.max_snapshot_bytes` is too large".to_owned()))?,
        cache_dir: config.snapshot.cache_dir.clone(),
        max_accounts: config.cache.accounts,
        account_idle: config.cache.account_idle.get(),
        load_timeout: remote.load_timeout.get(),
        ..defaults
    }))
}

/// The listeners' TLS from the configuration's `tls` section; a bad file refuses to start.
fn load_tls(config: &Config) -> Result<Option<Arc<ServerTls>>, InputError> {
    let Some(section) = &config.tls else {
        return Ok(None);
    };
    let tls = ServerTls::load(section.settings()).map_err(|e| InputError(format!("tls: {e}")))?;
    tracing::info!(
        min_version = %section.min_version.get(),
        client_auth = section.client_ca.is_some(),
        "tls enabled on every listener"
    );
    Ok(Some(Arc::new(tls)))
}
