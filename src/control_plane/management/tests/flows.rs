//! What the endpoints do when the input is good: envelopes, pages, revisions, tokens shown once,
//! cascades, the change log.

use serde_json::json;

use super::Harness;

const A: &str = "accountIdentifier=acme";

#[tokio::test]
async fn orgs_and_projects_answer_in_harness_envelopes_and_pages_with_revisions() {
    let h = Harness::start().await;
    let created = h
        .admin(
            "POST",
            &format!("/ng/api/organizations?{A}"),
            Some(json!({"organization": {"identifier": "ops", "name": "Ops"}})),
        )
        .await;
    assert_eq!(created.status, 200, "{created:?}");
    assert_eq!(created.revision, Some(2));
    assert_eq!(created.body["status"], "SUCCESS");
    assert_eq!(created.body["data"]["organization"]["name"], "Ops");
    assert!(created.body.get("metaData").is_some() && created.body["correlationId"].is_string());
    let project = h
        .admin(
            "POST",
            &format!("/ng/api/projects?{A}&orgIdentifier=ops"),
            Some(json!({"project": {"identifier": "web", "orgIdentifier": "ops"}})),
        )
        .await;
    assert_eq!(project.revision, Some(3), "{project:?}");
    let list = h
        .admin(
            "GET",
            &format!("/ng/api/organizations?{A}&pageIndex=0&pageSize=1"),
            None,
        )
        .await;
    let data = &list.body["data"];
    assert_eq!(
        (data["totalItems"].as_u64(), data["totalPages"].as_u64()),
        (Some(2), Some(2)),
        "{data}"
    );
    assert_eq!(
        (data["pageItemCount"].as_u64(), data["pageSize"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(data["empty"], false);
    let search = h
        .admin("GET", &format!("/ng/api/projects?{A}&searchTerm=WE"), None)
        .await;
    assert_eq!(
        search.body["data"]["content"][0]["project"]["identifier"], "web",
        "{search:?}"
    );
    let sa = json!({"identifier": "bot", "name": "bot", "email": "b@x", "accountIdentifier": "acme", "orgIdentifier": "ops", "projectIdentifier": "web"});
    assert_eq!(
        h.admin(
            "POST",
            &format!("/ng/api/serviceaccount?{A}&orgIdentifier=ops&projectIdentifier=web"),
            Some(sa)
        )
        .await
        .status,
        200
    );
    let deleted = h
        .admin("DELETE", &format!("/ng/api/organizations/ops?{A}"), None)
        .await;
    assert_eq!(
        (deleted.status, deleted.body["data"].clone()),
        (200, json!(true)),
        "{deleted:?}"
    );
    let document = h.document();
    assert_eq!(document.version, 5);
    assert!(document.organizations.iter().all(|o| o.identifier != "ops"));
    assert!(
        document.service_accounts.iter().all(|s| s.identifier != "bot"),
        "the cascade left the project's service account"
    );
}

#[tokio::test]
async fn a_token_is_shown_once_stored_as_a_hash_authenticates_rotates_and_is_deleted() {
    let h = Harness::start().await;
    let sa = json!({"identifier": "ci", "name": "CI", "email": "ci@x", "accountIdentifier": "acme"});
    assert_eq!(
        h.admin("POST", &format!("/ng/api/serviceaccount?{A}"), Some(sa))
            .await
            .status,
        200
    );
    let key = json!({"identifier": "k", "name": "k", "apiKeyType": "SERVICE_ACCOUNT", "parentIdentifier": "ci", "accountIdentifier": "acme"});
    assert_eq!(
        h.admin("POST", &format!("/ng/api/apikey?{A}"), Some(key))
            .await
            .status,
        200
    );
    let token = json!({"identifier": "t", "name": "t", "apiKeyIdentifier": "k", "apiKeyType": "SERVICE_ACCOUNT", "parentIdentifier": "ci", "accountIdentifier": "acme"});
    let created = h.admin("POST", &format!("/ng/api/token?{A}"), Some(token)).await;
    let secret = created.body["data"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("sat.acme."), "{created:?}");
    let stored = serde_json::to_string(&h.document()).unwrap();
    assert!(
        !stored.contains(secret.rsplit('.').next().unwrap()),
        "the secret is stored"
    );
    // ci holds no role: authenticated, and refused
    let as_ci = h
        .raw("GET", &format!("/authz/api/roles?{A}"), Some(&secret), None)
        .await;
    assert_eq!(as_ci.status, 403, "{as_ci:?}");
    let tokens = format!("{A}&apiKeyType=SERVICE_ACCOUNT&parentIdentifier=ci&apiKeyIdentifier=k");
    let listed = h
        .admin("GET", &format!("/ng/api/token/aggregate?{tokens}"), None)
        .await;
    assert_eq!(
        listed.body["data"]["content"][0]["token"]["identifier"], "t",
        "{listed:?}"
    );
    let rotated = h
        .admin(
            "POST",
            &format!("/ng/api/token/rotate/t?{tokens}&rotateTimestamp=4102444800000"),
            None,
        )
        .await;
    let new = rotated.body["data"].as_str().unwrap().to_owned();
    assert_ne!(new, secret);
    for token in [&secret, &new] {
        assert_eq!(
            h.raw("GET", &format!("/authz/api/roles?{A}"), Some(token), None)
                .await
                .status,
            403
        );
    }
    let deleted = h
        .admin("DELETE", &format!("/ng/api/token/t?{tokens}"), None)
        .await;
    assert_eq!(deleted.status, 200, "{deleted:?}");
    for token in [&secret, &new] {
        assert_eq!(
            h.raw("GET", &format!("/authz/api/roles?{A}"), Some(token), None)
                .await
                .status,
            401
        );
    }
}

#[tokio::test]
async fn roles_assignments_groups_and_resource_groups_round_trip_and_are_change_logged() {
    let h = Harness::start().await;
    let role = json!({"identifier": "runner", "name": "Runner", "permissions": ["core_pipeline_view", "core_pipeline_execute"]});
    let created = h
        .admin(
            "POST",
            &format!("/authz/api/roles?{A}&orgIdentifier=eng"),
            Some(role),
        )
        .await;
    assert_eq!(
        created.body["data"]["role"]["allowedScopeLevels"],
        json!(["organization"]),
        "{created:?}"
    );
    let group = json!({"identifier": "devs", "name": "Devs", "users": ["alice"]});
    assert_eq!(
        h.admin(
            "POST",
            &format!("/ng/api/user-groups?{A}&orgIdentifier=eng"),
            Some(group)
        )
        .await
        .status,
        200
    );
    let rg = json!({"identifier": "pipes", "name": "Pipes", "resource_filter": [{"resource_type": "PIPELINE", "identifiers": ["deploy"]}],
                    "included_scope": [{"filter": "INCLUDING_CHILD_SCOPES", "account": "acme", "org": "eng"}]});
    let made = h
        .raw(
            "POST",
            "/v1/orgs/eng/resource-groups?accountIdentifier=acme",
            Some(&h.admin),
            Some(&rg.to_string()),
        )
        .await;
    assert_eq!(made.status, 200, "{made:?}");
    assert_eq!(
        made.body["identifier"], "pipes",
        "the v1 API answers without an envelope"
    );
    let multi = json!({"roleAssignments": [
        {"identifier": "ra1", "roleIdentifier": "runner", "resourceGroupIdentifier": "pipes", "principal": {"identifier": "devs", "type": "USER_GROUP"}},
        {"roleIdentifier": "runner", "resourceGroupIdentifier": "pipes", "principal": {"identifier": "alice", "type": "USER"}}]});
    let assigned = h
        .admin(
            "POST",
            &format!("/authz/api/roleassignments/multi?{A}&orgIdentifier=eng"),
            Some(multi),
        )
        .await;
    assert_eq!(
        assigned.body["data"].as_array().map(Vec::len),
        Some(2),
        "{assigned:?}"
    );
    let listed = h
        .admin(
            "GET",
            &format!("/authz/api/roleassignments?{A}&orgIdentifier=eng"),
            None,
        )
        .await;
    assert_eq!(listed.body["data"]["totalItems"], 2, "{listed:?}");
    let roles = h
        .admin("GET", &format!("/authz/api/roles?{A}&orgIdentifier=eng"), None)
        .await;
    let runner = roles.body["data"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"]["identifier"] == "runner")
        .cloned()
        .unwrap();
    assert_eq!(
        (
            runner["roleAssignedToUserCount"].clone(),
            runner["roleAssignedToUserGroupCount"].clone()
        ),
        (json!(1), json!(1))
    );
    let batch = h
        .admin(
            "POST",
            &format!("/authz/api/roleassignments/delete/batch?{A}&orgIdentifier=eng"),
            Some(json!(["ra1", "nope"])),
        )
        .await;
    assert_eq!(
        (
            batch.body["data"]["successfullyDeleted"].clone(),
            batch.body["data"]["failedToDelete"].clone()
        ),
        (json!(1), json!(1)),
        "{batch:?}"
    );
    let member = h
        .admin(
            "DELETE",
            &format!("/ng/api/user-groups/devs/member/alice?{A}&orgIdentifier=eng"),
            None,
        )
        .await;
    assert_eq!(member.body["data"]["users"], json!([]), "{member:?}");
    let log = String::from_utf8(h.log.0.lock().unwrap().clone()).unwrap();
    let records: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 6, "{log}");
    let first = &records[0];
    assert_eq!(
        (first["frontend"].clone(), first["result"].clone()),
        (json!("management"), json!("committed"))
    );
    assert_eq!(
        (first["before_revision"].clone(), first["after_revision"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(first["principal"], "SERVICE_ACCOUNT:admin");
    assert_eq!(first["token_id"], "ADMINID");
    assert!(
        first["change"].as_str().unwrap().contains("role created"),
        "{first}"
    );
    // a refused write is recorded too
    let refused = h
        .admin(
            "POST",
            &format!("/authz/api/roles?{A}&orgIdentifier=eng"),
            Some(json!({"identifier": "runner", "name": "x"})),
        )
        .await;
    assert_eq!(refused.status, 400);
    let log = String::from_utf8(h.log.0.lock().unwrap().clone()).unwrap();
    let last: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(
        (last["result"].clone(), last["reason"].clone()),
        (json!("refused"), json!("DUPLICATE_FIELD"))
    );
}
