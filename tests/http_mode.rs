#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! The HTTP listener: HTTP-mode authz (nginx and Traefik headers, the request's own target with a
//! prefix stripped, each only under its `http_source`), the admin listener's endpoints and the
//! listeners side by side; `/authz/api/acl` is in `http_acl.rs`.

use crate::common::http;

use std::sync::Arc;
use std::time::Duration;

use crate::http_acl::{acl, entry};
use http::{HttpServer, expect_denial, send};
use scopegate::accounts::SnapshotSource;
use scopegate::authz::Authorizer;
use scopegate::http::{HttpOptions, HttpSource};
use scopegate::server::{run_all, run_listeners};
use serde_json::json;

const ALICE: &str = "pat.acme.alicetok01.AliceDemoSecret01";
const CI_RO: &str = "sat.acme.citokro01.CiBotReadOnlySecret01";
const EXECUTE: &str = "/v1/orgs/eng/projects/payments/pipelines/deploy_prod/execute";

async fn demo(options: HttpOptions) -> HttpServer {
    HttpServer::start(Arc::new(Authorizer::demo().unwrap()), options).await
}

fn nginx<'a>(method: &'a str, uri: &'a str, token: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![
        ("x-original-method", method),
        ("x-original-uri", uri),
        ("harness-account", "acme"),
    ];
    if let Some(token) = token {
        headers.push(("x-api-key", token));
    }
    headers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_headers_allow_and_deny_per_wire_table() {
    let server = demo(HttpOptions::with_source(HttpSource::Nginx)).await;
    let at = server.addr;

    let mut headers = nginx("POST", EXECUTE, Some(ALICE));
    headers.push(("x-scopegate-principal", "USER:mallory"));
    let reply = send(at, "GET", "/auth", &headers, None).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("x-scopegate-principal"), Some("USER:alice"));
    assert_eq!(reply.header("x-scopegate-account"), Some("acme"));
    assert!(
        reply
            .header("x-scopegate-decision-id")
            .is_some_and(|s| !s.is_empty())
    );
    assert!(reply.body.is_empty());

    // The subrequest's own method and path do not matter; the original ones do.
    let reply = send(
        at,
        "GET",
        "/healthz-but-not-quite",
        &nginx("POST", EXECUTE, Some(CI_RO)),
        None,
    )
    .await;
    let body = expect_denial(&reply, 403, "NG_ACCESS_DENIED");
    let failed = &body["failedPermissionChecks"][0];
    assert_eq!(failed["permission"], "core_pipeline_execute");
    assert_eq!(failed["resourceType"], "PIPELINE");
    assert_eq!(failed["resourceIdentifier"], "deploy_prod");
    assert_eq!(failed["resourceScope"]["projectIdentifier"], "payments");

    let reply = send(at, "GET", "/", &nginx("POST", EXECUTE, None), None).await;
    expect_denial(&reply, 401, "MISSING_CREDENTIALS");
    assert_eq!(
        reply.header("www-authenticate"),
        Some("ApiKey realm=\"scopegate\"")
    );
    let wrong = "pat.acme.alicetok01.WrongSecret99";
    let reply = send(at, "GET", "/", &nginx("POST", EXECUTE, Some(wrong)), None).await;
    expect_denial(&reply, 401, "INVALID_CREDENTIALS");

    let reply = send(at, "GET", "/", &nginx("GET", "/no/such/route", Some(ALICE)), None).await;
    expect_denial(&reply, 403, "NO_ROUTE");
    let dots = "/v1/orgs/eng/projects/payments/pipelines/%2e%2e/execute";
    let reply = send(at, "GET", "/", &nginx("POST", dots, Some(ALICE)), None).await;
    expect_denial(&reply, 400, "INVALID_REQUEST");
    let globex = [
        ("x-original-method", "POST"),
        ("x-original-uri", EXECUTE),
        ("harness-account", "globex"),
        ("x-api-key", "pat.globex.tok01.Secret01"),
    ];
    let reply = send(at, "GET", "/", &globex, None).await;
    expect_denial(&reply, 503, "SNAPSHOT_UNAVAILABLE");

    // Authorization: Bearer, and a query string in the original URI.
    let bearer = format!("Bearer {ALICE}");
    let uri = format!("{EXECUTE}?branch=main");
    let headers = [
        ("x-original-method", "POST"),
        ("x-original-uri", uri.as_str()),
        ("harness-account", "acme"),
        ("authorization", bearer.as_str()),
    ];
    assert_eq!(send(at, "GET", "/", &headers, None).await.status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_headers_and_the_request_itself_with_a_prefix() {
    let server = demo(HttpOptions::with_source(HttpSource::Traefik)).await;
    let traefik = [
        ("x-forwarded-method", "POST"),
        ("x-forwarded-uri", EXECUTE),
        ("harness-account", "acme"),
        ("x-api-key", ALICE),
    ];
    let reply = send(server.addr, "GET", "/", &traefik, None).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("x-scopegate-principal"), Some("USER:alice"));
    let traefik_ro = [
        ("x-forwarded-method", "POST"),
        ("x-forwarded-uri", EXECUTE),
        ("harness-account", "acme"),
        ("x-api-key", CI_RO),
    ];
    let reply = send(server.addr, "GET", "/", &traefik_ro, None).await;
    expect_denial(&reply, 403, "NG_ACCESS_DENIED");
    server.stop().await;

    // Envoy HTTP mode: the request's own method and target.
    let server = demo(HttpOptions::default()).await;
    let own = [("harness-account", "acme"), ("x-api-key", ALICE)];
    let reply = send(server.addr, "POST", EXECUTE, &own, None).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    // Without a configured prefix, a prefixed path is just another (unrouted) path.
    let prefixed = format!("/authz{EXECUTE}");
    let reply = send(server.addr, "POST", &prefixed, &own, None).await;
    expect_denial(&reply, 403, "NO_ROUTE");
    server.stop().await;

    let server = demo(HttpOptions {
        path_prefix: Some("/authz".to_owned()),
        ..HttpOptions::default()
    })
    .await;
    let reply = send(server.addr, "POST", &prefixed, &own, None).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let own_ro = [("harness-account", "acme"), ("x-api-key", CI_RO)];
    let reply = send(server.addr, "POST", &prefixed, &own_ro, None).await;
    expect_denial(&reply, 403, "NG_ACCESS_DENIED");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_on_the_admin_listener() {
    let server = demo(HttpOptions::admin()).await;
    assert_eq!(send(server.addr, "GET", "/healthz", &[], None).await.status, 200);
    assert_eq!(send(server.addr, "GET", "/readyz", &[], None).await.status, 200);
    server.stop().await;

    let empty = tempfile::tempdir().unwrap();
    let state = Authorizer::load(SnapshotSource::Path(empty.path().to_owned()), None).unwrap();
    assert!(!state.is_ready());
    let server = HttpServer::start(Arc::new(state), HttpOptions::admin()).await;
    assert_eq!(send(server.addr, "GET", "/healthz", &[], None).await.status, 200);
    assert_eq!(send(server.addr, "GET", "/readyz", &[], None).await.status, 503);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_listeners_share_state_and_stop_together() {
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (grpc_addr, http_addr) = (grpc.local_addr().unwrap(), http.local_addr().unwrap());
    let admin_addr = admin.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = Arc::new(Authorizer::demo().unwrap());
    let task = tokio::spawn(run_listeners(
        grpc,
        Some((http, HttpOptions::default())),
        Some(admin),
        state,
        async {
            let _ = stopped.await;
        },
    ));
    assert_eq!(send(admin_addr, "GET", "/readyz", &[], None).await.status, 200);
    // on the HTTP listener, /readyz is a client's path like any other: decided, not answered
    let reply = send(http_addr, "GET", "/readyz", &[], None).await;
    expect_denial(&reply, 403, "NO_ROUTE");
    assert!(tokio::net::TcpStream::connect(grpc_addr).await.is_ok());
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // once run_listeners has returned, no socket listens on its ports any more: binding them again
    // succeeds (a connect would not prove it: a loopback connect to a free port can meet itself)
    for addr in [grpc_addr, http_addr, admin_addr] {
        assert!(
            tokio::net::TcpListener::bind(addr).await.is_ok(),
            "{addr} still listened on"
        );
    }

    // run_all: gRPC and HTTP only
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_addr = http.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = HttpOptions::with_source(HttpSource::Nginx);
    let task = tokio::spawn(run_all(
        grpc,
        Some((http, options)),
        Arc::new(Authorizer::demo().unwrap()),
        async {
            let _ = stopped.await;
        },
    ));
    let reply = send(http_addr, "GET", "/", &nginx("POST", EXECUTE, Some(ALICE)), None).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// Issue 10 item 2: the client cannot pick which proxy's headers are believed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_configured_source_names_the_request() {
    // Behind nginx, forged Traefik headers naming a public route change nothing.
    let server = demo(HttpOptions::with_source(HttpSource::Nginx)).await;
    let mut forged = nginx("POST", EXECUTE, None);
    forged.extend([("x-forwarded-method", "GET"), ("x-forwarded-uri", "/health")]);
    let reply = send(server.addr, "GET", "/_scopegate/authz", &forged, None).await;
    expect_denial(&reply, 401, "MISSING_CREDENTIALS");
    // Traefik's headers alone are not nginx's: fail closed.
    let traefik_only = [("x-forwarded-method", "GET"), ("x-forwarded-uri", "/health")];
    let reply = send(server.addr, "GET", "/_scopegate/authz", &traefik_only, None).await;
    expect_denial(&reply, 400, "INVALID_REQUEST");
    // A missing target header is 400, not the subrequest's own path.
    let reply = send(server.addr, "GET", "/health", &[], None).await;
    expect_denial(&reply, 400, "INVALID_REQUEST");
    server.stop().await;

    // Behind Traefik, forged nginx headers change nothing.
    let server = demo(HttpOptions::with_source(HttpSource::Traefik)).await;
    let forged = [
        ("x-forwarded-method", "POST"),
        ("x-forwarded-uri", EXECUTE),
        ("harness-account", "acme"),
        ("x-original-method", "GET"),
        ("x-original-uri", "/health"),
    ];
    let reply = send(server.addr, "GET", "/", &forged, None).await;
    expect_denial(&reply, 401, "MISSING_CREDENTIALS");
    server.stop().await;

    // Envoy HTTP mode: the request itself, whatever headers say.
    let server = demo(HttpOptions::default()).await;
    let forged = [
        ("harness-account", "acme"),
        ("x-original-method", "GET"),
        ("x-original-uri", "/health"),
        ("x-forwarded-method", "GET"),
        ("x-forwarded-uri", "/health"),
    ];
    let reply = send(server.addr, "POST", EXECUTE, &forged, None).await;
    expect_denial(&reply, 401, "MISSING_CREDENTIALS");
    server.stop().await;
}

/// Issue 10 items 2 and 3 and the Low items: what the upstream may read differently is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_repeated_and_ambiguous_targets_are_refused() {
    let server = demo(HttpOptions::with_source(HttpSource::Nginx)).await;
    let at = server.addr;
    // a non-ASCII original URI plus forged Traefik headers: 400, never the forged public route
    let raw = b"GET /_scopegate/authz HTTP/1.1\r\nhost: x\r\nx-original-method: GET\r\n\
        x-original-uri: /v1/\x80\r\nx-forwarded-method: GET\r\nx-forwarded-uri: /health\r\n\
        connection: close\r\n\r\n";
    let (status, body) = raw_request(at, raw).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("INVALID_REQUEST"), "{body}");
    let twice = [
        ("x-original-method", "POST"),
        ("x-original-uri", "/health"),
        ("x-original-uri", EXECUTE),
    ];
    expect_denial(&send(at, "GET", "/", &twice, None).await, 400, "INVALID_REQUEST");
    let bad_method = [("x-original-method", "GE T"), ("x-original-uri", "/health")];
    expect_denial(
        &send(at, "GET", "/", &bad_method, None).await,
        400,
        "INVALID_REQUEST",
    );
    for target in ["/health#/../v1/x", "/v1//orgs/eng", "health"] {
        let headers = [("x-original-method", "GET"), ("x-original-uri", target)];
        let reply = send(at, "GET", "/", &headers, None).await;
        expect_denial(&reply, 400, "INVALID_REQUEST");
    }
    for name in ["x-http-method-override", "x-method-override", "x-http-method"] {
        let mut headers = nginx("GET", "/health", None);
        headers.push((name, "DELETE"));
        expect_denial(
            &send(at, "GET", "/", &headers, None).await,
            400,
            "INVALID_REQUEST",
        );
    }
    // the public route itself still passes
    let reply = send(at, "GET", "/", &nginx("GET", "/health", None), None).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    server.stop().await;
}

/// Issue 10 item 6: a repeated credential or scope header is refused, on the authz path and on
/// `/authz/api/acl`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_credential_and_scope_headers_are_refused() {
    let server = demo(HttpOptions::with_source(HttpSource::Nginx)).await;
    let at = server.addr;
    let bearer = format!("Bearer {ALICE}");
    let repeats: [(&str, &str, &str); 3] = [
        ("x-api-key", ALICE, CI_RO),
        ("authorization", bearer.as_str(), "Bearer x"),
        ("harness-account", "acme", "globex"),
    ];
    for (name, first, second) in repeats {
        let mut headers = nginx("POST", EXECUTE, None);
        headers.retain(|(n, _)| *n != name);
        if name != "x-api-key" && name != "authorization" {
            headers.push(("x-api-key", ALICE));
        }
        headers.push((name, first));
        headers.push((name, second));
        let reply = send(at, "GET", "/", &headers, None).await;
        expect_denial(&reply, 400, "INVALID_REQUEST");
    }
    // a scope query parameter given twice with different values
    let uri = "/ng/api/projects/payments?accountIdentifier=acme&orgIdentifier=eng&accountIdentifier=globex";
    let headers = [
        ("x-original-method", "GET"),
        ("x-original-uri", uri),
        ("x-api-key", ALICE),
    ];
    expect_denial(
        &send(at, "GET", "/", &headers, None).await,
        400,
        "INVALID_REQUEST",
    );

    let body = json!({"permissions": [entry(Some("eng"), None, "PIPELINE", None, "core_pipeline_view")]});
    for (name, first, second) in [
        ("x-api-key", ALICE, CI_RO),
        ("authorization", bearer.as_str(), "Bearer x"),
    ] {
        let headers = [
            ("content-type", "application/json"),
            (name, first),
            (name, second),
        ];
        let reply = send(at, "POST", "/authz/api/acl", &headers, Some(body.to_string())).await;
        assert_eq!(reply.status, 400, "{name}: {reply:?}");
        assert_eq!(reply.json()["code"], "INVALID_REQUEST");
    }
    server.stop().await;
}

/// Issue 10 item 7: every allow names scopegate's identity headers, so a forged one never stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_identity_headers_are_overwritten_or_removed_on_every_allow() {
    let server = demo(HttpOptions::default()).await;
    let forged = [
        ("x-scopegate-principal", "USER:admin"),
        ("x-scopegate-account", "evil"),
        ("x-scopegate-role", "admin"),
    ];
    // a public route
    let reply = send(server.addr, "GET", "/health", &forged, None).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("x-scopegate-principal"), Some(""));
    assert_eq!(reply.header("x-scopegate-account"), Some(""));
    assert!(
        reply
            .header("x-scopegate-decision-id")
            .is_some_and(|d| !d.is_empty())
    );
    assert_eq!(
        reply.header("x-envoy-auth-headers-to-remove"),
        Some("x-scopegate-role")
    );
    // an allowed route
    let mut headers = forged.to_vec();
    headers.extend([("harness-account", "acme"), ("x-api-key", ALICE)]);
    let reply = send(server.addr, "POST", EXECUTE, &headers, None).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("x-scopegate-principal"), Some("USER:alice"));
    assert_eq!(reply.header("x-scopegate-account"), Some("acme"));
    assert_eq!(
        reply.header("x-envoy-auth-headers-to-remove"),
        Some("x-scopegate-role")
    );
    server.stop().await;

    // dry-run: a denial answered as an allow still names them
    let state = Authorizer::demo().unwrap().with_dry_run(true);
    let server = HttpServer::start(Arc::new(state), HttpOptions::default()).await;
    let reply = send(server.addr, "POST", EXECUTE, &forged, None).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("x-scopegate-principal"), Some(""));
    assert_eq!(reply.header("x-scopegate-account"), Some(""));
    server.stop().await;
}

/// Issue 10 item 11: under Envoy HTTP mode scopegate's own endpoints are the client's paths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_endpoint_names_are_authorized_on_the_http_listener() {
    let server = demo(HttpOptions::default()).await;
    for path in ["/healthz", "/readyz", "/metrics"] {
        let reply = send(server.addr, "GET", path, &[], None).await;
        expect_denial(&reply, 403, "NO_ROUTE");
    }
    let body = json!({"permissions": [entry(Some("eng"), None, "PIPELINE", None, "core_pipeline_view")]});
    let reply = acl(&server, Some(ALICE), body.to_string()).await;
    assert!(!reply.body.contains("accessControlList"), "{reply:?}");
    server.stop().await;

    let server = demo(HttpOptions::admin()).await;
    let reply = send(server.addr, "GET", "/metrics", &[], None).await;
    assert_eq!(reply.status, 200);
    // the admin listener authorizes nothing
    let reply = send(server.addr, "POST", EXECUTE, &[("x-api-key", ALICE)], None).await;
    assert_eq!(reply.status, 404, "{reply:?}");
    server.stop().await;
}

/// Sends raw bytes and reads the status and the rest of the answer.
async fn raw_request(at: std::net::SocketAddr, request: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(at).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}
