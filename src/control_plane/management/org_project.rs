//! Organizations (`/ng/api/organizations`) and projects (`/ng/api/projects`). The document keeps
//! identifiers only: an answer's `name` is the identifier, and the request's `name`,
//! `description`, `tags` and `color` are echoed by the write that sent them, not stored.
//! Deleting an org or a project deletes everything that lives in it, in the same change.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::cascade::{matches_search, remove_scope};
use super::scope::{Target, check_identifier};
use super::wire::{ApiError, Call, Reply, page};
use super::{Management, answer};
use crate::control_plane::changes::{ChangeSummary, EditError};
use crate::rbac::model::Organization;

/// The descriptive fields Harness sends with an org or a project.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Described {
    identifier: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: Option<Value>,
    #[serde(default)]
    color: Option<String>,
    #[serde(default)]
    org_identifier: Option<String>,
}

#[derive(Debug, Deserialize)]
struct OrganizationRequest {
    organization: Described,
}

#[derive(Debug, Deserialize)]
struct ProjectRequest {
    project: Described,
}

fn organization(identifier: &str, described: Option<&Described>) -> Value {
    json!({
        "organization": {
            "identifier": identifier,
            "name": described.and_then(|d| d.name.clone()).unwrap_or_else(|| identifier.to_owned()),
            "description": described.and_then(|d| d.description.clone()).unwrap_or_default(),
            "tags": described.and_then(|d| d.tags.clone()).unwrap_or_else(|| json!({})),
        },
        "createdAt": null,
        "lastModifiedAt": null,
        "harnessManaged": false,
    })
}

fn project(org: &str, identifier: &str, described: Option<&Described>) -> Value {
    json!({
        "project": {
            "orgIdentifier": org,
            "identifier": identifier,
            "name": described.and_then(|d| d.name.clone()).unwrap_or_else(|| identifier.to_owned()),
            "color": described.and_then(|d| d.color.clone()),
            "modules": [],
            "description": described.and_then(|d| d.description.clone()).unwrap_or_default(),
            "tags": described.and_then(|d| d.tags.clone()).unwrap_or_else(|| json!({})),
        },
        "createdAt": null,
        "lastModifiedAt": null,
        "isFavorite": false,
    })
}

/// `POST /ng/api/organizations`: `core_organization_create` in the account.
pub async fn create_org(State(m): State<Arc<Management>>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?.account_only();
        let (caller, _) = m.caller(&call, &target).await?;
        let body: OrganizationRequest = call.json()?;
        let id = body.organization.identifier.clone();
        check_identifier("organization", &id)?;
        caller.require("core_organization_create", &target, None)?;
        let created = id.clone();
        let edit = Box::new(move |doc: &mut crate::rbac::model::AccountSnapshot| {
            if doc.organizations.iter().any(|o| o.identifier == created) {
                return Err(EditError::Duplicate(format!(
                    "An organization with identifier `{created}` already exists"
                )));
            }
            doc.organizations.push(Organization {
                identifier: created.clone(),
                projects: Vec::new(),
            });
            Ok(ChangeSummary(format!("organization created: {created}")))
        });
        let revision = m.commit(&call, &caller, &target, edit).await?;
        Ok(Reply::written(
            organization(&id, Some(&body.organization)),
            revision,
        ))
    }
    .await;
    answer(&call, result)
}

/// `GET /ng/api/organizations`: the orgs the caller may view (`core_organization_view`).
pub async fn list_orgs(State(m): State<Arc<Management>>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?.account_only();
        let (caller, document) = m.caller(&call, &target).await?;
        let search = call.param("searchTerm");
        let items = document
            .organizations
            .iter()
            .filter(|o| matches_search(&o.identifier, search))
            .filter(|o| caller.may("core_organization_view", &target, Some(&o.identifier)))
            .map(|o| organization(&o.identifier, None))
            .collect();
        Ok(Reply::read(page(items, &call)?))
    }
    .await;
    answer(&call, result)
}

/// `GET /ng/api/organizations/{identifier}`.
pub async fn get_org(State(m): State<Arc<Management>>, Path(id): Path<String>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?.account_only();
        let (caller, document) = m.caller(&call, &target).await?;
        caller.require("core_organization_view", &target, Some(&id))?;
        if !document.organizations.iter().any(|o| o.identifier == id) {
            return Err(ApiError::not_found(format!("organization `{id}` not found")));
        }
        Ok(Reply::read(organization(&id, None)))
    }
    .await;
    answer(&call, result)
}

/// `PUT /ng/api/organizations/{identifier}`: nothing of an org but its identifier is stored, so
/// this checks it exists and commits an unchanged document (a new revision).
pub async fn update_org(State(m): State<Arc<Management>>, Path(id): Path<String>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?.account_only();
        let (caller, _) = m.caller(&call, &target).await?;
        let body: OrganizationRequest = call.json()?;
        if body.organization.identifier != id {
            return Err(ApiError::invalid("the body's identifier differs from the path's"));
        }
        caller.require("core_organization_edit", &target, Some(&id))?;
        let updated = id.clone();
        let edit = Box::new(move |doc: &mut crate::rbac::model::AccountSnapshot| {
            if !doc.organizations.iter().any(|o| o.identifier == updated) {
                return Err(EditError::NotFound(format!("organization `{updated}` not found")));
            }
            Ok(ChangeSummary(format!("organization updated: {updated}")))
        });
        let revision = m.commit(&call, &caller, &target, edit).await?;
        Ok(Reply::written(
            organization(&id, Some(&body.organization)),
            revision,
        ))
    }
    .await;
    answer(&call, result)
}

/// `DELETE /ng/api/organizations/{identifier}`: the org, its projects and everything in them.
pub async fn delete_org(State(m): State<Arc<Management>>, Path(id): Path<String>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?.account_only();
        let (caller, _) = m.caller(&call, &target).await?;
        caller.require("core_organization_delete", &target, Some(&id))?;
        let deleted = id.clone();
        let edit = Box::new(move |doc: &mut crate::rbac::model::AccountSnapshot| {
            let before = doc.organizations.len();
            doc.organizations.retain(|o| o.identifier != deleted);
            if doc.organizations.len() == before {
                return Err(EditError::NotFound(format!("organization `{deleted}` not found")));
            }
            let removed = remove_scope(doc, &deleted, None);
            Ok(ChangeSummary(format!(
                "organization deleted: {deleted} ({removed} entities in it)"
            )))
        });
        let revision = m.commit(&call, &caller, &target, edit).await?;
        Ok(Reply::written(json!(true), revision))
    }
    .await;
    answer(&call, result)
}

/// The org a project call names: `orgIdentifier` of the query, else of the body; required.
fn project_target(call: &Call, body_org: Option<&str>) -> Result<Target, ApiError> {
    let account = Target::from_query(call)?;
    let org = call
        .param("orgIdentifier")
        .or(body_org)
        .ok_or_else(|| ApiError::invalid("query parameter `orgIdentifier` is required"))?;
    if let (Some(query), Some(body)) = (call.param("orgIdentifier"), body_org)
        && query != body
    {
        return Err(ApiError::invalid(
            "the body's orgIdentifier differs from the query's",
        ));
    }
    Target::new(&account.account, Some(org), None)
}

/// `POST /ng/api/projects`: `core_project_create` in the org.
pub async fn create_project(State(m): State<Arc<Management>>, call: Call) -> Response {
    let result = async {
        let account = Target::from_query(&call)?.account_only();
        let (caller, _) = m.caller(&call, &account).await?;
        let body: ProjectRequest = call.json()?;
        let target = project_target(&call, body.project.org_identifier.as_deref())?;
        let id = body.project.identifier.clone();
        check_identifier("project", &id)?;
        caller.require("core_project_create", &target, None)?;
        let org = target.org.clone().unwrap_or_default();
        let created = id.clone();
        let edit = Box::new(move |doc: &mut crate::rbac::model::AccountSnapshot| {
            let Some(found) = doc.organizations.iter_mut().find(|o| o.identifier == org) else {
                return Err(EditError::NotFound(format!("organization `{org}` not found")));
            };
            if found.projects.contains(&created) {
                return Err(EditError::Duplicate(format!(
                    "A project with identifier `{created}` already exists in organization `{org}`"
                )));
            }
            found.projects.push(created.clone());
            Ok(ChangeSummary(format!("project created: {org}/{created}")))
        });
        let revision = m.commit(&call, &caller, &account, edit).await?;
        let org = target.org.unwrap_or_default();
        Ok(Reply::written(project(&org, &id, Some(&body.project)), revision))
    }
    .await;
    answer(&call, result)
}

/// `GET /ng/api/projects`: the projects of `orgIdentifier` (or of every org) the caller may view.
pub async fn list_projects(State(m): State<Arc<Management>>, call: Call) -> Response {
    let result = async {
        let account = Target::from_query(&call)?.account_only();
        let (caller, document) = m.caller(&call, &account).await?;
        let search = call.param("searchTerm");
        let only = call.param("orgIdentifier");
        let mut items = Vec::new();
        for org in document
            .organizations
            .iter()
            .filter(|o| only.is_none_or(|w| w == o.identifier))
        {
            let target = Target::new(&account.account, Some(&org.identifier), None)?;
            for id in org.projects.iter().filter(|p| matches_search(p, search)) {
                if caller.may("core_project_view", &target, Some(id)) {
                    items.push(project(&org.identifier, id, None));
                }
            }
        }
        Ok(Reply::read(page(items, &call)?))
    }
    .await;
    answer(&call, result)
}

/// `GET /ng/api/projects/{identifier}`.
pub async fn get_project(State(m): State<Arc<Management>>, Path(id): Path<String>, call: Call) -> Response {
    let result = async {
        let account = Target::from_query(&call)?.account_only();
        let (caller, document) = m.caller(&call, &account).await?;
        let target = project_target(&call, None)?;
        caller.require("core_project_view", &target, Some(&id))?;
        Target::new(&account.account, target.org.as_deref(), Some(&id))?.exists_in(&document)?;
        Ok(Reply::read(project(
            target.org.as_deref().unwrap_or_default(),
            &id,
            None,
        )))
    }
    .await;
    answer(&call, result)
}

/// `PUT /ng/api/projects/{identifier}`: checks it exists and commits an unchanged document.
pub async fn update_project(
    State(m): State<Arc<Management>>,
    Path(id): Path<String>,
    call: Call,
) -> Response {
    let result = async {
        let account = Target::from_query(&call)?.account_only();
        let (caller, _) = m.caller(&call, &account).await?;
        let body: ProjectRequest = call.json()?;
        if body.project.identifier != id {
            return Err(ApiError::invalid("the body's identifier differs from the path's"));
        }
        let target = project_target(&call, body.project.org_identifier.as_deref())?;
        caller.require("core_project_edit", &target, Some(&id))?;
        let org = target.org.clone().unwrap_or_default();
        let updated = id.clone();
        let edit = Box::new(move |doc: &mut crate::rbac::model::AccountSnapshot| {
            if !doc
                .organizations
                .iter()
                .any(|o| o.identifier == org && o.projects.contains(&updated))
            {
                return Err(EditError::NotFound(format!(
                    "project `{org}/{updated}` not found"
                )));
            }
            Ok(ChangeSummary(format!("project updated: {org}/{updated}")))
        });
        let revision = m.commit(&call, &caller, &account, edit).await?;
        let org = target.org.unwrap_or_default();
        Ok(Reply::written(project(&org, &id, Some(&body.project)), revision))
    }
    .await;
    answer(&call, result)
}

/// `DELETE /ng/api/projects/{identifier}`: the project and everything in it.
pub async fn delete_project(
    State(m): State<Arc<Management>>,
    Path(id): Path<String>,
    call: Call,
) -> Response {
    let result = async {
        let account = Target::from_query(&call)?.account_only();
        let (caller, _) = m.caller(&call, &account).await?;
        let target = project_target(&call, None)?;
        caller.require("core_project_delete", &target, Some(&id))?;
        let org = target.org.unwrap_or_default();
        let deleted = id.clone();
        let edit = Box::new(move |doc: &mut crate::rbac::model::AccountSnapshot| {
            let found = doc.organizations.iter_mut().find(|o| o.identifier == org);
            let Some(found) = found.filter(|o| o.projects.contains(&deleted)) else {
                return Err(EditError::NotFound(format!(
                    "project `{org}/{deleted}` not found"
                )));
            };
            found.projects.retain(|p| *p != deleted);
            let removed = remove_scope(doc, &org, Some(&deleted));
            Ok(ChangeSummary(format!(
                "project deleted: {org}/{deleted} ({removed} entities in it)"
            )))
        });
        let revision = m.commit(&call, &caller, &account, edit).await?;
        Ok(Reply::written(json!(true), revision))
    }
    .await;
    answer(&call, result)
}
