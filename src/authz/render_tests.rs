//! Tests of the denial bodies and challenges: every body is valid JSON with its reason code, and
//! escapes what it quotes.

use super::*;
use crate::authz::verdict::{ACCOUNT_UNKNOWN_REASON, Denial, FailedCheck, OPERATOR_PERMISSION_UNKNOWN};

fn parsed(denial: &Denial) -> (u16, serde_json::Value, Option<&'static str>) {
    let rendered = denial_response(denial, "d-1");
    let body = serde_json::from_str(&rendered.body).unwrap();
    (rendered.status, body, rendered.www_authenticate())
}

#[test]
fn every_denial_body_names_its_reason_code() {
    let denials = [
        Denial::MissingCredentials,
        Denial::InvalidCredentials {
            reason: "token_unknown",
        },
        Denial::NoRoute,
        Denial::TokenRestricted,
        Denial::VerificationBusy,
        Denial::InvalidRequest {
            reason: "dot_segment",
        },
        Denial::SnapshotUnavailable {
            account: "acme".into(),
        },
        Denial::AccountUnknown {
            account: "acme".into(),
        },
        Denial::RevisionBehind {
            account: "acme".into(),
            required: 9,
            held: 8,
        },
        Denial::OperatorError {
            reason: OPERATOR_PERMISSION_UNKNOWN,
        },
    ];
    for denial in &denials {
        let (_, body, _) = parsed(denial);
        assert_eq!(body["status"], "ERROR");
        assert_eq!(body["reason"], denial.reason(), "{body}");
        assert_eq!(body["decisionId"], "d-1");
        assert_eq!(body["correlationId"], "d-1");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[test]
fn an_unknown_account_and_an_operator_error_say_so() {
    let (status, body, _) = parsed(&Denial::AccountUnknown { account: "x".into() });
    assert_eq!(
        (status, body["reason"].as_str()),
        (503, Some(ACCOUNT_UNKNOWN_REASON))
    );
    assert!(body["message"].as_str().unwrap().contains("unknown"));
    let (status, body, _) = parsed(&Denial::SnapshotUnavailable { account: "x".into() });
    assert_eq!(
        (status, body["reason"].as_str()),
        (503, Some("snapshot_unavailable"))
    );
    let (status, body, _) = parsed(&Denial::RevisionBehind {
        account: "x".into(),
        required: 9,
        held: 8,
    });
    assert_eq!(
        (status, body["code"].as_str(), body["reason"].as_str()),
        (503, Some("SNAPSHOT_UNAVAILABLE"), Some("revision_not_reached"))
    );
    assert!(body["message"].as_str().unwrap().contains("revision"));
    let (status, body, _) = parsed(&Denial::OperatorError {
        reason: OPERATOR_PERMISSION_UNKNOWN,
    });
    assert_eq!(
        (status, body["code"].as_str()),
        (500, Some("CONFIGURATION_ERROR"))
    );
}

#[test]
fn the_403_body_escapes_and_matches_the_harness_shape() {
    let check = FailedCheck {
        permission: "core_pipeline_view".into(),
        account: "acme".into(),
        org: Some("eng".into()),
        project: None,
        resource_type: "PIPELINE".into(),
        resource_id: Some("a\"b\\c\u{1}é".into()),
    };
    let (status, body, challenge) = parsed(&Denial::AccessDenied {
        check,
        reason: "no_matching_grant",
    });
    assert_eq!(status, 403);
    assert_eq!(challenge, None);
    assert_eq!(
        body["message"],
        "Missing permission core_pipeline_view on pipeline with identifier a\"b\\c\u{1}é"
    );
    assert_eq!(body["reason"], "no_matching_grant");
    let failed = &body["failedPermissionChecks"][0];
    assert_eq!(failed["resourceIdentifier"], "a\"b\\c\u{1}é");
    assert_eq!(failed["resourceScope"]["orgIdentifier"], "eng");
    assert!(failed["resourceScope"].get("projectIdentifier").is_none());
    assert_eq!(failed["resourceType"], "PIPELINE");
}

#[test]
fn bearer_challenges_name_the_reason_code_and_api_keys_keep_theirs() {
    let (_, _, challenge) = parsed(&Denial::InvalidCredentials {
        reason: "jwt_expired",
    });
    assert_eq!(
        challenge,
        Some(
            "Bearer realm=\"scopegate\", error=\"invalid_token\", error_description=\"The token has expired (jwt_expired)\""
        )
    );
    let (_, _, again) = parsed(&Denial::InvalidCredentials {
        reason: "jwt_expired",
    });
    assert!(std::ptr::eq(challenge.unwrap(), again.unwrap()), "built once");
    let (_, _, challenge) = parsed(&Denial::InvalidCredentials {
        reason: "jwt_wrong_audience",
    });
    assert!(
        challenge
            .unwrap()
            .ends_with("error_description=\"The token is invalid (jwt_wrong_audience)\"")
    );
    let (_, _, challenge) = parsed(&Denial::InvalidCredentials {
        reason: "token_unknown",
    });
    assert_eq!(challenge, Some(WWW_AUTHENTICATE));
    let (_, _, challenge) = parsed(&Denial::MissingCredentials);
    assert_eq!(challenge, Some(WWW_AUTHENTICATE));
}
