//! Resource groups on Harness's v1 paths (`/v1/resource-groups`, `/v1/orgs/{org}/resource-groups`,
//! `/v1/orgs/{org}/projects/{project}/resource-groups`), in the v1 API's snake_case bodies
//! without an envelope; the account comes from the `Harness-Account` header.
//! `core_resourcegroup_view/edit/delete`. Custom groups only: Harness's managed groups are built in.
//! `name`, `description`, `color` and `tags` are echoed, not stored.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::scope::{Target, check_identifier};
use super::wire::{ApiError, Call, Reply};
use super::{Management, answer};
use crate::control_plane::changes::{ChangeSummary, EditError};
use crate::rbac::model::{
    AccountSnapshot, AttributeFilter, IncludedScope, ResourceFilter, ResourceGroup, ResourceSelector, Scope,
    ScopeFilter,
};

#[derive(Debug, Deserialize)]
struct IncludedBody {
    #[serde(default)]
    filter: Option<String>,
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    org: Option<String>,
    #[serde(default)]
    project: Option<String>,
}

#[derive(Debug, Deserialize)]
struct FilterBody {
    resource_type: String,
    #[serde(default)]
    identifiers: Vec<String>,
    #[serde(default)]
    attribute_name: Option<String>,
    #[serde(default)]
    attribute_values: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Body {
    identifier: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    color: Option<String>,
    #[serde(default)]
    tags: Option<Value>,
    #[serde(default)]
    include_all_resources: bool,
    #[serde(default)]
    included_scope: Vec<IncludedBody>,
    #[serde(default)]
    resource_filter: Vec<FilterBody>,
}

fn to_document(target: &Target, body: &Body) -> Result<ResourceGroup, ApiError> {
    let mut included = Vec::new();
    for scope in &body.included_scope {
        if scope.account.as_deref().is_some_and(|a| a != target.account) {
            return Err(ApiError::invalid("an included scope names another account"));
        }
        let filter = match scope.filter.as_deref() {
            None | Some("EXCLUDING_CHILD_SCOPES") => ScopeFilter::ExcludingChildScopes,
            Some("INCLUDING_CHILD_SCOPES") => ScopeFilter::IncludingChildScopes,
            Some(_) => {
                return Err(ApiError::invalid(
                    "an included scope's `filter` must be INCLUDING_CHILD_SCOPES or EXCLUDING_CHILD_SCOPES",
                ));
            }
        };
        included.push(IncludedScope {
            filter: filter as i32,
            scope: Some(Scope::new(scope.org.as_deref(), scope.project.as_deref())),
        });
    }
    let resources = body
        .resource_filter
        .iter()
        .map(|f| ResourceSelector {
            resource_type: f.resource_type.clone(),
            identifiers: f.identifiers.clone(),
            attribute_filter: f.attribute_name.clone().map(|attribute_name| AttributeFilter {
                attribute_name,
                attribute_values: f.attribute_values.clone(),
            }),
        })
        .collect();
    Ok(ResourceGroup {
        identifier: body.identifier.clone(),
        scope: Some(target.scope()),
        included_scopes: included,
        resource_filter: Some(ResourceFilter {
            include_all_resources: body.include_all_resources,
            resources,
        }),
    })
}

fn group_json(target: &Target, group: &ResourceGroup, body: Option<&Body>) -> Value {
    let filter = group.resource_filter.clone().unwrap_or_default();
    let included: Vec<Value> = group
        .included_scopes
        .iter()
        .map(|s| {
            let scope = s.scope.clone().unwrap_or_default();
            let name = ScopeFilter::try_from(s.filter).map_or("EXCLUDING_CHILD_SCOPES", |f| f.as_str_name());
            json!({"filter": name, "account": target.account,
                   "org": (!scope.org.is_empty()).then_some(scope.org),
                   "project": (!scope.project.is_empty()).then_some(scope.project)})
        })
        .collect();
    let resources: Vec<Value> = filter
        .resources
        .iter()
        .map(|r| {
            let attribute = r.attribute_filter.clone().unwrap_or_default();
            json!({"resource_type": r.resource_type, "identifiers": r.identifiers,
                   "attribute_name": (!attribute.attribute_name.is_empty()).then_some(attribute.attribute_name),
                   "attribute_values": attribute.attribute_values})
        })
        .collect();
    json!({
        "identifier": group.identifier,
        "name": body.and_then(|b| b.name.clone()).unwrap_or_else(|| group.identifier.clone()),
        "description": body.and_then(|b| b.description.clone()).unwrap_or_default(),
        "color": body.and_then(|b| b.color.clone()),
        "tags": body.and_then(|b| b.tags.clone()).unwrap_or_else(|| json!({})),
        "allowed_scope_levels": [target.level()],
        "included_scope": included,
        "resource_filter": resources,
        "include_all_resources": filter.include_all_resources,
        "harness_managed": false,
        "created": null,
        "updated": null,
    })
}

fn find<'a>(doc: &'a mut AccountSnapshot, at: &Target, id: &str) -> Result<&'a mut ResourceGroup, EditError> {
    doc.resource_groups
        .iter_mut()
        .find(|g| g.identifier == id && at.holds(g.scope.as_ref()))
        .ok_or_else(|| EditError::NotFound(format!("resource group `{}/{id}` not found", at.path())))
}

async fn write(
    m: &Management,
    call: Call,
    org: Option<String>,
    project: Option<String>,
    id: Option<String>,
) -> Response {
    let result = async {
        let target = Target::from_path(&call, org.as_deref(), project.as_deref())?;
        let (caller, _) = m.caller(&call, &target).await?;
        let body: Body = call.json()?;
        check_identifier("resource group", &body.identifier)?;
        if id.as_ref().is_some_and(|id| *id != body.identifier) {
            return Err(ApiError::invalid("the body's identifier differs from the path's"));
        }
        if body.identifier.starts_with('_') {
            return Err(ApiError::invalid(
                "identifiers starting with `_` are Harness's managed resource groups",
            ));
        }
        caller.require("core_resourcegroup_edit", &target, id.as_deref())?;
        let group = to_document(&target, &body)?;
        let (at, create, stored) = (target.clone(), id.is_none(), group.clone());
        let edit = Box::new(move |doc: &mut AccountSnapshot| {
            at.exists_in(doc).map_err(|e| EditError::NotFound(e.message))?;
            let name = stored.identifier.clone();
            match (create, find(doc, &at, &name)) {
                (true, Ok(_)) => Err(EditError::Duplicate(format!(
                    "A resource group with identifier `{name}` already exists in `{}`",
                    at.path()
                ))),
                (true, Err(_)) => {
                    doc.resource_groups.push(stored);
                    Ok(ChangeSummary(format!(
                        "resource group created: {}/{name}",
                        at.path()
                    )))
                }
                (false, found) => {
                    *found? = stored;
                    Ok(ChangeSummary(format!(
                        "resource group updated: {}/{name}",
                        at.path()
                    )))
                }
            }
        });
        let revision = m.commit(&call, &caller, &target, edit).await?;
        Ok(Reply::written(group_json(&target, &group, Some(&body)), revision).bare())
    }
    .await;
    answer(&call, result)
}

async fn read(
    m: &Management,
    call: Call,
    org: Option<String>,
    project: Option<String>,
    id: Option<String>,
) -> Response {
    let result = async {
        let target = Target::from_path(&call, org.as_deref(), project.as_deref())?;
        let (caller, mut document) = m.caller(&call, &target).await?;
        if let Some(id) = id {
            caller.require("core_resourcegroup_view", &target, Some(&id))?;
            let group = find(&mut document, &target, &id).map_err(|e| ApiError::not_found(e.to_string()))?;
            return Ok(Reply::read(group_json(&target, group, None)).bare());
        }
        let items: Vec<Value> = document
            .resource_groups
            .iter()
            .filter(|g| target.holds(g.scope.as_ref()))
            .filter(|g| caller.may("core_resourcegroup_view", &target, Some(&g.identifier)))
            .map(|g| group_json(&target, g, None))
            .collect();
        Ok(Reply::read(items.into()).bare())
    }
    .await;
    answer(&call, result)
}

async fn remove(
    m: &Management,
    call: Call,
    org: Option<String>,
    project: Option<String>,
    id: String,
) -> Response {
    let result = async {
        let target = Target::from_path(&call, org.as_deref(), project.as_deref())?;
        let (caller, mut document) = m.caller(&call, &target).await?;
        caller.require("core_resourcegroup_delete", &target, Some(&id))?;
        let shown = find(&mut document, &target, &id)
            .map(|g| group_json(&target, g, None))
            .map_err(|e| ApiError::not_found(e.to_string()))?;
        let (at, name) = (target.clone(), id.clone());
        let edit = Box::new(move |doc: &mut AccountSnapshot| {
            find(doc, &at, &name)?;
            doc.resource_groups
                .retain(|g| !(g.identifier == name && at.holds(g.scope.as_ref())));
            Ok(ChangeSummary(format!(
                "resource group deleted: {}/{name}",
                at.path()
            )))
        });
        let revision = m.commit(&call, &caller, &target, edit).await?;
        Ok(Reply::written(shown, revision).bare())
    }
    .await;
    answer(&call, result)
}

type M = State<Arc<Management>>;

/// `GET /v1/resource-groups`.
pub async fn list(State(m): M, call: Call) -> Response {
    read(&m, call, None, None, None).await
}
/// `POST /v1/resource-groups`.
pub async fn create(State(m): M, call: Call) -> Response {
    write(&m, call, None, None, None).await
}
/// `GET /v1/resource-groups/{resource_group}`.
pub async fn get(State(m): M, Path(id): Path<String>, call: Call) -> Response {
    read(&m, call, None, None, Some(id)).await
}
/// `PUT /v1/resource-groups/{resource_group}`.
pub async fn update(State(m): M, Path(id): Path<String>, call: Call) -> Response {
    write(&m, call, None, None, Some(id)).await
}
/// `DELETE /v1/resource-groups/{resource_group}`.
pub async fn delete(State(m): M, Path(id): Path<String>, call: Call) -> Response {
    remove(&m, call, None, None, id).await
}
/// `GET /v1/orgs/{org}/resource-groups`.
pub async fn list_org(State(m): M, Path(org): Path<String>, call: Call) -> Response {
    read(&m, call, Some(org), None, None).await
}
/// `POST /v1/orgs/{org}/resource-groups`.
pub async fn create_org(State(m): M, Path(org): Path<String>, call: Call) -> Response {
    write(&m, call, Some(org), None, None).await
}
/// `GET /v1/orgs/{org}/resource-groups/{resource_group}`.
pub async fn get_org(State(m): M, Path((org, id)): Path<(String, String)>, call: Call) -> Response {
    read(&m, call, Some(org), None, Some(id)).await
}
/// `PUT /v1/orgs/{org}/resource-groups/{resource_group}`.
pub async fn update_org(State(m): M, Path((org, id)): Path<(String, String)>, call: Call) -> Response {
    write(&m, call, Some(org), None, Some(id)).await
}
/// `DELETE /v1/orgs/{org}/resource-groups/{resource_group}`.
pub async fn delete_org(State(m): M, Path((org, id)): Path<(String, String)>, call: Call) -> Response {
    remove(&m, call, Some(org), None, id).await
}
/// `GET /v1/orgs/{org}/projects/{project}/resource-groups`.
pub async fn list_project(State(m): M, Path((org, project)): Path<(String, String)>, call: Call) -> Response {
    read(&m, call, Some(org), Some(project), None).await
}
/// `POST /v1/orgs/{org}/projects/{project}/resource-groups`.
pub async fn create_project(
    State(m): M,
    Path((org, project)): Path<(String, String)>,
    call: Call,
) -> Response {
    write(&m, call, Some(org), Some(project), None).await
}
/// `GET /v1/orgs/{org}/projects/{project}/resource-groups/{resource_group}`.
pub async fn get_project(
    State(m): M,
    Path((org, project, id)): Path<(String, String, String)>,
    call: Call,
) -> Response {
    read(&m, call, Some(org), Some(project), Some(id)).await
}
/// `PUT /v1/orgs/{org}/projects/{project}/resource-groups/{resource_group}`.
pub async fn update_project(
    State(m): M,
    Path((org, project, id)): Path<(String, String, String)>,
    call: Call,
) -> Response {
    write(&m, call, Some(org), Some(project), Some(id)).await
}
/// `DELETE /v1/orgs/{org}/projects/{project}/resource-groups/{resource_group}`.
pub async fn delete_project(
    State(m): M,
    Path((org, project, id)): Path<(String, String, String)>,
    call: Call,
) -> Response {
    remove(&m, call, Some(org), Some(project), id).await
}
