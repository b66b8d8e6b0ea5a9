//! A deliberately naive reading of the access-control model (docs/model.md "The decision", "Resource
//! groups", "Principals", "Roles"): THE oracle. The property test (`tests/model_equivalence/main.rs`) holds the
//! engine against it, and the `decide` bench (`benches/support/`, which includes this file) times it
//! as the baseline of a literal scan.
//!
//! Written from the spec, not from `src/rbac`: no indexes, no interning, every quantifier of the spec
//! is a plain loop over the raw `AccountSnapshot`. It only takes *data* from the engine: each
//! permission's levels, resource type and implicit flag, and the contents of the managed roles.
//! Scopes are plain `(org, project)` paths with `""` for "absent", borrowed from the snapshot and the
//! check so that a scan allocates nothing.
//!
//! It assumes the snapshot is valid (the test asserts `compile` accepts it).

use scopegate::rbac::model::{
    AccountSnapshot, PrincipalType, RoleAssignment, Scope, ScopeFilter, ScopeLevel,
};
use scopegate::rbac::{Catalog, Level};

/// Who asks: a user by identifier, or a service account by identifier and the scope it lives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NaivePrincipal {
    /// An account-wide user.
    User(String),
    /// A service account living in `org`/`project` (both none = the account).
    ServiceAccount {
        /// Its identifier.
        identifier: String,
        /// The org it lives in, if any.
        org: Option<String>,
        /// The project it lives in, if any.
        project: Option<String>,
    },
}

/// A scope of the account as a path: `("", "")` = account, `(org, "")` = org, `(org, project)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Path<'a> {
    org: &'a str,
    project: &'a str,
}

impl<'a> Path<'a> {
    fn new(org: Option<&'a str>, project: Option<&'a str>) -> Path<'a> {
        Path {
            org: org.unwrap_or(""),
            project: project.unwrap_or(""),
        }
    }

    /// The scope a snapshot entry names; an absent scope is the account.
    fn of(scope: Option<&'a Scope>) -> Path<'a> {
        match scope {
            None => Path::new(None, None),
            Some(scope) => Path {
                org: &scope.org,
                project: &scope.project,
            },
        }
    }

    fn level(&self) -> Level {
        if self.org.is_empty() {
            Level::Account
        } else if self.project.is_empty() {
            Level::Organization
        } else {
            Level::Project
        }
    }

    /// `self ⊑ other`: self is other or one of its ancestors.
    fn is_ancestor_or_self_of(&self, other: &Path<'_>) -> bool {
        if self.org.is_empty() {
            return true; // the account is above everything
        }
        if self.org != other.org {
            return false;
        }
        self.project.is_empty() || self.project == other.project
    }

    /// The ancestor-or-self of this scope at `level`, if there is one.
    fn ancestor_at(&self, level: Level) -> Option<Path<'a>> {
        let ancestor = match level {
            Level::Account => Path::new(None, None),
            Level::Organization => Path {
                org: self.org,
                project: "",
            },
            Level::Project => *self,
        };
        if ancestor.level() == level && ancestor.is_ancestor_or_self_of(self) {
            Some(ancestor)
        } else {
            None
        }
    }

    /// Whether the snapshot declares this scope.
    fn exists_in(&self, snapshot: &AccountSnapshot) -> bool {
        if self.org.is_empty() {
            return self.project.is_empty();
        }
        for organization in &snapshot.organizations {
            if organization.identifier == self.org {
                if self.project.is_empty() {
                    return true;
                }
                for project in &organization.projects {
                    if *project == self.project {
                        return true;
                    }
                }
            }
        }
        false
    }
}

/// The decision of docs/model.md for `principal` (with token subset `N` = `token_subset`) asking for
/// `permission` on resource (`resource_type`, `resource_id`) in scope `org`/`project`.
#[allow(clippy::too_many_arguments)]
pub fn naive_decide(
    snapshot: &AccountSnapshot,
    catalog: &Catalog,
    principal: &NaivePrincipal,
    token_subset: Option<&[&str]>,
    org: Option<&str>,
    project: Option<&str>,
    permission: &str,
    resource_type: &str,
    resource_id: Option<&str>,
) -> bool {
    let scope = Path::new(org, project);

    // "A disabled user authenticates to nothing" / "A disabled user is denied everything".
    if let NaivePrincipal::User(name) = principal {
        let mut enabled_user_found = false;
        for user in &snapshot.users {
            if user.identifier == *name && !user.disabled {
                enabled_user_found = true;
            }
        }
        if !enabled_user_found {
            return false;
        }
    }

    let mut found = None;
    for candidate in catalog.permissions() {
        if &*candidate.id == permission {
            found = Some(candidate);
        }
    }
    let Some(catalog_permission) = found else {
        return false;
    };

    // 1. S's level must be allowed for p.
    if !catalog_permission.levels.contains(scope.level()) {
        return false;
    }
    // 2. The token's subset N, if any, must hold p.
    if let Some(subset) = token_subset
        && !subset.contains(&permission)
    {
        return false;
    }
    // 3. Implicit permissions are held by everyone.
    if catalog_permission.implicit {
        return true;
    }
    // 4. Some enabled assignment grants it at S ...
    let request = Request {
        snapshot,
        catalog,
        principal,
        permission,
        resource_type,
        resource_id,
        attributes_scope: &scope,
    };
    if request.some_assignment_grants_at(&scope) {
        return true;
    }
    // ... or, for a scope-typed resource, at the child scope S/I that *is* the resource: an
    // ORGANIZATION is a child of the account, a PROJECT a child of an organization.
    if let Some(identifier) = resource_id {
        let child = if resource_type == "ORGANIZATION" && scope.level() == Level::Account {
            Some(Path::new(Some(identifier), None))
        } else if resource_type == "PROJECT" && scope.level() == Level::Organization {
            Some(Path::new(Some(scope.org), Some(identifier)))
        } else {
            None
        };
        if let Some(child) = child
            && child.exists_in(snapshot)
            && catalog_permission.levels.contains(child.level())
            && request.some_assignment_grants_at(&child)
        {
            return true;
        }
    }
    // 5.
    false
}

/// Everything rule 4 looks at, except the scope the grant must cover.
struct Request<'a> {
    snapshot: &'a AccountSnapshot,
    catalog: &'a Catalog,
    principal: &'a NaivePrincipal,
    permission: &'a str,
    resource_type: &'a str,
    resource_id: Option<&'a str>,
    /// Where the resource's attributes are recorded: the checked scope `S`.
    attributes_scope: &'a Path<'a>,
}

impl Request<'_> {
    /// Rule 4 at scope `at`: is there an enabled assignment meeting every condition?
    fn some_assignment_grants_at(&self, at: &Path<'_>) -> bool {
        for assignment in &self.snapshot.role_assignments {
            if assignment.disabled {
                continue;
            }
            let assignment_scope = Path::of(assignment.scope.as_ref());
            if !assignment_scope.is_ancestor_or_self_of(at) {
                continue;
            }
            if !self.principal_matches(assignment, &assignment_scope) {
                continue;
            }
            if !self.role_contains_permission(&assignment.role, &assignment_scope) {
                continue;
            }
            if !self.group_covers_scope(&assignment.resource_group, &assignment_scope, at) {
                continue;
            }
            if !self.group_covers_resource(&assignment.resource_group, &assignment_scope) {
                continue;
            }
            return true;
        }
        false
    }

    /// `RA.principal` is P, or a USER_GROUP with P as a member. Groups and service accounts live at
    /// the assignment's scope, or at its ancestor at `scope_level` when that is set.
    fn principal_matches(&self, assignment: &RoleAssignment, assignment_scope: &Path<'_>) -> bool {
        let Some(reference) = &assignment.principal else {
            return false;
        };
        let home = if reference.scope_level == ScopeLevel::Unspecified as i32 {
            Some(*assignment_scope)
        } else if reference.scope_level == ScopeLevel::Account as i32 {
            assignment_scope.ancestor_at(Level::Account)
        } else if reference.scope_level == ScopeLevel::Organization as i32 {
            assignment_scope.ancestor_at(Level::Organization)
        } else if reference.scope_level == ScopeLevel::Project as i32 {
            assignment_scope.ancestor_at(Level::Project)
        } else {
            None
        };
        let Some(home) = home else {
            return false;
        };
        match self.principal {
            NaivePrincipal::User(name) => {
                if reference.r#type == PrincipalType::User as i32 {
                    return reference.identifier == *name;
                }
                if reference.r#type == PrincipalType::UserGroup as i32 {
                    for group in &self.snapshot.user_groups {
                        if group.identifier == reference.identifier
                            && Path::of(group.scope.as_ref()) == home
                            && group.users.contains(name)
                        {
                            return true;
                        }
                    }
                }
                false
            }
            NaivePrincipal::ServiceAccount {
                identifier,
                org,
                project,
            } => {
                reference.r#type == PrincipalType::ServiceAccount as i32
                    && reference.identifier == *identifier
                    && home == Path::new(org.as_deref(), project.as_deref())
            }
        }
    }

    /// A custom role named `role` living exactly at the assignment's scope, else the managed role.
    fn role_contains_permission(&self, role: &str, assignment_scope: &Path<'_>) -> bool {
        for custom in &self.snapshot.roles {
            if custom.identifier == role && Path::of(custom.scope.as_ref()) == *assignment_scope {
                return custom.permissions.iter().any(|p| p == self.permission);
            }
        }
        let Some(managed) = self.catalog.managed_role(role) else {
            return false;
        };
        if !managed.levels.contains(assignment_scope.level()) {
            return false;
        }
        match self.catalog.permission_id(self.permission) {
            Some(id) => managed.permissions.contains(id),
            None => false,
        }
    }

    /// Included scopes: INCLUDING covers `B ⊑ at`, EXCLUDING covers `B = at`; an entry without a
    /// scope has the assignment's scope as `B` (a custom group is used only where it lives).
    fn group_covers_scope(&self, group: &str, assignment_scope: &Path<'_>, at: &Path<'_>) -> bool {
        for custom in &self.snapshot.resource_groups {
            if custom.identifier == group && Path::of(custom.scope.as_ref()) == *assignment_scope {
                for included in &custom.included_scopes {
                    let base = match &included.scope {
                        Some(scope) => Path::of(Some(scope)),
                        None => *assignment_scope,
                    };
                    let covered = if included.filter == ScopeFilter::IncludingChildScopes as i32 {
                        base.is_ancestor_or_self_of(at)
                    } else if included.filter == ScopeFilter::ExcludingChildScopes as i32 {
                        base == *at
                    } else {
                        false
                    };
                    if covered {
                        return true;
                    }
                }
                return false;
            }
        }
        // Managed groups, resolved against the assignment's scope (docs/model.md "Resource groups").
        match group {
            "_all_account_level_resources" => {
                assignment_scope.level() == Level::Account && assignment_scope == at
            }
            "_all_organization_level_resources" => {
                assignment_scope.level() == Level::Organization && assignment_scope == at
            }
            "_all_project_level_resources" => {
                assignment_scope.level() == Level::Project && assignment_scope == at
            }
            "_all_resources_including_child_scopes" => {
                assignment_scope.level() != Level::Project && assignment_scope.is_ancestor_or_self_of(at)
            }
            _ => false,
        }
    }

    /// Resource filter: include-all; or an entry of type T with identifiers containing I, or an
    /// attribute filter the resource matches, or neither (type-wide). Without I only include-all
    /// and type-wide entries cover.
    fn group_covers_resource(&self, group: &str, assignment_scope: &Path<'_>) -> bool {
        for custom in &self.snapshot.resource_groups {
            if custom.identifier == group && Path::of(custom.scope.as_ref()) == *assignment_scope {
                let Some(filter) = &custom.resource_filter else {
                    return false; // an empty filter grants nothing
                };
                if filter.include_all_resources {
                    return true;
                }
                for selector in &filter.resources {
                    if selector.resource_type != self.resource_type {
                        continue;
                    }
                    if !selector.identifiers.is_empty() {
                        if let Some(identifier) = self.resource_id
                            && selector.identifiers.iter().any(|i| i == identifier)
                        {
                            return true;
                        }
                    } else if let Some(attribute_filter) = &selector.attribute_filter {
                        if let Some(identifier) = self.resource_id
                            && self.resource_has_attribute(
                                identifier,
                                &attribute_filter.attribute_name,
                                &attribute_filter.attribute_values,
                            )
                        {
                            return true;
                        }
                    } else {
                        return true;
                    }
                }
                return false;
            }
        }
        // Every managed group includes all resources.
        matches!(
            group,
            "_all_account_level_resources"
                | "_all_organization_level_resources"
                | "_all_project_level_resources"
                | "_all_resources_including_child_scopes"
        )
    }

    /// Whether the snapshot records resource (S, T, I) with attribute `name` set to one of `values`.
    fn resource_has_attribute(&self, identifier: &str, name: &str, values: &[String]) -> bool {
        for resource in &self.snapshot.resources {
            if Path::of(resource.scope.as_ref()) == *self.attributes_scope
                && resource.resource_type == self.resource_type
                && resource.identifier == identifier
            {
                for (key, value) in &resource.attributes {
                    if key == name && values.contains(value) {
                        return true;
                    }
                }
            }
        }
        false
    }
}
