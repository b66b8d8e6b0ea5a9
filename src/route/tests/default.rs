#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The default route table (`DEFAULT_ROUTES_YAML`, `deploy/routes/harness-ng.yaml`): it compiles against
//! the catalog, covers every permission it should, and resolves the Harness NG, v1 and AI SRE examples.

use std::borrow::Cow;

use super::super::*;
use super::{catalog_ids, lookup, scope};

fn table() -> RouteTable {
    let ids = catalog_ids();
    RouteTable::default_harness(&|p| ids.contains(p)).unwrap()
}

/// (permission, resource type, resource id, scope) of a permission decision.
type Check<'a> = (&'a str, Option<&'a str>, Option<String>, Scope<'a>);

fn check<'a>(t: &'a RouteTable, method: &'a str, path: &'a str) -> Check<'a> {
    match t.resolve(&RouteRequest::new(method, path)).unwrap() {
        RouteDecision::Permission {
            permission,
            resource_type,
            resource_id,
            scope,
            ..
        } => (permission, resource_type, resource_id.map(Cow::into_owned), scope),
        other => panic!("{method} {path}: {other:?}"),
    }
}

#[test]
fn the_default_table_compiles_against_the_catalog() {
    let t = table();
    assert!(t.len() > 300, "{}", t.len());
    assert_eq!(t.unmatched(), Unmatched::Deny);
}

#[test]
fn every_ai_sre_permission_has_a_route() {
    let used: Vec<&str> = DEFAULT_ROUTES_YAML
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    for id in catalog_ids().iter().filter(|p| p.starts_with("iro_")) {
        assert!(used.contains(&id.as_str()), "{id} has no route");
    }
}

#[test]
fn every_v1_route_pins_its_scope_to_the_path() {
    let spec = RouteTableSpec::parse(DEFAULT_ROUTES_YAML, Format::Yaml).unwrap();
    for r in &spec.routes {
        if r.path.starts_with("/v1/") && r.permission.is_some() {
            let s = r
                .scope
                .as_ref()
                .unwrap_or_else(|| panic!("{} has no scope", r.path));
            assert!(
                s.org
                    .iter()
                    .chain(&s.project)
                    .all(|src| matches!(src, Source::Path(_))),
                "{}",
                r.path
            );
        }
    }
}

#[test]
fn harness_ng_and_v1_examples() {
    let t = table();
    let ng = "accountIdentifier=acme&orgIdentifier=eng&projectIdentifier=pay";
    let cases: Vec<(&str, String, Check<'_>)> = vec![
        (
            "GET",
            "/v1/orgs/eng/projects/pay/pipelines/deploy".into(),
            (
                "core_pipeline_view",
                None,
                Some("deploy".into()),
                scope(None, Some("eng"), Some("pay")),
            ),
        ),
        (
            "POST",
            "/v1/orgs/eng/projects/pay/pipelines/deploy/execute?projectIdentifier=x".into(),
            (
                "core_pipeline_execute",
                None,
                Some("deploy".into()),
                scope(None, Some("eng"), Some("pay")),
            ),
        ),
        (
            "POST",
            format!("/pipeline/api/pipeline/execute/deploy?{ng}"),
            (
                "core_pipeline_execute",
                None,
                Some("deploy".into()),
                scope(Some("acme"), Some("eng"), Some("pay")),
            ),
        ),
        (
            "GET",
            format!("/ng/api/projects/pay?{ng}"),
            (
                "core_project_view",
                Some("PROJECT"),
                Some("pay".into()),
                scope(Some("acme"), Some("eng"), None),
            ),
        ),
        (
            "DELETE",
            "/v1/orgs/eng/projects/pay".into(),
            (
                "core_project_delete",
                Some("PROJECT"),
                Some("pay".into()),
                scope(None, Some("eng"), None),
            ),
        ),
        (
            "PUT",
            "/v1/orgs/eng?orgIdentifier=other".into(),
            (
                "core_organization_edit",
                Some("ORGANIZATION"),
                Some("eng".into()),
                scope(None, None, None),
            ),
        ),
        (
            "POST",
            format!("/audit/api/audits/list?{ng}"),
            (
                "core_audit_view",
                Some("PROJECT"),
                Some("pay".into()),
                scope(Some("acme"), Some("eng"), None),
            ),
        ),
        (
            "GET",
            "/ng/api/accounts/acme/name".into(),
            (
                "core_account_view",
                Some("ACCOUNT"),
                Some("acme".into()),
                scope(Some("acme"), None, None),
            ),
        ),
        (
            "GET",
            format!("/ng/api/settings?{ng}"),
            (
                "core_account_view",
                Some("ACCOUNT"),
                None,
                scope(Some("acme"), None, None),
            ),
        ),
        (
            "PUT",
            "/ng/api/user-groups/sre/member/alice?accountIdentifier=acme".into(),
            (
                "core_usergroup_manage",
                None,
                Some("sre".into()),
                scope(Some("acme"), None, None),
            ),
        ),
        (
            "PATCH",
            format!("/cf/admin/features/new_ui?{ng}"),
            (
                "ff_featureflag_edit",
                None,
                Some("new_ui".into()),
                scope(Some("acme"), Some("eng"), Some("pay")),
            ),
        ),
        (
            "HEAD",
            "/v1/orgs/eng/connectors/github".into(),
            (
                "core_connector_view",
                None,
                Some("github".into()),
                scope(None, Some("eng"), None),
            ),
        ),
        (
            "GET",
            "/v1/secrets?orgIdentifier=eng".into(),
            ("core_secret_view", None, None, scope(None, None, None)),
        ),
    ];
    for (method, path, want) in &cases {
        assert_eq!(&check(&t, method, path), want, "{method} {path}");
    }
}

#[test]
fn ai_sre_examples() {
    let t = table();
    let p = "/v1/orgs/eng/projects/pay/ai-sre";
    let proj = || scope(None, Some("eng"), Some("pay"));
    let cases: Vec<(&str, String, Check<'_>)> = vec![
        (
            "GET",
            format!("{p}/incidents/inc1"),
            ("iro_incident_view", None, Some("inc1".into()), proj()),
        ),
        (
            "POST",
            format!("{p}/incidents"),
            ("iro_incident_edit", None, None, proj()),
        ),
        (
            "POST",
            format!("{p}/incidents/inc1/status-updates"),
            ("iro_incident_sendstatusupdate", None, Some("inc1".into()), proj()),
        ),
        (
            "DELETE",
            format!("{p}/schedules/s1/overrides/o1"),
            ("iro_iroscheduleoverride_delete", None, Some("o1".into()), proj()),
        ),
        (
            "POST",
            format!("{p}/runbooks/rb/trigger"),
            ("iro_runbook_trigger", None, Some("rb".into()), proj()),
        ),
        (
            "PATCH",
            format!("{p}/workspace"),
            ("iro_iroworkspace_config", None, None, proj()),
        ),
        (
            "GET",
            "/v1/ai-sre/escalation-policies/ep".into(),
            (
                "iro_iroescalationpolicy_view",
                None,
                Some("ep".into()),
                scope(None, None, None),
            ),
        ),
        (
            "POST",
            "/v1/orgs/eng/ai-sre/services/svc/subscriptions".into(),
            (
                "iro_servicedirectory_managesubscriptions",
                None,
                Some("svc".into()),
                scope(None, Some("eng"), None),
            ),
        ),
    ];
    for (method, path, want) in &cases {
        assert_eq!(&check(&t, method, path), want, "{method} {path}");
    }
}

#[test]
fn health_me_and_unknown_paths() {
    let t = table();
    let d = t.resolve(&RouteRequest::new("GET", "/health")).unwrap();
    assert_eq!(d, RouteDecision::Public { route: "/health" });
    let req = RouteRequest {
        credential_account: Some("acme"),
        ..RouteRequest::new("GET", "/v1/me")
    };
    let d = t.resolve(&req).unwrap();
    assert!(matches!(d, RouteDecision::Authenticated { route: "/v1/me", .. }));
    let d = t.resolve(&RouteRequest::new("GET", "/ng/api/unknown")).unwrap();
    assert!(matches!(
        d,
        RouteDecision::Unmatched {
            allow_authenticated: false,
            ..
        }
    ));
    let d = t
        .resolve(&RouteRequest::new("POST", "/authz/api/roleassignments"))
        .unwrap();
    assert!(matches!(d, RouteDecision::Authenticated { .. }));
}

#[test]
fn the_account_path_must_agree_with_the_header() {
    let t = table();
    let hs = [("harness-account", "acme")];
    let h = |n: &str| lookup(&hs, n);
    let req = RouteRequest {
        headers: &h,
        ..RouteRequest::new("PUT", "/ng/api/accounts/victim")
    };
    assert_eq!(t.resolve(&req), Err(RouteError::AmbiguousAccount));
}

#[test]
fn odd_harness_parameters_route_as_the_table_header_says() {
    // `{agent.identifier}` is written `{agent_identifier}`; `{git_ref}.{format}` is one capture of
    // the whole segment; the gateway's account in the path is the scope's account.
    let t = table();
    let (p, _, id, _) = check(&t, "GET", "/gitops/api/v1/agents/a1/applications/app1");
    assert_eq!((p, id.as_deref()), ("gitops_application_view", Some("app1")));
    let (p, ..) = check(&t, "GET", "/code/api/v1/repos/r1/archive/main.zip");
    assert_eq!(p, "code_repository_view");
    let (p, _, _, s) = check(&t, "GET", "/gateway/lw/api/accounts/acc1/autostopping/rules");
    assert_eq!(p, "ccm_autoStoppingRule_view");
    assert_eq!(s.account.as_deref(), Some("acc1"));
    let (p, _, id, s) = check(&t, "GET", "/iacm/api/orgs/o1/projects/p1/workspaces/w1");
    assert_eq!((p, id.as_deref()), ("iac_workspace_view", Some("w1")));
    assert_eq!(s, scope(None, Some("o1"), Some("p1")));
}
