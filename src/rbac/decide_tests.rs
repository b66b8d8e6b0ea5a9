//! Unit tests of `decide`: each rule of the decision (docs/model.md "The decision") on the shared fixture.

use super::*;
use crate::rbac::test_fixture::fixture;

struct Ask<'a> {
    principal: PrincipalId,
    scope: (Option<&'a str>, Option<&'a str>),
    permission: &'a str,
    resource: Option<(&'a str, Option<&'a str>)>,
    subset: Option<&'a [&'a str]>,
}

fn ask(account: &CompiledAccount, ask: Ask<'_>) -> (Decision, String) {
    let catalog = account.catalog();
    let permission = catalog.permission_id(ask.permission).expect("permission");
    let resource_type = match ask.resource {
        Some((kind, _)) => catalog.resource_type_id(kind).expect("type"),
        None => catalog.permission(permission).expect("permission").resource_type,
    };
    let scope = account.resolve_scope(ask.scope.0, ask.scope.1).expect("scope");
    let subset: Option<PermissionSet> = ask.subset.map(|ids| {
        ids.iter()
            .map(|id| catalog.permission_id(id).expect("subset id"))
            .collect()
    });
    let check = Check {
        scope,
        permission,
        resource_type,
        resource_id: ask.resource.and_then(|r| r.1),
    };
    let decision = decide(
        account,
        &Principal {
            id: ask.principal,
            token_permissions: subset.as_ref(),
        },
        &check,
    );
    let explained = decision.explain(account, &check);
    (decision, explained)
}

fn user(account: &CompiledAccount, name: &str) -> PrincipalId {
    account.user(name).expect("user")
}

const PAYMENTS: (Option<&str>, Option<&str>) = (Some("eng"), Some("payments"));

#[test]
fn rule_1_permission_not_allowed_at_scope_level() {
    let account = fixture();
    let alice = user(&account, "alice");
    let (d, why) = ask(
        &account,
        Ask {
            principal: alice,
            scope: PAYMENTS,
            permission: "core_account_view",
            resource: None,
            subset: None,
        },
    );
    assert_eq!(d.reason, Reason::PermissionNotAllowedAtScope);
    assert!(!d.allowed);
    assert!(
        why.contains("permission `core_account_view`, scope `acme/eng/payments`"),
        "{why}"
    );
}

#[test]
fn rule_2_token_subset_excludes_the_permission() {
    let account = fixture();
    let bob = user(&account, "bob");
    let deploy = Some(("PIPELINE", Some("deploy")));
    let (d, _) = ask(
        &account,
        Ask {
            principal: bob,
            scope: PAYMENTS,
            permission: "core_pipeline_execute",
            resource: deploy,
            subset: Some(&["core_pipeline_view"]),
        },
    );
    assert_eq!(d.reason, Reason::TokenPermissionSubset);
    let (d, _) = ask(
        &account,
        Ask {
            principal: bob,
            scope: PAYMENTS,
            permission: "core_pipeline_execute",
            resource: deploy,
            subset: Some(&["core_pipeline_execute"]),
        },
    );
    assert!(
        d.allowed,
        "a subset holding the permission keeps the parent's grant"
    );
}

#[test]
fn rule_2_applies_to_implicit_permissions_too() {
    let account = fixture();
    let bob = user(&account, "bob");
    let (d, _) = ask(
        &account,
        Ask {
            principal: bob,
            scope: PAYMENTS,
            permission: "iro_iroschedule_view",
            resource: None,
            subset: Some(&["core_pipeline_view"]),
        },
    );
    assert_eq!(d.reason, Reason::TokenPermissionSubset);
}

#[test]
fn rule_3_implicit_views_need_no_assignment() {
    let account = fixture();
    let bob = user(&account, "bob");
    for permission in [
        "iro_iroschedule_view",
        "iro_iroescalationpolicy_view",
        "iro_iroscheduleoverride_view",
    ] {
        let (d, why) = ask(
            &account,
            Ask {
                principal: bob,
                scope: (Some("ops"), None),
                permission,
                resource: None,
                subset: None,
            },
        );
        assert_eq!(d.reason, Reason::Implicit, "{permission}");
        assert!(why.starts_with("implicit"), "{why}");
    }
    let (d, _) = ask(
        &account,
        Ask {
            principal: bob,
            scope: (Some("ops"), None),
            permission: "iro_runbook_view",
            resource: None,
            subset: None,
        },
    );
    assert_eq!(d.reason, Reason::NoMatchingGrant);
}

#[test]
fn rule_4_grant_inherited_through_group_including_child_scopes() {
    let account = fixture();
    let alice = user(&account, "alice");
    let (d, why) = ask(
        &account,
        Ask {
            principal: alice,
            scope: PAYMENTS,
            permission: "core_pipeline_view",
            resource: Some(("PIPELINE", Some("x"))),
            subset: None,
        },
    );
    assert!(d.allowed);
    assert!(why.contains("assignment `ra_leads` in `acme/eng`"), "{why}");
    assert!(why.contains("role `_organization_viewer`"), "{why}");
    assert!(why.contains("through user group `leads` of `acme/eng`"), "{why}");
}

#[test]
fn rule_4_inherited_user_group_from_account_level() {
    let account = fixture();
    let bob = user(&account, "bob");
    let (d, why) = ask(
        &account,
        Ask {
            principal: bob,
            scope: (Some("eng"), Some("search")),
            permission: "core_pipeline_edit",
            resource: None,
            subset: None,
        },
    );
    assert!(d.allowed, "{why}");
    assert!(why.contains("through user group `all` of `acme`"), "{why}");
}

#[test]
fn rule_4_excluding_child_scopes_stops_at_the_base_scope() {
    let account = fixture();
    let alice = user(&account, "alice");
    // ra_org_only: _organization_admin on ops with _all_organization_level_resources (EXCLUDING).
    let (d, _) = ask(
        &account,
        Ask {
            principal: alice,
            scope: (Some("ops"), None),
            permission: "core_pipeline_edit",
            resource: None,
            subset: None,
        },
    );
    assert!(d.allowed);
    let (d, why) = ask(
        &account,
        Ask {
            principal: alice,
            scope: (Some("ops"), Some("payments")),
            permission: "core_pipeline_edit",
            resource: None,
            subset: None,
        },
    );
    assert_eq!(d.reason, Reason::NoMatchingGrant, "{why}");
}

#[test]
fn rule_4_identifier_selector_covers_only_listed_resources() {
    let account = fixture();
    let bob = user(&account, "bob");
    let (d, _) = ask(
        &account,
        Ask {
            principal: bob,
            scope: PAYMENTS,
            permission: "core_pipeline_execute",
            resource: Some(("PIPELINE", Some("deploy"))),
            subset: None,
        },
    );
    assert!(d.allowed);
    let (d, why) = ask(
        &account,
        Ask {
            principal: bob,
            scope: PAYMENTS,
            permission: "core_pipeline_execute",
            resource: Some(("PIPELINE", Some("other"))),
            subset: None,
        },
    );
    assert_eq!(d.reason, Reason::NoMatchingGrant);
    assert!(
        why.contains("resource type `PIPELINE`, identifier `other`"),
        "{why}"
    );
    // Without an identifier (create/list) only type-wide entries cover.
    let (d, _) = ask(
        &account,
        Ask {
            principal: bob,
            scope: PAYMENTS,
            permission: "core_pipeline_execute",
            resource: None,
            subset: None,
        },
    );
    assert_eq!(d.reason, Reason::NoMatchingGrant);
}

#[test]
fn rule_4_attribute_filter_matches_recorded_attributes() {
    let account = fixture();
    let bob = user(&account, "bob");
    let env = |id| Some(("ENVIRONMENT", Some(id)));
    let (d, _) = ask(
        &account,
        Ask {
            principal: bob,
            scope: PAYMENTS,
            permission: "core_environment_access",
            resource: env("prod"),
            subset: None,
        },
    );
    assert!(d.allowed);
    for id in ["qa", "unknown"] {
        let (d, _) = ask(
            &account,
            Ask {
                principal: bob,
                scope: PAYMENTS,
                permission: "core_environment_access",
                resource: env(id),
                subset: None,
            },
        );
        assert_eq!(d.reason, Reason::NoMatchingGrant, "{id}");
    }
}

#[test]
fn rule_4_service_account_bound_below_its_scope() {
    let account = fixture();
    let scope = account.resolve_scope(Some("eng"), None).expect("eng");
    let bot = account.service_account_in("bot", scope).expect("bot");
    let (d, why) = ask(
        &account,
        Ask {
            principal: bot,
            scope: PAYMENTS,
            permission: "core_pipeline_execute",
            resource: None,
            subset: None,
        },
    );
    assert!(d.allowed, "{why}");
    assert!(why.contains("role `_pipeline_executor`"), "{why}");
    let (d, _) = ask(
        &account,
        Ask {
            principal: bot,
            scope: PAYMENTS,
            permission: "core_pipeline_edit",
            resource: None,
            subset: None,
        },
    );
    assert_eq!(d.reason, Reason::NoMatchingGrant);
}

#[test]
fn rule_4_disabled_assignment_grants_nothing() {
    let account = fixture();
    let bob = user(&account, "bob");
    let (d, _) = ask(
        &account,
        Ask {
            principal: bob,
            scope: (None, None),
            permission: "core_account_edit",
            resource: None,
            subset: None,
        },
    );
    assert_eq!(d.reason, Reason::NoMatchingGrant);
}

#[test]
fn rule_4_scope_typed_resource_checked_as_the_scope_itself() {
    let account = fixture();
    let bob = user(&account, "bob");
    // Bob is _project_admin of eng/search (inherited group), so he may view project `search`,
    // a check made in its parent scope eng.
    let (d, why) = ask(
        &account,
        Ask {
            principal: bob,
            scope: (Some("eng"), None),
            permission: "core_project_view",
            resource: Some(("PROJECT", Some("search"))),
            subset: None,
        },
    );
    assert!(d.allowed, "{why}");
    assert!(why.contains("matched in `acme/eng/search`"), "{why}");
    let (d, _) = ask(
        &account,
        Ask {
            principal: bob,
            scope: (Some("eng"), None),
            permission: "core_project_view",
            resource: Some(("PROJECT", Some("payments"))),
            subset: None,
        },
    );
    assert_eq!(d.reason, Reason::NoMatchingGrant);
}

#[test]
fn rule_5_no_matching_grant_names_the_failed_check() {
    let account = fixture();
    let bob = user(&account, "bob");
    let (d, why) = ask(
        &account,
        Ask {
            principal: bob,
            scope: (Some("ops"), None),
            permission: "core_connector_view",
            resource: Some(("CONNECTOR", Some("git"))),
            subset: None,
        },
    );
    assert_eq!(
        d,
        Decision {
            allowed: false,
            reason: Reason::NoMatchingGrant
        }
    );
    assert_eq!(
        why,
        "no_matching_grant: permission `core_connector_view`, scope `acme/ops`, resource type `CONNECTOR`, identifier `git`"
    );
}

#[test]
fn disabled_user_is_denied_everything() {
    let account = fixture();
    let dave = user(&account, "dave");
    for permission in ["core_account_view", "iro_iroschedule_view"] {
        let (d, _) = ask(
            &account,
            Ask {
                principal: dave,
                scope: (None, None),
                permission,
                resource: None,
                subset: None,
            },
        );
        assert_eq!(d.reason, Reason::PrincipalDisabled, "{permission}");
    }
}

#[test]
fn accounts_are_isolated() {
    let account = fixture();
    let other = crate::rbac::test_fixture::compile_yaml(
        &crate::rbac::test_fixture::FIXTURE.replace("account: acme", "account: globex"),
    )
    .expect("compiles");
    // alice of globex is not alice of acme: only the account's own grants count.
    assert_eq!(account.account(), "acme");
    assert_eq!(other.account(), "globex");
    assert_eq!(other.scope_path(ScopeId::ACCOUNT), "globex");
}
