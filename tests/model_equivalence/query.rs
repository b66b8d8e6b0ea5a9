//! One check in both models' terms (`Query`), run through the engine and through the oracle, and
//! how a generated `CheckSpec` becomes one: often aimed at an assignment of the snapshot, its
//! resource filter or a scope-typed child, so that a good share of checks can be granted.

use scopegate::rbac::model::{
    AccountSnapshot, PrincipalType, ResourceSelector, RoleAssignment, Scope, ScopeLevel,
};
use scopegate::rbac::{Check, CompiledAccount, Decision, PermissionSet, Principal, decide};

use super::catalog;
use super::generate::CheckSpec;
use super::naive::{NaivePrincipal, naive_decide};
use super::universe::{
    PERMISSIONS, RESOURCE_IDS, RESOURCE_TYPES, SCOPES, USERS, descendants_or_self, non_empty, pick, scope,
    scope_index, scope_index_of,
};

/// One check in the engine's and the naive model's terms.
#[derive(Debug, Clone)]
pub(crate) struct Query {
    pub(crate) principal: NaivePrincipal,
    pub(crate) token: Option<Vec<&'static str>>,
    pub(crate) org: Option<String>,
    pub(crate) project: Option<String>,
    pub(crate) permission: String,
    pub(crate) resource_type: String,
    pub(crate) resource_id: Option<String>,
}

impl Query {
    pub(crate) fn naive(&self, snapshot: &AccountSnapshot) -> bool {
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

    pub(crate) fn engine(&self, compiled: &CompiledAccount) -> Decision {
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

pub(crate) fn service_account(identifier: String, home: Option<&Scope>) -> NaivePrincipal {
    let home = home.cloned().unwrap_or_default();
    NaivePrincipal::ServiceAccount {
        identifier,
        org: non_empty(&home.org).map(str::to_owned),
        project: non_empty(&home.project).map(str::to_owned),
    }
}

/// A principal the assignment binds, a scope at or below it and a pool permission its role holds.
pub(crate) fn aim_at(
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

pub(crate) fn build_query(snapshot: &AccountSnapshot, spec: &CheckSpec) -> Query {
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
