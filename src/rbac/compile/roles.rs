//! The `roles` section: the catalog's managed roles first (their indexes are the catalog's), then
//! the account's custom roles, each with its permissions interned and checked against its level.

use super::{Builder, Declaration};
use crate::rbac::compiled::RoleNode;
use crate::rbac::error::ValidationError;
use crate::rbac::ids::{Level, PermissionSet};
use crate::rbac::model::AccountSnapshot;

impl Builder {
    pub(super) fn roles(&mut self, snapshot: &AccountSnapshot) {
        for role in self.catalog.managed_roles() {
            self.account.roles.push(RoleNode {
                identifier: role.name.into(),
                scope: None,
                permissions: role.permissions.clone(),
            });
        }
        for role in &snapshot.roles {
            let declared = Declaration::new("role", &role.identifier, role.scope.as_ref()).reserved(
                self.catalog.managed_role(&role.identifier).is_some(),
                "the identifier of a managed role is reserved",
            );
            let taken = |builder: &Self, scope| {
                builder
                    .custom_roles
                    .contains_key(&(scope, role.identifier.clone()))
            };
            let Some((described, scope)) = self.declare(declared, taken) else {
                continue;
            };
            let level = self.level(scope);
            let permissions = self.permission_set(&role.permissions, &described, Some(level));
            self.custom_roles
                .insert((scope, role.identifier.clone()), self.account.roles.len() as u32);
            self.account.roles.push(RoleNode {
                identifier: role.identifier.as_str().into(),
                scope: Some(scope),
                permissions,
            });
        }
    }

    /// Interns a list of permission IDs, recording unknown ones and, with `level`, ones not allowed there.
    pub(super) fn permission_set(
        &mut self,
        ids: &[String],
        described: &str,
        level: Option<Level>,
    ) -> PermissionSet {
        let mut set = self.catalog.empty_set();
        for id in ids {
            let Some(perm) = self.catalog.permission_id(id) else {
                self.errors.push(ValidationError::UnknownPermission {
                    entry: described.to_owned(),
                    permission: id.clone(),
                });
                continue;
            };
            let allowed = self
                .catalog
                .permission(perm)
                .is_some_and(|p| level.is_none_or(|l| p.levels.contains(l)));
            if let (false, Some(level)) = (allowed, level) {
                self.errors.push(ValidationError::PermissionNotAllowedAtLevel {
                    entry: described.to_owned(),
                    permission: id.clone(),
                    level: level.name(),
                });
                continue;
            }
            set.insert(perm);
        }
        set
    }
}
