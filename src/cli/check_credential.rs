//! `check --token`: the principal (and permission subset) a credential names in a snapshot, checked
//! by the server's own credential code ([`crate::authz::credentials`]: the same reading, token
//! checks, secret verification and JWT verification). JWT keys come from the configuration's
//! issuers, fetched once.

use std::path::Path;
use std::sync::Arc;

use crate::authn::header::raw_credential;
use crate::authn::jwt::looks_like_jwt;
use crate::authz::credentials::{CredentialError, Credentials};
use crate::cli::InputError;
use crate::clock::now_unix;
use crate::config::Config;
use crate::jwks::{JwtAuthenticator, JwtSettings};
use crate::rbac::{CompiledAccount, PermissionSet, PrincipalId};

/// `Ok(Ok(..))`: the holder and its token subset; `Ok(Err(refusal))`: the credential is refused (a
/// 401 for the server); `Err`: bad input.
pub fn holder(
    account: &CompiledAccount,
    token: &str,
    config: Option<&Path>,
) -> Result<Result<(PrincipalId, Option<PermissionSet>), CredentialError>, InputError> {
    let token = match token.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| InputError(format!("cannot read token file `{path}`: {e}")))?,
        None => token.to_owned(),
    };
    let raw = match raw_credential(&token) {
        Ok(raw) => raw,
        Err(error) => return Ok(Err(error.into())),
    };
    let jwt = if looks_like_jwt(raw) {
        Some(jwt_authenticator(config)?)
    } else {
        None
    };
    let credentials = Credentials::new(1, std::time::Duration::from_secs(1), jwt);
    let now = now_unix();
    Ok(credentials
        .parse(raw, now)
        .and_then(|credential| credentials.holder(account, &credential, now))
        .map(|(principal, subset)| (principal, subset.cloned())))
}

/// The configuration's JWT issuers, their keys fetched once.
fn jwt_authenticator(config: Option<&Path>) -> Result<Arc<JwtAuthenticator>, InputError> {
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
    Ok(Arc::new(jwt))
}
