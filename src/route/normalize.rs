//! Request-target normalisation and query parsing.
//!
//! Envoy hands over `:path`, the raw request target *including* the query string. Before routing,
//! scopegate normalises it with these rules (the README repeats them):
//!
//! 1. Anything from the first `#` on (a fragment) is dropped; the query is split off at the first `?`.
//! 2. The path must start with `/`: `*`, an empty target and the absolute form
//!    (`http://host/path`) are rejected.
//! 3. Every byte of the path and query must be printable ASCII (`!` to `~`): control characters,
//!    spaces and non-ASCII bytes are rejected. The path may not hold `\` or `;` either (Java servers
//!    treat `;` as the start of matrix parameters and some servers treat `\` as `/`).
//! 4. Every `%` must start a well-formed escape (`%` and two hex digits), in the path and the query.
//! 5. In the path, escapes of unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded; escapes of
//!    `/`, `\`, NUL and other control bytes (`%2F`, `%5C`, `%00`, ...) are rejected, so an encoded
//!    slash can never create or hide a segment; every other escape is kept, with upper-case hex.
//! 6. Runs of `/` collapse to one; a trailing `/` is removed (the root stays `/`).
//! 7. A `.` or `..` segment (also spelled `%2e`, `%2E%2e`, ...) is rejected.
//! 8. Limits: path [`MAX_PATH_LEN`] bytes, query [`MAX_QUERY_LEN`] bytes, [`MAX_SEGMENTS`] segments.
//!
//! A rejected target is a malformed request: 400, `INVALID_REQUEST`. Normalising a normalised path
//! gives it back unchanged. Path captures are percent-decoded once more when their values are used
//! (as a scope or resource identifier). The query is read as `application/x-www-form-urlencoded`
//! pairs (`+` is a space, names and values percent-decoded, names case-sensitive).

use std::borrow::Cow;

use super::RouteError;

/// The longest path part accepted, in bytes.
pub const MAX_PATH_LEN: usize = 8 * 1024;
/// The longest query string accepted, in bytes.
pub const MAX_QUERY_LEN: usize = 16 * 1024;
/// The most path segments accepted.
pub const MAX_SEGMENTS: usize = 256;

/// A normalised request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    /// The normalised path; borrowed when the raw path was already normal.
    pub path: Cow<'a, str>,
    /// The query string after the first `?` (validated, not decoded; empty when absent).
    pub query: Query<'a>,
}

/// Normalises a raw request target (`/path?query`) by the rules in the module documentation.
pub fn normalize(target: &str) -> Result<Target<'_>, RouteError> {
    let target = match target.find('#') {
        Some(i) => &target[..i],
        None => target,
    };
    let (raw_path, query) = match target.find('?') {
        Some(i) => (&target[..i], &target[i + 1..]),
        None => (target, ""),
    };
    if raw_path.len() > MAX_PATH_LEN {
        return Err(RouteError::PathTooLong);
    }
    if query.len() > MAX_QUERY_LEN {
        return Err(RouteError::QueryTooLong);
    }
    if !raw_path.starts_with('/') {
        return Err(RouteError::NotOriginForm);
    }
    check_query(query.as_bytes())?;
    let path = normalize_path(raw_path)?;
    Ok(Target {
        path,
        query: Query(query),
    })
}

fn check_query(q: &[u8]) -> Result<(), RouteError> {
    let mut i = 0;
    while i < q.len() {
        let b = q[i];
        if !(0x21..=0x7e).contains(&b) {
            return Err(RouteError::InvalidCharacter);
        }
        if b == b'%' {
            if hex_pair(q, i).is_none() {
                return Err(RouteError::InvalidEscape);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// The byte encoded by the escape starting at `q[i] == b'%'`, if well-formed.
fn hex_pair(q: &[u8], i: usize) -> Option<u8> {
    let hi = hex_val(*q.get(i + 1)?)?;
    let lo = hex_val(*q.get(i + 2)?)?;
    Some(hi << 4 | lo)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn is_path_char(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && b != b'\\' && b != b';'
}

fn normalize_path(raw: &str) -> Result<Cow<'_, str>, RouteError> {
    let bytes = raw.as_bytes();
    let rewrite = bytes.contains(&b'%') || raw.contains("//") || (raw.len() > 1 && raw.ends_with('/'));
    let mut out = if rewrite {
        Some(String::with_capacity(raw.len()))
    } else {
        None
    };
    let mut segments = 0usize;
    for seg in raw.split('/').skip(1) {
        if seg.is_empty() {
            continue;
        }
        segments += 1;
        if segments > MAX_SEGMENTS {
            return Err(RouteError::TooManySegments);
        }
        match out.as_mut() {
            None => {
                if !seg.bytes().all(is_path_char) {
                    return Err(RouteError::InvalidCharacter);
                }
                if seg == "." || seg == ".." {
                    return Err(RouteError::DotSegment);
                }
            }
            Some(out) => {
                out.push('/');
                let start = out.len();
                push_segment(out, seg.as_bytes())?;
                let written = &out[start..];
                if written == "." || written == ".." {
                    return Err(RouteError::DotSegment);
                }
            }
        }
    }
    Ok(match out {
        None => Cow::Borrowed(raw),
        Some(out) if out.is_empty() => Cow::Borrowed("/"),
        Some(out) => Cow::Owned(out),
    })
}

const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";

fn push_segment(out: &mut String, seg: &[u8]) -> Result<(), RouteError> {
    let mut i = 0;
    while i < seg.len() {
        let b = seg[i];
        if !is_path_char(b) {
            return Err(RouteError::InvalidCharacter);
        }
        if b != b'%' {
            out.push(char::from(b));
            i += 1;
            continue;
        }
        let v = hex_pair(seg, i).ok_or(RouteError::InvalidEscape)?;
        if is_unreserved(v) {
            out.push(char::from(v));
        } else if v == b'/' || v == b'\\' || v < 0x20 || v == 0x7f {
            return Err(RouteError::ForbiddenEscape);
        } else {
            out.push('%');
            out.push(char::from(UPPER_HEX[usize::from(v >> 4)]));
            out.push(char::from(UPPER_HEX[usize::from(v & 0xf)]));
        }
        i += 3;
    }
    Ok(())
}

/// Percent-decodes a path capture (normalised paths only hold escapes of reserved or non-ASCII
/// bytes). Borrows when there is nothing to decode.
pub(crate) fn decode_capture(v: &str) -> Result<Cow<'_, str>, RouteError> {
    if !v.contains('%') {
        return Ok(Cow::Borrowed(v));
    }
    percent_encoding::percent_decode_str(v)
        .decode_utf8()
        .map_err(|_| RouteError::InvalidUtf8)
}

/// A raw query string, read as `application/x-www-form-urlencoded` pairs without building a map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Query<'a>(pub &'a str);

impl<'a> Query<'a> {
    /// The raw query string.
    pub fn as_str(&self) -> &'a str {
        self.0
    }

    /// The decoded pairs, in order (names and values form-decoded, lossy for non-UTF-8).
    pub fn pairs(&self) -> Vec<(Cow<'a, str>, Cow<'a, str>)> {
        self.raw_pairs()
            .map(|(n, v)| (form_decode_lossy(n), form_decode_lossy(v)))
            .collect()
    }

    fn raw_pairs(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.0
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap_or((p, "")))
    }

    /// The value of the parameter `name` (compared after decoding). A parameter given more than
    /// once with different values is [`RouteError::AmbiguousQuery`]; the same value repeated is fine.
    pub fn get(&self, name: &str) -> Result<Option<Cow<'a, str>>, RouteError> {
        let mut found: Option<Cow<'a, str>> = None;
        for (n, v) in self.raw_pairs() {
            if !form_decoded_eq(n, name) {
                continue;
            }
            match &found {
                None => found = Some(form_decode(v)?),
                Some(first) => {
                    if !form_decoded_eq(v, first) {
                        return Err(RouteError::AmbiguousQuery(name.to_owned()));
                    }
                }
            }
        }
        Ok(found)
    }
}

/// Iterates the form-decoded bytes of `raw` (`+` is a space; a malformed `%` is kept literally).
fn form_bytes(raw: &str) -> impl Iterator<Item = u8> + '_ {
    let b = raw.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        let c = *b.get(i)?;
        if c == b'%'
            && let Some(v) = hex_pair(b, i)
        {
            i += 3;
            return Some(v);
        }
        i += 1;
        Some(if c == b'+' { b' ' } else { c })
    })
}

fn form_decoded_eq(raw: &str, want: &str) -> bool {
    form_bytes(raw).eq(want.bytes())
}

fn form_decode(raw: &str) -> Result<Cow<'_, str>, RouteError> {
    if !raw.contains(['%', '+']) {
        return Ok(Cow::Borrowed(raw));
    }
    String::from_utf8(form_bytes(raw).collect())
        .map(Cow::Owned)
        .map_err(|_| RouteError::InvalidUtf8)
}

fn form_decode_lossy(raw: &str) -> Cow<'_, str> {
    if !raw.contains(['%', '+']) {
        return Cow::Borrowed(raw);
    }
    let bytes: Vec<u8> = form_bytes(raw).collect();
    Cow::Owned(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
#[path = "normalize_tests.rs"]
mod tests;
