//! Who is calling and what they may do, decided by scopegate's own engine: the caller's API token
//! (`x-api-key`, or `Authorization: Bearer`/`ApiKey`, read by [`crate::authn::header`]) is checked
//! against the account's current compiled document, and each operation needs Harness's permission
//! at its scope through [`crate::rbac::decide`]. A missing or refused token is a 401, a missing
//! permission a 403 `NG_ACCESS_DENIED` naming it, both in Harness's `Failure` shape.

use std::sync::Arc;

use serde_json::json;

use super::scope::Target;
use super::wire::{ApiError, Call};
use crate::authn::api_key::{check_token, parse_token, verify_secret};
use crate::authn::header::credential;
use crate::rbac::compiled::{CompiledAccount, PrincipalId, SecretHash};
use crate::rbac::{Check, Level, Principal, ScopeId, decide};

/// An authenticated caller of one account.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The account's compiled document the caller was checked against.
    pub compiled: Arc<CompiledAccount>,
    /// The principal.
    pub principal: PrincipalId,
    /// The API token's `<token-id>`.
    pub token_id: String,
}

fn unauthorized(code: &'static str, message: &str) -> ApiError {
    ApiError::new(401, code, message)
}

/// The 401 of a refused credential (never saying why: the log does).
pub fn invalid_credentials() -> ApiError {
    unauthorized("INVALID_CREDENTIALS", "Invalid credentials")
}

/// Checks the call's API token against `compiled` (the account the call acts in) at `now`.
pub async fn authenticate(
    call: &Call,
    compiled: Option<Arc<CompiledAccount>>,
    now: i64,
) -> Result<Caller, ApiError> {
    let raw = match credential(&|name| call.header(name)) {
        None => return Err(unauthorized("MISSING_CREDENTIALS", "No credentials provided")),
        Some(Err(_)) => return Err(invalid_credentials()),
        Some(Ok(raw)) => raw,
    };
    let parsed = parse_token(raw).map_err(|_| invalid_credentials())?;
    let Some(compiled) = compiled else {
        return Err(invalid_credentials());
    };
    let node = check_token(&compiled, &parsed, now).map_err(|error| {
        tracing::info!(code = "management_credential_refused", %error, "management API: API token refused");
        invalid_credentials()
    })?;
    let (hash, secret) = (node.secret_hash.clone(), parsed.secret.to_owned());
    let (principal, token_id) = (node.principal, parsed.id.to_owned());
    let verified = match hash {
        // bcrypt takes tens of milliseconds: off the async workers
        SecretHash::Bcrypt(_) => tokio::task::spawn_blocking(move || verify_secret(&hash, &secret))
            .await
            .unwrap_or(false),
        SecretHash::Sha256(_) => verify_secret(&hash, &secret),
    };
    if !verified {
        return Err(invalid_credentials());
    }
    Ok(Caller {
        compiled,
        principal,
        token_id,
    })
}

impl Caller {
    /// `USER:alice` / `SERVICE_ACCOUNT:ci_bot`, for the audit record.
    pub fn label(&self) -> String {
        let (kind, identifier) = self.compiled.principal_identifier(self.principal);
        format!("{kind}:{identifier}")
    }

    /// Whether the caller is the user `identifier`.
    pub fn is_user(&self, identifier: &str) -> bool {
        matches!(self.principal, PrincipalId::User(_))
            && self.compiled.principal_identifier(self.principal).1 == identifier
    }

    /// Whether the caller holds `permission` on `resource_id` (of the permission's type) at
    /// `target`. A permission the catalog grants only above the target's level is checked at the
    /// nearest level that grants it (`core_serviceaccount_edit` at the account); a scope that
    /// does not exist yet is checked at its nearest existing ancestor.
    pub fn may(&self, permission: &str, target: &Target, resource_id: Option<&str>) -> bool {
        let account = &*self.compiled;
        let catalog = account.catalog();
        let Some(id) = catalog.permission_id(permission) else {
            return false;
        };
        let Some(entry) = catalog.permission(id) else {
            return false;
        };
        let (mut org, mut project) = (target.org.as_deref(), target.project.as_deref());
        if project.is_some() && !entry.levels.contains(Level::Project) {
            project = None;
        }
        if project.is_none() && org.is_some() && !entry.levels.contains(Level::Organization) {
            org = None;
        }
        let scope = account
            .resolve_scope(org, project)
            .or_else(|| account.resolve_scope(org, None))
            .unwrap_or(ScopeId::ACCOUNT);
        let principal = Principal {
            id: self.principal,
            token_permissions: account.token(&self.token_id).and_then(|t| t.permissions.as_ref()),
        };
        let check = Check {
            scope,
            permission: id,
            resource_type: entry.resource_type,
            resource_id,
        };
        decide(account, &principal, &check).allowed
    }

    /// [`Self::may`], or a 403 `NG_ACCESS_DENIED` naming the missing permission.
    pub fn require(
        &self,
        permission: &str,
        target: &Target,
        resource_id: Option<&str>,
    ) -> Result<(), ApiError> {
        if self.may(permission, target, resource_id) {
            return Ok(());
        }
        let catalog = self.compiled.catalog();
        let resource_type = catalog
            .permission_id(permission)
            .and_then(|id| catalog.permission(id))
            .map_or("", |p| catalog.resource_type_name(p.resource_type))
            .to_owned();
        let message = format!(
            "Missing permission {permission} on {}{}",
            resource_type.to_ascii_lowercase(),
            resource_id
                .map(|id| format!(" with identifier {id}"))
                .unwrap_or_default()
        );
        let mut failed = json!({
            "permission": permission,
            "resourceScope": target.authz_scope(),
            "resourceType": resource_type,
        });
        if let Some(id) = resource_id {
            failed["resourceIdentifier"] = id.into();
        }
        Err(ApiError::new(403, "NG_ACCESS_DENIED", message).with("failedPermissionChecks", json!([failed])))
    }
}
