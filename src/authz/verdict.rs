//! What a check answers: a [`Verdict`] carries the [`Outcome`] (allow, or a [`Denial`] with its
//! stable reason code) and the [`Facts`] the decision looked at, so the "why" travels with the
//! answer (as Cedar's `Response` carries its diagnostics) instead of being written into an
//! out-parameter.

use std::borrow::Cow;

use crate::route::RouteDecision;

/// The reason code of the allow a dry-run server answers in place of a denial.
pub const DRY_RUN_REASON: &str = "dry_run";

/// The reason code of a request for an account this sidecar has no snapshot of.
pub const ACCOUNT_UNKNOWN_REASON: &str = "account_unknown";
/// The reason code of a check whose demanded account revision was not published within the bound.
pub const REVISION_NOT_REACHED: &str = "revision_not_reached";
/// The reason code of a permission (Envoy's `context_extensions.permission`) the catalog lacks.
pub const OPERATOR_PERMISSION_UNKNOWN: &str = "operator_permission_unknown";
/// The reason code of a route's resource type the catalog lacks.
pub const OPERATOR_RESOURCE_TYPE_UNKNOWN: &str = "operator_resource_type_unknown";

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

impl FailedCheck {
    /// The length of its text, to size a body that holds it.
    pub fn text_len(&self) -> usize {
        self.permission.len()
            + self.account.len()
            + self.org.as_ref().map_or(0, String::len)
            + self.project.as_ref().map_or(0, String::len)
            + self.resource_type.len()
            + self.resource_id.as_ref().map_or(0, String::len)
    }
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
    /// The account's snapshot is not loaded (503 `SNAPSHOT_UNAVAILABLE`, reason
    /// `snapshot_unavailable`): not yet, or the control plane cannot be reached; the async check
    /// loads it and decides once more.
    SnapshotUnavailable {
        /// The account that was wanted.
        account: String,
    },
    /// The account is unknown to this sidecar (503 `SNAPSHOT_UNAVAILABLE`, reason
    /// `account_unknown`): no snapshot file names it, or the control plane answered that it has
    /// no such account. Not an outage: a wrong account identifier or a missing snapshot.
    AccountUnknown {
        /// The account that was wanted.
        account: String,
    },
    /// The request demands an account revision newer than the one published here (503
    /// `SNAPSHOT_UNAVAILABLE`, reason `revision_not_reached`): the async check waits, up to
    /// `snapshot.max_revision_wait`, for the account to reach it and decides once more.
    RevisionBehind {
        /// The account.
        account: String,
        /// The revision the request demands.
        required: u64,
        /// The revision published when it was decided.
        held: u64,
    },
    /// The proxy's or the route table's configuration names something the catalog does not have
    /// (500 `CONFIGURATION_ERROR`): an operator's error, never the client's; `reason` is
    /// `operator_permission_unknown` or `operator_resource_type_unknown`.
    OperatorError {
        /// The stable reason code.
        reason: &'static str,
    },
    /// The API token is valid but its permission subset does not cover the request: a route that
    /// needs only authentication, which a subset token is not given (403 `NG_ACCESS_DENIED`).
    TokenRestricted,
    /// Too many slow (bcrypt) secret checks are running to verify this one now (503); retry.
    VerificationBusy,
    /// A JWT names a signing key its issuer has not published (401 `INVALID_CREDENTIALS`); the
    /// async check refetches the issuer's keys and decides once more.
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
            | Self::InvalidRequest { reason }
            | Self::OperatorError { reason } => reason,
            Self::NoRoute => "no_route",
            Self::SnapshotUnavailable { .. } => "snapshot_unavailable",
            Self::AccountUnknown { .. } => ACCOUNT_UNKNOWN_REASON,
            Self::RevisionBehind { .. } => REVISION_NOT_REACHED,
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
        /// The reason code (`public`, `authenticated`, `granted`, `implicit`, ...).
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

    /// Whether this is an allow.
    pub fn is_allow(&self) -> bool {
        matches!(self, Self::Allow { .. })
    }
}

impl From<Denial> for Outcome {
    fn from(denial: Denial) -> Self {
        Self::Deny(denial)
    }
}

/// Everything known about a decision's inputs, as far as deciding got: the credential's identifier
/// (never the credential), the scope and the resource. Collected only while the audit log is on,
/// so the hot path allocates nothing for it otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The API key's `<token-id>`.
    pub token_id: Option<String>,
    /// The JWT's issuer (`iss`), once verified.
    pub issuer: Option<String>,
    /// The principal a verified JWT names (`USER:alice`), even when the snapshot refuses it.
    pub principal: Option<String>,
    /// The account looked up.
    pub account: Option<String>,
    /// The route's permission.
    pub permission: Option<String>,
    /// The scope's org.
    pub org: Option<String>,
    /// The scope's project.
    pub project: Option<String>,
    /// The resource type checked.
    pub resource_type: Option<String>,
    /// The resource checked.
    pub resource_id: Option<String>,
    /// `/authz/api/acl`: the number of checks asked.
    pub checks: Option<usize>,
}

impl Facts {
    /// Copies the route's scope, permission and resource.
    pub(crate) fn describe_route(&mut self, route: &RouteDecision<'_>) {
        let Some(scope) = route.scope() else {
            return;
        };
        self.account = scope.account.as_deref().map(str::to_owned);
        self.org = scope.org.as_deref().map(str::to_owned);
        self.project = scope.project.as_deref().map(str::to_owned);
        if let RouteDecision::Permission {
            permission,
            resource_type,
            resource_id,
            ..
        } = route
        {
            self.permission = Some((*permission).to_owned());
            self.resource_type = resource_type.map(str::to_owned);
            self.resource_id = resource_id.as_deref().map(str::to_owned);
        }
    }
}

/// A decided request: its outcome and facts and, once observed, its decision id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The decision (the real one, also in dry-run mode).
    pub outcome: Outcome,
    /// What the decision looked at (empty while the audit log is off).
    pub facts: Facts,
    /// The decision id (empty until the check is observed).
    pub decision_id: String,
    /// Whether the server runs in dry-run mode, so a denial is answered as an allow.
    pub dry_run: bool,
}

impl Verdict {
    /// A verdict with no facts, not observed yet.
    pub fn new(outcome: impl Into<Outcome>) -> Self {
        Self::with_facts(outcome.into(), Facts::default())
    }

    /// A verdict with its facts, not observed yet.
    pub fn with_facts(outcome: Outcome, facts: Facts) -> Self {
        Self {
            outcome,
            facts,
            decision_id: String::new(),
            dry_run: false,
        }
    }

    /// What to answer with: the outcome, or in dry-run mode an allow in place of a denial.
    pub fn answer(&self) -> Cow<'_, Outcome> {
        if self.dry_run && !self.outcome.is_allow() {
            Cow::Owned(Outcome::Allow {
                principal: None,
                account: None,
                permission: None,
                reason: DRY_RUN_REASON,
            })
        } else {
            Cow::Borrowed(&self.outcome)
        }
    }
}
