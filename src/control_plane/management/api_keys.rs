//! API keys (`/ng/api/apikey`) of a service account or a user. A service account's keys need
//! `core_serviceaccount_manageapikey` on it in its scope; a user manages their own keys, and
//! `core_user_manage` in the account covers anyone's. The key's `name`, description, tags and
//! `defaultTimeToExpireToken` are echoed, not stored. Tokens are in [`super::tokens`].

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::caller::Caller;
use super::cascade::{UNKNOWN_TIME, matches_search};
use super::scope::{Target, check_identifier};
use super::wire::{ApiError, Call, Reply, page};
use super::{Management, answer};
use crate::control_plane::changes::{ChangeSummary, EditError};
use crate::rbac::model::{AccountSnapshot, ApiKey, ApiKeyParent, PrincipalType};

/// The fields of an API-key or token body that name the key's parent (`apiKeyType`,
/// `parentIdentifier`, and the scope of a service account).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ParentFields {
    #[serde(default)]
    api_key_type: Option<String>,
    #[serde(default)]
    parent_identifier: Option<String>,
    #[serde(default)]
    org_identifier: Option<String>,
    #[serde(default)]
    project_identifier: Option<String>,
}

/// Whose keys: the parent principal, where it lives.
#[derive(Debug, Clone)]
pub(super) struct Parent {
    pub(super) kind: PrincipalType,
    pub(super) identifier: String,
    pub(super) target: Target,
}

impl Parent {
    /// The parent a call names: `apiKeyType`, `parentIdentifier` and the scope, from the body's
    /// fields when given, else the query's.
    pub(super) fn new(
        account: &Target,
        kind: Option<&str>,
        parent: Option<&str>,
        org: Option<&str>,
        project: Option<&str>,
    ) -> Result<Self, ApiError> {
        let kind = match kind {
            Some("SERVICE_ACCOUNT") => PrincipalType::ServiceAccount,
            Some("USER") => PrincipalType::User,
            Some(_) => return Err(ApiError::invalid("`apiKeyType` must be USER or SERVICE_ACCOUNT")),
            None => return Err(ApiError::invalid("`apiKeyType` is required")),
        };
        let identifier = parent.ok_or_else(|| ApiError::invalid("`parentIdentifier` is required"))?;
        let target = match kind {
            PrincipalType::User => account.account_only(),
            _ => Target::new(&account.account, org, project)?,
        };
        Ok(Self {
            kind,
            identifier: identifier.to_owned(),
            target,
        })
    }

    /// The parent a body names.
    pub(super) fn of_body(account: &Target, fields: &ParentFields) -> Result<Self, ApiError> {
        Self::new(
            account,
            fields.api_key_type.as_deref(),
            fields.parent_identifier.as_deref(),
            fields.org_identifier.as_deref(),
            fields.project_identifier.as_deref(),
        )
    }

    /// The parent named by the query parameters.
    pub(super) fn from_query(call: &Call, account: &Target) -> Result<Self, ApiError> {
        Self::new(
            account,
            call.param("apiKeyType"),
            call.param("parentIdentifier"),
            call.param("orgIdentifier"),
            call.param("projectIdentifier"),
        )
    }

    /// Whether the caller may manage the parent's keys.
    pub(super) fn authorize(&self, caller: &Caller) -> Result<(), ApiError> {
        match self.kind {
            PrincipalType::ServiceAccount => caller.require(
                "core_serviceaccount_manageapikey",
                &self.target,
                Some(&self.identifier),
            ),
            _ if caller.is_user(&self.identifier) => Ok(()),
            _ => caller.require("core_user_manage", &self.target, Some(&self.identifier)),
        }
    }

    /// Whether a key belongs to this parent.
    pub(super) fn owns(&self, key: &ApiKey) -> bool {
        key.parent.as_ref().is_some_and(|p| {
            p.r#type == self.kind as i32
                && p.identifier == self.identifier
                && (self.kind == PrincipalType::User || self.target.holds(p.scope.as_ref()))
        })
    }

    /// Harness's name of the parent's type.
    pub(super) fn kind_name(&self) -> &'static str {
        if self.kind == PrincipalType::User {
            "USER"
        } else {
            "SERVICE_ACCOUNT"
        }
    }

    /// The key `identifier` of this parent in `doc`.
    pub(super) fn key_mut<'a>(
        &self,
        doc: &'a mut AccountSnapshot,
        identifier: &str,
    ) -> Result<&'a mut ApiKey, EditError> {
        doc.api_keys
            .iter_mut()
            .find(|k| k.identifier == identifier && self.owns(k))
            .ok_or_else(|| {
                EditError::NotFound(format!(
                    "api key `{identifier}` of {} `{}` not found",
                    self.kind_name(),
                    self.identifier
                ))
            })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    identifier: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: Option<Value>,
    #[serde(flatten)]
    parent: ParentFields,
    #[serde(default)]
    default_time_to_expire_token: Option<i64>,
}

fn api_key(parent: &Parent, identifier: &str, body: Option<&Body>) -> Value {
    json!({
        "identifier": identifier,
        "name": body.and_then(|b| b.name.clone()).unwrap_or_else(|| identifier.to_owned()),
        "description": body.and_then(|b| b.description.clone()).unwrap_or_default(),
        "tags": body.and_then(|b| b.tags.clone()).unwrap_or_else(|| json!({})),
        "apiKeyType": parent.kind_name(),
        "parentIdentifier": parent.identifier,
        "defaultTimeToExpireToken": body.and_then(|b| b.default_time_to_expire_token),
        "accountIdentifier": parent.target.account,
        "orgIdentifier": parent.target.org,
        "projectIdentifier": parent.target.project,
    })
}

/// `POST /ng/api/apikey`.
pub async fn create(State(m): State<Arc<Management>>, call: Call) -> Response {
    let result = async {
        let account = Target::from_query(&call)?.account_only();
        let (caller, _) = m.caller(&call, &account).await?;
        let body: Body = call.json()?;
        check_identifier("api key", &body.identifier)?;
        let parent = Parent::of_body(&account, &body.parent)?;
        parent.authorize(&caller)?;
        let (id, owner) = (body.identifier.clone(), parent.clone());
        let edit = Box::new(move |doc: &mut AccountSnapshot| {
            if owner.key_mut(doc, &id).is_ok() {
                return Err(EditError::Duplicate(format!(
                    "An api key with identifier `{id}` already exists for {} `{}`",
                    owner.kind_name(),
                    owner.identifier
                )));
            }
            let scope = (owner.kind == PrincipalType::ServiceAccount).then(|| owner.target.scope());
            doc.api_keys.push(ApiKey {
                identifier: id.clone(),
                parent: Some(ApiKeyParent {
                    r#type: owner.kind as i32,
                    identifier: owner.identifier.clone(),
                    scope,
                }),
                tokens: Vec::new(),
            });
            Ok(ChangeSummary(format!(
                "api key created: {id} of {} {}",
                owner.kind_name(),
                owner.identifier
            )))
        });
        let revision = m.commit(&call, &caller, &account, edit).await?;
        Ok(Reply::written(
            api_key(&parent, &body.identifier, Some(&body)),
            revision,
        ))
    }
    .await;
    answer(&call, result)
}

fn keys_of<'a>(
    document: &'a AccountSnapshot,
    parent: &'a Parent,
    call: &'a Call,
) -> impl Iterator<Item = &'a ApiKey> {
    let wanted: Option<Vec<&str>> = call.param("identifiers").map(|v| v.split(',').collect());
    let search = call.param("searchTerm");
    document.api_keys.iter().filter(move |k| {
        parent.owns(k)
            && wanted.as_ref().is_none_or(|w| w.contains(&k.identifier.as_str()))
            && matches_search(&k.identifier, search)
    })
}

/// `GET /ng/api/apikey` (a list) and `GET /ng/api/apikey/aggregate` (a page of aggregates).
pub async fn list(State(m): State<Arc<Management>>, call: Call) -> Response {
    let result = async {
        let account = Target::from_query(&call)?.account_only();
        let (caller, document) = m.caller(&call, &account).await?;
        let parent = Parent::from_query(&call, &account)?;
        parent.authorize(&caller)?;
        if call.path.ends_with("/aggregate") {
            let items = keys_of(&document, &parent, &call)
                .map(|k| {
                    json!({"apiKey": api_key(&parent, &k.identifier, None), "createdAt": UNKNOWN_TIME,
                           "lastModifiedAt": UNKNOWN_TIME, "tokensCount": k.tokens.len()})
                })
                .collect();
            return Ok(Reply::read(page(items, &call)?));
        }
        let items: Vec<Value> = keys_of(&document, &parent, &call)
            .map(|k| api_key(&parent, &k.identifier, None))
            .collect();
        Ok(Reply::read(items.into()))
    }
    .await;
    answer(&call, result)
}

/// `GET /ng/api/apikey/aggregate/{identifier}`.
pub async fn get(State(m): State<Arc<Management>>, Path(id): Path<String>, call: Call) -> Response {
    let result = async {
        let account = Target::from_query(&call)?.account_only();
        let (caller, mut document) = m.caller(&call, &account).await?;
        let parent = Parent::from_query(&call, &account)?;
        parent.authorize(&caller)?;
        let key = parent
            .key_mut(&mut document, &id)
            .map_err(|e| ApiError::not_found(e.to_string()))?;
        Ok(Reply::read(
            json!({"apiKey": api_key(&parent, &id, None), "createdAt": UNKNOWN_TIME,
                                "lastModifiedAt": UNKNOWN_TIME, "tokensCount": key.tokens.len()}),
        ))
    }
    .await;
    answer(&call, result)
}

/// `PUT /ng/api/apikey/{identifier}`: checks it exists; nothing else is stored.
pub async fn update(State(m): State<Arc<Management>>, Path(id): Path<String>, call: Call) -> Response {
    let result = async {
        let body: Body = call.json()?;
        let account = match call.param("accountIdentifier") {
            Some(_) => Target::from_query(&call)?.account_only(),
            None => {
                return Err(ApiError::invalid(
                    "query parameter `accountIdentifier` is required",
                ));
            }
        };
        let (caller, _) = m.caller(&call, &account).await?;
        if body.identifier != id {
            return Err(ApiError::invalid("the body's identifier differs from the path's"));
        }
        let parent = Parent::of_body(&account, &body.parent)?;
        parent.authorize(&caller)?;
        let (key, owner) = (id.clone(), parent.clone());
        let edit = Box::new(move |doc: &mut AccountSnapshot| {
            owner.key_mut(doc, &key)?;
            Ok(ChangeSummary(format!("api key updated: {key}")))
        });
        let revision = m.commit(&call, &caller, &account, edit).await?;
        Ok(Reply::written(api_key(&parent, &id, Some(&body)), revision))
    }
    .await;
    answer(&call, result)
}

/// `DELETE /ng/api/apikey/{identifier}`: the key and its tokens.
pub async fn delete(State(m): State<Arc<Management>>, Path(id): Path<String>, call: Call) -> Response {
    let result = async {
        let account = Target::from_query(&call)?.account_only();
        let (caller, _) = m.caller(&call, &account).await?;
        let parent = Parent::from_query(&call, &account)?;
        parent.authorize(&caller)?;
        let (key, owner) = (id.clone(), parent.clone());
        let edit = Box::new(move |doc: &mut AccountSnapshot| {
            let tokens = owner.key_mut(doc, &key)?.tokens.len();
            doc.api_keys.retain(|k| !(k.identifier == key && owner.owns(k)));
            Ok(ChangeSummary(format!("api key deleted: {key} ({tokens} tokens)")))
        });
        let revision = m.commit(&call, &caller, &account, edit).await?;
        Ok(Reply::written(json!(true), revision))
    }
    .await;
    answer(&call, result)
}
