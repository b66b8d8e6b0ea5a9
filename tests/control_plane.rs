#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! The control plane and live snapshot sync, end to end: a real `scopegate control-plane` process
//! serving a folder, and a sidecar (in process, or a real process where its restart is the point)
//! answering Envoy Checks from what it streams.

use crate::common;
use crate::common::http;

use std::time::Duration;

use common::control_plane::{
    Process, TempDir, demo, eventually, invalid_demo, remote, sidecar, write_atomic,
};
use common::{EXECUTE, Server, alice};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use scopegate::proto::encoded::Encoded;
use scopegate::proto::snapshot_service_client::SnapshotServiceClient;
use scopegate::proto::snapshot_service_server::{SnapshotService, SnapshotServiceServer};
use scopegate::proto::{GetRequest, SyncRequest};
use scopegate::rbac::model::{AccountSnapshot, FileFormat};
use tonic::transport::Channel;

/// The version the control plane serves for `account`.
async fn served_version(cp: &Process, account: &str) -> u64 {
    let mut client = SnapshotServiceClient::connect(cp.url()).await.unwrap();
    let got = client
        .get(GetRequest {
            account: account.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    got.snapshot.unwrap().version
}

const LONG: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_an_assignment_flips_the_next_check_within_2s() {
    let dir = TempDir::new("cp-revoke");
    write_atomic(&dir.join("acme.yaml"), &demo("acme", 1, false));
    let cp = Process::control_plane(&dir.0, "127.0.0.1:0", &[]);
    let state = sidecar(remote(&cp.url()));
    let server = Server::start(state.clone()).await;
    let mut client = server.client().await;

    // The first Check loads the account (single flight, bounded wait) and is answered from it.
    assert_eq!(alice(&mut client, "acme").await, 200);
    // An account the control plane does not have: 503 SNAPSHOT_UNAVAILABLE, at once.
    assert_eq!(alice(&mut client, "globex").await, 503);

    write_atomic(&dir.join("acme.yaml"), &demo("acme", 2, true));
    let took = eventually(
        Duration::from_secs(2),
        "alice denied after revocation",
        async || alice(&mut client, "acme").await == 403,
    )
    .await;
    eprintln!("revocation reached the decision in {took:?}");
    let stats = state.accounts().stats();
    assert_eq!(stats.accounts.len(), 1);
    assert_eq!(
        (stats.accounts[0].account.as_str(), stats.accounts[0].version),
        ("acme", 2)
    );
    assert_eq!(stats.versions_applied, 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sidecar_rides_out_a_control_plane_restart_and_catches_up() {
    let dir = TempDir::new("cp-restart");
    write_atomic(&dir.join("acme.yaml"), &demo("acme", 1, false));
    let cp = Process::control_plane(&dir.0, "127.0.0.1:0", &[]);
    let addr = cp.addr.to_string();
    let state = sidecar(remote(&cp.url()));
    let server = Server::start(state.clone()).await;
    let mut client = server.client().await;
    assert_eq!(alice(&mut client, "acme").await, 200);

    cp.kill();
    // Down: the last version keeps answering, and a change is made meanwhile.
    for _ in 0..5 {
        assert_eq!(alice(&mut client, "acme").await, 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    write_atomic(&dir.join("acme.yaml"), &demo("acme", 2, true));
    assert_eq!(alice(&mut client, "acme").await, 200);

    let _cp = Process::control_plane(&dir.0, &addr, &[]);
    eventually(LONG, "the change made while down is picked up", async || {
        alice(&mut client, "acme").await == 403
    })
    .await;
    let stats = state.accounts().stats();
    assert!(stats.reconnects >= 1, "{stats:?}");
    assert_eq!(stats.accounts[0].version, 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_restarted_while_the_control_plane_is_down_answers_from_last_known_good() {
    let dir = TempDir::new("cp-lkg-source");
    let cache = TempDir::new("cp-lkg-cache");
    write_atomic(&dir.join("acme.yaml"), &demo("acme", 3, false));
    let cp = Process::control_plane(&dir.0, "127.0.0.1:0", &[]);
    let config = cache.join("sidecar.yaml");
    let lkg = cache.join("lkg");
    let write_config = |url: &str| {
        let text = format!(
            "snapshot:\n  control_plane: {{url: \"{url}\", accounts: [acme]}}\n  cache_dir: \"{}\"\n",
            lkg.display()
        );
        std::fs::write(&config, text).unwrap();
    };
    write_config(&cp.url());
    let args = [
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ];
    let first = Process::start(&args);
    let mut client = AuthorizationClient::connect(format!("http://{}", first.addr))
        .await
        .unwrap();
    eventually(LONG, "the preloaded account answers", async || {
        alice(&mut client, "acme").await == 200
    })
    .await;
    eventually(LONG, "the last-known-good copy is written", async || {
        lkg.join("acme.pb").exists()
    })
    .await;
    first.kill();
    cp.kill();

    let second = Process::start(&args);
    let mut client = AuthorizationClient::connect(format!("http://{}", second.addr))
        .await
        .unwrap();
    eventually(LONG, "answers from last-known-good", async || {
        alice(&mut client, "acme").await == 200
    })
    .await;
    // Ready: the preloaded account is available (from disk).
    let channel = Channel::from_shared(format!("http://{}", second.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    eventually(LONG, "health SERVING", async || {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await
            .unwrap()
            .into_inner()
            .status;
        status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_and_backwards_snapshots_never_replace_the_valid_one() {
    let dir = TempDir::new("cp-invalid");
    write_atomic(&dir.join("acme.yaml"), &demo("acme", 5, false));
    let cp = Process::control_plane(&dir.0, "127.0.0.1:0", &[]);
    let state = sidecar(remote(&cp.url()));
    let server = Server::start(state.clone()).await;
    let mut client = server.client().await;
    assert_eq!(alice(&mut client, "acme").await, 200);

    // Both would deny alice if they were served. The control plane rescans every 250 ms: give it
    // several scans, then check nothing moved.
    for (text, what) in [
        (invalid_demo("acme", 6), "invalid"),
        (demo("acme", 4, true), "backwards"),
    ] {
        write_atomic(&dir.join("acme.yaml"), &text);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(served_version(&cp, "acme").await, 5, "{what}");
        assert_eq!(alice(&mut client, "acme").await, 200, "{what}");
    }
    // A valid, newer version still goes through.
    write_atomic(&dir.join("acme.yaml"), &demo("acme", 7, true));
    eventually(LONG, "version 7 applied", async || {
        alice(&mut client, "acme").await == 403
    })
    .await;
    assert_eq!(served_version(&cp, "acme").await, 7);
    assert_eq!(state.accounts().stats().load_failures, 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_a_thousand_accounts_only_those_asked_about_are_held_until_idle() {
    let dir = TempDir::new("cp-thousand");
    for n in 0..1000 {
        let account = format!("acct{n:04}");
        write_atomic(&dir.join(&format!("{account}.yaml")), &demo(&account, 1, false));
    }
    let cp = Process::control_plane(&dir.0, "127.0.0.1:0", &[]);
    let mut options = remote(&cp.url());
    options.account_idle = Duration::from_secs(2);
    let state = sidecar(options);
    let server = Server::start(state.clone()).await;
    let mut client = server.client().await;

    // Concurrent first requests for one account share one fetch.
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let mut client = client.clone();
        tasks.push(tokio::spawn(async move { alice(&mut client, "acct0500").await }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    let stats = state.accounts().stats();
    assert_eq!((stats.versions_applied, stats.watch_streams), (1, 1), "{stats:?}");

    for account in ["acct0007", "acct0999"] {
        assert_eq!(alice(&mut client, account).await, 200);
    }
    let held: Vec<String> = state
        .accounts()
        .stats()
        .accounts
        .into_iter()
        .map(|a| a.account)
        .collect();
    assert_eq!(held, ["acct0007", "acct0500", "acct0999"]);

    // Idle: evicted, and their Watch streams stop.
    eventually(LONG, "idle accounts evicted", async || {
        let stats = state.accounts().stats();
        stats.accounts.is_empty() && stats.watch_streams == 0
    })
    .await;
    assert!(state.accounts().stats().evictions >= 3);
    // Asked again: loaded again.
    assert_eq!(alice(&mut client, "acct0500").await, 200);
    server.stop().await;
}

/// A throwaway CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files.
struct Pki {
    ca: std::path::PathBuf,
    server: (std::path::PathBuf, std::path::PathBuf),
    client: (std::path::PathBuf, std::path::PathBuf),
}

fn pki(dir: &TempDir) -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |name: &str, sans: Vec<String>, usage: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(sans).unwrap();
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &issuer).unwrap();
        let (cert_path, key_path) = (dir.join(&format!("{name}.pem")), dir.join(&format!("{name}.key")));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    };
    let server = leaf(
        "server",
        vec!["127.0.0.1".to_owned()],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let client = leaf(
        "client",
        vec!["sidecar".to_owned()],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, ca_cert.pem()).unwrap();
    Pki { ca, server, client }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_between_the_control_plane_and_the_sidecar() {
    let dir = TempDir::new("cp-tls");
    let certs = TempDir::new("cp-tls-certs");
    let pki = pki(&certs);
    write_atomic(&dir.join("acme.yaml"), &demo("acme", 1, false));
    let path = |p: &std::path::PathBuf| p.to_str().unwrap().to_owned();
    let (cert, key, ca) = (path(&pki.server.0), path(&pki.server.1), path(&pki.ca));
    let tls = ["--tls-cert", &cert, "--tls-key", &key, "--client-ca", &ca];
    let cp = Process::control_plane(&dir.0, "127.0.0.1:0", &tls);
    let url = format!("https://{}", cp.addr);

    let mut options = remote(&url);
    options.ca = Some(pki.ca.clone());
    options.identity = Some(pki.client.clone());
    let server = Server::start(sidecar(options)).await;
    let mut client = server.client().await;
    assert_eq!(alice(&mut client, "acme").await, 200);
    server.stop().await;

    // Without a client certificate the handshake fails: nothing loads.
    let mut options = remote(&url);
    options.ca = Some(pki.ca.clone());
    options.load_timeout = Duration::from_secs(2);
    let state = sidecar(options);
    let server = Server::start(state.clone()).await;
    let mut client = server.client().await;
    assert_eq!(alice(&mut client, "acme").await, 503);
    assert!(state.accounts().stats().load_failures >= 1);
    server.stop().await;
}

/// A control plane stand-in that streams whatever the test sends, valid or not.
struct Scripted {
    stream: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<Result<Encoded, tonic::Status>>>>,
}

#[tonic::async_trait]
impl SnapshotService for Scripted {
    async fn sync(
        &self,
        _request: tonic::Request<tonic::Streaming<SyncRequest>>,
    ) -> Result<tonic::Response<scopegate::control_plane::WatchResponses>, tonic::Status> {
        let rx = self.stream.lock().unwrap().take();
        let rx = rx.ok_or_else(|| tonic::Status::unavailable("one stream only"))?;
        Ok(tonic::Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sidecar_never_replaces_a_valid_snapshot_with_one_that_fails_to_compile() {
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let scripted = Scripted {
        stream: std::sync::Mutex::new(Some(rx)),
    };
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(SnapshotServiceServer::new(scripted))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let send = async |yaml: String| {
        let snapshot = AccountSnapshot::parse(&yaml, FileFormat::Yaml).unwrap();
        tx.send(Ok(Encoded::snapshot(&snapshot))).await.unwrap();
    };
    send(demo("acme", 1, false)).await;
    let state = sidecar(remote(&url));
    let server = Server::start(state.clone()).await;
    let mut client = server.client().await;
    assert_eq!(alice(&mut client, "acme").await, 200);

    send(invalid_demo("acme", 2)).await;
    eventually(LONG, "the invalid snapshot is rejected", async || {
        state.accounts().stats().load_failures == 1
    })
    .await;
    assert_eq!(alice(&mut client, "acme").await, 200);
    assert_eq!(state.accounts().stats().accounts[0].version, 1);

    send(demo("acme", 3, true)).await;
    eventually(LONG, "version 3 applied", async || {
        alice(&mut client, "acme").await == 403
    })
    .await;
    server.stop().await;
}

#[test]
fn control_plane_bad_input_exits_2_with_one_line() {
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_scopegate"))
            .args(args)
            .output()
            .unwrap()
    };
    let missing = run(&[
        "control-plane",
        "--source",
        "/nonexistent/scopegate",
        "--listen",
        "127.0.0.1:0",
    ]);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr.starts_with("error: cannot read the source `/nonexistent/scopegate`"),
        "{stderr}"
    );
    let dir = TempDir::new("cp-badtls");
    let source = dir.0.to_str().unwrap();
    let no_cert = run(&[
        "control-plane",
        "--source",
        source,
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        "/nonexistent.pem",
        "--tls-key",
        "/nonexistent.key",
    ]);
    let stderr = String::from_utf8_lossy(&no_cert.stderr);
    assert_eq!(no_cert.status.code(), Some(2));
    assert!(
        stderr.starts_with("error: cannot read `/nonexistent.pem`"),
        "{stderr}"
    );
    let both = run(&[
        "serve",
        "--snapshots",
        source,
        "--control-plane",
        "http://127.0.0.1:1",
    ]);
    assert_eq!(both.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_front_ends_load_an_account_on_first_use_too() {
    let dir = TempDir::new("cp-http");
    write_atomic(&dir.join("acme.yaml"), &demo("acme", 1, false));
    let cp = Process::control_plane(&dir.0, "127.0.0.1:0", &[]);
    // one sidecar per front end, so each first request meets an account not loaded yet
    let http = http::HttpServer::start(sidecar(remote(&cp.url())), Default::default()).await;
    let reply = http::send(
        http.addr,
        "POST",
        EXECUTE,
        &[("harness-account", "acme"), ("x-api-key", common::ALICE)],
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    http.stop().await;

    let admin = scopegate::http::HttpOptions::admin();
    let http = http::HttpServer::start(sidecar(remote(&cp.url())), admin).await;
    let body = serde_json::json!({"permissions": [{
        "resourceScope": {"accountIdentifier": "acme", "orgIdentifier": "eng", "projectIdentifier": "payments"},
        "resourceType": "PIPELINE", "resourceIdentifier": "deploy_prod", "permission": "core_pipeline_execute"}]});
    let reply = http::send(
        http.addr,
        "POST",
        "/authz/api/acl",
        &[("x-api-key", common::ALICE), ("content-type", "application/json")],
        Some(body.to_string()),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["data"]["accessControlList"][0]["permitted"], true);
    http.stop().await;
}
