//! The wire-neutral rendering of an [`Outcome`]: the identity headers of an allow and the status,
//! Harness-shaped JSON body and `www-authenticate` of a denial (`docs/wire.md`, the ext_authz
//! table). The gRPC and HTTP front ends both render through here, so the two can never disagree.

use crate::authz::verdict::{Denial, Outcome};

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
/// The `www-authenticate` value sent with a 401 for an expired JWT (RFC 6750 section 3).
pub const WWW_AUTHENTICATE_JWT_EXPIRED: &str =
    "Bearer realm=\"scopegate\", error=\"invalid_token\", error_description=\"The token has expired\"";
/// The `www-authenticate` value sent with a 401 for a JWT that is not valid yet.
pub const WWW_AUTHENTICATE_JWT_NOT_YET_VALID: &str =
    "Bearer realm=\"scopegate\", error=\"invalid_token\", error_description=\"The token is not valid yet\"";
/// The `www-authenticate` value sent with a 401 for any other refused JWT.
pub const WWW_AUTHENTICATE_JWT: &str =
    "Bearer realm=\"scopegate\", error=\"invalid_token\", error_description=\"The token is invalid\"";

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
    /// The HTTP status (401, 403, 400 or 503).
    pub status: u16,
    /// The JSON body (`content-type: application/json`).
    pub body: String,
    /// The `www-authenticate` value, on a 401 only.
    challenge: Option<&'static str>,
}

impl DenialResponse {
    /// The `www-authenticate` value to send, for a 401: the RFC 6750 `Bearer` challenge with
    /// `error="invalid_token"` when a JWT was refused, else `ApiKey realm="scopegate"`. The
    /// description is one of three fixed sentences, never the token or a claim.
    pub fn www_authenticate(&self) -> Option<&'static str> {
        self.challenge
    }
}

/// The challenge of a 401: which scheme was refused decides it.
fn challenge(denial: &Denial) -> Option<&'static str> {
    match denial {
        Denial::MissingCredentials => Some(WWW_AUTHENTICATE),
        Denial::UnknownSigningKey { .. } => Some(WWW_AUTHENTICATE_JWT),
        Denial::InvalidCredentials { reason } => Some(match *reason {
            "jwt_expired" => WWW_AUTHENTICATE_JWT_EXPIRED,
            "jwt_not_yet_valid" => WWW_AUTHENTICATE_JWT_NOT_YET_VALID,
            jwt if jwt.starts_with("jwt_") => WWW_AUTHENTICATE_JWT,
            _ => WWW_AUTHENTICATE,
        }),
        _ => None,
    }
}

/// Renders a denial: status and Harness-shaped body (never a secret or an internal message).
pub fn denial_response(denial: &Denial, decision_id: &str) -> DenialResponse {
    let (status, body_code, message) = match denial {
        Denial::MissingCredentials => (401, "MISSING_CREDENTIALS", "No credentials provided".to_owned()),
        Denial::InvalidCredentials { .. } | Denial::UnknownSigningKey { .. } => {
            (401, "INVALID_CREDENTIALS", "Invalid credentials".to_owned())
        }
        Denial::AccessDenied { check, .. } => (
            403,
            "NG_ACCESS_DENIED",
            format!(
                "Missing permission {} on {}{}",
                check.permission,
                check.resource_type.to_ascii_lowercase(),
                check
                    .resource_id
                    .as_deref()
                    .map(|id| format!(" with identifier {id}"))
                    .unwrap_or_default()
            ),
        ),
        Denial::NoRoute => (403, "NO_ROUTE", "No route matches the request".to_owned()),
        Denial::TokenRestricted => (
            403,
            "NG_ACCESS_DENIED",
            "The API token's permissions do not cover this request".to_owned(),
        ),
        Denial::VerificationBusy => (
            503,
            "SERVICE_UNAVAILABLE",
            "Too many credentials are being verified; retry shortly".to_owned(),
        ),
        Denial::InvalidRequest { .. } => (400, "INVALID_REQUEST", "Malformed request".to_owned()),
        Denial::SnapshotUnavailable { .. } => (
            503,
            "SNAPSHOT_UNAVAILABLE",
            "Access-control data for the account is not available".to_owned(),
        ),
    };
    let mut body = error_body(body_code, &message);
    if let Denial::AccessDenied { check, .. } = denial {
        let mut scope = serde_json::Map::new();
        scope.insert("accountIdentifier".into(), check.account.clone().into());
        if let Some(org) = &check.org {
            scope.insert("orgIdentifier".into(), org.clone().into());
        }
        if let Some(project) = &check.project {
            scope.insert("projectIdentifier".into(), project.clone().into());
        }
        let mut failed = serde_json::json!({
            "permission": check.permission,
            "resourceScope": scope,
            "resourceType": check.resource_type,
        });
        if let (Some(id), Some(obj)) = (&check.resource_id, failed.as_object_mut()) {
            obj.insert("resourceIdentifier".into(), id.clone().into());
        }
        body["failedPermissionChecks"] = serde_json::json!([failed]);
    }
    body["decisionId"] = decision_id.into();
    body["correlationId"] = decision_id.into();
    DenialResponse {
        status,
        body: body.to_string(),
        challenge: challenge(denial),
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
