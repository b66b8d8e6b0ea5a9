//! Batch access-check harness: arbitrary bytes as the body of `POST /authz/api/acl`, through
//! `scopegate::http::acl::handle` (body parsing, caller authentication, the right to ask about
//! another principal, one decision per entry) on the embedded demo account. The first byte picks
//! the caller: alice's API token, the CI bot's service-account token, or no credential.
//!
//! Never a panic and never a 5xx other than 503 (account not loaded); a 200 answers every entry
//! asked, in order, permits nothing outside the caller's account, and needs a credential.
//! Shared by `fuzz_targets/acl.rs` and `tests/fuzz_replay.rs`.

use std::future::Future;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use axum::http::{HeaderMap, HeaderValue};
use scopegate::http::acl::{AclRequest, handle};
use scopegate::serve::State;
use serde_json::Value;

static STATE: OnceLock<Option<State>> = OnceLock::new();

/// Demo tokens (public, demo only): a user's and a service account's.
const CALLERS: [Option<&str>; 3] = [
    Some("pat.acme.alicetok01.AliceDemoSecret01"),
    Some("sat.acme.citok01.CiBotDemoSecret01"),
    None,
];

/// One input: a caller-selector byte, then the request body.
pub fn run(data: &[u8]) {
    let Some(state) = STATE.get_or_init(|| State::demo().ok()) else {
        return;
    };
    let Some((selector, body)) = data.split_first() else {
        return;
    };
    let caller = CALLERS[usize::from(*selector) % CALLERS.len()];
    let mut headers = HeaderMap::new();
    if let Some(token) = caller {
        headers.insert("x-api-key", HeaderValue::from_static(token));
    }
    let handled = handle(state, &headers, body, false);
    assert!(handled.is_ok(), "handle deferred although may_defer is false");
    let Ok(response) = handled else {
        return;
    };
    let status = response.status().as_u16();
    assert!(
        matches!(status, 200 | 400 | 401 | 403 | 503),
        "unexpected status {status}"
    );
    if status != 200 {
        return;
    }
    assert!(caller.is_some(), "answered without a credential");
    let parsed = serde_json::from_slice::<AclRequest>(body);
    assert!(parsed.is_ok(), "answered 200 to a body that does not parse");
    let Ok(request) = parsed else {
        return;
    };
    let Some(answer) = body_json(response) else {
        return;
    };
    let list = answer["data"]["accessControlList"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        list.len(),
        request.permissions.len(),
        "not every entry was answered"
    );
    for (entry, asked) in list.iter().zip(&request.permissions) {
        assert_eq!(
            entry["permission"].as_str(),
            Some(asked.permission.as_str()),
            "answers out of order"
        );
        if entry["permitted"] == Value::Bool(true) {
            assert_eq!(
                asked.resource_scope.account_identifier, "acme",
                "permitted in another account"
            );
        }
    }
}

/// The response body as JSON (the handler's bodies are buffered, so one poll completes).
fn body_json(response: axum::response::Response) -> Option<Value> {
    let mut future = Box::pin(axum::body::to_bytes(response.into_body(), usize::MAX));
    let mut context = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut context) {
        Poll::Ready(Ok(bytes)) => serde_json::from_slice(&bytes).ok(),
        _ => None,
    }
}
