//! The process lifecycle of `scopegate serve`, knowing no policy: bind the listeners, serve the
//! Envoy ext_authz gRPC service with gRPC health ([`health`]) and server reflection
//! ([`reflection`], unless [`GrpcOptions::reflection`] is off) and, when configured, the HTTP and
//! admin listeners of [`crate::http`] over one shared [`Authorizer`]; run the reload loop
//! ([`reload`]); on the shutdown signal ([`shutdown`]) stop accepting and drain every listener
//! together.

use std::future::Future;
use std::sync::Arc;

use envoy_types::ext_authz::v3::pb::AuthorizationServer;

use crate::authz::Authorizer;
use crate::envoy::AuthzService;
use crate::http::HttpOptions;
use crate::tls::{ConnectionLimits, Listener, Protocols, ServerTls};

pub mod health;
pub mod reflection;
pub mod reload;
pub mod shutdown;

use health::set_health;
use shutdown::shutdown_signal;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
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
    /// The HTTP server failed.
    #[error("http server: {0}")]
    Http(std::io::Error),
    /// The embedded descriptor set could not be served (a build fault).
    #[error("grpc reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// What the ext_authz gRPC listener serves beside `Check` and health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrpcOptions {
    /// gRPC server reflection, v1 and v1alpha (`listen.grpc_reflection`); default: on.
    pub reflection: bool,
}

impl Default for GrpcOptions {
    fn default() -> Self {
        Self { reflection: true }
    }
}

/// Serves ext_authz, gRPC health and server reflection on `listener` (a `TcpListener`, or a TLS
/// [`Listener`]) until `shutdown` completes, then drains in-flight checks. Runs the reload loop
/// ([`reload`]) while serving.
pub async fn run_on(
    listener: impl Into<Listener>,
    authorizer: Arc<Authorizer>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    run_grpc(listener, GrpcOptions::default(), authorizer, shutdown).await
}

/// [`run_on`] with `options` (reflection on or off).
pub async fn run_grpc(
    listener: impl Into<Listener>,
    options: GrpcOptions,
    authorizer: Arc<Authorizer>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let reflection = options.reflection.then(reflection::services).transpose()?;
    let (v1, v1alpha) = reflection.unzip();
    let (reporter, health) = tonic_health::server::health_reporter();
    let background = authorizer.start().await;
    set_health(&reporter, authorizer.is_ready()).await;
    let reloader = reload::spawn(Arc::clone(&authorizer), reporter);
    let listener: Listener = listener.into();
    let closed = listener.closed();
    let result = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(AuthorizationServer::new(AuthzService::new(authorizer)))
        .add_optional_service(v1)
        .add_optional_service(v1alpha)
        .serve_with_incoming_shutdown(listener, shutdown)
        .await;
    // tonic has dropped the listener; once this returns, nothing is accepted on its port
    closed.wait().await;
    reloader.abort();
    for task in background {
        task.abort();
    }
    Ok(result?)
}

/// Serves gRPC on `grpc` and, when given, the HTTP listener ([`crate::http`]) beside it, over the
/// same request policy, until `shutdown` completes; then both drain. If either server fails, both stop.
/// Listeners are `TcpListener`s or TLS [`Listener`]s.
pub async fn run_all(
    grpc: impl Into<Listener>,
    http: Option<(impl Into<Listener>, HttpOptions)>,
    authorizer: Arc<Authorizer>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    run_listeners(grpc, http, None::<Listener>, authorizer, shutdown).await
}

/// [`run_all`] with, when given, the admin listener (`/healthz`, `/readyz`, `/metrics`,
/// `/authz/api/acl`; [`HttpOptions::admin`]) too. If any server fails, all stop.
pub async fn run_listeners(
    grpc: impl Into<Listener>,
    http: Option<(impl Into<Listener>, HttpOptions)>,
    admin: Option<impl Into<Listener>>,
    authorizer: Arc<Authorizer>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let grpc = (grpc, GrpcOptions::default());
    run_listeners_with(grpc, http, admin, authorizer, shutdown).await
}

/// [`run_listeners`], the gRPC listener served with its [`GrpcOptions`].
pub async fn run_listeners_with(
    (grpc, grpc_options): (impl Into<Listener>, GrpcOptions),
    http: Option<(impl Into<Listener>, HttpOptions)>,
    admin: Option<impl Into<Listener>>,
    authorizer: Arc<Authorizer>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let signal = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let grpc = async {
        let result = run_grpc(
            grpc,
            grpc_options,
            Arc::clone(&authorizer),
            signal(stopped.clone()),
        )
        .await;
        stop.send_replace(true);
        result
    };
    let stop = &stop;
    let serve_http = |served: Option<(Listener, HttpOptions)>| {
        let authorizer = Arc::clone(&authorizer);
        let stopped = stopped.clone();
        async move {
            let Some((listener, options)) = served else {
                return Ok(());
            };
            let result = crate::http::serve_on(listener, authorizer, options, signal(stopped))
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

/// Binds the gRPC address and, when given, the HTTP and admin addresses, and serves them all (over
/// TLS when `tls` is given, its certificates reloaded on change) until SIGINT or SIGTERM.
pub async fn run_with(
    grpc_addr: &str,
    http: Option<(&str, HttpOptions)>,
    admin_addr: Option<&str>,
    tls: Option<Arc<ServerTls>>,
    authorizer: Arc<Authorizer>,
) -> Result<(), ServeError> {
    run_with_limits(
        (grpc_addr, GrpcOptions::default()),
        http,
        admin_addr,
        tls,
        ConnectionLimits::default(),
        authorizer,
    )
    .await
}

/// [`run_with`], every listener's connections held to `limits` (`listen.connections`), the gRPC
/// listener served with its [`GrpcOptions`].
pub async fn run_with_limits(
    (grpc_addr, grpc_options): (&str, GrpcOptions),
    http: Option<(&str, HttpOptions)>,
    admin_addr: Option<&str>,
    tls: Option<Arc<ServerTls>>,
    limits: ConnectionLimits,
    authorizer: Arc<Authorizer>,
) -> Result<(), ServeError> {
    let grpc = Listener::with_limits(bind(grpc_addr).await?, tls.as_ref(), Protocols::Grpc, limits);
    let (local, tls_on) = (grpc.local_addr(), grpc.is_tls());
    let reflection = grpc_options.reflection;
    tracing::info!(%local, tls = tls_on, reflection, "scopegate ext_authz listening");
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
    let grpc = (grpc, grpc_options);
    let result = run_listeners_with(grpc, http, admin, authorizer, shutdown_signal()).await;
    if let Some(reloader) = reloader {
        reloader.abort();
    }
    result
}
