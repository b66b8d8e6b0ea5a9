//! The decision (docs/model.md "The decision"): pure, synchronous, allocation-free. Returns the
//! answer with the reason that produced it; naming things for people is left to `Decision::explain`.

use std::fmt::Write as _;

use crate::rbac::compiled::{CompiledAccount, Grant, PrincipalId, ResourceGroupNode, ScopeId, Selector};
use crate::rbac::ids::{Level, PermId, PermissionSet, ResourceTypeId};

/// Who is asking: a principal and, for an API token with a subset, the permissions it is limited to.
#[derive(Debug, Clone, Copy)]
pub struct Principal<'a> {
    /// The user or service account.
    pub id: PrincipalId,
    /// The token's permission subset `N`, if any.
    pub token_permissions: Option<&'a PermissionSet>,
}

/// What is asked: permission `p` on resource `(T, I)` in scope `S`.
#[derive(Debug, Clone, Copy)]
pub struct Check<'a> {
    /// The scope `S`.
    pub scope: ScopeId,
    /// The permission `p`.
    pub permission: PermId,
    /// The resource type `T` (the catalog's unless a route overrides it).
    pub resource_type: ResourceTypeId,
    /// The resource identifier `I`, absent for create and list.
    pub resource_id: Option<&'a str>,
}

/// Which rule produced a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Rule 3: every authenticated principal holds the permission.
    Implicit,
    /// Rule 4: an enabled role assignment grants it.
    Granted {
        /// The grant that matched.
        grant: Grant,
        /// The scope it matched at (the checked scope, or the child scope of a scope-typed resource).
        matched_scope: ScopeId,
    },
    /// The principal is a disabled user.
    PrincipalDisabled,
    /// Rule 1: the permission cannot be granted at the scope's level.
    PermissionNotAllowedAtScope,
    /// Rule 2: the token's permission subset leaves it out.
    TokenPermissionSubset,
    /// Rule 5: nothing grants it.
    NoMatchingGrant,
}

impl Reason {
    /// The stable code of the reason (logs, metrics, CLI).
    pub fn code(self) -> &'static str {
        match self {
            Reason::Implicit => "implicit",
            Reason::Granted { .. } => "granted",
            Reason::PrincipalDisabled => "principal_disabled",
            Reason::PermissionNotAllowedAtScope => "permission_not_allowed_at_scope",
            Reason::TokenPermissionSubset => "token_permission_subset",
            Reason::NoMatchingGrant => "no_matching_grant",
        }
    }
}

/// The answer with its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the check is allowed.
    pub allowed: bool,
    /// Why.
    pub reason: Reason,
}

impl Decision {
    fn allow(reason: Reason) -> Self {
        Self {
            allowed: true,
            reason,
        }
    }

    fn deny(reason: Reason) -> Self {
        Self {
            allowed: false,
            reason,
        }
    }

    /// A one-line explanation naming the assignment, role, resource group and user group of an
    /// allow, or the failed check `(permission, scope, resource type, identifier)` of a denial.
    pub fn explain(&self, account: &CompiledAccount, check: &Check<'_>) -> String {
        let catalog = account.catalog();
        let permission = catalog.permission_name(check.permission);
        let mut text = String::new();
        match self.reason {
            Reason::Implicit => {
                let _ = write!(
                    text,
                    "implicit: every authenticated principal holds `{permission}`"
                );
            }
            Reason::Granted { grant, matched_scope } => {
                let assignment = account.assignments.get(grant.assignment as usize);
                let name = |o: Option<&str>| o.unwrap_or("?").to_owned();
                let _ = write!(
                    text,
                    "granted by assignment `{}` in `{}`: role `{}`, resource group `{}`",
                    name(assignment.map(|a| &*a.identifier)),
                    assignment.map_or_else(String::new, |a| account.scope_path(a.scope)),
                    name(account.roles.get(grant.role as usize).map(|r| &*r.identifier)),
                    name(
                        account
                            .resource_groups
                            .get(grant.resource_group as usize)
                            .map(|g| &*g.identifier)
                    ),
                );
                if let Some(group) = account.groups.get(grant.via_group as usize) {
                    let _ = write!(
                        text,
                        ", through user group `{}` of `{}`",
                        group.identifier,
                        account.scope_path(group.scope)
                    );
                }
                if matched_scope != check.scope {
                    let _ = write!(text, ", matched in `{}`", account.scope_path(matched_scope));
                }
            }
            reason => {
                let _ = write!(
                    text,
                    "{}: permission `{permission}`, scope `{}`, resource type `{}`, identifier `{}`",
                    reason.code(),
                    account.scope_path(check.scope),
                    catalog.resource_type_name(check.resource_type),
                    check.resource_id.unwrap_or("-"),
                );
            }
        }
        text
    }
}

/// Decides whether `principal` may do `check` in `account` (docs/model.md "The decision").
pub fn decide(account: &CompiledAccount, principal: &Principal<'_>, check: &Check<'_>) -> Decision {
    if account.is_disabled(principal.id) {
        return Decision::deny(Reason::PrincipalDisabled);
    }
    let Some(permission) = account.catalog().permission(check.permission) else {
        return Decision::deny(Reason::NoMatchingGrant);
    };
    let Some(scope) = account.scope(check.scope) else {
        return Decision::deny(Reason::NoMatchingGrant);
    };
    // Rule 1.
    if !permission.levels.contains(scope.level) {
        return Decision::deny(Reason::PermissionNotAllowedAtScope);
    }
    // Rule 2.
    if principal
        .token_permissions
        .is_some_and(|subset| !subset.contains(check.permission))
    {
        return Decision::deny(Reason::TokenPermissionSubset);
    }
    // Rule 3.
    if permission.implicit {
        return Decision::allow(Reason::Implicit);
    }
    // Rule 4.
    if let Some(grant) = find_grant(account, principal.id, check, check.scope) {
        return Decision::allow(Reason::Granted {
            grant,
            matched_scope: check.scope,
        });
    }
    // Rule 4, scope-typed resources: a project or organization is also checked as the scope itself.
    if let Some(child) = scope_resource_child(account, check) {
        let child_allowed = account
            .scope(child)
            .is_some_and(|node| permission.levels.contains(node.level));
        if child_allowed && let Some(grant) = find_grant(account, principal.id, check, child) {
            return Decision::allow(Reason::Granted {
                grant,
                matched_scope: child,
            });
        }
    }
    // Rule 5.
    Decision::deny(Reason::NoMatchingGrant)
}

/// For a check on ORGANIZATION/PROJECT `I` in `S`, the scope `S/I` if it exists.
fn scope_resource_child(account: &CompiledAccount, check: &Check<'_>) -> Option<ScopeId> {
    let (organization, project) = account.catalog().scope_resource_types();
    let level = if Some(check.resource_type) == organization {
        Level::Organization
    } else if Some(check.resource_type) == project {
        Level::Project
    } else {
        return None;
    };
    // The resource is the child scope itself, so the child must be of the resource's kind: a
    // PROJECT named like an org (or the reverse) is not that scope.
    let child = account.child_scope(check.scope, check.resource_id?)?;
    account
        .scope(child)
        .is_some_and(|node| node.level == level)
        .then_some(child)
}

/// The first enabled grant of `principal` made at `scope` or an ancestor that grants the check.
fn find_grant(
    account: &CompiledAccount,
    principal: PrincipalId,
    check: &Check<'_>,
    scope: ScopeId,
) -> Option<Grant> {
    let mut current = Some(scope);
    while let Some(at) = current {
        for grant in account.grants_at(principal, at) {
            if grant_covers(account, grant, check, scope) {
                return Some(*grant);
            }
        }
        current = account.scope(at).and_then(|node| node.parent);
    }
    None
}

#[inline]
fn grant_covers(account: &CompiledAccount, grant: &Grant, check: &Check<'_>, scope: ScopeId) -> bool {
    let role_grants = account
        .roles
        .get(grant.role as usize)
        .is_some_and(|role| role.permissions.contains(check.permission));
    role_grants
        && account
            .resource_groups
            .get(grant.resource_group as usize)
            .is_some_and(|group| {
                covers_scope(account, group, scope) && covers_resource(account, group, check)
            })
}

fn covers_scope(account: &CompiledAccount, group: &ResourceGroupNode, scope: ScopeId) -> bool {
    group.scopes.iter().any(|&(base, including)| {
        if including {
            account.is_ancestor_or_self(base, scope)
        } else {
            base == scope
        }
    })
}

fn covers_resource(account: &CompiledAccount, group: &ResourceGroupNode, check: &Check<'_>) -> bool {
    if group.include_all_resources {
        return true;
    }
    group.selectors.iter().any(|(resource_type, selector)| {
        *resource_type == check.resource_type
            && match selector {
                Selector::TypeWide => true,
                Selector::Identifiers(ids) => check.resource_id.is_some_and(|id| ids.contains(id)),
                Selector::Attribute { name, values } => check.resource_id.is_some_and(|id| {
                    account
                        .resource_attributes(check.scope, check.resource_type, id)
                        .is_some_and(|attributes| {
                            attributes
                                .iter()
                                .any(|(key, value)| key == name && values.contains(value))
                        })
                }),
            }
    })
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
