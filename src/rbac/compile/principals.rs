//! The principal sections: `users` (account-wide), `user_groups` (their members resolved to user
//! indexes) and `service_accounts` (scoped; the same identifier may recur in other scopes).

use std::sync::Arc;

use super::{Builder, Declaration};
use crate::rbac::compiled::{GroupNode, ServiceAccountNode, UserNode};
use crate::rbac::error::ValidationError;
use crate::rbac::index::GroupState;
use crate::rbac::model::AccountSnapshot;

impl Builder {
    pub(super) fn users(&mut self, snapshot: &AccountSnapshot) {
        for user in &snapshot.users {
            let declared = Declaration::new("user", &user.identifier, None).on_the_wire();
            let taken = |builder: &Self, _| builder.account.user_index.contains_key(user.identifier.as_str());
            if self.declare(declared, taken).is_none() {
                continue;
            }
            let index = self.account.users.len() as u32;
            Arc::make_mut(&mut self.account.user_index).insert(user.identifier.as_str().into(), index);
            self.account.users.push(UserNode {
                identifier: user.identifier.as_str().into(),
                disabled: user.disabled,
            });
        }
    }

    pub(super) fn groups(&mut self, snapshot: &AccountSnapshot) {
        for group in &snapshot.user_groups {
            let declared = Declaration::new("user group", &group.identifier, group.scope.as_ref());
            let taken = |builder: &Self, scope| {
                builder
                    .account
                    .index
                    .lookup(scope, |s| &s.groups, &group.identifier)
                    .is_some()
            };
            let Some((described, scope)) = self.declare(declared, taken) else {
                continue;
            };
            let mut members = Vec::with_capacity(group.users.len());
            for user in &group.users {
                match self.account.user_index.get(user.as_str()) {
                    Some(index) => members.push(*index),
                    None => self.errors.push(ValidationError::UnknownPrincipal {
                        entry: described.clone(),
                        kind: "user",
                        name: user.clone(),
                    }),
                }
            }
            members.sort_unstable();
            members.dedup();
            let index = self.account.groups.len() as u32;
            if let Some(names) = self.account.index.scope_mut(scope) {
                names.groups.insert(group.identifier.as_str().into(), index);
            }
            self.account.groups.push(GroupNode {
                identifier: group.identifier.as_str().into(),
                scope,
            });
            self.account.index.groups.push(Arc::new(GroupState {
                members: members.into_boxed_slice(),
                assignments: Vec::new(),
            }));
        }
    }

    pub(super) fn service_accounts(&mut self, snapshot: &AccountSnapshot) {
        for sa in &snapshot.service_accounts {
            let declared =
                Declaration::new("service account", &sa.identifier, sa.scope.as_ref()).on_the_wire();
            let taken = |builder: &Self, scope| {
                builder
                    .account
                    .service_account_in(&sa.identifier, scope)
                    .is_some()
            };
            let Some((_, scope)) = self.declare(declared, taken) else {
                continue;
            };
            let index = self.account.service_accounts.len() as u32;
            Arc::make_mut(&mut self.account.service_account_index)
                .entry(sa.identifier.as_str().into())
                .or_default()
                .push(index);
            Arc::make_mut(&mut self.account.service_accounts).push(ServiceAccountNode {
                identifier: sa.identifier.as_str().into(),
                scope,
            });
        }
    }
}
