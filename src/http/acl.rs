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

use super::headers::{CheckedHeaders, header_str};
use super::{ACL_PATH, json_response};
use crate::authz::acl::{AccessAnswer, AccessCheck, AccessQuery, MALFORMED, PrincipalName};
use crate::authz::render::{denial_response, error_body};
use crate::authz::{Authorizer, Request};

pub use crate::authz::acl::{ANSWERED, MAX_CHECKS, SERVICE_ACCOUNT_VIEW, USER_VIEW};

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AclRequest {
    /// Whom to ask about; default: the caller.
    #[serde(default)]
    pub principal: Option<PrincipalRef>,
    /// The checks, answered in this order.
    pub permissions: Vec<PermissionCheck>,
}

/// A principal by type and identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalRef {
    /// The user's or service account's identifier.
    pub principal_identifier: String,
    /// `USER` or `SERVICE_ACCOUNT`.
    pub principal_type: String,
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
    let mut request = Request {
        trace_headers: &plain,
        header_flaw: Some(&flaw),
        request_id: plain("x-request-id"),
        ..Request::new("acl", "POST", ACL_PATH, &lookup)
    };
    let asked: AclRequest = match serde_json::from_slice(body) {
        Ok(asked) => asked,
        Err(error) => {
            request.malformed = Some(MALFORMED);
            authorizer.check(&request).await;
            return invalid(&format!("malformed access-check request: {error}"));
        }
    };
    let query = AccessQuery {
        principal: asked.principal.as_ref().map(|p| PrincipalName {
            kind: &p.principal_type,
            identifier: &p.principal_identifier,
        }),
        checks: asked.permissions.iter().map(access_check).collect(),
    };
    let (verdict, answer) = authorizer.check_access(&request, &query).await;
    match answer {
        AccessAnswer::Answered {
            caller_kind,
            caller_identifier,
            permitted,
        } => {
            tracing::debug!(decision_id = %verdict.decision_id, checks = permitted.len(), "access check");
            let principal = asked.principal.clone().unwrap_or(PrincipalRef {
                principal_identifier: caller_identifier,
                principal_type: caller_kind,
            });
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
            });
            json_response(200, None, body.to_string())
        }
        AccessAnswer::TooManyChecks(asked) => invalid(&format!(
            "too many permission checks: {asked} (at most {MAX_CHECKS})"
        )),
        AccessAnswer::UnknownPrincipalType(kind) => invalid(&format!("unknown principal type `{kind}`")),
        AccessAnswer::AmbiguousCredential => {
            invalid("a credential header is given more than once or is not visible ASCII")
        }
        AccessAnswer::Refused(denial) => {
            let rendered = denial_response(&denial, &verdict.decision_id);
            json_response(rendered.status, rendered.www_authenticate(), rendered.body)
        }
    }
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

fn invalid(message: &str) -> Response {
    json_response(400, None, error_body("INVALID_REQUEST", message).to_string())
}
