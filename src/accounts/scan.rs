//! The scan of a snapshot file or folder: which `.yaml`/`.yml`/`.json` files it holds and what was
//! seen of each (modification time and length), so a poll re-reads only what changed. Shared by the
//! sidecar's file source ([`super::files`]) and the reference control plane's folder store.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// What was seen of one file at the last scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    modified: Option<SystemTime>,
    len: u64,
}

impl Fingerprint {
    /// The fingerprint of content that never changes (the embedded demo), by its length.
    pub fn fixed(len: u64) -> Self {
        Self { modified: None, len }
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
pub fn list_files(path: &Path) -> std::io::Result<Vec<(PathBuf, Fingerprint)>> {
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
