//! Users at a scope (`/ng/api/user`) and a group's members (`/ng/api/user-groups/{id}/users`):
//! direct addition with bindings and groups, the aggregate pages, removal with its cascade, and
//! every bad input refused with the document unchanged.

use serde_json::{Value, json};

use super::{Harness, assert_failure};

const A: &str = "accountIdentifier=acme";
const PAY: &str = "accountIdentifier=acme&orgIdentifier=eng&projectIdentifier=pay";

fn add(emails: &[&str], bindings: Value, groups: Value) -> Value {
    json!({"emails": emails, "roleBindings": bindings, "userGroups": groups})
}

fn emails_of(page: &Value) -> Vec<String> {
    page["data"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user"]["email"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn users_are_added_listed_and_removed_at_a_scope_with_what_names_them() {
    let h = Harness::start().await;
    // at the account: a new user, then the same again
    let added = h
        .admin(
            "POST",
            &format!("/ng/api/user/users?{A}"),
            Some(json!({"emails": ["Dana@Example.com"]})),
        )
        .await;
    assert_eq!(added.status, 200, "{added:?}");
    assert_eq!(added.revision, Some(2));
    assert_eq!(
        added.body["data"]["addUserResponseMap"],
        json!({"dana@example.com": "USER_ADDED_SUCCESSFULLY"})
    );
    let dana = h
        .document()
        .users
        .into_iter()
        .find(|u| u.email == "dana@example.com");
    assert_eq!(dana.map(|u| u.identifier).as_deref(), Some("dana@example.com"));
    let again = h
        .admin(
            "POST",
            &format!("/ng/api/user/users?{A}"),
            Some(json!({"emails": ["dana@example.com"]})),
        )
        .await;
    assert_eq!(
        again.body["data"]["addUserResponseMap"]["dana@example.com"], "USER_ALREADY_ADDED",
        "{again:?}"
    );

    // in the project: through a binding and a group of the project
    let group = json!({"identifier": "oncall", "name": "On call"});
    let made = h
        .admin("POST", &format!("/ng/api/user-groups?{PAY}"), Some(group))
        .await;
    assert_eq!(made.status, 200, "{made:?}");
    let binding = json!([{"roleIdentifier": "_project_viewer", "resourceGroupIdentifier": "_all_project_level_resources",
                          "roleName": "Project Viewer", "managedRole": true}]);
    let body = add(
        &["dana@example.com", "erin@example.com"],
        binding,
        json!(["oncall"]),
    );
    let in_project = h
        .admin("POST", &format!("/ng/api/user/users?{PAY}"), Some(body))
        .await;
    assert_eq!(
        in_project.body["data"]["addUserResponseMap"],
        json!({"dana@example.com": "USER_ADDED_SUCCESSFULLY", "erin@example.com": "USER_ADDED_SUCCESSFULLY"}),
        "{in_project:?}"
    );
    let document = h.document();
    let in_pay: Vec<_> = document
        .role_assignments
        .iter()
        .filter(|a| a.scope.as_ref().is_some_and(|s| s.project == "pay"))
        .map(|a| a.principal.as_ref().unwrap().identifier.clone())
        .collect();
    assert_eq!(in_pay, ["dana@example.com", "erin@example.com"]);
    let oncall = document
        .user_groups
        .iter()
        .find(|g| g.identifier == "oncall")
        .unwrap();
    assert_eq!(oncall.users, ["dana@example.com", "erin@example.com"]);

    // the pages: the account holds every user, the project those it names
    let everyone = h
        .admin("POST", &format!("/ng/api/user/aggregate?{A}"), None)
        .await;
    assert_eq!(everyone.status, 200, "{everyone:?}");
    assert_eq!(everyone.body["data"]["totalItems"], 3, "{everyone:?}");
    let project = h
        .admin(
            "POST",
            &format!("/ng/api/user/aggregate?{PAY}&pageSize=1"),
            Some(json!({})),
        )
        .await;
    let data = &project.body["data"];
    assert_eq!(
        (&data["totalItems"], &data["totalPages"], &data["pageItemCount"]),
        (&json!(2), &json!(2), &json!(1)),
        "{project:?}"
    );
    let first = &data["content"][0];
    assert_eq!(first["user"]["uuid"], "dana@example.com");
    assert_eq!(
        first["roleAssignmentMetadata"][0]["roleIdentifier"],
        "_project_viewer"
    );
    assert_eq!(first["roleAssignmentMetadata"][0]["roleScopeLevel"], "project");
    let filtered = h
        .admin(
            "POST",
            &format!("/ng/api/user/aggregate?{A}&searchTerm=ERIN"),
            Some(json!({"roleIdentifiers": [], "resourceGroupIdentifiers": []})),
        )
        .await;
    assert_eq!(emails_of(&filtered.body), ["erin@example.com"]);
    let by_role = h
        .admin(
            "POST",
            &format!("/ng/api/user/aggregate?{PAY}"),
            Some(json!({"roleIdentifiers": ["_project_admin"]})),
        )
        .await;
    assert_eq!(by_role.body["data"]["totalItems"], 0, "{by_role:?}");
    let one = h
        .admin(
            "GET",
            &format!("/ng/api/user/aggregate/erin@example.com?{PAY}"),
            None,
        )
        .await;
    assert_eq!(one.body["data"]["user"]["email"], "erin@example.com", "{one:?}");
    let members = h
        .admin(
            "POST",
            &format!("/ng/api/user-groups/oncall/users?{PAY}"),
            Some(json!({"searchTerm": "dana"})),
        )
        .await;
    assert_eq!(members.body["data"]["totalItems"], 1, "{members:?}");
    assert_eq!(members.body["data"]["content"][0]["email"], "dana@example.com");

    // removed from the project: its assignment and membership there go, the user stays
    let removed = h
        .admin("DELETE", &format!("/ng/api/user/dana@example.com?{PAY}"), None)
        .await;
    assert_eq!(
        (removed.status, &removed.body["data"]),
        (200, &json!(true)),
        "{removed:?}"
    );
    assert!(removed.revision.is_some());
    let document = h.document();
    assert!(document.users.iter().any(|u| u.identifier == "dana@example.com"));
    let oncall = document
        .user_groups
        .iter()
        .find(|g| g.identifier == "oncall")
        .unwrap();
    assert_eq!(oncall.users, ["erin@example.com"]);

    // removed from the account: with its API key, its group membership and its assignments
    let key = json!({"identifier": "erin_key", "name": "k", "apiKeyType": "USER", "parentIdentifier": "erin@example.com", "accountIdentifier": "acme"});
    assert_eq!(
        h.admin("POST", &format!("/ng/api/apikey?{A}"), Some(key))
            .await
            .status,
        200
    );
    let gone = h
        .admin("DELETE", &format!("/ng/api/user/erin%40example.com?{A}"), None)
        .await;
    assert_eq!(gone.status, 200, "{gone:?}");
    let document = h.document();
    assert!(document.users.iter().all(|u| u.identifier != "erin@example.com"));
    assert!(document.api_keys.iter().all(|k| k.identifier != "erin_key"));
    assert!(document.user_groups.iter().all(|g| g.users.is_empty()));
    assert!(
        !format!("{document:?}").contains("erin@"),
        "something still names erin"
    );
    let log = String::from_utf8(h.log.0.lock().unwrap().clone()).unwrap();
    let last: Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(last["result"], "committed");
    assert!(
        last["change"].as_str().unwrap().contains(
            "user removed from acme: erin@example.com (1 role assignments, 1 group memberships, 1 api keys)"
        ),
        "{last}"
    );
}

#[tokio::test]
async fn bad_user_input_is_a_400_or_404_naming_it_and_changes_nothing() {
    let h = Harness::start().await;
    let before = h.document();
    let users = format!("/ng/api/user/users?{A}");
    let binding = |role: &str, rg: &str| json!([{"roleIdentifier": role, "resourceGroupIdentifier": rg}]);
    let cases = [
        (
            users.clone(),
            json!({"emails": ["no-at-sign"]}),
            400,
            "INVALID_REQUEST",
            "`no-at-sign` is not an e-mail",
        ),
        (
            users.clone(),
            json!({"emails": ["a@b@c"]}),
            400,
            "INVALID_REQUEST",
            "`a@b@c`",
        ),
        (
            users.clone(),
            json!({"emails": ["sp ace@x.io"]}),
            400,
            "INVALID_REQUEST",
            "visible ASCII",
        ),
        (
            users.clone(),
            json!({"emails": []}),
            400,
            "INVALID_REQUEST",
            "at least one user",
        ),
        (
            users.clone(),
            json!({"roleBindings": []}),
            400,
            "INVALID_REQUEST",
            "malformed request body",
        ),
        (
            format!("/ng/api/user/users?{PAY}"),
            json!({"emails": ["new@x.io"]}),
            400,
            "INVALID_REQUEST",
            "give `roleBindings` or `userGroups`",
        ),
        (
            format!("/ng/api/user/users?{PAY}"),
            add(&["new@x.io"], json!([]), json!(["no_such_group"])),
            404,
            "RESOURCE_NOT_FOUND",
            "user group `acme/eng/pay/no_such_group` not found",
        ),
        (
            format!("/ng/api/user/users?{PAY}"),
            add(
                &["new@x.io"],
                binding("no_such_role", "_all_project_level_resources"),
                json!([]),
            ),
            400,
            "INVALID_REQUEST",
            "no_such_role",
        ),
        (
            format!("/ng/api/user/users?{PAY}"),
            add(&["new@x.io"], binding("_project_viewer", "no_such_rg"), json!([])),
            400,
            "INVALID_REQUEST",
            "no_such_rg",
        ),
        (
            format!("/ng/api/user/users?{PAY}"),
            add(&["new@x.io"], binding("", "x"), json!([])),
            400,
            "INVALID_REQUEST",
            "`roleBindings`",
        ),
        (
            format!("/ng/api/user/users?{A}&orgIdentifier=nope"),
            add(
                &["new@x.io"],
                binding("_organization_viewer", "_all_organization_level_resources"),
                json!([]),
            ),
            404,
            "RESOURCE_NOT_FOUND",
            "organization `nope`",
        ),
        (
            format!("/ng/api/user/aggregate?{A}"),
            json!({"roleIdentifiers": "not a list"}),
            400,
            "INVALID_REQUEST",
            "malformed request body",
        ),
    ];
    for (path, body, status, code, needle) in cases {
        let answer = h.admin("POST", &path, Some(body)).await;
        assert_failure(&answer, status, code, needle);
    }
    let missing = [
        (
            "DELETE",
            format!("/ng/api/user/nobody?{A}"),
            "user `nobody` not found in account `acme`",
        ),
        (
            "DELETE",
            format!("/ng/api/user/alice?{PAY}"),
            "user `alice` is not in `acme/eng/pay`",
        ),
        (
            "GET",
            format!("/ng/api/user/aggregate/alice?{PAY}"),
            "user `alice` is not in `acme/eng/pay`",
        ),
        (
            "GET",
            format!("/ng/api/user/aggregate/nobody?{A}"),
            "user `nobody` not found",
        ),
        (
            "POST",
            format!("/ng/api/user-groups/nope/users?{A}"),
            "user group `acme/nope` not found",
        ),
    ];
    for (method, path, needle) in missing {
        let answer = h.admin(method, &path, None).await;
        assert_failure(&answer, 404, "RESOURCE_NOT_FOUND", needle);
    }
    // the viewer reads users, and may neither add nor remove one
    let listed = h
        .raw(
            "POST",
            &format!("/ng/api/user/aggregate?{A}"),
            Some(&h.viewer),
            None,
        )
        .await;
    assert_eq!(listed.body["data"]["totalItems"], 1, "{listed:?}");
    let body = json!({"emails": ["new@x.io"]}).to_string();
    let denied = h.raw("POST", &users, Some(&h.viewer), Some(&body)).await;
    assert_failure(
        &denied,
        403,
        "NG_ACCESS_DENIED",
        "Missing permission core_user_invite on user",
    );
    let denied = h
        .raw(
            "DELETE",
            &format!("/ng/api/user/alice?{A}"),
            Some(&h.viewer),
            None,
        )
        .await;
    assert_failure(
        &denied,
        403,
        "NG_ACCESS_DENIED",
        "core_user_manage on user with identifier alice",
    );
    assert_eq!(h.document(), before);
}
