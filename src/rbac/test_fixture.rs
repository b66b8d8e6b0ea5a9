//! A small snapshot shared by the engine's unit tests.

use std::sync::Arc;

use crate::rbac::model::{AccountSnapshot, FileFormat};
use crate::rbac::{Catalog, CompiledAccount, SnapshotError, compile};

/// A compact account with one of everything the rules need.
pub const FIXTURE: &str = r#"
account: acme
version: 3
organizations:
  - {identifier: eng, projects: [payments, search]}
  - {identifier: ops, projects: [payments]}
users:
  - {identifier: alice}
  - {identifier: bob}
  - {identifier: dave, disabled: true}
user_groups:
  - {identifier: leads, scope: {org: eng}, users: [alice]}
  - {identifier: all, users: [alice, bob]}
service_accounts:
  - {identifier: bot, scope: {org: eng}}
roles:
  - {identifier: runner, scope: {org: eng, project: payments}, permissions: [core_pipeline_execute, core_environment_access]}
resource_groups:
  - identifier: picked
    scope: {org: eng, project: payments}
    included_scopes: [{filter: EXCLUDING_CHILD_SCOPES}]
    resource_filter:
      resources:
        - {resource_type: PIPELINE, identifiers: [deploy]}
        - {resource_type: ENVIRONMENT, attribute_filter: {attribute_name: type, attribute_values: [Production]}}
resources:
  - {scope: {org: eng, project: payments}, resource_type: ENVIRONMENT, identifier: prod, attributes: {type: Production}}
  - {scope: {org: eng, project: payments}, resource_type: ENVIRONMENT, identifier: qa, attributes: {type: QA}}
role_assignments:
  - {identifier: ra_leads, scope: {org: eng}, principal: {type: USER_GROUP, identifier: leads}, role: _organization_viewer, resource_group: _all_resources_including_child_scopes}
  - {identifier: ra_bob, scope: {org: eng, project: payments}, principal: {type: USER, identifier: bob}, role: runner, resource_group: picked}
  - {identifier: ra_all, scope: {org: eng, project: search}, principal: {type: USER_GROUP, identifier: all, scope_level: ACCOUNT}, role: _project_admin, resource_group: _all_project_level_resources}
  - {identifier: ra_bot, scope: {org: eng, project: payments}, principal: {type: SERVICE_ACCOUNT, identifier: bot, scope_level: ORGANIZATION}, role: _pipeline_executor, resource_group: _all_project_level_resources}
  - {identifier: ra_off, scope: {}, principal: {type: USER, identifier: bob}, role: _account_admin, resource_group: _all_resources_including_child_scopes, disabled: true}
  - {identifier: ra_dave, scope: {}, principal: {type: USER, identifier: dave}, role: _account_viewer, resource_group: _all_resources_including_child_scopes}
  - {identifier: ra_org_only, scope: {org: ops}, principal: {type: USER, identifier: alice}, role: _organization_admin, resource_group: _all_organization_level_resources}
"#;

/// Parses a snapshot from YAML.
pub fn snapshot(yaml: &str) -> AccountSnapshot {
    AccountSnapshot::parse(yaml, FileFormat::Yaml).expect("fixture parses")
}

/// Compiles a snapshot from YAML against the embedded catalog.
pub fn compile_yaml(yaml: &str) -> Result<CompiledAccount, SnapshotError> {
    let catalog = Arc::new(Catalog::embedded().expect("embedded catalog"));
    compile(&snapshot(yaml), catalog, None)
}

/// The fixture, compiled.
pub fn fixture() -> CompiledAccount {
    compile_yaml(FIXTURE).expect("fixture compiles")
}
