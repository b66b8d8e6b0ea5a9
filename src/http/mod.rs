//! The HTTP listener (wire.md "HTTP mode" and "Batch access check"): every path other than its own
//! endpoints is a request to authorize, for Envoy's HTTP ext_authz service, nginx `auth_request` and
//! Traefik `ForwardAuth`; `/authz/api/acl` answers batch access checks ([`acl`]); `/healthz` and
//! `/readyz` report liveness and readiness; `/metrics` serves Prometheus metrics
//! ([`crate::telemetry::metrics`]). No policy lives here: requests go to the pure
//! [`authorize()`](crate::serve::authorize()) and outcomes are rendered by [`crate::serve::response`].

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State as Shared};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::serve::authorize::{authorize_detailed, now_unix};
use crate::serve::observe::{Observed, detail_if_audited, finish};
use crate::serve::response::{denial_response, identity_headers};
use crate::serve::{Outcome, Request, State};

pub mod acl;

/// nginx `auth_request`: the original method.
pub const ORIGINAL_METHOD: &str = "x-original-method";
/// nginx `auth_request`: the original request target.
pub const ORIGINAL_URI: &str = "x-original-uri";
/// Traefik `ForwardAuth`: the original method.
pub const FORWARDED_METHOD: &str = "x-forwarded-method";
/// Traefik `ForwardAuth`: the original request target.
pub const FORWARDED_URI: &str = "x-forwarded-uri";
/// The largest `/authz/api/acl` body accepted (10,000 checks fit with room to spare); larger is 413.
pub const ACL_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// Settings of the HTTP listener.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// Stripped from the request's own path before authorizing it (`/authz`); not applied to
    /// `x-original-uri` / `x-forwarded-uri`.
    pub path_prefix: Option<String>,
}

struct App {
    state: Arc<State>,
    options: HttpOptions,
}

/// The HTTP listener's routes over shared state.
pub fn router(state: Arc<State>, options: HttpOptions) -> Router {
    let app = Arc::new(App { state, options });
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(
            "/authz/api/acl",
            post(acl_handler).layer(DefaultBodyLimit::max(ACL_BODY_LIMIT)),
        )
        .fallback(authz)
        .with_state(app)
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

/// The method and target to authorize: nginx's headers, Traefik's, else the request's own target
/// with the configured prefix stripped.
fn target<'a>(
    headers: &'a HeaderMap,
    method: &'a Method,
    uri: &'a Uri,
    prefix: Option<&str>,
) -> (&'a str, Cow<'a, str>) {
    for (m, u) in [(ORIGINAL_METHOD, ORIGINAL_URI), (FORWARDED_METHOD, FORWARDED_URI)] {
        if let (Some(m), Some(u)) = (header_str(headers, m), header_str(headers, u)) {
            return (m, Cow::Borrowed(u));
        }
    }
    let own = uri.path_and_query().map_or("/", |p| p.as_str());
    let stripped = prefix
        .and_then(|p| own.strip_prefix(p))
        .filter(|rest| rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'));
    let path = match stripped {
        Some(rest) if rest.is_empty() || rest.starts_with('?') => Cow::Owned(format!("/{rest}")),
        Some(rest) => Cow::Borrowed(rest),
        None => Cow::Borrowed(own),
    };
    (method.as_str(), path)
}

async fn authz(Shared(app): Shared<Arc<App>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let started = std::time::Instant::now();
    let (method, path) = target(&headers, &method, &uri, app.options.path_prefix.as_deref());
    let lookup = |name: &str| header_str(&headers, name);
    let span = crate::telemetry::check_span("http", &lookup);
    let decide = |detail: Option<&mut crate::serve::Detail>| {
        span.in_scope(|| {
            authorize_detailed(
                &app.state,
                &Request {
                    method,
                    path: &path,
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
    let mut outcome = decide(detail.as_mut());
    if app.state.fetch_missing(&outcome).await {
        detail = detail_if_audited(&app.state);
        outcome = decide(detail.as_mut());
    }
    let decision_id = app.state.next_decision_id();
    let observed = Observed {
        frontend: "http",
        method,
        target: &path,
        request_id: header_str(&headers, "x-request-id"),
        started,
    };
    let answer = span.in_scope(|| finish(&app.state, &observed, &outcome, detail, &decision_id, &span));
    render(&answer, &decision_id)
}

/// An outcome as an HTTP response: 200 with the identity headers, or the denial's status, JSON
/// body and `www-authenticate`.
pub fn render(outcome: &Outcome, decision_id: &str) -> Response {
    match outcome {
        Outcome::Allow { .. } => {
            let mut response = StatusCode::OK.into_response();
            for (name, value) in identity_headers(outcome, decision_id) {
                if let Ok(value) = HeaderValue::from_str(value) {
                    response
                        .headers_mut()
                        .insert(HeaderName::from_static(name), value);
                }
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

    fn target_of(
        headers: &[(&'static str, &'static str)],
        uri: &str,
        prefix: Option<&str>,
    ) -> (String, String) {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, HeaderValue::from_static(v));
        }
        let uri: Uri = uri.parse().unwrap();
        let (m, p) = target(&map, &Method::GET, &uri, prefix);
        (m.to_owned(), p.into_owned())
    }

    #[test]
    fn nginx_headers_win_over_traefik_and_the_request() {
        let both = [
            (ORIGINAL_METHOD, "POST"),
            (ORIGINAL_URI, "/a?x=1"),
            (FORWARDED_METHOD, "PUT"),
            (FORWARDED_URI, "/b"),
        ];
        assert_eq!(target_of(&both, "/c", None), ("POST".into(), "/a?x=1".into()));
        let traefik = [(FORWARDED_METHOD, "PUT"), (FORWARDED_URI, "/b")];
        assert_eq!(target_of(&traefik, "/c", None), ("PUT".into(), "/b".into()));
        let half = [(ORIGINAL_METHOD, "POST")];
        assert_eq!(target_of(&half, "/c", None), ("GET".into(), "/c".into()));
    }

    #[test]
    fn the_prefix_is_stripped_only_at_a_segment_boundary() {
        let p = Some("/authz");
        assert_eq!(target_of(&[], "/authz/ng/api/x?a=1", p).1, "/ng/api/x?a=1");
        assert_eq!(target_of(&[], "/authz", p).1, "/");
        assert_eq!(target_of(&[], "/authz?a=1", p).1, "/?a=1");
        assert_eq!(target_of(&[], "/authzz/x", p).1, "/authzz/x");
        assert_eq!(target_of(&[], "/other", p).1, "/other");
        assert_eq!(
            target_of(&[(ORIGINAL_METHOD, "GET"), (ORIGINAL_URI, "/authz/x")], "/", p).1,
            "/authz/x"
        );
    }
}
