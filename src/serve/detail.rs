//! What a decision looked at beyond its [`Outcome`](crate::serve::Outcome), for the audit log:
//! the credential's identifier (never the credential), the scope and the resource. Filled by
//! [`authorize_detailed`](crate::serve::authorize::authorize_detailed) only when asked, so the hot
//! path allocates nothing for it while the audit log is off.

use crate::route::RouteDecision;

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

impl Detail {
    /// Copies the route's scope, permission and resource into `detail`.
    pub(crate) fn describe_route(&mut self, route: &RouteDecision<'_>) {
        let scope = match route {
            RouteDecision::Public { .. } => return,
            RouteDecision::Authenticated { scope, .. }
            | RouteDecision::Permission { scope, .. }
            | RouteDecision::Unmatched { scope, .. } => scope,
        };
        self.account = scope.account.as_deref().map(str::to_owned);
        self.org = scope.org.as_deref().map(str::to_owned);
        self.project = scope.project.as_deref().map(str::to_owned);
        if let RouteDecision::Permission {
            permission,
            resource_type,
            resource_id,
            ..
        } = route
        {
            self.permission = Some((*permission).to_owned());
            self.resource_type = resource_type.map(str::to_owned);
            self.resource_id = resource_id.as_deref().map(str::to_owned);
        }
    }
}
