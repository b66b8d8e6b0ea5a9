//! The `roles` section: the catalog's managed roles first (their indexes are the catalog's), then
//! the account's custom roles, each with its permissions interned and checked against its level.

use std::sync::Arc;

use super::{Builder, Declaration};
use crate::rbac::catalog::Catalog;
use crate::rbac::compiled::RoleNode;
use crate::rbac::error::ValidationError;
use crate::rbac::ids::{Level, PermissionSet};
use crate::rbac::model::AccountSnapshot;

impl Builder {
    pub(super) fn roles(&mut self, snapshot: &AccountSnapshot) {
        let roles = Arc::make_mut(&mut self.account.roles);
        for role in self.catalog.managed_roles() {
            roles.push(RoleNode {
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
                    .account
                    .index
                    .lookup(scope, |s| &s.roles, &role.identifier)
                    .is_some()
            };
            let Some((described, scope)) = self.declare(declared, taken) else {
                continue;
            };
            let level = self.level(scope);
            let permissions = self.permission_set(&role.permissions, &described, Some(level));
            let index = self.account.roles.len() as u32;
            if let Some(names) = self.account.index.scope_mut(scope) {
                names.roles.insert(role.identifier.as_str().into(), index);
            }
            Arc::make_mut(&mut self.account.roles).push(RoleNode {
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
        permission_set(&self.catalog, ids, described, level, &mut self.errors)
    }
}

/// [`Builder::permission_set`] against a catalog, recording into `errors`.
pub(crate) fn permission_set(
    catalog: &Catalog,
    ids: &[String],
    described: &str,
    level: Option<Level>,
    errors: &mut Vec<ValidationError>,
) -> PermissionSet {
    let mut set = catalog.empty_set();
    for id in ids {
        let Some(perm) = catalog.permission_id(id) else {
            errors.push(ValidationError::UnknownPermission {
                entry: described.to_owned(),
                permission: id.clone(),
            });
            continue;
        };
        let allowed = catalog
            .permission(perm)
            .is_some_and(|p| level.is_none_or(|l| p.levels.contains(l)));
        if let (false, Some(level)) = (allowed, level) {
            errors.push(ValidationError::PermissionNotAllowedAtLevel {
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
