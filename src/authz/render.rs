//! The wire-neutral rendering of an [`Outcome`]: the identity headers of an allow and the status,
//! Harness-shaped JSON body and `www-authenticate` of a denial (`docs/wire.md`, the ext_authz
//! table). The gRPC and HTTP front ends both render through here, so the two can never disagree.
//!
//! Every denial body names its stable reason code (`reason`), and a Bearer challenge names it in
//! `error_description`: the operator's answer to "why was I denied?", never a secret, a token or
//! anything else the client sent. Bodies are written by hand into one buffer of the right size
//! (the request path's only allocation for a denial body).

use std::sync::RwLock;

use crate::authz::verdict::{Denial, FailedCheck, Outcome};

/// The identity header set on allow.
pub const PRINCIPAL_HEADER: &str = "x-scopegate-principal";
/// The account header set on allow.
pub const ACCOUNT_HEADER: &str = "x-scopegate-account";
/// The decision-id header set on allow.
pub const DECISION_ID_HEADER: &str = "x-scopegate-decision-id";
/// The prefix of every header scopegate owns.
pub const HEADER_PREFIX: &str = "x-scopegate-";
/// The `www-authenticate` value sent with a 401 for a missing credential or a refused API key.
pub const WWW_AUTHENTICATE: &str = "ApiKey realm=\"scopegate\"";
/// The start of the `www-authenticate` value sent with a 401 for a refused JWT (RFC 6750 section
/// 3); `error_description` follows.
pub const WWW_AUTHENTICATE_BEARER: &str = "Bearer realm=\"scopegate\", error=\"invalid_token\"";

/// The headers an allow sets, in order: principal and account when known, then the decision id.
/// Empty for a denial.
pub fn identity_headers<'a>(outcome: &'a Outcome, decision_id: &'a str) -> Vec<(&'static str, &'a str)> {
    let Outcome::Allow {
        principal, account, ..
    } = outcome
    else {
        return Vec::new();
    };
    let mut headers = Vec::with_capacity(3);
    if let Some(principal) = principal {
        headers.push((PRINCIPAL_HEADER, principal.as_str()));
    }
    if let Some(account) = account {
        headers.push((ACCOUNT_HEADER, account.as_str()));
    }
    headers.push((DECISION_ID_HEADER, decision_id));
    headers
}

/// A rendered denial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenialResponse {
    /// The HTTP status (401, 403, 400, 500 or 503).
    pub status: u16,
    /// The JSON body (`content-type: application/json`).
    pub body: String,
    /// The `www-authenticate` value, on a 401 only.
    challenge: Option<&'static str>,
}

impl DenialResponse {
    /// The `www-authenticate` value to send, for a 401: the RFC 6750 `Bearer` challenge with
    /// `error="invalid_token"` when a JWT was refused, else `ApiKey realm="scopegate"`. The
    /// description is a fixed sentence (expired, not valid yet, invalid) and the reason code,
    /// never the token or a claim.
    pub fn www_authenticate(&self) -> Option<&'static str> {
        self.challenge
    }
}

/// Bearer challenges already built, one per reason code (reason codes are `&'static str` of a
/// fixed set, so this stays small; past [`MAX_CHALLENGES`] the challenge goes without the code).
static BEARER_CHALLENGES: RwLock<Vec<(&'static str, &'static str)>> = RwLock::new(Vec::new());
const MAX_CHALLENGES: usize = 64;

/// The Bearer challenge naming `reason`, built once per reason code.
fn bearer_challenge(reason: &'static str) -> &'static str {
    let sentence = match reason {
        "jwt_expired" => "The token has expired",
        "jwt_not_yet_valid" => "The token is not valid yet",
        _ => "The token is invalid",
    };
    if let Ok(built) = BEARER_CHALLENGES.read()
        && let Some((_, challenge)) = built.iter().find(|(r, _)| *r == reason)
    {
        return challenge;
    }
    let Ok(mut built) = BEARER_CHALLENGES.write() else {
        return "Bearer realm=\"scopegate\", error=\"invalid_token\"";
    };
    if let Some((_, challenge)) = built.iter().find(|(r, _)| *r == reason) {
        return challenge;
    }
    if built.len() >= MAX_CHALLENGES {
        return "Bearer realm=\"scopegate\", error=\"invalid_token\"";
    }
    // only codes made of RFC 6750's description characters (ours always are) are quoted
    let code = if reason.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        reason
    } else {
        "jwt_invalid"
    };
    let challenge: &'static str = Box::leak(
        format!("{WWW_AUTHENTICATE_BEARER}, error_description=\"{sentence} ({code})\"").into_boxed_str(),
    );
    built.push((reason, challenge));
    challenge
}

/// The challenge of a 401: which scheme was refused decides it.
fn challenge(denial: &Denial) -> Option<&'static str> {
    match denial {
        Denial::MissingCredentials => Some(WWW_AUTHENTICATE),
        Denial::UnknownSigningKey { .. } => Some(bearer_challenge(denial.reason())),
        Denial::InvalidCredentials { reason } if reason.starts_with("jwt_") => Some(bearer_challenge(reason)),
        Denial::InvalidCredentials { .. } => Some(WWW_AUTHENTICATE),
        _ => None,
    }
}

/// The HTTP status, body `code` and fixed `message` of a denial (the 403 of a failed check has
/// its own message, [`write_missing_permission`]).
fn status_code_message(denial: &Denial) -> (u16, &'static str, &'static str) {
    match denial {
        Denial::MissingCredentials => (401, "MISSING_CREDENTIALS", "No credentials provided"),
        Denial::InvalidCredentials { .. } | Denial::UnknownSigningKey { .. } => {
            (401, "INVALID_CREDENTIALS", "Invalid credentials")
        }
        Denial::AccessDenied { .. } => (403, "NG_ACCESS_DENIED", ""),
        Denial::NoRoute => (403, "NO_ROUTE", "No route matches the request"),
        Denial::TokenRestricted => (
            403,
            "NG_ACCESS_DENIED",
            "The API token's permissions do not cover this request",
        ),
        Denial::VerificationBusy => (
            503,
            "SERVICE_UNAVAILABLE",
            "Too many credentials are being verified; retry shortly",
        ),
        Denial::InvalidRequest { .. } => (400, "INVALID_REQUEST", "Malformed request"),
        Denial::SnapshotUnavailable { .. } => (
            503,
            "SNAPSHOT_UNAVAILABLE",
            "Access-control data for the account is not available",
        ),
        Denial::AccountUnknown { .. } => (
            503,
            "SNAPSHOT_UNAVAILABLE",
            "The account is unknown to this authorization sidecar",
        ),
        Denial::RevisionBehind { .. } => (
            503,
            "SNAPSHOT_UNAVAILABLE",
            "Access-control data for the account has not reached the revision asked for; retry shortly",
        ),
        Denial::OperatorError { .. } => (
            500,
            "CONFIGURATION_ERROR",
            "The proxy's authorization configuration names a permission or resource type that is not in the catalog",
        ),
    }
}

/// Renders a denial: status and Harness-shaped body (never a secret or an internal message).
pub fn denial_response(denial: &Denial, decision_id: &str) -> DenialResponse {
    let (status, code, message) = status_code_message(denial);
    let reason = denial.reason();
    let mut body = String::with_capacity(match denial {
        Denial::AccessDenied { check, .. } => 320 + check.text_len() * 2,
        _ => 160 + message.len(),
    });
    body.push_str("{\"status\":\"ERROR\",\"code\":\"");
    body.push_str(code);
    body.push_str("\",\"message\":");
    match denial {
        Denial::AccessDenied { check, .. } => write_missing_permission(&mut body, check),
        _ => push_json_str(&mut body, message),
    }
    body.push_str(",\"reason\":");
    push_json_str(&mut body, reason);
    if let Denial::AccessDenied { check, .. } = denial {
        write_failed_check(&mut body, check);
    }
    body.push_str(",\"decisionId\":");
    push_json_str(&mut body, decision_id);
    body.push_str(",\"correlationId\":");
    push_json_str(&mut body, decision_id);
    body.push('}');
    DenialResponse {
        status,
        body,
        challenge: challenge(denial),
    }
}

/// `"Missing permission <p> on <type in lower case>[ with identifier <id>]"`, as a JSON string.
fn write_missing_permission(body: &mut String, check: &FailedCheck) {
    body.push('"');
    push_json_inner(body, "Missing permission ");
    push_json_inner(body, &check.permission);
    push_json_inner(body, " on ");
    for c in check.resource_type.chars() {
        push_json_char(body, c.to_ascii_lowercase());
    }
    if let Some(id) = &check.resource_id {
        push_json_inner(body, " with identifier ");
        push_json_inner(body, id);
    }
    body.push('"');
}

/// `,"failedPermissionChecks":[{…}]`: the check, its scope and resource (absent parts left out).
fn write_failed_check(body: &mut String, check: &FailedCheck) {
    body.push_str(",\"failedPermissionChecks\":[{\"permission\":");
    push_json_str(body, &check.permission);
    body.push_str(",\"resourceScope\":{\"accountIdentifier\":");
    push_json_str(body, &check.account);
    if let Some(org) = &check.org {
        body.push_str(",\"orgIdentifier\":");
        push_json_str(body, org);
    }
    if let Some(project) = &check.project {
        body.push_str(",\"projectIdentifier\":");
        push_json_str(body, project);
    }
    body.push_str("},\"resourceType\":");
    push_json_str(body, &check.resource_type);
    if let Some(id) = &check.resource_id {
        body.push_str(",\"resourceIdentifier\":");
        push_json_str(body, id);
    }
    body.push_str("}]");
}

/// `value` as a JSON string literal (quotes included).
pub fn push_json_str(out: &mut String, value: &str) {
    out.push('"');
    push_json_inner(out, value);
    out.push('"');
}

/// `value` escaped for the inside of a JSON string literal.
fn push_json_inner(out: &mut String, value: &str) {
    let mut start = 0;
    for (i, b) in value.bytes().enumerate() {
        if b == b'"' || b == b'\\' || b < 0x20 {
            out.push_str(&value[start..i]);
            escape_byte(out, b);
            start = i + 1;
        }
    }
    out.push_str(&value[start..]);
}

fn push_json_char(out: &mut String, c: char) {
    if c.is_ascii() && (c == '"' || c == '\\' || (c as u8) < 0x20) {
        escape_byte(out, c as u8);
    } else {
        out.push(c);
    }
}

fn escape_byte(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match b {
        b'"' => out.push_str("\\\""),
        b'\\' => out.push_str("\\\\"),
        b'\n' => out.push_str("\\n"),
        b'\r' => out.push_str("\\r"),
        b'\t' => out.push_str("\\t"),
        _ => {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

/// `{"status":"ERROR","code":…,"message":…}`: the Harness error shape (its `Failure` model; a
/// denial adds `correlationId`, equal to `decisionId`), for front ends that report
/// their own errors (a malformed batch request) in the same form as denials.
pub fn error_body(code: &str, message: &str) -> serde_json::Value {
    serde_json::json!({
        "status": "ERROR",
        "code": code,
        "message": message,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "render_tests.rs"]
mod tests;
