//! `POST /authz/api/acl` (wire.md "Batch access check"): the Harness access-check request answered
//! in request order, so a service can filter a list locally. The caller authenticates like any
//! request ([`authenticate_caller`]); asking about another principal takes `core_user_view` (users, in each
//! scope asked about) or `core_serviceaccount_view` (service accounts, at account level, the only
//! level the catalog grants it at). Each entry is decided by [`decide`]; an entry naming an unknown
//! permission, resource type, scope or another account is `permitted: false`, not an error.
//!
//! A credential header given more than once or not visible ASCII is a 400 (`ambiguous_header`,
//! `invalid_header_value`): the first value is not necessarily the one another reader takes.
//!
//! Each call is one decision for metrics and the audit log (front end `acl`): `allow` with reason
//! `access_check` and the number of checks asked when answered, else the refusal's reason. Entries
//! are not audited one by one, and dry-run mode does not change answers (they enforce nothing).

use std::collections::HashSet;

use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::{CheckedHeaders, header_str, json_response};
use crate::rbac::{Check, CompiledAccount, Principal, PrincipalId, ScopeId, decide};
use crate::serve::authorize::authenticate_caller;
use crate::serve::observe::{Observed, finish};
use crate::serve::response::{denial_response, error_body};
use crate::serve::{Denial, Detail, FailedCheck, Outcome, State};

/// The most checks one call may ask.
pub const MAX_CHECKS: usize = 10_000;
/// The view permission needed to ask about another user.
pub const USER_VIEW: &str = "core_user_view";
/// The view permission needed to ask about another service account.
pub const SERVICE_ACCOUNT_VIEW: &str = "core_serviceaccount_view";

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AclRequest {
    /// Whom to ask about; default: the caller.
    #[serde(default)]
    pub principal: Option<PrincipalRef>,
    /// The checks, answered in this order.
    pub permissions: Vec<PermissionCheck>,
}

/// A principal by type and identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalRef {
    /// The user's or service account's identifier.
    pub principal_identifier: String,
    /// `USER` or `SERVICE_ACCOUNT`.
    pub principal_type: String,
}

/// A scope named by identifiers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceScope {
    /// The account.
    pub account_identifier: String,
    /// The org, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_identifier: Option<String>,
    /// The project, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_identifier: Option<String>,
}

/// One check asked.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionCheck {
    /// Where.
    pub resource_scope: ResourceScope,
    /// The resource type (`PIPELINE`).
    pub resource_type: String,
    /// The resource, absent for create and list.
    #[serde(default)]
    pub resource_identifier: Option<String>,
    /// The permission ID.
    pub permission: String,
}

/// One answer: the check asked and whether it is permitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessControl {
    /// The permission ID asked.
    pub permission: String,
    /// The scope asked.
    pub resource_scope: ResourceScope,
    /// The resource type asked.
    pub resource_type: String,
    /// The resource asked (`null` when none).
    pub resource_identifier: Option<String>,
    /// The answer.
    pub permitted: bool,
}

/// The reason code of an answered call.
pub const ANSWERED: &str = "access_check";

/// Answers one call, first loading the caller's account when a control plane serves it and it is not
/// loaded yet (single-flight and bounded, like the Check path).
pub async fn handle_loading(state: &State, headers: &HeaderMap, body: &[u8]) -> Response {
    match handle(state, headers, body, true) {
        Ok(response) => response,
        Err(account) => {
            state.load_account(&account).await;
            handle(state, headers, body, false).unwrap_or_else(|_| invalid("account not available"))
        }
    }
}

/// Answers one call: parses, authenticates, checks the right to ask, decides each entry; counts
/// and audits the call as one decision. With `may_defer`, an account that is not loaded yet is
/// returned as `Err(account)` (neither counted nor audited) for the caller to load and ask again.
pub fn handle(state: &State, headers: &HeaderMap, body: &[u8], may_defer: bool) -> Result<Response, String> {
    let started = std::time::Instant::now();
    let decision_id = state.next_decision_id();
    let lookup = |name: &str| header_str(headers, name);
    let span = crate::telemetry::check_span("acl", &lookup);
    let mut detail = Detail::default();
    let (response, outcome) = span.in_scope(|| answer(state, headers, body, &decision_id, &mut detail));
    if may_defer && let Outcome::Deny(Denial::SnapshotUnavailable { account }) = &outcome {
        return Err(account.clone());
    }
    let observed = Observed {
        frontend: "acl",
        method: "POST",
        target: "/authz/api/acl",
        request_id: lookup("x-request-id"),
        started,
    };
    let detail = state.audit().is_on().then_some(detail);
    span.in_scope(|| finish(state, &observed, &outcome, detail, &decision_id, &span));
    Ok(response)
}

fn malformed() -> Outcome {
    Outcome::Deny(Denial::InvalidRequest {
        reason: "malformed_access_check",
    })
}

fn answer(
    state: &State,
    headers: &HeaderMap,
    body: &[u8],
    decision_id: &str,
    detail: &mut Detail,
) -> (Response, Outcome) {
    let request: AclRequest = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(error) => {
            return (
                invalid(&format!("malformed access-check request: {error}")),
                malformed(),
            );
        }
    };
    detail.checks = Some(request.permissions.len());
    if request.permissions.len() > MAX_CHECKS {
        let message = format!(
            "too many permission checks: {} (at most {MAX_CHECKS})",
            request.permissions.len()
        );
        return (invalid(&message), malformed());
    }
    let checked = CheckedHeaders::new(headers);
    let lookup = |name: &str| checked.get(name);
    let account_hint = request
        .permissions
        .first()
        .map(|c| c.resource_scope.account_identifier.as_str());
    if let Some(token) = lookup_token_id(&lookup) {
        detail.token_id = Some(token);
    }
    let authenticated = authenticate_caller(state, &lookup, account_hint, now_unix());
    if let Some(reason) = checked.flaw() {
        let message = "a credential header is given more than once or is not visible ASCII";
        return (invalid(message), Outcome::Deny(Denial::InvalidRequest { reason }));
    }
    let caller = match authenticated {
        Ok(caller) => caller,
        Err(denial) => return refused(denial, decision_id),
    };
    let account = &*caller.account;
    let caller_ref = principal_ref(account, caller.id);
    detail.account = Some(account.account().to_owned());
    detail.principal = Some(account.principal_label(caller.id));
    let subject = match &request.principal {
        None => Subject::Caller,
        Some(p) if *p == caller_ref => Subject::Caller,
        Some(p) => match p.principal_type.as_str() {
            "USER" => Subject::User(account.user(&p.principal_identifier)),
            "SERVICE_ACCOUNT" => Subject::ServiceAccount(&p.principal_identifier),
            other => return (invalid(&format!("unknown principal type `{other}`")), malformed()),
        },
    };
    let scopes: Vec<Option<ScopeId>> = request
        .permissions
        .iter()
        .map(|c| scope_of(account, &c.resource_scope))
        .collect();
    if let Some(p) = &request.principal
        && !matches!(subject, Subject::Caller)
        && let Err(denial) = may_ask_about(account, caller.principal(), p, &subject, &scopes)
    {
        return refused(denial, decision_id);
    }
    let list: Vec<AccessControl> = request
        .permissions
        .into_iter()
        .zip(scopes)
        .map(|(check, scope)| {
            let permitted = scope.is_some_and(|scope| {
                let principal = match &subject {
                    Subject::Caller => Some(caller.principal()),
                    Subject::User(id) => id.map(plain),
                    Subject::ServiceAccount(identifier) => {
                        service_account(account, identifier, scope).map(plain)
                    }
                };
                principal.is_some_and(|principal| permitted(account, principal, scope, &check))
            });
            AccessControl {
                permission: check.permission,
                resource_scope: check.resource_scope,
                resource_type: check.resource_type,
                resource_identifier: check.resource_identifier,
                permitted,
            }
        })
        .collect();
    tracing::debug!(decision_id = %decision_id, checks = list.len(), "access check");
    let body = serde_json::json!({
        "status": "SUCCESS",
        "data": {
            "principal": request.principal.unwrap_or(caller_ref),
            "accessControlList": list,
        },
    });
    let outcome = Outcome::Allow {
        principal: detail.principal.clone(),
        account: detail.account.clone(),
        permission: None,
        reason: ANSWERED,
    };
    (json_response(200, None, body.to_string()), outcome)
}

fn refused(denial: Denial, decision_id: &str) -> (Response, Outcome) {
    (denied(&denial, decision_id), Outcome::Deny(denial))
}

/// The API key's `<token-id>`, when the caller presents one (for the audit log; never the secret).
fn lookup_token_id<'a>(lookup: &dyn Fn(&str) -> Option<&'a str>) -> Option<String> {
    let raw = lookup("x-api-key").or_else(|| {
        lookup("authorization")
            .and_then(|v| v.trim().split_once(' '))
            .map(|(_, token)| token)
    })?;
    crate::authn::parse_token(raw.trim())
        .ok()
        .map(|t| t.id.to_owned())
}

/// Whose permissions are asked about.
enum Subject<'r> {
    /// The caller, bounded by its token's permission subset.
    Caller,
    /// Another user (`None`: not in the account, so nothing is permitted).
    User(Option<PrincipalId>),
    /// Another service account, resolved per scope.
    ServiceAccount(&'r str),
}

fn plain(id: PrincipalId) -> Principal<'static> {
    Principal {
        id,
        token_permissions: None,
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn invalid(message: &str) -> Response {
    json_response(400, None, error_body("INVALID_REQUEST", message).to_string())
}

fn denied(denial: &Denial, decision_id: &str) -> Response {
    let rendered = denial_response(denial, decision_id);
    json_response(rendered.status, rendered.www_authenticate(), rendered.body)
}

fn principal_ref(account: &CompiledAccount, id: PrincipalId) -> PrincipalRef {
    let (kind, identifier) = account.principal_identifier(id);
    PrincipalRef {
        principal_identifier: identifier.to_owned(),
        principal_type: kind.to_owned(),
    }
}

/// The entry's scope in this account; `None` for another account or an unknown scope.
fn scope_of(account: &CompiledAccount, scope: &ResourceScope) -> Option<ScopeId> {
    if scope.account_identifier != account.account() {
        return None;
    }
    account.resolve_scope(
        non_empty(scope.org_identifier.as_deref()),
        non_empty(scope.project_identifier.as_deref()),
    )
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

/// The service account named `identifier` visible in `scope` (living there or above).
fn service_account(account: &CompiledAccount, identifier: &str, scope: ScopeId) -> Option<PrincipalId> {
    account
        .service_accounts_named(identifier)
        .into_iter()
        .find(|id| match id {
            PrincipalId::ServiceAccount(i) => account
                .service_accounts
                .get(*i as usize)
                .is_some_and(|node| account.is_ancestor_or_self(node.scope, scope)),
            PrincipalId::User(_) => false,
        })
}

/// Decides one entry; anything the account does not know is not permitted.
fn permitted(
    account: &CompiledAccount,
    principal: Principal<'_>,
    scope: ScopeId,
    check: &PermissionCheck,
) -> bool {
    let catalog = account.catalog();
    let (Some(permission), Some(resource_type)) = (
        catalog.permission_id(&check.permission),
        catalog.resource_type_id(&check.resource_type),
    ) else {
        return false;
    };
    let check = Check {
        scope,
        permission,
        resource_type,
        resource_id: check.resource_identifier.as_deref().filter(|s| !s.is_empty()),
    };
    decide(account, &principal, &check).allowed
}

/// Asking about another principal takes its view permission: `core_user_view` on the user in every
/// scope asked about, or `core_serviceaccount_view` on the service account at account level.
#[allow(clippy::result_large_err)] // a denial is rendered at once; boxing would buy nothing
fn may_ask_about(
    account: &CompiledAccount,
    caller: Principal<'_>,
    asked: &PrincipalRef,
    subject: &Subject<'_>,
    scopes: &[Option<ScopeId>],
) -> Result<(), Denial> {
    let (view, needed): (&str, Vec<ScopeId>) = match subject {
        Subject::ServiceAccount(_) => (
            SERVICE_ACCOUNT_VIEW,
            account.resolve_scope(None, None).into_iter().collect(),
        ),
        _ => {
            let mut seen = HashSet::new();
            (
                USER_VIEW,
                scopes
                    .iter()
                    .flatten()
                    .copied()
                    .filter(|s| seen.insert(*s))
                    .collect(),
            )
        }
    };
    let catalog = account.catalog();
    let Some(permission) = catalog.permission_id(view) else {
        return Err(Denial::InvalidRequest {
            reason: "unknown_permission",
        });
    };
    let Some(resource_type) = catalog.permission(permission).map(|p| p.resource_type) else {
        return Err(Denial::InvalidRequest {
            reason: "unknown_resource_type",
        });
    };
    for scope in needed {
        let check = Check {
            scope,
            permission,
            resource_type,
            resource_id: Some(&asked.principal_identifier),
        };
        let decision = decide(account, &caller, &check);
        if !decision.allowed {
            let (org, project) = account.scope_parts(scope);
            return Err(Denial::AccessDenied {
                check: FailedCheck {
                    permission: view.to_owned(),
                    account: account.account().to_owned(),
                    org: org.map(str::to_owned),
                    project: project.map(str::to_owned),
                    resource_type: catalog.resource_type_name(resource_type).to_owned(),
                    resource_id: Some(asked.principal_identifier.clone()),
                },
                reason: decision.reason.code(),
            });
        }
    }
    Ok(())
}
