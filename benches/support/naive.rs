//! A naive reference model of the decision: model.md rules 1, 3, 4 and 5 applied literally to the
//! raw snapshot on every check. No index: each check scans every role assignment, finds user groups,
//! roles and resource groups by scanning their lists, and compares strings. It is the baseline the
//! compiled engine is measured against, and a second opinion on its answers.

use scopegate::rbac::Catalog;
use scopegate::rbac::model::{
    AccountSnapshot, PrincipalType, RoleAssignment, Scope, ScopeFilter, ScopeLevel,
};

/// A scope as `(org, project)`; empty strings for the levels above it.
type Path<'a> = (&'a str, &'a str);

/// Who is asking.
#[derive(Debug, Clone, Copy)]
pub enum NaivePrincipal<'a> {
    /// A user by identifier.
    User(&'a str),
    /// A service account by identifier and the scope it lives in.
    ServiceAccount {
        /// Its identifier.
        identifier: &'a str,
        /// Where it lives.
        scope: &'a Scope,
    },
}

/// What is asked, by name.
#[derive(Debug, Clone, Copy)]
pub struct NaiveCheck<'a> {
    /// The scope `S`.
    pub scope: &'a Scope,
    /// The permission ID.
    pub permission: &'a str,
    /// The resource type name (`PIPELINE`).
    pub resource_type: &'a str,
    /// The resource identifier, absent for create and list.
    pub resource_id: Option<&'a str>,
}

/// The answer: allowed or not, and the index of the role assignment that allowed it (none for an
/// implicit permission or a denial).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NaiveDecision {
    /// Whether the check is allowed.
    pub allowed: bool,
    /// The index in `snapshot.role_assignments` of the assignment that granted it.
    pub assignment: Option<usize>,
}

impl NaiveDecision {
    const DENY: NaiveDecision = NaiveDecision {
        allowed: false,
        assignment: None,
    };
}

/// The raw snapshot plus the managed roles spelled out as permission-ID lists.
pub struct NaiveModel<'a> {
    snapshot: &'a AccountSnapshot,
    catalog: &'a Catalog,
    managed_roles: Vec<(String, Vec<String>)>,
}

fn path(scope: Option<&Scope>) -> Path<'_> {
    scope.map_or(("", ""), |s| (s.org.as_str(), s.project.as_str()))
}

fn level_of((org, project): Path<'_>) -> scopegate::rbac::Level {
    use scopegate::rbac::Level;
    match (org.is_empty(), project.is_empty()) {
        (true, _) => Level::Account,
        (false, true) => Level::Organization,
        (false, false) => Level::Project,
    }
}

/// `a ⊑ s`: `a` is `s` or one of its ancestors.
fn ancestor_or_self(a: Path<'_>, s: Path<'_>) -> bool {
    a.0.is_empty() || (a.0 == s.0 && (a.1.is_empty() || a.1 == s.1))
}

/// The ancestor of `scope` at `scope_level` (the scope itself when unspecified).
fn at_level(scope: Path<'_>, scope_level: i32) -> Path<'_> {
    match ScopeLevel::try_from(scope_level) {
        Ok(ScopeLevel::Account) => ("", ""),
        Ok(ScopeLevel::Organization) => (scope.0, ""),
        _ => scope,
    }
}

impl<'a> NaiveModel<'a> {
    /// A model over `snapshot`, with managed roles taken from `catalog`.
    pub fn new(snapshot: &'a AccountSnapshot, catalog: &'a Catalog) -> Self {
        let managed_roles = catalog
            .managed_roles()
            .iter()
            .map(|role| {
                let permissions = role
                    .permissions
                    .iter()
                    .map(|id| catalog.permission_name(id).to_owned())
                    .collect();
                (role.name.to_owned(), permissions)
            })
            .collect();
        Self {
            snapshot,
            catalog,
            managed_roles,
        }
    }

    /// Decides `check` for `principal` by scanning the snapshot.
    pub fn decide(&self, principal: NaivePrincipal<'_>, check: &NaiveCheck<'_>) -> NaiveDecision {
        if let NaivePrincipal::User(user) = principal {
            let enabled = self
                .snapshot
                .users
                .iter()
                .any(|u| u.identifier == user && !u.disabled);
            if !enabled {
                return NaiveDecision::DENY;
            }
        }
        let Some(permission) = self
            .catalog
            .permissions()
            .iter()
            .find(|p| *p.id == *check.permission)
        else {
            return NaiveDecision::DENY;
        };
        let scope = path(Some(check.scope));
        // Rule 1.
        if !permission.levels.contains(level_of(scope)) {
            return NaiveDecision::DENY;
        }
        // Rule 3.
        if permission.implicit {
            return NaiveDecision {
                allowed: true,
                assignment: None,
            };
        }
        // Rule 4.
        if let Some(index) = self.scan(principal, check, scope) {
            return NaiveDecision {
                allowed: true,
                assignment: Some(index),
            };
        }
        // Rule 4, scope-typed resources: also check at the child scope `S/I`.
        if let (Some(child), true) = (
            self.child_scope(scope, check.resource_id),
            matches!(check.resource_type, "ORGANIZATION" | "PROJECT"),
        ) && permission.levels.contains(level_of(child))
            && let Some(index) = self.scan(principal, check, child)
        {
            return NaiveDecision {
                allowed: true,
                assignment: Some(index),
            };
        }
        // Rule 5.
        NaiveDecision::DENY
    }

    fn child_scope<'c>(&self, scope: Path<'c>, id: Option<&'c str>) -> Option<Path<'c>> {
        let id = id?;
        let org = self.snapshot.organizations.iter();
        match level_of(scope) {
            scopegate::rbac::Level::Account => org.clone().any(|o| o.identifier == id).then_some((id, "")),
            scopegate::rbac::Level::Organization => org
                .clone()
                .any(|o| o.identifier == scope.0 && o.projects.iter().any(|p| p == id))
                .then_some((scope.0, id)),
            scopegate::rbac::Level::Project => None,
        }
    }

    /// Rule 4 at scope `s`: the first enabled assignment that satisfies every condition.
    fn scan(&self, principal: NaivePrincipal<'_>, check: &NaiveCheck<'_>, s: Path<'_>) -> Option<usize> {
        self.snapshot
            .role_assignments
            .iter()
            .enumerate()
            .find(|(_, ra)| {
                let ra_scope = path(ra.scope.as_ref());
                !ra.disabled
                    && ancestor_or_self(ra_scope, s)
                    && self.principal_matches(ra, ra_scope, principal)
                    && self.role_contains(&ra.role, ra_scope, check.permission)
                    && self.group_covers(&ra.resource_group, ra_scope, s, check)
            })
            .map(|(index, _)| index)
    }

    fn principal_matches(
        &self,
        ra: &RoleAssignment,
        ra_scope: Path<'_>,
        principal: NaivePrincipal<'_>,
    ) -> bool {
        let Some(named) = &ra.principal else {
            return false;
        };
        match (PrincipalType::try_from(named.r#type), principal) {
            (Ok(PrincipalType::User), NaivePrincipal::User(user)) => named.identifier == user,
            (Ok(PrincipalType::UserGroup), NaivePrincipal::User(user)) => {
                let home = at_level(ra_scope, named.scope_level);
                self.snapshot.user_groups.iter().any(|group| {
                    group.identifier == named.identifier
                        && path(group.scope.as_ref()) == home
                        && group.users.iter().any(|member| member == user)
                })
            }
            (Ok(PrincipalType::ServiceAccount), NaivePrincipal::ServiceAccount { identifier, scope }) => {
                named.identifier == identifier && at_level(ra_scope, named.scope_level) == path(Some(scope))
            }
            _ => false,
        }
    }

    fn role_contains(&self, role: &str, ra_scope: Path<'_>, permission: &str) -> bool {
        let custom = self
            .snapshot
            .roles
            .iter()
            .find(|r| r.identifier == role && path(r.scope.as_ref()) == ra_scope);
        match custom {
            Some(custom) => custom.permissions.iter().any(|p| p == permission),
            None => self
                .managed_roles
                .iter()
                .find(|(name, _)| name == role)
                .is_some_and(|(_, permissions)| permissions.iter().any(|p| p == permission)),
        }
    }

    fn group_covers(&self, name: &str, ra_scope: Path<'_>, s: Path<'_>, check: &NaiveCheck<'_>) -> bool {
        let custom = self
            .snapshot
            .resource_groups
            .iter()
            .find(|g| g.identifier == name && path(g.scope.as_ref()) == ra_scope);
        let Some(group) = custom else {
            return match name {
                "_all_account_level_resources"
                | "_all_organization_level_resources"
                | "_all_project_level_resources" => ra_scope == s,
                "_all_resources_including_child_scopes" => ancestor_or_self(ra_scope, s),
                _ => false,
            };
        };
        let covers_scope = group.included_scopes.iter().any(|included| {
            let base = included.scope.as_ref().map_or(ra_scope, |b| path(Some(b)));
            match ScopeFilter::try_from(included.filter) {
                Ok(ScopeFilter::IncludingChildScopes) => ancestor_or_self(base, s),
                Ok(ScopeFilter::ExcludingChildScopes) => base == s,
                _ => false,
            }
        });
        let Some(filter) = &group.resource_filter else {
            return false;
        };
        covers_scope
            && (filter.include_all_resources
                || filter.resources.iter().any(|selector| {
                    selector.resource_type == check.resource_type
                        && match (&selector.attribute_filter, selector.identifiers.is_empty()) {
                            (None, true) => true,
                            (None, false) => check
                                .resource_id
                                .is_some_and(|id| selector.identifiers.iter().any(|i| i == id)),
                            (Some(attribute), _) => check
                                .resource_id
                                .is_some_and(|id| self.attribute_matches(check, id, attribute)),
                        }
                }))
    }

    fn attribute_matches(
        &self,
        check: &NaiveCheck<'_>,
        id: &str,
        attribute: &scopegate::rbac::model::AttributeFilter,
    ) -> bool {
        self.snapshot.resources.iter().any(|resource| {
            path(resource.scope.as_ref()) == path(Some(check.scope))
                && resource.resource_type == check.resource_type
                && resource.identifier == id
                && resource
                    .attributes
                    .get(&attribute.attribute_name)
                    .is_some_and(|value| attribute.attribute_values.contains(value))
        })
    }
}
