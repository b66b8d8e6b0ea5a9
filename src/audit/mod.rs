//! The decision audit log: one JSON line per decision (formats in README "Operations"), written off
//! the hot path. A Check builds an [`AuditRecord`] only when the log is on and hands it to
//! [`AuditLog::record`], which never blocks: a bounded queue feeds a dedicated writer thread that
//! owns a buffered [`sink::LineSink`]; under load the writer polls the queue
//! ([`POLL_INTERVAL`]) so a Check never pays for waking it. A record that finds the queue full is dropped, counted and
//! warned about (at most once every [`WARN_EVERY_SECS`]). [`AuditLog::close`] flushes every queued
//! record and stops the writer; the server calls it after draining in-flight checks.
//!
//! A record never holds a credential: API keys are named by their `<token-id>`, JWTs by issuer and
//! principal, and the request path is recorded without its query string.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::{Serialize, Serializer};

use crate::config;

pub mod sink;

pub use sink::{LineSink, RotatingFile, StdoutSink};

/// The shortest interval between two "audit records dropped" warnings, in seconds.
pub const WARN_EVERY_SECS: u64 = 10;

/// One decision, as written to the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// When the decision was made (RFC 3339, UTC).
    #[serde(serialize_with = "rfc3339")]
    pub time: SystemTime,
    /// The decision id (also sent as `x-scopegate-decision-id`).
    pub decision_id: String,
    /// The request's `x-request-id` (Envoy: `attributes.request.http.id`), when given.
    pub request_id: Option<String>,
    /// `grpc` (Envoy ext_authz), `http` (HTTP mode) or `acl` (`/authz/api/acl`).
    pub frontend: &'static str,
    /// The request's method.
    pub method: String,
    /// The request's path, query string and fragment removed (they may carry secrets).
    pub path: String,
    /// The account, when known.
    pub account: Option<String>,
    /// `USER:alice` / `SERVICE_ACCOUNT:ci_bot`, when authenticated.
    pub principal: Option<String>,
    /// The permission checked, when the route names one.
    pub permission: Option<String>,
    /// The org of the scope checked, if any.
    pub org: Option<String>,
    /// The project of the scope checked, if any.
    pub project: Option<String>,
    /// The resource type checked, if any.
    pub resource_type: Option<String>,
    /// The resource checked, if any.
    pub resource_id: Option<String>,
    /// `allow` or `deny`: the real decision (also in dry-run mode).
    #[serde(rename = "result", serialize_with = "result")]
    pub allowed: bool,
    /// The stable reason code.
    pub reason: &'static str,
    /// How long deciding took, in microseconds.
    pub latency_us: u64,
    /// The API key's `<token-id>` (never the token or its secret).
    pub token_id: Option<String>,
    /// The JWT's issuer, for a JWT.
    pub issuer: Option<String>,
    /// `/authz/api/acl`: how many checks the call asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<usize>,
    /// Whether the server runs in `dry_run` mode (the request was allowed whatever `result` says).
    pub dry_run: bool,
}

fn rfc3339<S: Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    let formatted = time::OffsetDateTime::from(*time)
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(serde::ser::Error::custom)?;
    serializer.serialize_str(&formatted)
}

fn result<S: Serializer>(allowed: &bool, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(if *allowed { "allow" } else { "deny" })
}

/// The path of a request target without its query string or fragment.
pub fn path_only(target: &str) -> &str {
    target.find(['?', '#']).map_or(target, |end| &target[..end])
}

enum Message {
    Record(Box<AuditRecord>),
    Close,
}

#[derive(Debug, Default)]
struct Counters {
    depth: AtomicUsize,
    dropped: AtomicU64,
    written: AtomicU64,
    write_errors: AtomicU64,
    last_drop_warning: AtomicU64,
    last_error_warning: AtomicU64,
}

/// Whether a rate-limited warning may be logged now (at most once per [`WARN_EVERY_SECS`]).
fn may_warn(last: &AtomicU64) -> bool {
    let now = crate::clock::now_unix().max(0).cast_unsigned();
    let previous = last.load(Ordering::Relaxed);
    (previous == 0 || now >= previous.saturating_add(WARN_EVERY_SECS))
        && last
            .compare_exchange(previous, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

/// The audit log: a bounded queue and its writer thread, or off.
pub struct AuditLog {
    sender: Option<SyncSender<Message>>,
    counters: Arc<Counters>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("on", &self.is_on())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Default for AuditLog {
    fn default() -> Self {
        Self::off()
    }
}

impl AuditLog {
    /// No audit log: records are neither built nor written.
    pub fn off() -> Self {
        Self {
            sender: None,
            counters: Arc::default(),
            writer: Mutex::new(None),
        }
    }

    /// The log the configuration asks for (`off`, `stdout` or `file:PATH`, rotated by size).
    pub fn from_config(audit: &config::Audit) -> std::io::Result<Self> {
        let sink: Box<dyn LineSink> = match audit.sink.as_str() {
            "off" => return Ok(Self::off()),
            "stdout" => Box::new(StdoutSink::new()),
            other => {
                let path = other.strip_prefix("file:").unwrap_or(other);
                Box::new(RotatingFile::open(
                    std::path::Path::new(path),
                    audit.max_bytes,
                    audit.keep,
                )?)
            }
        };
        Self::with_sink(sink, audit.queue)
    }

    /// A log writing to `sink` through a queue of `capacity` records.
    pub fn with_sink(sink: Box<dyn LineSink>, capacity: usize) -> std::io::Result<Self> {
        let (sender, receiver) = std::sync::mpsc::sync_channel(capacity.max(1));
        let counters = Arc::<Counters>::default();
        let shared = Arc::clone(&counters);
        let writer = std::thread::Builder::new()
            .name("scopegate-audit".to_owned())
            .spawn(move || write_loop(&receiver, sink, &shared))?;
        Ok(Self {
            sender: Some(sender),
            counters,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Whether records are written (build them only then).
    pub fn is_on(&self) -> bool {
        self.sender.is_some()
    }

    /// Queues a record without ever waiting; a full (or closed) queue drops it and counts the drop.
    pub fn record(&self, record: AuditRecord) {
        let Some(sender) = &self.sender else {
            return;
        };
        self.counters.depth.fetch_add(1, Ordering::Relaxed);
        if let Err(error) = sender.try_send(Message::Record(Box::new(record))) {
            self.counters.depth.fetch_sub(1, Ordering::Relaxed);
            let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if may_warn(&self.counters.last_drop_warning) {
                let why = match error {
                    TrySendError::Full(_) => "audit queue full",
                    TrySendError::Disconnected(_) => "audit log closed",
                };
                tracing::warn!(
                    dropped_total = dropped,
                    code = "audit_dropped",
                    "{why}: decision records dropped"
                );
            }
        }
    }

    /// Writes every record queued so far, flushes the sink and stops the writer. Records offered
    /// afterwards are dropped and counted. Blocking; idempotent.
    pub fn close(&self) {
        if let Some(sender) = &self.sender {
            let _ = sender.send(Message::Close);
        }
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(writer) = writer {
            let _ = writer.join();
        }
    }

    /// Records waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.counters.depth.load(Ordering::Relaxed)
    }

    /// Records dropped because the queue was full or the log closed.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Records written to the sink.
    pub fn written(&self) -> u64 {
        self.counters.written.load(Ordering::Relaxed)
    }

    /// Records the sink failed to take (an I/O error, e.g. a full disk).
    pub fn write_errors(&self) -> u64 {
        self.counters.write_errors.load(Ordering::Relaxed)
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.close();
    }
}

/// While records keep coming, the writer polls the queue this often instead of blocking on it, so
/// the hot path's `try_send` never has to wake a parked thread (a futex syscall per record).
pub const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(5);
/// Empty polls in a row after which the writer blocks until the next record (no idle wake-ups).
const IDLE_POLLS: u32 = 200;

fn write_loop(receiver: &Receiver<Message>, mut sink: Box<dyn LineSink>, counters: &Counters) {
    let mut line = Vec::with_capacity(1024);
    let mut unflushed = false;
    let mut idle_polls = 0;
    loop {
        let message = match receiver.try_recv() {
            Ok(message) => message,
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {
                // the queue is drained: push what was written, then wait for more
                if unflushed {
                    unflushed = false;
                    if let Err(error) = sink.flush() {
                        tracing::warn!(%error, code = "audit_write_failed", "cannot flush the audit log");
                    }
                }
                if idle_polls < IDLE_POLLS {
                    idle_polls += 1;
                    std::thread::sleep(POLL_INTERVAL);
                    continue;
                }
                match receiver.recv() {
                    Ok(message) => message,
                    Err(_) => break,
                }
            }
        };
        idle_polls = 0;
        let Message::Record(record) = message else {
            break;
        };
        counters.depth.fetch_sub(1, Ordering::Relaxed);
        line.clear();
        let written = serde_json::to_writer(&mut line, &*record)
            .map_err(std::io::Error::other)
            .and_then(|()| {
                line.push(b'\n');
                sink.write_line(&line)
            });
        unflushed = true;
        match written {
            Ok(()) => {
                counters.written.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                counters.write_errors.fetch_add(1, Ordering::Relaxed);
                if may_warn(&counters.last_error_warning) {
                    tracing::warn!(%error, code = "audit_write_failed", "cannot write the audit log");
                }
            }
        }
    }
    if let Err(error) = sink.flush() {
        tracing::warn!(%error, code = "audit_write_failed", "cannot flush the audit log");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
