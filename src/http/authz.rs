//! HTTP mode (`docs/wire.md` "HTTP mode"): the original request, as the ONE configured source
//! reports it ([`super::target`]), becomes a [`Request`]; [`Authorizer::check`] decides it; the
//! [`Verdict`] is rendered as a status with the identity headers or a denial's JSON body.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::headers::{CheckedHeaders, header_str};
use super::{App, ENVOY_HEADERS_TO_REMOVE, json_response, target};
use crate::authz::render::{
    ACCOUNT_HEADER, DECISION_ID_HEADER, HEADER_PREFIX, PRINCIPAL_HEADER, denial_response,
};
use crate::authz::request::{MIN_REVISION_HEADER, parse_min_revision};
use crate::authz::{Outcome, Request, Verdict};

pub(super) async fn authz(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let plain = |name: &str| header_str(&headers, name);
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
    let flaw = || checked.flaw();
    let min_revision = min_revision(&headers);
    let request = Request {
        trace_headers: &plain,
        header_flaw: Some(&flaw),
        request_id: plain("x-request-id"),
        min_revision: min_revision.ok().flatten(),
        malformed: original
            .as_ref()
            .err()
            .map(target::TargetError::code)
            .or(min_revision.err()),
        ..Request::new("http", checked_method, path, &lookup)
    };
    let verdict = app.authorizer.check(&request).await;
    render_verdict(&verdict, &headers)
}

/// The revision the request demands (`x-scopegate-min-revision`, every value of it); a malformed
/// demand is the reason code that makes the request malformed.
pub(super) fn min_revision(headers: &HeaderMap) -> Result<Option<u64>, &'static str> {
    parse_min_revision(
        headers
            .get_all(MIN_REVISION_HEADER)
            .iter()
            .map(HeaderValue::as_bytes),
    )
}

/// The verdict's answer (in dry-run mode an allow in place of a denial) as an HTTP response.
pub fn render_verdict(verdict: &Verdict, incoming: &HeaderMap) -> Response {
    render(&verdict.answer(), &verdict.decision_id, incoming)
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::http::HeaderValue;

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
}
