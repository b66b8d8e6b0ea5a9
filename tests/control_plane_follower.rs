//! A replica's follower catching up from the change log on a throwaway PostgreSQL: each revision
//! after the one served is applied from its logged delta (no whole read), the result equals the
//! database's document key for key, and a revision logged without a delta makes it read whole.

use std::sync::Arc;
use std::time::Duration;

use crate::common::postgres::Postgres;
use crate::control_plane_postgres::{count, put_demo, store};
use scopegate::control_plane::changes::{AccountStore, ChangeSummary};
use scopegate::control_plane::postgres::follower::Follower;
use scopegate::rbac::model::{AccountSnapshot, User};
use scopegate::rbac::{AccountDelta, Catalog};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_catches_up_from_the_change_log_deltas_and_reads_whole_only_past_a_gap() {
    let pg = Postgres::start();
    let store = store(&pg.create("cp")).await;
    put_demo(&store, "acme", false).await;
    let served = Arc::new(scopegate::control_plane::Store::default());
    let follower = Follower::new(
        store.pool().clone(),
        Arc::new(Catalog::embedded().unwrap()),
        Arc::clone(&served),
        Duration::from_millis(250),
    );
    assert_eq!(follower.sync().await.unwrap(), 1);
    assert_eq!(
        follower.counts(),
        (0, 1),
        "the first load reads the account whole"
    );
    let add_user = |name: &'static str| {
        Box::new(move |doc: &mut AccountSnapshot| {
            doc.users.push(User {
                identifier: name.to_owned(),
                ..User::default()
            });
            Ok(ChangeSummary(format!("user created: {name}")))
        })
    };
    put_demo(&store, "acme", true).await;
    store
        .change("acme", "test", false, add_user("sync_user_a"))
        .await
        .unwrap();
    store
        .change("acme", "test", false, add_user("sync_user_b"))
        .await
        .unwrap();
    assert_eq!(
        count(&store, "SELECT count(*) FROM change_log WHERE delta IS NOT NULL").await,
        3,
        "every change after the first logs its delta"
    );
    assert_eq!(follower.sync().await.unwrap(), 1);
    assert_eq!(
        follower.counts(),
        (3, 1),
        "three revisions from the log, no whole read"
    );
    let whole = store.read("acme").await.unwrap().unwrap();
    let held = served.current("acme").unwrap();
    assert_eq!(held.version, 4);
    let difference = AccountDelta::between(&held, &whole).unwrap();
    assert!(
        difference.changes.is_empty(),
        "the deltas replayed differ from the database: {difference:?}"
    );
    assert_eq!(
        served.deltas("acme", 1, 4, usize::MAX).map(|d| d.len()),
        Some(3),
        "each revision is served as its delta"
    );

    // A revision logged without its delta (an older writer's): the account is read whole.
    store
        .change("acme", "test", false, add_user("sync_user_c"))
        .await
        .unwrap();
    sqlx::query("UPDATE change_log SET delta = NULL WHERE account = 'acme' AND revision = 5")
        .execute(store.pool())
        .await
        .unwrap();
    store
        .change("acme", "test", false, add_user("sync_user_d"))
        .await
        .unwrap();
    assert_eq!(follower.sync().await.unwrap(), 1);
    assert_eq!(follower.counts(), (3, 2));
    assert_eq!(served.current("acme").unwrap().version, 6);
    assert!(
        served
            .current("acme")
            .unwrap()
            .users
            .iter()
            .any(|u| u.identifier == "sync_user_d"),
        "the whole read holds the newest revision"
    );
}
