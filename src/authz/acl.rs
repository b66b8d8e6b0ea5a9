//! The batch access check's policy (`POST /authz/api/acl`, `docs/wire.md` "Batch access check"), on
//! domain types: the caller authenticates like any request; asking about another principal takes
//! `core_user_view` (users, in each scope asked about) or `core_serviceaccount_view` (service
//! accounts, at account level, the only level the catalog grants it at); each entry is decided by
//! [`rbac::decide`](crate::rbac::decide), and an entry naming an unknown permission, resource type,
//! scope or another account is not permitted, not an error.
//!
//! Each call is one verdict for metrics and the audit log: `allow` with reason [`ANSWERED`] and the
//! number of checks asked when answered, else the refusal's reason. Entries are not audited one by
//! one, and dry-run mode does not change answers (they enforce nothing).

use std::collections::HashSet;
use std::sync::Arc;

use crate::authn::{header, parse_token};
use crate::authz::credentials::Credential;
use crate::authz::{Authorizer, Denial, Facts, FailedCheck, Outcome, Request, Verdict};
use crate::rbac::{Check, CompiledAccount, Principal, PrincipalId, ScopeId, decide};

/// The most checks one call may ask.
pub const MAX_CHECKS: usize = 10_000;
/// The view permission needed to ask about another user.
pub const USER_VIEW: &str = "core_user_view";
/// The view permission needed to ask about another service account.
pub const SERVICE_ACCOUNT_VIEW: &str = "core_serviceaccount_view";
/// The reason code of an answered call.
pub const ANSWERED: &str = "access_check";
/// The reason code of a call that cannot be read.
pub const MALFORMED: &str = "malformed_access_check";

/// A principal by type (`USER`, `SERVICE_ACCOUNT`) and identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrincipalName<'q> {
    /// `USER` or `SERVICE_ACCOUNT`.
    pub kind: &'q str,
    /// The identifier.
    pub identifier: &'q str,
}

/// One check asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessCheck<'q> {
    /// The account of the scope.
    pub account: &'q str,
    /// The org, if any (empty is none).
    pub org: Option<&'q str>,
    /// The project, if any (empty is none).
    pub project: Option<&'q str>,
    /// The resource type (`PIPELINE`).
    pub resource_type: &'q str,
    /// The resource, absent for create and list (empty is none).
    pub resource_id: Option<&'q str>,
    /// The permission ID.
    pub permission: &'q str,
}

/// A batch access check: whom to ask about (default: the caller) and the checks, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessQuery<'q> {
    /// Whom to ask about; `None`: the caller.
    pub principal: Option<PrincipalName<'q>>,
    /// The checks.
    pub checks: Vec<AccessCheck<'q>>,
}

/// What a call answers beyond its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessAnswer {
    /// Answered: the caller (type, identifier) and one answer per check, in order.
    Answered {
        /// The caller's principal type.
        caller_kind: String,
        /// The caller's identifier.
        caller_identifier: String,
        /// Where the caller lives: `account`, `organization` or `project` (users: `account`).
        caller_scope_level: &'static str,
        /// Whether each check is permitted.
        permitted: Vec<bool>,
    },
    /// More than [`MAX_CHECKS`] checks (this many) were asked.
    TooManyChecks(usize),
    /// The principal type asked about is neither `USER` nor `SERVICE_ACCOUNT`.
    UnknownPrincipalType(String),
    /// A credential header is given more than once or is not visible ASCII.
    AmbiguousCredential,
    /// Refused (also the verdict's outcome).
    Refused(Denial),
}

/// A verified caller: the account whose snapshot vouched for it and the principal.
struct Caller<'a> {
    account: Arc<CompiledAccount>,
    id: PrincipalId,
    /// The API token's `<token-id>`, whose permission subset (if any) bounds the caller.
    token_id: Option<&'a str>,
}

impl Caller<'_> {
    fn principal(&self) -> Principal<'_> {
        Principal {
            id: self.id,
            token_permissions: self
                .token_id
                .and_then(|id| self.account.token(id))
                .and_then(|node| node.permissions.as_ref()),
        }
    }
}

impl Authorizer {
    /// Answers a batch access check through the one orchestration of [`check`](Self::check): decide,
    /// fetch what is missing (the caller's account, a JWT issuer's new key), decide once more,
    /// observe.
    pub async fn check_access(
        &self,
        request: &Request<'_>,
        query: &AccessQuery<'_>,
    ) -> (Verdict, AccessAnswer) {
        self.settle(request, |now| self.decide_access(request, query, now))
            .await
    }

    /// Decides a batch access check at `now`, without any network wait.
    pub fn decide_access(
        &self,
        request: &Request<'_>,
        query: &AccessQuery<'_>,
        now: i64,
    ) -> (Verdict, AccessAnswer) {
        let mut facts = Facts {
            checks: Some(query.checks.len()),
            ..Facts::default()
        };
        let verdict = |outcome: Outcome, facts: &Facts| {
            let facts = if self.observer().wants_facts() {
                facts.clone()
            } else {
                Facts::default()
            };
            Verdict::with_facts(outcome, facts)
        };
        let malformed = || Outcome::from(Denial::InvalidRequest { reason: MALFORMED });
        if query.checks.len() > MAX_CHECKS {
            return (
                verdict(malformed(), &facts),
                AccessAnswer::TooManyChecks(query.checks.len()),
            );
        }
        if self.observer().wants_facts() {
            facts.token_id = token_id(request);
        }
        let hint = query.checks.first().map(|c| c.account);
        let authenticated = self.authenticate_caller(request, hint, now);
        if let Some(reason) = request.header_flaw.and_then(|flaw| flaw()) {
            let outcome = Denial::InvalidRequest { reason }.into();
            return (verdict(outcome, &facts), AccessAnswer::AmbiguousCredential);
        }
        let caller = match authenticated {
            Ok(caller) => caller,
            Err(denial) => {
                return (
                    verdict(denial.clone().into(), &facts),
                    AccessAnswer::Refused(denial),
                );
            }
        };
        let account = &*caller.account;
        let (caller_kind, caller_identifier) = account.principal_identifier(caller.id);
        let label = account.principal_label(caller.id);
        facts.account = Some(account.account().to_owned());
        facts.principal = Some(label.clone());
        let is_caller = |p: &PrincipalName<'_>| p.kind == caller_kind && p.identifier == caller_identifier;
        let subject = match query.principal {
            None => Subject::Caller,
            Some(p) if is_caller(&p) => Subject::Caller,
            Some(p) => match p.kind {
                "USER" => Subject::User(account.user(p.identifier)),
                "SERVICE_ACCOUNT" => Subject::ServiceAccount(p.identifier),
                other => {
                    return (
                        verdict(malformed(), &facts),
                        AccessAnswer::UnknownPrincipalType(other.to_owned()),
                    );
                }
            },
        };
        let scopes: Vec<Option<ScopeId>> = query.checks.iter().map(|c| scope_of(account, c)).collect();
        if let Some(asked) = query.principal
            && !matches!(subject, Subject::Caller)
            && let Err(denial) =
                may_ask_about(account, caller.principal(), asked.identifier, &subject, &scopes)
        {
            return (
                verdict(denial.clone().into(), &facts),
                AccessAnswer::Refused(denial),
            );
        }
        let permitted = query
            .checks
            .iter()
            .zip(scopes)
            .map(|(check, scope)| {
                scope.is_some_and(|scope| {
                    let principal = match &subject {
                        Subject::Caller => Some(caller.principal()),
                        Subject::User(id) => id.map(plain),
                        Subject::ServiceAccount(identifier) => {
                            service_account(account, identifier, scope).map(plain)
                        }
                    };
                    principal.is_some_and(|principal| permitted(account, principal, scope, check))
                })
            })
            .collect();
        let outcome = Outcome::Allow {
            principal: Some(label),
            account: Some(account.account().to_owned()),
            permission: None,
            reason: ANSWERED,
        };
        let answer = AccessAnswer::Answered {
            caller_kind: caller_kind.to_owned(),
            caller_identifier: caller_identifier.to_owned(),
            caller_scope_level: scope_level(account, caller.id),
            permitted,
        };
        (verdict(outcome, &facts), answer)
    }

    /// Credential → principal for a request that is not routed: the credential's own account, else
    /// `account_hint`, at `now`.
    #[allow(clippy::result_large_err)] // the Err is rendered at once; boxing would only add an allocation
    fn authenticate_caller<'a>(
        &self,
        request: &Request<'a>,
        account_hint: Option<&str>,
        now: i64,
    ) -> Result<Caller<'a>, Denial> {
        let credentials = self.credentials();
        let credential = credentials.read(request.headers, None, now)?;
        let account_id = credential
            .account()
            .or(account_hint)
            .ok_or(Denial::InvalidRequest { reason: "no_account" })?;
        credential.fits_account(account_id)?;
        let account = self
            .accounts()
            .account(account_id)
            .ok_or_else(|| self.missing_account(account_id))?;
        if let Some(behind) = super::revision_behind(request, &account) {
            return Err(behind);
        }
        let (id, _) = credentials.holder(&account, &credential, now)?;
        let token_id = match &credential {
            Credential::ApiKey(token) => Some(token.id),
            Credential::Jwt(_) => None,
        };
        Ok(Caller {
            account,
            id,
            token_id,
        })
    }
}

/// Where a principal lives, in Harness's words: users live in the account; a service account in
/// the scope that holds it.
fn scope_level(account: &CompiledAccount, id: PrincipalId) -> &'static str {
    let PrincipalId::ServiceAccount(i) = id else {
        return "account";
    };
    match account
        .service_accounts
        .get(i as usize)
        .map(|node| account.scope_parts(node.scope))
    {
        Some((_, Some(_))) => "project",
        Some((Some(_), None)) => "organization",
        _ => "account",
    }
}

/// The API key's `<token-id>`, when the caller presents one (for the audit log; never the secret).
fn token_id(request: &Request<'_>) -> Option<String> {
    let raw = header::credential(request.headers)?.ok()?;
    parse_token(raw).ok().map(|t| t.id.to_owned())
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

/// The entry's scope in this account; `None` for another account or an unknown scope.
fn scope_of(account: &CompiledAccount, check: &AccessCheck<'_>) -> Option<ScopeId> {
    if check.account != account.account() {
        return None;
    }
    account.resolve_scope(non_empty(check.org), non_empty(check.project))
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
    check: &AccessCheck<'_>,
) -> bool {
    let catalog = account.catalog();
    let (Some(permission), Some(resource_type)) = (
        catalog.permission_id(check.permission),
        catalog.resource_type_id(check.resource_type),
    ) else {
        return false;
    };
    let check = Check {
        scope,
        permission,
        resource_type,
        resource_id: non_empty(check.resource_id),
    };
    decide(account, &principal, &check).allowed
}

/// Asking about another principal takes its view permission: `core_user_view` on the user in every
/// scope asked about, or `core_serviceaccount_view` on the service account at account level.
#[allow(clippy::result_large_err)] // a denial is rendered at once; boxing would buy nothing
fn may_ask_about(
    account: &CompiledAccount,
    caller: Principal<'_>,
    asked: &str,
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
            let needed = scopes
                .iter()
                .flatten()
                .copied()
                .filter(|s| seen.insert(*s))
                .collect();
            (USER_VIEW, needed)
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
            resource_id: Some(asked),
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
                    resource_id: Some(asked.to_owned()),
                },
                reason: decision.reason.code(),
            });
        }
    }
    Ok(())
}
