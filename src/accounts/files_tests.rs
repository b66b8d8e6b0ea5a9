//! The file source's folder rules: one file per account (a second file naming an account already
//! served is refused, whatever its version, and read again once the first file is gone), and a
//! removed file stops serving its account; a wait for a version wakes on the reload that brings it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use super::SnapshotLoader;
use crate::accounts::{DEMO_SNAPSHOT_YAML, SnapshotSource};
use crate::rbac::Catalog;

fn folder(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scopegate-files-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn demo_at(version: u64) -> String {
    DEMO_SNAPSHOT_YAML.replace("version: 1\n", &format!("version: {version}\n"))
}

fn loader(dir: &std::path::Path) -> SnapshotLoader {
    let catalog = Arc::new(Catalog::embedded().unwrap());
    SnapshotLoader::new(SnapshotSource::Path(dir.to_path_buf()), catalog)
}

fn served_version(loader: &SnapshotLoader) -> Option<u64> {
    loader.accounts().get("acme").map(|a| a.version())
}

#[test]
fn a_second_file_for_an_account_is_refused_until_the_first_is_gone() {
    let dir = folder("duplicate");
    std::fs::write(dir.join("a.yaml"), demo_at(3)).unwrap();
    std::fs::write(dir.join("b.yaml"), demo_at(9)).unwrap();
    let mut loader = loader(&dir);
    assert!(loader.poll().is_some());
    // the first file in name order holds the account; the higher version of the second does not win
    assert_eq!(served_version(&loader), Some(3));
    std::fs::remove_file(dir.join("a.yaml")).unwrap();
    assert!(loader.poll().is_some());
    assert_eq!(served_version(&loader), Some(9), "the refused file is read again");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_removed_file_stops_serving_its_account() {
    let dir = folder("removed");
    std::fs::write(dir.join("acme.yaml"), demo_at(1)).unwrap();
    let mut loader = loader(&dir);
    loader.poll();
    assert_eq!(served_version(&loader), Some(1));
    std::fs::remove_file(dir.join("acme.yaml")).unwrap();
    assert!(loader.poll().is_some(), "a removal is a change");
    assert_eq!(served_version(&loader), None);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_wait_for_a_version_wakes_on_the_reload_that_publishes_it() {
    use std::time::Duration;

    use super::FileAccounts;

    let dir = folder("wait");
    std::fs::write(dir.join("acme.yaml"), demo_at(1)).unwrap();
    let catalog = Arc::new(Catalog::embedded().unwrap());
    let files = Arc::new(FileAccounts::new(SnapshotSource::Path(dir.clone()), catalog));
    assert!(files.reload());
    assert!(
        files.wait_for_version("acme", 1, Duration::ZERO).await,
        "already there"
    );
    assert!(
        !files.wait_for_version("acme", 2, Duration::ZERO).await,
        "zero only looks"
    );
    assert!(
        !files
            .wait_for_version("acme", 99, Duration::from_millis(20))
            .await
    );
    assert!(
        !files
            .wait_for_version("other", 1, Duration::from_millis(20))
            .await
    );
    let waiting = Arc::clone(&files);
    let waiter = tokio::spawn(async move {
        waiting
            .wait_for_version("acme", 10, Duration::from_secs(30))
            .await
    });
    tokio::task::yield_now().await;
    // a longer file (two digits), so the change shows whatever the clock's resolution
    std::fs::write(dir.join("acme.yaml"), demo_at(10)).unwrap();
    assert!(files.reload());
    assert!(waiter.await.unwrap(), "woken by the reload");
    std::fs::remove_dir_all(&dir).unwrap();
}
