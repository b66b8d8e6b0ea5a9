//! What a decision looked at beyond its [`Outcome`](crate::serve::Outcome), for the audit log:
//! the credential's identifier (never the credential), the scope and the resource. Filled by
//! [`authorize_detailed`](crate::serve::authorize::authorize_detailed) only when asked, so the hot
//! path allocates nothing for it while the audit log is off.

/// Everything known about a decision's inputs, as far as deciding got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Detail {
    /// The API key's `<token-id>`.
    pub token_id: Option<String>,
    /// The JWT's issuer (`iss`), once verified.
    pub issuer: Option<String>,
    /// The principal a verified JWT names (`USER:alice`), even when the snapshot refuses it.
    pub principal: Option<String>,
    /// The account looked up.
    pub account: Option<String>,
    /// The route's permission.
    pub permission: Option<String>,
    /// The scope's org.
    pub org: Option<String>,
    /// The scope's project.
    pub project: Option<String>,
    /// The resource type checked.
    pub resource_type: Option<String>,
    /// The resource checked.
    pub resource_id: Option<String>,
    /// `/authz/api/acl`: the number of checks asked.
    pub checks: Option<usize>,
}
