#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Unit tests of the route table: the format example, methods, scopes, captures and policies as requests
//! resolve. Validation errors, the default table and scope extraction are in `tests/{compile,default,scope}.rs`.

use std::borrow::Cow;
use std::collections::HashSet;

use super::*;

/// The example of the route-table format, as the spec writes it.
const EXAMPLE: &str = r#"
account:
  - header: harness-account
  - query: accountIdentifier
  - credential
defaults:
  org: [{path: org}, {query: orgIdentifier}]
  project: [{path: project}, {query: projectIdentifier}]
unmatched: deny
routes:
  - method: GET
    path: /v1/orgs/{org}/projects/{project}/pipelines/{pipeline}
    permission: core_pipeline_view
    resource: {id: "{pipeline}"}
  - method: [PUT, PATCH]
    path: /ng/api/connectors
    permission: core_connector_edit
  - method: GET
    path: /ng/api/projects/{project}
    permission: core_project_view
    resource: {type: PROJECT, id: "{project}"}
    scope: {org: [{query: orgIdentifier}]}
  - method: GET
    path: /health
    public: true
  - method: GET
    path: /v1/me
    authenticated: true
  - method: GET
    path: /files/{*rest}
    permission: core_file_view
    resource: {id: "{rest}"}
  - method: POST
    path: /audit
    permission: core_audit_view
    resource: {type: SCOPE}
  - method: DELETE
    path: /literal
    permission: core_file_delete
    resource: {type: FILE, id: fixed_id}
"#;

fn any_permission(p: &str) -> bool {
    !p.is_empty() && !p.contains("pipline")
}

fn example() -> RouteTable {
    RouteTable::from_yaml_str(EXAMPLE, &any_permission).unwrap()
}

/// Looks a header up in a list of pairs (use as `&|n: &str| lookup(&pairs, n)`).
fn lookup<'a>(pairs: &[(&'a str, &'a str)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

fn get<'a>(t: &'a RouteTable, method: &'a str, path: &'a str) -> RouteDecision<'a> {
    t.resolve(&RouteRequest::new(method, path)).unwrap()
}

fn scope<'a>(a: Option<&'a str>, o: Option<&'a str>, p: Option<&'a str>) -> Scope<'a> {
    Scope {
        account: a.map(Cow::Borrowed),
        org: o.map(Cow::Borrowed),
        project: p.map(Cow::Borrowed),
    }
}

#[test]
fn the_spec_example_compiles_and_routes() {
    let t = example();
    assert_eq!(t.len(), 8);
    let d = get(
        &t,
        "GET",
        "/v1/orgs/eng/projects/pay/pipelines/deploy?accountIdentifier=acme",
    );
    assert_eq!(
        d,
        RouteDecision::Permission {
            route: Some("/v1/orgs/{org}/projects/{project}/pipelines/{pipeline}"),
            permission: "core_pipeline_view",
            resource_type: None,
            resource_id: Some(Cow::Borrowed("deploy")),
            scope: scope(Some("acme"), Some("eng"), Some("pay")),
        }
    );
}

#[test]
fn several_methods_share_a_route() {
    let t = example();
    for m in ["PUT", "PATCH"] {
        let d = get(&t, m, "/ng/api/connectors?accountIdentifier=a&orgIdentifier=o");
        let RouteDecision::Permission {
            permission, scope: s, ..
        } = d
        else {
            panic!("{d:?}")
        };
        assert_eq!(permission, "core_connector_edit");
        assert_eq!(s, scope(Some("a"), Some("o"), None));
    }
    assert!(matches!(
        get(&t, "POST", "/ng/api/connectors"),
        RouteDecision::Unmatched { .. }
    ));
}

#[test]
fn a_project_is_checked_in_its_parent_org() {
    let t = example();
    let d = get(
        &t,
        "GET",
        "/ng/api/projects/pay?orgIdentifier=eng&projectIdentifier=x",
    );
    let RouteDecision::Permission {
        resource_type,
        resource_id,
        scope: s,
        ..
    } = d
    else {
        panic!()
    };
    assert_eq!(resource_type, Some("PROJECT"));
    assert_eq!(resource_id.as_deref(), Some("pay"));
    assert_eq!(s, scope(None, Some("eng"), None));
}

#[test]
fn public_and_authenticated_routes() {
    let t = example();
    assert_eq!(
        get(&t, "GET", "/health"),
        RouteDecision::Public { route: "/health" }
    );
    assert_eq!(
        get(&t, "GET", "/health/"),
        RouteDecision::Public { route: "/health" }
    );
    let d = get(&t, "GET", "/v1/me?accountIdentifier=acme");
    assert_eq!(
        d,
        RouteDecision::Authenticated {
            route: "/v1/me",
            scope: scope(Some("acme"), None, None)
        }
    );
}

#[test]
fn catch_all_captures_the_rest() {
    let t = example();
    let d = get(&t, "GET", "/files/a/b/c.txt");
    let RouteDecision::Permission { resource_id, .. } = d else {
        panic!()
    };
    assert_eq!(resource_id.as_deref(), Some("a/b/c.txt"));
    assert!(matches!(
        get(&t, "GET", "/files"),
        RouteDecision::Unmatched { .. }
    ));
}

#[test]
fn head_falls_back_to_get_and_methods_are_case_sensitive() {
    let t = example();
    assert_eq!(
        get(&t, "HEAD", "/health"),
        RouteDecision::Public { route: "/health" }
    );
    for m in ["get", "Get", "TRACE", "", "CONNECT"] {
        let d = get(&t, m, "/health");
        assert!(
            matches!(
                d,
                RouteDecision::Unmatched {
                    allow_authenticated: false,
                    ..
                }
            ),
            "{m}"
        );
    }
}

#[test]
fn unmatched_policy_and_default_scope() {
    let yaml = EXAMPLE.replace("unmatched: deny", "unmatched: allow_authenticated");
    let t = RouteTable::from_yaml_str(&yaml, &any_permission).unwrap();
    assert_eq!(t.unmatched(), Unmatched::AllowAuthenticated);
    let d = get(&t, "GET", "/nowhere?accountIdentifier=a&orgIdentifier=o");
    assert_eq!(
        d,
        RouteDecision::Unmatched {
            allow_authenticated: true,
            scope: scope(Some("a"), Some("o"), None)
        }
    );
}

#[test]
fn a_rewritten_path_yields_owned_captures() {
    let t = example();
    let d = get(&t, "GET", "//v1/orgs/eng/projects/pay/pipelines/de%70loy/");
    let RouteDecision::Permission {
        resource_id,
        scope: s,
        ..
    } = d
    else {
        panic!()
    };
    assert!(matches!(resource_id, Some(Cow::Owned(ref id)) if id == "deploy"));
    assert_eq!(s.org.as_deref(), Some("eng"));
    // A kept escape is decoded in the value.
    let d = get(&t, "GET", "/v1/orgs/eng/projects/pay/pipelines/a%40b");
    let RouteDecision::Permission { resource_id, .. } = d else {
        panic!()
    };
    assert_eq!(resource_id.as_deref(), Some("a@b"));
}

#[test]
fn malformed_targets_are_errors() {
    let t = example();
    for p in [
        "/v1/orgs/../x",
        "/v1/orgs/a%2Fb",
        "http://h/health",
        "/h\u{e9}alth",
    ] {
        assert!(t.resolve(&RouteRequest::new("GET", p)).is_err(), "{p}");
    }
}

#[test]
fn json_tables_parse_too() {
    let json = r#"{"routes": [{"method": "GET", "path": "/x/{id}", "permission": "core_x_view",
        "resource": {"id": "{id}"}, "scope": {"org": [{"query": "o"}], "account": ["credential"]}}]}"#;
    let t = RouteTable::from_json_str(json, &any_permission).unwrap();
    let req = RouteRequest {
        credential_account: Some("acme"),
        ..RouteRequest::new("GET", "/x/1?o=eng&orgIdentifier=zzz&accountIdentifier=q")
    };
    let d = t.resolve(&req).unwrap();
    assert_eq!(d.scope().unwrap(), &scope(Some("acme"), Some("eng"), None));
    assert_eq!(Format::from_file_name("r.JSON"), Format::Json);
    assert_eq!(Format::from_file_name("r.yml"), Format::Yaml);
}

mod compile;
mod default;
mod explain;
mod scope;

/// All the permission IDs of the embedded catalog (`data/catalog.yaml`).
pub(super) fn catalog_ids() -> HashSet<String> {
    #[derive(serde::Deserialize)]
    struct Catalog {
        permissions: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        id: String,
    }
    let c: Catalog = serde_yaml_ng::from_str(include_str!("../../data/catalog.yaml")).unwrap();
    c.permissions.into_iter().map(|p| p.id).collect()
}
