//! A change between two versions of one account's snapshot, entity by entity: [`AccountDelta`], a
//! list of upserts and deletes keyed by each kind's identity (its identifier and, where it has one,
//! its scope). [`AccountDelta::between`] diffs two snapshots; [`AccountDelta::apply_to`] replays a
//! delta on the snapshot it starts from. `rbac::incremental` compiles a delta without a full compile.
//!
//! The entries of a section are a set: an upsert of a known key replaces that entry in place, a new
//! key is appended, a delete removes the entry. `between` then `apply_to` gives the new snapshot up
//! to the order of entries within a section (exactly, when the new one keeps the old order and
//! appends).

mod key;

use std::collections::HashMap;

use key::Keyed;
pub use key::{ApiKeyIdentity, EntityKey, KeyRef, ScopePath, ScopeRef};

use crate::rbac::model::{
    AccountSnapshot, ApiKey, Organization, Resource, ResourceGroup, Role, RoleAssignment, ServiceAccount,
    User, UserGroup,
};

/// One entity of a snapshot, whole (a user group with its members, an API key with its tokens).
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum Entity {
    Organization(Organization),
    User(User),
    UserGroup(UserGroup),
    ServiceAccount(ServiceAccount),
    Role(Role),
    ResourceGroup(ResourceGroup),
    Resource(Resource),
    RoleAssignment(RoleAssignment),
    ApiKey(ApiKey),
}

/// One change of a delta.
#[derive(Debug, Clone, PartialEq)]
pub enum EntityChange {
    /// The entity now reads like this (new, or replacing the one with its key).
    Upsert(Entity),
    /// The entity with this key is gone.
    Delete(EntityKey),
}

/// Why a delta could not be made or applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    /// The delta starts from another version than the document's.
    #[error("the delta starts from version {expected}, the document is version {found}")]
    VersionMismatch {
        /// The delta's `from_version`.
        expected: u64,
        /// The document's version.
        found: u64,
    },
    /// The two snapshots are of different accounts.
    #[error("cannot diff account `{old}` against account `{new}`")]
    AccountMismatch {
        /// The old snapshot's account.
        old: String,
        /// The new snapshot's account.
        new: String,
    },
    /// Two entries of one section share a key, so a change cannot say which one it means.
    #[error("{key} occurs more than once in the document")]
    DuplicateEntity {
        /// The repeated key.
        key: String,
    },
    /// A delete names an entity the document does not have.
    #[error("cannot delete {key}: the document has no such entry")]
    MissingEntity {
        /// The missing key.
        key: String,
    },
}

/// The changes from one version of an account's snapshot to the next.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccountDelta {
    /// The version the delta applies to.
    pub from_version: u64,
    /// The version it produces.
    pub to_version: u64,
    /// Applied in order.
    pub changes: Vec<EntityChange>,
}

fn keyed<T: Keyed>(items: &[T]) -> Result<HashMap<KeyRef<'_>, &T>, DeltaError> {
    let mut map = HashMap::with_capacity(items.len());
    for item in items {
        let key = item.key_ref();
        if map.insert(key, item).is_some() {
            return Err(DeltaError::DuplicateEntity {
                key: key.to_owned().to_string(),
            });
        }
    }
    Ok(map)
}

/// One section's upserts (into `changes`) and deletes (returned).
fn diff<T: Keyed + PartialEq + Clone>(
    old: &[T],
    new: &[T],
    wrap: fn(T) -> Entity,
    changes: &mut Vec<EntityChange>,
) -> Result<Vec<EntityChange>, DeltaError> {
    // A new version is nearly always the old one with a few entries changed, appended or taken
    // out: the common head and tail are compared entry by entry (no hashing, no allocation) and
    // only what lies between is matched by key.
    let head = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let (old, new) = (&old[head..], &new[head..]);
    let tail = old
        .iter()
        .rev()
        .zip(new.iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let (old, new) = (&old[..old.len() - tail], &new[..new.len() - tail]);
    let old_keyed = keyed(old)?;
    let new_keyed = keyed(new)?;
    for item in new {
        if old_keyed.get(&item.key_ref()) != Some(&item) {
            changes.push(EntityChange::Upsert(wrap(item.clone())));
        }
    }
    Ok(old
        .iter()
        .map(Keyed::key_ref)
        .filter(|key| !new_keyed.contains_key(key))
        .map(|key| EntityChange::Delete(key.to_owned()))
        .collect())
}

impl AccountDelta {
    /// The entity-level changes from `old` to `new`: upserts section by section in dependency order,
    /// then deletes in the reverse order, so that no step refers to something not yet there or
    /// already gone. Refuses snapshots of two accounts, or one that repeats a key among the entries
    /// that differ (a snapshot that compiled repeats none: the equal head and tail of a section are
    /// not searched for repeats).
    pub fn between(old: &AccountSnapshot, new: &AccountSnapshot) -> Result<AccountDelta, DeltaError> {
        if old.account != new.account {
            return Err(DeltaError::AccountMismatch {
                old: old.account.clone(),
                new: new.account.clone(),
            });
        }
        // Sections in dependency order: what an entry refers to comes before it.
        let mut changes = Vec::new();
        let deletes = [
            diff(
                &old.organizations,
                &new.organizations,
                Entity::Organization,
                &mut changes,
            )?,
            diff(&old.users, &new.users, Entity::User, &mut changes)?,
            diff(
                &old.service_accounts,
                &new.service_accounts,
                Entity::ServiceAccount,
                &mut changes,
            )?,
            diff(
                &old.user_groups,
                &new.user_groups,
                Entity::UserGroup,
                &mut changes,
            )?,
            diff(&old.roles, &new.roles, Entity::Role, &mut changes)?,
            diff(
                &old.resource_groups,
                &new.resource_groups,
                Entity::ResourceGroup,
                &mut changes,
            )?,
            diff(&old.resources, &new.resources, Entity::Resource, &mut changes)?,
            diff(
                &old.role_assignments,
                &new.role_assignments,
                Entity::RoleAssignment,
                &mut changes,
            )?,
            diff(&old.api_keys, &new.api_keys, Entity::ApiKey, &mut changes)?,
        ];
        changes.extend(deletes.into_iter().rev().flatten());
        Ok(AccountDelta {
            from_version: old.version,
            to_version: new.version,
            changes,
        })
    }

    /// `doc` with the changes applied in order and the version set to `to_version`. Refuses a
    /// document of another version than `from_version`, a change whose key the document repeats and
    /// a delete of an entry it does not have.
    pub fn apply_to(&self, doc: &AccountSnapshot) -> Result<AccountSnapshot, DeltaError> {
        if doc.version != self.from_version {
            return Err(self.mismatch(doc));
        }
        let mut next = doc.clone();
        self.apply_in_place(&mut next)?;
        Ok(next)
    }

    /// [`Self::apply_to`] on `doc` itself: no copy of the document, work and allocation in
    /// proportion to the change (finding an entry is a scan of its section, which allocates
    /// nothing). On an error the document is left part-changed: the caller discards it.
    pub fn apply_in_place(&self, doc: &mut AccountSnapshot) -> Result<(), DeltaError> {
        if doc.version != self.from_version {
            return Err(self.mismatch(doc));
        }
        for change in &self.changes {
            match change {
                EntityChange::Upsert(entity) => upsert(doc, entity)?,
                EntityChange::Delete(key) => delete(doc, key.as_ref())?,
            }
        }
        doc.version = self.to_version;
        Ok(())
    }

    fn mismatch(&self, doc: &AccountSnapshot) -> DeltaError {
        DeltaError::VersionMismatch {
            expected: self.from_version,
            found: doc.version,
        }
    }
}

/// The one position of `key` in a section, if any.
fn position<T: Keyed>(items: &[T], key: KeyRef<'_>) -> Result<Option<usize>, DeltaError> {
    let mut found = None;
    for (index, item) in items.iter().enumerate() {
        if item.key_ref() == key {
            if found.is_some() {
                return Err(DeltaError::DuplicateEntity {
                    key: key.to_owned().to_string(),
                });
            }
            found = Some(index);
        }
    }
    Ok(found)
}

fn upsert_in<T: Keyed + Clone>(items: &mut Vec<T>, item: &T) -> Result<(), DeltaError> {
    match position(items, item.key_ref())? {
        Some(index) => {
            if let Some(slot) = items.get_mut(index) {
                slot.clone_from(item);
            }
        }
        None => items.push(item.clone()),
    }
    Ok(())
}

fn delete_in<T: Keyed>(items: &mut Vec<T>, key: KeyRef<'_>) -> Result<(), DeltaError> {
    match position(items, key)? {
        Some(index) => {
            items.remove(index);
            Ok(())
        }
        None => Err(DeltaError::MissingEntity {
            key: key.to_owned().to_string(),
        }),
    }
}

fn upsert(doc: &mut AccountSnapshot, entity: &Entity) -> Result<(), DeltaError> {
    match entity {
        Entity::Organization(x) => upsert_in(&mut doc.organizations, x),
        Entity::User(x) => upsert_in(&mut doc.users, x),
        Entity::UserGroup(x) => upsert_in(&mut doc.user_groups, x),
        Entity::ServiceAccount(x) => upsert_in(&mut doc.service_accounts, x),
        Entity::Role(x) => upsert_in(&mut doc.roles, x),
        Entity::ResourceGroup(x) => upsert_in(&mut doc.resource_groups, x),
        Entity::Resource(x) => upsert_in(&mut doc.resources, x),
        Entity::RoleAssignment(x) => upsert_in(&mut doc.role_assignments, x),
        Entity::ApiKey(x) => upsert_in(&mut doc.api_keys, x),
    }
}

fn delete(doc: &mut AccountSnapshot, key: KeyRef<'_>) -> Result<(), DeltaError> {
    match key {
        KeyRef::Organization(_) => delete_in(&mut doc.organizations, key),
        KeyRef::User(_) => delete_in(&mut doc.users, key),
        KeyRef::UserGroup(..) => delete_in(&mut doc.user_groups, key),
        KeyRef::ServiceAccount(..) => delete_in(&mut doc.service_accounts, key),
        KeyRef::Role(..) => delete_in(&mut doc.roles, key),
        KeyRef::ResourceGroup(..) => delete_in(&mut doc.resource_groups, key),
        KeyRef::Resource(..) => delete_in(&mut doc.resources, key),
        KeyRef::RoleAssignment(..) => delete_in(&mut doc.role_assignments, key),
        KeyRef::ApiKey { .. } => delete_in(&mut doc.api_keys, key),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn user(identifier: &str, disabled: bool) -> User {
        User {
            identifier: identifier.to_owned(),
            disabled,
            ..User::default()
        }
    }

    fn doc(version: u64, users: Vec<User>) -> AccountSnapshot {
        AccountSnapshot {
            account: "acme".to_owned(),
            version,
            users,
            ..AccountSnapshot::default()
        }
    }

    #[test]
    fn only_what_lies_between_the_equal_head_and_tail_is_diffed_and_the_replay_is_the_new_document() {
        let old = doc(
            1,
            vec![
                user("a", false),
                user("b", false),
                user("c", false),
                user("d", false),
            ],
        );
        let new = doc(
            2,
            vec![
                user("a", false),
                user("c", true),
                user("d", false),
                user("e", false),
            ],
        );
        let delta = AccountDelta::between(&old, &new).unwrap();
        assert_eq!(
            delta.changes,
            vec![
                EntityChange::Upsert(Entity::User(user("c", true))),
                EntityChange::Upsert(Entity::User(user("e", false))),
                EntityChange::Delete(EntityKey::User("b".to_owned())),
            ]
        );
        let mut replayed = old.clone();
        delta.apply_in_place(&mut replayed).unwrap();
        let mut sorted = replayed.users.clone();
        sorted.sort_by(|x, y| x.identifier.cmp(&y.identifier));
        assert_eq!((replayed.version, sorted), (2, new.users.clone()));
        assert!(AccountDelta::between(&new, &new).unwrap().changes.is_empty());
    }

    #[test]
    fn a_delete_of_a_missing_entry_is_refused_by_name() {
        let delta = AccountDelta {
            from_version: 1,
            to_version: 2,
            changes: vec![EntityChange::Delete(EntityKey::User("ghost".to_owned()))],
        };
        let error = delta.apply_to(&doc(1, vec![user("a", false)])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot delete user `ghost`: the document has no such entry"
        );
        let error = delta.apply_to(&doc(3, Vec::new())).unwrap_err();
        assert!(matches!(
            error,
            DeltaError::VersionMismatch {
                expected: 1,
                found: 3
            }
        ));
    }
}
