#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Scope extraction, scope resources and the permission override.

use super::super::*;
use super::{example, get, lookup, scope};

#[test]
fn account_sources_in_order_header_query_credential() {
    let t = example();
    let hs = [("harness-account", "acme")];
    let h = |n: &str| lookup(&hs, n);
    let req = RouteRequest {
        headers: &h,
        credential_account: Some("acme"),
        ..RouteRequest::new("GET", "/v1/me")
    };
    let d = t.resolve(&req).unwrap();
    assert_eq!(d.scope().unwrap().account.as_deref(), Some("acme"));
    // Only the credential.
    let req = RouteRequest {
        credential_account: Some("cred"),
        ..RouteRequest::new("GET", "/v1/me")
    };
    assert_eq!(
        t.resolve(&req).unwrap().scope().unwrap().account.as_deref(),
        Some("cred")
    );
    // The request names the account first; the credential's is not compared here.
    let req = RouteRequest {
        credential_account: Some("cred"),
        ..RouteRequest::new("GET", "/v1/me?accountIdentifier=q")
    };
    assert_eq!(
        t.resolve(&req).unwrap().scope().unwrap().account.as_deref(),
        Some("q")
    );
    // An empty header counts as absent.
    let hs = [("harness-account", "")];
    let h = |n: &str| lookup(&hs, n);
    let req = RouteRequest {
        headers: &h,
        ..RouteRequest::new("GET", "/v1/me?accountIdentifier=q")
    };
    assert_eq!(
        t.resolve(&req).unwrap().scope().unwrap().account.as_deref(),
        Some("q")
    );
}

#[test]
fn the_request_may_not_name_two_accounts() {
    let t = example();
    let hs = [("harness-account", "acme")];
    let h = |n: &str| lookup(&hs, n);
    let req = RouteRequest {
        headers: &h,
        ..RouteRequest::new("GET", "/v1/me?accountIdentifier=other")
    };
    assert_eq!(t.resolve(&req), Err(RouteError::AmbiguousAccount));
    let req = RouteRequest {
        headers: &h,
        ..RouteRequest::new("GET", "/v1/me?accountIdentifier=acme")
    };
    assert!(t.resolve(&req).is_ok());
    let hs = [("harness-account", "a,b")];
    let h = |n: &str| lookup(&hs, n);
    let req = RouteRequest {
        headers: &h,
        ..RouteRequest::new("GET", "/v1/me")
    };
    assert_eq!(t.resolve(&req), Err(RouteError::AmbiguousHeader));
}

#[test]
fn path_beats_query_for_org_and_project() {
    let t = example();
    let d = get(
        &t,
        "GET",
        "/v1/orgs/eng/projects/pay/pipelines/p?orgIdentifier=x&projectIdentifier=y",
    );
    assert_eq!(d.scope().unwrap(), &scope(None, Some("eng"), Some("pay")));
}

#[test]
fn scope_errors() {
    let t = example();
    let r = t.resolve(&RouteRequest::new(
        "PUT",
        "/ng/api/connectors?projectIdentifier=p",
    ));
    assert_eq!(r, Err(RouteError::ProjectWithoutOrg));
    let r = t.resolve(&RouteRequest::new(
        "PUT",
        "/ng/api/connectors?orgIdentifier=a&orgIdentifier=b",
    ));
    assert_eq!(r, Err(RouteError::AmbiguousQuery("orgIdentifier".into())));
    assert_eq!(r.unwrap_err().code(), "ambiguous_query");
    // A public route reads no scope, so it never fails on one.
    let d = get(&t, "GET", "/health?orgIdentifier=a&orgIdentifier=b");
    assert!(matches!(d, RouteDecision::Public { .. }));
}

#[test]
fn scope_resource_and_literal_id() {
    let t = example();
    let cases = [
        (
            "/audit?accountIdentifier=a",
            "ACCOUNT",
            Some("a"),
            scope(Some("a"), None, None),
        ),
        (
            "/audit?accountIdentifier=a&orgIdentifier=o",
            "ORGANIZATION",
            Some("o"),
            scope(Some("a"), None, None),
        ),
        (
            "/audit?accountIdentifier=a&orgIdentifier=o&projectIdentifier=p",
            "PROJECT",
            Some("p"),
            scope(Some("a"), Some("o"), None),
        ),
    ];
    for (path, ty, id, s) in cases {
        let d = get(&t, "POST", path);
        let RouteDecision::Permission {
            resource_type,
            resource_id,
            scope: got,
            ..
        } = d
        else {
            panic!()
        };
        assert_eq!(resource_type, Some(ty), "{path}");
        assert_eq!(resource_id.as_deref(), id, "{path}");
        assert_eq!(got, s, "{path}");
    }
    let d = get(&t, "DELETE", "/literal");
    let RouteDecision::Permission {
        resource_type,
        resource_id,
        ..
    } = d
    else {
        panic!()
    };
    assert_eq!(
        (resource_type, resource_id.as_deref()),
        (Some("FILE"), Some("fixed_id"))
    );
}

#[test]
fn the_permission_override_replaces_the_routes_permission() {
    let t = example();
    let path = "/v1/orgs/eng/projects/pay/pipelines/deploy";
    let req = RouteRequest {
        permission_override: Some("core_pipeline_execute"),
        ..RouteRequest::new("GET", path)
    };
    let d = t.resolve(&req).unwrap();
    let RouteDecision::Permission {
        permission,
        resource_id,
        scope: s,
        ..
    } = d
    else {
        panic!()
    };
    assert_eq!(permission, "core_pipeline_execute");
    assert_eq!(resource_id.as_deref(), Some("deploy"));
    assert_eq!(s, scope(None, Some("eng"), Some("pay")));
    // The same through resolve_with_permission.
    let d = t
        .resolve_with_permission(&RouteRequest::new("GET", path), Some("core_pipeline_edit"))
        .unwrap();
    assert!(matches!(
        d,
        RouteDecision::Permission {
            permission: "core_pipeline_edit",
            ..
        }
    ));
    // A public or authenticated route becomes a permission check.
    let d = t
        .resolve_with_permission(&RouteRequest::new("GET", "/health"), Some("p"))
        .unwrap();
    assert!(matches!(
        d,
        RouteDecision::Permission {
            route: Some("/health"),
            ..
        }
    ));
    let d = t
        .resolve_with_permission(&RouteRequest::new("GET", "/v1/me"), Some("p"))
        .unwrap();
    assert!(matches!(
        d,
        RouteDecision::Permission {
            route: Some("/v1/me"),
            ..
        }
    ));
    // An unmatched request gets the default scope and no resource.
    let req = RouteRequest::new("GET", "/other?accountIdentifier=a&orgIdentifier=o");
    let d = t.resolve_with_permission(&req, Some("p")).unwrap();
    assert_eq!(
        d,
        RouteDecision::Permission {
            route: None,
            permission: "p",
            resource_type: None,
            resource_id: None,
            scope: scope(Some("a"), Some("o"), None),
        }
    );
}
