//! A change between two versions of one account's snapshot, entity by entity: [`AccountDelta`], a
//! list of upserts and deletes keyed by each kind's identity (its identifier and, where it has one,
//! its scope). [`AccountDelta::between`] diffs two snapshots; [`AccountDelta::apply_to`] replays a
//! delta on the snapshot it starts from. `rbac::incremental` compiles a delta without a full compile.
//!
//! The entries of a section are a set: an upsert of a known key replaces that entry in place, a new
//! key is appended, a delete removes the entry. `between` then `apply_to` gives the new snapshot up
//! to the order of entries within a section (exactly, when the new one keeps the old order and
//! appends).

use std::collections::HashMap;
use std::fmt;

use crate::rbac::model::{
    AccountSnapshot, ApiKey, Organization, Resource, ResourceGroup, Role, RoleAssignment, Scope,
    ServiceAccount, User, UserGroup,
};

/// A scope as an identity part: `("", "")` = the account; an absent scope is the account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ScopePath {
    /// The organization, or empty.
    pub org: String,
    /// The project, or empty.
    pub project: String,
}

impl ScopePath {
    /// The path of a snapshot scope.
    pub fn of(scope: Option<&Scope>) -> Self {
        scope.map_or_else(Self::default, |s| Self {
            org: s.org.clone(),
            project: s.project.clone(),
        })
    }
}

impl fmt::Display for ScopePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.org.is_empty(), self.project.is_empty()) {
            (true, true) => f.write_str("the account"),
            (_, true) => write!(f, "`{}`", self.org),
            _ => write!(f, "`{}/{}`", self.org, self.project),
        }
    }
}

/// The identity of an API key: its parent principal and its own identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiKeyIdentity {
    /// The parent's `PrincipalType` number (0 when the key has no parent).
    pub parent_type: i32,
    /// Where the parent lives (service accounts).
    pub parent_scope: ScopePath,
    /// The parent's identifier.
    pub parent: String,
    /// The key's identifier.
    pub identifier: String,
}

impl ApiKeyIdentity {
    /// The identity of a snapshot key.
    pub fn of(key: &ApiKey) -> Self {
        let parent = key.parent.as_ref();
        Self {
            parent_type: parent.map_or(0, |p| p.r#type),
            parent_scope: ScopePath::of(parent.and_then(|p| p.scope.as_ref())),
            parent: parent.map(|p| p.identifier.clone()).unwrap_or_default(),
            identifier: key.identifier.clone(),
        }
    }
}

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

/// The identity of an entity within its kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum EntityKey {
    Organization(String),
    User(String),
    UserGroup(ScopePath, String),
    ServiceAccount(ScopePath, String),
    Role(ScopePath, String),
    ResourceGroup(ScopePath, String),
    Resource {
        scope: ScopePath,
        resource_type: String,
        identifier: String,
    },
    RoleAssignment(ScopePath, String),
    ApiKey(ApiKeyIdentity),
}

impl fmt::Display for EntityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Organization(id) => write!(f, "organization `{id}`"),
            Self::User(id) => write!(f, "user `{id}`"),
            Self::UserGroup(scope, id) => write!(f, "user group `{id}` in {scope}"),
            Self::ServiceAccount(scope, id) => write!(f, "service account `{id}` in {scope}"),
            Self::Role(scope, id) => write!(f, "role `{id}` in {scope}"),
            Self::ResourceGroup(scope, id) => write!(f, "resource group `{id}` in {scope}"),
            Self::Resource {
                scope,
                resource_type,
                identifier,
            } => write!(f, "resource {resource_type} `{identifier}` in {scope}"),
            Self::RoleAssignment(scope, id) => write!(f, "role assignment `{id}` in {scope}"),
            Self::ApiKey(key) => write!(f, "api key `{}` of `{}`", key.identifier, key.parent),
        }
    }
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

/// The identity of a snapshot entry.
trait Keyed {
    fn key(&self) -> EntityKey;
}

impl Keyed for Organization {
    fn key(&self) -> EntityKey {
        EntityKey::Organization(self.identifier.clone())
    }
}
impl Keyed for User {
    fn key(&self) -> EntityKey {
        EntityKey::User(self.identifier.clone())
    }
}
impl Keyed for UserGroup {
    fn key(&self) -> EntityKey {
        EntityKey::UserGroup(ScopePath::of(self.scope.as_ref()), self.identifier.clone())
    }
}
impl Keyed for ServiceAccount {
    fn key(&self) -> EntityKey {
        EntityKey::ServiceAccount(ScopePath::of(self.scope.as_ref()), self.identifier.clone())
    }
}
impl Keyed for Role {
    fn key(&self) -> EntityKey {
        EntityKey::Role(ScopePath::of(self.scope.as_ref()), self.identifier.clone())
    }
}
impl Keyed for ResourceGroup {
    fn key(&self) -> EntityKey {
        EntityKey::ResourceGroup(ScopePath::of(self.scope.as_ref()), self.identifier.clone())
    }
}
impl Keyed for Resource {
    fn key(&self) -> EntityKey {
        EntityKey::Resource {
            scope: ScopePath::of(self.scope.as_ref()),
            resource_type: self.resource_type.clone(),
            identifier: self.identifier.clone(),
        }
    }
}
impl Keyed for RoleAssignment {
    fn key(&self) -> EntityKey {
        EntityKey::RoleAssignment(ScopePath::of(self.scope.as_ref()), self.identifier.clone())
    }
}
impl Keyed for ApiKey {
    fn key(&self) -> EntityKey {
        EntityKey::ApiKey(ApiKeyIdentity::of(self))
    }
}

impl Entity {
    /// Its identity.
    pub fn key(&self) -> EntityKey {
        match self {
            Self::Organization(x) => x.key(),
            Self::User(x) => x.key(),
            Self::UserGroup(x) => x.key(),
            Self::ServiceAccount(x) => x.key(),
            Self::Role(x) => x.key(),
            Self::ResourceGroup(x) => x.key(),
            Self::Resource(x) => x.key(),
            Self::RoleAssignment(x) => x.key(),
            Self::ApiKey(x) => x.key(),
        }
    }
}

fn keyed<T: Keyed>(items: &[T]) -> Result<HashMap<EntityKey, &T>, DeltaError> {
    let mut map = HashMap::with_capacity(items.len());
    for item in items {
        let key = item.key();
        if map.contains_key(&key) {
            return Err(DeltaError::DuplicateEntity { key: key.to_string() });
        }
        map.insert(key, item);
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
    let old_keyed = keyed(old)?;
    let new_keyed = keyed(new)?;
    for item in new {
        if old_keyed.get(&item.key()) != Some(&item) {
            changes.push(EntityChange::Upsert(wrap(item.clone())));
        }
    }
    Ok(old
        .iter()
        .map(Keyed::key)
        .filter(|key| !new_keyed.contains_key(key))
        .map(EntityChange::Delete)
        .collect())
}

impl AccountDelta {
    /// The entity-level changes from `old` to `new`: upserts section by section in dependency order,
    /// then deletes in the reverse order, so that no step refers to something not yet there or
    /// already gone. Refuses snapshots of two accounts, or one that repeats a key in a section.
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
            return Err(DeltaError::VersionMismatch {
                expected: self.from_version,
                found: doc.version,
            });
        }
        let mut next = doc.clone();
        next.version = self.to_version;
        for change in &self.changes {
            match change {
                EntityChange::Upsert(entity) => upsert(&mut next, entity)?,
                EntityChange::Delete(key) => delete(&mut next, key)?,
            }
        }
        Ok(next)
    }
}

/// The one position of `key` in a section, if any.
fn position<T: Keyed>(items: &[T], key: &EntityKey) -> Result<Option<usize>, DeltaError> {
    let mut found = None;
    for (index, item) in items.iter().enumerate() {
        if item.key() == *key {
            if found.is_some() {
                return Err(DeltaError::DuplicateEntity { key: key.to_string() });
            }
            found = Some(index);
        }
    }
    Ok(found)
}

fn upsert_in<T: Keyed + Clone>(items: &mut Vec<T>, item: &T, key: &EntityKey) -> Result<(), DeltaError> {
    match position(items, key)? {
        Some(index) => {
            if let Some(slot) = items.get_mut(index) {
                *slot = item.clone();
            }
        }
        None => items.push(item.clone()),
    }
    Ok(())
}

fn delete_in<T: Keyed>(items: &mut Vec<T>, key: &EntityKey) -> Result<(), DeltaError> {
    match position(items, key)? {
        Some(index) => {
            items.remove(index);
            Ok(())
        }
        None => Err(DeltaError::MissingEntity { key: key.to_string() }),
    }
}

fn upsert(doc: &mut AccountSnapshot, entity: &Entity) -> Result<(), DeltaError> {
    let key = entity.key();
    match entity {
        Entity::Organization(x) => upsert_in(&mut doc.organizations, x, &key),
        Entity::User(x) => upsert_in(&mut doc.users, x, &key),
        Entity::UserGroup(x) => upsert_in(&mut doc.user_groups, x, &key),
        Entity::ServiceAccount(x) => upsert_in(&mut doc.service_accounts, x, &key),
        Entity::Role(x) => upsert_in(&mut doc.roles, x, &key),
        Entity::ResourceGroup(x) => upsert_in(&mut doc.resource_groups, x, &key),
        Entity::Resource(x) => upsert_in(&mut doc.resources, x, &key),
        Entity::RoleAssignment(x) => upsert_in(&mut doc.role_assignments, x, &key),
        Entity::ApiKey(x) => upsert_in(&mut doc.api_keys, x, &key),
    }
}

fn delete(doc: &mut AccountSnapshot, key: &EntityKey) -> Result<(), DeltaError> {
    match key {
        EntityKey::Organization(_) => delete_in(&mut doc.organizations, key),
        EntityKey::User(_) => delete_in(&mut doc.users, key),
        EntityKey::UserGroup(..) => delete_in(&mut doc.user_groups, key),
        EntityKey::ServiceAccount(..) => delete_in(&mut doc.service_accounts, key),
        EntityKey::Role(..) => delete_in(&mut doc.roles, key),
        EntityKey::ResourceGroup(..) => delete_in(&mut doc.resource_groups, key),
        EntityKey::Resource { .. } => delete_in(&mut doc.resources, key),
        EntityKey::RoleAssignment(..) => delete_in(&mut doc.role_assignments, key),
        EntityKey::ApiKey(_) => delete_in(&mut doc.api_keys, key),
    }
}
