//! The identity of each kind of snapshot entry: [`EntityKey`] (owned, carried by a delete) and
//! [`KeyRef`] (borrowed from the entry, so finding or diffing entries allocates nothing). An absent
//! scope is the account's, the same as an empty one.

use std::fmt;

use crate::rbac::delta::Entity;
use crate::rbac::model::{
    ApiKey, Organization, Resource, ResourceGroup, Role, RoleAssignment, Scope, ServiceAccount, User,
    UserGroup,
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

/// A scope as part of a borrowed identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScopeRef<'a> {
    /// The organization, or empty.
    pub org: &'a str,
    /// The project, or empty.
    pub project: &'a str,
}

impl<'a> ScopeRef<'a> {
    /// The path of a snapshot scope (absent: the account).
    pub fn of(scope: Option<&'a Scope>) -> Self {
        scope.map_or(Self { org: "", project: "" }, |s| Self {
            org: &s.org,
            project: &s.project,
        })
    }

    fn to_owned(self) -> ScopePath {
        ScopePath {
            org: self.org.to_owned(),
            project: self.project.to_owned(),
        }
    }
}

impl ScopePath {
    /// Borrowed.
    pub fn as_ref(&self) -> ScopeRef<'_> {
        ScopeRef {
            org: &self.org,
            project: &self.project,
        }
    }
}

/// An entity's identity borrowed from the entity (or from an [`EntityKey`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum KeyRef<'a> {
    Organization(&'a str),
    User(&'a str),
    UserGroup(ScopeRef<'a>, &'a str),
    ServiceAccount(ScopeRef<'a>, &'a str),
    Role(ScopeRef<'a>, &'a str),
    ResourceGroup(ScopeRef<'a>, &'a str),
    /// Scope, resource type, identifier.
    Resource(ScopeRef<'a>, &'a str, &'a str),
    RoleAssignment(ScopeRef<'a>, &'a str),
    ApiKey {
        parent_type: i32,
        parent_scope: ScopeRef<'a>,
        parent: &'a str,
        identifier: &'a str,
    },
}

impl KeyRef<'_> {
    /// The owned identity.
    pub fn to_owned(self) -> EntityKey {
        match self {
            Self::Organization(id) => EntityKey::Organization(id.to_owned()),
            Self::User(id) => EntityKey::User(id.to_owned()),
            Self::UserGroup(s, id) => EntityKey::UserGroup(s.to_owned(), id.to_owned()),
            Self::ServiceAccount(s, id) => EntityKey::ServiceAccount(s.to_owned(), id.to_owned()),
            Self::Role(s, id) => EntityKey::Role(s.to_owned(), id.to_owned()),
            Self::ResourceGroup(s, id) => EntityKey::ResourceGroup(s.to_owned(), id.to_owned()),
            Self::Resource(s, resource_type, id) => EntityKey::Resource {
                scope: s.to_owned(),
                resource_type: resource_type.to_owned(),
                identifier: id.to_owned(),
            },
            Self::RoleAssignment(s, id) => EntityKey::RoleAssignment(s.to_owned(), id.to_owned()),
            Self::ApiKey {
                parent_type,
                parent_scope,
                parent,
                identifier,
            } => EntityKey::ApiKey(ApiKeyIdentity {
                parent_type,
                parent_scope: parent_scope.to_owned(),
                parent: parent.to_owned(),
                identifier: identifier.to_owned(),
            }),
        }
    }
}

impl EntityKey {
    /// Borrowed.
    pub fn as_ref(&self) -> KeyRef<'_> {
        match self {
            Self::Organization(id) => KeyRef::Organization(id),
            Self::User(id) => KeyRef::User(id),
            Self::UserGroup(s, id) => KeyRef::UserGroup(s.as_ref(), id),
            Self::ServiceAccount(s, id) => KeyRef::ServiceAccount(s.as_ref(), id),
            Self::Role(s, id) => KeyRef::Role(s.as_ref(), id),
            Self::ResourceGroup(s, id) => KeyRef::ResourceGroup(s.as_ref(), id),
            Self::Resource {
                scope,
                resource_type,
                identifier,
            } => KeyRef::Resource(scope.as_ref(), resource_type, identifier),
            Self::RoleAssignment(s, id) => KeyRef::RoleAssignment(s.as_ref(), id),
            Self::ApiKey(key) => KeyRef::ApiKey {
                parent_type: key.parent_type,
                parent_scope: key.parent_scope.as_ref(),
                parent: &key.parent,
                identifier: &key.identifier,
            },
        }
    }
}

/// The identity of a snapshot entry.
pub(super) trait Keyed {
    /// The entry's identity, borrowed.
    fn key_ref(&self) -> KeyRef<'_>;
}

impl Keyed for Organization {
    fn key_ref(&self) -> KeyRef<'_> {
        KeyRef::Organization(&self.identifier)
    }
}
impl Keyed for User {
    fn key_ref(&self) -> KeyRef<'_> {
        KeyRef::User(&self.identifier)
    }
}
impl Keyed for UserGroup {
    fn key_ref(&self) -> KeyRef<'_> {
        KeyRef::UserGroup(ScopeRef::of(self.scope.as_ref()), &self.identifier)
    }
}
impl Keyed for ServiceAccount {
    fn key_ref(&self) -> KeyRef<'_> {
        KeyRef::ServiceAccount(ScopeRef::of(self.scope.as_ref()), &self.identifier)
    }
}
impl Keyed for Role {
    fn key_ref(&self) -> KeyRef<'_> {
        KeyRef::Role(ScopeRef::of(self.scope.as_ref()), &self.identifier)
    }
}
impl Keyed for ResourceGroup {
    fn key_ref(&self) -> KeyRef<'_> {
        KeyRef::ResourceGroup(ScopeRef::of(self.scope.as_ref()), &self.identifier)
    }
}
impl Keyed for Resource {
    fn key_ref(&self) -> KeyRef<'_> {
        KeyRef::Resource(
            ScopeRef::of(self.scope.as_ref()),
            &self.resource_type,
            &self.identifier,
        )
    }
}
impl Keyed for RoleAssignment {
    fn key_ref(&self) -> KeyRef<'_> {
        KeyRef::RoleAssignment(ScopeRef::of(self.scope.as_ref()), &self.identifier)
    }
}
impl Keyed for ApiKey {
    fn key_ref(&self) -> KeyRef<'_> {
        let parent = self.parent.as_ref();
        KeyRef::ApiKey {
            parent_type: parent.map_or(0, |p| p.r#type),
            parent_scope: ScopeRef::of(parent.and_then(|p| p.scope.as_ref())),
            parent: parent.map_or("", |p| p.identifier.as_str()),
            identifier: &self.identifier,
        }
    }
}

impl Entity {
    /// Its identity.
    pub fn key(&self) -> EntityKey {
        self.key_ref().to_owned()
    }

    /// Its identity, borrowed.
    pub fn key_ref(&self) -> KeyRef<'_> {
        match self {
            Self::Organization(x) => x.key_ref(),
            Self::User(x) => x.key_ref(),
            Self::UserGroup(x) => x.key_ref(),
            Self::ServiceAccount(x) => x.key_ref(),
            Self::Role(x) => x.key_ref(),
            Self::ResourceGroup(x) => x.key_ref(),
            Self::Resource(x) => x.key_ref(),
            Self::RoleAssignment(x) => x.key_ref(),
            Self::ApiKey(x) => x.key_ref(),
        }
    }
}
