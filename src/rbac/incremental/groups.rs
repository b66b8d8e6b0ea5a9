//! User groups: a membership change moves the grants of the group's assignments between the users
//! who joined and left; a new group is declared; a group no assignment names can be deleted.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::rbac::compile::identifier_well_formed;
use crate::rbac::compiled::{CompiledAccount, GroupNode};
use crate::rbac::delta::ScopePath;
use crate::rbac::index::GroupState;
use crate::rbac::model::UserGroup;

use super::grants::{GrantEdit, edit};
use super::{Fallback, resolve};

pub(super) fn upsert(account: &mut CompiledAccount, group: &UserGroup) -> Result<(), Fallback> {
    const INVALID: Fallback = "the user group is invalid or names an unknown user";
    if !identifier_well_formed(&group.identifier) {
        return Err(INVALID);
    }
    let scope = resolve(account, &ScopePath::of(group.scope.as_ref())).ok_or(INVALID)?;
    let mut members = Vec::with_capacity(group.users.len());
    for user in &group.users {
        members.push(*account.user_index.get(user.as_str()).ok_or(INVALID)?);
    }
    members.sort_unstable();
    members.dedup();
    let Some(index) = account.index.lookup(scope, |s| &s.groups, &group.identifier) else {
        let index = account.groups.len() as u32;
        account.groups.push(GroupNode {
            identifier: group.identifier.as_str().into(),
            scope,
        });
        account.index.groups.push(Arc::new(GroupState {
            members: members.into_boxed_slice(),
            assignments: Vec::new(),
        }));
        account
            .index
            .scope_mut(scope)
            .ok_or(INVALID)?
            .groups
            .insert(group.identifier.as_str().into(), index);
        return Ok(());
    };
    let state = account.index.group(index).ok_or(INVALID)?;
    if *state.members == *members {
        return Ok(());
    }
    // Per user who joined or left, every enabled assignment of the group gains or loses its grant.
    let mut edits: BTreeMap<u32, Vec<GrantEdit>> = BTreeMap::new();
    let joined = members.iter().filter(|m| state.members.binary_search(m).is_err());
    let left = state.members.iter().filter(|m| members.binary_search(m).is_err());
    for assignment in &state.assignments {
        let Some(compiled) = account.index.assignments.get(*assignment as usize) else {
            continue;
        };
        let Some(grant) = compiled.grant else {
            continue;
        };
        for user in joined.clone() {
            edits
                .entry(*user)
                .or_default()
                .push(GrantEdit::Add(compiled.scope, grant));
        }
        for user in left.clone() {
            edits
                .entry(*user)
                .or_default()
                .push(GrantEdit::Remove(compiled.scope, *assignment));
        }
    }
    for (slot, changes) in edits {
        edit(account, slot, &changes);
    }
    account.index.group_mut(index).ok_or(INVALID)?.members = members.into_boxed_slice();
    Ok(())
}

pub(super) fn delete(
    account: &mut CompiledAccount,
    scope: &ScopePath,
    identifier: &str,
) -> Result<(), Fallback> {
    const MISSING: Fallback = "the user group to delete is not in the account";
    let scope = resolve(account, scope).ok_or(MISSING)?;
    let index = account
        .index
        .lookup(scope, |s| &s.groups, identifier)
        .ok_or(MISSING)?;
    if account
        .index
        .group(index)
        .is_none_or(|g| !g.assignments.is_empty())
    {
        return Err("role assignments still name the user group to delete");
    }
    if let Some(names) = account.index.scope_mut(scope) {
        names.groups.remove(identifier);
    }
    if let Some(state) = account.index.group_mut(index) {
        state.members = Box::new([]);
    }
    Ok(())
}
