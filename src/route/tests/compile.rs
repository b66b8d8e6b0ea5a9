#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Route-table validation: every way a table can be rejected, each error naming its route, all at once.

use super::super::*;
use super::any_permission;

fn errors(yaml: &str) -> Vec<RouteTableError> {
    match RouteTable::from_yaml_str(yaml, &any_permission) {
        Ok(_) => panic!("compiled: {yaml}"),
        Err(e) => e.0,
    }
}

fn one(yaml: &str) -> RouteTableError {
    let mut e = errors(yaml);
    assert_eq!(e.len(), 1, "{e:?}");
    e.remove(0)
}

#[test]
fn unknown_permission_names_the_route() {
    let e = one("routes: [{method: GET, path: '/v1/orgs/{org}', permission: core_pipline_view}]");
    assert_eq!(
        e.to_string(),
        "route `GET /v1/orgs/{org}`: unknown permission `core_pipline_view`"
    );
}

#[test]
fn unknown_and_missing_methods() {
    let e = one("routes: [{method: get, path: /a, public: true}]");
    assert!(matches!(e, RouteTableError::UnknownMethod { ref method, .. } if method == "get"));
    let e = one("routes: [{method: [], path: /a, public: true}]");
    assert!(matches!(e, RouteTableError::NoMethod { .. }));
    let e = one("routes: [{method: [GET, BREW], path: /a, public: true}]");
    assert_eq!(
        e.to_string(),
        "route `GET|BREW /a`: unknown method `BREW` (expected GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS)"
    );
}

#[test]
fn invalid_path_templates() {
    for path in [
        "a/b",
        "/a/",
        "/a//b",
        "/a/../b",
        "/a/./b",
        "/a b",
        "/a;b",
        "/a?b",
        "/a%2Fb",
        "/a/{",
        "/a/}",
        "/a/{}",
        "/a/{x-y}",
        "/a/{x}/{x}",
        "/a/{*rest}/b",
        "/a/{x}{y}",
    ] {
        let yaml = format!("routes: [{{method: GET, path: '{path}', public: true}}]");
        let e = one(&yaml);
        assert!(matches!(e, RouteTableError::InvalidPath { .. }), "{path}: {e:?}");
        assert!(
            e.to_string()
                .starts_with(&format!("route `GET {path}`: invalid path template: "))
        );
    }
}

#[test]
fn duplicates_and_overlaps() {
    let e = one(
        "routes: [{method: GET, path: '/a/{x}', public: true}, {method: [POST, GET], path: '/a/{y}', public: true}]",
    );
    assert_eq!(
        e.to_string(),
        "route `GET /a/{y}`: duplicate of an earlier route with the same method and path"
    );
    let e = one("routes: [{method: [GET, GET], path: /a, public: true}]");
    assert!(matches!(e, RouteTableError::DuplicateRoute { .. }));
    let e = one(
        "routes: [{method: GET, path: '/a/{x}', public: true}, {method: GET, path: '/a/{*rest}', public: true}]",
    );
    assert!(matches!(e, RouteTableError::InvalidPath { .. }), "{e:?}");
    // Static segments beside a capture are fine, as are the same paths under other methods.
    RouteTable::from_yaml_str(
        "routes: [{method: GET, path: '/a/{x}', public: true}, {method: GET, path: /a/b, public: true},
                  {method: POST, path: '/a/{x}', public: true}]",
        &any_permission,
    )
    .unwrap();
}

#[test]
fn captures_named_by_resource_and_scope_must_exist() {
    let e = one("routes: [{method: GET, path: '/a/{x}', permission: p, resource: {id: '{y}'}}]");
    assert_eq!(
        e.to_string(),
        "route `GET /a/{x}`: resource id names `y`, which the path does not capture"
    );
    let e = one("routes: [{method: GET, path: /a, permission: p, scope: {org: [{path: org}]}}]");
    assert!(matches!(
        e,
        RouteTableError::UnknownCapture {
            what: "org source",
            ..
        }
    ));
    let e = one("routes: [{method: GET, path: /a, permission: p, scope: {account: [{path: acct}]}}]");
    assert!(matches!(
        e,
        RouteTableError::UnknownCapture {
            what: "account source",
            ..
        }
    ));
    // In the defaults a missing capture is fine: it yields nothing.
    RouteTable::from_yaml_str(
        "routes: [{method: GET, path: /a, permission: p}]",
        &any_permission,
    )
    .unwrap();
}

#[test]
fn invalid_resources() {
    for res in [
        "{id: 'a{b}'}",
        "{id: '{a}{b}'}",
        "{id: ''}",
        "{type: pipeline}",
        "{type: SCOPE, id: x}",
    ] {
        let yaml = format!("routes: [{{method: GET, path: '/a/{{a}}', permission: p, resource: {res}}}]");
        let e = one(&yaml);
        assert!(
            matches!(e, RouteTableError::InvalidResource { .. }),
            "{res}: {e:?}"
        );
    }
    let e = one("routes: [{method: GET, path: /a, public: true, resource: {type: X}}]");
    assert!(matches!(e, RouteTableError::InvalidResource { .. }));
}

#[test]
fn a_route_needs_exactly_one_action() {
    let e = one("routes: [{method: GET, path: /a}]");
    assert!(matches!(e, RouteTableError::NoAction { .. }));
    let e = one("routes: [{method: GET, path: /a, public: false}]");
    assert!(matches!(e, RouteTableError::NoAction { .. }));
    for both in [
        "public: true, authenticated: true",
        "permission: p, public: true",
        "permission: p, authenticated: true",
    ] {
        let e = one(&format!("routes: [{{method: GET, path: /a, {both}}}]"));
        assert!(matches!(e, RouteTableError::ConflictingActions { .. }), "{both}");
    }
}

#[test]
fn invalid_sources() {
    let e = one("defaults: {org: [credential]}\nroutes: []");
    assert_eq!(
        e.to_string(),
        "defaults: invalid org source: `credential` names only an account"
    );
    let e = one("account: [{header: ''}]\nroutes: []");
    assert!(matches!(
        e,
        RouteTableError::InvalidSource { what: "account", .. }
    ));
    let e = one("routes: [{method: GET, path: /a, permission: p, scope: {project: [credential]}}]");
    assert!(
        e.to_string()
            .starts_with("route `GET /a`: invalid project source")
    );
}

#[test]
fn every_error_is_reported_at_once() {
    let yaml = "
routes:
  - {method: GET, path: /a, permission: core_pipline_view}
  - {method: TRACE, path: /b, public: true}
  - {method: GET, path: 'c', public: true}
  - {method: GET, path: /a, public: true}
  - {method: GET, path: '/d/{x}', permission: p, resource: {id: '{y}'}}
  - {method: GET, path: /e}
  - {method: GET, path: /f, public: true, authenticated: true}
";
    let e = RouteTable::from_yaml_str(yaml, &any_permission).unwrap_err();
    assert_eq!(e.errors().len(), 7, "{e}");
    assert_eq!(e.to_string().lines().count(), 7);
}

#[test]
fn parse_errors_reject_unknown_fields_and_bad_shapes() {
    for yaml in [
        "routes: [{method: GET, path: /a, public: true, extra: 1}]",
        "routez: []",
        "account: [{cookie: x}]",
        "account: [bearer]",
        "account: [{header: a, query: b}]",
        "unmatched: allow",
        "routes: [{method: GET, path: /a, permission: p, scope: {tenant: []}}]",
        "routes: [{path: /a, public: true}]",
    ] {
        let e = one(yaml);
        assert!(matches!(e, RouteTableError::Parse { .. }), "{yaml}: {e:?}");
        assert!(e.to_string().starts_with("invalid route table: "));
    }
    let e = RouteTable::from_json_str("{\"routes\": 1}", &any_permission).unwrap_err();
    assert!(matches!(e.errors(), [RouteTableError::Parse { .. }]));
}

#[test]
fn an_empty_table_denies_everything() {
    let t = RouteTable::from_yaml_str("{}", &any_permission).unwrap();
    assert!(t.is_empty());
    let d = t.resolve(&RouteRequest::new("GET", "/x")).unwrap();
    assert!(matches!(
        d,
        RouteDecision::Unmatched {
            allow_authenticated: false,
            ..
        }
    ));
}
