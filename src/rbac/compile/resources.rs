//! The resource sections: `resource_groups` (custom groups, kept unresolved until an assignment
//! instantiates them in its scope) and `resources` (the attributes attribute filters read).

use std::sync::Arc;

use super::{Builder, Declaration};
use crate::rbac::catalog::Catalog;
use crate::rbac::compiled::Selector;
use crate::rbac::error::ValidationError;
use crate::rbac::index::CustomGroup;
use crate::rbac::model::{AccountSnapshot, ScopeFilter};

impl Builder {
    pub(super) fn resource_groups(&mut self, snapshot: &AccountSnapshot) {
        for group in &snapshot.resource_groups {
            let declared = Declaration::new("resource group", &group.identifier, group.scope.as_ref())
                .reserved(
                    Catalog::managed_resource_group(&group.identifier).is_some(),
                    "the identifier of a managed resource group is reserved",
                );
            let taken = |builder: &Self, scope| {
                builder
                    .account
                    .index
                    .lookup(scope, |s| &s.custom_groups, &group.identifier)
                    .is_some()
            };
            let Some((described, scope)) = self.declare(declared, taken) else {
                continue;
            };
            let mut scopes = Vec::new();
            for included in &group.included_scopes {
                let including = match ScopeFilter::try_from(included.filter) {
                    Ok(ScopeFilter::IncludingChildScopes) => true,
                    Ok(ScopeFilter::ExcludingChildScopes) => false,
                    _ => {
                        self.malformed(described.clone(), "an included scope needs `filter`");
                        continue;
                    }
                };
                let base = match &included.scope {
                    None => None,
                    Some(s) => match self.scope_of(Some(s), || described.clone()) {
                        Some(base) if self.account.is_ancestor_or_self(scope, base) => Some(base),
                        Some(base) => {
                            let path = self.path(base);
                            self.malformed(
                                described.clone(),
                                format!("included scope `{path}` is not the group's scope or below it"),
                            );
                            continue;
                        }
                        None => continue,
                    },
                };
                scopes.push((base, including));
            }
            let filter = group.resource_filter.clone().unwrap_or_default();
            let mut selectors = Vec::new();
            for selector in &filter.resources {
                let Some(resource_type) = self.catalog.resource_type_id(&selector.resource_type) else {
                    self.errors.push(ValidationError::UnknownResourceType {
                        entry: described.clone(),
                        resource_type: selector.resource_type.clone(),
                    });
                    continue;
                };
                let kind = match (&selector.attribute_filter, selector.identifiers.is_empty()) {
                    (Some(_), false) => {
                        self.malformed(
                            described.clone(),
                            format!(
                                "resource type `{}` has both identifiers and an attribute filter",
                                selector.resource_type
                            ),
                        );
                        continue;
                    }
                    (Some(attribute), true) => {
                        if attribute.attribute_name.is_empty() {
                            self.malformed(described.clone(), "an attribute filter needs `attribute_name`");
                            continue;
                        }
                        Selector::Attribute {
                            name: attribute.attribute_name.as_str().into(),
                            values: attribute
                                .attribute_values
                                .iter()
                                .map(|v| v.as_str().into())
                                .collect(),
                        }
                    }
                    (None, false) => Selector::Identifiers(
                        selector.identifiers.iter().map(|v| v.as_str().into()).collect(),
                    ),
                    (None, true) => Selector::TypeWide,
                };
                selectors.push((resource_type, kind));
            }
            let index = self.account.index.custom_groups.len() as u32;
            if let Some(names) = self.account.index.scope_mut(scope) {
                names
                    .custom_groups
                    .insert(group.identifier.as_str().into(), index);
            }
            Arc::make_mut(&mut self.account.index.custom_groups).push(CustomGroup {
                scope,
                scopes,
                include_all_resources: filter.include_all_resources,
                selectors,
            });
        }
    }

    pub(super) fn resources(&mut self, snapshot: &AccountSnapshot) {
        for resource in &snapshot.resources {
            let kind = format!("resource {}", resource.resource_type);
            let declared = Declaration::new(&kind, &resource.identifier, resource.scope.as_ref());
            // A resource's identifier is unique per scope and type, and the type is checked after
            // the scope: the duplicate check comes below.
            let Some((described, scope)) = self.declare(declared, |_, _| false) else {
                continue;
            };
            let Some(resource_type) = self.catalog.resource_type_id(&resource.resource_type) else {
                self.errors.push(ValidationError::UnknownResourceType {
                    entry: described,
                    resource_type: resource.resource_type.clone(),
                });
                continue;
            };
            let by_id = Arc::make_mut(&mut self.account.resources)
                .entry((scope, resource_type))
                .or_default();
            if by_id.contains_key(resource.identifier.as_str()) {
                self.errors
                    .push(ValidationError::DuplicateIdentifier { entry: described });
                continue;
            }
            let mut attributes: Vec<(Box<str>, Box<str>)> = resource
                .attributes
                .iter()
                .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
                .collect();
            attributes.sort();
            by_id.insert(resource.identifier.as_str().into(), attributes);
        }
    }
}
