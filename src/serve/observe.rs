//! What every front end does after deciding: count the decision and its latency, record the
//! Check's span fields, write the audit record (only when the audit log is on) and, in dry-run
//! mode, turn a denial into an allow. One place, so the gRPC and HTTP front ends cannot disagree.

use std::time::{Instant, SystemTime};

use crate::audit::{AuditRecord, path_only};
use crate::serve::{Detail, Outcome, State};

/// The reason code of the allow a dry-run server answers in place of a denial.
pub const DRY_RUN_REASON: &str = "dry_run";

/// The request-side facts of one decision.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// `grpc`, `http` or `acl`.
    pub frontend: &'static str,
    /// The request's method.
    pub method: &'a str,
    /// The request target (its query string is never recorded).
    pub target: &'a str,
    /// `x-request-id` (Envoy: `attributes.request.http.id`), if any.
    pub request_id: Option<&'a str>,
    /// When deciding started.
    pub started: Instant,
}

/// A fresh [`Detail`] to fill while deciding, only when the audit log will use it.
pub fn detail_if_audited(state: &State) -> Option<Detail> {
    state.audit().is_on().then(Detail::default)
}

/// Counts, traces and audits `outcome`; returns the outcome to answer with: `outcome` itself, or in
/// dry-run mode an allow in place of a denial.
pub fn finish<'o>(
    state: &State,
    observed: &Observed<'_>,
    outcome: &'o Outcome,
    detail: Option<Detail>,
    decision_id: &str,
    span: &tracing::Span,
) -> std::borrow::Cow<'o, Outcome> {
    let latency = observed.started.elapsed();
    let allowed = matches!(outcome, Outcome::Allow { .. });
    let reason = outcome.reason();
    state
        .metrics()
        .decision(observed.frontend, allowed, reason, latency);
    span.record("decision_id", decision_id);
    span.record("result", if allowed { "allow" } else { "deny" });
    span.record("reason", reason);
    tracing::debug!(decision_id, allowed, reason, "decision");
    if let Some(detail) = detail
        && state.audit().is_on()
    {
        state
            .audit()
            .record(record(state, observed, outcome, detail, decision_id, latency));
    }
    if state.dry_run() && !allowed {
        std::borrow::Cow::Owned(Outcome::Allow {
            principal: None,
            account: None,
            permission: None,
            reason: DRY_RUN_REASON,
        })
    } else {
        std::borrow::Cow::Borrowed(outcome)
    }
}

fn record(
    state: &State,
    observed: &Observed<'_>,
    outcome: &Outcome,
    detail: Detail,
    decision_id: &str,
    latency: std::time::Duration,
) -> AuditRecord {
    let mut record = AuditRecord {
        time: SystemTime::now(),
        decision_id: decision_id.to_owned(),
        request_id: observed.request_id.map(str::to_owned),
        frontend: observed.frontend,
        method: observed.method.to_owned(),
        path: path_only(observed.target).to_owned(),
        account: detail.account,
        principal: detail.principal,
        permission: detail.permission,
        org: detail.org,
        project: detail.project,
        resource_type: detail.resource_type,
        resource_id: detail.resource_id,
        allowed: false,
        reason: outcome.reason(),
        latency_us: u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
        token_id: detail.token_id,
        issuer: detail.issuer,
        checks: detail.checks,
        dry_run: state.dry_run(),
    };
    match outcome {
        Outcome::Allow {
            principal,
            account,
            permission,
            ..
        } => {
            record.allowed = true;
            if principal.is_some() {
                record.principal.clone_from(principal);
            }
            if account.is_some() {
                record.account.clone_from(account);
            }
            if permission.is_some() {
                record.permission.clone_from(permission);
            }
        }
        Outcome::Deny(crate::serve::Denial::AccessDenied { check, .. }) => {
            record.account = Some(check.account.clone());
            record.permission = Some(check.permission.clone());
            record.org.clone_from(&check.org);
            record.project.clone_from(&check.project);
            record.resource_type = Some(check.resource_type.clone());
            record.resource_id.clone_from(&check.resource_id);
        }
        Outcome::Deny(_) => {}
    }
    record
}
