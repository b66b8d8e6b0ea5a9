//! The generator of a large, realistic account (`generate`): organizations and projects, users
//! with a home organization, user groups, service accounts, custom roles, pipeline resource groups
//! and role assignments spread over the levels as `Shape` describes. Deterministic per seed.

use std::collections::HashMap;

use scopegate::rbac::model::{
    AccountSnapshot, IncludedScope, Organization, PrincipalRef, PrincipalType, ResourceFilter, ResourceGroup,
    ResourceSelector, Role, RoleAssignment, Scope, ScopeFilter, ScopeLevel, ServiceAccount, User, UserGroup,
};
use scopegate::rbac::{Catalog, Level};

use super::{Rng, Shape, pipeline_name};

/// A scope of the generated account, by org and project index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum At {
    Account,
    Org(usize),
    Project(usize, usize),
}

impl At {
    fn org(self) -> Option<usize> {
        match self {
            At::Account => None,
            At::Org(o) | At::Project(o, _) => Some(o),
        }
    }

    fn level(self) -> Level {
        match self {
            At::Account => Level::Account,
            At::Org(_) => Level::Organization,
            At::Project(..) => Level::Project,
        }
    }

    /// This scope and its ancestors, nearest first.
    fn lineage(self) -> Vec<At> {
        match self {
            At::Account => vec![At::Account],
            At::Org(o) => vec![At::Org(o), At::Account],
            At::Project(o, p) => vec![At::Project(o, p), At::Org(o), At::Account],
        }
    }
}

fn scope_level(level: Level) -> i32 {
    match level {
        Level::Account => ScopeLevel::Account as i32,
        Level::Organization => ScopeLevel::Organization as i32,
        Level::Project => ScopeLevel::Project as i32,
    }
}

struct Generator<'a> {
    shape: &'a Shape,
    rng: Rng,
    org_names: Vec<String>,
    project_names: Vec<String>,
    users: Vec<String>,
    /// Groups, service accounts, custom roles and custom resource groups by the scope they live in.
    groups_at: HashMap<At, Vec<usize>>,
    group_names: Vec<String>,
    service_accounts_at: HashMap<At, Vec<usize>>,
    service_account_names: Vec<String>,
    roles_at: HashMap<At, Vec<usize>>,
    role_names: Vec<String>,
    resource_groups_at: HashMap<At, Vec<usize>>,
    resource_group_names: Vec<String>,
}

impl Generator<'_> {
    fn scope(&self, at: At) -> Scope {
        match at {
            At::Account => Scope::account(),
            At::Org(o) => Scope::new(Some(&self.org_names[o]), None),
            At::Project(o, p) => Scope::new(Some(&self.org_names[o]), Some(&self.project_names[p])),
        }
    }

    fn random_org(&mut self) -> At {
        At::Org(self.rng.below(self.shape.orgs))
    }

    fn random_project(&mut self) -> At {
        At::Project(
            self.rng.below(self.shape.orgs),
            self.rng.below(self.shape.projects_per_org),
        )
    }

    /// A user, from the home pool of the scope's organization 90% of the time.
    fn random_user(&mut self, at: At) -> usize {
        let users = self.shape.users;
        match at.org() {
            Some(org) if self.rng.chance(0.9) => {
                let start = org * users / self.shape.orgs;
                let end = ((org + 1) * users / self.shape.orgs).max(start + 1);
                start + self.rng.below(end - start)
            }
            _ => self.rng.below(users),
        }
    }

    /// Something living at `at` or an ancestor, with `scope_level` set when it is inherited;
    /// `weights` are for the scope itself, its parent and the account.
    fn inherited(&mut self, at: At, kind: Kind, weights: [u32; 3]) -> Option<(usize, i32)> {
        let lineage = at.lineage();
        let offset = 3 - lineage.len();
        let table = match kind {
            Kind::Group => &self.groups_at,
            Kind::ServiceAccount => &self.service_accounts_at,
        };
        let choices: Vec<(u32, At)> = lineage
            .iter()
            .enumerate()
            .filter(|(_, home)| table.get(home).is_some_and(|v| !v.is_empty()))
            .map(|(i, home)| (weights[i + offset], *home))
            .collect();
        if choices.is_empty() {
            return None;
        }
        let home = self.rng.weighted(&choices);
        let candidates = &table[&home];
        let item = candidates[self.rng.below(candidates.len())];
        let level = if home == at { 0 } else { scope_level(home.level()) };
        Some((item, level))
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Group,
    ServiceAccount,
}

/// Generates the account described by `shape`, valid against `catalog` (custom roles only hold
/// permissions allowed at their level). Deterministic for a given shape and seed.
pub fn generate(shape: &Shape, catalog: &Catalog) -> AccountSnapshot {
    let mut g = Generator {
        shape,
        rng: Rng(shape.seed),
        org_names: (0..shape.orgs).map(|o| format!("org_{o:03}")).collect(),
        project_names: (0..shape.projects_per_org)
            .map(|p| format!("proj_{p:02}"))
            .collect(),
        users: (0..shape.users).map(|u| format!("user_{u:05}")).collect(),
        groups_at: HashMap::new(),
        group_names: Vec::new(),
        service_accounts_at: HashMap::new(),
        service_account_names: Vec::new(),
        roles_at: HashMap::new(),
        role_names: Vec::new(),
        resource_groups_at: HashMap::new(),
        resource_group_names: Vec::new(),
    };
    let mut snapshot = AccountSnapshot {
        account: shape.account.clone(),
        version: 1,
        ..AccountSnapshot::default()
    };

    snapshot.organizations = g
        .org_names
        .iter()
        .map(|org| Organization {
            identifier: org.clone(),
            projects: g.project_names.clone(),
        })
        .collect();

    snapshot.users = g
        .users
        .iter()
        .map(|u| User {
            identifier: u.clone(),
            email: format!("{u}@example.com"),
            disabled: false,
        })
        .collect();
    for user in &mut snapshot.users {
        user.disabled = g.rng.chance(0.005);
    }

    // User groups.
    for k in 0..shape.user_groups {
        let at = if k < shape.user_groups / 20 {
            At::Account
        } else if k < shape.user_groups * 11 / 20 {
            At::Org(k % shape.orgs)
        } else {
            g.random_project()
        };
        let size = (shape.group_size + g.rng.below(11)).saturating_sub(5).max(1);
        let mut members: Vec<usize> = Vec::with_capacity(size);
        while members.len() < size.min(shape.users) {
            let user = g.random_user(at);
            if !members.contains(&user) {
                members.push(user);
            }
        }
        let identifier = format!("team_{k:04}");
        snapshot.user_groups.push(UserGroup {
            identifier: identifier.clone(),
            scope: Some(g.scope(at)),
            users: members.iter().map(|m| g.users[*m].clone()).collect(),
        });
        g.groups_at.entry(at).or_default().push(k);
        g.group_names.push(identifier);
    }

    // Service accounts.
    for k in 0..shape.service_accounts {
        let at = if k < shape.service_accounts / 10 {
            At::Account
        } else if k < shape.service_accounts * 4 / 10 {
            g.random_org()
        } else {
            g.random_project()
        };
        let identifier = format!("sa_{k:03}");
        snapshot.service_accounts.push(ServiceAccount {
            identifier: identifier.clone(),
            scope: Some(g.scope(at)),
        });
        g.service_accounts_at.entry(at).or_default().push(k);
        g.service_account_names.push(identifier);
    }

    // Custom roles: pipeline-centred, plus a random handful of other permissions allowed at their level.
    for k in 0..shape.custom_roles {
        let at = if k < shape.custom_roles / 10 {
            At::Account
        } else if k < shape.custom_roles / 2 {
            g.random_org()
        } else {
            g.random_project()
        };
        let level = at.level();
        let allowed: Vec<&str> = catalog
            .permissions()
            .iter()
            .filter(|p| p.levels.contains(level) && !p.implicit)
            .map(|p| &*p.id)
            .collect();
        let mut permissions = vec!["core_pipeline_view".to_owned()];
        for (p, id) in [
            (0.6, "core_pipeline_execute"),
            (0.3, "core_pipeline_edit"),
            (0.4, "core_connector_access"),
            (0.4, "core_secret_access"),
        ] {
            if g.rng.chance(p) {
                permissions.push(id.to_owned());
            }
        }
        let extra = 3 + g.rng.below(13);
        for _ in 0..extra {
            let id = (*g.rng.pick(&allowed)).to_owned();
            if !permissions.contains(&id) {
                permissions.push(id);
            }
        }
        let identifier = format!("custom_role_{k:03}");
        snapshot.roles.push(Role {
            identifier: identifier.clone(),
            scope: Some(g.scope(at)),
            permissions,
        });
        g.roles_at.entry(at).or_default().push(k);
        g.role_names.push(identifier);
    }

    // Custom resource groups: a pipeline identifier list, sometimes with a type-wide entry.
    for k in 0..shape.resource_groups {
        let at = if k < shape.resource_groups / 5 {
            g.random_org()
        } else {
            g.random_project()
        };
        let mut pipelines: Vec<usize> = Vec::new();
        let wanted = shape.pipelines_per_resource_group.min(shape.pipeline_names);
        while pipelines.len() < wanted {
            let n = g.rng.below(shape.pipeline_names);
            if !pipelines.contains(&n) {
                pipelines.push(n);
            }
        }
        pipelines.sort_unstable();
        let mut resources = vec![ResourceSelector {
            resource_type: "PIPELINE".to_owned(),
            identifiers: pipelines.into_iter().map(pipeline_name).collect(),
            attribute_filter: None,
        }];
        for (p, resource_type) in [(0.5, "ENVIRONMENT"), (0.3, "CONNECTOR"), (0.3, "SERVICE")] {
            if g.rng.chance(p) {
                resources.push(ResourceSelector {
                    resource_type: resource_type.to_owned(),
                    ..ResourceSelector::default()
                });
            }
        }
        let filter = match at {
            At::Project(..) => ScopeFilter::ExcludingChildScopes,
            _ => ScopeFilter::IncludingChildScopes,
        };
        let identifier = format!("rg_{k:02}");
        snapshot.resource_groups.push(ResourceGroup {
            identifier: identifier.clone(),
            scope: Some(g.scope(at)),
            included_scopes: vec![IncludedScope {
                filter: filter as i32,
                scope: None,
            }],
            resource_filter: Some(ResourceFilter {
                include_all_resources: false,
                resources,
            }),
        });
        g.resource_groups_at.entry(at).or_default().push(k);
        g.resource_group_names.push(identifier);
    }

    // Role assignments.
    for k in 0..shape.role_assignments {
        let roll = g.rng.unit();
        let at = if roll < 0.02 {
            At::Account
        } else if roll < 0.20 {
            g.random_org()
        } else {
            g.random_project()
        };
        let roll = g.rng.unit();
        let principal = if roll < 0.02 {
            g.inherited(at, Kind::ServiceAccount, [50, 35, 15])
                .map(|(sa, scope_level)| PrincipalRef {
                    r#type: PrincipalType::ServiceAccount as i32,
                    identifier: g.service_account_names[sa].clone(),
                    scope_level,
                })
        } else if roll < 0.51 {
            None
        } else {
            g.inherited(at, Kind::Group, [40, 45, 15])
                .map(|(group, scope_level)| PrincipalRef {
                    r#type: PrincipalType::UserGroup as i32,
                    identifier: g.group_names[group].clone(),
                    scope_level,
                })
        };
        let principal = match principal {
            Some(principal) => principal,
            None => {
                let user = g.random_user(at);
                PrincipalRef {
                    r#type: PrincipalType::User as i32,
                    identifier: g.users[user].clone(),
                    scope_level: 0,
                }
            }
        };

        let custom_role = g.roles_at.get(&at).map(Vec::as_slice).unwrap_or_default();
        let role = if !custom_role.is_empty() && g.rng.chance(0.3) {
            g.role_names[*g.rng.pick(custom_role)].clone()
        } else {
            let managed: &[(u32, &str)] = match at {
                At::Account => &[
                    (60, "_account_viewer"),
                    (5, "_account_admin"),
                    (20, "_iro_viewer"),
                    (15, "_iro_user"),
                ],
                At::Org(_) => &[
                    (50, "_organization_viewer"),
                    (10, "_organization_admin"),
                    (20, "_iro_viewer"),
                    (20, "_iro_user"),
                ],
                At::Project(..) => &[
                    (35, "_project_viewer"),
                    (30, "_pipeline_executor"),
                    (10, "_project_admin"),
                    (10, "_iro_user"),
                    (15, "_iro_viewer"),
                ],
            };
            g.rng.weighted(managed).to_owned()
        };

        let custom_group = g
            .resource_groups_at
            .get(&at)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let resource_group = if !custom_group.is_empty() && g.rng.chance(0.4) {
            g.resource_group_names[*g.rng.pick(custom_group)].clone()
        } else {
            let managed: &[(u32, &str)] = match at {
                At::Account => &[
                    (50, "_all_account_level_resources"),
                    (50, "_all_resources_including_child_scopes"),
                ],
                At::Org(_) => &[
                    (40, "_all_organization_level_resources"),
                    (60, "_all_resources_including_child_scopes"),
                ],
                At::Project(..) => &[(100, "_all_project_level_resources")],
            };
            g.rng.weighted(managed).to_owned()
        };

        snapshot.role_assignments.push(RoleAssignment {
            identifier: format!("ra_{k:06}"),
            scope: Some(g.scope(at)),
            principal: Some(principal),
            role,
            resource_group,
            disabled: g.rng.chance(0.02),
        });
    }
    snapshot
}
