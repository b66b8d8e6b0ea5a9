//! What happens to every verdict, whichever front end asked: a decision id, the decision and its
//! latency counted, the Check's span fields recorded, the audit record written (only when the
//! audit log is on) and, in dry-run mode, the verdict marked so a denial is answered as an allow.
//! One place, so the front ends cannot disagree.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::audit::{AuditLog, AuditRecord, may_warn, path_only};
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
    /// When an operator error was last logged (Unix seconds), to rate-limit the log.
    last_operator_error: AtomicU64,
}

/// `<prefix as 8 hex digits>-<n in hex>`, written without the formatting machinery (once per
/// request).
fn decision_id(prefix: u32, n: u64) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(25);
    for shift in (0..8).rev() {
        id.push(char::from(HEX[(prefix >> (shift * 4)) as usize & 0xf]));
    }
    id.push('-');
    let digits = (64 - n.leading_zeros()).div_ceil(4).max(1);
    for shift in (0..digits).rev() {
        id.push(char::from(HEX[(n >> (shift * 4)) as usize & 0xf]));
    }
    id
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
            last_operator_error: AtomicU64::new(0),
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
        decision_id(self.id_prefix, n)
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
        if let Outcome::Deny(Denial::OperatorError { .. }) = outcome
            && may_warn(&self.last_operator_error)
        {
            // the permission comes from the proxy's configuration, not from the client
            tracing::error!(
                code = reason,
                decision_id,
                permission = request.permission_override.unwrap_or_default(),
                method = request.method,
                path = path_only(request.path),
                "a permission or resource type of the proxy's configuration (context_extensions.permission) \
                 or the route table is not in the catalog: every such request is answered 500"
            );
        }
        if self.audit.is_on() {
            self.audit.record(&self.record(request, verdict, latency));
        }
    }

    fn record<'v>(
        &self,
        request: &'v Request<'_>,
        verdict: &'v Verdict,
        latency: Duration,
    ) -> AuditRecord<'v> {
        let facts = &verdict.facts;
        let mut record = AuditRecord {
            time: SystemTime::now(),
            decision_id: &verdict.decision_id,
            request_id: request.request_id,
            frontend: request.frontend,
            method: request.method,
            path: path_only(request.path),
            account: facts.account.as_deref(),
            principal: facts.principal.as_deref(),
            permission: facts.permission.as_deref(),
            org: facts.org.as_deref(),
            project: facts.project.as_deref(),
            resource_type: facts.resource_type.as_deref(),
            resource_id: facts.resource_id.as_deref(),
            allowed: false,
            reason: verdict.outcome.reason(),
            latency_us: u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            token_id: facts.token_id.as_deref(),
            issuer: facts.issuer.as_deref(),
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
                record.principal = principal.as_deref().or(record.principal);
                record.account = account.as_deref().or(record.account);
                record.permission = permission.as_deref().or(record.permission);
            }
            Outcome::Deny(Denial::AccessDenied { check, .. }) => {
                record.account = Some(&check.account);
                record.permission = Some(&check.permission);
                record.org = check.org.as_deref();
                record.project = check.project.as_deref();
                record.resource_type = Some(&check.resource_type);
                record.resource_id = check.resource_id.as_deref();
            }
            Outcome::Deny(_) => {}
        }
        record
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn decision_ids_are_the_prefix_and_the_counter_in_hex() {
        for (prefix, n) in [(0, 0), (0x5f0c_9a1e, 0x2a), (u32::MAX, u64::MAX), (1, 16)] {
            assert_eq!(super::decision_id(prefix, n), format!("{prefix:08x}-{n:x}"));
        }
    }
}
