//! PostgreSQL control-plane figures on a throwaway server (`tests/common/postgres.rs`, fsync off:
//! the figures are the store's own cost, not a disk's):
//! - `writes_per_second`: management writes through `PgStore::change` (each adds one user to the
//!   demo account: lock, read, edit, compile, diff, write, change log, notify, commit), one writer
//!   in turn and 8 writers on 8 accounts at once.
//! - `replica_rss_per_1000_accounts`: resident memory of a real `control-plane --database`
//!   process serving 1,000 demo-sized accounts, less the same process serving none.
//!
//! Run: `cargo bench --bench control_plane_postgres` (about a minute).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[allow(dead_code)]
#[path = "../tests/common/control_plane.rs"]
mod cp;
#[path = "support/measure.rs"]
mod measure;
#[path = "../tests/common/postgres.rs"]
mod postgres;

use measure::rss_kib;
use std::sync::Arc;
use std::time::Instant;

use scopegate::control_plane::admin::replace_with;
use scopegate::control_plane::changes::{AccountStore, ChangeSummary};
use scopegate::control_plane::postgres::{PgStore, connect};
use scopegate::rbac::Catalog;
use scopegate::rbac::model::{AccountSnapshot, FileFormat, User};

async fn store(url: &str) -> PgStore {
    PgStore::new(
        connect(url, 16).await.unwrap(),
        Arc::new(Catalog::embedded().unwrap()),
    )
}

async fn put_demo(store: &PgStore, account: &str) {
    let snapshot = AccountSnapshot::parse(&cp::demo(account, 1, false), FileFormat::Yaml).unwrap();
    store
        .change(account, "bench", true, replace_with(snapshot, "demo".into()))
        .await
        .unwrap();
}

async fn add_users(store: PgStore, account: String, count: usize) {
    for i in 0..count {
        let edit = Box::new(move |doc: &mut AccountSnapshot| {
            doc.users.push(User {
                identifier: format!("bench_user_{i}"),
                ..User::default()
            });
            Ok(ChangeSummary(format!("user created: bench_user_{i}")))
        });
        store.change(&account, "bench", false, edit).await.unwrap();
    }
}

async fn writes_per_second(url: &str) {
    let store = store(url).await;
    put_demo(&store, "w0").await;
    let n = 500;
    let start = Instant::now();
    add_users(store.clone(), "w0".into(), n).await;
    let took = start.elapsed();
    println!(
        "writes_per_second/one_writer: {n} changes in {took:.2?} = {:.0}/s ({:.2?} each)",
        n as f64 / took.as_secs_f64(),
        took / n as u32
    );
    let writers = 8;
    for w in 0..writers {
        put_demo(&store, &format!("p{w}")).await;
    }
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| tokio::spawn(add_users(store.clone(), format!("p{w}"), n / writers)))
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let took = start.elapsed();
    let total = n / writers * writers;
    println!(
        "writes_per_second/8_writers_8_accounts: {total} changes in {took:.2?} = {:.0}/s",
        total as f64 / took.as_secs_f64()
    );
}

async fn replica_rss(pg: &postgres::Postgres) {
    let empty = pg.create("empty");
    let idle = cp::Process::database(&empty, "127.0.0.1:0", &[]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let base = rss_kib(idle.pid());
    idle.kill();
    let full = pg.create("thousand");
    let store = store(&full).await;
    let start = Instant::now();
    for i in 0..1000 {
        put_demo(&store, &format!("acct{i:04}")).await;
    }
    println!("import of 1,000 demo accounts: {:.2?}", start.elapsed());
    let start = Instant::now();
    let replica = cp::Process::database(&full, "127.0.0.1:0", &[]);
    let loaded = start.elapsed();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let rss = rss_kib(replica.pid());
    println!(
        "replica_rss_per_1000_accounts: {base} KiB idle, {rss} KiB with 1,000 accounts: {} KiB per 1,000 \
         (start with 1,000 accounts, to listening: {loaded:.2?})",
        rss.saturating_sub(base)
    );
    replica.kill();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let pg = postgres::Postgres::start();
    let url = pg.create("writes");
    writes_per_second(&url).await;
    replica_rss(&pg).await;
}
