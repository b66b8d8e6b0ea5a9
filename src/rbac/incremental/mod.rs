//! Incremental compilation (docs/model.md "Incremental compile"): a compiled account and the
//! [`AccountDelta`] from its snapshot to the next become the next compiled account, deciding
//! exactly like `compile` of the next snapshot. The account is cloned (its parts are `Arc`'d and
//! copied on write, `rbac::persistent`) and each change is applied to the parts it touches:
//!
//! - role assignments, upserted or deleted (`assignments`);
//! - user groups: members changed, a new group, an unused group deleted (`groups`);
//! - API keys and their tokens, upserted (issue, rotation, revocation) or deleted (`tokens`);
//! - an existing user's `disabled` flag (this file).
//!
//! Anything else falls back to a full compile of `delta.apply_to(previous_doc)` and says why
//! ([`CompilePath::Full`]): custom roles and resource groups (every assignment that names them),
//! organizations and projects (the scope tree), resources (attribute filters), service accounts
//! and new or deleted users (principal slots). So does a change the fast path finds invalid (a
//! dangling role, resource group or principal reference, a malformed entry): the full compile
//! then reports exactly the errors it always does.

mod assignments;
mod grants;
mod groups;
mod tokens;

use std::sync::Arc;

use crate::rbac::catalog::Catalog;
use crate::rbac::compile::compile;
use crate::rbac::compiled::{CompiledAccount, ScopeId};
use crate::rbac::delta::{AccountDelta, DeltaError, Entity, EntityChange, EntityKey, ScopePath};
use crate::rbac::error::SnapshotError;
use crate::rbac::model::{AccountSnapshot, User};

/// How an incremental compile was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompilePath {
    /// Every change was applied to the previous account's parts.
    Fast,
    /// The next snapshot was compiled whole.
    Full {
        /// Why the fast path did not apply.
        reason: &'static str,
    },
}

/// The next compiled account and how it was made.
#[derive(Debug, Clone)]
pub struct Incremental {
    /// The account, deciding like `compile` of the next snapshot.
    pub account: CompiledAccount,
    /// Fast path or full compile.
    pub path: CompilePath,
}

/// Why an incremental compile produced no account.
#[derive(Debug, thiserror::Error)]
pub enum IncrementalError {
    /// The delta does not apply to the previous snapshot.
    #[error(transparent)]
    Delta(#[from] DeltaError),
    /// The next snapshot is invalid: the errors `compile` reports for it.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

/// Why one change cannot take the fast path.
pub(crate) type Fallback = &'static str;

/// Compiles `delta` on top of `previous` (compiled from `previous_doc`): the account `compile` gives
/// for `delta.apply_to(previous_doc)` with `previous`'s version in force, decision for decision,
/// or the same errors. Refuses a delta that does not start from `previous_doc`'s version.
pub fn compile_incremental(
    previous: &CompiledAccount,
    previous_doc: &AccountSnapshot,
    delta: &AccountDelta,
    catalog: Arc<Catalog>,
) -> Result<Incremental, IncrementalError> {
    if delta.from_version != previous_doc.version || previous.version != previous_doc.version {
        return Err(DeltaError::VersionMismatch {
            expected: delta.from_version,
            found: previous.version,
        }
        .into());
    }
    let fast = if !Arc::ptr_eq(&catalog, &previous.catalog) {
        Err("compiled against another catalog")
    } else if delta.to_version < delta.from_version {
        Err("the version goes backwards")
    } else {
        let mut next = previous.clone();
        next.version = delta.to_version;
        delta
            .changes
            .iter()
            .try_for_each(|change| apply(&mut next, change))
            .map(|()| next)
    };
    match fast {
        Ok(account) => Ok(Incremental {
            account,
            path: CompilePath::Fast,
        }),
        Err(reason) => {
            let doc = delta.apply_to(previous_doc)?;
            let account = compile(&doc, catalog, Some(previous.version))?;
            Ok(Incremental {
                account,
                path: CompilePath::Full { reason },
            })
        }
    }
}

fn apply(account: &mut CompiledAccount, change: &EntityChange) -> Result<(), Fallback> {
    match change {
        EntityChange::Upsert(Entity::RoleAssignment(assignment)) => assignments::upsert(account, assignment),
        EntityChange::Delete(EntityKey::RoleAssignment(scope, identifier)) => {
            assignments::delete(account, scope, identifier)
        }
        EntityChange::Upsert(Entity::UserGroup(group)) => groups::upsert(account, group),
        EntityChange::Delete(EntityKey::UserGroup(scope, identifier)) => {
            groups::delete(account, scope, identifier)
        }
        EntityChange::Upsert(Entity::ApiKey(key)) => tokens::upsert(account, key),
        EntityChange::Delete(EntityKey::ApiKey(identity)) => tokens::delete(account, identity),
        EntityChange::Upsert(Entity::User(user)) => upsert_user(account, user),
        EntityChange::Upsert(Entity::Organization(_)) | EntityChange::Delete(EntityKey::Organization(_)) => {
            Err("organizations and projects change the scope tree")
        }
        EntityChange::Upsert(Entity::Role(_)) | EntityChange::Delete(EntityKey::Role(..)) => {
            Err("a custom role changes every assignment that names it")
        }
        EntityChange::Upsert(Entity::ResourceGroup(_))
        | EntityChange::Delete(EntityKey::ResourceGroup(..)) => {
            Err("a custom resource group changes every assignment that names it")
        }
        EntityChange::Upsert(Entity::Resource(_)) | EntityChange::Delete(EntityKey::Resource { .. }) => {
            Err("resources feed attribute filters")
        }
        EntityChange::Upsert(Entity::ServiceAccount(_))
        | EntityChange::Delete(EntityKey::ServiceAccount(..)) => {
            Err("service accounts change the principal slots")
        }
        EntityChange::Delete(EntityKey::User(_)) => Err("deleting a user changes the principal slots"),
    }
}

/// An existing user's `disabled` flag (its e-mail is not compiled); a new user falls back.
fn upsert_user(account: &mut CompiledAccount, user: &User) -> Result<(), Fallback> {
    let index = *account
        .user_index
        .get(user.identifier.as_str())
        .ok_or("a new user changes the principal slots")?;
    if account
        .users
        .get(index as usize)
        .is_some_and(|u| u.disabled != user.disabled)
    {
        let node = account.users.get_mut(index as usize).ok_or("unknown user")?;
        node.disabled = user.disabled;
    }
    Ok(())
}

/// The scope a key names, if the account has it.
pub(crate) fn resolve(account: &CompiledAccount, scope: &ScopePath) -> Option<ScopeId> {
    fn non_empty(s: &str) -> Option<&str> {
        (!s.is_empty()).then_some(s)
    }
    let (org, project) = (non_empty(&scope.org), non_empty(&scope.project));
    account.resolve_scope(org, project)
}
