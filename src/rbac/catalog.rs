//! The permission catalog (embedded data, overridable from a file) and the managed roles and
//! resource groups derived from it. No I/O beyond reading an override file on request.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::rbac::error::CatalogError;
use crate::rbac::ids::{Level, LevelSet, PermId, PermissionSet, ResourceTypeId};

/// The embedded default catalog: the 200 API permissions of Harness and the 39 AI SRE permissions.
pub const EMBEDDED_CATALOG_YAML: &str = include_str!("../../data/catalog.yaml");

/// One permission of the catalog.
#[derive(Debug, Clone)]
pub struct Permission {
    /// The ID exactly as Harness spells it (`core_pipeline_execute`).
    pub id: Box<str>,
    /// The resource type it acts on.
    pub resource_type: ResourceTypeId,
    /// The levels where it may be granted.
    pub levels: LevelSet,
    /// Whether every authenticated principal of an account holds it everywhere.
    pub implicit: bool,
}

/// A built-in role: global, assignable at `levels`.
#[derive(Debug, Clone)]
pub struct ManagedRole {
    /// Its identifier (`_project_admin`).
    pub name: &'static str,
    /// Where it may be assigned.
    pub levels: LevelSet,
    /// What it grants.
    pub permissions: PermissionSet,
}

/// A built-in resource group, resolved against the scope of the assignment that uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManagedResourceGroup {
    /// Its identifier (`_all_project_level_resources`).
    pub name: &'static str,
    /// Where it may be assigned.
    pub levels: LevelSet,
    /// Whether it covers the descendants of the assignment's scope too.
    pub including_child_scopes: bool,
}

/// The managed resource groups of Harness.
pub const MANAGED_RESOURCE_GROUPS: [ManagedResourceGroup; 4] = [
    ManagedResourceGroup {
        name: "_all_account_level_resources",
        levels: LevelSet::only(Level::Account),
        including_child_scopes: false,
    },
    ManagedResourceGroup {
        name: "_all_organization_level_resources",
        levels: LevelSet::only(Level::Organization),
        including_child_scopes: false,
    },
    ManagedResourceGroup {
        name: "_all_project_level_resources",
        levels: LevelSet::only(Level::Project),
        including_child_scopes: false,
    },
    ManagedResourceGroup {
        name: "_all_resources_including_child_scopes",
        levels: LevelSet::only(Level::Account).with(Level::Organization),
        including_child_scopes: true,
    },
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    permissions: Vec<PermissionEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PermissionEntry {
    id: String,
    resource_type: String,
    levels: Vec<String>,
    #[serde(default)]
    implicit: bool,
}

/// The permission catalog with its interned IDs, resource types and managed roles.
#[derive(Debug, Clone)]
pub struct Catalog {
    permissions: Vec<Permission>,
    by_id: HashMap<Box<str>, PermId>,
    resource_types: Vec<Box<str>>,
    type_by_name: HashMap<Box<str>, ResourceTypeId>,
    managed_roles: Vec<ManagedRole>,
    organization_type: Option<ResourceTypeId>,
    project_type: Option<ResourceTypeId>,
}

impl Catalog {
    /// The embedded default catalog.
    pub fn embedded() -> Result<Self, CatalogError> {
        Self::from_yaml(EMBEDDED_CATALOG_YAML)
    }

    /// Reads a catalog file (YAML or JSON: JSON is YAML).
    pub fn from_file(path: &Path) -> Result<Self, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text)
    }

    /// Parses and checks a catalog.
    pub fn from_yaml(text: &str) -> Result<Self, CatalogError> {
        let file: CatalogFile = serde_yaml_ng::from_str(text).map_err(|e| CatalogError::Parse {
            message: e.to_string(),
        })?;
        Self::build(file.permissions)
    }

    fn build(entries: Vec<PermissionEntry>) -> Result<Self, CatalogError> {
        let mut errors = Vec::new();
        if entries.len() > usize::from(u16::MAX) {
            errors.push(format!("more than {} permissions", u16::MAX));
        }
        let mut catalog = Catalog {
            permissions: Vec::with_capacity(entries.len()),
            by_id: HashMap::with_capacity(entries.len()),
            resource_types: Vec::new(),
            type_by_name: HashMap::new(),
            managed_roles: Vec::new(),
            organization_type: None,
            project_type: None,
        };
        for entry in entries.into_iter().take(usize::from(u16::MAX)) {
            if entry.id.split('_').filter(|s| !s.is_empty()).count() < 3 {
                errors.push(format!(
                    "permission `{}`: not of the form <module>_<resource>_<action>",
                    entry.id
                ));
            }
            if catalog.by_id.contains_key(entry.id.as_str()) {
                errors.push(format!("permission `{}`: listed more than once", entry.id));
                continue;
            }
            let mut levels = LevelSet::default();
            for name in &entry.levels {
                match Level::from_name(name) {
                    Some(level) => levels = levels.with(level),
                    None => errors.push(format!("permission `{}`: unknown level `{name}`", entry.id)),
                }
            }
            if levels.is_empty() {
                errors.push(format!("permission `{}`: no level allows it", entry.id));
            }
            if entry.resource_type.is_empty() {
                errors.push(format!("permission `{}`: empty resource type", entry.id));
            }
            let resource_type = catalog.intern_type(&entry.resource_type);
            let id = PermId(catalog.permissions.len() as u16);
            catalog.by_id.insert(entry.id.clone().into_boxed_str(), id);
            catalog.permissions.push(Permission {
                id: entry.id.into_boxed_str(),
                resource_type,
                levels,
                implicit: entry.implicit,
            });
        }
        if !errors.is_empty() {
            return Err(CatalogError::Invalid { errors });
        }
        for scope_type in ["ACCOUNT", "ORGANIZATION", "PROJECT"] {
            catalog.intern_type(scope_type);
        }
        catalog.organization_type = catalog.resource_type_id("ORGANIZATION");
        catalog.project_type = catalog.resource_type_id("PROJECT");
        catalog.managed_roles = derive_managed_roles(&catalog);
        Ok(catalog)
    }

    fn intern_type(&mut self, name: &str) -> ResourceTypeId {
        if let Some(id) = self.type_by_name.get(name) {
            return *id;
        }
        let id = ResourceTypeId(self.resource_types.len() as u16);
        self.resource_types.push(name.into());
        self.type_by_name.insert(name.into(), id);
        id
    }

    /// How many permissions the catalog holds.
    pub fn len(&self) -> usize {
        self.permissions.len()
    }

    /// Whether the catalog is empty.
    pub fn is_empty(&self) -> bool {
        self.permissions.is_empty()
    }

    /// Every permission, in catalog order (index = `PermId`).
    pub fn permissions(&self) -> &[Permission] {
        &self.permissions
    }

    /// The interned ID of a permission.
    #[inline]
    pub fn permission_id(&self, id: &str) -> Option<PermId> {
        self.by_id.get(id).copied()
    }

    /// The permission behind an interned ID.
    #[inline]
    pub fn permission(&self, id: PermId) -> Option<&Permission> {
        self.permissions.get(usize::from(id.0))
    }

    /// The ID string of a permission (empty for an ID outside the catalog).
    pub fn permission_name(&self, id: PermId) -> &str {
        self.permission(id).map_or("", |p| &p.id)
    }

    /// The interned ID of a resource type.
    #[inline]
    pub fn resource_type_id(&self, name: &str) -> Option<ResourceTypeId> {
        self.type_by_name.get(name).copied()
    }

    /// The name of a resource type.
    pub fn resource_type_name(&self, id: ResourceTypeId) -> &str {
        self.resource_types.get(usize::from(id.0)).map_or("", |n| n)
    }

    /// The resource types of the scopes themselves (ORGANIZATION, PROJECT).
    pub fn scope_resource_types(&self) -> (Option<ResourceTypeId>, Option<ResourceTypeId>) {
        (self.organization_type, self.project_type)
    }

    /// An empty permission set sized for this catalog.
    pub fn empty_set(&self) -> PermissionSet {
        PermissionSet::with_capacity(self.permissions.len())
    }

    /// The permissions that every authenticated principal holds.
    pub fn implicit_permissions(&self) -> impl Iterator<Item = &Permission> {
        self.permissions.iter().filter(|p| p.implicit)
    }

    /// The managed roles derived from this catalog.
    pub fn managed_roles(&self) -> &[ManagedRole] {
        &self.managed_roles
    }

    /// A managed role by name.
    pub fn managed_role(&self, name: &str) -> Option<&ManagedRole> {
        self.managed_roles.iter().find(|r| r.name == name)
    }

    /// A managed resource group by name.
    pub fn managed_resource_group(name: &str) -> Option<ManagedResourceGroup> {
        MANAGED_RESOURCE_GROUPS.into_iter().find(|g| g.name == name)
    }

    fn set_where(&self, keep: impl Fn(&Permission) -> bool) -> PermissionSet {
        let mut set = self.empty_set();
        for (index, permission) in self.permissions.iter().enumerate() {
            if keep(permission) {
                set.insert(PermId(index as u16));
            }
        }
        set
    }
}

/// The resources a `_pipeline_executor` may see, and which of them it may also access or copy.
const PIPELINE_EXECUTOR: &[(&str, &[&str])] = &[
    ("project", &["view"]),
    ("user", &["view"]),
    ("usergroup", &["view"]),
    ("role", &["view"]),
    ("resourcegroup", &["view"]),
    ("audit", &["view"]),
    ("setting", &["view"]),
    ("inputset", &["view"]),
    ("secret", &["view", "access"]),
    ("connector", &["view", "access"]),
    ("service", &["view", "access"]),
    ("environment", &["view", "access"]),
    ("environmentgroup", &["view", "access"]),
    ("file", &["view", "access"]),
    ("template", &["view", "access", "copy"]),
    ("pipeline", &["view", "execute"]),
];

fn is_view(permission: &Permission) -> bool {
    permission.id.ends_with("_view")
}

fn iro_action(permission: &Permission) -> Option<&str> {
    let rest = permission.id.strip_prefix("iro_")?;
    rest.rsplit_once('_').map(|(_, action)| action)
}

fn derive_managed_roles(catalog: &Catalog) -> Vec<ManagedRole> {
    let mut roles = Vec::new();
    let levels = [
        (Level::Account, "_account_admin", "_account_viewer"),
        (Level::Organization, "_organization_admin", "_organization_viewer"),
        (Level::Project, "_project_admin", "_project_viewer"),
    ];
    for (level, admin, viewer) in levels {
        roles.push(ManagedRole {
            name: admin,
            levels: LevelSet::only(level),
            permissions: catalog.set_where(|p| p.levels.contains(level)),
        });
        roles.push(ManagedRole {
            name: viewer,
            levels: LevelSet::only(level),
            permissions: catalog.set_where(|p| p.levels.contains(level) && is_view(p)),
        });
    }
    let executor: Vec<String> = PIPELINE_EXECUTOR
        .iter()
        .flat_map(|(resource, actions)| actions.iter().map(move |a| format!("core_{resource}_{a}")))
        .collect();
    roles.push(ManagedRole {
        name: "_pipeline_executor",
        levels: LevelSet::only(Level::Project),
        permissions: catalog
            .set_where(|p| p.levels.contains(Level::Project) && executor.iter().any(|e| **e == *p.id)),
    });
    roles.push(ManagedRole {
        name: "_iro_admin",
        levels: LevelSet::ALL,
        permissions: catalog.set_where(|p| iro_action(p).is_some()),
    });
    roles.push(ManagedRole {
        name: "_iro_user",
        levels: LevelSet::ALL,
        permissions: catalog.set_where(|p| {
            matches!(iro_action(p), Some("view" | "create" | "edit"))
                || *p.id == *"iro_runbook_trigger"
                || *p.id == *"iro_incident_sendstatusupdate"
        }),
    });
    roles.push(ManagedRole {
        name: "_iro_viewer",
        levels: LevelSet::ALL,
        permissions: catalog.set_where(|p| iro_action(p) == Some("view")),
    });
    // A managed role must only hold what its levels allow (docs/model.md "Roles").
    for role in &mut roles {
        let allowed = catalog.set_where(|p| {
            Level::ALL
                .iter()
                .all(|l| !role.levels.contains(*l) || p.levels.contains(*l))
        });
        role.permissions = role
            .permissions
            .iter()
            .filter(|id| allowed.contains(*id))
            .collect();
    }
    roles
}

#[cfg(test)]
#[path = "catalog_tests.rs"]
mod tests;
