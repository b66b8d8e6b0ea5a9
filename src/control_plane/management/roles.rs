//! Roles (`/authz/api/roles`) of the scope the query names: custom roles of the document, and
//! Harness's managed roles (built in, read only, listed unless `harnessManaged=false`).
//! `core_role_view` to read, `core_role_edit` to create or change, `core_role_delete` to delete.
//! An unknown permission, or one not grantable at the role's level, is a 400 from compilation
//! naming it; deleting a role that assignments use is a 400 naming them.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::cascade::matches_search;
use super::scope::{Target, check_identifier};
use super::wire::{ApiError, Call, Reply, page};
use super::{Management, answer};
use crate::control_plane::changes::{ChangeSummary, EditError};
use crate::rbac::model::{AccountSnapshot, PrincipalType, Role};
use crate::rbac::{Catalog, Level};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    identifier: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    permissions: Vec<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: Option<Value>,
}

fn role_json(
    target: &Target,
    id: &str,
    permissions: &[String],
    levels: Vec<&str>,
    managed: bool,
    body: Option<&Body>,
) -> Value {
    json!({
        "role": {
            "identifier": id,
            "name": body.and_then(|b| b.name.clone()).unwrap_or_else(|| id.to_owned()),
            "permissions": permissions,
            "allowedScopeLevels": levels,
            "description": body.and_then(|b| b.description.clone()).unwrap_or_default(),
            "tags": body.and_then(|b| b.tags.clone()).unwrap_or_else(|| json!({})),
        },
        "scope": if managed { Value::Null } else { target.authz_scope() },
        "harnessManaged": managed,
        "createdAt": null,
        "lastModifiedAt": null,
    })
}

/// The managed role `name` assignable at the target's level, as (permissions, levels).
fn managed(catalog: &Catalog, name: &str) -> Option<(Vec<String>, Vec<&'static str>)> {
    let role = catalog.managed_role(name)?;
    let permissions = role
        .permissions
        .iter()
        .map(|p| catalog.permission_name(p).to_owned())
        .collect();
    let levels = [
        (Level::Account, "account"),
        (Level::Organization, "organization"),
        (Level::Project, "project"),
    ]
    .into_iter()
    .filter(|(l, _)| role.levels.contains(*l))
    .map(|(_, n)| n)
    .collect();
    Some((permissions, levels))
}

fn level(target: &Target) -> Level {
    match (&target.org, &target.project) {
        (None, _) => Level::Account,
        (Some(_), None) => Level::Organization,
        _ => Level::Project,
    }
}

fn custom<'a>(doc: &'a AccountSnapshot, target: &Target, id: &str) -> Option<&'a Role> {
    doc.roles
        .iter()
        .find(|r| r.identifier == id && target.holds(r.scope.as_ref()))
}

/// `POST /authz/api/roles`.
pub async fn create(State(m): State<Arc<Management>>, call: Call) -> Response {
    upsert(&m, None, call).await
}

/// `PUT /authz/api/roles/{identifier}`.
pub async fn update(State(m): State<Arc<Management>>, Path(id): Path<String>, call: Call) -> Response {
    upsert(&m, Some(id), call).await
}

async fn upsert(m: &Management, path: Option<String>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?;
        let (caller, _) = m.caller(&call, &target).await?;
        let body: Body = call.json()?;
        check_identifier("role", &body.identifier)?;
        let create = path.is_none();
        if let Some(id) = &path
            && *id != body.identifier
        {
            return Err(ApiError::invalid("the body's identifier differs from the path's"));
        }
        caller.require(
            "core_role_edit",
            &target,
            (!create).then_some(body.identifier.as_str()),
        )?;
        if body.identifier.starts_with('_') {
            return Err(ApiError::invalid(
                "identifiers starting with `_` are Harness's managed roles",
            ));
        }
        let (id, at, permissions) = (body.identifier.clone(), target.clone(), body.permissions.clone());
        let edit = Box::new(move |doc: &mut AccountSnapshot| {
            at.exists_in(doc).map_err(|e| EditError::NotFound(e.message))?;
            let existing = doc
                .roles
                .iter_mut()
                .find(|r| r.identifier == id && at.holds(r.scope.as_ref()));
            match (create, existing) {
                (true, Some(_)) => Err(EditError::Duplicate(format!(
                    "A role with identifier `{id}` already exists in `{}`",
                    at.path()
                ))),
                (false, None) => Err(EditError::NotFound(format!(
                    "role `{}/{id}` not found",
                    at.path()
                ))),
                (false, Some(role)) => {
                    role.permissions = permissions;
                    Ok(ChangeSummary(format!("role updated: {}/{id}", at.path())))
                }
                (true, None) => {
                    doc.roles.push(Role {
                        identifier: id.clone(),
                        scope: Some(at.scope()),
                        permissions,
                    });
                    Ok(ChangeSummary(format!("role created: {}/{id}", at.path())))
                }
            }
        });
        let revision = m.commit(&call, &caller, &target, edit).await?;
        let shown = role_json(
            &target,
            &body.identifier,
            &body.permissions,
            vec![target.level()],
            false,
            Some(&body),
        );
        Ok(Reply::written(shown, revision))
    }
    .await;
    answer(&call, result)
}

fn counts(doc: &AccountSnapshot, target: &Target, role: &str) -> [usize; 3] {
    let mut counts = [0; 3];
    for assignment in doc
        .role_assignments
        .iter()
        .filter(|a| a.role == role && target.holds(a.scope.as_ref()))
    {
        match assignment
            .principal
            .as_ref()
            .map(|p| PrincipalType::try_from(p.r#type))
        {
            Some(Ok(PrincipalType::User)) => counts[0] += 1,
            Some(Ok(PrincipalType::UserGroup)) => counts[1] += 1,
            Some(Ok(PrincipalType::ServiceAccount)) => counts[2] += 1,
            _ => {}
        }
    }
    counts
}

/// `GET /authz/api/roles`: a page of the scope's custom roles and the managed roles assignable
/// there (`harnessManaged=true` only those, `false` none of them).
pub async fn list(State(m): State<Arc<Management>>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?;
        let (caller, document) = m.caller(&call, &target).await?;
        caller.require("core_role_view", &target, None)?;
        let search = call.param("searchTerm");
        let managed_filter = call.param("harnessManaged").map(|v| v == "true");
        let catalog = caller.compiled.catalog();
        let mut items = Vec::new();
        let mut push = |mut shown: Value, id: &str| {
            let [users, groups, sas] = counts(&document, &target, id);
            shown["roleAssignedToUserCount"] = users.into();
            shown["roleAssignedToUserGroupCount"] = groups.into();
            shown["roleAssignedToServiceAccountCount"] = sas.into();
            items.push(shown);
        };
        if managed_filter != Some(true) {
            for role in document.roles.iter().filter(|r| target.holds(r.scope.as_ref())) {
                if matches_search(&role.identifier, search) {
                    push(
                        role_json(
                            &target,
                            &role.identifier,
                            &role.permissions,
                            vec![target.level()],
                            false,
                            None,
                        ),
                        &role.identifier,
                    );
                }
            }
        }
        if managed_filter != Some(false) {
            for role in catalog
                .managed_roles()
                .iter()
                .filter(|r| r.levels.contains(level(&target)))
            {
                if let Some((permissions, levels)) = managed(catalog, role.name)
                    && matches_search(role.name, search)
                {
                    push(
                        role_json(&target, role.name, &permissions, levels, true, None),
                        role.name,
                    );
                }
            }
        }
        Ok(Reply::read(page(items, &call)?))
    }
    .await;
    answer(&call, result)
}

/// The role `id` as `target` sees it (`AuthzRoleResponse`): a custom role of the scope, else a
/// managed role.
pub(super) fn shown_role(
    doc: &AccountSnapshot,
    catalog: &Catalog,
    target: &Target,
    id: &str,
) -> Option<Value> {
    if let Some(role) = custom(doc, target, id) {
        let levels = vec![target.level()];
        return Some(role_json(target, id, &role.permissions, levels, false, None));
    }
    let (permissions, levels) = managed(catalog, id)?;
    Some(role_json(target, id, &permissions, levels, true, None))
}

/// `GET /authz/api/roles/{identifier}`: a custom role of the scope, else a managed role.
pub async fn get(State(m): State<Arc<Management>>, Path(id): Path<String>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?;
        let (caller, document) = m.caller(&call, &target).await?;
        caller.require("core_role_view", &target, Some(&id))?;
        shown_role(&document, caller.compiled.catalog(), &target, &id)
            .map(Reply::read)
            .ok_or_else(|| ApiError::not_found(format!("role `{}/{id}` not found", target.path())))
    }
    .await;
    answer(&call, result)
}

/// `DELETE /authz/api/roles/{identifier}`: answers the deleted role.
pub async fn delete(State(m): State<Arc<Management>>, Path(id): Path<String>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?;
        let (caller, document) = m.caller(&call, &target).await?;
        caller.require("core_role_delete", &target, Some(&id))?;
        let role = custom(&document, &target, &id)
            .ok_or_else(|| ApiError::not_found(format!("role `{}/{id}` not found", target.path())))?;
        let shown = role_json(&target, &id, &role.permissions, vec![target.level()], false, None);
        let (deleted, at) = (id.clone(), target.clone());
        let edit = Box::new(move |doc: &mut AccountSnapshot| {
            custom(doc, &at, &deleted)
                .ok_or_else(|| EditError::NotFound(format!("role `{}/{deleted}` not found", at.path())))?;
            doc.roles
                .retain(|r| !(r.identifier == deleted && at.holds(r.scope.as_ref())));
            Ok(ChangeSummary(format!("role deleted: {}/{deleted}", at.path())))
        });
        let revision = m.commit(&call, &caller, &target, edit).await?;
        Ok(Reply::written(shown, revision))
    }
    .await;
    answer(&call, result)
}
