//! Editing one principal's grants: its `PrincipalGrants` is rebuilt from its own grants with the
//! edit applied, sorted as `compile` sorts them (scope, then assignment), and shared again.

use std::sync::Arc;

use crate::rbac::compile::principal_grants;
use crate::rbac::compiled::{CompiledAccount, Grant, ScopeId};
use crate::rbac::index::Grantee;

/// One edit of a principal's grants.
#[derive(Debug, Clone, Copy)]
pub(crate) enum GrantEdit {
    /// Add (or replace) the grant of its assignment at the scope.
    Add(ScopeId, Grant),
    /// Drop the grant of the assignment at the scope.
    Remove(ScopeId, u32),
}

/// Applies `edits` to the grants of principal `slot`.
pub(crate) fn edit(account: &mut CompiledAccount, slot: u32, edits: &[GrantEdit]) {
    let Some(entry) = account.principal_grants.get_mut(slot as usize) else {
        return;
    };
    let mut pairs: Vec<(ScopeId, Grant)> = Vec::new();
    if let Some(current) = entry.as_deref() {
        pairs.reserve(current.grants.len() + edits.len());
        for range in &*current.scopes {
            let grants = current
                .grants
                .get(range.start as usize..range.end as usize)
                .unwrap_or(&[]);
            pairs.extend(grants.iter().map(|grant| (range.scope, *grant)));
        }
    }
    for change in edits {
        match *change {
            GrantEdit::Add(scope, grant) => {
                pairs.retain(|(s, g)| !(*s == scope && g.assignment == grant.assignment));
                pairs.push((scope, grant));
            }
            GrantEdit::Remove(scope, assignment) => {
                pairs.retain(|(s, g)| !(*s == scope && g.assignment == assignment));
            }
        }
    }
    pairs.sort_unstable_by_key(|(scope, grant)| (*scope, grant.assignment, grant.via_group));
    *entry = (!pairs.is_empty()).then(|| Arc::new(principal_grants(pairs.into_iter())));
}

/// The principal slots a grantee stands for (a group's members).
pub(crate) fn slots_of(account: &CompiledAccount, grantee: Grantee) -> Vec<u32> {
    match grantee {
        Grantee::Slot(slot) => vec![slot],
        Grantee::Group(group) => account
            .index
            .group(group)
            .map(|state| state.members.to_vec())
            .unwrap_or_default(),
    }
}
