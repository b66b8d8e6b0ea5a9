#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! `GET /metrics` on the admin listener: served without authorization, OpenMetrics text that parses, and counters that
//! match the decisions made on both front ends.

use crate::common;
use crate::common::http;

use std::collections::HashMap;
use std::sync::Arc;

use common::{ALICE, EXECUTE, Server, allowed, check, request};
use http::{HttpServer, send};
use scopegate::authz::Authorizer;
use scopegate::http::{HttpOptions, HttpSource};

const CI_RO: &str = "sat.acme.citokro01.CiBotReadOnlySecret01";

/// `name{labels}` → value, for every sample line; panics on a line that is not a sample.
fn parse(text: &str) -> HashMap<String, f64> {
    assert!(text.ends_with("# EOF\n"), "{text}");
    let mut samples = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {line}"));
        assert!(
            samples.insert(series.to_owned(), value).is_none(),
            "duplicate series {series}"
        );
    }
    samples
}

#[tokio::test]
async fn metrics_count_decisions_latency_caches_snapshots_and_the_audit_queue() {
    let state = Arc::new(Authorizer::demo().unwrap());
    let grpc = Server::start(Arc::clone(&state)).await;
    let http = HttpServer::start(Arc::clone(&state), HttpOptions::with_source(HttpSource::Nginx)).await;
    let admin = HttpServer::start(Arc::clone(&state), HttpOptions::admin()).await;
    let mut client = grpc.client().await;
    for _ in 0..3 {
        let answer = check(
            &mut client,
            request(
                "POST",
                EXECUTE,
                &[("harness-account", "acme"), ("x-api-key", ALICE)],
                None,
            ),
        )
        .await;
        assert!(allowed(&answer));
    }
    for _ in 0..2 {
        let headers = [
            ("x-original-method", "POST"),
            ("x-original-uri", EXECUTE),
            ("harness-account", "acme"),
            ("x-api-key", CI_RO),
        ];
        assert_eq!(send(http.addr, "GET", "/", &headers, None).await.status, 403);
    }
    let missing = [
        ("x-original-method", "POST"),
        ("x-original-uri", EXECUTE),
        ("harness-account", "acme"),
    ];
    assert_eq!(send(http.addr, "GET", "/", &missing, None).await.status, 401);

    let reply = send(admin.addr, "GET", "/metrics", &[], None).await;
    assert_eq!(
        reply.status, 200,
        "/metrics is not a request to authorize: {reply:?}"
    );
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let samples = parse(&reply.body);
    let get = |series: &str| {
        *samples
            .get(series)
            .unwrap_or_else(|| panic!("no `{series}` in\n{}", reply.body))
    };
    assert_eq!(
        get(r#"scopegate_decisions_total{frontend="grpc",result="allow",reason="granted"}"#),
        3.0
    );
    assert_eq!(
        get(r#"scopegate_decisions_total{frontend="http",result="deny",reason="token_permission_subset"}"#),
        2.0
    );
    assert_eq!(
        get(r#"scopegate_decisions_total{frontend="http",result="deny",reason="missing_credentials"}"#),
        1.0
    );
    let decisions: f64 = samples
        .iter()
        .filter(|(k, _)| k.starts_with("scopegate_decisions_total"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(decisions, 6.0, "/metrics itself is no decision");
    assert_eq!(
        get(r#"scopegate_check_duration_seconds_count{frontend="grpc"}"#),
        3.0
    );
    assert_eq!(
        get(r#"scopegate_check_duration_seconds_count{frontend="http"}"#),
        3.0
    );
    assert_eq!(
        get(r#"scopegate_check_duration_seconds_bucket{le="+Inf",frontend="grpc"}"#),
        3.0
    );
    assert!(get(r#"scopegate_check_duration_seconds_sum{frontend="grpc"}"#) > 0.0);
    // alice: one miss then two hits; the read-only CI token: one miss then one hit
    assert_eq!(
        get(r#"scopegate_token_cache_lookups_total{kind="api_key",result="miss"}"#),
        2.0
    );
    assert_eq!(
        get(r#"scopegate_token_cache_lookups_total{kind="api_key",result="hit"}"#),
        3.0
    );
    assert_eq!(
        get(r#"scopegate_token_cache_lookups_total{kind="jwt",result="hit"}"#),
        0.0
    );
    assert_eq!(get("scopegate_accounts_loaded"), 1.0);
    assert_eq!(get(r#"scopegate_snapshot_version{account="acme"}"#), 1.0);
    let age = get(r#"scopegate_snapshot_age_seconds{account="acme"}"#);
    assert!((0.0..3600.0).contains(&age), "{age}");
    assert_eq!(get("scopegate_audit_queue_depth"), 0.0);
    assert_eq!(get("scopegate_audit_dropped_total"), 0.0);
    assert!(
        !samples.keys().any(|k| k.starts_with("scopegate_jwks")),
        "no JWT issuers configured"
    );
    http.stop().await;
    admin.stop().await;
    grpc.stop().await;
}
