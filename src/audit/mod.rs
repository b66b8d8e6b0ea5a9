//! The decision audit log: one JSON line per decision (formats in README "Operations"), written off
//! the hot path. A Check that has the log on hands a borrowed [`AuditRecord`] to
//! [`AuditLog::record`], which writes its line (by hand, [`line`]; no allocation once warm) into a
//! bounded batch under a short lock and never waits on I/O; a dedicated writer thread takes the
//! whole batch every [`POLL_INTERVAL`] while records keep coming (so a Check never pays for waking
//! it; it parks after a second of quiet) and writes it, line by line, to a buffered
//! [`sink::LineSink`]. A record that finds the batch full is dropped, counted and warned about (at
//! most once every [`WARN_EVERY_SECS`]). [`AuditLog::close`] writes every batched record and stops
//! the writer; the server calls it after draining in-flight checks.
//!
//! A record never holds a credential: API keys are named by their `<token-id>`, JWTs by issuer and
//! principal, and the request path is recorded without its query string.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::SystemTime;

use crate::config;

pub mod line;
pub mod sink;

pub use sink::{LineSink, RotatingFile, StdoutSink};

/// The shortest interval between two "audit records dropped" warnings, in seconds.
pub const WARN_EVERY_SECS: u64 = 10;

/// One decision, as written to the audit log, borrowed from the decision that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditRecord<'a> {
    /// When the decision was made (RFC 3339, UTC, microseconds).
    pub time: SystemTime,
    /// The decision id (also sent as `x-scopegate-decision-id`).
    pub decision_id: &'a str,
    /// The request's `x-request-id` (Envoy: `attributes.request.http.id`), when given.
    pub request_id: Option<&'a str>,
    /// `grpc` (Envoy ext_authz), `http` (HTTP mode) or `acl` (`/authz/api/acl`).
    pub frontend: &'static str,
    /// The request's method.
    pub method: &'a str,
    /// The request's path, query string and fragment removed (they may carry secrets).
    pub path: &'a str,
    /// The account, when known.
    pub account: Option<&'a str>,
    /// `USER:alice` / `SERVICE_ACCOUNT:ci_bot`, when authenticated.
    pub principal: Option<&'a str>,
    /// The permission checked, when the route names one.
    pub permission: Option<&'a str>,
    /// The org of the scope checked, if any.
    pub org: Option<&'a str>,
    /// The project of the scope checked, if any.
    pub project: Option<&'a str>,
    /// The resource type checked, if any.
    pub resource_type: Option<&'a str>,
    /// The resource checked, if any.
    pub resource_id: Option<&'a str>,
    /// `allow` or `deny` (written as `result`): the real decision (also in dry-run mode).
    pub allowed: bool,
    /// The stable reason code.
    pub reason: &'static str,
    /// How long deciding took, in microseconds.
    pub latency_us: u64,
    /// The API key's `<token-id>` (never the token or its secret).
    pub token_id: Option<&'a str>,
    /// The JWT's issuer, for a JWT.
    pub issuer: Option<&'a str>,
    /// `/authz/api/acl`: how many checks the call asked (left out otherwise).
    pub checks: Option<usize>,
    /// Whether the server runs in `dry_run` mode (the request was allowed whatever `result` says).
    pub dry_run: bool,
}

/// The path of a request target without its query string or fragment.
pub fn path_only(target: &str) -> &str {
    target.find(['?', '#']).map_or(target, |end| &target[..end])
}

/// Records written but not yet taken by the writer, and the writer's state.
#[derive(Debug, Default)]
struct Batch {
    /// Complete lines, each ending in `\n`.
    lines: Vec<u8>,
    /// How many lines `lines` holds.
    records: usize,
    /// The writer waits on the condition variable (wake it for the next record).
    parked: bool,
    /// No more records are taken.
    closed: bool,
}

#[derive(Debug, Default)]
struct Shared {
    batch: Mutex<Batch>,
    wake: Condvar,
    counters: Counters,
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

/// Whether a rate-limited warning may be logged now (at most once per [`WARN_EVERY_SECS`]);
/// `last` holds when one last was (Unix seconds, 0 = never).
pub fn may_warn(last: &AtomicU64) -> bool {
    let now = crate::clock::now_unix().max(0).cast_unsigned();
    let previous = last.load(Ordering::Relaxed);
    (previous == 0 || now >= previous.saturating_add(WARN_EVERY_SECS))
        && last
            .compare_exchange(previous, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

/// The audit log: a bounded batch and its writer thread, or off.
pub struct AuditLog {
    shared: Option<Arc<Shared>>,
    capacity: usize,
    counters: Arc<Shared>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("on", &self.is_on())
            .field("counters", &self.counters.counters)
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
            shared: None,
            capacity: 0,
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

    /// A log writing to `sink`, holding at most `capacity` records not yet taken by the writer.
    pub fn with_sink(sink: Box<dyn LineSink>, capacity: usize) -> std::io::Result<Self> {
        let shared = Arc::<Shared>::default();
        let theirs = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name("scopegate-audit".to_owned())
            .spawn(move || write_loop(&theirs, sink))?;
        Ok(Self {
            shared: Some(Arc::clone(&shared)),
            capacity: capacity.max(1),
            counters: shared,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Whether records are written (build them only then).
    pub fn is_on(&self) -> bool {
        self.shared.is_some()
    }

    /// Takes a record without ever waiting on I/O: its line is written into the batch; a full
    /// batch (or a closed log) drops it and counts the drop.
    pub fn record(&self, record: &AuditRecord<'_>) {
        let Some(shared) = &self.shared else {
            return;
        };
        let refused = match shared.batch.lock() {
            Ok(mut batch) if !batch.closed && batch.records < self.capacity => {
                line::write(&mut batch.lines, record);
                batch.records += 1;
                shared.counters.depth.store(batch.records, Ordering::Relaxed);
                if batch.parked {
                    batch.parked = false;
                    shared.wake.notify_one();
                }
                None
            }
            Ok(batch) if batch.closed => Some("audit log closed"),
            Ok(_) => Some("audit queue full"),
            Err(_) => Some("audit log broken"),
        };
        if let Some(why) = refused {
            let dropped = shared.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if may_warn(&shared.counters.last_drop_warning) {
                tracing::warn!(
                    dropped_total = dropped,
                    code = "audit_dropped",
                    "{why}: decision records dropped"
                );
            }
        }
    }

    /// Writes every record taken so far, flushes the sink and stops the writer. Records offered
    /// afterwards are dropped and counted. Blocking; idempotent.
    pub fn close(&self) {
        if let Some(shared) = &self.shared
            && let Ok(mut batch) = shared.batch.lock()
        {
            batch.closed = true;
            shared.wake.notify_one();
        }
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(writer) = writer {
            let _ = writer.join();
        }
    }

    /// Records waiting for the writer.
    pub fn queue_depth(&self) -> usize {
        self.counters.counters.depth.load(Ordering::Relaxed)
    }

    /// Records dropped because the batch was full or the log closed.
    pub fn dropped(&self) -> u64 {
        self.counters.counters.dropped.load(Ordering::Relaxed)
    }

    /// Records written to the sink.
    pub fn written(&self) -> u64 {
        self.counters.counters.written.load(Ordering::Relaxed)
    }

    /// Records the sink failed to take (an I/O error, e.g. a full disk).
    pub fn write_errors(&self) -> u64 {
        self.counters.counters.write_errors.load(Ordering::Relaxed)
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.close();
    }
}

/// While records keep coming, the writer takes the batch this often instead of being woken for
/// each record, so the hot path never has to wake a parked thread (a futex syscall per record).
pub const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(5);
/// Empty polls in a row after which the writer parks until the next record (no idle wake-ups).
const IDLE_POLLS: u32 = 200;

/// Takes the batch (swapping in the writer's emptied buffer), parking after a quiet second;
/// `None` once the log is closed and drained.
fn take_batch(shared: &Shared, spare: &mut Vec<u8>, idle_polls: &mut u32) -> Option<usize> {
    let Ok(mut batch) = shared.batch.lock() else {
        return None;
    };
    loop {
        if batch.records > 0 {
            spare.clear();
            std::mem::swap(&mut batch.lines, spare);
            let taken = std::mem::take(&mut batch.records);
            shared.counters.depth.store(0, Ordering::Relaxed);
            *idle_polls = 0;
            return Some(taken);
        }
        if batch.closed {
            return None;
        }
        if *idle_polls < IDLE_POLLS {
            *idle_polls += 1;
            return Some(0);
        }
        batch.parked = true;
        batch = match shared.wake.wait(batch) {
            Ok(batch) => batch,
            Err(_) => return None,
        };
        batch.parked = false;
    }
}

fn write_loop(shared: &Shared, mut sink: Box<dyn LineSink>) {
    let counters = &shared.counters;
    let mut lines = Vec::with_capacity(64 * 1024);
    let mut idle_polls = 0;
    while let Some(taken) = take_batch(shared, &mut lines, &mut idle_polls) {
        if taken == 0 {
            std::thread::sleep(POLL_INTERVAL);
            continue;
        }
        for line in lines.split_inclusive(|b| *b == b'\n') {
            match sink.write_line(line) {
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
        // the batch is written: push it out before waiting for more
        if let Err(error) = sink.flush() {
            tracing::warn!(%error, code = "audit_write_failed", "cannot flush the audit log");
        }
    }
    if let Err(error) = sink.flush() {
        tracing::warn!(%error, code = "audit_write_failed", "cannot flush the audit log");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
