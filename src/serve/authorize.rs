//! The request policy, free of any wire format: credential → route → account → principal →
//! decision. [`authorize`] reads the shared [`State`] and returns an [`Outcome`]; the Envoy (and
//! later HTTP) front ends only map requests in and outcomes out.

use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::authn::api_key::check_token;
use crate::authn::{ParsedToken, TokenError, parse_token, verify_secret};
use crate::rbac::compiled::SecretHash;
use crate::rbac::{Check, Principal, decide};
use crate::route::{RouteDecision, RouteRequest, Scope};
use crate::serve::{State, VerifiedToken};

/// The longest credential header value accepted; a longer one is a malformed credential.
pub const MAX_CREDENTIAL_HEADER: usize = 4096;

/// A request to authorize, borrowed from whatever carried it.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The raw request target, query string included.
    pub path: &'a str,
    /// Looks a header up by its lower-case name.
    pub headers: &'a dyn Fn(&str) -> Option<&'a str>,
    /// A permission replacing the route's (Envoy's `context_extensions.permission`).
    pub permission_override: Option<&'a str>,
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("permission_override", &self.permission_override)
            .finish_non_exhaustive()
    }
}

/// The check that failed, named for the Harness-shaped denial body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedCheck {
    /// The permission ID.
    pub permission: String,
    /// The account identifier.
    pub account: String,
    /// The org identifier, if any.
    pub org: Option<String>,
    /// The project identifier, if any.
    pub project: Option<String>,
    /// The resource type name.
    pub resource_type: String,
    /// The resource identifier, if any.
    pub resource_id: Option<String>,
}

/// Why a request is denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// No credential was presented (401 `MISSING_CREDENTIALS`).
    MissingCredentials,
    /// The credential is malformed, unknown, expired, of another account or of a disabled owner
    /// (401 `INVALID_CREDENTIALS`); `reason` is a stable code for logs, never shown to clients.
    InvalidCredentials {
        /// The stable reason code.
        reason: &'static str,
    },
    /// The principal lacks the permission (403 `NG_ACCESS_DENIED`).
    AccessDenied {
        /// The failed check.
        check: FailedCheck,
        /// The decision's reason code.
        reason: &'static str,
    },
    /// No route matches and the table denies unmatched requests (403 `NO_ROUTE`).
    NoRoute,
    /// The request is malformed (400 `INVALID_REQUEST`); `reason` is a stable code.
    InvalidRequest {
        /// The stable reason code.
        reason: &'static str,
    },
    /// The account's snapshot is not loaded (503 `SNAPSHOT_UNAVAILABLE`).
    SnapshotUnavailable,
}

impl Denial {
    /// The stable reason code for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingCredentials => "missing_credentials",
            Self::InvalidCredentials { reason }
            | Self::AccessDenied { reason, .. }
            | Self::InvalidRequest { reason } => reason,
            Self::NoRoute => "no_route",
            Self::SnapshotUnavailable => "snapshot_unavailable",
        }
    }
}

/// The answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Allowed.
    Allow {
        /// `USER:alice` / `SERVICE_ACCOUNT:ci_bot`; `None` for a public route.
        principal: Option<String>,
        /// The account, when known.
        account: Option<String>,
        /// The permission checked, if any.
        permission: Option<String>,
        /// The reason code (`public`, `authenticated`, `granted`, `implicit`).
        reason: &'static str,
    },
    /// Denied.
    Deny(Denial),
}

impl Outcome {
    /// The stable reason code.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Allow { reason, .. } => reason,
            Self::Deny(denial) => denial.reason(),
        }
    }
}

fn deny(denial: Denial) -> Outcome {
    Outcome::Deny(denial)
}

/// The credential string from `x-api-key`, or `authorization: Bearer <t>` / `ApiKey <t>`.
/// `Some(Err)` for a header that is present but unusable.
fn credential<'a>(headers: &dyn Fn(&str) -> Option<&'a str>) -> Option<Result<&'a str, TokenError>> {
    let raw = if let Some(key) = headers("x-api-key") {
        key.trim()
    } else {
        let value = headers("authorization")?.trim();
        let Some((scheme, token)) = value.split_once(' ') else {
            return Some(Err(TokenError::Malformed("unsupported authorization scheme")));
        };
        if !scheme.eq_ignore_ascii_case("bearer") && !scheme.eq_ignore_ascii_case("apikey") {
            return Some(Err(TokenError::Malformed("unsupported authorization scheme")));
        }
        token.trim()
    };
    if raw.len() > MAX_CREDENTIAL_HEADER {
        return Some(Err(TokenError::Malformed("too long")));
    }
    if raw.is_empty() {
        return Some(Err(TokenError::Malformed("empty")));
    }
    Some(Ok(raw))
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Decides one request.
pub fn authorize<'a>(state: &'a State, req: &Request<'a>) -> Outcome {
    authorize_at(state, req, now_unix())
}

/// The credential a request presents, read from its headers and parsed: `None` when there is none,
/// `Some(Err)` when it is unusable, else the raw string and its parts.
pub type Credential<'a> = Option<Result<(&'a str, ParsedToken<'a>), TokenError>>;

/// Reads and parses the request's credential (`x-api-key`, or `authorization: Bearer|ApiKey`).
pub fn parse_credential<'a>(headers: &dyn Fn(&str) -> Option<&'a str>) -> Credential<'a> {
    credential(headers).map(|r| r.and_then(|raw| parse_token(raw).map(|p| (raw, p))))
}

/// A verified caller: the account whose snapshot vouched for it and the principal.
#[derive(Debug, Clone)]
pub struct Authenticated<'a> {
    /// The caller's account.
    pub account: std::sync::Arc<crate::rbac::CompiledAccount>,
    /// The user or service account.
    pub id: crate::rbac::PrincipalId,
    /// The API token's `<token-id>`, whose permission subset (if any) bounds the principal.
    pub token_id: Option<&'a str>,
}

impl Authenticated<'_> {
    /// The principal for [`decide`], with the token's permission subset.
    pub fn principal(&self) -> Principal<'_> {
        Principal {
            id: self.id,
            token_permissions: self
                .token_id
                .and_then(|id| self.account.token(id))
                .and_then(|node| node.permissions.as_ref()),
        }
    }
}

/// Credential → principal: checks the credential against the snapshot of `account_id` (else the
/// token's own account) at `now`, verifying the secret once per token and caching the result.
#[allow(clippy::result_large_err)] // the Err is moved straight into `Outcome::Deny`, which holds it unboxed
pub fn authenticate<'a>(
    state: &State,
    credential: Credential<'a>,
    account_id: Option<&str>,
    now: i64,
) -> Result<Authenticated<'a>, Denial> {
    let invalid = |error: &TokenError| Denial::InvalidCredentials { reason: error.code() };
    let (raw, token) = match credential {
        None => return Err(Denial::MissingCredentials),
        Some(Err(error)) => return Err(invalid(&error)),
        Some(Ok(pair)) => pair,
    };
    let Some(account_id) = account_id.or(token.account) else {
        return Err(Denial::InvalidRequest { reason: "no_account" });
    };
    let Some(account) = state.account(account_id) else {
        return Err(Denial::SnapshotUnavailable);
    };
    let node = check_token(&account, &token, now).map_err(|e| invalid(&e))?;
    let digest: [u8; 32] = Sha256::digest(raw.as_bytes()).into();
    let cached = state
        .token_cache()
        .get(&digest)
        .is_some_and(|v| v.account_version == account.version() && *v.token_id == *token.id);
    if !cached {
        if !verify_without_stalling_the_runtime(&node.secret_hash, token.secret) {
            return Err(invalid(&TokenError::SecretMismatch));
        }
        state.token_cache().insert(
            digest,
            VerifiedToken {
                account_version: account.version(),
                token_id: token.id.into(),
            },
        );
    }
    let id = node.principal;
    Ok(Authenticated {
        account,
        id,
        token_id: Some(token.id),
    })
}

/// [`authorize`] at a given time (Unix seconds).
pub fn authorize_at<'a>(state: &'a State, req: &Request<'a>, now: i64) -> Outcome {
    let parsed = parse_credential(req.headers);
    let credential_account = match &parsed {
        Some(Ok((_, token))) => token.account,
        _ => None,
    };
    let route = match state.routes().resolve(&RouteRequest {
        method: req.method,
        path: req.path,
        headers: req.headers,
        credential_account,
        permission_override: req.permission_override,
    }) {
        Ok(route) => route,
        Err(error) => {
            return deny(Denial::InvalidRequest { reason: error.code() });
        }
    };
    let scope = match &route {
        RouteDecision::Public { .. } => {
            return Outcome::Allow {
                principal: None,
                account: None,
                permission: None,
                reason: "public",
            };
        }
        RouteDecision::Unmatched {
            allow_authenticated: false,
            ..
        } => return deny(Denial::NoRoute),
        RouteDecision::Authenticated { scope, .. }
        | RouteDecision::Permission { scope, .. }
        | RouteDecision::Unmatched { scope, .. } => scope,
    };
    let caller = match authenticate(state, parsed, scope.account.as_deref(), now) {
        Ok(caller) => caller,
        Err(denial) => return deny(denial),
    };
    let account = &caller.account;
    let principal = caller.principal();
    let principal_label = account.principal_label(caller.id);
    let RouteDecision::Permission {
        permission,
        resource_type,
        resource_id,
        ..
    } = &route
    else {
        return Outcome::Allow {
            principal: Some(principal_label),
            account: Some(account.account().to_owned()),
            permission: None,
            reason: "authenticated",
        };
    };
    let catalog = account.catalog();
    let Some(permission_id) = catalog.permission_id(permission) else {
        return deny(Denial::InvalidRequest {
            reason: "unknown_permission",
        });
    };
    let type_id = match resource_type {
        Some(name) => catalog.resource_type_id(name),
        None => catalog.permission(permission_id).map(|p| p.resource_type),
    };
    let Some(type_id) = type_id else {
        return deny(Denial::InvalidRequest {
            reason: "unknown_resource_type",
        });
    };
    let failed = |reason: &'static str| {
        deny(Denial::AccessDenied {
            check: failed_check(
                account.account(),
                scope,
                permission,
                catalog.resource_type_name(type_id),
                resource_id.as_deref(),
            ),
            reason,
        })
    };
    let Some(scope_id) = account.resolve_scope(scope.org.as_deref(), scope.project.as_deref()) else {
        return failed("unknown_scope");
    };
    let check = Check {
        scope: scope_id,
        permission: permission_id,
        resource_type: type_id,
        resource_id: resource_id.as_deref(),
    };
    let decision = decide(account, &principal, &check);
    if decision.allowed {
        Outcome::Allow {
            principal: Some(principal_label),
            account: Some(account.account().to_owned()),
            permission: Some((*permission).to_owned()),
            reason: decision.reason.code(),
        }
    } else {
        failed(decision.reason.code())
    }
}

fn failed_check(
    account: &str,
    scope: &Scope<'_>,
    permission: &str,
    resource_type: &str,
    resource_id: Option<&str>,
) -> FailedCheck {
    FailedCheck {
        permission: permission.to_owned(),
        account: account.to_owned(),
        org: scope.org.as_deref().map(str::to_owned),
        project: scope.project.as_deref().map(str::to_owned),
        resource_type: resource_type.to_owned(),
        resource_id: resource_id.map(str::to_owned),
    }
}

/// Checks a secret against its hash. bcrypt takes tens of milliseconds, so on a multi-threaded tokio
/// runtime it runs under `block_in_place`: the worker hands its other tasks to its peers first and
/// in-flight checks of other requests keep flowing. SHA-256 runs inline.
fn verify_without_stalling_the_runtime(hash: &SecretHash, secret: &str) -> bool {
    let slow = matches!(hash, SecretHash::Bcrypt(_));
    let on_multi_thread = slow
        && tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if on_multi_thread {
        tokio::task::block_in_place(|| verify_secret(hash, secret))
    } else {
        verify_secret(hash, secret)
    }
}
