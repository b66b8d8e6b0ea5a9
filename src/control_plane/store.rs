//! What the control plane serves: the last valid snapshot of every account with its answer encoded
//! once ([`Served`]), one `tokio::sync::watch` channel per account (a Watch or Sync stream is a
//! subscriber), the account's recent deltas ([`History`]), and the scanner that reads the source
//! folder and publishes only validated, non-backwards versions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::watch;

use crate::accounts::scan::{Fingerprint, list_files};
use crate::control_plane::history::History;
use crate::control_plane::sidecars::Sidecars;
use crate::proto::delta::to_wire;
use crate::proto::encoded::Encoded;
use crate::proto::{SyncResponse, sync_response};
use crate::rbac::delta::AccountDelta;
use crate::rbac::model::AccountSnapshot;
use crate::rbac::{Catalog, SnapshotError, compile};

/// Why a file was not published.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The file does not read, parse or compile.
    #[error("{0}")]
    Invalid(#[from] SnapshotError),
    /// The file's version is older than the one served.
    #[error("account `{account}`: version {version} is older than version {current} being served")]
    Backwards {
        /// The account.
        account: String,
        /// The refused version.
        version: u64,
        /// The version served.
        current: u64,
    },
    /// The file changed but kept the served version number.
    #[error("account `{account}`: changed without a new version (still {version})")]
    SameVersion {
        /// The account.
        account: String,
        /// The version served.
        version: u64,
    },
}

impl Refusal {
    /// A stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid",
            Self::Backwards { .. } => "version_backwards",
            Self::SameVersion { .. } => "version_unchanged",
        }
    }
}

/// One version of an account as it is served: the snapshot, and the answer carrying it (Watch,
/// Get, or Sync's snapshot case) encoded once for every stream.
#[derive(Debug)]
pub struct Served {
    /// The snapshot.
    pub snapshot: Arc<AccountSnapshot>,
    /// The encoded answer.
    pub encoded: Encoded,
}

impl Served {
    fn new(snapshot: AccountSnapshot) -> Self {
        let encoded = Encoded::snapshot(&snapshot);
        Self {
            snapshot: Arc::new(snapshot),
            encoded,
        }
    }

    /// The version.
    pub fn version(&self) -> u64 {
        self.snapshot.version
    }
}

/// An account: the version served (a Watch or Sync stream is a subscriber) and its recent deltas.
#[derive(Debug)]
struct Account {
    served: watch::Sender<Arc<Served>>,
    history: Mutex<History>,
}

/// The snapshots being served, by account.
#[derive(Debug, Default)]
pub struct Store {
    accounts: RwLock<HashMap<String, Arc<Account>>>,
    /// Held by a publish from its first read to its last write, so each delta is made against the
    /// version it follows.
    publishing: Mutex<()>,
    published: AtomicU64,
    refused: AtomicU64,
    sidecars: Arc<Sidecars>,
}

impl Store {
    /// The Sync streams reading this store.
    pub fn sidecars(&self) -> &Arc<Sidecars> {
        &self.sidecars
    }

    fn account(&self, account: &str) -> Option<Arc<Account>> {
        self.accounts.read().ok()?.get(account).map(Arc::clone)
    }

    /// The snapshot served for `account`.
    pub fn current(&self, account: &str) -> Option<Arc<AccountSnapshot>> {
        self.served(account).map(|served| Arc::clone(&served.snapshot))
    }

    /// The version served for `account`, with its encoded answer.
    pub fn served(&self, account: &str) -> Option<Arc<Served>> {
        self.account(account).map(|a| Arc::clone(&a.served.borrow()))
    }

    /// A receiver of every version of `account` from now on (the current one is marked seen-not).
    pub fn subscribe(&self, account: &str) -> Option<watch::Receiver<Arc<Served>>> {
        self.account(account).map(|a| a.served.subscribe())
    }

    /// The encoded deltas taking `account` from version `from` to `to`, when they are kept and
    /// weigh at most `limit` bytes.
    pub fn deltas(&self, account: &str, from: u64, to: u64, limit: usize) -> Option<Vec<Encoded>> {
        let account = self.account(account)?;
        let history = account.history.lock().ok()?;
        history.between(from, to, limit)
    }

    /// How many accounts are served.
    pub fn len(&self) -> usize {
        self.accounts.read().map_or(0, |a| a.len())
    }

    /// Whether no account is served.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many versions were published and refused since start.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.published.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
        )
    }

    /// Ends every Watch stream (their senders are dropped) and stops serving.
    pub fn close(&self) {
        if let Ok(mut accounts) = self.accounts.write() {
            accounts.clear();
        }
    }

    /// Publishes a snapshot the caller has compiled (the folder scanner, the database follower, the
    /// management API's in-memory store) unless it is not newer than the one served. Returns whether
    /// it was published (`Ok(false)`: identical to the one served). The delta from the version
    /// served is made and encoded here, once: call from a blocking context.
    pub fn publish(&self, snapshot: AccountSnapshot) -> Result<bool, Refusal> {
        self.publish_with(snapshot, None)
    }

    /// [`Self::publish`] of a snapshot the caller made by applying `delta` to the version served
    /// (the database follower catching up from the change log): the delta is sent as it is, not
    /// diffed again. A delta that does not start from the version served is diffed instead.
    pub fn publish_delta(&self, snapshot: AccountSnapshot, delta: AccountDelta) -> Result<bool, Refusal> {
        self.publish_with(snapshot, Some(delta))
    }

    fn publish_with(&self, snapshot: AccountSnapshot, known: Option<AccountDelta>) -> Result<bool, Refusal> {
        let Ok(_publishing) = self.publishing.lock() else {
            return Ok(false);
        };
        let Some(account) = self.account(&snapshot.account) else {
            let account = snapshot.account.clone();
            let entry = Arc::new(Account {
                served: watch::Sender::new(Arc::new(Served::new(snapshot))),
                history: Mutex::new(History::default()),
            });
            if let Ok(mut accounts) = self.accounts.write() {
                accounts.insert(account, entry);
            }
            self.published.fetch_add(1, Ordering::Relaxed);
            return Ok(true);
        };
        let current = Arc::clone(&account.served.borrow());
        let (from, to) = (current.version(), snapshot.version);
        if to < from {
            return Err(Refusal::Backwards {
                account: snapshot.account,
                version: to,
                current: from,
            });
        }
        if to == from {
            if *current.snapshot == snapshot {
                return Ok(false);
            }
            return Err(Refusal::SameVersion {
                account: snapshot.account,
                version: from,
            });
        }
        let known = known.filter(|d| d.from_version == from && d.to_version == to);
        let delta = match known.map_or_else(|| AccountDelta::between(&current.snapshot, &snapshot), Ok) {
            Ok(delta) => Some(Encoded::of(&SyncResponse {
                update: Some(sync_response::Update::Delta(to_wire(&snapshot.account, delta))),
            })),
            Err(error) => {
                tracing::debug!(account = snapshot.account, %error, "no delta: the next Sync answers send the snapshot");
                None
            }
        };
        let served = Arc::new(Served::new(snapshot));
        if let Ok(mut history) = account.history.lock() {
            history.record(from, to, delta);
        }
        account.served.send_replace(served);
        self.published.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }
}

/// Reads the source folder and publishes every changed, valid file to the store.
#[derive(Debug)]
pub struct Scanner {
    dir: PathBuf,
    catalog: Arc<Catalog>,
    store: Arc<Store>,
    seen: HashMap<PathBuf, Fingerprint>,
}

impl Scanner {
    /// A scanner of `dir` (a folder of snapshot files, or one file) publishing to `store`.
    pub fn new(dir: PathBuf, catalog: Arc<Catalog>, store: Arc<Store>) -> Self {
        Self {
            dir,
            catalog,
            store,
            seen: HashMap::new(),
        }
    }

    /// Reads the changed files and publishes the valid ones; returns how many versions it
    /// published. Blocking I/O and compilation: call from a blocking context.
    pub fn scan(&mut self) -> usize {
        let listed = match list_files(&self.dir) {
            Ok(listed) => listed,
            Err(error) => {
                tracing::warn!(path = %self.dir.display(), %error, "cannot list the source folder");
                return 0;
            }
        };
        self.seen.retain(|file, _| listed.iter().any(|(p, _)| p == file));
        let mut published = 0;
        for (file, fingerprint) in listed {
            if self.seen.get(&file) == Some(&fingerprint) {
                continue;
            }
            self.seen.insert(file.clone(), fingerprint);
            match self.load(&file) {
                Ok(Some((account, version))) => {
                    published += 1;
                    tracing::info!(path = %file.display(), account, version, "snapshot published");
                }
                Ok(None) => {}
                Err(refusal) => {
                    self.store.refused.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        path = %file.display(),
                        code = refusal.code(),
                        error = %refusal,
                        "snapshot refused; the last valid version is still served"
                    );
                }
            }
        }
        published
    }

    fn load(&self, file: &Path) -> Result<Option<(String, u64)>, Refusal> {
        let snapshot = AccountSnapshot::read(file)?;
        compile(&snapshot, Arc::clone(&self.catalog), None)?;
        let id = (snapshot.account.clone(), snapshot.version);
        Ok(self.store.publish(snapshot)?.then_some(id))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::accounts::DEMO_SNAPSHOT_YAML;

    fn demo(version: u64) -> AccountSnapshot {
        let mut s = AccountSnapshot::parse(DEMO_SNAPSHOT_YAML, crate::rbac::model::FileFormat::Yaml).unwrap();
        s.version = version;
        s
    }

    #[test]
    fn versions_only_move_forward() {
        let store = Store::default();
        assert!(store.publish(demo(5)).unwrap());
        assert!(!store.publish(demo(5)).unwrap());
        let mut changed = demo(5);
        changed.role_assignments.clear();
        assert_eq!(store.publish(changed).unwrap_err().code(), "version_unchanged");
        assert_eq!(store.publish(demo(4)).unwrap_err().code(), "version_backwards");
        assert_eq!(store.current("acme").unwrap().version, 5);
        let mut rx = store.subscribe("acme").unwrap();
        assert!(store.publish(demo(6)).unwrap());
        assert!(rx.has_changed().unwrap());
        assert_eq!(rx.borrow_and_update().version(), 6);
        let deltas = store.deltas("acme", 5, 6, usize::MAX).unwrap();
        assert_eq!(deltas.len(), 1);
        store.close();
        assert!(rx.has_changed().is_err());
        assert!(store.is_empty());
    }
}
