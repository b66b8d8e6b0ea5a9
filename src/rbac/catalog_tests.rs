//! Unit tests of `Catalog`: the embedded catalog's permissions, levels, resource types and managed roles,
//! and every error of a bad catalog.

use super::*;

fn catalog() -> Catalog {
    Catalog::embedded().expect("embedded catalog is valid")
}

fn role(catalog: &Catalog, name: &str) -> Vec<String> {
    let role = catalog.managed_role(name).expect("managed role exists");
    role.permissions
        .iter()
        .map(|p| catalog.permission_name(p).to_owned())
        .collect()
}

#[test]
fn embedded_catalog_has_200_api_and_39_ai_sre_permissions() {
    let catalog = catalog();
    assert_eq!(catalog.len(), 239);
    let iro = catalog
        .permissions()
        .iter()
        .filter(|p| p.id.starts_with("iro_"))
        .count();
    assert_eq!(iro, 39);
}

#[test]
fn glued_seed_rows_are_split_into_exact_ids() {
    let catalog = catalog();
    for id in [
        "core_environment_view",
        "ff_environment_apiKeyView",
        "ff_environment_apiKeyCreate",
        "ff_environment_targetGroupEdit",
        "ccm_costCategory_edit",
        "ccm_autoStoppingRule_view",
        "ccm_loadBalancer_delete",
        "core_governancePolicySets_evaluate",
        "code_repository_push",
        "iac_workspace_accessstate",
        "gitops_application_sync",
        "core_serviceaccount_manageapikey",
        "idp_plugin_toggle",
        "iro_runbook_trigger",
        "iro_iroworkspace_config",
    ] {
        assert!(catalog.permission_id(id).is_some(), "missing `{id}`");
    }
    for glued in [
        "core_environment_viewView",
        "ff_environment_apiKeyViewView",
        "ccm_costCategory_editCreate",
    ] {
        assert!(
            catalog.permission_id(glued).is_none(),
            "glued `{glued}` leaked in"
        );
    }
}

#[test]
fn levels_follow_the_seed() {
    let catalog = catalog();
    let levels = |id: &str| {
        catalog
            .permission(catalog.permission_id(id).expect(id))
            .expect(id)
            .levels
    };
    assert_eq!(levels("core_account_edit"), LevelSet::only(Level::Account));
    assert_eq!(levels("core_secret_view"), LevelSet::only(Level::Account));
    assert_eq!(levels("core_secret_edit"), LevelSet::ALL);
    assert_eq!(levels("core_serviceaccount_edit"), LevelSet::only(Level::Account));
    assert_eq!(levels("core_serviceaccount_manageapikey"), LevelSet::ALL);
    assert_eq!(levels("ccm_budget_view"), LevelSet::only(Level::Account));
    assert_eq!(levels("idp_layout_edit"), LevelSet::only(Level::Account));
    let account_or_org = LevelSet::only(Level::Account).with(Level::Organization);
    assert_eq!(levels("core_organization_create"), account_or_org);
    assert_eq!(levels("core_dashboards_view"), account_or_org);
    assert_eq!(levels("core_pipeline_execute"), LevelSet::ALL);
}

#[test]
fn resource_types_use_harness_names() {
    let catalog = catalog();
    let kind = |id: &str| {
        let p = catalog
            .permission(catalog.permission_id(id).expect(id))
            .expect(id);
        catalog.resource_type_name(p.resource_type).to_owned()
    };
    assert_eq!(kind("core_pipeline_execute"), "PIPELINE");
    assert_eq!(kind("code_repository_push"), "CODE_REPOSITORY");
    assert_eq!(kind("core_environmentgroup_view"), "ENVIRONMENT_GROUP");
    assert_eq!(kind("core_project_view"), "PROJECT");
    assert_eq!(kind("iro_runbook_trigger"), "RUNBOOK");
}

#[test]
fn only_three_ai_sre_views_are_implicit() {
    let implicit: Vec<_> = catalog()
        .implicit_permissions()
        .map(|p| p.id.to_string())
        .collect();
    assert_eq!(
        implicit,
        [
            "iro_iroescalationpolicy_view",
            "iro_iroschedule_view",
            "iro_iroscheduleoverride_view"
        ]
    );
}

#[test]
fn admin_and_viewer_roles_follow_levels() {
    let catalog = catalog();
    let project_admin = role(&catalog, "_project_admin");
    assert!(project_admin.contains(&"core_pipeline_execute".to_owned()));
    assert!(!project_admin.contains(&"core_account_view".to_owned()));
    assert!(!project_admin.contains(&"core_organization_view".to_owned()));
    let account_admin = role(&catalog, "_account_admin");
    assert_eq!(account_admin.len(), 239);
    let org_viewer = role(&catalog, "_organization_viewer");
    assert!(org_viewer.iter().all(|p| p.ends_with("_view")));
    assert!(org_viewer.contains(&"core_organization_view".to_owned()));
    assert!(!org_viewer.contains(&"core_secret_view".to_owned()));
}

#[test]
fn pipeline_executor_is_derived_and_project_only() {
    let catalog = catalog();
    let executor = role(&catalog, "_pipeline_executor");
    for p in [
        "core_pipeline_execute",
        "core_template_copy",
        "core_connector_access",
        "core_secret_access",
    ] {
        assert!(executor.contains(&p.to_owned()), "missing {p}");
    }
    // core_secret_view is account-only, so a project role cannot hold it.
    assert!(!executor.contains(&"core_secret_view".to_owned()));
    assert!(!executor.contains(&"core_pipeline_edit".to_owned()));
}

#[test]
fn ai_sre_role_patterns() {
    let catalog = catalog();
    let user = role(&catalog, "_iro_user");
    assert!(user.contains(&"iro_runbook_trigger".to_owned()));
    assert!(user.contains(&"iro_incident_sendstatusupdate".to_owned()));
    assert!(
        !user
            .iter()
            .any(|p| p.ends_with("_delete") || p.ends_with("_config"))
    );
    assert_eq!(role(&catalog, "_iro_admin").len(), 39);
    assert!(role(&catalog, "_iro_viewer").iter().all(|p| p.ends_with("_view")));
}

#[test]
fn a_bad_catalog_lists_every_error() {
    let err = Catalog::from_yaml(
        "permissions:\n  - {id: core_x_view, resource_type: X, levels: [PLANET]}\n  - {id: bad, resource_type: Y, levels: []}\n  - {id: core_x_view, resource_type: X, levels: [ACCOUNT]}\n",
    )
    .expect_err("invalid");
    let text = err.to_string();
    assert!(text.contains("unknown level `PLANET`"), "{text}");
    assert!(text.contains("`bad`: not of the form"), "{text}");
    assert!(text.contains("`core_x_view`: listed more than once"), "{text}");
}
