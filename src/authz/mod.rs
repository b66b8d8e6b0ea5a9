//! The request policy: how a request is decided, whichever front end carried it.
//!
//! [`Authorizer::decide`] is the synchronous decision, never waiting on the network: credential →
//! route → account → principal → [`rbac::decide`](crate::rbac::decide), returning a [`Verdict`]
//! that carries its own [`Facts`]. [`Authorizer::check`] is the one path every front end calls:
//! decide, fetch what the verdict says is missing (an account not loaded yet, a JWT issuer's new
//! signing key, an account revision the request demands), decide once more, observe ([`observe`]). The batch access check
//! ([`Authorizer::check_access`], [`acl`]) runs through the same steps.

use std::time::{Duration, Instant};

use crate::accounts::Accounts;
use crate::clock::now_unix;
use crate::rbac::{Check, CompiledAccount, Principal, decide};
use crate::route::{RouteDecision, RouteTable, Scope};

pub mod acl;
pub mod credentials;
mod load;
pub mod observe;
pub mod render;
pub mod request;
pub mod verdict;

pub use load::{AuthorizerOptions, LoadError, MAX_REVISION_WAIT, TOKEN_CACHE_CAPACITY, TOKEN_TTL};
pub use request::Request;
pub use verdict::{Denial, Facts, FailedCheck, Outcome, Verdict};

use credentials::{Credential, Credentials};
use observe::Observer;

/// Everything a check reads, shared by all requests: the route table, the published accounts,
/// credential verification and the observation of verdicts.
pub struct Authorizer {
    routes: RouteTable,
    accounts: Accounts,
    credentials: Credentials,
    observer: Observer,
    /// How long a check waits for a demanded account revision (`snapshot.max_revision_wait`).
    max_revision_wait: Duration,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer")
            .field("routes", &self.routes.len())
            .field("accounts", &self.accounts)
            .finish_non_exhaustive()
    }
}

/// The header lookup with its lifetime shortened to a local borrow, so the route request can also
/// borrow the locally held credential (the trait object's lifetime is otherwise invariant).
fn reborrow<'s, 'a: 's>(
    headers: &'s (dyn Fn(&str) -> Option<&'a str> + Sync + 's),
) -> impl Fn(&str) -> Option<&'s str> + Copy + 's {
    move |name| headers(name)
}

impl Authorizer {
    /// The published accounts.
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// Credential verification.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Decision ids, metrics, audit log, dry-run.
    pub fn observer(&self) -> &Observer {
        &self.observer
    }

    /// The route table.
    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    /// The audit log (off unless configured).
    pub fn audit(&self) -> &crate::audit::AuditLog {
        self.observer.audit()
    }

    /// Whether the server runs in dry-run mode.
    pub fn dry_run(&self) -> bool {
        self.observer.dry_run()
    }

    /// Whether requests can be decided (routes are loaded by construction; accounts must be).
    pub fn is_ready(&self) -> bool {
        self.accounts.is_ready()
    }

    /// Starts background work: the account source's (control plane: preloading, housekeeping) and
    /// the JWT issuers' key refreshers, whose handles are returned to be aborted at shutdown.
    pub async fn start(&self) -> Vec<tokio::task::JoinHandle<()>> {
        self.accounts.start();
        match self.credentials.jwt() {
            Some(jwt) => jwt.start().await,
            None => Vec::new(),
        }
    }

    /// Decides one request at `now` (Unix seconds), without any network wait.
    pub fn decide(&self, request: &Request<'_>, now: i64) -> Verdict {
        if let Some(reason) = request.malformed {
            return Verdict::new(Denial::InvalidRequest { reason });
        }
        let mut facts = self.observer.wants_facts().then(Facts::default);
        let outcome = self.decide_collecting(request, now, &mut facts);
        let outcome = match request.header_flaw.and_then(|flaw| flaw()) {
            Some(reason) => Denial::InvalidRequest { reason }.into(),
            None => outcome,
        };
        Verdict::with_facts(outcome, facts.unwrap_or_default())
    }

    /// Decides one request: decide, fetch what the verdict says is missing, decide again,
    /// observe. The hot path never waits on the network: only the rare request that names something
    /// unknown does, here.
    pub async fn check(&self, request: &Request<'_>) -> Verdict {
        self.settle(request, |now| (self.decide(request, now), ()))
            .await
            .0
    }

    /// The one orchestration of every front end: `decide` at now, again after each fetch of what
    /// its verdict says is missing (at most [`MAX_FETCHES`]), then observe the verdict.
    async fn settle<T>(&self, request: &Request<'_>, decide: impl Fn(i64) -> (Verdict, T)) -> (Verdict, T) {
        let started = Instant::now();
        let span = crate::telemetry::check_span(request.frontend, request.trace_headers);
        let mut decided = span.in_scope(|| decide(now_unix()));
        for _ in 0..MAX_FETCHES {
            if !self.fetch_missing(&decided.0.outcome).await {
                break;
            }
            decided = span.in_scope(|| decide(now_unix()));
        }
        span.in_scope(|| self.observer.observe(request, &mut decided.0, started, &span));
        decided
    }

    /// Fetches what a denial says is missing (an account not loaded yet, an issuer's signing keys, a
    /// newer revision of the account, waited for up to `max_revision_wait`); returns whether
    /// deciding again may answer differently.
    async fn fetch_missing(&self, outcome: &Outcome) -> bool {
        match outcome {
            Outcome::Deny(Denial::SnapshotUnavailable { account }) => self.accounts.load(account).await,
            Outcome::Deny(Denial::RevisionBehind {
                account, required, ..
            }) => {
                self.accounts
                    .wait_for_version(account, *required, self.max_revision_wait)
                    .await
            }
            Outcome::Deny(denial) => self.credentials.fetch_missing(denial).await,
            Outcome::Allow { .. } => false,
        }
    }

    fn decide_collecting(&self, request: &Request<'_>, now: i64, facts: &mut Option<Facts>) -> Outcome {
        let credential = self
            .credentials
            .read(request.headers, request.verified_claims, now);
        if let (Some(facts), Ok(credential)) = (facts.as_mut(), &credential) {
            self.credentials.describe(credential, facts);
        }
        let credential_account = credential.as_ref().ok().and_then(Credential::account);
        let headers = reborrow(request.headers);
        let route = match self.routes.resolve(&request.route(&headers, credential_account)) {
            Ok(route) => route,
            Err(error) => return Denial::InvalidRequest { reason: error.code() }.into(),
        };
        if let Some(facts) = facts.as_mut() {
            facts.describe_route(&route);
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
            } => return Denial::NoRoute.into(),
            RouteDecision::Authenticated { scope, .. }
            | RouteDecision::Permission { scope, .. }
            | RouteDecision::Unmatched { scope, .. } => scope,
        };
        // a refused credential is answered before the account is looked for (it may be what names it)
        let credential = match &credential {
            Ok(credential) => credential,
            Err(error) => return Denial::from(error.clone()).into(),
        };
        let Some(account_id) = scope.account.as_deref().or(credential.account()) else {
            return Denial::InvalidRequest { reason: "no_account" }.into();
        };
        if let Err(error) = credential.fits_account(account_id) {
            return Denial::from(error).into();
        }
        if let Some(facts) = facts.as_mut() {
            facts.account = Some(account_id.to_owned());
        }
        let Some(account) = self.accounts.account(account_id) else {
            return self.missing_account(account_id).into();
        };
        if let Some(behind) = revision_behind(request, &account) {
            return behind.into();
        }
        let (principal_id, token_permissions) = match self.credentials.holder(&account, credential, now) {
            Ok(holder) => holder,
            Err(error) => return Denial::from(error).into(),
        };
        let principal_label = account.principal_label(principal_id);
        if let Some(facts) = facts.as_mut() {
            facts.principal = Some(principal_label.clone());
        }
        let RouteDecision::Permission {
            permission,
            resource_type,
            resource_id,
            ..
        } = &route
        else {
            if token_permissions.is_some() {
                return Denial::TokenRestricted.into();
            }
            return Outcome::Allow {
                principal: Some(principal_label),
                account: Some(account.account().to_owned()),
                permission: None,
                reason: "authenticated",
            };
        };
        let catalog = account.catalog();
        // the route table's permissions are checked against the catalog when it loads: an unknown
        // one here is the proxy's (`context_extensions.permission`), an operator's error
        let Some(permission_id) = catalog.permission_id(permission) else {
            return Denial::OperatorError {
                reason: verdict::OPERATOR_PERMISSION_UNKNOWN,
            }
            .into();
        };
        let type_id = match resource_type {
            Some(name) => catalog.resource_type_id(name),
            None => catalog.permission(permission_id).map(|p| p.resource_type),
        };
        let Some(type_id) = type_id else {
            return Denial::OperatorError {
                reason: verdict::OPERATOR_RESOURCE_TYPE_UNKNOWN,
            }
            .into();
        };
        if let Some(facts) = facts.as_mut()
            && facts.resource_type.is_none()
        {
            facts.resource_type = Some(catalog.resource_type_name(type_id).to_owned());
        }
        let failed = |reason: &'static str| -> Outcome {
            Denial::AccessDenied {
                check: failed_check(
                    account.account(),
                    scope,
                    permission,
                    catalog.resource_type_name(type_id),
                    resource_id.as_deref(),
                ),
                reason,
            }
            .into()
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
        let principal = Principal {
            id: principal_id,
            token_permissions,
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

    /// The denial for an account that is not published: unknown to this sidecar (no snapshot names
    /// it, or the control plane said it has none), or not loaded (yet, or unreachable).
    pub(crate) fn missing_account(&self, account: &str) -> Denial {
        if self.accounts.is_unknown(account) {
            Denial::AccountUnknown {
                account: account.to_owned(),
            }
        } else {
            Denial::SnapshotUnavailable {
                account: account.to_owned(),
            }
        }
    }

    /// The `/metrics` text: the event metrics and the values read now from where they are kept.
    pub fn metrics_text(&self) -> String {
        use crate::telemetry::metrics::{AuditCounts, JwksCounts, MetricsView, render};
        use std::sync::atomic::Ordering::Relaxed;
        let jwt = self.credentials.jwt();
        let slow = self.credentials.token_cache().slow_check_counts();
        let audit = self.observer.audit();
        let view = MetricsView {
            api_key_cache: self.credentials.api_key_cache_counts(),
            jwt_cache: jwt.map_or((0, 0), |jwt| jwt.cache_counts()),
            bcrypt_runs: slow.runs,
            bcrypt_busy: slow.busy,
            jwks: jwt.map(|jwt| {
                let stats = jwt.store().stats();
                JwksCounts {
                    fetches: stats.fetches.load(Relaxed),
                    fetch_failures: stats.fetch_failures.load(Relaxed),
                    refetches: stats.refetches.load(Relaxed),
                    refetches_limited: stats.refetches_limited.load(Relaxed),
                }
            }),
            accounts: self.accounts.stats(),
            audit: AuditCounts {
                queue_depth: audit.queue_depth(),
                dropped: audit.dropped(),
                written: audit.written(),
                write_errors: audit.write_errors(),
            },
        };
        render(self.observer.metrics(), &view)
    }
}

/// How many fetches one check may make: an account's first load, then what the loaded account's
/// verdict still lacks (a revision the request demands, an issuer's new signing key).
const MAX_FETCHES: usize = 2;

/// The denial of a request demanding a newer revision than `account` is at, if it does (no work
/// when it demands none: the hot path).
pub(crate) fn revision_behind(request: &Request<'_>, account: &CompiledAccount) -> Option<Denial> {
    let required = request.min_revision?;
    let held = account.version();
    (required > held).then(|| Denial::RevisionBehind {
        account: account.account().to_owned(),
        required,
        held,
    })
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
