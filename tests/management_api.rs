//! The management API end to end with Harness's own Python client (`harness-open-api`): a real
//! `scopegate control-plane` process serving a folder with one seed account, driven to create an
//! org, a project, a service account, an API key and token, a role and a role assignment; an
//! in-process sidecar streaming the account then allows the new token the granted permission, and
//! denies it within a second of the assignment's deletion through the client; a caller without
//! `core_role_edit` gets Harness's 403.

use std::time::Duration;

use crate::common::control_plane::{Process, TempDir, eventually, remote, sidecar, write_atomic};
use crate::common::{http, python};
use scopegate::authn::api_key::{TokenKind, mint};

const SEED: &str = "account: acme
version: 1
service_accounts:
  - {identifier: admin}
role_assignments:
  - {identifier: ra_admin, principal: {type: SERVICE_ACCOUNT, identifier: admin}, role: _account_admin, resource_group: _all_resources_including_child_scopes}
api_keys:
  - identifier: admin_key
    parent: {type: SERVICE_ACCOUNT, identifier: admin}
    tokens: [{identifier: t, id: admintok, secret_hash: \"HASH\", valid_from: \"2020-01-01T00:00:00Z\", valid_to: \"2099-01-01T00:00:00Z\"}]
";

/// Creates everything with the official client; prints the new token.
const CREATE: &str = r#"
import json, sys
import harness_open_api as h
conf = h.Configuration()
conf.host = sys.argv[1]
conf.api_key = {'x-api-key': sys.argv[2]}
api = h.ApiClient(conf)
A = 'acme'
org = h.OrganizationApi(api).post_organization(
    h.OrganizationRequest(organization=h.Organization1(identifier='ops', name='Ops')), A)
assert org.status == 'SUCCESS' and org.data.organization.identifier == 'ops', org
orgs = h.OrganizationApi(api).get_organization_list(A, page_size=10)
assert orgs.data.total_items == 1 and orgs.data.content[0].organization.name == 'ops', orgs
h.ProjectApi(api).post_project(h.ProjectRequest1(project=h.Project1(
    org_identifier='ops', identifier='web', name='Web')), A, org_identifier='ops')
scope = dict(org_identifier='ops', project_identifier='web')
sa = h.ServiceAccountApi(api).create_service_account(h.ServiceAccount(
    identifier='deployer', name='Deployer', email='d@example.com', account_identifier=A, **scope), A, **scope)
assert sa.data.identifier == 'deployer', sa
h.ApiKeyApi(api).create_api_key(A, body=h.ApiKey(identifier='k', name='k', api_key_type='SERVICE_ACCOUNT',
    parent_identifier='deployer', account_identifier=A, **scope))
token = h.TokenApi(api).create_token(h.Token(identifier='t', name='t', api_key_identifier='k',
    parent_identifier='deployer', api_key_type='SERVICE_ACCOUNT', account_identifier=A, **scope), A).data
role = h.RolesApi(api).post_role(h.Role(identifier='pipeline_viewer', name='Pipeline viewer',
    permissions=['core_pipeline_view']), A, **scope)
assert role.data.role.permissions == ['core_pipeline_view'], role
ra = h.RoleAssignmentsApi(api).post_role_assignment(h.AuthzRoleAssignment(identifier='ra_deployer',
    role_identifier='pipeline_viewer', resource_group_identifier='_all_project_level_resources',
    principal=h.AuthzPrincipal(identifier='deployer', type='SERVICE_ACCOUNT')), A, **scope)
assert ra.data.role_assignment.principal.identifier == 'deployer', ra
listed = h.RoleAssignmentsApi(api).get_role_assignment_list(A, **scope)
assert listed.data.total_items == 1, listed
print(json.dumps({'token': token}))
"#;

/// Deletes the assignment; then, as the deployer, tries to create a role; prints the 403.
const REVOKE: &str = r#"
import json, sys
import harness_open_api as h
from harness_open_api.rest import ApiException
def client(token):
    conf = h.Configuration()
    conf.host = sys.argv[1]
    conf.api_key = {'x-api-key': token}
    return h.ApiClient(conf)
scope = dict(org_identifier='ops', project_identifier='web')
deleted = h.RoleAssignmentsApi(client(sys.argv[2])).delete_role_assignment('acme', 'ra_deployer', **scope)
assert deleted.data.role_assignment.identifier == 'ra_deployer', deleted
try:
    h.RolesApi(client(sys.argv[3])).post_role(h.Role(identifier='x', name='x', permissions=[]), 'acme', **scope)
    print(json.dumps({'status': 200}))
except ApiException as e:
    print(json.dumps({'status': e.status, 'body': json.loads(e.body)}))
"#;

async fn deployer_may_view_pipelines(sidecar: &http::HttpServer, token: &str) -> bool {
    let body = serde_json::json!({"permissions": [{
        "resourceScope": {"accountIdentifier": "acme", "orgIdentifier": "ops", "projectIdentifier": "web"},
        "resourceType": "PIPELINE", "permission": "core_pipeline_view"}]});
    let reply = http::send(
        sidecar.addr,
        "POST",
        "/authz/api/acl",
        &[("x-api-key", token), ("content-type", "application/json")],
        Some(body.to_string()),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["data"]["accessControlList"][0]["permitted"] == true
}

fn last_json(output: &std::process::Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_manages_access_and_the_sidecar_follows_within_a_second() {
    let admin = mint("acme", TokenKind::Sat, Some("admintok")).unwrap();
    let dir = TempDir::new("mgmt-e2e");
    write_atomic(&dir.join("acme.yaml"), &SEED.replace("HASH", &admin.secret_hash));
    let cp = Process::control_plane(&dir.0, "127.0.0.1:0", &["--audit", "off"]);
    let host = format!("http://{}", cp.management.expect("the management API's address"));

    let created = python::run(CREATE, &[&host, &admin.token], &[]);
    let token = last_json(&created)["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("sat.acme."), "{token}");

    let server =
        http::HttpServer::start(sidecar(remote(&cp.url())), scopegate::http::HttpOptions::admin()).await;
    eventually(Duration::from_secs(5), "the new token allowed", async || {
        deployer_may_view_pipelines(&server, &token).await
    })
    .await;

    let revoked = python::run(REVOKE, &[&host, &admin.token, &token], &[]);
    let took = eventually(
        Duration::from_secs(1),
        "the token denied after the deletion",
        async || !deployer_may_view_pipelines(&server, &token).await,
    )
    .await;
    eprintln!("the deletion reached the sidecar's decision in {took:?}");

    let denied = last_json(&revoked);
    assert_eq!(denied["status"], 403, "{denied}");
    assert_eq!(denied["body"]["status"], "ERROR", "{denied}");
    assert_eq!(denied["body"]["code"], "NG_ACCESS_DENIED", "{denied}");
    assert_eq!(
        denied["body"]["failedPermissionChecks"][0]["permission"], "core_role_edit",
        "{denied}"
    );
    assert!(
        denied["body"]["message"]
            .as_str()
            .unwrap()
            .contains("Missing permission core_role_edit"),
        "{denied}"
    );
    server.stop().await;
}
