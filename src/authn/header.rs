//! The one reading of a request's credential header: `x-api-key: <t>`, else
//! `authorization: Bearer <t>` or `authorization: ApiKey <t>` (schemes case-insensitive), trimmed,
//! at most [`MAX_CREDENTIAL_HEADER`] bytes. Used by the request policy, the batch access check's
//! audit field and `scopegate check --token`, so they can never read a header differently.

use crate::authn::TokenError;

/// The longest credential header value accepted; a longer one is a malformed credential. JWTs have
/// their own, configurable and smaller, limit (`jwt.max_token_bytes`).
pub const MAX_CREDENTIAL_HEADER: usize = 16 * 1024;

/// The credential string a request presents. `None` when it presents none; `Some(Err)` for a
/// header that is present but unusable (unknown scheme, empty, too long).
pub fn credential<'a>(headers: &dyn Fn(&str) -> Option<&'a str>) -> Option<Result<&'a str, TokenError>> {
    let raw = if let Some(key) = headers("x-api-key") {
        key
    } else {
        let value = headers("authorization")?.trim();
        let Some((scheme, token)) = value.split_once(' ') else {
            return Some(Err(TokenError::Malformed("unsupported authorization scheme")));
        };
        if !scheme.eq_ignore_ascii_case("bearer") && !scheme.eq_ignore_ascii_case("apikey") {
            return Some(Err(TokenError::Malformed("unsupported authorization scheme")));
        }
        token
    };
    Some(raw_credential(raw))
}

/// A credential given as is (an `x-api-key` value, a `--token` argument): trimmed, not empty, at
/// most [`MAX_CREDENTIAL_HEADER`] bytes.
pub fn raw_credential(raw: &str) -> Result<&str, TokenError> {
    let raw = raw.trim();
    if raw.len() > MAX_CREDENTIAL_HEADER {
        return Err(TokenError::Malformed("too long"));
    }
    if raw.is_empty() {
        return Err(TokenError::Malformed("empty"));
    }
    Ok(raw)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn read<'a>(pairs: &'a [(&'a str, &'a str)]) -> Option<Result<&'a str, TokenError>> {
        credential(&|name: &str| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v))
    }

    #[test]
    fn reads_x_api_key_first_then_the_two_authorization_schemes() {
        assert_eq!(read(&[]), None);
        assert_eq!(
            read(&[("x-api-key", " k "), ("authorization", "Bearer b")]),
            Some(Ok("k"))
        );
        assert_eq!(read(&[("authorization", "bearer b ")]), Some(Ok("b")));
        assert_eq!(read(&[("authorization", "ApiKey a")]), Some(Ok("a")));
        for bad in ["Basic x", "token", "Bearer  "] {
            assert!(matches!(read(&[("authorization", bad)]), Some(Err(_))), "{bad}");
        }
        let long = "x".repeat(MAX_CREDENTIAL_HEADER + 1);
        assert_eq!(
            read(&[("x-api-key", &long)]),
            Some(Err(TokenError::Malformed("too long")))
        );
    }
}
