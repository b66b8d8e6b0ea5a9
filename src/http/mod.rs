//! The HTTP listeners (wire.md "HTTP mode" and "Batch access check").
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
//! [`crate::telemetry::metrics`]) and `POST /authz/api/acl`.
//!
//! No policy lives here: requests go to the pure [`authorize()`](crate::serve::authorize()) and
//! outcomes are rendered by [`crate::serve::response`].

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State as Shared};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::serve::authorize::{authorize_detailed, now_unix};
use crate::serve::observe::{Observed, detail_if_audited, finish};
use crate::serve::response::{
    ACCOUNT_HEADER, DECISION_ID_HEADER, HEADER_PREFIX, PRINCIPAL_HEADER, denial_response,
};
use crate::serve::{Denial, Outcome, Request, State};

pub mod acl;
pub mod target;

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
    state: Arc<State>,
    options: HttpOptions,
}

/// The routes of an HTTP listener ([`HttpOptions::endpoints`]) over shared state.
pub fn router(state: Arc<State>, options: HttpOptions) -> Router {
    let endpoints = options.endpoints;
    let source = options.source;
    let app = Arc::new(App { state, options });
    let acl = post(acl_handler).layer(DefaultBodyLimit::max(ACL_BODY_LIMIT));
    match endpoints {
        Endpoints::Admin => Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .route(ACL_PATH, acl)
            .with_state(app),
        Endpoints::Authz if source == HttpSource::Envoy => Router::new().fallback(authz).with_state(app),
        Endpoints::Authz => Router::new().route(ACL_PATH, acl).fallback(authz).with_state(app),
    }
}

/// Serves the HTTP listener on `listener` (a `TcpListener`: HTTP/1.1 and h2c; or a TLS
/// [`Listener`](crate::tls::Listener): HTTP/1.1 and h2) until `shutdown` completes, then drains
/// in-flight requests.
pub async fn serve_on(
    listener: impl Into<crate::tls::Listener>,
    state: Arc<State>,
    options: HttpOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // hyper-util's server rather than `axum::serve`, which cannot bound the time a client takes
    // to send its headers (slowloris): `header_read_timeout` bounds every HTTP/1 header block;
    // the listener bounds the first bytes, idle connections and how many are open.
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;
    let mut listener: crate::tls::Listener = listener.into();
    let limits = listener.limits();
    let app = router(state, options);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (conn, _peer) = tokio::select! {
            accepted = axum::serve::Listener::accept(&mut listener) => accepted,
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let served = builder
            .serve_connection_with_upgrades(TokioIo::new(conn), service)
            .into_owned();
        let served = graceful.watch(served);
        tokio::spawn(async move {
            // a client's error (a reset, a timeout) concerns that connection only
            if let Err(error) = served.await {
                tracing::debug!(%error, "http connection ended with an error");
            }
        });
    }
    // stop accepting, then let in-flight requests finish (idle connections close at once)
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

async fn healthz() -> StatusCode {
    StatusCode::OK
}

async fn readyz(Shared(app): Shared<Arc<App>>) -> StatusCode {
    if app.state.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

async fn metrics(Shared(app): Shared<Arc<App>>) -> Response {
    let mut response = crate::telemetry::metrics::render(&app.state).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::telemetry::metrics::CONTENT_TYPE),
    );
    response
}

async fn acl_handler(Shared(app): Shared<Arc<App>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    acl::handle_loading(&app.state, &headers, &body).await
}

/// A header's value as text, if present and visible ASCII.
pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The request's headers as the decision reads them, noting every header read that is repeated
/// (the upstream may read another value than the first) or not visible ASCII (the upstream may read
/// what scopegate takes as absent): either makes the request malformed.
pub(crate) struct CheckedHeaders<'a> {
    headers: &'a HeaderMap,
    /// 0: none; 1: [`AMBIGUOUS_HEADER`]; 2: [`INVALID_HEADER_VALUE`] (atomic, so a decision that
    /// awaits a fetch stays `Send`).
    flaw: AtomicU8,
}

/// The reason code of a header read that is given more than once (the route table's code for a
/// scope header holding more than one value, as Envoy comma-joins repeated headers).
pub const AMBIGUOUS_HEADER: &str = "ambiguous_header";
/// The reason code of a header read that is not visible ASCII.
pub const INVALID_HEADER_VALUE: &str = "invalid_header_value";

impl<'a> CheckedHeaders<'a> {
    pub(crate) fn new(headers: &'a HeaderMap) -> Self {
        Self {
            headers,
            flaw: AtomicU8::new(0),
        }
    }

    /// The one value of `name`; a repeated or unreadable header is noted ([`Self::flaw`]).
    pub(crate) fn get(&self, name: &str) -> Option<&'a str> {
        let mut values = self.headers.get_all(name).iter();
        let first = values.next()?;
        if values.next().is_some() {
            self.flaw.fetch_max(1, Ordering::Relaxed);
        }
        match first.to_str() {
            Ok(text) => Some(text),
            Err(_) => {
                self.flaw.fetch_max(2, Ordering::Relaxed);
                None
            }
        }
    }

    /// Why a header read makes the request malformed, if one does.
    pub(crate) fn flaw(&self) -> Option<&'static str> {
        match self.flaw.load(Ordering::Relaxed) {
            0 => None,
            1 => Some(AMBIGUOUS_HEADER),
            _ => Some(INVALID_HEADER_VALUE),
        }
    }
}

async fn authz(Shared(app): Shared<Arc<App>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let started = std::time::Instant::now();
    let plain = |name: &str| header_str(&headers, name);
    let span = crate::telemetry::check_span("http", &plain);
    let original = target::original_request(
        app.options.source,
        &headers,
        &method,
        &uri,
        app.options.path_prefix.as_deref(),
    );
    let (checked_method, path) = match &original {
        Ok((method, path)) => (&**method, &**path),
        Err(_) => (method.as_str(), uri.path()),
    };
    let checked = CheckedHeaders::new(&headers);
    let lookup = |name: &str| checked.get(name);
    let decide = |detail: Option<&mut crate::serve::Detail>| {
        span.in_scope(|| {
            authorize_detailed(
                &app.state,
                &Request {
                    method: checked_method,
                    path,
                    headers: &lookup,
                    permission_override: None,
                    verified_claims: None,
                },
                now_unix(),
                detail,
            )
        })
    };
    let mut detail = detail_if_audited(&app.state);
    let outcome = match &original {
        Err(error) => Outcome::Deny(Denial::InvalidRequest { reason: error.code() }),
        Ok(_) => {
            let mut outcome = decide(detail.as_mut());
            if app.state.fetch_missing(&outcome).await {
                detail = detail_if_audited(&app.state);
                outcome = decide(detail.as_mut());
            }
            match checked.flaw() {
                Some(reason) => Outcome::Deny(Denial::InvalidRequest { reason }),
                None => outcome,
            }
        }
    };
    let decision_id = app.state.next_decision_id();
    let observed = Observed {
        frontend: "http",
        method: checked_method,
        target: path,
        request_id: plain("x-request-id"),
        started,
    };
    let answer = span.in_scope(|| finish(&app.state, &observed, &outcome, detail, &decision_id, &span));
    render(&answer, &decision_id, &headers)
}

/// An outcome as an HTTP response: 200 with the identity headers, or the denial's status, JSON
/// body and `www-authenticate`.
///
/// An allow (public, dry-run and authenticated alike) always carries all three identity headers,
/// the principal and account empty when there is none, so a proxy that copies them onto the
/// upstream request (nginx `proxy_set_header`, Traefik `authResponseHeaders`, Envoy
/// `allowed_upstream_headers`) overwrites whatever the client sent; every other `x-scopegate-*`
/// header of `incoming` is listed in `x-envoy-auth-headers-to-remove`, which Envoy's HTTP ext_authz
/// removes from the upstream request (the gRPC front end's `headers_to_remove`).
pub fn render(outcome: &Outcome, decision_id: &str, incoming: &HeaderMap) -> Response {
    match outcome {
        Outcome::Allow {
            principal, account, ..
        } => {
            let mut response = StatusCode::OK.into_response();
            let headers = response.headers_mut();
            let owned = [
                (PRINCIPAL_HEADER, principal.as_deref().unwrap_or_default()),
                (ACCOUNT_HEADER, account.as_deref().unwrap_or_default()),
                (DECISION_ID_HEADER, decision_id),
            ];
            for (name, value) in owned {
                let value = HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static(""));
                headers.insert(HeaderName::from_static(name), value);
            }
            let mut forged: Vec<&str> = incoming
                .keys()
                .map(HeaderName::as_str)
                .filter(|name| name.starts_with(HEADER_PREFIX))
                .filter(|name| !owned.iter().any(|(set, _)| set == name))
                .collect();
            forged.sort_unstable();
            forged.dedup();
            if !forged.is_empty()
                && let Ok(value) = HeaderValue::from_str(&forged.join(", "))
            {
                headers.insert(HeaderName::from_static(ENVOY_HEADERS_TO_REMOVE), value);
            }
            response
        }
        Outcome::Deny(denial) => {
            let rendered = denial_response(denial, decision_id);
            json_response(rendered.status, rendered.www_authenticate(), rendered.body)
        }
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn allow(principal: Option<&str>) -> Outcome {
        Outcome::Allow {
            principal: principal.map(str::to_owned),
            account: principal.map(|_| "acme".to_owned()),
            permission: None,
            reason: "public",
        }
    }

    #[test]
    fn every_allow_names_all_identity_headers_and_removes_other_forged_ones() {
        let mut incoming = HeaderMap::new();
        for name in [
            PRINCIPAL_HEADER,
            "x-scopegate-role",
            "x-scopegate-role",
            "x-other",
        ] {
            incoming.append(name, HeaderValue::from_static("forged"));
        }
        let response = render(&allow(None), "d1", &incoming);
        let headers = response.headers();
        assert_eq!(headers[PRINCIPAL_HEADER], "");
        assert_eq!(headers[ACCOUNT_HEADER], "");
        assert_eq!(headers[DECISION_ID_HEADER], "d1");
        assert_eq!(headers[ENVOY_HEADERS_TO_REMOVE], "x-scopegate-role");
        let response = render(&allow(Some("USER:alice")), "d2", &HeaderMap::new());
        let headers = response.headers();
        assert_eq!(headers[PRINCIPAL_HEADER], "USER:alice");
        assert_eq!(headers[ACCOUNT_HEADER], "acme");
        assert!(headers.get(ENVOY_HEADERS_TO_REMOVE).is_none());
    }

    #[test]
    fn a_repeated_or_unreadable_header_read_is_a_flaw() {
        let mut headers = HeaderMap::new();
        headers.append("x-api-key", HeaderValue::from_static("a"));
        headers.append("x-api-key", HeaderValue::from_static("b"));
        headers.append("harness-account", HeaderValue::from_bytes(b"acme\x80").unwrap());
        headers.append("authorization", HeaderValue::from_static("Bearer x"));
        let checked = CheckedHeaders::new(&headers);
        assert_eq!(checked.get("authorization"), Some("Bearer x"));
        assert_eq!(checked.get("missing"), None);
        assert_eq!(checked.flaw(), None);
        assert_eq!(checked.get("harness-account"), None);
        assert_eq!(checked.flaw(), Some(INVALID_HEADER_VALUE));
        let checked = CheckedHeaders::new(&headers);
        assert_eq!(checked.get("x-api-key"), Some("a"));
        assert_eq!(checked.flaw(), Some(AMBIGUOUS_HEADER));
    }
}
