//! API tokens (`/ng/api/token`): create answers the token string once (minted by
//! [`crate::authn::api_key::mint`]; the document keeps only its SHA-256 hash), update changes the
//! current token's `validTo` (never its id, secret or `validFrom`), rotate mints a new secret under
//! the same identifier and lets the old one live until `rotateTimestamp` (default: now), delete
//! removes the token. The permissions are those of the API key's parent
//! ([`super::api_keys::Parent`]).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::api_keys::{Parent, ParentFields};
use super::cascade::{matches_search, millis_to_rfc3339, rfc3339_to_millis};
use super::scope::{Target, check_identifier};
use super::wire::{ApiError, Call, Reply, page};
use super::{Management, answer};
use crate::authn::api_key::{TokenKind, mint};
use crate::control_plane::changes::{ChangeSummary, EditError};
use crate::rbac::model::{AccountSnapshot, ApiKey, ApiToken, PrincipalType};

/// A token's lifetime when the request gives no `validTo`: 30 days.
pub const DEFAULT_LIFETIME_MILLIS: i64 = 30 * 24 * 3600 * 1000;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    identifier: String,
    api_key_identifier: String,
    #[serde(flatten)]
    parent: ParentFields,
    #[serde(default)]
    valid_from: Option<i64>,
    #[serde(default)]
    valid_to: Option<i64>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: Option<Value>,
}

fn now_millis() -> i64 {
    crate::clock::now_unix().saturating_mul(1000)
}

fn kind_of(parent: &Parent) -> TokenKind {
    if parent.kind == PrincipalType::User {
        TokenKind::Pat
    } else {
        TokenKind::Sat
    }
}

fn token_json(parent: &Parent, key: &str, token: &ApiToken, body: Option<&Body>) -> Value {
    let from = rfc3339_to_millis(&token.valid_from);
    let to = rfc3339_to_millis(&token.valid_to);
    let rotated = token.rotated_expire_at.as_deref().and_then(rfc3339_to_millis);
    let now = now_millis();
    let valid =
        from.is_some_and(|f| f <= now) && to.is_some_and(|t| now < t) && rotated.is_none_or(|r| now < r);
    json!({
        "identifier": token.identifier,
        "name": body.and_then(|b| b.name.clone()).unwrap_or_else(|| token.identifier.clone()),
        "validFrom": from, "validTo": to, "scheduledExpireTime": rotated, "valid": valid,
        "accountIdentifier": parent.target.account, "orgIdentifier": parent.target.org,
        "projectIdentifier": parent.target.project, "apiKeyIdentifier": key,
        "parentIdentifier": parent.identifier, "apiKeyType": parent.kind_name(),
        "description": body.and_then(|b| b.description.clone()).unwrap_or_default(),
        "tags": body.and_then(|b| b.tags.clone()).unwrap_or_else(|| json!({})),
    })
}

/// `POST /ng/api/token`: answers the new token string (shown once).
pub async fn create(State(m): State<Arc<Management>>, call: Call) -> Response {
    let result = async {
        let account = Target::from_query(&call)?.account_only();
        let (caller, _) = m.caller(&call, &account).await?;
        let body: Body = call.json()?;
        check_identifier("token", &body.identifier)?;
        let parent = Parent::of_body(&account, &body.parent)?;
        parent.authorize(&caller)?;
        let from = body.valid_from.unwrap_or_else(now_millis);
        let to = body
            .valid_to
            .unwrap_or(from.saturating_add(DEFAULT_LIFETIME_MILLIS));
        if to <= from {
            return Err(ApiError::invalid("`validTo` must be after `validFrom`"));
        }
        let minted =
            mint(&account.account, kind_of(&parent), None).map_err(|e| ApiError::invalid(e.to_string()))?;
        let token = ApiToken {
            identifier: body.identifier.clone(),
            id: minted.id.clone(),
            secret_hash: minted.secret_hash.clone(),
            valid_from: millis_to_rfc3339("validFrom", from)?,
            valid_to: millis_to_rfc3339("validTo", to)?,
            rotated_expire_at: None,
            permissions: Vec::new(),
        };
        let (key, owner) = (body.api_key_identifier.clone(), parent.clone());
        let edit = Box::new(move |doc: &mut AccountSnapshot| {
            let found = owner.key_mut(doc, &key)?;
            if found.tokens.iter().any(|t| t.identifier == token.identifier) {
                return Err(EditError::Duplicate(format!(
                    "A token with identifier `{}` already exists in api key `{key}`",
                    token.identifier
                )));
            }
            let summary = format!(
                "token created: {} (id {}) of api key {key}",
                token.identifier, token.id
            );
            found.tokens.push(token);
            Ok(ChangeSummary(summary))
        });
        let revision = m.commit(&call, &caller, &account, edit).await?;
        Ok(Reply::written(json!(minted.token), revision))
    }
    .await;
    answer(&call, result)
}

/// `GET /ng/api/token/aggregate`: a page of the tokens of `apiKeyIdentifier` (or of every key of
/// the parent).
pub async fn list(State(m): State<Arc<Management>>, call: Call) -> Response {
    let result = async {
        let account = Target::from_query(&call)?.account_only();
        let (caller, document) = m.caller(&call, &account).await?;
        let parent = Parent::from_query(&call, &account)?;
        parent.authorize(&caller)?;
        let key = call.param("apiKeyIdentifier");
        let search = call.param("searchTerm");
        let mut items = Vec::new();
        let keys = document
            .api_keys
            .iter()
            .filter(|k| parent.owns(k) && key.is_none_or(|w| w == k.identifier));
        for api_key in keys {
            for token in api_key
                .tokens
                .iter()
                .filter(|t| matches_search(&t.identifier, search))
            {
                let shown = token_json(&parent, &api_key.identifier, token, None);
                // scopegate keeps no creation time: a token was made (or rotated in) valid from then
                let (made, expiry) = (shown["validFrom"].clone(), shown["validTo"].clone());
                items.push(
                    json!({"token": shown, "createdAt": made, "lastModifiedAt": made, "expiryAt": expiry}),
                );
            }
        }
        Ok(Reply::read(page(items, &call)?))
    }
    .await;
    answer(&call, result)
}

fn key_of<'a>(
    doc: &'a mut AccountSnapshot,
    parent: &Parent,
    call_key: &str,
) -> Result<&'a mut ApiKey, EditError> {
    parent.key_mut(doc, call_key)
}

/// `DELETE /ng/api/token/{identifier}`.
pub async fn delete(State(m): State<Arc<Management>>, Path(id): Path<String>, call: Call) -> Response {
    let result = async {
        let account = Target::from_query(&call)?.account_only();
        let (caller, _) = m.caller(&call, &account).await?;
        let parent = Parent::from_query(&call, &account)?;
        let key = call.required("apiKeyIdentifier")?.to_owned();
        parent.authorize(&caller)?;
        let (token, owner) = (id.clone(), parent.clone());
        let edit = Box::new(move |doc: &mut AccountSnapshot| {
            let found = key_of(doc, &owner, &key)?;
            let before = found.tokens.len();
            found.tokens.retain(|t| t.identifier != token);
            if found.tokens.len() == before {
                return Err(EditError::NotFound(format!(
                    "token `{token}` of api key `{key}` not found"
                )));
            }
            Ok(ChangeSummary(format!("token deleted: {token} of api key {key}")))
        });
        let revision = m.commit(&call, &caller, &account, edit).await?;
        Ok(Reply::written(json!(true), revision))
    }
    .await;
    answer(&call, result)
}

/// `POST /ng/api/token/rotate/{identifier}`: answers the new token string.
pub async fn rotate(State(m): State<Arc<Management>>, Path(id): Path<String>, call: Call) -> Response {
    let result = async {
        let account = Target::from_query(&call)?.account_only();
        let (caller, _) = m.caller(&call, &account).await?;
        let parent = Parent::from_query(&call, &account)?;
        let key = call.required("apiKeyIdentifier")?.to_owned();
        parent.authorize(&caller)?;
        let now = now_millis();
        let grace = call
            .param("rotateTimestamp")
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| ApiError::invalid("`rotateTimestamp` must be a number"))
            })
            .transpose()?
            .unwrap_or(now);
        let grace = millis_to_rfc3339("rotateTimestamp", grace)?;
        let minted =
            mint(&account.account, kind_of(&parent), None).map_err(|e| ApiError::invalid(e.to_string()))?;
        let (token, owner, hash, new_id) = (
            id.clone(),
            parent.clone(),
            minted.secret_hash.clone(),
            minted.id.clone(),
        );
        let edit = Box::new(move |doc: &mut AccountSnapshot| {
            let found = key_of(doc, &owner, &key)?;
            let Some(old) = found
                .tokens
                .iter_mut()
                .find(|t| t.identifier == token && t.rotated_expire_at.is_none())
            else {
                return Err(EditError::NotFound(format!(
                    "token `{token}` of api key `{key}` not found"
                )));
            };
            old.rotated_expire_at = Some(grace);
            let to = rfc3339_to_millis(&old.valid_to)
                .filter(|to| *to > now)
                .unwrap_or(now.saturating_add(DEFAULT_LIFETIME_MILLIS));
            let rotated = ApiToken {
                identifier: token.clone(),
                id: new_id.clone(),
                secret_hash: hash,
                valid_from: millis_to_rfc3339("validFrom", now).map_err(|e| EditError::Invalid(e.message))?,
                valid_to: millis_to_rfc3339("validTo", to).map_err(|e| EditError::Invalid(e.message))?,
                rotated_expire_at: None,
                permissions: old.permissions.clone(),
            };
            found.tokens.push(rotated);
            Ok(ChangeSummary(format!(
                "token rotated: {token} of api key {key} (new id {new_id})"
            )))
        });
        let revision = m.commit(&call, &caller, &account, edit).await?;
        Ok(Reply::written(json!(minted.token), revision))
    }
    .await;
    answer(&call, result)
}

/// `PUT /ng/api/token/{identifier}` (`TokenApi.update_token`: the `Token` body names the parent and
/// the key): sets the current token's `validTo` when given, and answers the token, never its
/// secret. The id, secret and `validFrom` never change; `name`, `description` and `tags` are
/// echoed, not stored. An expired token is not revived: a 400.
pub async fn update(State(m): State<Arc<Management>>, Path(id): Path<String>, call: Call) -> Response {
    let result = async {
        let account = Target::from_query(&call)?.account_only();
        let (caller, _) = m.caller(&call, &account).await?;
        let body: Body = call.json()?;
        if body.identifier != id {
            return Err(ApiError::invalid("the body's identifier differs from the path's"));
        }
        let parent = Parent::of_body(&account, &body.parent)?;
        parent.authorize(&caller)?;
        let valid_to = body
            .valid_to
            .map(|to| millis_to_rfc3339("validTo", to).map(|text| (to, text)))
            .transpose()?;
        let now = now_millis();
        let (token, key, owner) = (id.clone(), body.api_key_identifier.clone(), parent.clone());
        let updated: Arc<std::sync::Mutex<Option<ApiToken>>> = Arc::default();
        let reported = Arc::clone(&updated);
        let edit = Box::new(move |doc: &mut AccountSnapshot| {
            let found = key_of(doc, &owner, &key)?;
            let current = found
                .tokens
                .iter_mut()
                .find(|t| t.identifier == token && t.rotated_expire_at.is_none())
                .ok_or_else(|| {
                    EditError::NotFound(format!("token `{token}` of api key `{key}` not found"))
                })?;
            let change = match valid_to {
                Some((to, text)) => {
                    // the engine keeps token times to the second
                    let from = rfc3339_to_millis(&current.valid_from).unwrap_or(i64::MIN);
                    if to.div_euclid(1000) <= from.div_euclid(1000) {
                        return Err(EditError::Invalid(format!(
                            "`validTo` must be after the token's `validFrom` ({}), by a second at least",
                            current.valid_from
                        )));
                    }
                    if rfc3339_to_millis(&current.valid_to).is_none_or(|old| old <= now) {
                        return Err(EditError::Invalid(format!(
                            "token `{token}` expired at {}: an expired token is not changed, create a new one",
                            current.valid_to
                        )));
                    }
                    let change = format!("validTo {} -> {text}", current.valid_to);
                    current.valid_to = text;
                    change
                }
                None => "nothing stored changed".to_owned(),
            };
            if let Ok(mut slot) = reported.lock() {
                *slot = Some(current.clone());
            }
            Ok(ChangeSummary(format!(
                "token updated: {token} of api key {key} ({change})"
            )))
        });
        let revision = m.commit(&call, &caller, &account, edit).await?;
        let stored = updated
            .lock()
            .ok()
            .and_then(|t| t.clone())
            .ok_or_else(|| ApiError::new(500, "UNEXPECTED", "the updated token was not reported"))?;
        let shown = token_json(&parent, &body.api_key_identifier, &stored, Some(&body));
        Ok(Reply::written(shown, revision))
    }
    .await;
    answer(&call, result)
}
