//! The change log of the management API: one JSON line per write, committed or refused, in the
//! form of the sidecar's decision log (`time`, `decision_id`, `request_id`, `frontend`, `method`,
//! `path`, `account`, `principal`, `token_id`, `result`, `reason`) plus what changed and the
//! revisions before and after. Written to standard output or a file ([`crate::audit::sink`]);
//! writes are rare, so a line is written and flushed under a lock, never dropped.

use std::sync::Mutex;
use std::time::SystemTime;

use serde::Serialize;

use crate::audit::sink::LineSink;

/// One management change.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeRecord {
    /// When (RFC 3339, UTC).
    pub time: String,
    /// The call's correlation id (its `correlationId`).
    pub decision_id: String,
    /// The request's `x-request-id`, when given.
    pub request_id: Option<String>,
    /// Always `management`.
    pub frontend: &'static str,
    /// The method.
    pub method: String,
    /// The path, without its query.
    pub path: String,
    /// The account.
    pub account: String,
    /// Who: `USER:alice` / `SERVICE_ACCOUNT:ci_bot`.
    pub principal: String,
    /// The caller's API token id (never the token).
    pub token_id: String,
    /// `committed` or `refused`.
    pub result: &'static str,
    /// `committed`, or the refusal's error code (`DUPLICATE_FIELD`, …).
    pub reason: String,
    /// What changed (`role_assignment created: ra1`), or why it was refused.
    pub change: String,
    /// The revision before (absent when refused).
    pub before_revision: Option<u64>,
    /// The revision after (absent when refused).
    pub after_revision: Option<u64>,
}

/// Where change records go.
pub struct ChangeLog {
    sink: Option<Mutex<Box<dyn LineSink>>>,
}

impl std::fmt::Debug for ChangeLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeLog")
            .field("on", &self.sink.is_some())
            .finish()
    }
}

impl ChangeLog {
    /// No change log.
    pub fn off() -> Self {
        Self { sink: None }
    }

    /// A change log writing to `sink`.
    pub fn new(sink: Box<dyn LineSink>) -> Self {
        Self {
            sink: Some(Mutex::new(sink)),
        }
    }

    /// Writes one record and flushes it; a failed write is logged.
    pub fn record(&self, record: &ChangeRecord) {
        let Some(sink) = &self.sink else {
            return;
        };
        let Ok(mut line) = serde_json::to_vec(record) else {
            return;
        };
        line.push(b'\n');
        let Ok(mut sink) = sink.lock() else {
            return;
        };
        if let Err(error) = sink.write_line(&line).and_then(|()| sink.flush()) {
            tracing::warn!(%error, code = "audit_write_failed", "cannot write the management change log");
        }
    }
}

/// Now, in RFC 3339.
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// A time in RFC 3339 (UTC).
pub fn rfc3339(time: SystemTime) -> String {
    time::OffsetDateTime::from(time)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
