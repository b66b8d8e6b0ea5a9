//! `check --token`: the principal (and permission subset) a credential names in a snapshot, checked
//! exactly as the server checks it. JWT keys come from the configuration's issuers, fetched once.

use std::path::Path;

use crate::authn::api_key::check_token;
use crate::authn::jwt::{looks_like_jwt, principal_in};
use crate::authn::{parse_token, verify_secret};
use crate::cli::InputError;
use crate::config::Config;
use crate::jwks::{JwtAuthenticator, JwtFailure, JwtSettings};
use crate::rbac::{CompiledAccount, PermissionSet, PrincipalId};
use crate::serve::authorize::now_unix;

/// `Ok(Ok(..))`: the holder and its token subset; `Ok(Err(reason))`: the credential is refused (a
/// 401 for the server); `Err`: bad input.
pub fn holder(
    account: &CompiledAccount,
    token: &str,
    config: Option<&Path>,
) -> Result<Result<(PrincipalId, Option<PermissionSet>), String>, InputError> {
    let token = match token.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| InputError(format!("cannot read token file `{path}`: {e}")))?
            .trim()
            .to_owned(),
        None => token.trim().to_owned(),
    };
    let now = now_unix();
    if looks_like_jwt(&token) {
        return jwt_holder(account, &token, config, now);
    }
    let parsed = match parse_token(&token) {
        Ok(parsed) => parsed,
        Err(error) => return Ok(Err(error.to_string())),
    };
    let node = match check_token(account, &parsed, now) {
        Ok(node) => node,
        Err(error) => return Ok(Err(error.to_string())),
    };
    if !verify_secret(&node.secret_hash, parsed.secret) {
        return Ok(Err("api token secret does not match".to_owned()));
    }
    Ok(Ok((node.principal, node.permissions.clone())))
}

fn jwt_holder(
    account: &CompiledAccount,
    token: &str,
    config: Option<&Path>,
    now: i64,
) -> Result<Result<(PrincipalId, Option<PermissionSet>), String>, InputError> {
    let Some(path) = config else {
        return Err(InputError(
            "a jwt needs `--config FILE` naming its issuer under `jwt.issuers`".to_owned(),
        ));
    };
    let config = Config::load(path).map_err(|e| InputError(e.to_string()))?;
    config
        .validate()
        .map_err(|errors| InputError(format!("invalid configuration `{}`:\n{errors}", path.display())))?;
    let settings = JwtSettings::from_config(&config.jwt, 1, config.cache.token_ttl.get())
        .ok_or_else(|| InputError(format!("`{}` lists no jwt issuers", path.display())))?;
    let jwt = JwtAuthenticator::new(settings).map_err(|e| InputError(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| InputError(format!("cannot start the runtime: {e}")))?;
    // keys from a JWKS URL or discovery are fetched once; static keys are already loaded
    runtime.block_on(jwt.store().fetch_all());
    let identity = match jwt.identify(token, now) {
        Ok(identity) => identity,
        Err(JwtFailure::Invalid(error)) => return Ok(Err(error.to_string())),
        Err(JwtFailure::NeedKeys { .. }) => return Ok(Err("jwt signing key is unknown".to_owned())),
    };
    Ok(principal_in(account, &identity)
        .map(|principal| (principal, None))
        .map_err(|error| error.to_string()))
}
