//! The fixed universe the generator draws from: one account, two orgs of two projects (names that
//! collide across levels on purpose), a few users, principals, roles and resource groups, and a
//! pool of permissions and resource types of every level; plus scope arithmetic over its indexes.

use scopegate::rbac::model::Scope;

use super::catalog;

pub(crate) const ACCOUNT: &str = "acme";
/// Two orgs, two projects each; `web` exists in both orgs and `ops/eng` is named like the org `eng`.
pub(crate) const ORGS: [(&str, [&str; 2]); 2] = [("eng", ["web", "api"]), ("ops", ["web", "eng"])];
/// Every scope as (org, project); index 0 is the account.
pub(crate) const SCOPES: [(&str, &str); 7] = [
    ("", ""),
    ("eng", ""),
    ("eng", "web"),
    ("eng", "api"),
    ("ops", ""),
    ("ops", "web"),
    ("ops", "eng"),
];
pub(crate) const USERS: [&str; 4] = ["ann", "bob", "cyd", "dee"];
pub(crate) const GROUP_NAMES: [&str; 2] = ["sre", "dev"];
pub(crate) const SA_NAMES: [&str; 2] = ["bot", "ci"];
pub(crate) const ROLE_NAMES: [&str; 2] = ["runner", "reader"];
pub(crate) const RG_NAMES: [&str; 2] = ["rg_a", "rg_b"];
/// Permissions of different levels and types (see data/catalog.yaml).
pub(crate) const PERMISSIONS: [&str; 13] = [
    "core_project_view",      // PROJECT, every level
    "core_organization_view", // ORGANIZATION, account + org
    "core_pipeline_view",     // PIPELINE
    "core_pipeline_execute",  // PIPELINE
    "core_secret_view",       // SECRET, account only
    "core_secret_access",     // SECRET, every level
    "core_connector_view",    // CONNECTOR
    "iro_iroschedule_view",   // IROSCHEDULE, implicit
    "core_account_view",      // ACCOUNT, account only
    "iro_runbook_trigger",    // RUNBOOK (in _iro_user)
    "iro_runbook_delete",     // RUNBOOK (not in _iro_user)
    "core_project_edit",      // PROJECT
    "core_organization_edit", // ORGANIZATION, account + org
];
pub(crate) const RESOURCE_TYPES: [&str; 8] = [
    "PIPELINE",
    "SECRET",
    "CONNECTOR",
    "PROJECT",
    "ORGANIZATION",
    "RUNBOOK",
    "ACCOUNT",
    "IROSCHEDULE",
];
/// Resource identifiers, including names of orgs and projects.
pub(crate) const RESOURCE_IDS: [&str; 6] = ["p1", "p2", "web", "eng", "ops", "api"];
pub(crate) const ENV_VALUES: [&str; 2] = ["prod", "dev"];
/// Managed roles by the levels docs/model.md lets them be assigned at (0 account, 1 org, 2 project).
pub(crate) const MANAGED_ROLES: [(&str, [bool; 3]); 9] = [
    ("_account_viewer", [true, false, false]),
    ("_account_admin", [true, false, false]),
    ("_organization_admin", [false, true, false]),
    ("_organization_viewer", [false, true, false]),
    ("_project_viewer", [false, false, true]),
    ("_project_admin", [false, false, true]),
    ("_pipeline_executor", [false, false, true]),
    ("_iro_user", [true, true, true]),
    ("_iro_viewer", [true, true, true]),
];
pub(crate) const MANAGED_GROUPS: [(&str, [bool; 3]); 4] = [
    ("_all_account_level_resources", [true, false, false]),
    ("_all_organization_level_resources", [false, true, false]),
    ("_all_project_level_resources", [false, false, true]),
    ("_all_resources_including_child_scopes", [true, true, false]),
];

pub(crate) fn level_index(scope: usize) -> usize {
    let (org, project) = SCOPES[scope];
    match (org.is_empty(), project.is_empty()) {
        (true, _) => 0,
        (false, true) => 1,
        (false, false) => 2,
    }
}

/// `a ⊑ b` over `SCOPES` indexes.
pub(crate) fn ancestor_or_self(a: usize, b: usize) -> bool {
    let (ao, ap) = SCOPES[a];
    let (bo, bp) = SCOPES[b];
    ao.is_empty() || (ao == bo && (ap.is_empty() || ap == bp))
}

pub(crate) fn descendants_or_self(a: usize) -> Vec<usize> {
    (0..SCOPES.len()).filter(|b| ancestor_or_self(a, *b)).collect()
}

pub(crate) fn scope(index: usize) -> Scope {
    let (org, project) = SCOPES[index];
    Scope {
        org: org.to_owned(),
        project: project.to_owned(),
    }
}

pub(crate) fn non_empty(value: &str) -> Option<&str> {
    (!value.is_empty()).then_some(value)
}

pub(crate) fn permission_allowed_at(permission: &str, level: usize) -> bool {
    let catalog = catalog();
    let id = catalog
        .permission_id(permission)
        .expect("pool permission in catalog");
    let levels = catalog.permission(id).expect("permission").levels;
    levels.contains(scopegate::rbac::Level::ALL[level])
}

pub(crate) fn pick<T: Copy>(items: &[T], seed: u8) -> Option<T> {
    (!items.is_empty()).then(|| items[usize::from(seed) % items.len()])
}

/// The scope a seed picks.
pub(crate) fn scope_index(seed: u8) -> usize {
    usize::from(seed) % SCOPES.len()
}

/// The index of a scope of the universe.
pub(crate) fn scope_index_of(wanted: &Scope) -> usize {
    SCOPES
        .iter()
        .position(|(org, project)| wanted.org == *org && wanted.project == *project)
        .expect("a generated scope")
}
