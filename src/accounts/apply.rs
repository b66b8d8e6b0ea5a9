//! How one account's task applies what the control plane sends: a whole snapshot (compiled in full)
//! or a delta (replayed on the snapshot held and compiled incrementally, `rbac::incremental`).
//! Both run off the async workers, refuse a version that is not newer, belongs to another account
//! or is absurd ([`absurd_version`]), never replace the valid version with an invalid one, and save
//! what they publish as the last-known-good copy (a snapshot whole, a delta appended after it).
//! The answer says what to tell the control plane: an applied version is acknowledged, a refused
//! one rejected with the reason.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::accounts::last_known_good;
use crate::accounts::watch::{Context, Shared, absurd_version};
use crate::proto::AccountDelta as WireDelta;
use crate::proto::delta::from_wire;
use crate::rbac::compile;
use crate::rbac::incremental::{CompilePath, compile_incremental};
use crate::rbac::model::AccountSnapshot;

/// What became of a version received.
#[derive(Debug)]
pub(super) enum Applied {
    /// Published; this is now the snapshot held.
    New(Arc<AccountSnapshot>),
    /// Not newer than the version held: nothing to do.
    Stale,
    /// Refused, and why (the version held stays in force).
    Refused(String),
}

impl Context {
    /// Compiles `snapshot` and publishes it when it is newer than the version in force and valid;
    /// a control-plane snapshot (`save`) is then written as the last-known-good copy.
    pub(super) async fn apply(
        &self,
        shared: &Shared,
        account: &str,
        snapshot: AccountSnapshot,
        save: bool,
    ) -> Applied {
        let current = shared.version();
        if current.is_some_and(|c| snapshot.version <= c) {
            return Applied::Stale;
        }
        if let Some(refused) = self.refuse(shared, account, &snapshot.account, current, snapshot.version) {
            return refused;
        }
        let catalog = Arc::clone(&self.catalog);
        let compiled = tokio::task::spawn_blocking(move || {
            let compiled = compile(&snapshot, catalog, current);
            (snapshot, compiled)
        })
        .await;
        let Ok((snapshot, compiled)) = compiled else {
            return Applied::Refused("the compile task failed".to_owned());
        };
        match compiled {
            Ok(compiled) => {
                tracing::info!(account, version = compiled.version(), "snapshot applied");
                // counted before it is published: whoever sees the version sees it counted
                self.counters.versions_applied.fetch_add(1, Ordering::Relaxed);
                shared.publish(Arc::new(compiled));
                let snapshot = Arc::new(snapshot);
                if let (true, Some(dir)) = (save, self.cache_dir.clone()) {
                    let copy = Arc::clone(&snapshot);
                    let written =
                        tokio::task::spawn_blocking(move || last_known_good::write(&dir, &copy)).await;
                    if let Ok(Err(error)) = written {
                        tracing::warn!(account, %error, "cannot write the last-known-good copy");
                    }
                }
                Applied::New(snapshot)
            }
            Err(error) => {
                self.counters.load_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(account, %error, "snapshot rejected; keeping the valid version");
                shared.mark_unavailable();
                Applied::Refused(error.to_string())
            }
        }
    }

    /// Replays `wire` on `held` (the snapshot of the version in force), compiles it incrementally
    /// and publishes it; the delta is appended to the last-known-good copy. The held snapshot is
    /// changed in place, not copied: a delta that compiles but does not apply leaves `held` empty
    /// (the rejection brings the whole snapshot), one refused before that leaves it as it was.
    pub(super) async fn apply_delta(
        &self,
        shared: &Shared,
        account: &str,
        held: &mut Option<Arc<AccountSnapshot>>,
        wire: WireDelta,
    ) -> Applied {
        let current = shared.version();
        if current.is_some_and(|c| wire.to_version <= c) {
            return Applied::Stale;
        }
        if let Some(refused) = self.refuse(shared, account, &wire.account, current, wire.to_version) {
            return refused;
        }
        let Some(compiled) = shared.account.load_full() else {
            return self.reject_delta(account, "no version is in force to apply a delta to".to_owned());
        };
        let saved = self.cache_dir.is_some().then(|| wire.clone());
        let from_version = wire.from_version;
        let delta = match from_wire(wire) {
            Ok(delta) => delta,
            Err(error) => return self.reject_delta(account, error.to_string()),
        };
        let previous_doc = match held.take() {
            Some(doc) if doc.version == from_version && compiled.version() == from_version => doc,
            other => {
                let reason = if other.is_some() {
                    format!(
                        "the delta starts from version {from_version}, this sidecar holds version {}",
                        compiled.version()
                    )
                } else {
                    "no version is held to apply a delta to".to_owned()
                };
                *held = other;
                return self.reject_delta(account, reason);
            }
        };
        let catalog = Arc::clone(&self.catalog);
        let made = tokio::task::spawn_blocking(move || {
            let compiled = match compile_incremental(&compiled, &previous_doc, &delta, catalog) {
                Ok(compiled) => compiled,
                Err(error) => return Err((error.to_string(), Some(previous_doc))),
            };
            // The only owner unless a save of it is still running: then it is copied.
            let mut next = Arc::try_unwrap(previous_doc).unwrap_or_else(|shared| (*shared).clone());
            delta
                .apply_in_place(&mut next)
                .map_err(|e| (e.to_string(), None))?;
            Ok((next, compiled))
        })
        .await;
        let (next, compiled) = match made {
            Ok(Ok(made)) => made,
            Ok(Err((reason, kept))) => {
                *held = kept;
                return self.reject_delta(account, reason);
            }
            Err(_) => return self.reject_delta(account, "the compile task failed".to_owned()),
        };
        let path = match compiled.path {
            CompilePath::Fast => "incremental",
            CompilePath::Full { reason } => reason,
        };
        tracing::info!(account, version = next.version, compile = path, "delta applied");
        self.counters.versions_applied.fetch_add(1, Ordering::Relaxed);
        self.counters.deltas_applied.fetch_add(1, Ordering::Relaxed);
        shared.publish(Arc::new(compiled.account));
        let next = Arc::new(next);
        if let (Some(dir), Some(wire)) = (self.cache_dir.clone(), saved) {
            let copy = Arc::clone(&next);
            let written =
                tokio::task::spawn_blocking(move || last_known_good::append(&dir, &copy, &wire)).await;
            if let Ok(Err(error)) = written {
                tracing::warn!(account, %error, "cannot save the delta to the last-known-good copy");
            }
        }
        Applied::New(next)
    }

    /// Refuses a version of another account or an absurd one (the version in force is kept).
    fn refuse(
        &self,
        shared: &Shared,
        account: &str,
        named: &str,
        current: Option<u64>,
        version: u64,
    ) -> Option<Applied> {
        if named != account {
            self.counters.load_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(account, "a version of another account received; ignored");
            return Some(Applied::Refused("a version of another account".to_owned()));
        }
        let reason = absurd_version(current, version)?;
        self.counters.load_failures.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            account,
            version,
            current,
            reason,
            "version refused; keeping the version in force"
        );
        shared.mark_unavailable();
        Some(Applied::Refused(reason.to_owned()))
    }

    fn reject_delta(&self, account: &str, reason: String) -> Applied {
        self.counters.deltas_rejected.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(account, reason, "delta rejected; asking for the whole snapshot");
        Applied::Refused(reason)
    }
}
