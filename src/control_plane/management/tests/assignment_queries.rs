//! `POST /authz/api/roleassignments/filter`, `/aggregate` and `/validate`: every filter field, the
//! page, what a caller may see, the aggregate's roles and resource groups, validation by
//! compilation, and bad input refused with the document unchanged.

use serde_json::{Value, json};

use super::{Harness, assert_failure};

const A: &str = "accountIdentifier=acme";
const ENG: &str = "accountIdentifier=acme&orgIdentifier=eng";

/// In eng: role `runner`, group `devs` (alice), and three assignments: `ra_g` (devs → runner),
/// `ra_u` (alice → _organization_viewer, disabled), `ra_sa` (the account's viewer → runner).
async fn seeded() -> Harness {
    let h = Harness::start().await;
    let role = json!({"identifier": "runner", "name": "Runner", "permissions": ["core_pipeline_execute"]});
    assert_eq!(
        h.admin("POST", &format!("/authz/api/roles?{ENG}"), Some(role))
            .await
            .status,
        200
    );
    let group = json!({"identifier": "devs", "name": "Devs", "users": ["alice"]});
    assert_eq!(
        h.admin("POST", &format!("/ng/api/user-groups?{ENG}"), Some(group))
            .await
            .status,
        200
    );
    let rg = "_all_organization_level_resources";
    let multi = json!({"roleAssignments": [
        {"identifier": "ra_g", "roleIdentifier": "runner", "resourceGroupIdentifier": rg,
         "principal": {"identifier": "devs", "type": "USER_GROUP"}},
        {"identifier": "ra_u", "roleIdentifier": "_organization_viewer", "resourceGroupIdentifier": rg,
         "principal": {"identifier": "alice", "type": "USER"}, "disabled": true},
        {"identifier": "ra_sa", "roleIdentifier": "runner", "resourceGroupIdentifier": rg,
         "principal": {"identifier": "viewer", "type": "SERVICE_ACCOUNT", "scopeLevel": "account"}}]});
    let made = h
        .admin(
            "POST",
            &format!("/authz/api/roleassignments/multi?{ENG}"),
            Some(multi),
        )
        .await;
    assert_eq!(made.status, 200, "{made:?}");
    h
}

fn identifiers(answer: &super::Answer) -> Vec<String> {
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.revision, None, "a query produced a revision");
    answer.body["data"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["roleAssignment"]["identifier"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_filter_pages_the_matching_assignments_the_caller_may_see() {
    let h = seeded().await;
    let path = format!("/authz/api/roleassignments/filter?{ENG}");
    let cases = [
        (json!({}), vec!["ra_g", "ra_u", "ra_sa"]),
        (json!({"principalTypeFilter": ["USER"]}), vec!["ra_u"]),
        (
            json!({"roleFilter": ["runner"], "resourceGroupFilter": ["_all_organization_level_resources"]}),
            vec!["ra_g", "ra_sa"],
        ),
        (json!({"disabledFilter": [true]}), vec!["ra_u"]),
        (
            json!({"principalFilter": [{"identifier": "viewer", "type": "SERVICE_ACCOUNT"}]}),
            vec!["ra_sa"],
        ),
        (
            json!({"principalFilter": [{"identifier": "viewer", "type": "SERVICE_ACCOUNT", "scopeLevel": "organization"}]}),
            vec![],
        ),
        (
            json!({"principalScopeLevelFilter": ["account"]}),
            vec!["ra_u", "ra_sa"],
        ),
        (
            json!({"principalScopeLevelFilter": ["organization"]}),
            vec!["ra_g"],
        ),
        (json!({"harnessManagedFilter": [true]}), vec![]),
        (
            json!({"harnessManagedFilter": [false], "disabledFilter": [false]}),
            vec!["ra_g", "ra_sa"],
        ),
        (
            json!({"roleReferenceFilter": [{"identifier": "runner", "scopeLevel": "organization"}]}),
            vec!["ra_g", "ra_sa"],
        ),
        (
            json!({"roleReferenceFilter": [{"identifier": "runner", "scopeLevel": "project"}]}),
            vec![],
        ),
        (json!({"roleFilter": []}), vec!["ra_g", "ra_u", "ra_sa"]),
    ];
    for (body, want) in cases {
        let answer = h.admin("POST", &path, Some(body.clone())).await;
        assert_eq!(identifiers(&answer), want, "{body}");
    }
    let no_body = h.admin("POST", &path, None).await;
    assert_eq!(identifiers(&no_body).len(), 3);
    let second = h
        .admin("POST", &format!("{path}&pageIndex=1&pageSize=2"), Some(json!({})))
        .await;
    let data = &second.body["data"];
    assert_eq!(
        (
            &data["totalItems"],
            &data["totalPages"],
            &data["pageItemCount"],
            &data["pageIndex"]
        ),
        (&json!(3), &json!(2), &json!(1), &json!(1)),
        "{second:?}"
    );
    assert_eq!(
        data["content"][0]["scope"],
        json!({"accountIdentifier": "acme", "orgIdentifier": "eng", "projectIdentifier": null})
    );
    assert_eq!(second.body["status"], "SUCCESS");
    let account = h
        .admin(
            "POST",
            &format!("/authz/api/roleassignments/filter?{A}"),
            Some(json!({})),
        )
        .await;
    assert_eq!(identifiers(&account), ["ra_admin", "ra_viewer"]);

    // a caller that may view user groups only sees the group's assignment
    let setup = [
        (
            "/ng/api/serviceaccount",
            json!({"identifier": "auditor", "name": "a", "email": "a@x", "accountIdentifier": "acme"}),
        ),
        (
            "/authz/api/roles",
            json!({"identifier": "group_reader", "name": "g", "permissions": ["core_usergroup_view"]}),
        ),
        (
            "/authz/api/roleassignments",
            json!({"roleIdentifier": "group_reader", "resourceGroupIdentifier": "_all_resources_including_child_scopes",
                                               "principal": {"identifier": "auditor", "type": "SERVICE_ACCOUNT"}}),
        ),
        (
            "/ng/api/apikey",
            json!({"identifier": "k", "name": "k", "apiKeyType": "SERVICE_ACCOUNT", "parentIdentifier": "auditor", "accountIdentifier": "acme"}),
        ),
        (
            "/ng/api/token",
            json!({"identifier": "t", "name": "t", "apiKeyIdentifier": "k", "apiKeyType": "SERVICE_ACCOUNT", "parentIdentifier": "auditor"}),
        ),
    ];
    let mut token = String::new();
    for (endpoint, body) in setup {
        let made = h.admin("POST", &format!("{endpoint}?{A}"), Some(body)).await;
        assert_eq!(made.status, 200, "{made:?}");
        token = made.body["data"].as_str().unwrap_or_default().to_owned();
    }
    let seen = h.raw("POST", &path, Some(&token), Some("{}")).await;
    assert_eq!(identifiers(&seen), ["ra_g"]);
}

#[tokio::test]
async fn the_aggregate_answers_the_assignments_with_their_roles_and_resource_groups() {
    let h = seeded().await;
    let body = json!({"principalTypeFilter": ["USER_GROUP", "USER"]});
    let answer = h
        .admin(
            "POST",
            &format!("/authz/api/roleassignments/aggregate?{ENG}"),
            Some(body),
        )
        .await;
    assert_eq!((answer.status, answer.revision), (200, None), "{answer:?}");
    let data = &answer.body["data"];
    let assignments: Vec<&Value> = data["roleAssignments"].as_array().unwrap().iter().collect();
    assert_eq!(assignments.len(), 2, "{data}");
    assert_eq!(assignments[1]["identifier"], "ra_u");
    assert_eq!(assignments[1]["disabled"], true);
    assert_eq!(
        assignments[1]["principal"],
        json!({"identifier": "alice", "type": "USER", "scopeLevel": null})
    );
    assert_eq!(data["scope"]["orgIdentifier"], "eng");
    let roles: Vec<(Value, Value)> = data["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["role"]["identifier"].clone(), r["harnessManaged"].clone()))
        .collect();
    assert_eq!(
        roles,
        [
            (json!("runner"), json!(false)),
            (json!("_organization_viewer"), json!(true))
        ]
    );
    assert_eq!(
        data["roles"][0]["role"]["permissions"],
        json!(["core_pipeline_execute"])
    );
    assert_eq!(
        data["resourceGroups"],
        json!([{"identifier": "_all_organization_level_resources", "name": "_all_organization_level_resources"}])
    );
}

fn validation(role: &str, rg: &str, kind: &str, who: &str, asked: bool) -> Value {
    json!({"roleAssignment": {"roleIdentifier": role, "resourceGroupIdentifier": rg,
                              "principal": {"identifier": who, "type": kind}},
           "validatePrincipal": asked, "validateRole": asked, "validateResourceGroup": asked})
}

#[tokio::test]
async fn validation_says_which_part_of_an_assignment_would_be_refused_and_writes_nothing() {
    let h = seeded().await;
    let before = h.document();
    let path = format!("/authz/api/roleassignments/validate?{ENG}");
    let rg = "_all_organization_level_resources";
    let parts = |answer: &super::Answer| -> [(Value, Value); 3] {
        assert_eq!((answer.status, answer.revision), (200, None), "{answer:?}");
        let data = &answer.body["data"];
        [
            "principalValidationResult",
            "roleValidationResult",
            "resourceGroupValidationResult",
        ]
        .map(|part| (data[part]["valid"].clone(), data[part]["errorMessage"].clone()))
    };
    let ok = (json!(true), Value::Null);
    let good = h
        .admin(
            "POST",
            &path,
            Some(validation("runner", rg, "USER", "alice", true)),
        )
        .await;
    assert_eq!(parts(&good), [ok.clone(), ok.clone(), ok.clone()]);
    let ghost = h
        .admin(
            "POST",
            &path,
            Some(validation("runner", rg, "USER", "ghost", true)),
        )
        .await;
    assert_eq!(parts(&ghost)[0], (json!(false), json!("unknown user `ghost`")));
    assert_eq!(parts(&ghost)[1..], [ok.clone(), ok.clone()]);
    let group = h
        .admin(
            "POST",
            &path,
            Some(validation("runner", rg, "USER_GROUP", "nobody", true)),
        )
        .await;
    assert_eq!(
        parts(&group)[0],
        (json!(false), json!("unknown user group `acme/eng/nobody`"))
    );
    let role = h
        .admin(
            "POST",
            &path,
            Some(validation("no_role", rg, "USER", "alice", true)),
        )
        .await;
    assert_eq!(parts(&role)[1], (json!(false), json!("unknown role `no_role`")));
    let level = h
        .admin(
            "POST",
            &path,
            Some(validation("_account_admin", rg, "USER", "alice", true)),
        )
        .await;
    assert_eq!(
        parts(&level)[1],
        (
            json!(false),
            json!("managed role `_account_admin` cannot be assigned at ORGANIZATION level")
        )
    );
    let group_rg = h
        .admin(
            "POST",
            &path,
            Some(validation("runner", "no_rg", "USER", "alice", true)),
        )
        .await;
    assert_eq!(
        parts(&group_rg)[2],
        (json!(false), json!("unknown resource group `no_rg`"))
    );
    assert_eq!(parts(&group_rg)[..2], [ok.clone(), ok.clone()]);
    // nothing asked: nothing refused
    let unasked = h
        .admin(
            "POST",
            &path,
            Some(validation("no_role", "no_rg", "USER", "ghost", false)),
        )
        .await;
    assert_eq!(parts(&unasked), [ok.clone(), ok.clone(), ok]);
    assert_eq!(h.document(), before);
}

#[tokio::test]
async fn bad_queries_are_400s_or_404s_naming_the_problem_and_change_nothing() {
    let h = seeded().await;
    let before = h.document();
    for endpoint in ["filter", "aggregate", "validate"] {
        let path = format!("/authz/api/roleassignments/{endpoint}?{ENG}");
        let answer = h.raw("POST", &path, Some(&h.admin), Some("{not json")).await;
        assert_failure(&answer, 400, "INVALID_REQUEST", "malformed request body");
        let elsewhere = format!("/authz/api/roleassignments/{endpoint}?{A}&orgIdentifier=nope");
        let body = validation(
            "runner",
            "_all_organization_level_resources",
            "USER",
            "alice",
            true,
        );
        let answer = h.admin("POST", &elsewhere, Some(body)).await;
        assert_failure(
            &answer,
            404,
            "RESOURCE_NOT_FOUND",
            "organization `nope` not found",
        );
        let answer = h
            .admin(
                "POST",
                &format!("/authz/api/roleassignments/{endpoint}"),
                Some(json!({})),
            )
            .await;
        assert_failure(&answer, 400, "INVALID_REQUEST", "accountIdentifier");
    }
    let filter = format!("/authz/api/roleassignments/filter?{ENG}");
    let cases = [
        (
            filter.clone(),
            json!({"principalTypeFilter": ["ROBOT"]}),
            "`principalTypeFilter`: principal `type` must be",
        ),
        (
            filter.clone(),
            json!({"principalScopeLevelFilter": ["galaxy"]}),
            "`principalScopeLevelFilter`",
        ),
        (
            filter.clone(),
            json!({"principalFilter": [{"identifier": "x", "type": "ROBOT"}]}),
            "`principalFilter`",
        ),
        (
            filter.clone(),
            json!({"roleReferenceFilter": [{"identifier": "x", "scopeLevel": "moon"}]}),
            "`roleReferenceFilter`",
        ),
        (
            filter.clone(),
            json!({"roleFilter": "runner"}),
            "malformed request body",
        ),
        (
            format!("/authz/api/roleassignments/aggregate?{ENG}"),
            json!({"disabledFilter": ["yes"]}),
            "malformed request body",
        ),
        (
            format!("/authz/api/roleassignments/validate?{ENG}"),
            json!({"validateRole": true}),
            "malformed request body",
        ),
        (
            format!("/authz/api/roleassignments/validate?{ENG}"),
            validation(
                "runner",
                "_all_organization_level_resources",
                "ROBOT",
                "alice",
                true,
            ),
            "principal `type` must be",
        ),
    ];
    for (path, body, needle) in cases {
        let answer = h.admin("POST", &path, Some(body)).await;
        assert_failure(&answer, 400, "INVALID_REQUEST", needle);
    }
    let empty = h
        .raw(
            "POST",
            &format!("/authz/api/roleassignments/validate?{ENG}"),
            Some(&h.admin),
            Some(""),
        )
        .await;
    assert_failure(&empty, 400, "INVALID_REQUEST", "body is required");
    assert_eq!(h.document(), before);
}
