//! HTTP-target harness: which request the HTTP listener authorizes
//! (`scopegate::http::target::original_request`) from arbitrary headers, method and target.
//! Input: a source byte (envoy, nginx, traefik), a flags byte (bit 0: the `/authz` path prefix),
//! then lines: the listener's own request target, its method, and `name: value` headers.
//!
//! Never a panic; a request it returns comes from the configured source only (never another
//! proxy's headers), is an origin-form target of visible ASCII without a fragment or an empty path
//! segment, and none is returned when a method-override header is present.
//! Shared by `fuzz_targets/http_target.rs` and `tests/fuzz_replay.rs`.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use scopegate::http::target::{HttpSource, METHOD_OVERRIDES, original_request, source_headers};

const SOURCES: [HttpSource; 3] = [HttpSource::Envoy, HttpSource::Nginx, HttpSource::Traefik];
const PREFIX: &str = "/authz";

/// One input (see the module documentation for its form).
pub fn run(data: &[u8]) {
    let [source, flags, rest @ ..] = data else {
        return;
    };
    let source = SOURCES[usize::from(*source) % SOURCES.len()];
    let prefix = (flags & 1 == 1).then_some(PREFIX);
    let mut lines = rest.split(|b| *b == b'\n');
    // a request the listener could not have received is not an input
    let Ok(uri) = Uri::try_from(lines.next().unwrap_or_default()) else {
        return;
    };
    let method = Method::from_bytes(lines.next().unwrap_or_default()).unwrap_or(Method::GET);
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(name, value);
        }
    }

    let result = original_request(source, &headers, &method, &uri, prefix);
    let overridden = METHOD_OVERRIDES.iter().any(|name| headers.contains_key(*name));
    let Ok((got_method, target)) = result else {
        if let Err(error) = &result {
            assert!(!error.code().is_empty());
        }
        return;
    };
    assert!(!overridden, "a method-override header was accepted");
    assert!(
        Method::from_bytes(got_method.as_bytes()).is_ok(),
        "not a method: {got_method:?}"
    );
    assert!(target.starts_with('/'), "not origin-form: {target:?}");
    assert!(
        target.bytes().all(|b| (0x21..=0x7e).contains(&b)),
        "not visible ASCII: {target:?}"
    );
    assert!(!target.contains('#'), "a fragment: {target:?}");
    let path = target.split_once('?').map_or(&*target, |(path, _)| path);
    assert!(!path.contains("//"), "an empty segment: {target:?}");
    match source_headers(source) {
        Some((method_header, target_header)) => {
            let only = |name: &str| {
                let mut values = headers.get_all(name).iter();
                let first = values.next().and_then(|v| v.to_str().ok());
                assert!(values.next().is_none(), "a repeated `{name}` was accepted");
                first
            };
            assert_eq!(
                only(method_header),
                Some(&*got_method),
                "the method is not the source's"
            );
            assert_eq!(
                only(target_header),
                Some(&*target),
                "the target is not the source's"
            );
        }
        None => {
            assert_eq!(got_method, method.as_str(), "the method is not the request's own");
            if prefix.is_none() {
                let own = uri.path_and_query().map_or("/", |p| p.as_str());
                assert_eq!(target, own, "the target is not the request's own");
            }
        }
    }
    let _ = scopegate::route::normalize(&target);
}
