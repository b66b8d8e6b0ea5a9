//! Last-known-good snapshots in `snapshot.cache_dir`: one file per account holding the snapshot as
//! received (protobuf `AccountSnapshot`, so it round-trips exactly and decodes fast), written
//! atomically (a temporary file in the same folder, fsync, then rename) so a crash never leaves a
//! torn file.

use std::io::Write;
use std::path::{Path, PathBuf};

use prost::Message;

use crate::rbac::model::AccountSnapshot;

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
    Ok(Some(snapshot))
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
        std::fs::rename(&tmp, &path)
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
}
