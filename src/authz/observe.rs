//! What happens to every verdict, whichever front end asked: a decision id, the decision and its
//! latency counted, the Check's span fields recorded, the audit record written (only when the
//! audit log is on) and, in dry-run mode, the verdict marked so a denial is answered as an allow.
//! One place, so the front ends cannot disagree.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::audit::{AuditLog, AuditRecord, path_only};
use crate::authz::request::Request;
use crate::authz::verdict::{Denial, Outcome, Verdict};
use crate::telemetry::metrics::Metrics;

/// The `content-type` of the `/metrics` text.
pub use crate::telemetry::metrics::CONTENT_TYPE as METRICS_CONTENT_TYPE;

/// Decision ids, metrics, the audit log and the dry-run switch.
#[derive(Debug)]
pub struct Observer {
    audit: AuditLog,
    metrics: Metrics,
    dry_run: bool,
    id_prefix: u32,
    id_counter: AtomicU64,
}

impl Default for Observer {
    fn default() -> Self {
        Self::new()
    }
}

impl Observer {
    /// Counting, no audit log, enforcing; decision ids under a random per-process prefix.
    pub fn new() -> Self {
        Self {
            audit: AuditLog::off(),
            metrics: Metrics::new(),
            dry_run: false,
            id_prefix: rand::random(),
            id_counter: AtomicU64::new(0),
        }
    }

    /// The audit log (off unless configured).
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// The event metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Whether the server runs in dry-run mode.
    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    pub(crate) fn set_audit(&mut self, audit: AuditLog) {
        self.audit = audit;
    }

    pub(crate) fn set_dry_run(&mut self, dry_run: bool) {
        self.dry_run = dry_run;
    }

    /// Whether deciding should collect [`Facts`](crate::authz::verdict::Facts) (the audit log uses them).
    pub fn wants_facts(&self) -> bool {
        self.audit.is_on()
    }

    /// A new decision id: a per-process random prefix and a counter.
    pub fn next_decision_id(&self) -> String {
        let n = self.id_counter.fetch_add(1, Ordering::Relaxed);
        format!("{:08x}-{n:x}", self.id_prefix)
    }

    /// Gives `verdict` its decision id and dry-run mark, counts, traces and audits it.
    pub fn observe(
        &self,
        request: &Request<'_>,
        verdict: &mut Verdict,
        started: Instant,
        span: &tracing::Span,
    ) {
        verdict.decision_id = self.next_decision_id();
        verdict.dry_run = self.dry_run;
        let latency = started.elapsed();
        let outcome = &verdict.outcome;
        let (allowed, reason) = (outcome.is_allow(), outcome.reason());
        self.metrics.decision(request.frontend, allowed, reason, latency);
        let decision_id = verdict.decision_id.as_str();
        span.record("decision_id", decision_id);
        span.record("result", if allowed { "allow" } else { "deny" });
        span.record("reason", reason);
        tracing::debug!(decision_id, allowed, reason, "decision");
        if self.audit.is_on() {
            self.audit.record(self.record(request, verdict, latency));
        }
    }

    fn record(&self, request: &Request<'_>, verdict: &Verdict, latency: Duration) -> AuditRecord {
        let facts = verdict.facts.clone();
        let mut record = AuditRecord {
            time: SystemTime::now(),
            decision_id: verdict.decision_id.clone(),
            request_id: request.request_id.map(str::to_owned),
            frontend: request.frontend,
            method: request.method.to_owned(),
            path: path_only(request.path).to_owned(),
            account: facts.account,
            principal: facts.principal,
            permission: facts.permission,
            org: facts.org,
            project: facts.project,
            resource_type: facts.resource_type,
            resource_id: facts.resource_id,
            allowed: false,
            reason: verdict.outcome.reason(),
            latency_us: u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            token_id: facts.token_id,
            issuer: facts.issuer,
            checks: facts.checks,
            dry_run: self.dry_run,
        };
        match &verdict.outcome {
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
            Outcome::Deny(Denial::AccessDenied { check, .. }) => {
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
}
