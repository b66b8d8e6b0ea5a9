//! `POST /authz/api/acl` (`docs/wire.md` "Batch access check") on the wire: the Harness
//! access-check request and response, and the handler that reads the body into an
//! [`AccessQuery`], asks [`Authorizer::check_access`] (the policy is [`crate::authz::acl`]) and
//! renders the answer in request order, so a service can filter a list locally.
//!
//! A credential header given more than once or not visible ASCII is a 400 (`ambiguous_header`,
//! `invalid_header_value`): the first value is not necessarily the one another reader takes.

use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::error::Category;

use super::headers::{CheckedHeaders, header_str};
use super::{ACL_PATH, json_response};
use crate::authz::acl::{AccessAnswer, AccessCheck, AccessQuery, MALFORMED, PrincipalName};
use crate::authz::render::{denial_response, error_body};
use crate::authz::request::MIN_REVISION_HEADER;
use crate::authz::{Authorizer, Request};

pub use crate::authz::acl::{ANSWERED, MAX_CHECKS, SERVICE_ACCOUNT_VIEW, USER_VIEW};

/// The request body (Harness's `AccessCheckRequest`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AclRequest {
    /// Whom to ask about; default: the caller.
    #[serde(default)]
    pub principal: Option<PrincipalRef>,
    /// The checks, answered in this order.
    pub permissions: Vec<PermissionCheck>,
}

/// A principal as asked, in either spelling: Harness's `AuthzPrincipal` (`identifier`, `type`,
/// `scopeLevel`, `uniqueId`) or scopegate's older `principalIdentifier`/`principalType`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalRef {
    /// The identifier (Harness's spelling).
    #[serde(default)]
    pub identifier: Option<String>,
    /// `USER` or `SERVICE_ACCOUNT` (Harness's spelling).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Where the principal lives (`account`, `organization`, `project`); echoed, not checked.
    #[serde(default)]
    pub scope_level: Option<String>,
    /// Harness's unique id of the principal; echoed, not checked.
    #[serde(default)]
    pub unique_id: Option<String>,
    /// The identifier (older spelling).
    #[serde(default)]
    pub principal_identifier: Option<String>,
    /// The type (older spelling).
    #[serde(default)]
    pub principal_type: Option<String>,
}

/// A principal as answered: Harness's `AuthzPrincipal` keys and the older ones, same values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalAnswer {
    /// The identifier.
    pub identifier: String,
    /// `USER` or `SERVICE_ACCOUNT`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Where the principal lives (`null` when asked about another principal without saying).
    pub scope_level: Option<String>,
    /// Harness's unique id, echoed when asked with one (scopegate does not know it).
    pub unique_id: Option<String>,
    /// The identifier, older key.
    pub principal_identifier: String,
    /// The type, older key.
    pub principal_type: String,
}

impl PrincipalAnswer {
    fn new(identifier: String, kind: String, scope_level: Option<String>, unique_id: Option<String>) -> Self {
        Self {
            principal_identifier: identifier.clone(),
            principal_type: kind.clone(),
            identifier,
            kind,
            scope_level,
            unique_id,
        }
    }
}

/// Why a request's principal cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PrincipalError {
    /// A field is given in both spellings with different values.
    #[error("principal: `{0}` and `{1}` disagree")]
    Disagree(&'static str, &'static str),
    /// A field is given in neither spelling.
    #[error("principal: `{0}` is missing")]
    Missing(&'static str),
}

impl PrincipalRef {
    /// The identifier and type, whichever spelling gave them.
    pub fn resolve(&self) -> Result<(&str, &str), PrincipalError> {
        let identifier = one_of(
            &self.identifier,
            &self.principal_identifier,
            "identifier",
            "principalIdentifier",
        )?;
        let kind = one_of(&self.kind, &self.principal_type, "type", "principalType")?;
        Ok((identifier, kind))
    }
}

fn one_of<'a>(
    new: &'a Option<String>,
    old: &'a Option<String>,
    new_name: &'static str,
    old_name: &'static str,
) -> Result<&'a str, PrincipalError> {
    match (new.as_deref(), old.as_deref()) {
        (Some(a), Some(b)) if a != b => Err(PrincipalError::Disagree(new_name, old_name)),
        (Some(a), _) | (None, Some(a)) => Ok(a),
        (None, None) => Err(PrincipalError::Missing(new_name)),
    }
}

/// A scope named by identifiers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceScope {
    /// The account.
    pub account_identifier: String,
    /// The org, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_identifier: Option<String>,
    /// The project, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_identifier: Option<String>,
}

/// One check asked.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionCheck {
    /// Where.
    pub resource_scope: ResourceScope,
    /// The resource type (`PIPELINE`).
    pub resource_type: String,
    /// The resource, absent for create and list.
    #[serde(default)]
    pub resource_identifier: Option<String>,
    /// The permission ID.
    pub permission: String,
}

/// One answer: the check asked and whether it is permitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessControl {
    /// The permission ID asked.
    pub permission: String,
    /// The scope asked.
    pub resource_scope: ResourceScope,
    /// The resource type asked.
    pub resource_type: String,
    /// The resource asked (`null` when none).
    pub resource_identifier: Option<String>,
    /// The answer.
    pub permitted: bool,
}

/// Answers one call: the body read, the query decided (its caller's account loaded first when a
/// control plane serves it and it is not loaded yet, a JWT issuer's new key fetched), the call
/// counted and audited as one decision.
pub async fn handle(authorizer: &Authorizer, headers: &HeaderMap, body: &[u8]) -> Response {
    let plain = |name: &str| header_str(headers, name);
    let checked = CheckedHeaders::new(headers);
    let lookup = |name: &str| checked.get(name);
    let flaw = || checked.flaw();
    let min_revision = super::authz::min_revision(headers);
    let mut request = Request {
        trace_headers: &plain,
        header_flaw: Some(&flaw),
        request_id: plain("x-request-id"),
        min_revision: min_revision.ok().flatten(),
        ..Request::new("acl", "POST", ACL_PATH, &lookup)
    };
    if let Err(reason) = min_revision {
        request.malformed = Some(reason);
        let verdict = authorizer.check(&request).await;
        return invalid(
            &verdict.decision_id,
            MIN_REVISION_HEADER,
            "x-scopegate-min-revision must be one decimal revision",
        );
    }
    let asked: AclRequest = match serde_json::from_slice(body) {
        Ok(asked) => asked,
        Err(error) => {
            request.malformed = Some(MALFORMED);
            let verdict = authorizer.check(&request).await;
            return invalid(&verdict.decision_id, "body", &unreadable(&error));
        }
    };
    let named = match asked.principal.as_ref().map(PrincipalRef::resolve).transpose() {
        Ok(named) => named,
        Err(error) => {
            request.malformed = Some(MALFORMED);
            let verdict = authorizer.check(&request).await;
            return invalid(&verdict.decision_id, "principal", &error.to_string());
        }
    };
    let query = AccessQuery {
        principal: named.map(|(identifier, kind)| PrincipalName { kind, identifier }),
        checks: asked.permissions.iter().map(access_check).collect(),
    };
    let (verdict, answer) = authorizer.check_access(&request, &query).await;
    let decision_id = &verdict.decision_id;
    match answer {
        AccessAnswer::Answered {
            caller_kind,
            caller_identifier,
            caller_scope_level,
            permitted,
        } => {
            tracing::debug!(decision_id = %decision_id, checks = permitted.len(), "access check");
            let principal = match (named, asked.principal.as_ref()) {
                (Some((identifier, kind)), Some(p)) => {
                    let is_caller = identifier == caller_identifier && kind == caller_kind;
                    let level = p
                        .scope_level
                        .clone()
                        .or_else(|| is_caller.then(|| caller_scope_level.to_owned()));
                    PrincipalAnswer::new(identifier.to_owned(), kind.to_owned(), level, p.unique_id.clone())
                }
                _ => PrincipalAnswer::new(
                    caller_identifier,
                    caller_kind,
                    Some(caller_scope_level.to_owned()),
                    None,
                ),
            };
            let list: Vec<AccessControl> = asked
                .permissions
                .into_iter()
                .zip(permitted)
                .map(|(check, permitted)| AccessControl {
                    permission: check.permission,
                    resource_scope: check.resource_scope,
                    resource_type: check.resource_type,
                    resource_identifier: check.resource_identifier,
                    permitted,
                })
                .collect();
            let body = serde_json::json!({
                "status": "SUCCESS",
                "data": { "principal": principal, "accessControlList": list },
                "metaData": null,
                "correlationId": decision_id,
            });
            json_response(200, None, body.to_string())
        }
        AccessAnswer::TooManyChecks(asked) => invalid(
            decision_id,
            "permissions",
            &format!("too many permission checks: {asked} (at most {MAX_CHECKS})"),
        ),
        AccessAnswer::UnknownPrincipalType(_) => invalid(
            decision_id,
            "principal",
            "principal: `type` must be USER or SERVICE_ACCOUNT",
        ),
        AccessAnswer::AmbiguousCredential => invalid(
            decision_id,
            "x-api-key",
            "a credential header is given more than once or is not visible ASCII",
        ),
        AccessAnswer::Refused(denial) => {
            let rendered = denial_response(&denial, decision_id);
            json_response(rendered.status, rendered.www_authenticate(), rendered.body)
        }
    }
}

/// What is wrong with an unreadable body, without quoting it: serde's own messages repeat the
/// input (`invalid type: string "…"`), which may be anything, a secret included.
fn unreadable(error: &serde_json::Error) -> String {
    let (line, column) = (error.line(), error.column());
    let what = match error.classify() {
        Category::Eof => "the body ends early",
        Category::Syntax => "not valid JSON",
        Category::Data => "a field is missing or has the wrong type",
        Category::Io => "the body cannot be read",
    };
    format!("malformed access-check request: {what} (line {line}, column {column})")
}

fn access_check(check: &PermissionCheck) -> AccessCheck<'_> {
    let scope = &check.resource_scope;
    AccessCheck {
        account: &scope.account_identifier,
        org: scope.org_identifier.as_deref(),
        project: scope.project_identifier.as_deref(),
        resource_type: &check.resource_type,
        resource_id: check.resource_identifier.as_deref(),
        permission: &check.permission,
    }
}

/// A 400 in Harness's `Failure` shape: `errors` names the field at fault (`fieldId`), and
/// `correlationId` and `decisionId` are the call's decision id.
fn invalid(decision_id: &str, field: &str, message: &str) -> Response {
    let mut body = error_body("INVALID_REQUEST", message);
    body["errors"] = serde_json::json!([{ "fieldId": field, "error": message }]);
    body["correlationId"] = decision_id.into();
    body["decisionId"] = decision_id.into();
    json_response(400, None, body.to_string())
}
