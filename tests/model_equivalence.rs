//! Holds the compiled engine (`rbac::compile` + `rbac::decide`) against a deliberately naive model of
//! model.md (`tests/naive`): random valid snapshots, random checks, the two must agree on every
//! decision. Plus deterministic cases for the tricky rules, each naming the model.md rule it pins.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod naive;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use scopegate::rbac::model::{
    AccountSnapshot, AttributeFilter, FileFormat, IncludedScope, Organization, PrincipalRef, PrincipalType,
    Resource, ResourceFilter, ResourceGroup, ResourceSelector, Role, RoleAssignment, Scope, ScopeFilter,
    ScopeLevel, ServiceAccount, User, UserGroup,
};
use scopegate::rbac::{
    Catalog, Check, CompiledAccount, Decision, PermissionSet, Principal, Reason, compile, decide,
};

use naive::{NaivePrincipal, naive_decide};

fn catalog() -> Arc<Catalog> {
    static CATALOG: OnceLock<Arc<Catalog>> = OnceLock::new();
    Arc::clone(CATALOG.get_or_init(|| Arc::new(Catalog::embedded().expect("embedded catalog"))))
}

// ---------------------------------------------------------------------------------------------
// The fixed universe the generator draws from.

const ACCOUNT: &str = "acme";
/// Two orgs, two projects each; `web` exists in both orgs and `ops/eng` is named like the org `eng`.
const ORGS: [(&str, [&str; 2]); 2] = [("eng", ["web", "api"]), ("ops", ["web", "eng"])];
/// Every scope as (org, project); index 0 is the account.
const SCOPES: [(&str, &str); 7] = [
    ("", ""),
    ("eng", ""),
    ("eng", "web"),
    ("eng", "api"),
    ("ops", ""),
    ("ops", "web"),
    ("ops", "eng"),
];
const USERS: [&str; 4] = ["ann", "bob", "cyd", "dee"];
const GROUP_NAMES: [&str; 2] = ["sre", "dev"];
const SA_NAMES: [&str; 2] = ["bot", "ci"];
const ROLE_NAMES: [&str; 2] = ["runner", "reader"];
const RG_NAMES: [&str; 2] = ["rg_a", "rg_b"];
/// Permissions of different levels and types (see data/catalog.yaml).
const PERMISSIONS: [&str; 13] = [
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
const RESOURCE_TYPES: [&str; 8] = [
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
const RESOURCE_IDS: [&str; 6] = ["p1", "p2", "web", "eng", "ops", "api"];
const ENV_VALUES: [&str; 2] = ["prod", "dev"];
/// Managed roles by the levels model.md lets them be assigned at (0 account, 1 org, 2 project).
const MANAGED_ROLES: [(&str, [bool; 3]); 9] = [
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
const MANAGED_GROUPS: [(&str, [bool; 3]); 4] = [
    ("_all_account_level_resources", [true, false, false]),
    ("_all_organization_level_resources", [false, true, false]),
    ("_all_project_level_resources", [false, false, true]),
    ("_all_resources_including_child_scopes", [true, true, false]),
];

fn level_index(scope: usize) -> usize {
    let (org, project) = SCOPES[scope];
    match (org.is_empty(), project.is_empty()) {
        (true, _) => 0,
        (false, true) => 1,
        (false, false) => 2,
    }
}

/// `a ⊑ b` over `SCOPES` indexes.
fn ancestor_or_self(a: usize, b: usize) -> bool {
    let (ao, ap) = SCOPES[a];
    let (bo, bp) = SCOPES[b];
    ao.is_empty() || (ao == bo && (ap.is_empty() || ap == bp))
}

fn descendants_or_self(a: usize) -> Vec<usize> {
    (0..SCOPES.len()).filter(|b| ancestor_or_self(a, *b)).collect()
}

fn scope(index: usize) -> Scope {
    let (org, project) = SCOPES[index];
    Scope {
        org: org.to_owned(),
        project: project.to_owned(),
    }
}

fn non_empty(value: &str) -> Option<&str> {
    (!value.is_empty()).then_some(value)
}

fn permission_allowed_at(permission: &str, level: usize) -> bool {
    let catalog = catalog();
    let id = catalog
        .permission_id(permission)
        .expect("pool permission in catalog");
    let levels = catalog.permission(id).expect("permission").levels;
    levels.contains(scopegate::rbac::Level::ALL[level])
}

fn pick<T: Copy>(items: &[T], seed: u8) -> Option<T> {
    (!items.is_empty()).then(|| items[usize::from(seed) % items.len()])
}

// ---------------------------------------------------------------------------------------------
// What proptest generates: small integers, turned into a valid snapshot by `build_snapshot`.

#[derive(Debug, Clone)]
struct Spec {
    disabled_users: [bool; 4],
    groups: Vec<(u8, u8, u8)>,       // name, scope, member bitmask
    service_accounts: Vec<(u8, u8)>, // name, scope
    roles: Vec<(u8, u8, u16)>,       // name, scope, permission bitmask
    resource_groups: Vec<GroupSpec>,
    resources: Vec<(u8, u8, u8, u8)>, // scope, type, id, env value (>= 2: no `env` attribute)
    assignments: Vec<AssignmentSpec>,
    checks: Vec<CheckSpec>,
}

#[derive(Debug, Clone)]
struct GroupSpec {
    name: u8,
    scope: u8,
    /// (including, explicit scope among the group's scope and below)
    included: Vec<(bool, Option<u8>)>,
    filter: FilterSpec,
}

#[derive(Debug, Clone)]
enum FilterSpec {
    Missing,
    IncludeAll,
    /// (type, kind: 0 type-wide / 1 identifiers / 2 attribute `env` / 3 attribute `tier`, id or value bitmask)
    Selectors(Vec<(u8, u8, u8)>),
}

#[derive(Debug, Clone)]
struct AssignmentSpec {
    /// 0..=1 user, 2 user group, 3 service account
    kind: u8,
    principal: u8,
    scope: u8,
    /// For a group or service account living at the assignment's scope: name the level explicitly.
    explicit_level: bool,
    role: u8,
    group: u8,
    disabled: bool,
}

#[derive(Debug, Clone)]
struct CheckSpec {
    principal: u8,
    /// (permission bitmask, whether the checked permission is forced in)
    token: Option<(u16, bool)>,
    scope: u8,
    permission: u8,
    /// 0..=9 the catalog's type, 10 PROJECT, 11 ORGANIZATION, 12 any type of the pool
    resource_type: u8,
    resource_type_pick: u8,
    resource_id: Option<u8>,
    /// Aim at an assignment: take principal, scope and permission from it (seeded by the fields
    /// above), so that a good share of checks can be granted.
    aim: Option<u8>,
}

fn spec_strategy() -> impl Strategy<Value = Spec> {
    let group_spec = (
        any::<u8>(),
        any::<u8>(),
        prop::collection::vec((any::<bool>(), prop::option::weighted(0.5, any::<u8>())), 0..=2),
        prop_oneof![
            1 => Just(FilterSpec::Missing),
            3 => Just(FilterSpec::IncludeAll),
            8 => prop::collection::vec((any::<u8>(), 0u8..4, any::<u8>()), 0..=3).prop_map(FilterSpec::Selectors),
        ],
    )
        .prop_map(|(name, scope, included, filter)| GroupSpec {
            name,
            scope,
            included,
            filter,
        });
    let assignment = (
        0u8..4,
        any::<u8>(),
        any::<u8>(),
        any::<bool>(),
        any::<u8>(),
        any::<u8>(),
        prop::bool::weighted(0.15),
    )
        .prop_map(
            |(kind, principal, scope, explicit_level, role, group, disabled)| AssignmentSpec {
                kind,
                principal,
                scope,
                explicit_level,
                role,
                group,
                disabled,
            },
        );
    let check = (
        any::<u8>(),
        prop::option::weighted(0.25, (any::<u16>(), prop::bool::weighted(0.6))),
        any::<u8>(),
        any::<u8>(),
        0u8..13,
        any::<u8>(),
        prop::option::weighted(0.75, any::<u8>()),
        prop::option::weighted(0.6, any::<u8>()),
    )
        .prop_map(
            |(principal, token, scope, permission, resource_type, resource_type_pick, resource_id, aim)| {
                CheckSpec {
                    aim,
                    principal,
                    token,
                    scope,
                    permission,
                    resource_type,
                    resource_type_pick,
                    resource_id,
                }
            },
        );
    (
        prop::array::uniform4(prop::bool::weighted(0.2)),
        prop::collection::vec((any::<u8>(), any::<u8>(), any::<u8>()), 2..=3),
        prop::collection::vec((any::<u8>(), any::<u8>()), 2..=2),
        prop::collection::vec((any::<u8>(), any::<u8>(), any::<u16>()), 1..=4),
        prop::collection::vec(group_spec, 1..=4),
        prop::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), 0u8..3), 0..=8),
        prop::collection::vec(assignment, 3..=10),
        prop::collection::vec(check, CHECKS_PER_SNAPSHOT..=CHECKS_PER_SNAPSHOT),
    )
        .prop_map(
            |(
                disabled_users,
                groups,
                service_accounts,
                roles,
                resource_groups,
                resources,
                assignments,
                checks,
            )| {
                Spec {
                    disabled_users,
                    groups,
                    service_accounts,
                    roles,
                    resource_groups,
                    resources,
                    assignments,
                    checks,
                }
            },
        )
}

const CHECKS_PER_SNAPSHOT: usize = 8;

fn scope_index(seed: u8) -> usize {
    usize::from(seed) % SCOPES.len()
}

/// Turns a spec into a snapshot `compile` must accept: duplicates are skipped, and roles, groups and
/// principals of an assignment are only drawn from what is valid at its scope.
fn build_snapshot(spec: &Spec) -> AccountSnapshot {
    let mut snapshot = AccountSnapshot {
        account: ACCOUNT.to_owned(),
        version: 1,
        organizations: ORGS
            .iter()
            .map(|(org, projects)| Organization {
                identifier: (*org).to_owned(),
                projects: projects.iter().map(|p| (*p).to_owned()).collect(),
            })
            .collect(),
        ..AccountSnapshot::default()
    };
    for (user, disabled) in USERS.iter().zip(spec.disabled_users) {
        snapshot.users.push(User {
            identifier: (*user).to_owned(),
            email: format!("{user}@acme.example"),
            disabled,
        });
    }
    // User groups: (name, scope index).
    let mut groups: Vec<(&str, usize)> = Vec::new();
    for &(name, at, members) in &spec.groups {
        let name = GROUP_NAMES[usize::from(name) % GROUP_NAMES.len()];
        let at = scope_index(at);
        if groups.contains(&(name, at)) {
            continue;
        }
        groups.push((name, at));
        snapshot.user_groups.push(UserGroup {
            identifier: name.to_owned(),
            scope: Some(scope(at)),
            users: (0..USERS.len())
                .filter(|i| members & (1 << i) != 0)
                .map(|i| USERS[i].to_owned())
                .collect(),
        });
    }
    let mut service_accounts: Vec<(&str, usize)> = Vec::new();
    for &(name, at) in &spec.service_accounts {
        let name = SA_NAMES[usize::from(name) % SA_NAMES.len()];
        let at = scope_index(at);
        if service_accounts.contains(&(name, at)) {
            continue;
        }
        service_accounts.push((name, at));
        snapshot.service_accounts.push(ServiceAccount {
            identifier: name.to_owned(),
            scope: Some(scope(at)),
        });
    }
    let mut roles: Vec<(&str, usize)> = Vec::new();
    for &(name, at, permissions) in &spec.roles {
        let name = ROLE_NAMES[usize::from(name) % ROLE_NAMES.len()];
        let at = scope_index(at);
        if roles.contains(&(name, at)) {
            continue;
        }
        roles.push((name, at));
        snapshot.roles.push(Role {
            identifier: name.to_owned(),
            scope: Some(scope(at)),
            permissions: PERMISSIONS
                .iter()
                .enumerate()
                .filter(|(i, p)| permissions & (1 << i) != 0 && permission_allowed_at(p, level_index(at)))
                .map(|(_, p)| (*p).to_owned())
                .collect(),
        });
    }
    let mut resource_groups: Vec<(&str, usize)> = Vec::new();
    for group in &spec.resource_groups {
        let name = RG_NAMES[usize::from(group.name) % RG_NAMES.len()];
        let at = scope_index(group.scope);
        if resource_groups.contains(&(name, at)) {
            continue;
        }
        resource_groups.push((name, at));
        let below = descendants_or_self(at);
        let included_scopes = group
            .included
            .iter()
            .map(|&(including, explicit)| IncludedScope {
                filter: if including {
                    ScopeFilter::IncludingChildScopes
                } else {
                    ScopeFilter::ExcludingChildScopes
                } as i32,
                scope: explicit.and_then(|seed| pick(&below, seed)).map(scope),
            })
            .collect();
        let resource_filter = match &group.filter {
            FilterSpec::Missing => None,
            FilterSpec::IncludeAll => Some(ResourceFilter {
                include_all_resources: true,
                resources: Vec::new(),
            }),
            FilterSpec::Selectors(selectors) => Some(ResourceFilter {
                include_all_resources: false,
                resources: selectors
                    .iter()
                    .map(|&(resource_type, kind, mask)| {
                        let resource_type = RESOURCE_TYPES[usize::from(resource_type) % RESOURCE_TYPES.len()];
                        let mut selector = ResourceSelector {
                            resource_type: resource_type.to_owned(),
                            ..ResourceSelector::default()
                        };
                        match kind {
                            1 => {
                                // at least one identifier, else it would be type-wide
                                let mask = if mask == 0 { 1 } else { mask };
                                selector.identifiers = (0..RESOURCE_IDS.len())
                                    .filter(|i| mask & (1 << i) != 0)
                                    .map(|i| RESOURCE_IDS[i].to_owned())
                                    .collect();
                                if selector.identifiers.is_empty() {
                                    selector.identifiers.push(RESOURCE_IDS[0].to_owned());
                                }
                            }
                            2 | 3 => {
                                selector.attribute_filter = Some(AttributeFilter {
                                    attribute_name: if kind == 2 { "env" } else { "tier" }.to_owned(),
                                    attribute_values: (0..ENV_VALUES.len())
                                        .filter(|i| mask & (1 << i) != 0)
                                        .map(|i| ENV_VALUES[i].to_owned())
                                        .collect(),
                                });
                            }
                            _ => {}
                        }
                        selector
                    })
                    .collect(),
            }),
        };
        snapshot.resource_groups.push(ResourceGroup {
            identifier: name.to_owned(),
            scope: Some(scope(at)),
            included_scopes,
            resource_filter,
        });
    }
    let mut resources: Vec<(usize, &str, &str)> = Vec::new();
    for &(at, resource_type, identifier, env) in &spec.resources {
        let at = scope_index(at);
        // Dense on purpose: few types and ids, so attribute filters often meet a recorded resource.
        let resource_type = RESOURCE_TYPES[usize::from(resource_type) % 5];
        let identifier = RESOURCE_IDS[usize::from(identifier) % 3];
        if resources.contains(&(at, resource_type, identifier)) {
            continue;
        }
        resources.push((at, resource_type, identifier));
        let mut attributes = HashMap::new();
        if let Some(value) = ENV_VALUES.get(usize::from(env)) {
            attributes.insert("env".to_owned(), (*value).to_owned());
        }
        attributes.insert("owner".to_owned(), "team".to_owned());
        snapshot.resources.push(Resource {
            scope: Some(scope(at)),
            resource_type: resource_type.to_owned(),
            identifier: identifier.to_owned(),
            attributes,
        });
    }
    for (index, assignment) in spec.assignments.iter().enumerate() {
        // Who, and where: a group or service account is bound at its own scope or below it.
        let (principal, at) = match assignment.kind {
            2 | 3 => {
                let homes = if assignment.kind == 2 {
                    &groups
                } else {
                    &service_accounts
                };
                let (name, home) = homes[usize::from(assignment.principal) % homes.len()];
                let at = pick(&descendants_or_self(home), assignment.scope).unwrap_or(home);
                let scope_level = if at != home || assignment.explicit_level {
                    [ScopeLevel::Account, ScopeLevel::Organization, ScopeLevel::Project][level_index(home)]
                } else {
                    ScopeLevel::Unspecified
                };
                let r#type = if assignment.kind == 2 {
                    PrincipalType::UserGroup
                } else {
                    PrincipalType::ServiceAccount
                };
                let principal = PrincipalRef {
                    r#type: r#type as i32,
                    identifier: name.to_owned(),
                    scope_level: scope_level as i32,
                };
                (principal, at)
            }
            _ => {
                let principal = PrincipalRef {
                    r#type: PrincipalType::User as i32,
                    identifier: USERS[usize::from(assignment.principal) % USERS.len()].to_owned(),
                    scope_level: ScopeLevel::Unspecified as i32,
                };
                (principal, scope_index(assignment.scope))
            }
        };
        let level = level_index(at);
        let custom_roles: Vec<&str> = roles.iter().filter(|r| r.1 == at).map(|r| r.0).collect();
        let managed_roles: Vec<&str> = MANAGED_ROLES.iter().filter(|r| r.1[level]).map(|r| r.0).collect();
        let role = match pick(&custom_roles, assignment.role) {
            Some(custom) if !assignment.role.is_multiple_of(3) => custom,
            _ => pick(&managed_roles, assignment.role / 3).expect("a managed role at every level"),
        };
        let custom_groups: Vec<&str> = resource_groups
            .iter()
            .filter(|g| g.1 == at)
            .map(|g| g.0)
            .collect();
        let managed_groups: Vec<&str> = MANAGED_GROUPS
            .iter()
            .filter(|g| g.1[level])
            .map(|g| g.0)
            .collect();
        let resource_group = match pick(&custom_groups, assignment.group) {
            Some(custom) if !assignment.group.is_multiple_of(3) => custom,
            _ => pick(&managed_groups, assignment.group / 3).expect("a managed group at every level"),
        };
        snapshot.role_assignments.push(RoleAssignment {
            identifier: format!("ra{index}"),
            scope: Some(scope(at)),
            principal: Some(principal),
            role: role.to_owned(),
            resource_group: resource_group.to_owned(),
            disabled: assignment.disabled,
        });
    }
    snapshot
}

// ---------------------------------------------------------------------------------------------
// Running one check through both.

/// One check in the engine's and the naive model's terms.
#[derive(Debug, Clone)]
struct Query {
    principal: NaivePrincipal,
    token: Option<Vec<&'static str>>,
    org: Option<String>,
    project: Option<String>,
    permission: String,
    resource_type: String,
    resource_id: Option<String>,
}

impl Query {
    fn naive(&self, snapshot: &AccountSnapshot) -> bool {
        naive_decide(
            snapshot,
            &catalog(),
            &self.principal,
            self.token.as_deref(),
            self.org.as_deref(),
            self.project.as_deref(),
            &self.permission,
            &self.resource_type,
            self.resource_id.as_deref(),
        )
    }

    fn engine(&self, compiled: &CompiledAccount) -> Decision {
        let catalog = compiled.catalog();
        let id = match &self.principal {
            NaivePrincipal::User(name) => compiled.user(name).expect("user"),
            NaivePrincipal::ServiceAccount {
                identifier,
                org,
                project,
            } => {
                let home = compiled
                    .resolve_scope(org.as_deref(), project.as_deref())
                    .expect("service account scope");
                compiled
                    .service_account_in(identifier, home)
                    .expect("service account")
            }
        };
        let token: Option<PermissionSet> = self.token.as_ref().map(|subset| {
            subset
                .iter()
                .map(|p| catalog.permission_id(p).expect("permission"))
                .collect()
        });
        let principal = Principal {
            id,
            token_permissions: token.as_ref(),
        };
        let check = Check {
            scope: compiled
                .resolve_scope(self.org.as_deref(), self.project.as_deref())
                .expect("scope"),
            permission: catalog.permission_id(&self.permission).expect("permission"),
            resource_type: catalog
                .resource_type_id(&self.resource_type)
                .expect("resource type"),
            resource_id: self.resource_id.as_deref(),
        };
        decide(compiled, &principal, &check)
    }
}

fn service_account(identifier: String, home: Option<&Scope>) -> NaivePrincipal {
    let home = home.cloned().unwrap_or_default();
    NaivePrincipal::ServiceAccount {
        identifier,
        org: non_empty(&home.org).map(str::to_owned),
        project: non_empty(&home.project).map(str::to_owned),
    }
}

fn scope_index_of(wanted: &Scope) -> usize {
    SCOPES
        .iter()
        .position(|(org, project)| wanted.org == *org && wanted.project == *project)
        .expect("a generated scope")
}

/// A principal the assignment binds, a scope at or below it and a pool permission its role holds.
fn aim_at(
    snapshot: &AccountSnapshot,
    assignment: &RoleAssignment,
    spec: &CheckSpec,
) -> Option<(NaivePrincipal, usize, &'static str)> {
    let at = scope_index_of(assignment.scope.as_ref()?);
    let reference = assignment.principal.as_ref()?;
    let home = match ScopeLevel::try_from(reference.scope_level).ok()? {
        ScopeLevel::Unspecified => at,
        ScopeLevel::Account => 0,
        ScopeLevel::Organization => scope_index_of(&Scope {
            org: SCOPES[at].0.to_owned(),
            project: String::new(),
        }),
        ScopeLevel::Project => at,
    };
    let principal = match PrincipalType::try_from(reference.r#type).ok()? {
        PrincipalType::User => NaivePrincipal::User(reference.identifier.clone()),
        PrincipalType::UserGroup => {
            let group = snapshot.user_groups.iter().find(|g| {
                g.identifier == reference.identifier && g.scope.as_ref().map(scope_index_of) == Some(home)
            })?;
            let members: Vec<&String> = group.users.iter().collect();
            NaivePrincipal::User(pick(&members, spec.principal)?.clone())
        }
        PrincipalType::ServiceAccount => service_account(reference.identifier.clone(), Some(&scope(home))),
        PrincipalType::Unspecified => return None,
    };
    let catalog = catalog();
    let custom = snapshot
        .roles
        .iter()
        .find(|r| r.identifier == assignment.role && r.scope.as_ref().map(scope_index_of) == Some(at));
    let held: Vec<&'static str> = PERMISSIONS
        .iter()
        .copied()
        .filter(|p| match custom {
            Some(role) => role.permissions.iter().any(|held| held == p),
            None => catalog.managed_role(&assignment.role).is_some_and(|role| {
                role.permissions
                    .contains(catalog.permission_id(p).expect("permission"))
            }),
        })
        .collect();
    let permission = pick(&held, spec.permission)?;
    Some((principal, pick(&descendants_or_self(at), spec.scope)?, permission))
}

fn build_query(snapshot: &AccountSnapshot, spec: &CheckSpec) -> Query {
    let aimed = spec
        .aim
        .and_then(|aim| {
            snapshot
                .role_assignments
                .get(usize::from(aim) % snapshot.role_assignments.len().max(1))
        })
        .and_then(|assignment| Some((aim_at(snapshot, assignment, spec)?, assignment)));
    let (principal, scope, permission) = aimed.as_ref().map(|(aim, _)| aim.clone()).unwrap_or_else(|| {
        let principals = USERS.len() + snapshot.service_accounts.len();
        let which = usize::from(spec.principal) % principals;
        let principal = match snapshot.service_accounts.get(which.wrapping_sub(USERS.len())) {
            Some(sa) if which >= USERS.len() => service_account(sa.identifier.clone(), sa.scope.as_ref()),
            _ => NaivePrincipal::User(USERS[which % USERS.len()].to_owned()),
        };
        let permission = PERMISSIONS[usize::from(spec.permission) % PERMISSIONS.len()];
        (principal, scope_index(spec.scope), permission)
    });
    let token = spec.token.map(|(mask, forced)| {
        PERMISSIONS
            .iter()
            .enumerate()
            .filter(|(i, p)| mask & (1 << i) != 0 || (forced && **p == permission))
            .map(|(_, p)| *p)
            .collect()
    });
    let catalog = catalog();
    let catalog_type = catalog
        .permission(catalog.permission_id(permission).expect("permission"))
        .map(|p| catalog.resource_type_name(p.resource_type).to_owned())
        .expect("permission");
    let mut resource_type = match spec.resource_type {
        10 => "PROJECT".to_owned(),
        11 => "ORGANIZATION".to_owned(),
        12 => RESOURCE_TYPES[usize::from(spec.resource_type_pick) % RESOURCE_TYPES.len()].to_owned(),
        _ => catalog_type,
    };
    let mut resource_id = spec
        .resource_id
        .map(|i| RESOURCE_IDS[usize::from(i) % RESOURCE_IDS.len()].to_owned());
    let mut scope = scope;
    // Aim at the resource filter of the assignment's custom group: one of its entries' types, with one
    // of its identifiers or of the recorded resources of that type (in any scope).
    if let Some((_, assignment)) = aimed
        && spec.resource_type_pick % 3 == 1
    {
        let selectors: Vec<&ResourceSelector> = snapshot
            .resource_groups
            .iter()
            .filter(|g| g.identifier == assignment.resource_group && g.scope == assignment.scope)
            .filter_map(|g| g.resource_filter.as_ref())
            .flat_map(|f| f.resources.iter())
            .collect();
        if let Some(selector) = pick(&selectors, spec.resource_type_pick / 3) {
            resource_type = selector.resource_type.clone();
            let recorded: Vec<&String> = snapshot
                .resources
                .iter()
                .filter(|r| r.resource_type == selector.resource_type)
                .map(|r| &r.identifier)
                .collect();
            let candidates: Vec<&String> = if selector.identifiers.is_empty() {
                recorded
            } else {
                selector.identifiers.iter().collect()
            };
            if let (Some(_), Some(id)) = (&resource_id, pick(&candidates, spec.principal)) {
                resource_id = Some(id.clone());
            }
        }
    }
    // Scope-typed resources: ask, from the parent, about the org or project the aim landed in.
    if aimed.is_some() && spec.resource_type_pick.is_multiple_of(3) && scope != 0 {
        let (org, project) = SCOPES[scope];
        if project.is_empty() {
            resource_type = "ORGANIZATION".to_owned();
            resource_id = Some(org.to_owned());
            scope = 0;
        } else {
            resource_type = "PROJECT".to_owned();
            resource_id = Some(project.to_owned());
            scope = scope_index_of(&Scope {
                org: org.to_owned(),
                project: String::new(),
            });
        }
    }
    let (org, project) = SCOPES[scope];
    Query {
        principal,
        token,
        org: non_empty(org).map(str::to_owned),
        project: non_empty(project).map(str::to_owned),
        permission: permission.to_owned(),
        resource_type,
        resource_id,
    }
}

/// Outcome counters across the whole property run.
#[derive(Default)]
struct Counters {
    checks: AtomicUsize,
    allowed: AtomicUsize,
    granted: AtomicUsize,
    granted_in_child_scope: AtomicUsize,
    granted_through_group: AtomicUsize,
    granted_to_service_account: AtomicUsize,
}

fn dump(snapshot: &AccountSnapshot) -> String {
    serde_yaml_ng::to_string(snapshot).unwrap_or_else(|e| format!("<cannot serialize: {e}>"))
}

fn run_case(spec: &Spec, counters: &Counters) -> Result<(), TestCaseError> {
    let snapshot = build_snapshot(spec);
    let compiled = compile(&snapshot, catalog(), None).map_err(|e| {
        TestCaseError::fail(format!(
            "generated an invalid snapshot: {e}\n--- snapshot ---\n{}",
            dump(&snapshot)
        ))
    })?;
    for check in &spec.checks {
        let query = build_query(&snapshot, check);
        let engine = query.engine(&compiled);
        let naive = query.naive(&snapshot);
        if engine.allowed != naive {
            return Err(TestCaseError::fail(format!(
                "engine and naive model disagree: engine {} ({:?}), naive {}\n--- check ---\n{query:#?}\n--- snapshot ---\n{}",
                if engine.allowed { "ALLOW" } else { "DENY" },
                engine.reason,
                if naive { "ALLOW" } else { "DENY" },
                dump(&snapshot),
            )));
        }
        counters.checks.fetch_add(1, Ordering::Relaxed);
        if engine.allowed {
            counters.allowed.fetch_add(1, Ordering::Relaxed);
        }
        if let Reason::Granted { grant, matched_scope } = engine.reason {
            counters.granted.fetch_add(1, Ordering::Relaxed);
            if Some(matched_scope) != compiled.resolve_scope(query.org.as_deref(), query.project.as_deref()) {
                counters.granted_in_child_scope.fetch_add(1, Ordering::Relaxed);
            }
            if grant.via_group != u32::MAX {
                counters.granted_through_group.fetch_add(1, Ordering::Relaxed);
            }
            if matches!(query.principal, NaivePrincipal::ServiceAccount { .. }) {
                counters
                    .granted_to_service_account
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Ok(())
}

#[test]
fn engine_agrees_with_the_naive_model() {
    let config = Config {
        cases: 4_000,
        // Writing regressions would create files next to this test; the failure message carries
        // the whole snapshot and check instead.
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let counters = Counters::default();
    if let Err(failure) = runner.run(&spec_strategy(), |spec| run_case(&spec, &counters)) {
        panic!("{failure}");
    }
    let checks = counters.checks.load(Ordering::Relaxed);
    let allowed = counters.allowed.load(Ordering::Relaxed);
    let granted = counters.granted.load(Ordering::Relaxed);
    let denied = checks - allowed;
    println!(
        "{checks} checks: {allowed} allowed ({granted} granted, {} in a child scope, {} through a group, {} to a \
         service account), {denied} denied",
        counters.granted_in_child_scope.load(Ordering::Relaxed),
        counters.granted_through_group.load(Ordering::Relaxed),
        counters.granted_to_service_account.load(Ordering::Relaxed),
    );
    assert!(checks >= 4_000 * CHECKS_PER_SNAPSHOT, "only {checks} checks ran");
    assert!(
        allowed * 10 >= checks,
        "allows are under 10%: {allowed} of {checks}"
    );
    assert!(
        denied * 10 >= checks,
        "denials are under 10%: {denied} of {checks}"
    );
    assert!(
        granted * 20 >= checks,
        "Granted is under 5%: {granted} of {checks}"
    );
    assert!(
        counters.granted_in_child_scope.load(Ordering::Relaxed) > 0,
        "never granted in a child scope"
    );
    assert!(
        counters.granted_through_group.load(Ordering::Relaxed) > 0,
        "never granted through a group"
    );
    assert!(
        counters.granted_to_service_account.load(Ordering::Relaxed) > 0,
        "never granted to an SA"
    );
}

// ---------------------------------------------------------------------------------------------
// Deterministic cases: each pins one rule of model.md on both the engine and the naive model.

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

/// model.md "The decision", scope-typed resources: the child `S/I` is checked because the resource
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
