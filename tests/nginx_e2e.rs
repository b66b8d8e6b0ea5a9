#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! End to end with a real nginx: deploy/nginx/nginx.conf (ports and paths substituted) in front of
//! an echoing upstream, with scopegate's HTTP listener deciding through `auth_request`. nginx must
//! be installed (`apt-get install -y nginx`; `.ci/run` installs it): without it this test fails.

use crate::common::http;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use http::{HttpServer, Reply, send};
use scopegate::authz::Authorizer;
use scopegate::http::{HttpOptions, HttpSource};

const DEPLOYED: &str = include_str!("../deploy/nginx/nginx.conf");
const ALICE: &str = "pat.acme.alicetok01.AliceDemoSecret01";
const CI_RO: &str = "sat.acme.citokro01.CiBotReadOnlySecret01";
const EXECUTE: &str = "/v1/orgs/eng/projects/payments/pipelines/deploy_prod/execute";

/// The nginx binary: on PATH, else Debian's `/usr/sbin/nginx`.
fn nginx_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("nginx"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin/nginx")])
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "nginx is not installed: this end-to-end test needs a real nginx \
                 (`apt-get install -y nginx`; .ci/run installs it)"
            )
        })
}

/// Replaces exactly one occurrence, so a change to the deployed file breaks the test loudly.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "deploy/nginx/nginx.conf: expected `{from}` once"
    );
    text.replacen(from, to, 1)
}

/// The deployed configuration with test addresses and every writable path inside `dir`.
fn config(dir: &Path, scopegate: SocketAddr, upstream: SocketAddr, listen: SocketAddr) -> String {
    let d = dir.display();
    let mut text = replace_once(
        DEPLOYED,
        "server 127.0.0.1:9192;",
        &format!("server {scopegate};"),
    );
    text = replace_once(&text, "server 127.0.0.1:8080;", &format!("server {upstream};"));
    text = replace_once(&text, "listen 127.0.0.1:8000;", &format!("listen {listen};"));
    let paths = format!(
        "http {{\n    access_log {d}/access.log;\n    client_body_temp_path {d}/body;\n    \
         proxy_temp_path {d}/proxy;\n    fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    \
         scgi_temp_path {d}/scgi;\n"
    );
    text = replace_once(&text, "http {\n", &paths);
    format!("daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n{text}")
}

/// nginx as a child process, killed on drop.
struct Nginx {
    child: Child,
    dir: PathBuf,
}

impl Nginx {
    fn start(dir: &Path, conf: &str, listen: SocketAddr) -> Self {
        let path = dir.join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new(nginx_binary())
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&path)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start nginx");
        let mut nginx = Self {
            child,
            dir: dir.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = nginx.child.try_wait().unwrap() {
                panic!("nginx exited with {status}:\n{}", nginx.log());
            }
            if std::net::TcpStream::connect(listen).is_ok() {
                return nginx;
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen:\n{}",
                nginx.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An upstream that answers every request with the headers it received, as JSON.
async fn echo_upstream() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    async fn echo(headers: HeaderMap) -> String {
        let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in &headers {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            seen.entry(name.as_str().to_owned()).or_default().push(value);
        }
        serde_json::json!({"upstream": true, "headers": seen}).to_string()
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(echo);
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, task)
}

/// A loopback port free right now (nginx binds it next).
fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn denial(reply: &Reply, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/json"),
        "{reply:?}"
    );
    let body = reply.json();
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body.get("upstream").is_none(),
        "a denied request reached the upstream: {body}"
    );
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_allows_denies_and_strips_forged_identity() {
    let binary = nginx_binary();
    let scopegate = HttpServer::start(
        Arc::new(Authorizer::demo().unwrap()),
        HttpOptions::with_source(HttpSource::Nginx),
    )
    .await;
    let (upstream, upstream_task) = echo_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let listen = free_port();
    let conf = config(dir.path(), scopegate.addr, upstream, listen);
    let nginx = tokio::task::spawn_blocking({
        let dir = dir.path().to_owned();
        move || Nginx::start(&dir, &conf, listen)
    })
    .await
    .unwrap();
    eprintln!("nginx {} on {listen}", binary.display());

    // Allowed: reaches the upstream with scopegate's identity, the forged one replaced.
    let headers = [
        ("harness-account", "acme"),
        ("x-api-key", ALICE),
        ("x-scopegate-principal", "USER:mallory"),
        ("x-scopegate-account", "evil"),
    ];
    let reply = send(listen, "POST", EXECUTE, &headers, Some("{}".to_owned())).await;
    assert_eq!(reply.status, 200, "{reply:?}\n{}", nginx.log());
    let seen = &reply.json()["headers"];
    assert_eq!(seen["x-scopegate-principal"], serde_json::json!(["USER:alice"]));
    assert_eq!(seen["x-scopegate-account"], serde_json::json!(["acme"]));
    let id = &seen["x-scopegate-decision-id"];
    assert!(id[0].as_str().is_some_and(|s| !s.is_empty()) && id.as_array().unwrap().len() == 1);

    // A public route: allowed without identity, and the forged header still never arrives.
    let reply = send(
        listen,
        "GET",
        "/health",
        &[("x-scopegate-principal", "USER:mallory")],
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let seen = &reply.json()["headers"];
    assert!(seen.get("x-scopegate-principal").is_none(), "{seen}");

    // 403 with scopegate's Harness-shaped body.
    let headers = [("harness-account", "acme"), ("x-api-key", CI_RO)];
    let body = denial(
        &send(listen, "POST", EXECUTE, &headers, None).await,
        403,
        "NG_ACCESS_DENIED",
    );
    assert_eq!(
        body["failedPermissionChecks"][0]["permission"],
        "core_pipeline_execute"
    );

    // 401 with www-authenticate.
    let reply = send(listen, "POST", EXECUTE, &[("harness-account", "acme")], None).await;
    denial(&reply, 401, "MISSING_CREDENTIALS");
    assert_eq!(
        reply.header("www-authenticate"),
        Some("ApiKey realm=\"scopegate\"")
    );

    // Statuses auth_request turns into 500 come back as scopegate's own 400 and 503.
    let dots = "/v1/orgs/eng/projects/payments/pipelines/%2e%2e/execute";
    let headers = [("harness-account", "acme"), ("x-api-key", ALICE)];
    denial(
        &send(listen, "POST", dots, &headers, None).await,
        400,
        "INVALID_REQUEST",
    );
    let headers = [
        ("harness-account", "globex"),
        ("x-api-key", "pat.globex.tok01.Secret01"),
    ];
    denial(
        &send(listen, "POST", EXECUTE, &headers, None).await,
        503,
        "SNAPSHOT_UNAVAILABLE",
    );

    // A client path naming one of scopegate's own endpoints is decided, not answered by it.
    denial(&send(listen, "GET", "/healthz", &[], None).await, 403, "NO_ROUTE");

    // Issue 10 item 2: Traefik's headers naming a public route change nothing behind nginx.
    let forged = [
        ("harness-account", "acme"),
        ("x-forwarded-method", "GET"),
        ("x-forwarded-uri", "/health"),
    ];
    let reply = send(listen, "POST", EXECUTE, &forged, None).await;
    denial(&reply, 401, "MISSING_CREDENTIALS");
    let forged = [("x-forwarded-method", "GET"), ("x-forwarded-uri", "/healthz")];
    denial(
        &send(listen, "POST", EXECUTE, &forged, None).await,
        401,
        "MISSING_CREDENTIALS",
    );

    // Issue 10 item 3: a raw byte outside visible ASCII in the URI (nginx passes it on in
    // X-Original-URI) plus forged X-Forwarded-* is refused, never allowed without a credential.
    for uri in [
        b"/v1/orgs/eng/projects/payments/pipelines/deploy_prod/execute\x80".as_slice(),
        "/v1/orgs/eng/projects/payments/pipelines/d\u{e9}ploy/execute".as_bytes(),
    ] {
        let mut request = b"POST ".to_vec();
        request.extend_from_slice(uri);
        request.extend_from_slice(
            b" HTTP/1.1\r\nhost: localhost\r\nharness-account: acme\r\nx-forwarded-method: GET\r\n\
              x-forwarded-uri: /health\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        );
        let (status, answer) = raw_request(listen, &request).await;
        assert!(
            !answer.contains("\"upstream\":true"),
            "a non-ASCII URI reached the upstream without a credential:\n{answer}\n{}",
            nginx.log()
        );
        assert!((400..500).contains(&status), "{status}: {answer}");
        assert!(answer.contains("INVALID_REQUEST"), "{answer}");
    }

    drop(nginx);
    upstream_task.abort();
    scopegate.stop().await;
}

/// Sends raw bytes (a request no HTTP client library would write) and reads the whole answer.
async fn raw_request(at: SocketAddr, request: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(at).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .expect("nginx did not answer")
        .unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}
