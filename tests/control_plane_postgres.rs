//! PostgreSQL as the control plane's source of truth, end to end on a throwaway server
//! (`common::postgres`): the migrations, `PgStore`'s transaction (one revision, one change-log row,
//! nothing written for an invalid change, no lost update under concurrency), real `control-plane
//! --database` replicas feeding a sidecar that fails over between them, and `admin import` /
//! `admin bootstrap`.

use std::sync::Arc;
use std::time::Duration;

use crate::common::cli;
use crate::common::control_plane::{Process, TempDir, demo, eventually, invalid_demo, remote, sidecar};
use crate::common::postgres::Postgres;
use crate::common::{Server, request};
use envoy_types::ext_authz::v3::pb::{CheckResponse, HttpResponse};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use scopegate::control_plane::admin::replace_with;
use scopegate::control_plane::changes::{AccountStore, ChangeError, ChangeSummary};
use scopegate::control_plane::postgres::follower::Follower;
use scopegate::control_plane::postgres::{PgStore, connect};
use scopegate::proto::GetRequest;
use scopegate::proto::snapshot_service_client::SnapshotServiceClient;
use scopegate::rbac::Catalog;
use scopegate::rbac::model::{AccountSnapshot, FileFormat, Role, User};
use sqlx::Row;
use tonic::transport::Channel;

const EXECUTE: &str = "/v1/orgs/eng/projects/payments/pipelines/deploy_prod/execute";

pub(crate) async fn store(url: &str) -> PgStore {
    let pool = connect(url, 8).await.unwrap();
    PgStore::new(pool, Arc::new(Catalog::embedded().unwrap()))
}

fn demo_snapshot(account: &str, revoked: bool) -> AccountSnapshot {
    AccountSnapshot::parse(&demo(account, 1, revoked), FileFormat::Yaml).unwrap()
}

pub(crate) async fn put_demo(store: &PgStore, account: &str, revoked: bool) -> u64 {
    let edit = replace_with(
        demo_snapshot(account, revoked),
        format!("demo, revoked: {revoked}"),
    );
    store.change(account, "test", true, edit).await.unwrap().after
}

fn status(resp: &CheckResponse) -> i32 {
    match &resp.http_response {
        Some(HttpResponse::OkResponse(_)) => 200,
        Some(HttpResponse::DeniedResponse(d)) => d.status.as_ref().map_or(0, |s| s.code),
        _ => 0,
    }
}

async fn check(client: &mut AuthorizationClient<Channel>, method: &str, path: &str, token: &str) -> i32 {
    let req = request(
        method,
        path,
        &[("harness-account", "acme"), ("x-api-key", token)],
        None,
    );
    status(&client.check(req).await.unwrap().into_inner())
}

async fn alice(client: &mut AuthorizationClient<Channel>) -> i32 {
    check(client, "POST", EXECUTE, "pat.acme.alicetok01.AliceDemoSecret01").await
}

pub(crate) async fn count(store: &PgStore, sql: &str) -> i64 {
    sqlx::query(sql).fetch_one(store.pool()).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_to_an_empty_database_and_twice_is_a_no_op() {
    let pg = Postgres::start();
    let url = pg.create("cp");
    let first = store(&url).await;
    let tables = count(
        &first,
        "SELECT count(*) FROM information_schema.tables WHERE table_name IN ('accounts', 'entities', 'change_log')",
    )
    .await;
    assert_eq!(tables, 3);
    let before = pg.dump("cp");
    let second = store(&url).await;
    let embedded = scopegate::control_plane::postgres::MIGRATOR.iter().count() as i64;
    assert_eq!(embedded, 2, "accounts, then the change log's delta column");
    assert_eq!(
        count(&second, "SELECT count(*) FROM _sqlx_migrations").await,
        embedded
    );
    assert_eq!(pg.dump("cp"), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_bumps_the_revision_by_one_and_writes_one_change_log_row() {
    let pg = Postgres::start();
    let store = store(&pg.create("cp")).await;
    assert_eq!(put_demo(&store, "acme", false).await, 1);
    let committed = store
        .change(
            "acme",
            "alice@ops",
            false,
            Box::new(|doc| {
                doc.users.push(User {
                    identifier: "zed".into(),
                    ..User::default()
                });
                Ok(ChangeSummary("user created: zed".into()))
            }),
        )
        .await
        .unwrap();
    assert_eq!((committed.before, committed.after), (1, 2));
    assert_eq!(
        count(&store, "SELECT revision FROM accounts WHERE account = 'acme'").await,
        2
    );
    assert_eq!(count(&store, "SELECT count(*) FROM change_log").await, 2);
    let row = sqlx::query("SELECT actor, summary, changed::text FROM change_log WHERE revision = 2")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let (actor, summary, changed): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(
        (actor.as_str(), summary.as_str()),
        ("alice@ops", "user created: zed")
    );
    let changed: serde_json::Value = serde_json::from_str(&changed).unwrap();
    assert_eq!(
        changed,
        serde_json::json!([{"kind": "user", "key": "[\"zed\"]", "op": "insert"}])
    );
    // only the new row carries the new revision
    assert_eq!(
        count(&store, "SELECT count(*) FROM entities WHERE revision = 2").await,
        1
    );
    let read = store.read("acme").await.unwrap().unwrap();
    assert_eq!(read.version, 2);
    assert!(read.users.iter().any(|u| u.identifier == "zed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_change_is_refused_with_its_error_and_the_database_is_unchanged() {
    let pg = Postgres::start();
    let store = store(&pg.create("cp")).await;
    put_demo(&store, "acme", false).await;
    let before = pg.dump("cp");
    let refused = store
        .change(
            "acme",
            "test",
            false,
            Box::new(|doc| {
                doc.roles.push(Role {
                    identifier: "broken".into(),
                    permissions: vec!["no_such_permission".into()],
                    ..Role::default()
                });
                Ok(ChangeSummary("role created: broken".into()))
            }),
        )
        .await;
    let Err(ChangeError::Invalid(errors)) = refused else {
        panic!("{refused:?}");
    };
    assert!(
        errors.iter().any(|e| e.contains("no_such_permission")),
        "{errors:?}"
    );
    // creating an account with an invalid document leaves no account row behind either
    let invalid = AccountSnapshot::parse(&invalid_demo("globex", 1), FileFormat::Yaml).unwrap();
    let created = store
        .change("globex", "test", true, replace_with(invalid, "import".into()))
        .await;
    assert!(matches!(created, Err(ChangeError::Invalid(_))), "{created:?}");
    assert_eq!(pg.dump("cp"), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_from_two_stores_get_dense_revisions_and_lose_nothing() {
    const EDITS: usize = 50;
    let pg = Postgres::start();
    let url = pg.create("cp");
    let stores = [store(&url).await, store(&url).await];
    put_demo(&stores[0], "acme", false).await;
    let mut tasks = Vec::new();
    for i in 0..EDITS {
        let store = stores[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            let edit = Box::new(move |doc: &mut AccountSnapshot| {
                doc.users.push(User {
                    identifier: format!("user{i}"),
                    ..User::default()
                });
                Ok(ChangeSummary(format!("user created: user{i}")))
            });
            store.change("acme", "test", false, edit).await.unwrap().after
        }));
    }
    let mut after = Vec::new();
    for task in tasks {
        after.push(task.await.unwrap());
    }
    after.sort_unstable();
    assert_eq!(after, (2..=EDITS as u64 + 1).collect::<Vec<_>>());
    let document = stores[1].read("acme").await.unwrap().unwrap();
    assert_eq!(document.version, EDITS as u64 + 1);
    for i in 0..EDITS {
        assert!(
            document.users.iter().any(|u| u.identifier == format!("user{i}")),
            "user{i} lost"
        );
    }
    let logged: Vec<i64> =
        sqlx::query("SELECT revision FROM change_log WHERE account = 'acme' ORDER BY revision")
            .fetch_all(stores[0].pool())
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
    assert_eq!(logged, (1..=EDITS as i64 + 1).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poll_alone_brings_a_follower_up_to_date_without_any_notification() {
    let pg = Postgres::start();
    let store = store(&pg.create("cp")).await;
    put_demo(&store, "acme", false).await;
    let served = Arc::new(scopegate::control_plane::Store::default());
    // a follower that never listens: what a replica does when every notification is lost
    let follower = Follower::new(
        store.pool().clone(),
        Arc::new(Catalog::embedded().unwrap()),
        Arc::clone(&served),
        Duration::from_millis(250),
    );
    assert_eq!(follower.sync().await.unwrap(), 1);
    for revoked in [true, false, true] {
        put_demo(&store, "acme", revoked).await;
    }
    put_demo(&store, "globex", false).await;
    assert_eq!(follower.sync().await.unwrap(), 2);
    assert_eq!(served.current("acme").unwrap().version, 4);
    assert_eq!(served.current("globex").unwrap().version, 1);
    assert_eq!(
        follower.sync().await.unwrap(),
        0,
        "nothing newer: nothing reloaded"
    );
}

async fn served(cp: &str, account: &str) -> AccountSnapshot {
    let mut client = SnapshotServiceClient::connect(cp.to_owned()).await.unwrap();
    let got = client
        .get(GetRequest {
            account: account.to_owned(),
        })
        .await
        .unwrap();
    got.into_inner().snapshot.unwrap()
}

const LONG: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_one_database_serve_each_change_and_a_sidecar_fails_over_between_them() {
    let pg = Postgres::start();
    let url = pg.create("cp");
    let store = store(&url).await;
    put_demo(&store, "acme", false).await;
    let a = Process::database(&url, "127.0.0.1:0", &[]);
    let b = Process::database(&url, "127.0.0.1:0", &[]);
    let (addr_a, addr_b) = (a.addr.to_string(), b.addr.to_string());
    // the sidecar watches B first, A is its alternate
    let mut options = remote(&b.url());
    options.alternate_urls = vec![a.url()];
    let state = sidecar(options);
    let server = Server::start(state.clone()).await;
    let mut client = server.client().await;
    assert_eq!(alice(&mut client).await, 200);

    // a change written to the database (as replica A's management API would) reaches the sidecar
    // watching B
    put_demo(&store, "acme", true).await;
    let took = eventually(LONG, "the revocation reaches the sidecar through B", async || {
        alice(&mut client).await == 403
    })
    .await;
    eprintln!("change → sidecar on the other replica: {took:?}");
    assert!(took < Duration::from_secs(1), "took {took:?}");

    // B dies: the sidecar moves to A and gets the next change from it
    b.kill();
    put_demo(&store, "acme", false).await;
    let took = eventually(LONG, "the next change arrives through A", async || {
        alice(&mut client).await == 200
    })
    .await;
    eprintln!("failover + change: {took:?}");
    assert_eq!(state.accounts().stats().accounts[0].version, 3);

    // both restarted on their addresses: the same data, nothing lost with the processes
    a.kill();
    let a = Process::database(&url, &addr_a, &[]);
    let b = Process::database(&url, &addr_b, &[]);
    let expected = store.read("acme").await.unwrap().unwrap();
    assert_eq!(served(&a.url(), "acme").await, expected);
    assert_eq!(served(&b.url(), "acme").await, expected);
    put_demo(&store, "acme", true).await;
    eventually(
        LONG,
        "a change after the restart reaches the sidecar",
        async || alice(&mut client).await == 403,
    )
    .await;
    server.stop().await;
}

/// Runs `scopegate ARGS`; returns (exit code, stdout, stderr).
fn scopegate(args: &[&str]) -> (i32, String, String) {
    let out = cli::scopegate(args);
    (
        out.status.code().unwrap_or(-1),
        cli::stdout(&out),
        cli::stderr(&out),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_bootstrap_prints_a_token_that_a_sidecar_allows_for_an_account_level_permission() {
    let pg = Postgres::start();
    let url = pg.create("cp");
    let args = [
        "admin",
        "bootstrap",
        "--database",
        &url,
        "--account",
        "acme",
        "--user",
        "root",
    ];
    let (code, first, stderr) = scopegate(&args);
    assert_eq!(code, 0, "{stderr}");
    let (code, second, stderr) = scopegate(&args);
    assert_eq!(code, 0, "{stderr}");
    for out in [&first, &second] {
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.starts_with("pat.acme."), "{out}");
    }
    let store = store(&url).await;
    let document = store.read("acme").await.unwrap().unwrap();
    let admins: Vec<_> = document
        .role_assignments
        .iter()
        .filter(|ra| ra.role == "_account_admin")
        .collect();
    assert_eq!(admins.len(), 1, "{admins:?}");
    assert_eq!(admins[0].resource_group, "_all_account_level_resources");
    assert!(
        !format!("{document:?}").contains(first.trim()),
        "the token is stored, not its hash"
    );

    let cp = Process::database(&url, "127.0.0.1:0", &[]);
    let server = Server::start(sidecar(remote(&cp.url()))).await;
    let mut client = server.client().await;
    for token in [first.trim(), second.trim()] {
        assert_eq!(check(&mut client, "POST", "/v1/orgs", token).await, 200);
    }
    assert_eq!(
        check(&mut client, "POST", "/v1/orgs", "pat.acme.nosuchtok.Secret").await,
        401
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_import_loads_the_demo_then_refuses_an_invalid_file_and_writes_nothing_of_it() {
    let pg = Postgres::start();
    let url = pg.create("cp");
    let demo_file = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/examples/snapshots/demo.yaml");
    let (code, _, stderr) = scopegate(&["admin", "import", "--database", &url, demo_file]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("revision 1"), "{stderr}");
    let before = pg.dump("cp");

    let dir = TempDir::new("pg-import");
    let bad = dir.join("acme-broken.yaml");
    std::fs::write(&bad, invalid_demo("acme", 7)).unwrap();
    let (code, _, stderr) = scopegate(&["admin", "import", "--database", &url, bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("acme-broken.yaml"), "{stderr}");
    assert!(stderr.contains("no_such_role"), "{stderr}");
    assert_eq!(pg.dump("cp"), before);
    let store = store(&url).await;
    assert_eq!(store.read("acme").await.unwrap().unwrap().version, 1);
}
