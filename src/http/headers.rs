//! The request's headers as the HTTP front ends read them: [`CheckedHeaders`] notes every header
//! read that is repeated (the upstream may read another value than the first) or not visible ASCII
//! (the upstream may read what scopegate takes as absent), either of which makes the request
//! malformed.

use std::sync::atomic::{AtomicU8, Ordering};

use axum::http::HeaderMap;

/// A header's value as text, if present and visible ASCII.
pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The request's headers as the decision reads them, noting every header read that is repeated
/// (the upstream may read another value than the first) or not visible ASCII (the upstream may read
/// what scopegate takes as absent): either makes the request malformed.
pub struct CheckedHeaders<'a> {
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
    /// A reader of `headers` that has noted no flaw yet.
    pub fn new(headers: &'a HeaderMap) -> Self {
        Self {
            headers,
            flaw: AtomicU8::new(0),
        }
    }

    /// The one value of `name`; a repeated or unreadable header is noted ([`Self::flaw`]).
    pub fn get(&self, name: &str) -> Option<&'a str> {
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
    pub fn flaw(&self) -> Option<&'static str> {
        match self.flaw.load(Ordering::Relaxed) {
            0 => None,
            1 => Some(AMBIGUOUS_HEADER),
            _ => Some(INVALID_HEADER_VALUE),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

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
