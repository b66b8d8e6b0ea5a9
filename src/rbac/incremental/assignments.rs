//! Role assignments: an upsert resolves its principal, role and resource group as `compile` does
//! (the same lookups, against the previous account's indexes) and swaps its grants in; a delete
//! takes them out. Anything `compile` would refuse falls back.

use crate::rbac::catalog::Catalog;
use crate::rbac::compile::{ancestor_at_level, custom_instance, identifier_well_formed};
use crate::rbac::compiled::{
    AssignmentNode, CompiledAccount, Grant, PrincipalId, ResourceGroupNode, ScopeId,
};
use crate::rbac::delta::ScopePath;
use crate::rbac::index::{AssignmentState, Grantee};
use crate::rbac::model::{PrincipalType, RoleAssignment};

use super::grants::{GrantEdit, edit, slots_of};
use super::{Fallback, resolve};

const INVALID: Fallback = "the role assignment is invalid or refers to something unknown";

pub(super) fn upsert(account: &mut CompiledAccount, assignment: &RoleAssignment) -> Result<(), Fallback> {
    if !identifier_well_formed(&assignment.identifier) {
        return Err(INVALID);
    }
    let scope = resolve(account, &ScopePath::of(assignment.scope.as_ref())).ok_or(INVALID)?;
    let grantee = grantee(account, assignment, scope).ok_or(INVALID)?;
    let role = role(account, &assignment.role, scope).ok_or(INVALID)?;
    let resource_group = instance(account, &assignment.resource_group, scope).ok_or(INVALID)?;
    let existing = account
        .index
        .lookup(scope, |s| &s.assignments, &assignment.identifier);
    let index = match existing {
        Some(index) => {
            take_out(account, index);
            index
        }
        None => {
            let index = account.assignments.len() as u32;
            account.assignments.push(AssignmentNode {
                identifier: assignment.identifier.as_str().into(),
                scope,
            });
            account.index.assignments.push(AssignmentState {
                grantee: None,
                scope,
                grant: None,
            });
            if let Some(names) = account.index.scope_mut(scope) {
                names
                    .assignments
                    .insert(assignment.identifier.as_str().into(), index);
            }
            index
        }
    };
    let via_group = match grantee {
        Grantee::Group(group) => group,
        Grantee::Slot(_) => u32::MAX,
    };
    let grant = (!assignment.disabled).then_some(Grant {
        role,
        resource_group,
        assignment: index,
        via_group,
    });
    if let Some(state) = account.index.assignments.get_mut(index as usize) {
        *state = AssignmentState {
            grantee: Some(grantee),
            scope,
            grant,
        };
    }
    if let Grantee::Group(group) = grantee
        && let Some(state) = account.index.group_mut(group)
    {
        state.assignments.push(index);
    }
    if let Some(grant) = grant {
        for slot in slots_of(account, grantee) {
            edit(account, slot, &[GrantEdit::Add(scope, grant)]);
        }
    }
    Ok(())
}

pub(super) fn delete(
    account: &mut CompiledAccount,
    scope: &ScopePath,
    identifier: &str,
) -> Result<(), Fallback> {
    const MISSING: Fallback = "the role assignment to delete is not in the account";
    let scope = resolve(account, scope).ok_or(MISSING)?;
    let index = account
        .index
        .lookup(scope, |s| &s.assignments, identifier)
        .ok_or(MISSING)?;
    take_out(account, index);
    if let Some(names) = account.index.scope_mut(scope) {
        names.assignments.remove(identifier);
    }
    Ok(())
}

/// Removes an assignment's grants and its place among its group's assignments; its slot stays.
fn take_out(account: &mut CompiledAccount, index: u32) {
    let Some(old) = account.index.assignments.get(index as usize).copied() else {
        return;
    };
    let Some(grantee) = old.grantee else {
        return;
    };
    if old.grant.is_some() {
        for slot in slots_of(account, grantee) {
            edit(account, slot, &[GrantEdit::Remove(old.scope, index)]);
        }
    }
    if let Grantee::Group(group) = grantee
        && let Some(state) = account.index.group_mut(group)
    {
        state.assignments.retain(|a| *a != index);
    }
    if let Some(state) = account.index.assignments.get_mut(index as usize) {
        state.grantee = None;
        state.grant = None;
    }
}

/// Whom the assignment grants to, resolved as `compile`'s `assignment_principals` does.
fn grantee(account: &CompiledAccount, assignment: &RoleAssignment, scope: ScopeId) -> Option<Grantee> {
    let principal = assignment.principal.as_ref()?;
    match PrincipalType::try_from(principal.r#type).ok()? {
        PrincipalType::User => {
            if principal.scope_level != 0 {
                return None;
            }
            account
                .user_index
                .get(principal.identifier.as_str())
                .map(|user| Grantee::Slot(*user))
        }
        PrincipalType::UserGroup => {
            let home = ancestor_at_level(account, scope, principal.scope_level)?;
            account
                .index
                .lookup(home, |s| &s.groups, &principal.identifier)
                .map(Grantee::Group)
        }
        PrincipalType::ServiceAccount => {
            let home = ancestor_at_level(account, scope, principal.scope_level)?;
            match account.service_account_in(&principal.identifier, home)? {
                PrincipalId::ServiceAccount(sa) => Some(Grantee::Slot(account.users.len() as u32 + sa)),
                PrincipalId::User(_) => None,
            }
        }
        PrincipalType::Unspecified => None,
    }
}

/// The role: a custom role of the scope, else a managed role assignable at its level.
fn role(account: &CompiledAccount, role: &str, scope: ScopeId) -> Option<u32> {
    if let Some(index) = account.index.lookup(scope, |s| &s.roles, role) {
        return Some(index);
    }
    let level = account.scope(scope)?.level;
    let (index, managed) = account
        .catalog
        .managed_roles()
        .iter()
        .enumerate()
        .find(|(_, r)| r.name == role)?;
    managed.levels.contains(level).then_some(index as u32)
}

/// The resource-group instance for the scope, built on first use as `compile` builds it.
fn instance(account: &mut CompiledAccount, name: &str, scope: ScopeId) -> Option<u32> {
    if let Some(index) = account.index.lookup(scope, |s| &s.instances, name) {
        return Some(index);
    }
    let node = match custom_instance(account, name, scope) {
        Some(node) => node,
        None => {
            let level = account.scope(scope)?.level;
            let managed = Catalog::managed_resource_group(name).filter(|m| m.levels.contains(level))?;
            ResourceGroupNode {
                identifier: name.into(),
                scopes: Box::new([(scope, managed.including_child_scopes)]),
                include_all_resources: true,
                selectors: Box::new([]),
            }
        }
    };
    let index = account.resource_groups.len() as u32;
    account.resource_groups.push(node);
    account
        .index
        .scope_mut(scope)?
        .instances
        .insert(name.into(), index);
    Some(index)
}
