//! Service accounts (`/ng/api/serviceaccount`), in the scope the query names, and the answer
//! shape of user groups ([`super::user_groups`]). The document keeps identifiers (and a
//! group's members): `name` is the identifier, a service account's `email` is
//! `<identifier>@<account>.serviceaccount.harness.io`, and descriptions and tags are echoed, not
//! stored. Deleting one deletes its role assignments (and a service account's API keys) with it.
//!
//! `core_serviceaccount_view/edit/delete` are granted at account level only (the catalog): they are
//! checked in the account whatever the service account's scope.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::assignments::assignment_metadata;
use super::cascade::{UNKNOWN_TIME, matches_search, remove_assignments_of};
use super::scope::{Target, check_identifier};
use super::wire::{ApiError, Call, Reply, page};
use super::{Management, answer};
use crate::control_plane::changes::{ChangeSummary, EditError};
use crate::rbac::model::{AccountSnapshot, PrincipalType, ServiceAccount, UserGroup};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Body {
    pub(super) identifier: String,
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) description: Option<String>,
    #[serde(default)]
    pub(super) tags: Option<Value>,
    #[serde(default)]
    pub(super) users: Option<Vec<String>>,
}

fn service_account(target: &Target, id: &str, body: Option<&Body>) -> Value {
    json!({
        "identifier": id,
        "name": body.and_then(|b| b.name.clone()).unwrap_or_else(|| id.to_owned()),
        "email": format!("{id}@{}.serviceaccount.harness.io", target.account.to_ascii_lowercase()),
        "description": body.and_then(|b| b.description.clone()).unwrap_or_default(),
        "tags": body.and_then(|b| b.tags.clone()).unwrap_or_else(|| json!({})),
        "accountIdentifier": target.account,
        "orgIdentifier": target.org,
        "projectIdentifier": target.project,
    })
}

fn find_sa<'a>(doc: &'a AccountSnapshot, target: &Target, id: &str) -> Option<&'a ServiceAccount> {
    doc.service_accounts
        .iter()
        .find(|s| s.identifier == id && target.holds(s.scope.as_ref()))
}

/// `POST /ng/api/serviceaccount`: `core_serviceaccount_edit`.
pub async fn create_sa(State(m): State<Arc<Management>>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?;
        let (caller, _) = m.caller(&call, &target).await?;
        let body: Body = call.json()?;
        check_identifier("service account", &body.identifier)?;
        caller.require("core_serviceaccount_edit", &target, None)?;
        let (id, at) = (body.identifier.clone(), target.clone());
        let edit = Box::new(move |doc: &mut AccountSnapshot| {
            at.exists_in(doc).map_err(|e| EditError::NotFound(e.message))?;
            if find_sa(doc, &at, &id).is_some() {
                return Err(EditError::Duplicate(format!(
                    "A service account with identifier `{id}` already exists in `{}`",
                    at.path()
                )));
            }
            doc.service_accounts.push(ServiceAccount {
                identifier: id.clone(),
                scope: Some(at.scope()),
            });
            Ok(ChangeSummary(format!(
                "service account created: {}/{id}",
                at.path()
            )))
        });
        let revision = m.commit(&call, &caller, &target, edit).await?;
        Ok(Reply::written(
            service_account(&target, &body.identifier, Some(&body)),
            revision,
        ))
    }
    .await;
    answer(&call, result)
}

/// `GET /ng/api/serviceaccount`: a list (not a page), optionally of `identifiers`.
pub async fn list_sas(State(m): State<Arc<Management>>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?;
        let (caller, document) = m.caller(&call, &target).await?;
        let wanted: Option<Vec<&str>> = call.param("identifiers").map(|v| v.split(',').collect());
        let items: Vec<Value> = document
            .service_accounts
            .iter()
            .filter(|s| target.holds(s.scope.as_ref()))
            .filter(|s| wanted.as_ref().is_none_or(|w| w.contains(&s.identifier.as_str())))
            .filter(|s| caller.may("core_serviceaccount_view", &target, Some(&s.identifier)))
            .map(|s| service_account(&target, &s.identifier, None))
            .collect();
        Ok(Reply::read(items.into()))
    }
    .await;
    answer(&call, result)
}

fn aggregate(document: &AccountSnapshot, target: &Target, id: &str) -> Value {
    let tokens: usize = document
        .api_keys
        .iter()
        .filter(|k| {
            k.parent.as_ref().is_some_and(|p| {
                p.r#type == PrincipalType::ServiceAccount as i32
                    && p.identifier == id
                    && target.holds(p.scope.as_ref())
            })
        })
        .map(|k| k.tokens.len())
        .sum();
    let assignments: Vec<Value> = document
        .role_assignments
        .iter()
        .filter(|a| {
            target.holds(a.scope.as_ref())
                && a.principal
                    .as_ref()
                    .is_some_and(|p| p.r#type == PrincipalType::ServiceAccount as i32 && p.identifier == id)
        })
        .map(|a| assignment_metadata(target, a))
        .collect();
    json!({
        "serviceAccount": service_account(target, id, None),
        "createdAt": UNKNOWN_TIME, "lastModifiedAt": UNKNOWN_TIME,
        "tokensCount": tokens,
        "roleAssignmentsMetadataDTO": assignments,
    })
}

/// `GET /ng/api/serviceaccount/aggregate`: a page of aggregates.
pub async fn list_sa_aggregates(State(m): State<Arc<Management>>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?;
        let (caller, document) = m.caller(&call, &target).await?;
        let search = call.param("searchTerm");
        let items = document
            .service_accounts
            .iter()
            .filter(|s| target.holds(s.scope.as_ref()) && matches_search(&s.identifier, search))
            .filter(|s| caller.may("core_serviceaccount_view", &target, Some(&s.identifier)))
            .map(|s| aggregate(&document, &target, &s.identifier))
            .collect();
        Ok(Reply::read(page(items, &call)?))
    }
    .await;
    answer(&call, result)
}

/// `GET /ng/api/serviceaccount/aggregate/{identifier}`.
pub async fn get_sa(State(m): State<Arc<Management>>, Path(id): Path<String>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?;
        let (caller, document) = m.caller(&call, &target).await?;
        caller.require("core_serviceaccount_view", &target, Some(&id))?;
        find_sa(&document, &target, &id).ok_or_else(|| {
            ApiError::not_found(format!("service account `{}/{id}` not found", target.path()))
        })?;
        Ok(Reply::read(aggregate(&document, &target, &id)))
    }
    .await;
    answer(&call, result)
}

/// `PUT /ng/api/serviceaccount/{identifier}`: checks it exists; nothing else is stored.
pub async fn update_sa(State(m): State<Arc<Management>>, Path(id): Path<String>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?;
        let (caller, _) = m.caller(&call, &target).await?;
        let body: Body = call.json()?;
        if body.identifier != id {
            return Err(ApiError::invalid("the body's identifier differs from the path's"));
        }
        caller.require("core_serviceaccount_edit", &target, Some(&id))?;
        let (sa, at) = (id.clone(), target.clone());
        let edit = Box::new(move |doc: &mut AccountSnapshot| {
            find_sa(doc, &at, &sa).ok_or_else(|| {
                EditError::NotFound(format!("service account `{}/{sa}` not found", at.path()))
            })?;
            Ok(ChangeSummary(format!(
                "service account updated: {}/{sa}",
                at.path()
            )))
        });
        let revision = m.commit(&call, &caller, &target, edit).await?;
        Ok(Reply::written(
            service_account(&target, &id, Some(&body)),
            revision,
        ))
    }
    .await;
    answer(&call, result)
}

/// `DELETE /ng/api/serviceaccount/{identifier}`: with its API keys and role assignments.
pub async fn delete_sa(State(m): State<Arc<Management>>, Path(id): Path<String>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?;
        let (caller, _) = m.caller(&call, &target).await?;
        caller.require("core_serviceaccount_delete", &target, Some(&id))?;
        let (sa, at) = (id.clone(), target.clone());
        let edit = Box::new(move |doc: &mut AccountSnapshot| {
            let before = doc.service_accounts.len();
            doc.service_accounts
                .retain(|s| !(s.identifier == sa && at.holds(s.scope.as_ref())));
            if doc.service_accounts.len() == before {
                return Err(EditError::NotFound(format!(
                    "service account `{}/{sa}` not found",
                    at.path()
                )));
            }
            doc.api_keys.retain(|k| {
                !k.parent.as_ref().is_some_and(|p| {
                    p.r#type == PrincipalType::ServiceAccount as i32
                        && p.identifier == sa
                        && at.holds(p.scope.as_ref())
                })
            });
            let removed = remove_assignments_of(doc, PrincipalType::ServiceAccount, &sa, &at.scope());
            Ok(ChangeSummary(format!(
                "service account deleted: {}/{sa} ({removed} role assignments)",
                at.path()
            )))
        });
        let revision = m.commit(&call, &caller, &target, edit).await?;
        Ok(Reply::written(json!(true), revision))
    }
    .await;
    answer(&call, result)
}

pub(super) fn user_group(target: &Target, group: &UserGroup, body: Option<&Body>) -> Value {
    json!({
        "accountIdentifier": target.account,
        "orgIdentifier": target.org,
        "projectIdentifier": target.project,
        "identifier": group.identifier,
        "name": body.and_then(|b| b.name.clone()).unwrap_or_else(|| group.identifier.clone()),
        "description": body.and_then(|b| b.description.clone()).unwrap_or_default(),
        "tags": body.and_then(|b| b.tags.clone()).unwrap_or_else(|| json!({})),
        "users": group.users,
        "notificationConfigs": [],
        "harnessManaged": false,
        "externallyManaged": false,
        "ssoLinked": false,
        "isSsoLinked": false,
    })
}
