#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! TLS on the listeners, over loopback with certificates made at test time (rcgen): gRPC Check
//! and HTTP `/healthz` over TLS, mTLS refusals, the minimum version, ALPN, a silent client not
//! stalling others, and certificates reloaded when their files change.

use crate::common;
use crate::common::pki;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{ALICE, EXECUTE, allowed, request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use pki::{Ca, Pair, replace, self_signed_client};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use scopegate::authz::Authorizer;
use scopegate::http::HttpOptions;
use scopegate::server::{ServeError, run_all};
use scopegate::tls::{Listener, MinVersion, Protocols, ServerTls, TlsSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// TLS settings over files in `dir` holding `server` (and `client_ca` when given).
fn settings(dir: &Path, server: &Pair, client_ca: Option<&str>, min: MinVersion) -> TlsSettings {
    replace(&dir.join("server.crt"), &server.cert);
    replace(&dir.join("server.key"), &server.key);
    let client_ca = client_ca.map(|pem| {
        replace(&dir.join("client-ca.crt"), pem);
        dir.join("client-ca.crt")
    });
    TlsSettings {
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
        client_ca,
        min_version: min,
        reload_interval: Duration::from_millis(100),
    }
}

/// Both listeners over TLS on ephemeral loopback ports, with the certificate reloader.
struct Server {
    grpc: SocketAddr,
    http: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
    reloader: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(settings: TlsSettings) -> Self {
        let tls = Arc::new(ServerTls::load(settings).unwrap());
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (grpc_addr, http_addr) = (grpc.local_addr().unwrap(), http.local_addr().unwrap());
        let grpc = Listener::tls(grpc, Arc::clone(&tls), Protocols::Grpc);
        let http = Listener::tls(http, Arc::clone(&tls), Protocols::Http);
        assert!(grpc.is_tls() && http.is_tls());
        let reloader = tls.spawn_reloader();
        let (stop, stopped) = oneshot::channel::<()>();
        let state = Arc::new(Authorizer::demo().unwrap());
        let task = tokio::spawn(run_all(grpc, Some((http, HttpOptions::admin())), state, async {
            let _ = stopped.await;
        }));
        Self {
            grpc: grpc_addr,
            http: http_addr,
            stop: Some(stop),
            task,
            reloader,
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        self.reloader.abort();
    }
}

/// A Check for alice's demo pipeline execution over a TLS channel trusting `ca`, presenting
/// `identity` when given; `Err` when the connection or the call fails.
async fn tls_check(addr: SocketAddr, ca: &str, identity: Option<&Pair>) -> Result<bool, String> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some(pair) = identity {
        tls = tls.identity(Identity::from_pem(&pair.cert, &pair.key));
    }
    let channel = Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    let req = request("POST", EXECUTE, &[("x-api-key", ALICE)], None);
    let resp = AuthorizationClient::new(channel)
        .check(req)
        .await
        .map_err(|e| format!("check: {e:?}"))?;
    Ok(allowed(&resp.into_inner()))
}

fn client_config(
    ca: &str,
    versions: &[&'static SupportedProtocolVersion],
    identity: Option<&Pair>,
    alpn: &[&[u8]],
) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
        .unwrap();
    let builder = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match identity {
        Some(pair) => builder
            .with_client_auth_cert(
                vec![pair.der()],
                PrivateKeyDer::from_pem_slice(pair.key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

async fn handshake(addr: SocketAddr, config: ClientConfig) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    let connect = TlsConnector::from(Arc::new(config)).connect(name, tcp);
    tokio::time::timeout(Duration::from_secs(10), connect)
        .await
        .unwrap()
}

/// `GET /healthz` over HTTP/1.1 on an established stream; the status line, or the error.
async fn healthz(mut stream: TlsStream<TcpStream>) -> Result<String, std::io::Error> {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .unwrap()?;
    let text = String::from_utf8_lossy(&response);
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_check_and_http_healthz_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("scopegate test ca");
    let server = Server::start(settings(
        dir.path(),
        &ca.server("server"),
        None,
        MinVersion::Tls13,
    ))
    .await;

    assert_eq!(tls_check(server.grpc, &ca.pem(), None).await, Ok(true));
    let stream = handshake(server.grpc, client_config(&ca.pem(), TLS13, None, &[b"h2"]))
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let refused = handshake(server.grpc, client_config(&ca.pem(), TLS13, None, &[b"http/1.1"])).await;
    assert!(refused.is_err(), "the gRPC listener speaks h2 only");

    let plaintext = Channel::from_shared(format!("http://{}", server.grpc))
        .unwrap()
        .timeout(Duration::from_secs(10))
        .connect()
        .await;
    if let Ok(channel) = plaintext {
        let req = request("POST", EXECUTE, &[("x-api-key", ALICE)], None);
        assert!(AuthorizationClient::new(channel).check(req).await.is_err());
    }

    let stream = handshake(server.http, client_config(&ca.pem(), TLS13, None, &[b"http/1.1"]))
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(healthz(stream).await.unwrap(), "HTTP/1.1 200 OK");
    let stream = handshake(
        server.http,
        client_config(&ca.pem(), TLS13, None, &[b"h2", b"http/1.1"]),
    )
    .await
    .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_serves_only_clients_with_a_certificate_from_the_client_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("scopegate test ca");
    let other = Ca::new("another ca");
    let files = settings(
        dir.path(),
        &ca.server("server"),
        Some(&ca.pem()),
        MinVersion::Tls13,
    );
    let server = Server::start(files).await;

    let envoy = ca.client("envoy");
    assert_eq!(tls_check(server.grpc, &ca.pem(), Some(&envoy)).await, Ok(true));
    assert!(
        tls_check(server.grpc, &ca.pem(), None).await.is_err(),
        "no client certificate"
    );
    let foreign = other.client("envoy");
    assert!(
        tls_check(server.grpc, &ca.pem(), Some(&foreign)).await.is_err(),
        "another ca"
    );
    let own = self_signed_client("envoy");
    assert!(
        tls_check(server.grpc, &ca.pem(), Some(&own)).await.is_err(),
        "self-signed"
    );

    let with_cert = handshake(server.http, client_config(&ca.pem(), TLS13, Some(&envoy), &[]))
        .await
        .unwrap();
    assert_eq!(healthz(with_cert).await.unwrap(), "HTTP/1.1 200 OK");
    // Under TLS 1.3 the client finishes its side before the server checks its certificate: the
    // refusal arrives as an alert on the first read, or fails the handshake outright.
    if let Ok(without) = handshake(server.http, client_config(&ca.pem(), TLS13, None, &[])).await {
        let answer = healthz(without).await;
        assert!(
            answer.as_ref().is_err() || answer.as_ref().is_ok_and(|s| s.is_empty()),
            "{answer:?}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_version_decides_whether_a_tls12_client_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("scopegate test ca");
    let strict = Server::start(settings(
        dir.path(),
        &ca.server("server"),
        None,
        MinVersion::Tls13,
    ))
    .await;
    for addr in [strict.grpc, strict.http] {
        assert!(
            handshake(addr, client_config(&ca.pem(), TLS12, None, &[]))
                .await
                .is_err()
        );
        let ok = handshake(addr, client_config(&ca.pem(), TLS13, None, &[]))
            .await
            .unwrap();
        assert_eq!(
            ok.get_ref().1.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
    }
    strict.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let lenient = Server::start(settings(
        dir.path(),
        &ca.server("server"),
        None,
        MinVersion::Tls12,
    ))
    .await;
    let old = handshake(lenient.http, client_config(&ca.pem(), TLS12, None, &[]))
        .await
        .unwrap();
    assert_eq!(
        old.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_eq!(healthz(old).await.unwrap(), "HTTP/1.1 200 OK");
    lenient.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_does_not_stall_the_handshakes_of_others() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("scopegate test ca");
    let server = Server::start(settings(
        dir.path(),
        &ca.server("server"),
        None,
        MinVersion::Tls13,
    ))
    .await;
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(TcpStream::connect(server.grpc).await.unwrap());
    }
    assert_eq!(tls_check(server.grpc, &ca.pem(), None).await, Ok(true));
    // Nor do clients that finish the handshake and then say nothing hold the shutdown open.
    for addr in [server.grpc, server.http] {
        let idle = handshake(addr, client_config(&ca.pem(), TLS13, None, &[b"h2"])).await;
        silent.push(idle.unwrap().into_inner().0);
    }
    server.stop().await;
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_reload_when_their_files_change() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("scopegate test ca");
    let first = ca.server("first");
    let files = settings(dir.path(), &first, None, MinVersion::Tls13);
    let server = Server::start(files.clone()).await;
    let served = |addr| {
        let config = client_config(&ca.pem(), TLS13, None, &[]);
        async move {
            let stream = handshake(addr, config).await.unwrap();
            stream.get_ref().1.peer_certificates().unwrap()[0].clone()
        }
    };
    assert_eq!(served(server.grpc).await, first.der());

    // A bad certificate file keeps the served one.
    replace(&files.cert, "not a certificate\n");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(served(server.grpc).await, first.der());
    assert_eq!(tls_check(server.grpc, &ca.pem(), None).await, Ok(true));

    let second = ca.server("second");
    replace(&files.key, &second.key);
    replace(&files.cert, &second.cert);
    let deadline = Instant::now() + Duration::from_secs(30);
    while served(server.grpc).await != second.der() {
        assert!(Instant::now() < deadline, "the new certificate was not picked up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(served(server.http).await, second.der());
    assert_eq!(tls_check(server.grpc, &ca.pem(), None).await, Ok(true));
    server.stop().await;
}

/// The port `scopegate serve` logs (on stderr, text or JSON) for the listener named by `what`.
/// The port of the first line of `stderr` containing `what`, then one `()` per warning of a
/// refused TLS handshake.
fn logged_port(
    stderr: impl std::io::Read + Send + 'static,
    what: &'static str,
) -> (std::sync::mpsc::Receiver<u16>, std::sync::mpsc::Receiver<()>) {
    use std::io::BufRead;
    let (sender, receiver) = std::sync::mpsc::channel();
    let (refused_sender, refused) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("\"WARN\"") && line.contains("tls handshake refused") {
                let _ = refused_sender.send(());
            }
            if line.contains(what)
                && let Some((_, rest)) = line.split_once("127.0.0.1:")
            {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                let _ = sender.send(digits.parse().unwrap());
            }
        }
    });
    (receiver, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reads_the_tls_section_of_its_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("scopegate test ca");
    let envoy = ca.client("envoy");
    let files = settings(
        dir.path(),
        &ca.server("server"),
        Some(&ca.pem()),
        MinVersion::Tls13,
    );
    let config = dir.path().join("scopegate.yaml");
    let section = format!(
        "tls: {{cert: {}, key: {}, client_ca: {}, min_version: \"1.3\"}}\n",
        files.cert.display(),
        files.key.display(),
        files.client_ca.as_ref().unwrap().display()
    );
    std::fs::write(&config, &section).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args([
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // serve logs (JSON by default) to stderr
    let (port, refusal_logged) = logged_port(child.stderr.take().unwrap(), "ext_authz listening");
    let port = tokio::task::spawn_blocking(move || port.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap();
    let result = match port {
        Ok(port) => {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let served = tls_check(addr, &ca.pem(), Some(&envoy)).await;
            let refused = tls_check(addr, &ca.pem(), None).await;
            Ok((served, refused.is_err()))
        }
        Err(e) => Err(e),
    };
    // the refused client is logged on the server's side (it used to be debug only)
    let refusal_logged = refusal_logged.recv_timeout(Duration::from_secs(10));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(result.unwrap(), (Ok(true), true));
    assert!(
        refusal_logged.is_ok(),
        "no warning for the refused client certificate"
    );

    std::fs::remove_file(&files.key).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args([
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("tls: cannot read") && stderr.contains("server.key"),
        "{stderr}"
    );
}
