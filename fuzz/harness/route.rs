//! Route harness: arbitrary method and target bytes against the embedded default route table.
//! Routing must never panic, and a normalised path must normalise to itself.
//! Shared by `fuzz_targets/route.rs` and `tests/fuzz_replay.rs`.

use std::sync::OnceLock;

use scopegate::route::{RouteRequest, RouteTable, normalize};

static TABLE: OnceLock<Option<RouteTable>> = OnceLock::new();

fn header<'a>(name: &str) -> Option<&'a str> {
    match name {
        "harness-account" => Some("acme"),
        _ => None,
    }
}

/// One input: `<method> <target>`, or a bare target (then `GET`).
pub fn run(data: &[u8]) {
    let Some(table) = TABLE.get_or_init(|| RouteTable::default_harness(&|_| true).ok()) else {
        return;
    };
    // The method is everything before the first space, the target the rest.
    let (method, target) = match data.iter().position(|b| *b == b' ') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"GET"[..], data),
    };
    let method = String::from_utf8_lossy(method);
    let target = String::from_utf8_lossy(target);

    if let Ok(t) = normalize(&target) {
        let again = normalize(&t.path);
        assert!(
            matches!(&again, Ok(a) if a.path == t.path),
            "normalisation is not idempotent"
        );
    }

    let req = RouteRequest {
        headers: &header,
        credential_account: Some("acme"),
        ..RouteRequest::new(&method, &target)
    };
    let _ = table.resolve(&req);
    let _ = table.resolve_with_permission(&req, Some("core_pipeline_view"));
}
