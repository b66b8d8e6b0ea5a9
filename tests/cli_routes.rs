//! `scopegate routes explain | coverage | list` run as an operator runs them: the real binary
//! against the embedded default table, its output and exit codes (0 matched, 1 no route, 2 bad
//! input with one line on stderr).

use std::collections::BTreeSet;
use std::process::Output;

use scopegate::route::RouteTable;
use scopegate::route::coverage::measure;

use crate::common::cli::{scopegate, stderr, stdout, temp_file};

const ENDPOINTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/harness-api/endpoints.tsv");

fn routes(args: &[&str]) -> Output {
    let mut all = vec!["routes"];
    all.extend_from_slice(args);
    scopegate(&all)
}

/// The value of the `label:` line of explain's output.
fn field<'a>(text: &'a str, label: &str) -> &'a str {
    let prefix = format!("{label}:");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no `{label}:` line in\n{text}"))
}

fn default_table() -> RouteTable {
    let catalog = scopegate::rbac::Catalog::embedded().unwrap();
    RouteTable::default_harness(&|p| catalog.permission_id(p).is_some()).unwrap()
}

#[test]
fn explain_names_the_route_permission_resource_and_scope_of_a_pipeline_execution() {
    let out = routes(&[
        "explain",
        "POST",
        "/v1/orgs/eng/projects/payments/pipelines/deploy_prod/execute",
        "--header",
        "Harness-Account: acme",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(
        field(&text, "route"),
        "POST /v1/orgs/{org}/projects/{project}/pipelines/{pipeline}/execute"
    );
    let defined = field(&text, "defined");
    let line: usize = defined
        .strip_prefix("deploy/routes/harness-ng.yaml:")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{defined}"));
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/routes/harness-ng.yaml"
    ))
    .unwrap();
    let written = yaml.lines().nth(line - 1).unwrap();
    assert!(
        written.contains("pipelines/{pipeline}/execute") && written.contains("core_pipeline_execute"),
        "{written}"
    );
    assert_eq!(field(&text, "requires"), "permission core_pipeline_execute");
    assert!(
        field(&text, "resource").starts_with("PIPELINE deploy_prod ("),
        "{text}"
    );
    assert!(
        field(&text, "resource").contains("path capture {pipeline}"),
        "{text}"
    );
    assert_eq!(field(&text, "account"), "acme (header harness-account)");
    assert_eq!(field(&text, "org"), "eng (path capture {org})");
    assert_eq!(field(&text, "project"), "payments (path capture {project})");
    assert!(
        field(&text, "why").contains("core_pipeline_execute on PIPELINE/deploy_prod in acme/eng/payments")
    );
}

#[test]
fn explain_reads_the_scope_from_the_query_of_a_url() {
    let out = routes(&[
        "explain",
        "GET",
        "https://app.harness.io/ng/api/projects/payments?accountIdentifier=acme&orgIdentifier=eng",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(field(&text, "route"), "GET /ng/api/projects/{id}");
    assert_eq!(field(&text, "requires"), "permission core_project_view");
    assert!(field(&text, "resource").starts_with("PROJECT payments"), "{text}");
    assert_eq!(
        field(&text, "account"),
        "acme (query parameter accountIdentifier)"
    );
    assert_eq!(field(&text, "org"), "eng (query parameter orgIdentifier)");
    assert!(
        field(&text, "project").contains("never checks in a project"),
        "{text}"
    );
    // with no account given, the credential's account would be used
    let out = routes(&["explain", "GET", "/ng/api/projects/payments?orgIdentifier=eng"]);
    assert!(field(&stdout(&out), "account").contains("the credential's account is used"));
}

#[test]
fn explain_of_an_unrouted_url_exits_1_and_lists_the_nearest_routes() {
    let out = routes(&[
        "explain",
        "POST",
        "/v1/orgs/eng/projects/payments/pipelines/deploy_prod/frobnicate",
        "-H",
        "harness-account:acme",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(field(&text, "route").starts_with("none"), "{text}");
    assert!(field(&text, "result").contains("403 NO_ROUTE"), "{text}");
    assert_eq!(field(&text, "account"), "acme (header harness-account)");
    let nearest: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("nearest POST routes"))
        .skip(1)
        .collect();
    assert!(!nearest.is_empty() && nearest.len() <= 5, "{text}");
    assert!(
        nearest[0].contains("POST /v1/orgs/{org}/projects/{project}/pipelines/{pipeline}/")
            && nearest[0].trim_start().starts_with('7'),
        "{text}"
    );
    assert!(
        text.contains("no route of any method matches this path"),
        "{text}"
    );
}

#[test]
fn explain_of_a_wrong_method_names_the_routed_methods() {
    let out = routes(&[
        "explain",
        "POST",
        "/v1/orgs/eng/projects/payments/pipelines/deploy_prod",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("GET, PUT, PATCH, DELETE are routed, POST is not"),
        "{text}"
    );
    assert!(
        text.contains("  PUT /v1/orgs/{org}/projects/{project}/pipelines/{pipeline} (core_pipeline_edit; deploy/routes/harness-ng.yaml:"),
        "{text}"
    );
}

#[test]
fn coverage_of_the_harness_endpoints_is_the_tests_figure() {
    // the figure tests/harness_api_coverage.rs measures: distinct (method, path) pairs
    let text = std::fs::read_to_string(ENDPOINTS).unwrap();
    let mut seen = BTreeSet::new();
    let pairs: Vec<(&str, &str)> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((f.next()?, f.next()?))
        })
        .filter(|p| seen.insert(*p))
        .collect();
    let cov = measure(&default_table(), pairs.iter().copied());
    let (routed, total) = (cov.total() - cov.unrouted.len(), cov.total());

    let out = routes(&["coverage", ENDPOINTS, "--unrouted"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with(&format!("routed {routed} of {total} endpoints (")),
        "{first}, want {routed} of {total}"
    );
    assert!(
        first.contains(&format!("{} to a permission", cov.permission)),
        "{first}"
    );
    assert!(text.contains("\npipeline "), "a per-tag table: {text}");
    let unrouted: Vec<&str> = text.lines().skip_while(|l| *l != "unrouted:").skip(1).collect();
    assert_eq!(unrouted.len(), cov.unrouted.len());
    let (m, p) = &cov.unrouted[0];
    assert!(unrouted[0].starts_with(&format!("{m}\t{p}\t")), "{}", unrouted[0]);

    let out = routes(&["coverage", ENDPOINTS, "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["routed"], routed);
    assert_eq!(doc["total"], total);
    assert_eq!(doc["unrouted"].as_array().unwrap().len(), total - routed);
    let tags = doc["tags"].as_array().unwrap();
    assert_eq!(
        tags.iter().map(|t| t["total"].as_u64().unwrap()).sum::<u64>(),
        total as u64
    );
}

#[test]
fn list_prints_one_line_per_route_in_table_order() {
    let table = default_table();
    let out = routes(&["list"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), table.len());
    for (line, route) in lines.iter().zip(table.routes()) {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 5, "{line}");
        assert_eq!(fields[1], route.template());
    }
    assert!(
        lines.contains(
            &"POST\t/v1/orgs/{org}/projects/{project}/pipelines/{pipeline}/execute\tcore_pipeline_execute\t\
              PIPELINE/{pipeline}\taccount=header:harness-account,query:accountIdentifier,credential org=path:org \
              project=path:project"
        ),
        "{}",
        lines[27]
    );
    let out = routes(&["list", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["routes"].as_array().unwrap().len(), table.len());

    let file = temp_file(
        "small.yaml",
        "routes:\n  - {method: [GET, HEAD], path: /x, public: true}\n  - {method: GET, path: '/y/{id}', \
         permission: core_pipeline_view, resource: {id: \"{id}\"}, scope: {}}\n",
    );
    let out = routes(&["list", "--routes", file.to_str().unwrap()]);
    assert_eq!(
        stdout(&out),
        "GET|HEAD\t/x\tpublic\t-\taccount=header:harness-account,query:accountIdentifier,credential \
         org=path:org,query:orgIdentifier project=path:project,query:projectIdentifier\n\
         GET\t/y/{id}\tcore_pipeline_view\tPIPELINE/{id}\taccount=header:harness-account,query:accountIdentifier,credential\n"
    );
    let out = routes(&["explain", "GET", "/y/7", "--routes", file.to_str().unwrap()]);
    assert!(field(&stdout(&out), "defined").starts_with(&format!("{}:3 ", file.display())));
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let bad_table = temp_file(
        "bad.yaml",
        "routes:\n  - {method: GET, path: /x, permission: core_nope}\n",
    );
    let bad_tsv = temp_file("bad.tsv", "method\tpath\toperation\ttag\nGET\n");
    for (args, message) in [
        (vec!["explain", "get", "/v1/orgs"], "unknown method `get`"),
        (vec!["explain", "FETCH", "/v1/orgs"], "unknown method `FETCH`"),
        (vec!["explain", "GET", "v1/orgs"], "neither a request path"),
        (vec!["explain", "GET", "/v1/orgs/../x"], "400 INVALID_REQUEST"),
        (
            vec![
                "explain",
                "GET",
                "/v1/orgs?accountIdentifier=a&accountIdentifier=b",
            ],
            "more than once",
        ),
        (
            vec!["explain", "GET", "/v1/orgs", "-H", "no-colon"],
            "is not `NAME:VALUE`",
        ),
        (
            vec![
                "explain",
                "GET",
                "/v1/orgs",
                "--routes",
                "/nonexistent/routes.yaml",
            ],
            "cannot read route table",
        ),
        (
            vec!["explain", "GET", "/x", "--routes", bad_table.to_str().unwrap()],
            "unknown permission `core_nope`",
        ),
        (vec!["coverage", "/nonexistent/endpoints.tsv"], "cannot read"),
        (vec!["coverage", bad_tsv.to_str().unwrap()], "bad.tsv:2: expected"),
        (
            vec!["list", "--routes", "/nonexistent/routes.yaml"],
            "cannot read route table",
        ),
    ] {
        let out = routes(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(err.contains(message), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
}

#[test]
fn each_routes_subcommand_shows_an_example_under_help() {
    for sub in ["explain", "coverage", "list"] {
        let out = routes(&[sub, "--help"]);
        assert_eq!(out.status.code(), Some(0));
        let text = stdout(&out);
        assert!(text.contains(&format!("scopegate routes {sub}")), "{sub}: {text}");
    }
}
