//! The wire form of an [`AccountDelta`] (`scopegate.v1.AccountDelta`): each change is one entity
//! in a oneof, whole for an upsert, or with `delete` set only its identity fields for a delete.
//! [`to_wire`] and [`from_wire`] convert; `from_wire(to_wire(d)) == d` for every delta.

use crate::proto::{AccountDelta as WireDelta, EntityChange as WireChange, entity_change};
use crate::rbac::delta::{AccountDelta, ApiKeyIdentity, Entity, EntityChange, EntityKey, ScopePath};
use crate::rbac::model::{
    ApiKey, ApiKeyParent, Organization, Resource, ResourceGroup, Role, RoleAssignment, Scope, ServiceAccount,
    User, UserGroup,
};

/// Why a wire delta is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireDeltaError {
    /// A change carries no entity.
    #[error("change {index} of the delta names no entity")]
    NoEntity {
        /// Its position in the delta.
        index: usize,
    },
}

/// The wire form of `delta`, an account's change from `from_version` to `to_version`.
pub fn to_wire(account: &str, delta: AccountDelta) -> WireDelta {
    WireDelta {
        account: account.to_owned(),
        from_version: delta.from_version,
        to_version: delta.to_version,
        changes: delta.changes.into_iter().map(change_to_wire).collect(),
    }
}

/// The delta a wire delta carries (its account is the caller's to check).
pub fn from_wire(wire: WireDelta) -> Result<AccountDelta, WireDeltaError> {
    let changes = wire
        .changes
        .into_iter()
        .enumerate()
        .map(|(index, change)| {
            let entity = change.entity.ok_or(WireDeltaError::NoEntity { index })?;
            let entity = entity_from_wire(entity);
            Ok(if change.delete {
                EntityChange::Delete(entity.key())
            } else {
                EntityChange::Upsert(entity)
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(AccountDelta {
        from_version: wire.from_version,
        to_version: wire.to_version,
        changes,
    })
}

fn change_to_wire(change: EntityChange) -> WireChange {
    let (delete, entity) = match change {
        EntityChange::Upsert(entity) => (false, entity),
        EntityChange::Delete(key) => (true, skeleton(key)),
    };
    WireChange {
        delete,
        entity: Some(entity_to_wire(entity)),
    }
}

fn entity_to_wire(entity: Entity) -> entity_change::Entity {
    use entity_change::Entity as Wire;
    match entity {
        Entity::Organization(x) => Wire::Organization(x),
        Entity::User(x) => Wire::User(x),
        Entity::UserGroup(x) => Wire::UserGroup(x),
        Entity::ServiceAccount(x) => Wire::ServiceAccount(x),
        Entity::Role(x) => Wire::Role(x),
        Entity::ResourceGroup(x) => Wire::ResourceGroup(x),
        Entity::Resource(x) => Wire::Resource(x),
        Entity::RoleAssignment(x) => Wire::RoleAssignment(x),
        Entity::ApiKey(x) => Wire::ApiKey(x),
    }
}

fn entity_from_wire(entity: entity_change::Entity) -> Entity {
    use entity_change::Entity as Wire;
    match entity {
        Wire::Organization(x) => Entity::Organization(x),
        Wire::User(x) => Entity::User(x),
        Wire::UserGroup(x) => Entity::UserGroup(x),
        Wire::ServiceAccount(x) => Entity::ServiceAccount(x),
        Wire::Role(x) => Entity::Role(x),
        Wire::ResourceGroup(x) => Entity::ResourceGroup(x),
        Wire::Resource(x) => Entity::Resource(x),
        Wire::RoleAssignment(x) => Entity::RoleAssignment(x),
        Wire::ApiKey(x) => Entity::ApiKey(x),
    }
}

/// A scope field for a path (`None` for the account).
fn scope(path: ScopePath) -> Option<Scope> {
    (!path.org.is_empty() || !path.project.is_empty()).then_some(Scope {
        org: path.org,
        project: path.project,
    })
}

/// An entity with only the identity fields of `key` set: its key is `key` again.
fn skeleton(key: EntityKey) -> Entity {
    match key {
        EntityKey::Organization(identifier) => Entity::Organization(Organization {
            identifier,
            ..Organization::default()
        }),
        EntityKey::User(identifier) => Entity::User(User {
            identifier,
            ..User::default()
        }),
        EntityKey::UserGroup(path, identifier) => Entity::UserGroup(UserGroup {
            identifier,
            scope: scope(path),
            ..UserGroup::default()
        }),
        EntityKey::ServiceAccount(path, identifier) => Entity::ServiceAccount(ServiceAccount {
            identifier,
            scope: scope(path),
        }),
        EntityKey::Role(path, identifier) => Entity::Role(Role {
            identifier,
            scope: scope(path),
            ..Role::default()
        }),
        EntityKey::ResourceGroup(path, identifier) => Entity::ResourceGroup(ResourceGroup {
            identifier,
            scope: scope(path),
            ..ResourceGroup::default()
        }),
        EntityKey::Resource {
            scope: path,
            resource_type,
            identifier,
        } => Entity::Resource(Resource {
            scope: scope(path),
            resource_type,
            identifier,
            ..Resource::default()
        }),
        EntityKey::RoleAssignment(path, identifier) => Entity::RoleAssignment(RoleAssignment {
            identifier,
            scope: scope(path),
            ..RoleAssignment::default()
        }),
        EntityKey::ApiKey(identity) => Entity::ApiKey(api_key_skeleton(identity)),
    }
}

fn api_key_skeleton(identity: ApiKeyIdentity) -> ApiKey {
    let ApiKeyIdentity {
        parent_type,
        parent_scope,
        parent,
        identifier,
    } = identity;
    let has_parent = parent_type != 0 || !parent.is_empty() || parent_scope != ScopePath::default();
    ApiKey {
        identifier,
        parent: has_parent.then(|| ApiKeyParent {
            r#type: parent_type,
            identifier: parent,
            scope: scope(parent_scope),
        }),
        ..ApiKey::default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::rbac::model::{AccountSnapshot, FileFormat};
    use crate::rbac::test_fixture::FIXTURE;

    fn demo() -> AccountSnapshot {
        AccountSnapshot::parse(FIXTURE, FileFormat::Yaml).unwrap()
    }

    #[test]
    fn every_delete_and_upsert_round_trips() {
        let old = demo();
        let empty = AccountSnapshot {
            account: old.account.clone(),
            version: old.version + 1,
            ..AccountSnapshot::default()
        };
        // everything deleted (a key of every kind the demo has), then everything upserted back
        for (from, to) in [(&old, &empty), (&empty, &old)] {
            let delta = AccountDelta::between(from, to).unwrap();
            assert!(!delta.changes.is_empty());
            let wire = to_wire(&old.account, delta.clone());
            assert_eq!(from_wire(wire).unwrap(), delta);
            assert_eq!(
                delta.apply_to(from).unwrap().role_assignments,
                to.role_assignments
            );
        }
    }

    #[test]
    fn skeletons_keep_their_identity() {
        let scoped = ScopePath {
            org: "o".to_owned(),
            project: "p".to_owned(),
        };
        let keys = [
            EntityKey::Organization("o".to_owned()),
            EntityKey::User("u".to_owned()),
            EntityKey::UserGroup(scoped.clone(), "g".to_owned()),
            EntityKey::ServiceAccount(ScopePath::default(), "s".to_owned()),
            EntityKey::Role(scoped.clone(), "r".to_owned()),
            EntityKey::ResourceGroup(ScopePath::default(), "rg".to_owned()),
            EntityKey::Resource {
                scope: scoped.clone(),
                resource_type: "PIPELINE".to_owned(),
                identifier: "x".to_owned(),
            },
            EntityKey::RoleAssignment(scoped.clone(), "a".to_owned()),
            EntityKey::ApiKey(ApiKeyIdentity {
                parent_type: 3,
                parent_scope: scoped,
                parent: "sa".to_owned(),
                identifier: "k".to_owned(),
            }),
            EntityKey::ApiKey(ApiKeyIdentity {
                parent_type: 0,
                parent_scope: ScopePath::default(),
                parent: String::new(),
                identifier: "orphan".to_owned(),
            }),
        ];
        for key in keys {
            assert_eq!(skeleton(key.clone()).key(), key);
        }
    }

    #[test]
    fn a_change_without_an_entity_is_refused() {
        let wire = WireDelta {
            account: "acme".to_owned(),
            from_version: 1,
            to_version: 2,
            changes: vec![WireChange {
                delete: true,
                entity: None,
            }],
        };
        assert_eq!(from_wire(wire), Err(WireDeltaError::NoEntity { index: 0 }));
    }
}
