//! Which request the HTTP listener authorizes: the original request as ONE trusted source reports it
//! ([`HttpSource`], `listen.http_source`), never a fallback from one proxy's headers to another's.
//!
//! - `envoy` (Envoy HTTP ext_authz): the request itself, its method and target, with the configured
//!   path prefix stripped. `x-original-*` and `x-forwarded-*` headers are ignored. Behind nginx or
//!   Traefik this fails closed: their auth subrequest path is not the real one.
//! - `nginx` (`auth_request`): `x-original-method` and `x-original-uri`; `x-forwarded-*` are ignored.
//! - `traefik` (`ForwardAuth`): `x-forwarded-method` and `x-forwarded-uri`; `x-original-*` are ignored.
//!
//! Under `nginx` and `traefik` a missing, repeated or unreadable (not visible ASCII, or not a method
//! / an origin-form target) header is an error, as is, under every source, a target with a fragment
//! (`#`) or an empty path segment (`//`) — the upstream may read those differently from the route
//! table's normalisation — and a request carrying a method-override header (upstream frameworks
//! honour it, so the checked method would not be the one served). Every error is a 400
//! `INVALID_REQUEST` with the stable [`TargetError::code`]. [`original_request`] is pure, so it can
//! be fuzzed.

use std::borrow::Cow;

use axum::http::{HeaderMap, Method, Uri};

pub use crate::config::HttpSource;

/// nginx `auth_request`: the original method.
pub const ORIGINAL_METHOD: &str = "x-original-method";
/// nginx `auth_request`: the original request target.
pub const ORIGINAL_URI: &str = "x-original-uri";
/// Traefik `ForwardAuth`: the original method.
pub const FORWARDED_METHOD: &str = "x-forwarded-method";
/// Traefik `ForwardAuth`: the original request target.
pub const FORWARDED_URI: &str = "x-forwarded-uri";
/// Method-override headers upstream frameworks honour; a request carrying one is refused.
pub const METHOD_OVERRIDES: &[&str] = &["x-http-method-override", "x-method-override", "x-http-method"];

/// The headers carrying the original method and target, for the proxies that send them.
pub fn source_headers(source: HttpSource) -> Option<(&'static str, &'static str)> {
    match source {
        HttpSource::Envoy => None,
        HttpSource::Nginx => Some((ORIGINAL_METHOD, ORIGINAL_URI)),
        HttpSource::Traefik => Some((FORWARDED_METHOD, FORWARDED_URI)),
    }
}

/// Why the original request cannot be known; always a 400 `INVALID_REQUEST`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The source's header is absent.
    #[error("header `{0}` is missing")]
    Missing(&'static str),
    /// The source's header is given more than once.
    #[error("header `{0}` is given more than once")]
    Repeated(&'static str),
    /// The source's header holds a byte outside visible ASCII.
    #[error("header `{0}` is not visible ASCII")]
    Unreadable(&'static str),
    /// The method is not an HTTP method token.
    #[error("the original method is not an HTTP method")]
    InvalidMethod,
    /// The target is not an origin-form target (`/path?query`).
    #[error("the original target is not an absolute path")]
    InvalidTarget,
    /// The target holds a fragment (`#`).
    #[error("the original target holds a fragment")]
    Fragment,
    /// The target's path holds an empty segment (`//`).
    #[error("the original target's path holds an empty segment")]
    EmptySegment,
    /// The request carries a method-override header.
    #[error("method-override header `{0}` is not accepted")]
    MethodOverride(&'static str),
}

impl TargetError {
    /// A stable snake-case code for metrics, logs and the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing(_) => "missing_original_request",
            Self::Repeated(_) => "ambiguous_header",
            Self::Unreadable(_) => "invalid_original_request",
            Self::InvalidMethod => "invalid_original_method",
            Self::InvalidTarget => "invalid_original_uri",
            Self::Fragment => "fragment_in_target",
            Self::EmptySegment => "empty_path_segment",
            Self::MethodOverride(_) => "method_override",
        }
    }
}

/// The one value of `name`, as visible ASCII (`0x21`–`0x7e`, inner spaces allowed).
fn single<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, TargetError> {
    let mut values = headers.get_all(name).iter();
    let value = values.next().ok_or(TargetError::Missing(name))?;
    if values.next().is_some() {
        return Err(TargetError::Repeated(name));
    }
    let text = value.to_str().map_err(|_| TargetError::Unreadable(name))?;
    if text.is_empty() || !text.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(TargetError::Unreadable(name));
    }
    Ok(text)
}

/// Refuses what the upstream may read differently from the route table's normalisation.
fn check_target(target: &str) -> Result<(), TargetError> {
    if !target.starts_with('/') || !target.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(TargetError::InvalidTarget);
    }
    if target.contains('#') {
        return Err(TargetError::Fragment);
    }
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    if path.contains("//") {
        return Err(TargetError::EmptySegment);
    }
    Ok(())
}

/// The method and target to authorize, read from `source` only. `method` and `uri` are the request
/// the listener received; `prefix` is stripped (at a segment boundary) from its own target under
/// [`HttpSource::Envoy`], never from a proxy's header.
pub fn original_request<'a>(
    source: HttpSource,
    headers: &'a HeaderMap,
    method: &'a Method,
    uri: &'a Uri,
    prefix: Option<&str>,
) -> Result<(Cow<'a, str>, Cow<'a, str>), TargetError> {
    if let Some(name) = METHOD_OVERRIDES.iter().find(|name| headers.contains_key(**name)) {
        return Err(TargetError::MethodOverride(name));
    }
    let (method, target) = match source_headers(source) {
        Some((method_header, target_header)) => {
            let method = single(headers, method_header)?;
            let target = single(headers, target_header)?;
            Method::from_bytes(method.as_bytes()).map_err(|_| TargetError::InvalidMethod)?;
            (Cow::Borrowed(method), Cow::Borrowed(target))
        }
        None => (Cow::Borrowed(method.as_str()), own_target(uri, prefix)),
    };
    check_target(&target)?;
    Ok((method, target))
}

/// The request's own target with `prefix` stripped at a segment boundary.
fn own_target<'a>(uri: &'a Uri, prefix: Option<&str>) -> Cow<'a, str> {
    let own = uri.path_and_query().map_or("/", |p| p.as_str());
    let stripped = prefix
        .and_then(|p| own.strip_prefix(p))
        .filter(|rest| rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'));
    match stripped {
        Some(rest) if rest.is_empty() || rest.starts_with('?') => Cow::Owned(format!("/{rest}")),
        Some(rest) => Cow::Borrowed(rest),
        None => Cow::Borrowed(own),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    type Got = Result<(String, String), TargetError>;

    fn run(source: HttpSource, headers: &[(&'static str, &[u8])], uri: &str, prefix: Option<&str>) -> Got {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(*k, HeaderValue::from_bytes(v).unwrap());
        }
        let uri: Uri = uri.parse().unwrap();
        original_request(source, &map, &Method::GET, &uri, prefix)
            .map(|(m, t)| (m.into_owned(), t.into_owned()))
    }

    fn ok(m: &str, t: &str) -> Got {
        Ok((m.to_owned(), t.to_owned()))
    }

    const ALL: [(&str, &[u8]); 4] = [
        (ORIGINAL_METHOD, b"POST".as_slice()),
        (ORIGINAL_URI, b"/a?x=1".as_slice()),
        (FORWARDED_METHOD, b"PUT".as_slice()),
        (FORWARDED_URI, b"/b".as_slice()),
    ];

    #[test]
    fn each_source_reads_only_its_own_headers() {
        assert_eq!(run(HttpSource::Nginx, &ALL, "/c", None), ok("POST", "/a?x=1"));
        assert_eq!(run(HttpSource::Traefik, &ALL, "/c", None), ok("PUT", "/b"));
        assert_eq!(run(HttpSource::Envoy, &ALL, "/c", None), ok("GET", "/c"));
        // the other family's headers never stand in for a missing one
        let traefik_only = &ALL[2..];
        assert_eq!(
            run(HttpSource::Nginx, traefik_only, "/c", None),
            Err(TargetError::Missing(ORIGINAL_METHOD))
        );
        let nginx_only = &ALL[..2];
        assert_eq!(
            run(HttpSource::Traefik, nginx_only, "/c", None),
            Err(TargetError::Missing(FORWARDED_METHOD))
        );
        let half = [(ORIGINAL_METHOD, b"POST".as_slice())];
        assert_eq!(
            run(HttpSource::Nginx, &half, "/c", None),
            Err(TargetError::Missing(ORIGINAL_URI))
        );
    }

    #[test]
    fn an_unreadable_or_repeated_header_is_an_error_not_absent() {
        let raw = [
            (ORIGINAL_METHOD, b"GET".as_slice()),
            (ORIGINAL_URI, b"/v1/\x80x".as_slice()),
        ];
        let both = [
            raw[0],
            raw[1],
            (FORWARDED_METHOD, b"GET".as_slice()),
            (FORWARDED_URI, b"/health".as_slice()),
        ];
        let err = run(HttpSource::Nginx, &both, "/", None).unwrap_err();
        assert_eq!(err, TargetError::Unreadable(ORIGINAL_URI));
        assert_eq!(err.code(), "invalid_original_request");
        let twice = [ALL[0], ALL[1], (ORIGINAL_URI, b"/health".as_slice())];
        let err = run(HttpSource::Nginx, &twice, "/", None).unwrap_err();
        assert_eq!(err, TargetError::Repeated(ORIGINAL_URI));
        assert_eq!(err.code(), "ambiguous_header");
        for bad in [b"".as_slice(), b"/a\tb".as_slice(), b"/a\xff".as_slice()] {
            let headers = [ALL[0], (ORIGINAL_URI, bad)];
            assert!(run(HttpSource::Nginx, &headers, "/", None).is_err(), "{bad:?}");
        }
        let headers = [(ORIGINAL_METHOD, b"GE T".as_slice()), ALL[1]];
        assert_eq!(
            run(HttpSource::Nginx, &headers, "/", None),
            Err(TargetError::InvalidMethod)
        );
        for target in [
            b"v1/x".as_slice(),
            b"http://h/x".as_slice(),
            b"*".as_slice(),
            b"/a b".as_slice(),
        ] {
            let headers = [ALL[0], (ORIGINAL_URI, target)];
            assert_eq!(
                run(HttpSource::Nginx, &headers, "/", None),
                Err(TargetError::InvalidTarget),
                "{target:?}"
            );
        }
    }

    #[test]
    fn fragments_empty_segments_and_method_overrides_are_refused() {
        let with = |target: &'static [u8]| [ALL[0], (ORIGINAL_URI, target)];
        let fragment = with(b"/health#/../v1/x".as_slice());
        assert_eq!(
            run(HttpSource::Nginx, &fragment, "/", None),
            Err(TargetError::Fragment)
        );
        let slashes = with(b"/v1//orgs/x".as_slice());
        assert_eq!(
            run(HttpSource::Nginx, &slashes, "/", None),
            Err(TargetError::EmptySegment)
        );
        assert_eq!(
            run(HttpSource::Envoy, &[], "//v1/x", None),
            Err(TargetError::EmptySegment)
        );
        // `//` in the query is data, not a path segment
        assert_eq!(
            run(HttpSource::Nginx, &with(b"/a?u=http://x".as_slice()), "/", None),
            ok("POST", "/a?u=http://x")
        );
        for name in METHOD_OVERRIDES {
            let headers = [ALL[0], ALL[1], (*name, b"DELETE".as_slice())];
            for source in [HttpSource::Envoy, HttpSource::Nginx, HttpSource::Traefik] {
                let err = run(source, &headers, "/", None).unwrap_err();
                assert_eq!(err.code(), "method_override");
            }
        }
    }

    #[test]
    fn the_prefix_is_stripped_only_from_the_own_target_at_a_segment_boundary() {
        let p = Some("/authz");
        let own = |uri: &str| run(HttpSource::Envoy, &[], uri, p).unwrap().1;
        assert_eq!(own("/authz/ng/api/x?a=1"), "/ng/api/x?a=1");
        assert_eq!(own("/authz"), "/");
        assert_eq!(own("/authz?a=1"), "/?a=1");
        assert_eq!(own("/authzz/x"), "/authzz/x");
        assert_eq!(own("/other"), "/other");
        let headers = [
            (ORIGINAL_METHOD, b"GET".as_slice()),
            (ORIGINAL_URI, b"/authz/x".as_slice()),
        ];
        assert_eq!(run(HttpSource::Nginx, &headers, "/", p), ok("GET", "/authz/x"));
    }

    #[test]
    fn sources_parse_by_name() {
        assert_eq!(HttpSource::parse("envoy"), Some(HttpSource::Envoy));
        assert_eq!(HttpSource::parse("nginx"), Some(HttpSource::Nginx));
        assert_eq!(HttpSource::parse("traefik"), Some(HttpSource::Traefik));
        assert_eq!(HttpSource::parse("Nginx"), None);
        assert_eq!(HttpSource::default(), HttpSource::Envoy);
    }
}
