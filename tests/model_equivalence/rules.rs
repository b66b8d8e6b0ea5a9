//! Deterministic cases: each pins one rule of docs/model.md on both the engine and the naive model.

use scopegate::rbac::compile;
use scopegate::rbac::model::{AccountSnapshot, FileFormat, ScopeLevel};

use super::catalog;
use super::naive::NaivePrincipal;
use super::query::Query;

/// The fixed universe as YAML, followed by the sections a case adds.
fn snapshot_with(sections: &str) -> AccountSnapshot {
    let yaml = format!(
        "account: acme
version: 1
organizations:
  - {{identifier: eng, projects: [web, api]}}
  - {{identifier: ops, projects: [web, eng]}}
users:
  - {{identifier: ann, email: ann@acme.example}}
  - {{identifier: bob, email: bob@acme.example, disabled: true}}
{sections}"
    );
    AccountSnapshot::parse(&yaml, FileFormat::Yaml).expect("test snapshot parses")
}

fn user(name: &str) -> NaivePrincipal {
    NaivePrincipal::User(name.to_owned())
}

/// A check of `permission` on `resource_type`[/`resource_id`] in `scope` (`""`, `org` or `org/project`).
fn query(
    principal: &NaivePrincipal,
    scope: &str,
    permission: &str,
    resource_type: &str,
    resource_id: Option<&str>,
) -> Query {
    let mut parts = scope.split('/').filter(|p| !p.is_empty()).map(str::to_owned);
    Query {
        principal: principal.clone(),
        token: None,
        org: parts.next(),
        project: parts.next(),
        permission: permission.to_owned(),
        resource_type: resource_type.to_owned(),
        resource_id: resource_id.map(str::to_owned),
    }
}

/// Asserts that the engine and the naive model both answer `expected`.
#[track_caller]
fn assert_decision(snapshot: &AccountSnapshot, query: &Query, expected: bool) {
    let compiled = compile(snapshot, catalog(), None).unwrap_or_else(|e| panic!("{e}"));
    let engine = query.engine(&compiled);
    let naive = query.naive(snapshot);
    assert_eq!(naive, expected, "naive model, {query:?}");
    assert_eq!(
        engine.allowed, expected,
        "engine ({:?}), {query:?}",
        engine.reason
    );
}

#[test]
fn decision_rule_1_scope_level_comes_before_any_grant() {
    let snapshot = snapshot_with(
        "role_assignments:
  - {identifier: ra, principal: {type: USER, identifier: ann}, role: _account_admin,
     resource_group: _all_resources_including_child_scopes}",
    );
    let ann = user("ann");
    // core_secret_view is account-only: granted at the account, denied below it despite INCLUDING.
    assert_decision(
        &snapshot,
        &query(&ann, "", "core_secret_view", "SECRET", None),
        true,
    );
    assert_decision(
        &snapshot,
        &query(&ann, "eng", "core_secret_view", "SECRET", None),
        false,
    );
    // core_organization_view is account + org: denied in a project, also as a scope-typed resource.
    assert_decision(
        &snapshot,
        &query(
            &ann,
            "eng/web",
            "core_organization_view",
            "ORGANIZATION",
            Some("eng"),
        ),
        false,
    );
    assert_decision(
        &snapshot,
        &query(&ann, "", "core_organization_view", "ORGANIZATION", Some("eng")),
        true,
    );
}

#[test]
fn decision_rules_2_and_3_token_subset_applies_before_implicit_permissions() {
    let snapshot = snapshot_with("");
    let ann = user("ann");
    let mut check = query(&ann, "ops/eng", "iro_iroschedule_view", "IROSCHEDULE", Some("s1"));
    assert_decision(&snapshot, &check, true);
    check.token = Some(vec!["core_pipeline_view"]);
    assert_decision(&snapshot, &check, false);
    check.token = Some(vec!["core_pipeline_view", "iro_iroschedule_view"]);
    assert_decision(&snapshot, &check, true);
}

#[test]
fn principals_disabled_user_is_denied_even_implicit_permissions() {
    let snapshot = snapshot_with(
        "role_assignments:
  - {identifier: ra, principal: {type: USER, identifier: bob}, role: _account_admin,
     resource_group: _all_resources_including_child_scopes}",
    );
    let bob = user("bob");
    assert_decision(
        &snapshot,
        &query(&bob, "", "iro_iroschedule_view", "IROSCHEDULE", None),
        false,
    );
    assert_decision(
        &snapshot,
        &query(&bob, "", "core_account_view", "ACCOUNT", None),
        false,
    );
}

#[test]
fn resource_groups_included_scope_without_scope_is_the_assignment_scope() {
    let snapshot = snapshot_with(
        "roles:
  - {identifier: runner, scope: {org: eng}, permissions: [core_pipeline_view]}
resource_groups:
  - identifier: here
    scope: {org: eng}
    included_scopes: [{filter: EXCLUDING_CHILD_SCOPES}]
    resource_filter: {include_all_resources: true}
  - identifier: below
    scope: {org: eng}
    included_scopes: [{filter: INCLUDING_CHILD_SCOPES, scope: {org: eng, project: web}}]
    resource_filter: {include_all_resources: true}
role_assignments:
  - {identifier: ra1, scope: {org: eng}, principal: {type: USER, identifier: ann}, role: runner,
     resource_group: here}",
    );
    let ann = user("ann");
    // EXCLUDING, no scope: the org itself, not its projects, not the other org.
    assert_decision(
        &snapshot,
        &query(&ann, "eng", "core_pipeline_view", "PIPELINE", None),
        true,
    );
    assert_decision(
        &snapshot,
        &query(&ann, "eng/web", "core_pipeline_view", "PIPELINE", None),
        false,
    );
    assert_decision(
        &snapshot,
        &query(&ann, "ops", "core_pipeline_view", "PIPELINE", None),
        false,
    );

    let mut snapshot = snapshot;
    snapshot.role_assignments[0].resource_group = "below".to_owned();
    // INCLUDING eng/web: that project only, not the org the assignment is made in nor ops/web.
    assert_decision(
        &snapshot,
        &query(&ann, "eng/web", "core_pipeline_view", "PIPELINE", None),
        true,
    );
    assert_decision(
        &snapshot,
        &query(&ann, "eng", "core_pipeline_view", "PIPELINE", None),
        false,
    );
    assert_decision(
        &snapshot,
        &query(&ann, "eng/api", "core_pipeline_view", "PIPELINE", None),
        false,
    );
    assert_decision(
        &snapshot,
        &query(&ann, "ops/web", "core_pipeline_view", "PIPELINE", None),
        false,
    );
}

#[test]
fn resource_groups_identifier_selectors_do_not_cover_create_or_list() {
    let snapshot = snapshot_with(
        "roles:
  - {identifier: reader, scope: {org: eng, project: web}, permissions: [core_pipeline_view, core_connector_view]}
resource_groups:
  - identifier: picked
    scope: {org: eng, project: web}
    included_scopes: [{filter: EXCLUDING_CHILD_SCOPES}]
    resource_filter:
      resources:
        - {resource_type: PIPELINE, identifiers: [p1]}
        - {resource_type: CONNECTOR}
role_assignments:
  - {identifier: ra, scope: {org: eng, project: web}, principal: {type: USER, identifier: ann},
     role: reader, resource_group: picked}",
    );
    let ann = user("ann");
    let at = "eng/web";
    assert_decision(
        &snapshot,
        &query(&ann, at, "core_pipeline_view", "PIPELINE", Some("p1")),
        true,
    );
    assert_decision(
        &snapshot,
        &query(&ann, at, "core_pipeline_view", "PIPELINE", Some("p2")),
        false,
    );
    assert_decision(
        &snapshot,
        &query(&ann, at, "core_pipeline_view", "PIPELINE", None),
        false,
    );
    // A type-wide entry covers any identifier and none; it says nothing about other types.
    assert_decision(
        &snapshot,
        &query(&ann, at, "core_connector_view", "CONNECTOR", None),
        true,
    );
    assert_decision(
        &snapshot,
        &query(&ann, at, "core_connector_view", "CONNECTOR", Some("c")),
        true,
    );
    assert_decision(
        &snapshot,
        &query(&ann, at, "core_pipeline_view", "CONNECTOR", Some("p2")),
        true,
    );
    assert_decision(
        &snapshot,
        &query(&ann, at, "core_connector_view", "PIPELINE", Some("c")),
        false,
    );
}

#[test]
fn resource_groups_attribute_filters_read_the_resource_in_the_checked_scope() {
    let snapshot = snapshot_with(
        "roles:
  - {identifier: deployer, scope: {org: eng}, permissions: [core_pipeline_execute]}
resource_groups:
  - identifier: prod
    scope: {org: eng}
    included_scopes: [{filter: INCLUDING_CHILD_SCOPES}]
    resource_filter:
      resources:
        - resource_type: PIPELINE
          attribute_filter: {attribute_name: env, attribute_values: [prod]}
resources:
  - {scope: {org: eng}, resource_type: PIPELINE, identifier: p1, attributes: {env: prod}}
  - {scope: {org: eng, project: web}, resource_type: PIPELINE, identifier: p1, attributes: {env: dev}}
  - {scope: {org: eng, project: api}, resource_type: CONNECTOR, identifier: p2, attributes: {env: prod}}
role_assignments:
  - {identifier: ra, scope: {org: eng}, principal: {type: USER, identifier: ann}, role: deployer,
     resource_group: prod}",
    );
    let ann = user("ann");
    assert_decision(
        &snapshot,
        &query(&ann, "eng", "core_pipeline_execute", "PIPELINE", Some("p1")),
        true,
    );
    // Same identifier in a project, recorded as dev: the org's record does not count there.
    assert_decision(
        &snapshot,
        &query(&ann, "eng/web", "core_pipeline_execute", "PIPELINE", Some("p1")),
        false,
    );
    // Not recorded at all in eng/api (only a CONNECTOR p2 is): no attributes, not covered.
    assert_decision(
        &snapshot,
        &query(&ann, "eng/api", "core_pipeline_execute", "PIPELINE", Some("p1")),
        false,
    );
    assert_decision(
        &snapshot,
        &query(&ann, "eng/api", "core_pipeline_execute", "PIPELINE", Some("p2")),
        false,
    );
    // No identifier: an attribute filter never covers create or list.
    assert_decision(
        &snapshot,
        &query(&ann, "eng", "core_pipeline_execute", "PIPELINE", None),
        false,
    );
}

#[test]
fn principals_user_group_inherited_through_scope_level() {
    let snapshot = snapshot_with(
        "user_groups:
  - {identifier: sre, users: [ann]}
  - {identifier: sre, scope: {org: eng, project: web}, users: []}
role_assignments:
  - {identifier: inherited, scope: {org: eng, project: web},
     principal: {type: USER_GROUP, identifier: sre, scope_level: ACCOUNT},
     role: _pipeline_executor, resource_group: _all_project_level_resources}
  - {identifier: switched_off, scope: {org: eng, project: api},
     principal: {type: USER_GROUP, identifier: sre, scope_level: ACCOUNT},
     role: _pipeline_executor, resource_group: _all_project_level_resources, disabled: true}",
    );
    let ann = user("ann");
    assert_decision(
        &snapshot,
        &query(&ann, "eng/web", "core_pipeline_execute", "PIPELINE", None),
        true,
    );
    assert_decision(
        &snapshot,
        &query(&ann, "ops/web", "core_pipeline_execute", "PIPELINE", None),
        false,
    );
    // Role assignments: `disabled: true` switches one assignment off.
    assert_decision(
        &snapshot,
        &query(&ann, "eng/api", "core_pipeline_execute", "PIPELINE", None),
        false,
    );

    // Without scope_level the assignment names the (empty) group living in eng/web.
    let mut snapshot = snapshot;
    let principal = snapshot.role_assignments[0]
        .principal
        .as_mut()
        .expect("principal");
    principal.scope_level = ScopeLevel::Unspecified as i32;
    assert_decision(
        &snapshot,
        &query(&ann, "eng/web", "core_pipeline_execute", "PIPELINE", None),
        false,
    );
}

#[test]
fn principals_service_account_bound_below_the_scope_it_lives_in() {
    let snapshot = snapshot_with(
        "service_accounts:
  - {identifier: bot, scope: {org: eng}}
  - {identifier: bot, scope: {org: ops}}
role_assignments:
  - {identifier: ra, scope: {org: eng, project: web},
     principal: {type: SERVICE_ACCOUNT, identifier: bot, scope_level: ORGANIZATION},
     role: _pipeline_executor, resource_group: _all_project_level_resources}",
    );
    let eng_bot = NaivePrincipal::ServiceAccount {
        identifier: "bot".to_owned(),
        org: Some("eng".to_owned()),
        project: None,
    };
    let ops_bot = NaivePrincipal::ServiceAccount {
        identifier: "bot".to_owned(),
        org: Some("ops".to_owned()),
        project: None,
    };
    let execute = |who, at| query(who, at, "core_pipeline_execute", "PIPELINE", Some("p1"));
    assert_decision(&snapshot, &execute(&eng_bot, "eng/web"), true);
    assert_decision(&snapshot, &execute(&eng_bot, "eng"), false);
    assert_decision(&snapshot, &execute(&eng_bot, "eng/api"), false);
    assert_decision(&snapshot, &execute(&ops_bot, "eng/web"), false);
}

#[test]
fn decision_scope_typed_resource_is_checked_in_the_child_scope() {
    let snapshot = snapshot_with(
        "role_assignments:
  - {identifier: ra, scope: {org: eng, project: web}, principal: {type: USER, identifier: ann},
     role: _project_viewer, resource_group: _all_project_level_resources}",
    );
    let ann = user("ann");
    // "a _project_admin of project p may view project p": the project, seen from its org.
    assert_decision(
        &snapshot,
        &query(&ann, "eng", "core_project_view", "PROJECT", Some("web")),
        true,
    );
    // ... not another org's project of the same name, nor a sibling, nor the org itself.
    assert_decision(
        &snapshot,
        &query(&ann, "ops", "core_project_view", "PROJECT", Some("web")),
        false,
    );
    assert_decision(
        &snapshot,
        &query(&ann, "eng", "core_project_view", "PROJECT", Some("api")),
        false,
    );
    assert_decision(
        &snapshot,
        &query(&ann, "eng", "core_project_view", "PROJECT", None),
        false,
    );
    assert_decision(
        &snapshot,
        &query(&ann, "", "core_organization_view", "ORGANIZATION", Some("eng")),
        false,
    );
}

/// docs/model.md "The decision", scope-typed resources: the child `S/I` is checked because the resource
/// *is* that scope, so a PROJECT can only be the project `S/I` of an organization `S`, and an
/// ORGANIZATION only the organization `I` of the account: an org admin of `eng` is not granted
/// `core_project_edit` on "PROJECT eng" at the account (the org `eng` is no project), and a project
/// admin of `ops/eng` is not granted a check on "ORGANIZATION eng" in org `ops`.
#[test]
fn scope_typed_resource_is_a_child_of_the_matching_level() {
    let snapshot = snapshot_with(
        "role_assignments:
  - {identifier: org_admin, scope: {org: eng}, principal: {type: USER, identifier: ann},
     role: _organization_admin, resource_group: _all_organization_level_resources}
  - {identifier: project_admin, scope: {org: ops, project: eng}, principal: {type: USER, identifier: ann},
     role: _project_admin, resource_group: _all_project_level_resources}",
    );
    let ann = user("ann");
    assert_decision(
        &snapshot,
        &query(&ann, "", "core_project_edit", "PROJECT", Some("eng")),
        false,
    );
    assert_decision(
        &snapshot,
        &query(&ann, "ops", "core_project_view", "ORGANIZATION", Some("eng")),
        false,
    );
}
