#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! The audit log end to end: the real `scopegate serve` process, concurrent Checks on both front
//! ends, SIGTERM, and exactly one well-formed, secret-free line per decision; rotation; dry-run.

use crate::common;
use crate::common::http;
use crate::common::process;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{ALICE, EXECUTE, Server, allowed, check, request};
use http::{HttpServer, send};
use process::Process;
use scopegate::audit::AuditLog;
use scopegate::authz::Authorizer;
use scopegate::config;
use scopegate::http::{HttpOptions, HttpSource};
use serde_json::Value;

const CAROL: &str = "pat.acme.caroltok01.CarolDemoSecret01";
const CI: &str = "sat.acme.citok01.CiBotDemoSecret01";
const CI_RO: &str = "sat.acme.citokro01.CiBotReadOnlySecret01";
const OLD: &str = "sat.acme.citokold01.OldTokenSecret01";
const WRONG: &str = "pat.acme.alicetok01.WrongSecret99";
/// Every secret the demo tokens and the test requests carry: none may reach the audit log.
const SECRETS: &[&str] = &[
    "AliceDemoSecret01",
    "CarolDemoSecret01",
    "CiBotDemoSecret01",
    "CiBotReadOnlySecret01",
    "OldTokenSecret01",
    "WrongSecret99",
    "QuerySecret42",
];
const FIELDS: &[&str] = &[
    "time",
    "decision_id",
    "request_id",
    "frontend",
    "method",
    "path",
    "account",
    "principal",
    "permission",
    "org",
    "project",
    "resource_type",
    "resource_id",
    "result",
    "reason",
    "latency_us",
    "token_id",
    "issuer",
    "dry_run",
];

fn read_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "a line was cut");
    for secret in SECRETS {
        assert!(!text.contains(secret), "`{secret}` reached the audit log");
    }
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect()
}

fn credential(i: usize) -> Option<&'static str> {
    [
        Some(ALICE),
        Some(CI_RO),
        Some(WRONG),
        None,
        Some(CI),
        Some(OLD),
        Some(CAROL),
    ][i % 7]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_decision_is_audited_once_and_none_is_lost_at_sigterm() {
    const N: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let config = dir.path().join("scopegate.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: {{grpc: 127.0.0.1:0, http: 127.0.0.1:0, http_source: nginx}}\naudit: {{sink: \"file:{}\"}}\ntelemetry: {{log_format: json}}\n",
            audit.display()
        ),
    )
    .unwrap();
    let server = Process::start(&config);
    let grpc_url = format!("http://{}", server.grpc);
    let channel = tonic::transport::Channel::from_shared(grpc_url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let client =
        envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient::new(channel);
    let mut tasks = Vec::new();
    for i in 0..N {
        let mut client = client.clone();
        let http = server.http;
        tasks.push(tokio::spawn(async move {
            let request_id = format!("req-{i}");
            let target = format!("{EXECUTE}?note=QuerySecret42");
            let mut headers = vec![("harness-account", "acme"), ("x-request-id", request_id.as_str())];
            if let Some(token) = credential(i) {
                headers.push(("x-api-key", token));
            }
            if i.is_multiple_of(2) {
                check(&mut client, request("POST", &target, &headers, None)).await;
            } else {
                headers.push(("x-original-method", "POST"));
                headers.push(("x-original-uri", &target));
                send(http, "GET", "/", &headers, None).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    server.terminate();
    let lines = read_lines(&audit);
    assert_eq!(lines.len(), N);
    let mut ids = std::collections::HashSet::new();
    let mut requests = std::collections::HashSet::new();
    for line in &lines {
        for field in FIELDS {
            assert!(line.get(*field).is_some(), "`{field}` missing: {line}");
        }
        assert!(ids.insert(line["decision_id"].as_str().unwrap().to_owned()));
        requests.insert(line["request_id"].as_str().unwrap().to_owned());
        assert_eq!(line["path"], EXECUTE, "no query string");
        assert_eq!(line["method"], "POST");
        assert_eq!(line["dry_run"], false);
        let time = line["time"].as_str().unwrap();
        assert!(time.ends_with('Z') && time.contains('T'), "{time}");
        assert!(line["latency_us"].is_u64());
        let frontend = line["frontend"].as_str().unwrap();
        let n: usize = line["request_id"].as_str().unwrap()[4..].parse().unwrap();
        assert_eq!(frontend, if n.is_multiple_of(2) { "grpc" } else { "http" });
        let expected = match credential(n) {
            Some(ALICE) => ("allow", "granted", Some("alicetok01"), Some("USER:alice")),
            Some(CI_RO) => (
                "deny",
                "token_permission_subset",
                Some("citokro01"),
                Some("SERVICE_ACCOUNT:eng/ci_bot"),
            ),
            Some(WRONG) => ("deny", "token_secret_mismatch", Some("alicetok01"), None),
            None => ("deny", "missing_credentials", None, None),
            _ => ("", "", None, None),
        };
        if !expected.0.is_empty() {
            assert_eq!(line["result"], expected.0, "{line}");
            assert_eq!(line["token_id"].as_str(), expected.2, "{line}");
            assert_eq!(line["reason"], expected.1, "{line}");
            if let Some(principal) = expected.3 {
                assert_eq!(line["principal"], principal, "{line}");
            }
        }
        if line["result"] == "allow" || line["reason"] == "token_permission_subset" {
            assert_eq!(line["account"], "acme");
            assert_eq!(line["permission"], "core_pipeline_execute");
            assert_eq!(line["org"], "eng");
            assert_eq!(line["project"], "payments");
            assert_eq!(line["resource_type"], "PIPELINE");
            assert_eq!(line["resource_id"], "deploy_prod");
        }
    }
    assert_eq!(requests.len(), N, "every request id once");
}

fn audit_config(path: &Path, max_bytes: u64, keep: u32) -> config::Audit {
    config::Audit {
        sink: format!("file:{}", path.display()),
        max_bytes,
        keep,
        ..config::Audit::default()
    }
}

#[tokio::test]
async fn a_rotated_log_loses_and_splits_no_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::from_config(&audit_config(&path, 2_000, 100)).unwrap();
    let state = Arc::new(Authorizer::demo().unwrap().with_audit(log));
    let server = HttpServer::start(Arc::clone(&state), HttpOptions::with_source(HttpSource::Nginx)).await;
    for i in 0..60_u32 {
        let token = if i.is_multiple_of(2) { ALICE } else { CI_RO };
        let id = format!("rot-{i}");
        let headers = [
            ("x-original-method", "POST"),
            ("x-original-uri", EXECUTE),
            ("harness-account", "acme"),
            ("x-api-key", token),
            ("x-request-id", id.as_str()),
        ];
        send(server.addr, "GET", "/", &headers, None).await;
    }
    server.stop().await;
    state.audit().close();
    let mut files = vec![path.clone()];
    let mut n = 1;
    loop {
        let rotated = scopegate::audit::RotatingFile::rotated_path(&path, n);
        if !rotated.exists() {
            break;
        }
        files.push(rotated);
        n += 1;
    }
    assert!(files.len() > 2, "the log rotated: {files:?}");
    let mut seen = Vec::new();
    for file in files.iter().rev() {
        assert!(std::fs::metadata(file).unwrap().len() <= 2_000);
        for line in read_lines(file) {
            seen.push(line["request_id"].as_str().unwrap().to_owned());
        }
    }
    let expected: Vec<String> = (0..60).map(|i| format!("rot-{i}")).collect();
    assert_eq!(seen, expected, "every line once, oldest file first");
}

#[tokio::test]
async fn dry_run_allows_a_denied_request_and_audits_the_denial() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::from_config(&audit_config(&path, 1 << 20, 1)).unwrap();
    let state = Arc::new(Authorizer::demo().unwrap().with_audit(log).with_dry_run(true));
    let http = HttpServer::start(Arc::clone(&state), HttpOptions::with_source(HttpSource::Nginx)).await;
    let grpc = Server::start(Arc::clone(&state)).await;
    let denied = [
        ("x-original-method", "POST"),
        ("x-original-uri", EXECUTE),
        ("harness-account", "acme"),
        ("x-api-key", CI_RO),
        ("x-scopegate-principal", "USER:forged"),
    ];
    let reply = send(http.addr, "GET", "/", &denied, None).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.header("x-scopegate-principal"),
        Some(""),
        "no identity for a dry-run allow: an empty one, overwriting the forged one"
    );
    let mut client = grpc.client().await;
    let answer = check(
        &mut client,
        request("POST", EXECUTE, &[("harness-account", "acme")], None),
    )
    .await;
    assert!(allowed(&answer), "{answer:?}");
    let granted = check(
        &mut client,
        request(
            "POST",
            EXECUTE,
            &[("harness-account", "acme"), ("x-api-key", ALICE)],
            None,
        ),
    )
    .await;
    assert!(allowed(&granted));
    http.stop().await;
    grpc.stop().await;
    state.audit().close();
    let lines = read_lines(&path);
    let summary: Vec<(&str, &str, &str, bool)> = lines
        .iter()
        .map(|l| {
            (
                l["frontend"].as_str().unwrap(),
                l["result"].as_str().unwrap(),
                l["reason"].as_str().unwrap(),
                l["dry_run"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("http", "deny", "token_permission_subset", true),
            ("grpc", "deny", "missing_credentials", true),
            ("grpc", "allow", "granted", true),
        ]
    );
}

#[tokio::test]
async fn a_jwt_is_audited_by_issuer_and_principal_never_by_token() {
    use common::jwt::{RSA2, RSA2_PUBLIC_PATH, now};
    use scopegate::accounts::SnapshotSource;
    use scopegate::authn::jwt::{IssuerPolicy, PrincipalKind};
    use scopegate::authz::AuthorizerOptions;
    use scopegate::jwks::{FetchSettings, JwtSettings, KeySource};

    const ISSUER: &str = "https://ci.example.com/";
    let policy = IssuerPolicy {
        issuer: ISSUER.to_owned(),
        audiences: vec!["scopegate".to_owned()],
        algorithms: vec![jsonwebtoken::Algorithm::RS256],
        principal_claim: "client_id".to_owned(),
        principal_kind: PrincipalKind::ServiceAccount,
        account_claim: Some("account".to_owned()),
        accounts: scopegate::authn::jwt::AccountAllowList::from_entries(&["acme"]),
        leeway_secs: 5,
    };
    let options = AuthorizerOptions {
        jwt: Some(JwtSettings {
            issuers: vec![(policy, KeySource::Static(vec![RSA2_PUBLIC_PATH.into()]))],
            fetch: FetchSettings::default(),
            max_token_bytes: 8192,
            cache_capacity: 100,
            cache_ttl: Duration::from_secs(300),
            envoy_metadata: None,
        }),
        ..AuthorizerOptions::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::from_config(&audit_config(&path, 1 << 20, 1)).unwrap();
    let state = Arc::new(
        Authorizer::load_with(SnapshotSource::Embedded, None, &options)
            .unwrap()
            .with_audit(log),
    );
    let grpc = Server::start(Arc::clone(&state)).await;
    let mut client = grpc.client().await;
    let token = RSA2.sign(&serde_json::json!({
        "iss": ISSUER, "aud": "scopegate", "client_id": "ci_bot", "account": "acme", "exp": now() + 60
    }));
    let bearer = format!("Bearer {token}");
    let answer = check(
        &mut client,
        request("POST", EXECUTE, &[("authorization", bearer.as_str())], None),
    )
    .await;
    assert!(allowed(&answer), "{answer:?}");
    grpc.stop().await;
    state.audit().close();
    let text = std::fs::read_to_string(&path).unwrap();
    let signature = token.rsplit('.').next().unwrap();
    assert!(
        !text.contains(signature) && !text.contains(&token[..40]),
        "{text}"
    );
    let lines = read_lines(&path);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["issuer"], ISSUER);
    assert_eq!(lines[0]["principal"], "SERVICE_ACCOUNT:eng/ci_bot");
    assert_eq!(lines[0]["token_id"], Value::Null);
    assert_eq!(lines[0]["result"], "allow");
}
