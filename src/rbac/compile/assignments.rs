//! The `role_assignments` section: each assignment resolved to the principal slots it grants to
//! (user groups expanded), a role available at its scope and a resource-group instance built for
//! its scope; enabled ones become raw grants that `Builder::finish` indexes.

use std::collections::HashSet;

use super::{Builder, Declaration};
use crate::rbac::catalog::Catalog;
use crate::rbac::compiled::{
    AssignmentNode, CompiledAccount, Grant, PrincipalId, ResourceGroupNode, ScopeId,
};
use crate::rbac::error::ValidationError;
use crate::rbac::index::{AssignmentState, Grantee};
use crate::rbac::model::{self, AccountSnapshot, PrincipalType};

impl Builder {
    pub(super) fn assignments(&mut self, snapshot: &AccountSnapshot) {
        let mut seen = HashSet::new();
        for assignment in &snapshot.role_assignments {
            let declared = Declaration::new(
                "role assignment",
                &assignment.identifier,
                assignment.scope.as_ref(),
            );
            let taken = |_: &Self, scope| !seen.insert((scope, assignment.identifier.clone()));
            let Some((described, scope)) = self.declare(declared, taken) else {
                continue;
            };
            let principals = self.assignment_principals(assignment, scope, &described);
            let role = self.assignment_role(&assignment.role, scope, &described);
            let group = self.assignment_group(&assignment.resource_group, scope, &described);
            let (Some((slots, via_group)), Some(role), Some(resource_group)) = (principals, role, group)
            else {
                continue;
            };
            let index = self.account.assignments.len() as u32;
            self.account.assignments.push(AssignmentNode {
                identifier: assignment.identifier.as_str().into(),
                scope,
            });
            if let Some(names) = self.account.index.scope_mut(scope) {
                names
                    .assignments
                    .insert(assignment.identifier.as_str().into(), index);
            }
            let grantee = match (via_group, slots.first()) {
                (u32::MAX, Some(slot)) => Grantee::Slot(*slot),
                _ => Grantee::Group(via_group),
            };
            if let Grantee::Group(group) = grantee
                && let Some(state) = self.account.index.group_mut(group)
            {
                state.assignments.push(index);
            }
            let grant = (!assignment.disabled).then_some(Grant {
                role,
                resource_group,
                assignment: index,
                via_group,
            });
            self.account.index.assignments.push(AssignmentState {
                grantee: Some(grantee),
                scope,
                grant,
            });
            let Some(grant) = grant else {
                continue;
            };
            for slot in slots {
                self.raw_grants.push((slot, scope, grant));
            }
        }
    }

    /// The principal slots an assignment grants to, and the group it grants through.
    fn assignment_principals(
        &mut self,
        assignment: &model::RoleAssignment,
        scope: ScopeId,
        described: &str,
    ) -> Option<(Vec<u32>, u32)> {
        let Some(principal) = &assignment.principal else {
            self.malformed(described.to_owned(), "missing `principal`");
            return None;
        };
        let users = self.account.users.len() as u32;
        match PrincipalType::try_from(principal.r#type) {
            Ok(PrincipalType::User) => {
                if principal.scope_level != 0 {
                    self.malformed(
                        described.to_owned(),
                        "a user is account-wide: `scope_level` does not apply",
                    );
                    return None;
                }
                match self.account.user_index.get(principal.identifier.as_str()) {
                    Some(user) => Some((vec![*user], u32::MAX)),
                    None => {
                        self.errors.push(ValidationError::UnknownPrincipal {
                            entry: described.to_owned(),
                            kind: "user",
                            name: principal.identifier.clone(),
                        });
                        None
                    }
                }
            }
            Ok(PrincipalType::UserGroup) => {
                let home = self.scope_at_level(scope, principal.scope_level, described)?;
                let index = &self.account.index;
                let group = index.lookup(home, |s| &s.groups, &principal.identifier);
                let members = |group| Some((index.group(group)?.members.to_vec(), group));
                match group.and_then(members) {
                    Some(found) => Some(found),
                    None => {
                        let name = format!("{}/{}", self.path(home), principal.identifier);
                        self.errors.push(ValidationError::UnknownPrincipal {
                            entry: described.to_owned(),
                            kind: "user group",
                            name,
                        });
                        None
                    }
                }
            }
            Ok(PrincipalType::ServiceAccount) => {
                let home = self.scope_at_level(scope, principal.scope_level, described)?;
                match self.account.service_account_in(&principal.identifier, home) {
                    Some(PrincipalId::ServiceAccount(sa)) => Some((vec![users + sa], u32::MAX)),
                    _ => {
                        let name = format!("{}/{}", self.path(home), principal.identifier);
                        self.errors.push(ValidationError::UnknownPrincipal {
                            entry: described.to_owned(),
                            kind: "service account",
                            name,
                        });
                        None
                    }
                }
            }
            _ => {
                self.malformed(
                    described.to_owned(),
                    "principal needs `type`: USER, USER_GROUP or SERVICE_ACCOUNT",
                );
                None
            }
        }
    }

    /// The role an assignment names: a custom role of its own scope, else a managed role that may
    /// be assigned at that scope's level.
    fn assignment_role(&mut self, role: &str, scope: ScopeId, described: &str) -> Option<u32> {
        if let Some(index) = self.account.index.lookup(scope, |s| &s.roles, role) {
            return Some(index);
        }
        let level = self.level(scope);
        let managed = self
            .catalog
            .managed_roles()
            .iter()
            .enumerate()
            .find(|(_, r)| r.name == role);
        match managed {
            Some((index, managed)) if managed.levels.contains(level) => Some(index as u32),
            Some(_) => {
                self.errors.push(ValidationError::ManagedLevel {
                    entry: described.to_owned(),
                    kind: "role",
                    name: role.to_owned(),
                    level: level.name(),
                });
                None
            }
            None => {
                self.errors.push(ValidationError::UnknownRole {
                    entry: described.to_owned(),
                    role: role.to_owned(),
                });
                None
            }
        }
    }

    /// The instance of the resource group an assignment names, built for its scope on first use: a
    /// custom group of that scope, else a managed group that may be used at that scope's level.
    fn assignment_group(&mut self, name: &str, scope: ScopeId, described: &str) -> Option<u32> {
        if let Some(index) = self.account.index.lookup(scope, |s| &s.instances, name) {
            return Some(index);
        }
        let node = if let Some(custom) = custom_instance(&self.account, name, scope) {
            custom
        } else {
            let level = self.level(scope);
            match Catalog::managed_resource_group(name) {
                Some(managed) if managed.levels.contains(level) => ResourceGroupNode {
                    identifier: name.into(),
                    scopes: Box::new([(scope, managed.including_child_scopes)]),
                    include_all_resources: true,
                    selectors: Box::new([]),
                },
                Some(_) => {
                    self.errors.push(ValidationError::ManagedLevel {
                        entry: described.to_owned(),
                        kind: "resource group",
                        name: name.to_owned(),
                        level: level.name(),
                    });
                    return None;
                }
                None => {
                    self.errors.push(ValidationError::UnknownResourceGroup {
                        entry: described.to_owned(),
                        group: name.to_owned(),
                    });
                    return None;
                }
            }
        };
        let index = self.account.resource_groups.len() as u32;
        self.account.resource_groups.push(node);
        if let Some(names) = self.account.index.scope_mut(scope) {
            names.instances.insert(name.into(), index);
        }
        Some(index)
    }
}

/// The instance for an assignment in `scope` of the custom resource group `name` of that scope.
pub(crate) fn custom_instance(
    account: &CompiledAccount,
    name: &str,
    scope: ScopeId,
) -> Option<ResourceGroupNode> {
    let index = &account.index;
    let custom = index
        .lookup(scope, |s| &s.custom_groups, name)
        .and_then(|custom| index.custom_groups.get(custom as usize))?;
    Some(ResourceGroupNode {
        identifier: name.into(),
        scopes: custom
            .scopes
            .iter()
            .map(|(base, including)| (base.unwrap_or(custom.scope), *including))
            .collect(),
        include_all_resources: custom.include_all_resources,
        selectors: custom.selectors.clone().into_boxed_slice(),
    })
}
