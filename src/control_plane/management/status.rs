//! What this replica knows about its sidecars, on the management listener:
//! - `GET /v1/sidecars?accountIdentifier=…`: the Sync streams of the account (node, peer, the
//!   version sent and acknowledged, the last rejection) and the version served, in Harness's
//!   envelope; the caller needs `core_account_view` on the account.
//! - `GET /metrics`: Prometheus totals over every stream and account (no account names, no
//!   credentials needed, like the sidecar's own `/metrics`).

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::scope::Target;
use super::wire::{Call, Reply};
use super::{Management, answer};

/// `GET /v1/sidecars`.
pub async fn sidecars(State(m): State<Arc<Management>>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?.account_only();
        let (caller, _) = m.caller(&call, &target).await?;
        caller.require("core_account_view", &target, None)?;
        let served = m.served.served(&target.account).map(|s| s.version());
        let streams = m.served.sidecars().list(Some(&target.account));
        Ok(Reply::read(json!({
            "accountIdentifier": target.account,
            "servedVersion": served,
            "sidecars": streams,
        })))
    }
    .await;
    answer(&call, result)
}

/// `GET /metrics`.
pub async fn metrics(State(m): State<Arc<Management>>) -> Response {
    let text = m.served.sidecars().metrics(&m.served);
    ([("content-type", "text/plain; version=0.0.4")], text).into_response()
}
