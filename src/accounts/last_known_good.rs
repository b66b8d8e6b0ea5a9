//! Last-known-good snapshots in `snapshot.cache_dir`: per account, the last snapshot received
//! (`<account>.pb`: protobuf `AccountSnapshot`, so it round-trips exactly and decodes fast), written
//! atomically (a temporary file in the same folder, fsync, then rename) so a crash never leaves a
//! torn file, and the deltas applied since (`<account>.deltas`: length-delimited protobuf
//! `AccountDelta`s, appended and synced one by one). Reading replays the deltas on the snapshot and
//! stops at the first that does not follow (a tail torn by a crash is ignored). When the deltas
//! outgrow half the snapshot (at least [`MIN_COMPACT_BYTES`]), the snapshot is rewritten and the
//! deltas dropped.

use std::io::Write;
use std::path::{Path, PathBuf};

use prost::Message;

use crate::proto::AccountDelta as WireDelta;
use crate::proto::delta::from_wire;
use crate::rbac::model::AccountSnapshot;

/// The least size of the deltas file that makes it worth rewriting the snapshot.
pub const MIN_COMPACT_BYTES: u64 = 64 * 1024;

/// The file holding `account`'s last-known-good snapshot. Identifiers made of letters, digits,
/// `-`, `_` and `.` (not leading) keep their name; anything else is hex-encoded so a request can
/// never name a path outside the folder.
pub fn path_for(dir: &Path, account: &str) -> PathBuf {
    let plain = !account.is_empty()
        && !account.starts_with('.')
        && account
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    let name = if plain {
        format!("{account}.pb")
    } else {
        format!("x-{}.pb", hex::encode(account))
    };
    dir.join(name)
}

/// Reads `account`'s last-known-good snapshot; `Ok(None)` when there is none.
pub fn read(dir: &Path, account: &str) -> Result<Option<AccountSnapshot>, String> {
    let path = path_for(dir, account);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read `{}`: {e}", path.display())),
    };
    let snapshot = AccountSnapshot::decode(bytes.as_slice())
        .map_err(|e| format!("cannot decode `{}`: {e}", path.display()))?;
    if snapshot.account != account {
        return Err(format!("`{}` holds another account", path.display()));
    }
    Ok(Some(replay(&deltas_path(&path), snapshot)))
}

fn deltas_path(snapshot_path: &Path) -> PathBuf {
    snapshot_path.with_extension("deltas")
}

/// `snapshot` with the deltas of `path` applied, as far as they follow one another. Each is
/// applied in place (no copy of the document per delta); one that fails part-way spoils the
/// document, so the replay then starts again from `snapshot` and stops before that delta.
fn replay(path: &Path, snapshot: AccountSnapshot) -> AccountSnapshot {
    let Ok(bytes) = std::fs::read(path) else {
        return snapshot;
    };
    let original = snapshot.clone();
    match replay_deltas(&bytes, snapshot, usize::MAX) {
        Ok(snapshot) => snapshot,
        Err(applied) => replay_deltas(&bytes, original.clone(), applied).unwrap_or(original),
    }
}

/// Applies at most `limit` deltas of `bytes` to `snapshot`, stopping at the first that does not
/// decode, is of another account or does not start from the version reached. `Err(n)`: the
/// `n + 1`th failed while being applied, after `n` had been.
fn replay_deltas(
    bytes: &[u8],
    mut snapshot: AccountSnapshot,
    limit: usize,
) -> Result<AccountSnapshot, usize> {
    let mut rest = bytes;
    for applied in 0..limit {
        if rest.is_empty() {
            break;
        }
        let Ok(wire) = WireDelta::decode_length_delimited(&mut rest) else {
            break;
        };
        if wire.account != snapshot.account || wire.from_version != snapshot.version {
            break;
        }
        let Ok(delta) = from_wire(wire) else {
            break;
        };
        delta.apply_in_place(&mut snapshot).map_err(|_| applied)?;
    }
    Ok(snapshot)
}

/// Records `delta`, which made `snapshot`, after the account's last-known-good copy: appended to
/// its deltas file, or, once that outgrows half the snapshot, by rewriting the snapshot.
pub fn append(dir: &Path, snapshot: &AccountSnapshot, delta: &WireDelta) -> std::io::Result<()> {
    let path = deltas_path(&path_for(dir, &snapshot.account));
    let written = std::fs::metadata(&path).map_or(0, |m| m.len());
    // the saved snapshot's size, not the new one's encoded length: a stat, not a pass over the
    // whole document for every delta
    let saved = std::fs::metadata(path_for(dir, &snapshot.account)).map_or(0, |m| m.len());
    let threshold = (saved / 2).max(MIN_COMPACT_BYTES);
    if written > threshold {
        return write(dir, snapshot);
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    file.write_all(&delta.encode_length_delimited_to_vec())?;
    file.sync_data()
}

/// Writes `snapshot` as its account's last-known-good copy (write to a temporary file, then rename).
pub fn write(dir: &Path, snapshot: &AccountSnapshot) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = path_for(dir, &snapshot.account);
    let tmp = path.with_extension(format!("pb.tmp-{}", std::process::id()));
    let bytes = snapshot.encode_to_vec();
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        // the deltas applied to the copy replaced are in this one
        match std::fs::remove_file(deltas_path(&path)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn names_never_escape_the_folder() {
        let dir = Path::new("/cache");
        assert_eq!(path_for(dir, "acme"), Path::new("/cache/acme.pb"));
        assert_eq!(path_for(dir, "kmpy-Sm_UI.1"), Path::new("/cache/kmpy-Sm_UI.1.pb"));
        assert_eq!(path_for(dir, "../etc"), Path::new("/cache/x-2e2e2f657463.pb"));
        assert_eq!(path_for(dir, ".hidden"), Path::new("/cache/x-2e68696464656e.pb"));
        assert_eq!(path_for(dir, "a/b"), Path::new("/cache/x-612f62.pb"));
    }

    #[test]
    fn round_trips_atomically() {
        let dir = std::env::temp_dir().join(format!("scopegate-lkg-{}", std::process::id()));
        let yaml = crate::accounts::DEMO_SNAPSHOT_YAML;
        let snapshot = AccountSnapshot::parse(yaml, crate::rbac::model::FileFormat::Yaml).unwrap();
        assert_eq!(read(&dir, "acme").unwrap(), None);
        write(&dir, &snapshot).unwrap();
        assert_eq!(read(&dir, "acme").unwrap(), Some(snapshot));
        let leftovers = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(leftovers, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn deltas_replay_on_the_snapshot_up_to_a_torn_tail() {
        use crate::proto::delta::to_wire;
        use crate::rbac::delta::AccountDelta;
        let dir = std::env::temp_dir().join(format!("scopegate-lkg-deltas-{}", std::process::id()));
        let yaml = crate::accounts::DEMO_SNAPSHOT_YAML;
        let base = AccountSnapshot::parse(yaml, crate::rbac::model::FileFormat::Yaml).unwrap();
        write(&dir, &base).unwrap();
        let mut second = base.clone();
        second.version += 1;
        second.role_assignments.pop();
        let mut third = second.clone();
        third.version += 1;
        third.users.pop();
        for (from, to) in [(&base, &second), (&second, &third)] {
            let delta = to_wire("acme", AccountDelta::between(from, to).unwrap());
            append(&dir, to, &delta).unwrap();
        }
        assert_eq!(read(&dir, "acme").unwrap(), Some(third.clone()));
        // a torn last record is ignored
        let deltas = deltas_path(&path_for(&dir, "acme"));
        let mut bytes = std::fs::read(&deltas).unwrap();
        bytes.truncate(bytes.len() - 3);
        std::fs::write(&deltas, bytes).unwrap();
        assert_eq!(read(&dir, "acme").unwrap(), Some(second.clone()));
        // a new snapshot replaces the deltas
        write(&dir, &third).unwrap();
        assert!(!deltas.exists());
        assert_eq!(read(&dir, "acme").unwrap(), Some(third));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
