//! What proptest generates (`Spec`: small integers) and how it becomes an account snapshot that
//! `compile` must accept (`build_snapshot`): duplicates are skipped, and an assignment only draws
//! roles, resource groups and principals valid at its scope.

use std::collections::HashMap;

use proptest::prelude::*;
use scopegate::rbac::model::{
    AccountSnapshot, AttributeFilter, IncludedScope, Organization, PrincipalRef, PrincipalType, Resource,
    ResourceFilter, ResourceGroup, ResourceSelector, Role, RoleAssignment, ScopeFilter, ScopeLevel,
    ServiceAccount, User, UserGroup,
};

use super::universe::{
    ACCOUNT, ENV_VALUES, GROUP_NAMES, MANAGED_GROUPS, MANAGED_ROLES, ORGS, PERMISSIONS, RESOURCE_IDS,
    RESOURCE_TYPES, RG_NAMES, ROLE_NAMES, SA_NAMES, USERS, descendants_or_self, level_index,
    permission_allowed_at, pick, scope, scope_index,
};

#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub(crate) disabled_users: [bool; 4],
    pub(crate) groups: Vec<(u8, u8, u8)>, // name, scope, member bitmask
    pub(crate) service_accounts: Vec<(u8, u8)>, // name, scope
    pub(crate) roles: Vec<(u8, u8, u16)>, // name, scope, permission bitmask
    pub(crate) resource_groups: Vec<GroupSpec>,
    pub(crate) resources: Vec<(u8, u8, u8, u8)>, // scope, type, id, env value (>= 2: no `env` attribute)
    pub(crate) assignments: Vec<AssignmentSpec>,
    pub(crate) checks: Vec<CheckSpec>,
}

#[derive(Debug, Clone)]
pub(crate) struct GroupSpec {
    pub(crate) name: u8,
    pub(crate) scope: u8,
    /// (including, explicit scope among the group's scope and below)
    pub(crate) included: Vec<(bool, Option<u8>)>,
    pub(crate) filter: FilterSpec,
}

#[derive(Debug, Clone)]
pub(crate) enum FilterSpec {
    Missing,
    IncludeAll,
    /// (type, kind: 0 type-wide / 1 identifiers / 2 attribute `env` / 3 attribute `tier`, id or value bitmask)
    Selectors(Vec<(u8, u8, u8)>),
}

#[derive(Debug, Clone)]
pub(crate) struct AssignmentSpec {
    /// 0..=1 user, 2 user group, 3 service account
    pub(crate) kind: u8,
    pub(crate) principal: u8,
    pub(crate) scope: u8,
    /// For a group or service account living at the assignment's scope: name the level explicitly.
    pub(crate) explicit_level: bool,
    pub(crate) role: u8,
    pub(crate) group: u8,
    pub(crate) disabled: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct CheckSpec {
    pub(crate) principal: u8,
    /// (permission bitmask, whether the checked permission is forced in)
    pub(crate) token: Option<(u16, bool)>,
    pub(crate) scope: u8,
    pub(crate) permission: u8,
    /// 0..=9 the catalog's type, 10 PROJECT, 11 ORGANIZATION, 12 any type of the pool
    pub(crate) resource_type: u8,
    pub(crate) resource_type_pick: u8,
    pub(crate) resource_id: Option<u8>,
    /// Aim at an assignment: take principal, scope and permission from it (seeded by the fields
    /// above), so that a good share of checks can be granted.
    pub(crate) aim: Option<u8>,
}

pub(crate) fn spec_strategy() -> impl Strategy<Value = Spec> {
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

pub(crate) const CHECKS_PER_SNAPSHOT: usize = 8;

/// Turns a spec into a snapshot `compile` must accept: duplicates are skipped, and roles, groups and
/// principals of an assignment are only drawn from what is valid at its scope.
pub(crate) fn build_snapshot(spec: &Spec) -> AccountSnapshot {
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
