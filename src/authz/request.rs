//! A request to authorize, free of any wire format: what a front end read off its wire (method,
//! target, headers, a permission override, a demanded account revision, proxy-verified JWT claims)
//! and what observing the
//! decision needs (front end, request id). The routing part is handed to the route table as a
//! [`RouteRequest`] ([`Request::route`]); it is held here with `Sync` header lookups, which the
//! async [`check`](super::Authorizer::check) needs to keep the request across a fetch.

use serde_json::{Map, Value};

use crate::route::RouteRequest;

/// The request header demanding at least an account revision (read-your-writes, `docs/wire.md`).
pub const MIN_REVISION_HEADER: &str = "x-scopegate-min-revision";
/// Envoy's `context_extensions` key demanding at least an account revision.
pub const MIN_REVISION_EXTENSION: &str = "min_revision";
/// The reason code of a demanded revision that is not one decimal `u64`.
pub const MIN_REVISION_INVALID: &str = "min_revision_invalid";
/// The longest value of the demand read (a `u64` has at most 20 digits; Envoy joins repeated
/// headers with commas, so a few repeats of one value still fit).
pub const MAX_MIN_REVISION_LEN: usize = 64;

/// Reads a demanded revision from every value given for it (a repeated header, or Envoy's
/// comma-joined form of one): nothing given is `Ok(None)`; the same decimal `u64` in every value is
/// that revision; anything else (empty, not digits, more than 20 digits, over `u64::MAX`, two
/// different revisions, a value longer than [`MAX_MIN_REVISION_LEN`]) is
/// [`MIN_REVISION_INVALID`].
pub fn parse_min_revision<'v>(
    values: impl IntoIterator<Item = &'v [u8]>,
) -> Result<Option<u64>, &'static str> {
    let mut found = None;
    for value in values {
        if value.len() > MAX_MIN_REVISION_LEN {
            return Err(MIN_REVISION_INVALID);
        }
        for part in value.split(|b| *b == b',') {
            let part = part.trim_ascii();
            if part.is_empty() || part.len() > 20 || !part.iter().all(u8::is_ascii_digit) {
                return Err(MIN_REVISION_INVALID);
            }
            let revision = std::str::from_utf8(part)
                .ok()
                .and_then(|digits| digits.parse::<u64>().ok())
                .ok_or(MIN_REVISION_INVALID)?;
            if found.is_some_and(|seen| seen != revision) {
                return Err(MIN_REVISION_INVALID);
            }
            found = Some(revision);
        }
    }
    Ok(found)
}

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
    /// The account revision the answer must reflect at least (`x-scopegate-min-revision`, Envoy's
    /// `context_extensions.min_revision`): a check against an older snapshot waits for it, up to a
    /// bound, then answers 503 `revision_not_reached`.
    pub min_revision: Option<u64>,
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
            min_revision: None,
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
            .field("min_revision", &self.min_revision)
            .field("malformed", &self.malformed)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parsed(values: &[&str]) -> Result<Option<u64>, &'static str> {
        parse_min_revision(values.iter().map(|v| v.as_bytes()))
    }

    #[test]
    fn a_demanded_revision_is_one_decimal_u64() {
        assert_eq!(parsed(&[]), Ok(None));
        assert_eq!(parsed(&["42"]), Ok(Some(42)));
        assert_eq!(parsed(&["0"]), Ok(Some(0)));
        assert_eq!(parsed(&[" 7 "]), Ok(Some(7)));
        assert_eq!(parsed(&["18446744073709551615"]), Ok(Some(u64::MAX)));
        // repeated (as headers, or comma-joined by Envoy) with one value is that value
        assert_eq!(parsed(&["5", "5"]), Ok(Some(5)));
        assert_eq!(parsed(&["5, 5"]), Ok(Some(5)));
    }

    #[test]
    fn anything_else_is_invalid_never_a_panic() {
        let long = "1".repeat(MAX_MIN_REVISION_LEN + 1);
        let repeated = ["1"; 40].join(",");
        for bad in [
            &[""][..],
            &["abc"],
            &["-1"],
            &["+1"],
            &["1.0"],
            &["0x10"],
            &["18446744073709551616"],
            &["000000000000000000001"],
            &["5", "6"],
            &["5,6"],
            &["5,"],
            &[long.as_str()],
            &[repeated.as_str()],
            &["1 2"],
            &["٣"],
        ] {
            assert_eq!(parsed(bad), Err(MIN_REVISION_INVALID), "{bad:?}");
        }
        assert_eq!(parse_min_revision([&b"1\xff"[..]]), Err(MIN_REVISION_INVALID));
    }
}
