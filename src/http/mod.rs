//! The HTTP listeners (`docs/wire.md` "HTTP mode" and "Batch access check").
//!
//! The HTTP listener (`listen.http`) authorizes every request it receives, for Envoy's HTTP
//! ext_authz service, nginx `auth_request` or Traefik `ForwardAuth`: the original request comes
//! from the ONE configured source ([`target`], `listen.http_source`). Under `nginx` and `traefik`
//! it also answers batch access checks on `POST /authz/api/acl` ([`acl`]): there the proxy's auth
//! subrequest has a fixed path of its own, so that path can never be a client's request; under
//! `envoy` the listener's path IS the client's, so every path, `/authz/api/acl`, `/healthz` and
//! `/metrics` included, is a request to authorize.
//!
//! The admin listener (`listen.admin`) serves scopegate's own endpoints and authorizes nothing:
//! `/healthz` and `/readyz` (liveness, readiness), `/metrics` (Prometheus,
//! the request policy's metrics text) and `POST /authz/api/acl`.
//!
//! No policy lives here: requests become [`Request`](crate::authz::Request)s, the one
//! [`Authorizer::check`] decides them, and verdicts are rendered through [`crate::authz::render`].

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::authz::Authorizer;
use crate::authz::observe::METRICS_CONTENT_TYPE;

pub mod acl;
mod authz;
pub mod headers;
pub mod target;

pub use authz::{render, render_verdict};
pub use headers::{AMBIGUOUS_HEADER, INVALID_HEADER_VALUE};

pub use target::{FORWARDED_METHOD, FORWARDED_URI, HttpSource, ORIGINAL_METHOD, ORIGINAL_URI};

/// The largest `/authz/api/acl` body accepted (10,000 checks fit with room to spare); larger is 413.
pub const ACL_BODY_LIMIT: usize = 8 * 1024 * 1024;
/// The path of the batch access check.
pub const ACL_PATH: &str = "/authz/api/acl";
/// Envoy HTTP ext_authz removes the headers this response header lists from the upstream request.
pub const ENVOY_HEADERS_TO_REMOVE: &str = "x-envoy-auth-headers-to-remove";

/// Which endpoints a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Endpoints {
    /// The HTTP listener: every request is one to authorize (and `/authz/api/acl` under nginx or
    /// Traefik).
    #[default]
    Authz,
    /// The admin listener: `/healthz`, `/readyz`, `/metrics`, `/authz/api/acl`; nothing authorized.
    Admin,
}

/// Settings of an HTTP listener.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// Stripped from the request's own path before authorizing it (`/authz`), under
    /// [`HttpSource::Envoy`] only.
    pub path_prefix: Option<String>,
    /// The trusted source of the original request (`listen.http_source`).
    pub source: HttpSource,
    /// The HTTP listener or the admin listener.
    pub endpoints: Endpoints,
}

impl HttpOptions {
    /// The admin listener's options.
    pub fn admin() -> Self {
        Self {
            endpoints: Endpoints::Admin,
            ..Self::default()
        }
    }

    /// The HTTP listener's options with `source`.
    pub fn with_source(source: HttpSource) -> Self {
        Self {
            source,
            ..Self::default()
        }
    }
}

struct App {
    authorizer: Arc<Authorizer>,
    options: HttpOptions,
}

/// The routes of an HTTP listener ([`HttpOptions::endpoints`]) over the shared request policy.
pub fn router(authorizer: Arc<Authorizer>, options: HttpOptions) -> Router {
    let endpoints = options.endpoints;
    let source = options.source;
    let app = Arc::new(App { authorizer, options });
    let acl = post(acl_handler).layer(DefaultBodyLimit::max(ACL_BODY_LIMIT));
    match endpoints {
        Endpoints::Admin => Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .route(ACL_PATH, acl)
            .with_state(app),
        Endpoints::Authz if source == HttpSource::Envoy => {
            Router::new().fallback(authz::authz).with_state(app)
        }
        Endpoints::Authz => Router::new()
            .route(ACL_PATH, acl)
            .fallback(authz::authz)
            .with_state(app),
    }
}

/// Serves the HTTP listener on `listener` (a `TcpListener`: HTTP/1.1 and h2c; or a TLS
/// [`Listener`](crate::tls::Listener): HTTP/1.1 and h2) until `shutdown` completes, then drains
/// in-flight requests.
pub async fn serve_on(
    listener: impl Into<crate::tls::Listener>,
    authorizer: Arc<Authorizer>,
    options: HttpOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    crate::tls::serve_router(listener.into(), router(authorizer, options), shutdown).await
}

async fn healthz() -> StatusCode {
    StatusCode::OK
}

async fn readyz(State(app): State<Arc<App>>) -> StatusCode {
    if app.authorizer.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let mut response = app.authorizer.metrics_text().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(METRICS_CONTENT_TYPE),
    );
    response
}

async fn acl_handler(State(app): State<Arc<App>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    acl::handle(&app.authorizer, &headers, &body).await
}

/// A JSON response with a status and an optional `www-authenticate`.
pub(crate) fn json_response(status: u16, www_authenticate: Option<&'static str>, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(value) = www_authenticate {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
    }
    response
}
