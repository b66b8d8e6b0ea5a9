//! `scopegate check`: decides one check against a snapshot file, for a named principal or for the
//! holder of a credential (an API token, or a JWT of an issuer from `--config`). Prints ALLOW or DENY
//! on the first line and the reason on the next; exit 0 allow, 1 deny, 2 bad input.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::cli::InputError;

#[path = "check_credential.rs"]
mod credential;
use crate::rbac::model::AccountSnapshot;
use crate::rbac::{Check, CompiledAccount, PermissionSet, Principal, PrincipalId, ScopeId, compile, decide};

/// Arguments of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The account snapshot (YAML, or JSON by extension).
    #[arg(long)]
    pub snapshot: PathBuf,
    /// `USER:alice`, `SERVICE_ACCOUNT:ci_bot` or `SERVICE_ACCOUNT:eng/payments/ci_bot`.
    #[arg(long, required_unless_present = "token", conflicts_with = "token")]
    pub principal: Option<String>,
    /// A credential instead of a principal: an API token (`pat.`/`sat.`), or a JWT of an issuer of
    /// `--config`; `@FILE` reads it from a file. It is checked (hash, validity, signature, claims)
    /// and its holder's permissions, limited by the token's subset, are decided.
    #[arg(long, conflicts_with = "token_permissions")]
    pub token: Option<String>,
    /// A server configuration whose `jwt` section lists the trusted issuers (for `--token` JWTs).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// `acme`, `acme/eng` or `acme/eng/payments`.
    #[arg(long)]
    pub scope: String,
    /// The permission ID, e.g. `core_pipeline_execute`.
    #[arg(long)]
    pub permission: String,
    /// `TYPE` or `TYPE/identifier`; the type defaults to the permission's.
    #[arg(long)]
    pub resource: Option<String>,
    /// A permission catalog replacing the embedded one.
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    /// Comma-separated permission subset of an API token.
    #[arg(long, value_delimiter = ',')]
    pub token_permissions: Option<Vec<String>>,
}

/// Runs the check and prints the decision.
pub fn run(args: &CheckArgs) -> Result<ExitCode, InputError> {
    let catalog = crate::cli::load_catalog(args.catalog.as_deref())?;
    let snapshot = AccountSnapshot::read(&args.snapshot).map_err(|e| InputError(e.to_string()))?;
    let account = compile(&snapshot, catalog, None).map_err(|e| InputError(e.to_string()))?;
    let scope = resolve_scope(&account, &args.scope)?;
    let (principal, token_subset) = match (&args.principal, &args.token) {
        (Some(text), _) => (resolve_principal(&account, text)?, None),
        (None, Some(token)) => match credential::holder(&account, token, args.config.as_deref())? {
            Ok(found) => found,
            Err(refused) => {
                println!("DENY");
                println!("credential refused: {refused}");
                return Ok(ExitCode::from(1));
            }
        },
        (None, None) => return Err(InputError("give `--principal` or `--token`".to_owned())),
    };
    let catalog = account.catalog();
    let permission = catalog
        .permission_id(&args.permission)
        .ok_or_else(|| InputError(format!("unknown permission `{}`", args.permission)))?;
    let (type_name, resource_id) = match args.resource.as_deref() {
        Some(resource) => match resource.split_once('/') {
            Some((kind, id)) if !id.is_empty() => (Some(kind), Some(id)),
            Some(_) => {
                return Err(InputError(format!(
                    "resource `{resource}` has an empty identifier"
                )));
            }
            None => (Some(resource), None),
        },
        None => (None, None),
    };
    let resource_type = match type_name {
        Some(name) => catalog
            .resource_type_id(name)
            .ok_or_else(|| InputError(format!("unknown resource type `{name}`")))?,
        None => catalog
            .permission(permission)
            .map(|p| p.resource_type)
            .ok_or_else(|| InputError("catalog".into()))?,
    };
    let subset: Option<PermissionSet> = match &args.token_permissions {
        Some(ids) => Some(
            ids.iter()
                .map(|id| {
                    catalog
                        .permission_id(id)
                        .ok_or_else(|| InputError(format!("unknown permission `{id}`")))
                })
                .collect::<Result<_, _>>()?,
        ),
        None => token_subset,
    };
    let check = Check {
        scope,
        permission,
        resource_type,
        resource_id,
    };
    let decision = decide(
        &account,
        &Principal {
            id: principal,
            token_permissions: subset.as_ref(),
        },
        &check,
    );
    println!("{}", if decision.allowed { "ALLOW" } else { "DENY" });
    println!("{}", decision.explain(&account, &check));
    Ok(if decision.allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn resolve_scope(account: &CompiledAccount, text: &str) -> Result<ScopeId, InputError> {
    let mut parts = text.split('/');
    let account_id = parts.next().unwrap_or_default();
    if account_id != account.account() {
        return Err(InputError(format!(
            "scope `{text}` is not in account `{}` of the snapshot",
            account.account()
        )));
    }
    let org = parts.next();
    let project = parts.next();
    if parts.next().is_some() || org == Some("") || project == Some("") {
        return Err(InputError(format!(
            "scope `{text}` is not `account[/org[/project]]`"
        )));
    }
    account
        .resolve_scope(org, project)
        .ok_or_else(|| InputError(format!("unknown scope `{text}`")))
}

/// Resolves `USER:id`, `SERVICE_ACCOUNT:id` (unique in the account) or `SERVICE_ACCOUNT:org[/project]/id`.
pub fn resolve_principal(account: &CompiledAccount, text: &str) -> Result<PrincipalId, InputError> {
    let unknown = || InputError(format!("unknown principal `{text}`"));
    match text.split_once(':') {
        Some(("USER", id)) => account.user(id).ok_or_else(unknown),
        Some(("SERVICE_ACCOUNT", path)) => match path.rsplit_once('/') {
            Some((scope, id)) => {
                let mut parts = scope.split('/');
                let scope = account
                    .resolve_scope(parts.next(), parts.next())
                    .ok_or_else(unknown)?;
                account.service_account_in(id, scope).ok_or_else(unknown)
            }
            None => match account.service_accounts_named(path).as_slice() {
                [one] => Ok(*one),
                [] => Err(unknown()),
                _ => Err(InputError(format!(
                    "service account `{path}` exists in several scopes: name it as `SERVICE_ACCOUNT:org[/project]/{path}`"
                ))),
            },
        },
        _ => Err(InputError(format!(
            "principal `{text}` is not `USER:<id>` or `SERVICE_ACCOUNT:<id>`"
        ))),
    }
}
