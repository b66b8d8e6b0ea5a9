//! The `role_assignments` section: each assignment resolved to the principal slots it grants to
//! (user groups expanded), a role available at its scope and a resource-group instance built for
//! its scope; enabled ones become raw grants that `Builder::finish` indexes.

use std::collections::HashSet;

use super::{Builder, Declaration};
use crate::rbac::catalog::Catalog;
use crate::rbac::compiled::{AssignmentNode, Grant, PrincipalId, ResourceGroupNode, ScopeId};
use crate::rbac::error::ValidationError;
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
            if assignment.disabled {
                continue;
            }
            let grant = Grant {
                role,
                resource_group,
                assignment: index,
                via_group,
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
                let group = self
                    .group_index
                    .get(&(home, principal.identifier.clone()))
                    .copied();
                match group.and_then(|group| Some((self.members.get(group as usize)?.clone(), group))) {
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
        if let Some(index) = self.custom_roles.get(&(scope, role.to_owned())) {
            return Some(*index);
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
        let instance_key = (name.to_owned(), scope);
        if let Some(index) = self.group_instances.get(&instance_key) {
            return Some(*index);
        }
        let custom = self
            .custom_group_index
            .get(&(scope, name.to_owned()))
            .and_then(|custom| self.custom_groups.get(*custom));
        let node = if let Some(custom) = custom {
            ResourceGroupNode {
                identifier: name.into(),
                scopes: custom
                    .scopes
                    .iter()
                    .map(|(base, including)| (base.unwrap_or(custom.scope), *including))
                    .collect(),
                include_all_resources: custom.include_all_resources,
                selectors: custom.selectors.clone().into_boxed_slice(),
            }
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
        self.group_instances.insert(instance_key, index);
        Some(index)
    }
}
