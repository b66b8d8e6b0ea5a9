//! Unit tests of `compile`: the fixture compiles, and each validation error is reported with its entry.

use std::sync::Arc;

use crate::rbac::test_fixture::{FIXTURE, compile_yaml, fixture, snapshot};
use crate::rbac::{Catalog, SnapshotError, ValidationError, compile};

fn errors(yaml: &str) -> Vec<String> {
    match compile_yaml(yaml) {
        Err(SnapshotError::Invalid { errors, .. }) => errors.iter().map(ToString::to_string).collect(),
        Err(other) => panic!("expected validation errors, got {other}"),
        Ok(_) => panic!("expected validation errors, the snapshot compiled"),
    }
}

/// The fixture with `extra` appended to its role assignments.
fn with_assignment(extra: &str) -> String {
    format!("{FIXTURE}  - {extra}\n")
}

#[test]
fn fixture_compiles_with_expanded_groups() {
    let account = fixture();
    let stats = account.stats();
    assert_eq!(stats.scopes, 6);
    assert_eq!(stats.assignments, 7);
    // ra_all expands to alice and bob; ra_off is disabled; the rest are single principals.
    assert_eq!(stats.expanded_grants, 7);
}

#[test]
fn unknown_permission_in_a_role() {
    let yaml = FIXTURE.replace(
        "permissions: [core_pipeline_execute,",
        "permissions: [core_pipline_execute,",
    );
    assert_eq!(
        errors(&yaml),
        ["role `runner` in `acme/eng/payments`: unknown permission `core_pipline_execute`"]
    );
}

#[test]
fn role_permission_not_allowed_at_its_level() {
    let yaml = FIXTURE.replace(
        "permissions: [core_pipeline_execute,",
        "permissions: [core_account_edit, core_pipeline_execute,",
    );
    assert_eq!(
        errors(&yaml),
        [
            "role `runner` in `acme/eng/payments`: permission `core_account_edit` is not allowed at PROJECT level"
        ]
    );
}

#[test]
fn unknown_role_and_custom_role_outside_its_scope() {
    let e = errors(&with_assignment(
        "{identifier: ra_x, scope: {org: eng}, principal: {type: USER, identifier: bob}, role: runner, resource_group: _all_resources_including_child_scopes}",
    ));
    assert_eq!(e, ["role assignment `ra_x` in `acme/eng`: unknown role `runner`"]);
}

#[test]
fn unknown_resource_group() {
    let e = errors(&with_assignment(
        "{identifier: ra_x, scope: {org: eng}, principal: {type: USER, identifier: bob}, role: _organization_viewer, resource_group: nope}",
    ));
    assert_eq!(
        e,
        ["role assignment `ra_x` in `acme/eng`: unknown resource group `nope`"]
    );
}

#[test]
fn managed_role_and_group_at_a_level_they_do_not_allow() {
    let e = errors(&with_assignment(
        "{identifier: ra_x, scope: {org: eng}, principal: {type: USER, identifier: bob}, role: _project_admin, resource_group: _all_project_level_resources}",
    ));
    assert_eq!(
        e,
        [
            "role assignment `ra_x` in `acme/eng`: managed role `_project_admin` cannot be assigned at ORGANIZATION level",
            "role assignment `ra_x` in `acme/eng`: managed resource group `_all_project_level_resources` cannot be assigned at ORGANIZATION level",
        ]
    );
}

#[test]
fn unknown_scope() {
    let e = errors(&with_assignment(
        "{identifier: ra_x, scope: {org: eng, project: nope}, principal: {type: USER, identifier: bob}, role: _project_admin, resource_group: _all_project_level_resources}",
    ));
    assert_eq!(
        e,
        ["role assignment `ra_x` in `acme/eng/nope`: unknown scope `acme/eng/nope`"]
    );
}

#[test]
fn unknown_principals() {
    let e = errors(&with_assignment(
        "{identifier: ra_x, scope: {org: eng, project: search}, principal: {type: USER_GROUP, identifier: leads}, role: _project_admin, resource_group: _all_project_level_resources}",
    ));
    assert_eq!(
        e,
        ["role assignment `ra_x` in `acme/eng/search`: unknown user group `acme/eng/search/leads`"]
    );
    let e = errors(&with_assignment(
        "{identifier: ra_y, scope: {org: ops}, principal: {type: SERVICE_ACCOUNT, identifier: bot, scope_level: ORGANIZATION}, role: _organization_admin, resource_group: _all_organization_level_resources}",
    ));
    assert_eq!(
        e,
        ["role assignment `ra_y` in `acme/ops`: unknown service account `acme/ops/bot`"]
    );
    let yaml = FIXTURE.replace("users: [alice, bob]}", "users: [alice, zed]}");
    assert_eq!(errors(&yaml), ["user group `all` in `acme`: unknown user `zed`"]);
}

#[test]
fn duplicate_identifiers_in_a_scope() {
    let yaml = FIXTURE.replace(
        "  - {identifier: bob}\n",
        "  - {identifier: bob}\n  - {identifier: bob}\n",
    );
    assert_eq!(
        errors(&yaml),
        ["user `bob` in `acme`: identifier is used more than once"]
    );
    let yaml = FIXTURE.replace(
        "projects: [payments, search]",
        "projects: [payments, search, payments]",
    );
    assert_eq!(
        errors(&yaml),
        ["project `payments` in `acme/eng`: identifier is used more than once"]
    );
    // The same identifier in sibling scopes is fine: ops/payments exists beside eng/payments.
    assert!(compile_yaml(FIXTURE).is_ok());
}

#[test]
fn version_must_not_go_backwards() {
    let catalog = Arc::new(Catalog::embedded().expect("catalog"));
    let snap = snapshot(FIXTURE);
    let err = compile(&snap, Arc::clone(&catalog), Some(4)).expect_err("older");
    match err {
        SnapshotError::Invalid { errors, .. } => assert_eq!(
            errors,
            [ValidationError::VersionBackwards {
                account: "acme".into(),
                version: 3,
                current: 4
            }]
        ),
        other => panic!("{other}"),
    }
    assert!(
        compile(&snap, Arc::clone(&catalog), Some(3)).is_ok(),
        "the same version is not backwards"
    );
}

#[test]
fn every_error_is_reported_at_once() {
    let yaml = FIXTURE
        .replace(
            "permissions: [core_pipeline_execute,",
            "permissions: [core_nope_view, core_pipeline_execute,",
        )
        .replace("users: [alice, bob]}", "users: [alice, zed]}");
    let e = errors(&yaml);
    assert_eq!(e.len(), 2, "{e:?}");
}

#[test]
fn unknown_fields_are_rejected_when_parsing() {
    let yaml = FIXTURE.replace(
        "  - {identifier: bob}\n",
        "  - {identifier: bob, nickname: bobby}\n",
    );
    let err = crate::rbac::model::AccountSnapshot::parse(&yaml, crate::rbac::model::FileFormat::Yaml)
        .expect_err("unknown field");
    assert!(err.to_string().contains("unknown field `nickname`"), "{err}");
    let err = crate::rbac::model::AccountSnapshot::parse(
        "account: a\nrole_assignments: [{principal: {type: ROBOT}}]",
        crate::rbac::model::FileFormat::Yaml,
    )
    .expect_err("unknown enum");
    assert!(
        err.to_string().contains("unknown principal_type `ROBOT`"),
        "{err}"
    );
}

#[test]
fn malformed_tokens_are_named() {
    let yaml = format!(
        "{FIXTURE}api_keys:\n  - identifier: k\n    parent: {{type: USER, identifier: bob}}\n    tokens:\n      - {{identifier: t, id: tok1, secret_hash: 'md5:abc', valid_from: 2026-01-01T00:00:00Z, valid_to: yesterday}}\n"
    );
    let e = errors(&yaml);
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].starts_with("token `t` of api key `k`: `secret_hash` must be"),
        "{e:?}"
    );
    assert!(
        e[1].contains("`valid_to` is not an RFC 3339 timestamp: `yesterday`"),
        "{e:?}"
    );
}

#[test]
fn resource_group_scope_outside_its_own_and_unknown_type() {
    let yaml = FIXTURE
        .replace(
            "included_scopes: [{filter: EXCLUDING_CHILD_SCOPES}]",
            "included_scopes: [{filter: EXCLUDING_CHILD_SCOPES, scope: {org: ops}}]",
        )
        .replace(
            "resource_type: PIPELINE, identifiers",
            "resource_type: PIPELNE, identifiers",
        );
    let e = errors(&yaml);
    assert_eq!(
        e,
        [
            "resource group `picked` in `acme/eng/payments`: included scope `acme/ops` is not the group's scope or below it",
            "resource group `picked` in `acme/eng/payments`: unknown resource type `PIPELNE`",
        ]
    );
}

#[test]
fn principal_identifiers_a_header_cannot_carry_are_refused() {
    let yaml = FIXTURE
        .replace("  - {identifier: bob}\n", "  - {identifier: \"b\u{f6}b\"}\n")
        .replace(
            "{identifier: bot, scope: {org: eng}}",
            "{identifier: \"bot\\x7f\", scope: {org: eng}}",
        );
    let e = errors(&yaml);
    assert!(
        e.iter()
            .any(|m| m.contains("user `b\u{f6}b`") && m.contains("visible ASCII")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|m| m.contains("service account `bot\u{7f}`") && m.contains("visible ASCII")),
        "{e:?}"
    );
}
