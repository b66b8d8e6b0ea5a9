//! A request to authorize, free of any wire format: what a front end read off its wire (method,
//! target, headers, a permission override, proxy-verified JWT claims) and what observing the
//! decision needs (front end, request id). The routing part is handed to the route table as a
//! [`RouteRequest`] ([`Request::route`]); it is held here with `Sync` header lookups, which the
//! async [`check`](super::Authorizer::check) needs to keep the request across a fetch.

use serde_json::{Map, Value};

use crate::route::RouteRequest;

/// A header lookup by lower-case name, shareable across threads.
pub type Headers<'a> = dyn Fn(&str) -> Option<&'a str> + Sync + 'a;

/// A question a front end answers after deciding: did reading the headers find one that is
/// repeated or unreadable (the stable reason code), which makes the request malformed?
pub type HeaderFlaw<'a> = dyn Fn() -> Option<&'static str> + Sync + 'a;

fn no_headers<'a>(_: &str) -> Option<&'a str> {
    None
}

/// A request to authorize, borrowed from whatever carried it.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// `grpc`, `http` or `acl`: the front end, for metrics, traces and the audit log.
    pub frontend: &'static str,
    /// The HTTP method.
    pub method: &'a str,
    /// The raw request target, query string included.
    pub path: &'a str,
    /// Looks a header up by its lower-case name, as the decision reads it.
    pub headers: &'a Headers<'a>,
    /// Looks a header up without the decision's bookkeeping (the trace context).
    pub trace_headers: &'a Headers<'a>,
    /// The front end's check of the headers read while deciding, if it has one.
    pub header_flaw: Option<&'a HeaderFlaw<'a>>,
    /// A permission replacing the route's (Envoy's `context_extensions.permission`).
    pub permission_override: Option<&'a str>,
    /// JWT claims a trusted proxy already verified (Envoy `jwt_authn` metadata), used instead of
    /// the request's credential when JWT issuers are configured.
    pub verified_claims: Option<&'a Map<String, Value>>,
    /// `x-request-id` (Envoy: `attributes.request.http.id`), if any.
    pub request_id: Option<&'a str>,
    /// The front end already found the request malformed (this stable reason code): it is
    /// denied without deciding, and observed like any other.
    pub malformed: Option<&'static str>,
}

impl<'a> Request<'a> {
    /// A request of `frontend` with these headers and nothing else set.
    pub fn new(frontend: &'static str, method: &'a str, path: &'a str, headers: &'a Headers<'a>) -> Self {
        Self {
            frontend,
            method,
            path,
            headers,
            trace_headers: headers,
            header_flaw: None,
            permission_override: None,
            verified_claims: None,
            request_id: None,
            malformed: None,
        }
    }

    /// A request the front end could not read at all (this stable reason code).
    pub fn malformed(frontend: &'static str, method: &'a str, path: &'a str, reason: &'static str) -> Self {
        Self {
            malformed: Some(reason),
            ..Self::new(frontend, method, path, &no_headers)
        }
    }

    /// The routing part, with the account the credential names.
    pub fn route<'s>(
        &'s self,
        headers: &'s dyn Fn(&str) -> Option<&'s str>,
        credential_account: Option<&'s str>,
    ) -> RouteRequest<'s> {
        RouteRequest {
            method: self.method,
            path: self.path,
            headers,
            credential_account,
            permission_override: self.permission_override,
        }
    }
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("frontend", &self.frontend)
            .field("method", &self.method)
            .field("path", &self.path)
            .field("permission_override", &self.permission_override)
            .field("malformed", &self.malformed)
            .finish_non_exhaustive()
    }
}
