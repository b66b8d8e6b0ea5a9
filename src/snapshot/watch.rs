//! One account's Watch task and what it publishes: the stream to the control plane, applying each
//! version (compiled off the async workers; a snapshot that fails to compile never replaces the valid
//! one), last-known-good copies, reconnects with backoff and jitter, and the source's counters.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use tokio::sync::watch;
use tonic::transport::{Channel, Endpoint};

use crate::proto::WatchRequest;
use crate::proto::snapshot_service_client::SnapshotServiceClient;
use crate::rbac::model::AccountSnapshot;
use crate::rbac::{Catalog, CompiledAccount, compile};
use crate::snapshot::control_plane::MAX_MESSAGE_BYTES;
use crate::snapshot::{Backoff, last_known_good};

/// Where an account's slot stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LoadState {
    /// No answer yet: requests wait (up to the load timeout).
    Loading,
    /// A snapshot is published.
    Loaded,
    /// The first attempt failed and nothing is published: requests fail at once.
    Unavailable,
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

    fn publish(&self, account: Arc<CompiledAccount>) {
        self.account.store(Some(account));
        if let Ok(mut at) = self.published_at.lock() {
            *at = Some(Instant::now());
        }
        self.state.send_replace(LoadState::Loaded);
    }

    fn mark_unavailable(&self) {
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
    pub(super) endpoint: Endpoint,
    pub(super) channel: OnceLock<Channel>,
    pub(super) catalog: Arc<Catalog>,
    pub(super) cache_dir: Option<PathBuf>,
    pub(super) backoff: (Duration, Duration),
    pub(super) counters: Counters,
}

impl Context {
    fn channel(&self) -> Channel {
        self.channel.get_or_init(|| self.endpoint.connect_lazy()).clone()
    }

    /// Compiles `snapshot` off the async workers and publishes it when it is newer than the version
    /// in force and valid; a control-plane snapshot is then saved as last-known-good.
    async fn apply(&self, shared: &Shared, account: &str, snapshot: AccountSnapshot, save: bool) {
        let current = shared.version();
        if current.is_some_and(|c| snapshot.version <= c) {
            return;
        }
        if snapshot.account != account {
            self.counters.load_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(account, "snapshot of another account received; ignored");
            return;
        }
        let catalog = Arc::clone(&self.catalog);
        let compiled = tokio::task::spawn_blocking(move || {
            let compiled = compile(&snapshot, catalog, current);
            (snapshot, compiled)
        })
        .await;
        let Ok((snapshot, compiled)) = compiled else {
            return;
        };
        match compiled {
            Ok(compiled) => {
                tracing::info!(account, version = compiled.version(), "snapshot applied");
                shared.publish(Arc::new(compiled));
                self.counters.versions_applied.fetch_add(1, Ordering::Relaxed);
                if let (true, Some(dir)) = (save, self.cache_dir.clone()) {
                    let written =
                        tokio::task::spawn_blocking(move || last_known_good::write(&dir, &snapshot)).await;
                    if let Ok(Err(error)) = written {
                        tracing::warn!(account, %error, "cannot write the last-known-good copy");
                    }
                }
            }
            Err(error) => {
                self.counters.load_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(account, %error, "snapshot rejected; keeping the valid version");
                shared.mark_unavailable();
            }
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

/// One account's Watch loop; runs until its slot is dropped (the task is aborted).
pub(super) async fn watch_account(ctx: Arc<Context>, shared: Arc<Shared>, account: String) {
    ctx.counters.watch_streams.fetch_add(1, Ordering::Relaxed);
    let _gauge = StreamGauge(Arc::clone(&ctx));
    let mut last_known_good = ctx.read_last_known_good(&account).await;
    let mut backoff = Backoff::new(ctx.backoff.0, ctx.backoff.1);
    let mut failing = false;
    let mut first = true;
    loop {
        if !first {
            ctx.counters.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        first = false;
        let known_version = shared
            .version()
            .or(last_known_good.as_ref().map(|s| s.version))
            .unwrap_or(0);
        let mut client =
            SnapshotServiceClient::new(ctx.channel()).max_decoding_message_size(MAX_MESSAGE_BYTES);
        let request = WatchRequest {
            account: account.clone(),
            known_version,
        };
        let unknown = match client.watch(request).await {
            Ok(response) => {
                if failing {
                    tracing::info!(account, "control plane reachable again");
                }
                failing = false;
                backoff.reset();
                // The control plane sends at once anything newer than the copy we hold, so the copy
                // is current until then.
                if let Some(snapshot) = last_known_good.take() {
                    ctx.apply(&shared, &account, snapshot, false).await;
                }
                let mut stream = response.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(message)) => {
                            if let Some(snapshot) = message.snapshot {
                                ctx.apply(&shared, &account, snapshot, true).await;
                            }
                        }
                        Ok(None) => {
                            tracing::info!(account, "watch stream ended by the control plane");
                            break;
                        }
                        Err(status) => {
                            tracing::warn!(account, code = ?status.code(), "watch stream broken");
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
                } else if !failing {
                    tracing::warn!(
                        account,
                        code = ?status.code(),
                        message = status.message(),
                        "cannot watch the account on the control plane; retrying with backoff"
                    );
                }
                failing = true;
                if let Some(snapshot) = last_known_good.take() {
                    tracing::info!(
                        account,
                        version = snapshot.version,
                        "serving the last-known-good copy"
                    );
                    ctx.apply(&shared, &account, snapshot, false).await;
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
