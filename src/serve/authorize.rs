//! The request policy, free of any wire format: credential → route → account → principal →
//! decision. [`authorize`] reads the shared [`State`] and returns an [`Outcome`]; the Envoy (and
//! later HTTP) front ends only map requests in and outcomes out.

use std::time::{SystemTime, UNIX_EPOCH};

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::authn::api_key::check_token;
use crate::authn::jwt::{JwtIdentity, PrincipalKind, looks_like_jwt, principal_in};
use crate::authn::{ParsedToken, TokenError, parse_token, verify_secret};
use crate::jwks::JwtFailure;
use crate::rbac::compiled::{PrincipalId, SecretHash};
use crate::rbac::ids::PermissionSet;
use crate::rbac::{Check, CompiledAccount, Principal, decide};
use crate::route::{RouteDecision, RouteRequest, Scope};
use crate::serve::verified_tokens::SecretCheck;
use crate::serve::{Detail, State};

/// The longest credential header value accepted; a longer one is a malformed credential. JWTs have
/// their own, configurable and smaller, limit (`jwt.max_token_bytes`).
pub const MAX_CREDENTIAL_HEADER: usize = 16 * 1024;

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
    /// JWT claims a trusted proxy already verified (Envoy `jwt_authn` metadata), used instead of
    /// the request's credential when JWT issuers are configured.
    pub verified_claims: Option<&'a Map<String, Value>>,
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
    /// The account's snapshot is not loaded (503 `SNAPSHOT_UNAVAILABLE`); a front end may
    /// [`State::load_account`] it and authorize again.
    SnapshotUnavailable {
        /// The account that was wanted.
        account: String,
    },
    /// The API token is valid but its permission subset does not cover the request: a route that
    /// needs only authentication, which a subset token is not given (403 `NG_ACCESS_DENIED`).
    TokenRestricted,
    /// Too many slow (bcrypt) secret checks are running to verify this one now (503); retry.
    VerificationBusy,
    /// A JWT names a signing key its issuer has not published (401 `INVALID_CREDENTIALS`). The
    /// front end may refetch the issuer's keys ([`State::fetch_missing`]) and ask once more.
    UnknownSigningKey {
        /// The issuer's index in the configuration.
        issuer: usize,
        /// The token's `kid`.
        kid: Option<Box<str>>,
    },
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
            Self::SnapshotUnavailable { .. } => "snapshot_unavailable",
            Self::TokenRestricted => "token_subset_excludes_route",
            Self::VerificationBusy => "verification_busy",
            Self::UnknownSigningKey { .. } => "jwt_unknown_key",
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

fn invalid_credentials(reason: &'static str) -> Outcome {
    deny(Denial::InvalidCredentials { reason })
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

/// The current time in Unix seconds (0 before 1970, saturating).
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Decides one request.
pub fn authorize<'a>(state: &'a State, req: &Request<'a>) -> Outcome {
    authorize_at(state, req, now_unix())
}

/// A presented credential, parsed (API key) or verified (JWT) as far as possible before routing.
enum Credential<'a> {
    ApiKey { token: ParsedToken<'a> },
    Jwt(Result<Arc<JwtIdentity>, JwtFailure>),
}

impl Credential<'_> {
    /// The account the credential names, which routes without an account in the URL use.
    fn account(&self) -> Option<&str> {
        match self {
            Self::ApiKey { token, .. } => token.account,
            Self::Jwt(Ok(identity)) => identity.account.as_deref(),
            Self::Jwt(Err(_)) => None,
        }
    }

    /// Refuses a credential that names another account than the request's, before anything is
    /// looked up or loaded for the request's account: a token of `acme` used for `other` is a 401,
    /// never a snapshot load.
    fn fits_account(&self, account: &str) -> Result<(), Refused> {
        match (self, self.account()) {
            (Self::ApiKey { .. }, Some(own)) if own != account => {
                Err(Refused::Invalid(TokenError::AccountMismatch.code()))
            }
            (Self::Jwt(_), Some(own)) if own != account => {
                Err(Refused::Invalid(crate::authn::JwtError::AccountMismatch.code()))
            }
            _ => Ok(()),
        }
    }
}

/// Reads the credential: trusted proxy-verified claims first, else the request's header.
fn read_credential<'a>(
    state: &State,
    headers: &dyn Fn(&str) -> Option<&'a str>,
    verified_claims: Option<&Map<String, Value>>,
    now: i64,
) -> Option<Result<Credential<'a>, Outcome>> {
    if let (Some(claims), Some(jwt)) = (verified_claims, state.jwt()) {
        let identity = jwt
            .identify_claims(claims)
            .map(Arc::new)
            .map_err(JwtFailure::Invalid);
        return Some(Ok(Credential::Jwt(identity)));
    }
    Some(match credential(headers)? {
        Err(error) => Err(invalid_credentials(error.code())),
        Ok(raw) if looks_like_jwt(raw) => match state.jwt() {
            Some(jwt) => Ok(Credential::Jwt(jwt.identify(raw, now))),
            None => Err(invalid_credentials("jwt_not_configured")),
        },
        Ok(raw) => parse_token(raw)
            .map(|token| Credential::ApiKey { token })
            .map_err(|error| invalid_credentials(error.code())),
    })
}

/// The header lookup with its lifetime shortened to a local borrow, so the route request can also
/// borrow the locally held credential (the trait object's lifetime is otherwise invariant).
fn reborrow<'s, 'a: 's>(
    headers: &'s (dyn Fn(&str) -> Option<&'a str> + 's),
) -> impl Fn(&str) -> Option<&'s str> + Copy + 's {
    move |name| headers(name)
}

/// [`authorize`] at a given time (Unix seconds).
pub fn authorize_at<'a>(state: &'a State, req: &Request<'a>, now: i64) -> Outcome {
    authorize_detailed(state, req, now, None)
}

/// [`authorize_at`], also filling `detail` (when given) with what the decision looked at, for the
/// audit log.
pub fn authorize_detailed<'a>(
    state: &'a State,
    req: &Request<'a>,
    now: i64,
    mut detail: Option<&mut Detail>,
) -> Outcome {
    let credential = read_credential(state, req.headers, req.verified_claims, now);
    if let (Some(detail), Some(Ok(credential))) = (detail.as_deref_mut(), &credential) {
        describe_credential(state, credential, detail);
    }
    let credential_account = match &credential {
        Some(Ok(credential)) => credential.account(),
        _ => None,
    };
    let headers = reborrow(req.headers);
    let route = match state.routes().resolve(&RouteRequest {
        method: req.method,
        path: req.path,
        headers: &headers,
        credential_account,
        permission_override: req.permission_override,
    }) {
        Ok(route) => route,
        Err(error) => {
            return deny(Denial::InvalidRequest { reason: error.code() });
        }
    };
    if let Some(detail) = detail.as_deref_mut() {
        detail.describe_route(&route);
    }
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
    let credential = match &credential {
        None => return deny(Denial::MissingCredentials),
        Some(Err(outcome)) => return outcome.clone(),
        // a refused JWT is answered before the account is looked for (it may be what names it)
        Some(Ok(Credential::Jwt(Err(failure)))) => return jwt_refusal(failure).into_outcome(),
        Some(Ok(credential)) => credential,
    };
    let Some(account_id) = scope.account.as_deref().or(credential.account()) else {
        return deny(Denial::InvalidRequest { reason: "no_account" });
    };
    if let Err(refused) = credential.fits_account(account_id) {
        return refused.into_outcome();
    }
    if let Some(detail) = detail.as_deref_mut() {
        detail.account = Some(account_id.to_owned());
    }
    let Some(account) = state.account(account_id) else {
        return deny(Denial::SnapshotUnavailable {
            account: account_id.to_owned(),
        });
    };
    let (principal_id, token_permissions) = match authenticate(state, &account, credential, now) {
        Ok(found) => found,
        Err(refused) => return refused.into_outcome(),
    };
    let principal_label = account.principal_label(principal_id);
    if let Some(detail) = detail.as_deref_mut() {
        detail.principal = Some(principal_label.clone());
    }
    let principal = Principal {
        id: principal_id,
        token_permissions,
    };
    let RouteDecision::Permission {
        permission,
        resource_type,
        resource_id,
        ..
    } = &route
    else {
        if token_permissions.is_some() {
            return deny(Denial::TokenRestricted);
        }
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
    if let Some(detail) = detail
        && detail.resource_type.is_none()
    {
        detail.resource_type = Some(catalog.resource_type_name(type_id).to_owned());
    }
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
    let decision = decide(&account, &principal, &check);
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

/// Names the credential in `detail`: an API key by its id, a verified JWT by issuer and principal.
fn describe_credential(state: &State, credential: &Credential<'_>, detail: &mut Detail) {
    match credential {
        Credential::ApiKey { token, .. } => detail.token_id = Some(token.id.to_owned()),
        Credential::Jwt(Ok(identity)) => {
            detail.issuer = state
                .jwt()
                .and_then(|jwt| jwt.policies().get(identity.issuer))
                .map(|policy| policy.issuer.clone());
            let kind = match identity.kind {
                PrincipalKind::User => "USER",
                PrincipalKind::ServiceAccount => "SERVICE_ACCOUNT",
            };
            detail.principal = Some(format!("{kind}:{}", identity.principal));
        }
        Credential::Jwt(Err(_)) => {}
    }
}

/// A verified caller: the account whose snapshot vouched for it and the principal.
#[derive(Debug, Clone)]
pub struct Authenticated<'a> {
    /// The caller's account.
    pub account: Arc<CompiledAccount>,
    /// The user or service account.
    pub id: PrincipalId,
    /// The API token's `<token-id>`, whose permission subset (if any) bounds the principal; `None`
    /// for a JWT.
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

/// Credential → principal for front ends that are not a routed request (the batch access check):
/// the credential's own account, else `account_hint`, at `now`. JWT keys are not refetched here.
#[allow(clippy::result_large_err)] // the Err is rendered at once; boxing would only add an allocation
pub fn authenticate_caller<'a>(
    state: &State,
    headers: &dyn Fn(&str) -> Option<&'a str>,
    account_hint: Option<&str>,
    now: i64,
) -> Result<Authenticated<'a>, Denial> {
    let outcome_to_denial = |outcome: Outcome| match outcome {
        Outcome::Deny(denial) => denial,
        Outcome::Allow { .. } => Denial::MissingCredentials,
    };
    let credential = match read_credential(state, headers, None, now) {
        None => return Err(Denial::MissingCredentials),
        Some(Err(outcome)) => return Err(outcome_to_denial(outcome)),
        Some(Ok(Credential::Jwt(Err(failure)))) => {
            return Err(outcome_to_denial(jwt_refusal(&failure).into_outcome()));
        }
        Some(Ok(credential)) => credential,
    };
    let Some(account_id) = credential.account().or(account_hint) else {
        return Err(Denial::InvalidRequest { reason: "no_account" });
    };
    if let Err(refused) = credential.fits_account(account_id) {
        return Err(outcome_to_denial(refused.into_outcome()));
    }
    let Some(account) = state.account(account_id) else {
        return Err(Denial::SnapshotUnavailable {
            account: account_id.to_owned(),
        });
    };
    let id = match authenticate(state, &account, &credential, now) {
        Ok((id, _)) => id,
        Err(refused) => return Err(outcome_to_denial(refused.into_outcome())),
    };
    let token_id = match &credential {
        Credential::ApiKey { token, .. } => Some(token.id),
        Credential::Jwt(_) => None,
    };
    Ok(Authenticated {
        account,
        id,
        token_id,
    })
}

/// The principal a credential names in `account`, and the permission subset of its API key.
fn authenticate<'acc>(
    state: &State,
    account: &'acc CompiledAccount,
    credential: &Credential<'_>,
    now: i64,
) -> Result<(PrincipalId, Option<&'acc PermissionSet>), Refused> {
    match credential {
        Credential::ApiKey { token } => api_key_principal(state, account, token, now),
        Credential::Jwt(Err(failure)) => Err(jwt_refusal(failure)),
        Credential::Jwt(Ok(identity)) => principal_in(account, identity)
            .map(|principal| (principal, None))
            .map_err(|error| Refused::Invalid(error.code())),
    }
}

/// A refused credential, small enough to pass around by value; becomes a 401 [`Denial`].
enum Refused {
    /// Refused with this reason code.
    Invalid(&'static str),
    /// Too many slow secret checks are running.
    Busy,
    /// A JWT names a signing key not published yet.
    UnknownSigningKey { issuer: usize, kid: Option<Box<str>> },
}

impl Refused {
    fn into_outcome(self) -> Outcome {
        match self {
            Self::Invalid(reason) => invalid_credentials(reason),
            Self::Busy => deny(Denial::VerificationBusy),
            Self::UnknownSigningKey { issuer, kid } => deny(Denial::UnknownSigningKey { issuer, kid }),
        }
    }
}

fn jwt_refusal(failure: &JwtFailure) -> Refused {
    match failure {
        JwtFailure::NeedKeys { issuer, kid } => Refused::UnknownSigningKey {
            issuer: *issuer,
            kid: kid.clone(),
        },
        JwtFailure::Invalid(error) => Refused::Invalid(error.code()),
    }
}

fn api_key_principal<'acc>(
    state: &State,
    account: &'acc CompiledAccount,
    token: &ParsedToken<'_>,
    now: i64,
) -> Result<(PrincipalId, Option<&'acc PermissionSet>), Refused> {
    let node = check_token(account, token, now).map_err(|error| Refused::Invalid(error.code()))?;
    let checked = state.token_cache().check(
        account.account(),
        token.id,
        token.secret,
        &node.secret_hash,
        verify_without_stalling_the_runtime,
    );
    state.metrics().token_cache_lookup("api_key", checked.cache_hit);
    match checked.result {
        SecretCheck::Valid => Ok((node.principal, node.permissions.as_ref())),
        SecretCheck::Invalid => Err(Refused::Invalid(TokenError::SecretMismatch.code())),
        SecretCheck::Busy => Err(Refused::Busy),
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
