//! Account snapshots read from a file or a folder of `.yaml`/`.yml`/`.json` files (or the embedded
//! demo), compiled, and reloaded when a file's modification time or length changes.
//!
//! Every file is valid as a whole or rejected as a whole: a rejected file keeps the previously
//! published version of its account, and the reason is logged at warn (never a secret: snapshot
//! errors name fields and identifiers, not hashes).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use crate::rbac::model::{AccountSnapshot, FileFormat};
use crate::rbac::{Catalog, CompiledAccount, compile};

/// The embedded demo account snapshot (`deploy/examples/snapshots/demo.yaml`).
pub const DEMO_SNAPSHOT_YAML: &str = include_str!("../../deploy/examples/snapshots/demo.yaml");

/// Where account snapshots come from.
// Built once at start: the size of the control-plane options does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotSource {
    /// The embedded demo snapshot; never reloaded.
    Embedded,
    /// A snapshot file, or a folder of them, polled for changes.
    Path(PathBuf),
    /// A control plane (see [`crate::snapshot::ControlPlaneSource`]); this loader reads nothing.
    ControlPlane(crate::snapshot::RemoteOptions),
}

/// What was seen of one file at the last poll (shared with the control plane's folder scan).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    modified: Option<SystemTime>,
    len: u64,
}

#[derive(Debug)]
struct FileEntry {
    fingerprint: Fingerprint,
    /// The account this file last published, if it ever compiled.
    account: Option<Arc<CompiledAccount>>,
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
        let fingerprint = Fingerprint {
            modified: None,
            len: DEMO_SNAPSHOT_YAML.len() as u64,
        };
        self.files.insert(key, FileEntry { fingerprint, account });
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
        let before = self.files.len();
        self.files.retain(|file, _| listed.iter().any(|(p, _)| p == file));
        if self.files.len() != before {
            changed = true;
        }
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
            let account = match self.load_file(&file, previous.as_deref()) {
                Ok(account) => {
                    tracing::info!(
                        path = %file.display(),
                        account = account.account(),
                        version = account.version(),
                        "snapshot loaded"
                    );
                    Some(Arc::new(account))
                }
                Err(error) => {
                    tracing::warn!(path = %file.display(), %error, "snapshot rejected; keeping the previous version");
                    previous
                }
            };
            self.files.insert(file, FileEntry { fingerprint, account });
        }
        changed
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

    /// The accounts currently published by all files (the highest version wins when two files
    /// hold the same account).
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

fn is_snapshot_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["yaml", "yml", "json"].iter().any(|x| e.eq_ignore_ascii_case(x)))
}

fn fingerprint(path: &Path) -> std::io::Result<Fingerprint> {
    let meta = std::fs::metadata(path)?;
    Ok(Fingerprint {
        modified: meta.modified().ok(),
        len: meta.len(),
    })
}

/// The snapshot files of `path` (itself, or the `.yaml`/`.yml`/`.json` files of a folder), sorted,
/// with their fingerprints. A file that vanishes between listing and stat (an editor's rename) is
/// skipped this round.
pub(crate) fn list_files(path: &Path) -> std::io::Result<Vec<(PathBuf, Fingerprint)>> {
    if !std::fs::metadata(path)?.is_dir() {
        return Ok(vec![(path.to_path_buf(), fingerprint(path)?)]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path)? {
        let file = entry?.path();
        if is_snapshot_file(&file)
            && file.is_file()
            && let Ok(fp) = fingerprint(&file)
        {
            files.push((file, fp));
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}
