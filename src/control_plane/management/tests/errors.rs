//! Bad input on every endpoint family: a Harness-shaped 4xx naming the problem, and the document
//! unchanged.

use serde_json::json;

use super::{Harness, assert_failure};

const A: &str = "accountIdentifier=acme";

#[tokio::test]
async fn a_malformed_body_is_a_400_naming_the_body_on_every_family_and_changes_nothing() {
    let h = Harness::start().await;
    let before = h.document();
    let writes = [
        ("POST", format!("/ng/api/organizations?{A}")),
        ("PUT", format!("/ng/api/organizations/eng?{A}")),
        ("POST", format!("/ng/api/projects?{A}&orgIdentifier=eng")),
        ("POST", format!("/ng/api/serviceaccount?{A}")),
        ("POST", format!("/ng/api/apikey?{A}")),
        ("POST", format!("/ng/api/token?{A}")),
        ("POST", format!("/authz/api/roles?{A}")),
        ("POST", format!("/authz/api/roleassignments?{A}")),
        ("POST", format!("/authz/api/roleassignments/multi?{A}")),
        ("POST", format!("/authz/api/roleassignments/delete/batch?{A}")),
        ("POST", format!("/ng/api/user-groups?{A}")),
        ("POST", "/v1/resource-groups?accountIdentifier=acme".to_owned()),
    ];
    for (method, path) in &writes {
        for body in ["{not json", "{\"identifier\": 5}", ""] {
            let answer = h.raw(method, path, Some(&h.admin), Some(body)).await;
            let needle = if body.is_empty() {
                "body is required"
            } else {
                "malformed request body"
            };
            assert_failure(&answer, 400, "INVALID_REQUEST", needle);
            if !body.is_empty() {
                assert_eq!(answer.body["errors"][0]["fieldId"], "body", "{method} {path}");
                assert!(!answer.body["message"].as_str().unwrap().contains("not json"));
            }
        }
    }
    let no_account = h.admin("GET", "/ng/api/organizations", None).await;
    assert_failure(&no_account, 400, "INVALID_REQUEST", "accountIdentifier");
    let bad_page = h
        .admin("GET", &format!("/ng/api/organizations?{A}&pageIndex=x"), None)
        .await;
    assert_failure(&bad_page, 400, "INVALID_REQUEST", "pageIndex");
    let bad_id = h
        .admin(
            "POST",
            &format!("/ng/api/organizations?{A}"),
            Some(json!({"organization": {"identifier": "no spaces"}})),
        )
        .await;
    assert_failure(
        &bad_id,
        400,
        "INVALID_REQUEST",
        "identifier `no spaces` is invalid",
    );
    assert_eq!(h.document(), before);
}

#[tokio::test]
async fn unknown_references_are_400s_naming_them_and_change_nothing() {
    let h = Harness::start().await;
    let before = h.document();
    let assign = |role: &str, group: &str, kind: &str, who: &str| {
        json!({"roleIdentifier": role, "resourceGroupIdentifier": group,
               "principal": {"identifier": who, "type": kind}})
    };
    let path = format!("/authz/api/roleassignments?{A}");
    let cases = [
        (
            assign(
                "no_such_role",
                "_all_account_level_resources",
                "SERVICE_ACCOUNT",
                "admin",
            ),
            "no_such_role",
        ),
        (
            assign("_account_viewer", "no_such_group", "SERVICE_ACCOUNT", "admin"),
            "no_such_group",
        ),
        (
            assign(
                "_account_viewer",
                "_all_account_level_resources",
                "SERVICE_ACCOUNT",
                "ghost",
            ),
            "ghost",
        ),
        (
            assign(
                "_account_viewer",
                "_all_account_level_resources",
                "USER",
                "nobody",
            ),
            "nobody",
        ),
        (
            assign(
                "_account_viewer",
                "_all_account_level_resources",
                "ROBOT",
                "admin",
            ),
            "principal `type`",
        ),
    ];
    for (body, needle) in cases {
        let answer = h.admin("POST", &path, Some(body)).await;
        assert_failure(&answer, 400, "INVALID_REQUEST", needle);
    }
    let role = h
        .admin("POST", &format!("/authz/api/roles?{A}"),
               Some(json!({"identifier": "r", "name": "r", "permissions": ["core_pipeline_view", "core_no_such_thing"]})))
        .await;
    assert_failure(&role, 400, "INVALID_REQUEST", "core_no_such_thing");
    assert!(
        role.body["errors"].as_array().is_some_and(|e| !e.is_empty()),
        "{role:?}"
    );
    let group = h
        .admin(
            "POST",
            &format!("/ng/api/user-groups?{A}"),
            Some(json!({"identifier": "g", "name": "g", "users": ["nobody"]})),
        )
        .await;
    assert_failure(&group, 400, "INVALID_REQUEST", "nobody");
    let project = h
        .admin(
            "POST",
            &format!("/ng/api/projects?{A}&orgIdentifier=nope"),
            Some(json!({"project": {"identifier": "p"}})),
        )
        .await;
    assert_failure(&project, 404, "RESOURCE_NOT_FOUND", "organization `nope`");
    let key = h
        .admin("POST", &format!("/ng/api/apikey?{A}"),
               Some(json!({"identifier": "k", "name": "k", "apiKeyType": "SERVICE_ACCOUNT", "parentIdentifier": "ghost", "accountIdentifier": "acme"})))
        .await;
    assert_failure(&key, 400, "INVALID_REQUEST", "ghost");
    let token = h
        .admin("POST", &format!("/ng/api/token?{A}"),
               Some(json!({"identifier": "t2", "name": "t2", "apiKeyIdentifier": "nokey", "apiKeyType": "SERVICE_ACCOUNT", "parentIdentifier": "admin"})))
        .await;
    assert_failure(&token, 404, "RESOURCE_NOT_FOUND", "nokey");
    let rg = h
        .raw("POST", "/v1/resource-groups?accountIdentifier=acme", Some(&h.admin),
             Some(&json!({"identifier": "rg", "name": "rg", "resource_filter": [{"resource_type": "NO_SUCH_TYPE"}]}).to_string()))
        .await;
    assert_failure(&rg, 400, "INVALID_REQUEST", "NO_SUCH_TYPE");
    assert_eq!(h.document(), before);
}

#[tokio::test]
async fn duplicates_are_duplicate_field_and_missing_entities_resource_not_found() {
    let h = Harness::start().await;
    let before = h.document();
    let duplicates = [
        (
            format!("/ng/api/organizations?{A}"),
            json!({"organization": {"identifier": "eng", "name": "Eng"}}),
        ),
        (
            format!("/ng/api/projects?{A}&orgIdentifier=eng"),
            json!({"project": {"identifier": "pay", "name": "Pay"}}),
        ),
        (
            format!("/ng/api/serviceaccount?{A}"),
            json!({"identifier": "admin", "name": "a", "email": "a@x", "accountIdentifier": "acme"}),
        ),
        (
            format!("/ng/api/apikey?{A}"),
            json!({"identifier": "admin_key", "name": "k", "apiKeyType": "SERVICE_ACCOUNT", "parentIdentifier": "admin", "accountIdentifier": "acme"}),
        ),
        (
            format!("/ng/api/token?{A}"),
            json!({"identifier": "t", "name": "t", "apiKeyIdentifier": "admin_key", "apiKeyType": "SERVICE_ACCOUNT", "parentIdentifier": "admin"}),
        ),
        (
            format!("/authz/api/roleassignments?{A}"),
            json!({"identifier": "ra_admin", "roleIdentifier": "_account_viewer", "resourceGroupIdentifier": "_all_account_level_resources", "principal": {"identifier": "viewer", "type": "SERVICE_ACCOUNT"}}),
        ),
        (
            format!("/authz/api/roleassignments?{A}"),
            json!({"roleIdentifier": "_account_admin", "resourceGroupIdentifier": "_all_resources_including_child_scopes", "principal": {"identifier": "admin", "type": "SERVICE_ACCOUNT"}}),
        ),
    ];
    for (path, body) in duplicates {
        let answer = h.admin("POST", &path, Some(body)).await;
        assert_failure(&answer, 400, "DUPLICATE_FIELD", "already exists");
    }
    let missing = [
        ("GET", format!("/ng/api/organizations/nope?{A}")),
        ("DELETE", format!("/ng/api/organizations/nope?{A}")),
        ("DELETE", format!("/ng/api/projects/nope?{A}&orgIdentifier=eng")),
        ("GET", format!("/ng/api/serviceaccount/aggregate/nope?{A}")),
        ("DELETE", format!("/ng/api/serviceaccount/nope?{A}")),
        (
            "DELETE",
            format!("/ng/api/apikey/nope?{A}&apiKeyType=SERVICE_ACCOUNT&parentIdentifier=admin"),
        ),
        (
            "DELETE",
            format!(
                "/ng/api/token/nope?{A}&apiKeyType=SERVICE_ACCOUNT&parentIdentifier=admin&apiKeyIdentifier=admin_key"
            ),
        ),
        ("GET", format!("/authz/api/roles/nope?{A}")),
        ("DELETE", format!("/authz/api/roles/nope?{A}")),
        ("GET", format!("/authz/api/roleassignments/nope?{A}")),
        ("DELETE", format!("/authz/api/roleassignments/nope?{A}")),
        ("GET", format!("/ng/api/user-groups/nope?{A}")),
        ("DELETE", format!("/ng/api/user-groups/nope?{A}")),
        (
            "DELETE",
            "/v1/resource-groups/nope?accountIdentifier=acme".to_owned(),
        ),
        ("GET", format!("/ng/api/no-such-endpoint?{A}")),
    ];
    for (method, path) in missing {
        let answer = h.admin(method, &path, None).await;
        assert_failure(&answer, 404, "RESOURCE_NOT_FOUND", "");
    }
    assert_eq!(h.document(), before);
}

#[tokio::test]
async fn a_change_that_makes_the_account_invalid_is_a_400_listing_every_error() {
    let h = Harness::start().await;
    let role = json!({"identifier": "runner", "name": "runner", "permissions": ["core_pipeline_execute"]});
    assert_eq!(
        h.admin("POST", &format!("/authz/api/roles?{A}"), Some(role))
            .await
            .status,
        200
    );
    let assignment = json!({"identifier": "ra_run", "roleIdentifier": "runner",
        "resourceGroupIdentifier": "_all_account_level_resources", "principal": {"identifier": "viewer", "type": "SERVICE_ACCOUNT"}});
    assert_eq!(
        h.admin(
            "POST",
            &format!("/authz/api/roleassignments?{A}"),
            Some(assignment)
        )
        .await
        .status,
        200
    );
    let before = h.document();
    let deleted = h
        .admin("DELETE", &format!("/authz/api/roles/runner?{A}"), None)
        .await;
    assert_failure(&deleted, 400, "INVALID_REQUEST", "would make the account invalid");
    assert!(
        deleted.body["message"].as_str().unwrap().contains("runner"),
        "{deleted:?}"
    );
    assert_eq!(deleted.body["errors"][0]["fieldId"], "account");
    // a role whose permission cannot be granted at its level
    let project_role =
        json!({"identifier": "sa_editor", "name": "x", "permissions": ["core_serviceaccount_edit"]});
    let refused = h
        .admin(
            "POST",
            &format!("/authz/api/roles?{A}&orgIdentifier=eng&projectIdentifier=pay"),
            Some(project_role),
        )
        .await;
    assert_failure(&refused, 400, "INVALID_REQUEST", "core_serviceaccount_edit");
    assert_eq!(h.document(), before);
}

#[tokio::test]
async fn missing_or_refused_tokens_are_401s_and_missing_permissions_403s_in_harness_shape() {
    let h = Harness::start().await;
    let before = h.document();
    let path = format!("/authz/api/roles?{A}");
    let role = json!({"identifier": "r", "name": "r", "permissions": ["core_pipeline_view"]}).to_string();
    let none = h.raw("POST", &path, None, Some(&role)).await;
    assert_failure(&none, 401, "MISSING_CREDENTIALS", "No credentials");
    let forged = format!("{}x", h.admin);
    for token in [
        forged.as_str(),
        "sat.acme.UNKNOWN.secret",
        "not-a-token",
        "sat.other.ADMINID.x",
    ] {
        let refused = h.raw("POST", &path, Some(token), Some(&role)).await;
        assert_failure(&refused, 401, "INVALID_CREDENTIALS", "Invalid credentials");
    }
    let other_account = h
        .raw(
            "GET",
            "/ng/api/organizations?accountIdentifier=other",
            Some(&h.admin),
            None,
        )
        .await;
    assert_failure(&other_account, 401, "INVALID_CREDENTIALS", "");
    let denied = h.raw("POST", &path, Some(&h.viewer), Some(&role)).await;
    assert_failure(
        &denied,
        403,
        "NG_ACCESS_DENIED",
        "Missing permission core_role_edit on role",
    );
    let failed = &denied.body["failedPermissionChecks"][0];
    assert_eq!(failed["permission"], "core_role_edit");
    assert_eq!(failed["resourceScope"]["accountIdentifier"], "acme");
    let sa = json!({"identifier": "x", "name": "x", "email": "x@y", "accountIdentifier": "acme"}).to_string();
    let denied = h
        .raw(
            "POST",
            &format!("/ng/api/serviceaccount?{A}&orgIdentifier=eng"),
            Some(&h.viewer),
            Some(&sa),
        )
        .await;
    assert_failure(&denied, 403, "NG_ACCESS_DENIED", "core_serviceaccount_edit");
    // the viewer still reads
    let list = h.raw("GET", &path, Some(&h.viewer), None).await;
    assert_eq!(list.status, 200, "{list:?}");
    assert_eq!(h.document(), before);
}
