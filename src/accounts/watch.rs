//! One account's Watch task and what it publishes: the stream to the control plane, applying each
//! version (compiled off the async workers; a snapshot that fails to compile never replaces the valid
//! one), last-known-good copies, reconnects with backoff and jitter, and the source's counters.
//!
//! The backoff is reset only when a snapshot from the stream is applied, not when a stream opens,
//! so a control plane that breaks every stream right after opening it is retried ever more slowly;
//! failures are warned about at most once per [`WARN_INTERVAL`](crate::accounts::failure_log::WARN_INTERVAL).
//! With several control-plane URLs (replicas), every task uses the one in use, and a stream that
//! breaks, ends or cannot be opened moves it to the next, in turn: killing a replica sends its
//! sidecars to another, which sends anything newer than the version they hold at once.
//! A snapshot larger than `max_snapshot_bytes`, at a reserved version ([`MIN_RESERVED_VERSION`] and
//! up) or jumping more than [`MAX_VERSION_JUMP`] past the version in force is refused with an error
//! logged, and the version in force is kept: one bad publish cannot pin an account forever.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

use crate::accounts::apply::Applied;
use crate::accounts::failure_log::FailureLog;
use crate::accounts::{Backoff, last_known_good};
use crate::proto::snapshot_service_client::SnapshotServiceClient;
use crate::proto::{Ack, Nack, Subscribe, SyncRequest, sync_request, sync_response};
use crate::rbac::model::AccountSnapshot;
use crate::rbac::{Catalog, CompiledAccount};

/// Versions from here up (the upper half of `u64`) are reserved and refused: a version near
/// `u64::MAX` would leave no room for any later one.
pub const MIN_RESERVED_VERSION: u64 = 1 << 63;
/// The largest step forward from the version in force that is accepted (2^48: room for counters
/// and millisecond timestamps; a bigger jump is refused as a mistaken publish).
pub const MAX_VERSION_JUMP: u64 = 1 << 48;

/// Acknowledgements waiting to be sent (more are dropped: they only inform the control plane).
const QUEUED_REQUESTS: usize = 16;

/// Why a version is refused before it is compiled, if it is.
pub(super) fn absurd_version(current: Option<u64>, version: u64) -> Option<&'static str> {
    if version >= MIN_RESERVED_VERSION {
        return Some("the version is in the reserved range (2^63 and up)");
    }
    match current {
        Some(current) if version.saturating_sub(current) > MAX_VERSION_JUMP => {
            Some("the version jumps more than 2^48 past the version in force")
        }
        _ => None,
    }
}

/// Where an account's slot stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LoadState {
    /// No answer yet: requests wait (up to the load timeout).
    Loading,
    /// A snapshot is published.
    Loaded,
    /// The first attempt failed and nothing is published: requests fail at once.
    Unavailable,
    /// The control plane has no such account and nothing is published: the task has ended.
    Unknown,
}

/// What one account's slot publishes, shared by the slot and its Watch task.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) account: ArcSwapOption<CompiledAccount>,
    pub(super) published_at: Mutex<Option<Instant>>,
    pub(super) state: watch::Sender<LoadState>,
}

impl Shared {
    pub(super) fn new() -> Self {
        Self {
            account: ArcSwapOption::empty(),
            published_at: Mutex::new(None),
            state: watch::Sender::new(LoadState::Loading),
        }
    }

    pub(super) fn version(&self) -> Option<u64> {
        self.account.load().as_ref().map(|a| a.version())
    }

    pub(super) fn publish(&self, account: Arc<CompiledAccount>) {
        self.account.store(Some(account));
        if let Ok(mut at) = self.published_at.lock() {
            *at = Some(Instant::now());
        }
        self.state.send_replace(LoadState::Loaded);
    }

    pub(super) fn mark_unavailable(&self) {
        if self.account.load().is_none() {
            self.state.send_replace(LoadState::Unavailable);
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) load_failures: AtomicU64,
    pub(super) reconnects: AtomicU64,
    pub(super) versions_applied: AtomicU64,
    pub(super) deltas_applied: AtomicU64,
    pub(super) deltas_rejected: AtomicU64,
    pub(super) evictions: AtomicU64,
    pub(super) watch_streams: AtomicU64,
}

/// Counts a running Watch task for as long as it lives.
struct StreamGauge(Arc<Context>);

impl Drop for StreamGauge {
    fn drop(&mut self) {
        self.0.counters.watch_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What every Watch task needs.
#[derive(Debug)]
pub(super) struct Context {
    /// One endpoint per control-plane URL, in the order tried, each with its channel once made.
    pub(super) channels: Vec<(Endpoint, OnceLock<Channel>)>,
    /// The index of the URL in use.
    pub(super) in_use: AtomicUsize,
    pub(super) catalog: Arc<Catalog>,
    pub(super) cache_dir: Option<PathBuf>,
    pub(super) backoff: (Duration, Duration),
    pub(super) max_snapshot_bytes: usize,
    /// The name this sidecar gives the control plane (its pod), or empty.
    pub(super) node: String,
    pub(super) counters: Counters,
}

impl Context {
    /// The URL in use (its index) and its channel.
    fn channel(&self) -> Option<(usize, Channel)> {
        let index = self.in_use.load(Ordering::Relaxed) % self.channels.len().max(1);
        let (endpoint, channel) = self.channels.get(index)?;
        Some((index, channel.get_or_init(|| endpoint.connect_lazy()).clone()))
    }

    /// Moves to the next URL after `failed`, unless another task has moved already.
    fn fail_over(&self, failed: usize, account: &str) {
        let count = self.channels.len();
        if count < 2 {
            return;
        }
        let next = (failed + 1) % count;
        if self
            .in_use
            .compare_exchange(failed, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            let uri = self.channels.get(next).map(|(e, _)| e.uri().to_string());
            tracing::info!(
                account,
                next = uri,
                "control plane unreachable; trying the next replica"
            );
        }
    }

    async fn read_last_known_good(&self, account: &str) -> Option<AccountSnapshot> {
        let dir = self.cache_dir.clone()?;
        let name = account.to_owned();
        let read = tokio::task::spawn_blocking(move || last_known_good::read(&dir, &name)).await;
        match read {
            Ok(Ok(snapshot)) => snapshot,
            Ok(Err(error)) => {
                tracing::warn!(account, %error, "last-known-good copy unusable");
                None
            }
            Err(_) => None,
        }
    }
}

/// Logs one failure of `account`'s Watch loop: a warning when `log` says one is due, else debug.
fn log_failure(log: &mut FailureLog, account: &str, status: &tonic::Status, what: &'static str) {
    let too_large = status.code() == tonic::Code::OutOfRange;
    match log.failure(Instant::now()) {
        Some(_) if too_large => tracing::error!(
            account,
            status_message = status.message(),
            "snapshot larger than max_snapshot_bytes refused; keeping the version in force"
        ),
        Some(suppressed) => tracing::warn!(
            account,
            code = ?status.code(),
            status_message = status.message(),
            suppressed,
            "{what}; retrying with backoff"
        ),
        None => tracing::debug!(account, code = ?status.code(), status_message = status.message(), "{what}"),
    }
}

/// One account's Watch loop; runs until its slot is dropped (the task is aborted) or, unless
/// `retry_unknown`, until the control plane says it has no such account while nothing is published.
pub(super) async fn watch_account(
    ctx: Arc<Context>,
    shared: Arc<Shared>,
    account: String,
    retry_unknown: bool,
) {
    ctx.counters.watch_streams.fetch_add(1, Ordering::Relaxed);
    let _gauge = StreamGauge(Arc::clone(&ctx));
    let mut last_known_good = ctx.read_last_known_good(&account).await;
    let mut backoff = Backoff::new(ctx.backoff.0, ctx.backoff.1);
    let mut failures = FailureLog::default();
    let mut first = true;
    // the snapshot of the version in force: what a delta applies to
    let mut held: Option<Arc<AccountSnapshot>> = None;
    loop {
        if !first {
            ctx.counters.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        first = false;
        let known_version = shared
            .version()
            .or(last_known_good.as_ref().map(|s| s.version))
            .unwrap_or(0);
        let Some((in_use, channel)) = ctx.channel() else {
            return;
        };
        let mut client =
            SnapshotServiceClient::new(channel).max_decoding_message_size(ctx.max_snapshot_bytes);
        let (requests, outbound) = mpsc::channel(QUEUED_REQUESTS);
        let _ = requests.try_send(SyncRequest {
            kind: Some(sync_request::Kind::Subscribe(Subscribe {
                account: account.clone(),
                known_version,
                node: ctx.node.clone(),
            })),
        });
        let unknown = match client.sync(ReceiverStream::new(outbound)).await {
            Ok(response) => {
                // The control plane sends at once anything newer than the copy we hold, so the copy
                // is current until then.
                if let Some(snapshot) = last_known_good.take()
                    && let Applied::New(doc) = ctx.apply(&shared, &account, snapshot, false).await
                {
                    held = Some(doc);
                }
                let mut stream = response.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(message)) => {
                            let (version, applied) = match message.update {
                                Some(sync_response::Update::Snapshot(snapshot)) => (
                                    snapshot.version,
                                    ctx.apply(&shared, &account, snapshot, true).await,
                                ),
                                Some(sync_response::Update::Delta(delta)) => (
                                    delta.to_version,
                                    ctx.apply_delta(&shared, &account, &mut held, delta).await,
                                ),
                                None => continue,
                            };
                            let kind = match applied {
                                Applied::New(doc) => {
                                    held = Some(doc);
                                    // Only a version applied proves the control plane works: a
                                    // stream that opens and breaks at once keeps backing off.
                                    backoff.reset();
                                    if failures.recovered() {
                                        tracing::info!(account, "control plane reachable again");
                                    }
                                    sync_request::Kind::Ack(Ack { version })
                                }
                                Applied::Stale => continue,
                                Applied::Refused(error) => sync_request::Kind::Nack(Nack { version, error }),
                            };
                            // informational: a control plane not reading them loses nothing
                            let _ = requests.try_send(SyncRequest { kind: Some(kind) });
                        }
                        Ok(None) => {
                            tracing::debug!(account, "sync stream ended by the control plane");
                            ctx.fail_over(in_use, &account);
                            break;
                        }
                        Err(status) => {
                            if status.code() == tonic::Code::OutOfRange {
                                ctx.counters.load_failures.fetch_add(1, Ordering::Relaxed);
                                shared.mark_unavailable();
                            }
                            log_failure(&mut failures, &account, &status, "sync stream broken");
                            ctx.fail_over(in_use, &account);
                            break;
                        }
                    }
                }
                false
            }
            Err(status) => {
                ctx.counters.load_failures.fetch_add(1, Ordering::Relaxed);
                let unknown = status.code() == tonic::Code::NotFound;
                if unknown {
                    // Request-driven (any account a request names): not worth a warning.
                    tracing::debug!(account, "the control plane has no such account");
                } else {
                    log_failure(
                        &mut failures,
                        &account,
                        &status,
                        "cannot sync the account with the control plane",
                    );
                    ctx.fail_over(in_use, &account);
                }
                if let Some(snapshot) = last_known_good.take() {
                    tracing::info!(
                        account,
                        version = snapshot.version,
                        "serving the last-known-good copy"
                    );
                    if let Applied::New(doc) = ctx.apply(&shared, &account, snapshot, false).await {
                        held = Some(doc);
                    }
                }
                if unknown && !retry_unknown && shared.account.load().is_none() {
                    // Remembered by the source's negative cache; no task lingers per unknown name.
                    shared.state.send_replace(LoadState::Unknown);
                    return;
                }
                shared.mark_unavailable();
                unknown
            }
        };
        // An account the control plane does not know is asked about again only slowly.
        let delay = backoff.next_delay();
        let delay = if unknown {
            delay.max(ctx.backoff.1 / 2)
        } else {
            delay
        };
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_versions_are_refused() {
        assert_eq!(absurd_version(None, 1), None);
        assert_eq!(absurd_version(None, 1_700_000_000_000), None);
        assert_eq!(absurd_version(Some(7), 8), None);
        assert_eq!(absurd_version(Some(7), 7 + MAX_VERSION_JUMP), None);
        assert!(absurd_version(Some(7), 8 + MAX_VERSION_JUMP).is_some());
        assert!(absurd_version(None, u64::MAX).is_some());
        assert!(absurd_version(Some(1), u64::MAX).is_some());
        assert!(absurd_version(None, MIN_RESERVED_VERSION).is_some());
    }
}
