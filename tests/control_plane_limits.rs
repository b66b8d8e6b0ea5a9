#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! What the control plane and the sidecar refuse (security review, issue 10): plaintext exposure
//! without an explicit `insecure`, snapshots over the size limit, absurd versions, and the cost of
//! account names the control plane does not know or of a Watch that breaks at once.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::control_plane::{Process, TempDir, demo, eventually, remote, sidecar};
use common::{EXECUTE, Server, request};
use envoy_types::ext_authz::v3::pb::{CheckResponse, HttpResponse};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use prost::Message;
use scopegate::accounts::SnapshotSource;
use scopegate::accounts::{ControlPlaneSource, RemoteOptions};
use scopegate::authz::Authorizer;
use scopegate::proto::encoded::Encoded;
use scopegate::proto::snapshot_service_server::{SnapshotService, SnapshotServiceServer};
use scopegate::proto::{SyncRequest, sync_request};
use scopegate::rbac::Catalog;
use scopegate::rbac::model::{AccountSnapshot, FileFormat};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

const LONG: Duration = Duration::from_secs(30);

type Responses = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<Encoded, tonic::Status>> + Send>>;

/// A scripted control plane that counts Watch calls. It knows one account (`known`, streamed once,
/// then the stream stays open), answers NOT_FOUND for any other, or, with `break_at_once`, opens
/// every stream and breaks it at once.
#[derive(Clone, Default)]
struct Counting {
    calls: Arc<AtomicU64>,
    known: Option<AccountSnapshot>,
    break_at_once: bool,
}

#[tonic::async_trait]
impl SnapshotService for Counting {
    async fn sync(
        &self,
        request: tonic::Request<tonic::Streaming<SyncRequest>>,
    ) -> Result<tonic::Response<Responses>, tonic::Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let account = match request.into_inner().message().await {
            Ok(Some(SyncRequest {
                kind: Some(sync_request::Kind::Subscribe(subscribe)),
            })) => subscribe.account,
            _ => String::new(),
        };
        if self.break_at_once {
            let broken = tokio_stream::once(Err(tonic::Status::unavailable("going away")));
            return Ok(tonic::Response::new(Box::pin(broken)));
        }
        match &self.known {
            Some(snapshot) if snapshot.account == account => {
                let first = tokio_stream::once(Ok(Encoded::snapshot(snapshot)));
                Ok(tonic::Response::new(Box::pin(
                    first.chain(tokio_stream::pending()),
                )))
            }
            _ => Err(tonic::Status::not_found("no such account")),
        }
    }
}

/// Serves `service` on 127.0.0.1; returns its `http://` url.
async fn serve(service: impl SnapshotService) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(SnapshotServiceServer::new(service))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    url
}

fn snapshot(yaml: &str) -> AccountSnapshot {
    AccountSnapshot::parse(yaml, FileFormat::Yaml).unwrap()
}

fn catalog() -> Arc<Catalog> {
    Arc::new(Catalog::embedded().unwrap())
}

fn run(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_control_plane_refuses_a_public_address_without_mutual_tls() {
    let dir = TempDir::new("cp-exposed");
    let source = dir.0.to_str().unwrap();
    let plain = run(&["control-plane", "--source", source, "--listen", "0.0.0.0:0"]);
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert_eq!(plain.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("error: refusing to serve snapshots on `0.0.0.0:0`"),
        "{stderr}"
    );
    assert!(stderr.contains("--client-ca"), "{stderr}");
    // TLS without client certificates still lets anyone read every snapshot.
    let server_only = run(&[
        "control-plane",
        "--source",
        source,
        "--listen",
        "[::]:0",
        "--tls-cert",
        "/nonexistent.pem",
        "--tls-key",
        "/nonexistent.key",
    ]);
    let stderr = String::from_utf8_lossy(&server_only.stderr);
    assert_eq!(server_only.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("error: refusing to serve snapshots"),
        "{stderr}"
    );
    // Loopback stays easy; `--insecure` is the explicit way out.
    drop(Process::control_plane(&dir.0, "127.0.0.1:0", &[]));
    drop(Process::control_plane(&dir.0, "0.0.0.0:0", &["--insecure"]));
}

#[test]
fn the_sidecar_refuses_a_plaintext_control_plane_that_is_not_loopback_at_start() {
    let refused = run(&["serve", "--control-plane", "http://10.0.0.1:9300"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("is plaintext to a host that is not loopback"),
        "{stderr}"
    );

    let dir = TempDir::new("cp-plain-config");
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        "snapshot: {control_plane: {url: \"http://cp.example:9300\"}}\n",
    )
    .unwrap();
    let refused = run(&["serve", "--config", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`snapshot.control_plane.url`"), "{stderr}");

    let source = |url: &str, insecure: bool| {
        let options = RemoteOptions {
            insecure,
            ..remote(url)
        };
        Authorizer::load(SnapshotSource::ControlPlane(options), None).map(|_| ())
    };
    assert!(source("http://192.0.2.1:9300", false).is_err());
    assert!(source("http://cp.example:9300/", false).is_err());
    assert!(source("http://192.0.2.1:9300", true).is_ok());
    for url in [
        "http://127.0.0.1:9300",
        "http://[::1]:9300",
        "http://localhost:9300",
    ] {
        assert!(source(url, false).is_ok(), "{url}");
    }
}

/// The HTTP status alice's execute check in `account` gets (200 = allowed).
async fn alice(client: &mut AuthorizationClient<Channel>, account: &str) -> i32 {
    let token = format!("pat.{account}.alicetok01.AliceDemoSecret01");
    let req = request(
        "POST",
        EXECUTE,
        &[("harness-account", account), ("x-api-key", &token)],
        None,
    );
    let resp: CheckResponse = client.check(req).await.unwrap().into_inner();
    match &resp.http_response {
        Some(HttpResponse::OkResponse(_)) => 200,
        Some(HttpResponse::DeniedResponse(d)) => d.status.as_ref().map_or(0, |s| s.code),
        _ => 0,
    }
}

/// A control plane stand-in that streams whatever the test sends on one stream.
struct OneStream(std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<Result<Encoded, tonic::Status>>>>);

#[tonic::async_trait]
impl SnapshotService for OneStream {
    async fn sync(
        &self,
        _request: tonic::Request<tonic::Streaming<SyncRequest>>,
    ) -> Result<tonic::Response<Responses>, tonic::Status> {
        let rx = self.0.lock().unwrap().take();
        let rx = rx.ok_or_else(|| tonic::Status::unavailable("one stream only"))?;
        Ok(tonic::Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

/// A sidecar on a scripted stream; returns the sender of the stream, the state and the server.
async fn scripted_sidecar(
    options: impl FnOnce(RemoteOptions) -> RemoteOptions,
) -> (
    tokio::sync::mpsc::Sender<Result<Encoded, tonic::Status>>,
    Arc<Authorizer>,
    Server,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let url = serve(OneStream(std::sync::Mutex::new(Some(rx)))).await;
    let state = sidecar(options(remote(&url)));
    let server = Server::start(state.clone()).await;
    (tx, state, server)
}

fn message(yaml: &str) -> Result<Encoded, tonic::Status> {
    Ok(Encoded::snapshot(&snapshot(yaml)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_over_the_size_limit_is_refused_and_the_version_in_force_kept() {
    // v1 (alice revoked) fits the limit exactly; v2 (one assignment more) does not.
    let v1 = message(&demo("acme", 1, true)).unwrap();
    let limit = v1.encoded_len();
    let (tx, state, server) = scripted_sidecar(|o| RemoteOptions {
        max_snapshot_bytes: limit,
        ..o
    })
    .await;
    tx.send(Ok(v1)).await.unwrap();
    let mut client = server.client().await;
    assert_eq!(alice(&mut client, "acme").await, 403);
    let v2 = message(&demo("acme", 2, false));
    assert!(v2.as_ref().unwrap().encoded_len() > limit);
    tx.send(v2).await.unwrap();
    eventually(LONG, "the oversized snapshot is refused", async || {
        state.accounts().stats().load_failures >= 1
    })
    .await;
    assert_eq!(alice(&mut client, "acme").await, 403);
    assert_eq!(state.accounts().stats().accounts[0].version, 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_version_jump_is_refused_and_cannot_pin_the_account() {
    let (tx, state, server) = scripted_sidecar(|o| o).await;
    tx.send(message(&demo("acme", 1, false))).await.unwrap();
    let mut client = server.client().await;
    assert_eq!(alice(&mut client, "acme").await, 200);
    // u64::MAX would leave no room for any later version: refused, version 1 kept.
    let pinned = demo("acme", 1, true).replace("version: 1\n", &format!("version: {}\n", u64::MAX));
    tx.send(message(&pinned)).await.unwrap();
    eventually(LONG, "the absurd version is refused", async || {
        state.accounts().stats().load_failures == 1
    })
    .await;
    assert_eq!(alice(&mut client, "acme").await, 200);
    assert_eq!(state.accounts().stats().accounts[0].version, 1);
    // A jump of more than 2^48 too; the next sane version still applies.
    let jump = demo("acme", 1, true).replace("version: 1\n", &format!("version: {}\n", 2 + (1u64 << 48)));
    tx.send(message(&jump)).await.unwrap();
    eventually(LONG, "the jump is refused", async || {
        state.accounts().stats().load_failures == 2
    })
    .await;
    tx.send(message(&demo("acme", 2, true))).await.unwrap();
    eventually(LONG, "version 2 applied", async || {
        alice(&mut client, "acme").await == 403
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_account_names_neither_evict_a_loaded_account_nor_keep_calling_the_control_plane() {
    let cp = Counting {
        known: Some(snapshot(&demo("acme", 1, false))),
        ..Counting::default()
    };
    let calls = Arc::clone(&cp.calls);
    let url = serve(cp).await;
    let options = RemoteOptions {
        max_accounts: 1,
        unknown_ttl: Duration::from_secs(600),
        ..remote(&url)
    };
    let source = ControlPlaneSource::new(&options, catalog()).unwrap();
    assert!(source.load_account("acme").await);
    const JUNK: u64 = 200;
    for _round in 0..3 {
        for i in 0..JUNK {
            assert!(!source.load_account(&format!("junk-{i}")).await);
        }
    }
    assert!(source.account("acme").is_some(), "the loaded account was evicted");
    assert_eq!(source.stats().evictions, 0);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1 + JUNK,
        "one call per name, then remembered"
    );
    // No retry loop lingers per unknown name: the count stays put.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1 + JUNK);
    assert_eq!(source.stats().watch_streams, 1);
    assert!(source.account("acme").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_that_breaks_right_after_opening_backs_off() {
    let cp = Counting {
        break_at_once: true,
        ..Counting::default()
    };
    let calls = Arc::clone(&cp.calls);
    let url = serve(cp).await;
    let options = RemoteOptions {
        preload: vec!["acme".to_owned()],
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_secs(30),
        ..remote(&url)
    };
    let source = ControlPlaneSource::new(&options, catalog()).unwrap();
    source.start();
    eventually(LONG, "the first watch", async || {
        calls.load(Ordering::SeqCst) >= 1
    })
    .await;
    // Doubling from 50 ms (each wait at least half its ceiling): 25 + 50 + 100 + 200 + 400 + 800
    // + 1600 ms > 3 s, so at most 8 calls in 3 s; at the floor it would be about 60.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let made = calls.load(Ordering::SeqCst);
    assert!(
        made <= 8,
        "{made} watch calls in 3 s: the backoff was reset when the stream opened"
    );
    assert!(made >= 2, "the broken stream is retried");
}

/// Reads until the server closes the connection; `false` if it is still open after `LONG`.
async fn closed_by_server(stream: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0; 4096];
    let read_to_end = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(LONG, read_to_end).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_plane_closes_silent_connections_and_those_beyond_its_cap() {
    let dir = TempDir::new("cp-limits");
    common::control_plane::write_atomic(&dir.join("acme.yaml"), &demo("acme", 1, false));
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let mut options = scopegate::control_plane::Options::new(dir.0.clone(), catalog());
    options.limits = scopegate::tls::ConnectionLimits {
        header_read_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_secs(600),
        max_connections: 1,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(scopegate::control_plane::run_on(tcp, options, async {
        let _ = stopped.await;
    }));
    // a client that never speaks loses its connection (and its slot) after the header timeout
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_by_server(&mut silent).await,
        "a silent client kept its connection"
    );
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.connect().await.unwrap());
    let check = || tonic_health::pb::HealthCheckRequest {
        service: scopegate::control_plane::SERVICE_NAME.to_owned(),
    };
    assert!(health.check(check()).await.is_ok());
    // the cap is one connection: the next is closed unanswered, the first is still served
    let mut beyond = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_by_server(&mut beyond).await,
        "a connection beyond the cap was kept"
    );
    assert!(
        health.check(check()).await.is_ok(),
        "the first connection is still served"
    );
    drop(health);
    drop(stop);
    served.await.unwrap().unwrap();
}
