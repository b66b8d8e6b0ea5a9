#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `explain`, `nearest`, `routes` and `source_lines`: what `scopegate routes` shows an operator.

use super::super::*;
use super::{EXAMPLE, any_permission, catalog_ids, example, lookup};

const PIPELINE: &str = "/v1/orgs/{org}/projects/{project}/pipelines/{pipeline}";

#[test]
fn explain_is_resolve_with_the_route_and_the_sources() {
    let t = example();
    let headers = [("harness-account", "acme")];
    let req = RouteRequest {
        headers: &|n: &str| lookup(&headers, n),
        ..RouteRequest::new(
            "GET",
            "/v1/orgs/eng/projects/pay/pipelines/deploy?orgIdentifier=zzz",
        )
    };
    let e = t.explain(&req).unwrap();
    assert_eq!(e.decision, t.resolve(&req).unwrap());
    let route = e.route.unwrap();
    assert_eq!(route.index(), 0);
    assert_eq!(route.template(), PIPELINE);
    assert_eq!(route.permission(), Some("core_pipeline_view"));
    assert_eq!(route.resource_id(), &ResourceId::Capture("pipeline".into()));
    assert!(!e.head_as_get);
    assert_eq!(e.origins.account, Some(&Source::Header("harness-account".into())));
    assert_eq!(e.origins.org, Some(&Source::Path("org".into())));
    assert_eq!(e.origins.project, Some(&Source::Path("project".into())));

    let e = t
        .explain(&RouteRequest::new(
            "PATCH",
            "/ng/api/connectors?accountIdentifier=a&orgIdentifier=o",
        ))
        .unwrap();
    assert_eq!(e.route.unwrap().methods().collect::<Vec<_>>(), ["PUT", "PATCH"]);
    assert_eq!(
        e.origins.account,
        Some(&Source::Query("accountIdentifier".into()))
    );
    assert_eq!(e.origins.org, Some(&Source::Query("orgIdentifier".into())));
    assert_eq!(e.origins.project, None);
}

#[test]
fn explain_says_when_head_used_get_and_when_nothing_matched() {
    let t = example();
    let e = t.explain(&RouteRequest::new("HEAD", "/health")).unwrap();
    assert!(e.head_as_get);
    assert_eq!(e.route.unwrap().template(), "/health");
    let req = RouteRequest {
        credential_account: Some("acme"),
        ..RouteRequest::new("POST", "/nowhere")
    };
    let e = t.explain(&req).unwrap();
    assert!(e.route.is_none());
    assert!(matches!(e.decision, RouteDecision::Unmatched { .. }));
    assert_eq!(e.origins.account, Some(&Source::Credential));
    assert!(t.explain(&RouteRequest::new("GET", "/a/../b")).is_err());
}

#[test]
fn routes_lists_the_table_with_its_effective_sources() {
    let t = example();
    assert_eq!(t.routes().len(), t.len());
    let project = t
        .routes()
        .find(|r| r.template() == "/ng/api/projects/{project}")
        .unwrap();
    assert_eq!(project.org_sources(), [Source::Query("orgIdentifier".into())]);
    assert!(project.project_sources().is_empty());
    assert_eq!(project.account_sources().len(), 3);
    assert_eq!(project.resource_type(), &ResourceType::Named("PROJECT".into()));
    let first = t.route(0).unwrap();
    assert_eq!(first.org_sources().len(), 2);
    assert!(t.route(t.len()).is_none());
    assert_eq!(t.route(4).unwrap().action(), &Action::Authenticated);
}

#[test]
fn nearest_names_other_methods_on_the_path() {
    let t = example();
    let n = t.nearest("POST", "/ng/api/connectors?x=1", 5).unwrap();
    let methods: Vec<&str> = n.other_methods.iter().map(|(m, _)| *m).collect();
    assert_eq!(methods, ["PUT", "PATCH"]);
    assert!(
        n.other_methods
            .iter()
            .all(|(_, r)| r.template() == "/ng/api/connectors")
    );
    // POST routes: only /audit, which shares no segment
    assert!(n.same_method.is_empty());
}

#[test]
fn nearest_ranks_same_method_routes_by_common_prefix() {
    let yaml = r#"
routes:
  - {method: POST, path: /v1/orgs, permission: p}
  - {method: POST, path: '/v1/orgs/{org}/projects', permission: p}
  - {method: POST, path: '/v1/orgs/{org}/projects/{project}/pipelines/{pipeline}/execute', permission: p}
  - {method: POST, path: '/v1/orgs/{org}/projects/{project}/pipelines', permission: p}
  - {method: GET, path: '/v1/orgs/{org}/projects/{project}/pipelines/{pipeline}/frobnicate', permission: p}
  - {method: POST, path: '/files/{*rest}', permission: p}
"#;
    let t = RouteTable::from_yaml_str(yaml, &any_permission).unwrap();
    let n = t
        .nearest("POST", "/v1/orgs/eng/projects/pay/pipelines/deploy/frobnicate", 3)
        .unwrap();
    let got: Vec<(usize, &str)> = n
        .same_method
        .iter()
        .map(|near| (near.common_segments, near.route.template()))
        .collect();
    assert_eq!(
        got,
        [
            (
                7,
                "/v1/orgs/{org}/projects/{project}/pipelines/{pipeline}/execute"
            ),
            (6, "/v1/orgs/{org}/projects/{project}/pipelines"),
            (4, "/v1/orgs/{org}/projects"),
        ]
    );
    assert_eq!(n.other_methods.len(), 1);
    assert_eq!(n.other_methods[0].0, "GET");
    // HEAD looks at the GET routes too; an unknown method has no routes of its own
    let head = t
        .nearest("HEAD", "/v1/orgs/eng/projects/pay/pipelines/deploy/x", 1)
        .unwrap();
    assert_eq!(head.same_method[0].route.index(), 4);
    assert!(t.nearest("get", "/v1/orgs", 5).unwrap().same_method.is_empty());
    assert_eq!(
        t.nearest("POST", "/files", 5).unwrap().same_method[0].common_segments,
        1
    );
    assert!(t.nearest("POST", "http://h/x", 5).is_err());
}

#[test]
fn source_lines_place_each_route_on_its_line() {
    let t = example();
    let lines = t.source_lines(EXAMPLE);
    let text: Vec<&str> = EXAMPLE.lines().collect();
    for (route, line) in t.routes().zip(&lines) {
        let line = line.unwrap_or_else(|| panic!("{} has no line", route.template()));
        assert!(
            text[line - 1].contains(route.template()),
            "{line}: {}",
            route.template()
        );
    }
    let json = "{\"routes\": [\n {\"method\": \"GET\", \"path\": \"/x\", \"public\": true},\n\n \
                {\"method\": \"PUT\", \"path\": \"/x\", \"public\": true}]}";
    let t = RouteTable::from_json_str(json, &any_permission).unwrap();
    assert_eq!(t.source_lines(json), [Some(2), Some(4)]);
    assert_eq!(t.source_lines("# path: /x\n"), [None, None]);
}

#[test]
fn every_route_of_the_default_table_has_its_line() {
    let ids = catalog_ids();
    let t = RouteTable::default_harness(&|p| ids.contains(p)).unwrap();
    let text: Vec<&str> = DEFAULT_ROUTES_YAML.lines().collect();
    let lines = t.source_lines(DEFAULT_ROUTES_YAML);
    let mut previous = 0;
    for (route, line) in t.routes().zip(lines) {
        let line = line.unwrap_or_else(|| panic!("{} has no line", route.template()));
        assert!(line > previous, "{} at {line} after {previous}", route.template());
        assert!(text[line - 1].contains(route.template()));
        previous = line;
    }
}
