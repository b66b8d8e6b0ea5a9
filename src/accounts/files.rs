//! Account snapshots read from a file or a folder of `.yaml`/`.yml`/`.json` files (or the embedded
//! demo), compiled, and reloaded when a file's modification time or length changes.
//!
//! Every file is valid as a whole or rejected as a whole: a rejected file keeps the previously
//! published version of its account, and the reason is logged at warn (never a secret: snapshot
//! errors name fields and identifiers, not hashes). [`FileAccounts`] publishes what the
//! [`SnapshotLoader`] reads and stamps when each account's version was published; every publication
//! is signalled, so a check waiting for an account revision ([`FileAccounts::wait_for_version`])
//! wakes on the reload that brings it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::watch;

use super::scan::{Fingerprint, list_files};
use super::{AccountStats, DEMO_SNAPSHOT_YAML, SnapshotSource, SnapshotStats};
use crate::rbac::model::{AccountSnapshot, FileFormat};
use crate::rbac::{Catalog, CompiledAccount, compile};

#[derive(Debug)]
struct FileEntry {
    fingerprint: Fingerprint,
    /// The account this file last published, if it ever compiled.
    account: Option<Arc<CompiledAccount>>,
    /// The file already holding this file's account, when this one was refused as a duplicate.
    duplicate_of: Option<PathBuf>,
}

/// Reads and compiles snapshot files, remembering what each file last published.
#[derive(Debug)]
pub struct SnapshotLoader {
    source: SnapshotSource,
    catalog: Arc<Catalog>,
    files: HashMap<PathBuf, FileEntry>,
}

impl SnapshotLoader {
    /// A loader with nothing loaded yet.
    pub fn new(source: SnapshotSource, catalog: Arc<Catalog>) -> Self {
        Self {
            source,
            catalog,
            files: HashMap::new(),
        }
    }

    /// The source this loader reads.
    pub fn source(&self) -> &SnapshotSource {
        &self.source
    }

    /// Re-reads changed files. Returns the accounts to publish when anything changed, `None` when
    /// nothing did. A file that fails to read, parse or compile keeps its previous account.
    pub fn poll(&mut self) -> Option<HashMap<String, Arc<CompiledAccount>>> {
        let changed = match self.source.clone() {
            SnapshotSource::Embedded => self.poll_embedded(),
            SnapshotSource::Path(path) => self.poll_path(&path),
            SnapshotSource::ControlPlane(_) => false,
        };
        changed.then(|| self.accounts())
    }

    fn poll_embedded(&mut self) -> bool {
        let key = PathBuf::from("<embedded demo>");
        if self.files.contains_key(&key) {
            return false;
        }
        let account = AccountSnapshot::parse(DEMO_SNAPSHOT_YAML, FileFormat::Yaml)
            .and_then(|s| compile(&s, Arc::clone(&self.catalog), None));
        let account = match account {
            Ok(account) => Some(Arc::new(account)),
            Err(error) => {
                tracing::warn!(%error, "embedded demo snapshot rejected");
                None
            }
        };
        let fingerprint = Fingerprint::fixed(DEMO_SNAPSHOT_YAML.len() as u64);
        self.files.insert(
            key,
            FileEntry {
                fingerprint,
                account,
                duplicate_of: None,
            },
        );
        true
    }

    fn poll_path(&mut self, path: &Path) -> bool {
        let listed = match list_files(path) {
            Ok(listed) => listed,
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "cannot list snapshots; keeping the loaded ones");
                return false;
            }
        };
        let mut changed = false;
        let removed: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|file| !listed.iter().any(|(p, _)| p == *file))
            .cloned()
            .collect();
        for file in &removed {
            changed = true;
            if let Some(account) = self.files.remove(file).and_then(|e| e.account) {
                tracing::warn!(
                    path = %file.display(),
                    account = account.account(),
                    version = account.version(),
                    "snapshot file removed; its account is no longer served"
                );
            }
        }
        // a duplicate refused because of a removed file is read again below
        self.files
            .retain(|_, e| e.duplicate_of.as_ref().is_none_or(|of| !removed.contains(of)));
        for (file, fingerprint) in listed {
            if self
                .files
                .get(&file)
                .is_some_and(|e| e.fingerprint == fingerprint)
            {
                continue;
            }
            changed = true;
            let previous = self.files.get(&file).and_then(|e| e.account.clone());
            let mut duplicate_of = None;
            let account = match self.load_file(&file, previous.as_deref()) {
                Ok(account) => match self.holder_of(account.account(), &file) {
                    Some(holder) => {
                        tracing::warn!(
                            path = %file.display(),
                            account = account.account(),
                            holder = %holder.display(),
                            "snapshot refused: its account is already served from another file; \
                             one file per account"
                        );
                        duplicate_of = Some(holder);
                        previous
                    }
                    None => {
                        tracing::info!(
                            path = %file.display(),
                            account = account.account(),
                            version = account.version(),
                            "snapshot loaded"
                        );
                        Some(Arc::new(account))
                    }
                },
                Err(error) => {
                    tracing::warn!(path = %file.display(), %error, "snapshot rejected; keeping the previous version");
                    previous
                }
            };
            self.files.insert(
                file,
                FileEntry {
                    fingerprint,
                    account,
                    duplicate_of,
                },
            );
        }
        changed
    }

    /// The other file that publishes `account`, if any.
    fn holder_of(&self, account: &str, file: &Path) -> Option<PathBuf> {
        self.files
            .iter()
            .find(|(path, e)| {
                path.as_path() != file && e.account.as_ref().is_some_and(|a| a.account() == account)
            })
            .map(|(path, _)| path.clone())
    }

    fn load_file(
        &self,
        file: &Path,
        previous: Option<&CompiledAccount>,
    ) -> Result<CompiledAccount, crate::rbac::SnapshotError> {
        let snapshot = AccountSnapshot::read(file)?;
        let current = previous
            .filter(|p| p.account() == snapshot.account)
            .map(CompiledAccount::version);
        compile(&snapshot, Arc::clone(&self.catalog), current)
    }

    /// The accounts currently published by all files (one file per account: a second file naming
    /// an account already served is refused; the highest version would win otherwise).
    pub fn accounts(&self) -> HashMap<String, Arc<CompiledAccount>> {
        let mut accounts: HashMap<String, Arc<CompiledAccount>> = HashMap::new();
        for entry in self.files.values() {
            let Some(account) = &entry.account else {
                continue;
            };
            let newer = accounts
                .get(account.account())
                .is_none_or(|a| a.version() < account.version());
            if newer {
                accounts.insert(account.account().to_owned(), Arc::clone(account));
            }
        }
        accounts
    }
}

/// The accounts of a file source, published to the hot path, with when each version was published.
#[derive(Debug)]
pub struct FileAccounts {
    loader: Mutex<SnapshotLoader>,
    accounts: ArcSwap<HashMap<String, Arc<CompiledAccount>>>,
    /// When each published account's current version was published.
    published_at: Mutex<HashMap<String, (u64, Instant)>>,
    /// Replaced on every publication (its value counts them), waking whoever waits for a version.
    publications: watch::Sender<u64>,
}

impl FileAccounts {
    /// A source of `source`'s files (or the embedded demo), nothing read yet.
    pub fn new(source: SnapshotSource, catalog: Arc<Catalog>) -> Self {
        Self {
            loader: Mutex::new(SnapshotLoader::new(source, catalog)),
            accounts: ArcSwap::from_pointee(HashMap::new()),
            published_at: Mutex::new(HashMap::new()),
            publications: watch::Sender::new(0),
        }
    }

    /// The published account, if loaded.
    pub fn account(&self, account: &str) -> Option<Arc<CompiledAccount>> {
        self.accounts.load().get(account).cloned()
    }

    /// Whether at least one account is published.
    pub fn is_ready(&self) -> bool {
        !self.accounts.load().is_empty()
    }

    /// Whether the source is files on disk (polled), not the embedded demo.
    pub fn watches_files(&self) -> bool {
        self.loader
            .lock()
            .is_ok_and(|l| matches!(l.source(), SnapshotSource::Path(_)))
    }

    /// Re-reads changed files and publishes the result; returns whether anything changed. Blocking
    /// file I/O.
    pub fn reload(&self) -> bool {
        let Ok(mut loader) = self.loader.lock() else {
            tracing::error!("snapshot loader lock poisoned: files are no longer reloaded");
            return false;
        };
        match loader.poll() {
            Some(accounts) => {
                self.publish(accounts);
                true
            }
            None => false,
        }
    }

    /// Publishes `accounts`, stamping the publication time of each account whose version changed.
    fn publish(&self, accounts: HashMap<String, Arc<CompiledAccount>>) {
        if let Ok(mut published) = self.published_at.lock() {
            let now = Instant::now();
            published.retain(|name, _| accounts.contains_key(name));
            for (name, account) in &accounts {
                let version = account.version();
                let entry = published.entry(name.clone()).or_insert((version, now));
                if entry.0 != version {
                    *entry = (version, now);
                }
            }
        }
        self.accounts.store(Arc::new(accounts));
        self.publications.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Waits, up to `bound`, until `account` is published at `version` or newer; returns whether it
    /// is. Woken by every publication (the reload poll, SIGHUP), never polling on its own; a zero
    /// `bound` only looks.
    pub async fn wait_for_version(&self, account: &str, version: u64, bound: Duration) -> bool {
        let reached = || self.account(account).is_some_and(|a| a.version() >= version);
        super::wait_until(self.publications.subscribe(), bound, reached).await
    }

    /// The published accounts with their versions and ages (files keep no source counters).
    pub fn stats(&self) -> SnapshotStats {
        let now = Instant::now();
        let published = self.published_at.lock().ok();
        let mut accounts: Vec<AccountStats> = self
            .accounts
            .load()
            .values()
            .map(|a| AccountStats {
                account: a.account().to_owned(),
                version: a.version(),
                age: published
                    .as_ref()
                    .and_then(|p| p.get(a.account()))
                    .filter(|(version, _)| *version == a.version())
                    .map(|(_, at)| now.duration_since(*at)),
            })
            .collect();
        accounts.sort_by(|a, b| a.account.cmp(&b.account));
        SnapshotStats {
            accounts,
            ..SnapshotStats::default()
        }
    }
}

#[cfg(test)]
#[path = "files_tests.rs"]
mod tests;
