//! The management API in database mode, driven by Harness's own Python client (`harness-open-api`):
//! a throwaway PostgreSQL, `scopegate admin bootstrap` for the first token, a real `scopegate
//! control-plane --database` process; through the client, a user is added, put in a group, listed,
//! given a role assignment that the filter, the aggregate and the validation then read; the
//! bootstrap token's `validTo` is updated (and the same token keeps working); the user is removed.
//! The database then holds exactly what the client saw, one change-log row per write.
//!
//! The 2.0.1 client has the models of Harness's `/ng/api/user` endpoints but no method for them:
//! the script calls them through the client's own `ApiClient.call_api`, so the bodies are still
//! the client's serialization and the answers its deserialization (except `AddUsersResponse`,
//! whose generated model checks the map's keys against its values' enum and so refuses Harness's
//! own answer: that one is read as a plain object).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::common::cli;
use crate::common::control_plane::Process;
use crate::common::postgres::Postgres;
use crate::common::python;
use scopegate::control_plane::changes::AccountStore;
use scopegate::control_plane::postgres::{PgStore, connect};
use scopegate::rbac::Catalog;

const SCRIPT: &str = r#"
import json, sys
import harness_open_api as h
from harness_open_api.rest import ApiException
conf = h.Configuration()
conf.host = sys.argv[1]
conf.api_key = {'x-api-key': sys.argv[2]}
api = h.ApiClient(conf)
A = 'acme'
out = {}

def call(path, method, body=None, response_type=None):
    return api.call_api(path, method, {}, [('accountIdentifier', A)],
        {'Accept': 'application/json', 'Content-Type': 'application/json'}, body=body,
        response_type=response_type, auth_settings=['x-api-key'], _return_http_data_only=True)

# the client's AddUsersResponse checks the map's keys (e-mails) against its values' enum, so it
# refuses Harness's own answer: read that one as a plain object
added = call('/ng/api/user/users', 'POST', h.AddUsersDTO(emails=['Dana@Example.com']), 'object')
out['added'] = added['data']['addUserResponseMap']

groups = h.UserGroupApi(api)
out['group'] = groups.post_user_group(h.UserGroup(identifier='oncall', name='On call',
                                                  account_identifier=A), A).data.identifier
out['members'] = groups.put_member(A, 'oncall', 'dana@example.com').data.users
in_group = groups.get_user_list_in_user_group(A, 'oncall', body=h.UserFilter(search_term='DANA'))
out['in_group'] = [u.email for u in in_group.data.content]
users = call('/ng/api/user/aggregate', 'POST', h.ACLAggregateFilter(),
             'ResponseDTOPageResponseUserAggregate')
out['users'] = sorted(u.user.uuid for u in users.data.content)

tokens = h.TokenApi(api)
key, ident = 'bootstrap_root', 'bootstrap_' + sys.argv[2].split('.')[2]
updated = tokens.update_token(A, ident, body=h.Token(identifier=ident, name='Root CLI',
    api_key_identifier=key, parent_identifier='root', api_key_type='USER', account_identifier=A,
    valid_to=4102444800000)).data
out['updated'] = {'name': updated.name, 'valid_to': updated.valid_to, 'valid': updated.valid}
listed = tokens.list_aggregated_tokens(A, 'USER', parent_identifier='root', api_key_identifier=key)
out['stored_valid_to'] = [t.token.valid_to for t in listed.data.content]

ras = h.RoleAssignmentsApi(api)
dana = h.AuthzPrincipal(identifier='dana@example.com', type='USER')
ras.post_role_assignment(h.AuthzRoleAssignment(identifier='ra_dana', role_identifier='_account_viewer',
    resource_group_identifier='_all_account_level_resources', principal=dana), A)
found = ras.get_filtered_role_assignment_list(h.RoleAssignmentFilter(principal_filter=[dana]), A,
                                              page_index=0, page_size=10).data
out['filtered'] = {'ids': [r.role_assignment.identifier for r in found.content],
                   'total': found.total_items, 'pages': found.total_pages}
aggregate = ras.get_role_assignment_aggregate_list(
    h.RoleAssignmentFilter(principal_type_filter=['USER']), A).data
out['aggregate'] = {'assignments': sorted(a.identifier for a in aggregate.role_assignments),
                    'roles': sorted(r.role.identifier for r in aggregate.roles),
                    'account': aggregate.scope.account_identifier}
checked = ras.validate_role_assignment(h.RoleAssignmentValidationRequest(
    role_assignment=h.AuthzRoleAssignment(role_identifier='no_such_role',
        resource_group_identifier='_all_account_level_resources', principal=dana),
    validate_principal=True, validate_role=True, validate_resource_group=True), A).data
out['validated'] = {'principal': checked.principal_validation_result.valid,
                    'role': checked.role_validation_result.valid,
                    'role_error': checked.role_validation_result.error_message}

out['removed'] = call('/ng/api/user/dana@example.com', 'DELETE', None, 'ResponseDTOBoolean').data
try:
    call('/ng/api/user/users', 'POST', h.AddUsersDTO(emails=['not-an-email']), 'object')
    out['refused'] = None
except ApiException as e:
    out['refused'] = {'status': e.status, 'body': json.loads(e.body)}
print(json.dumps(out))
"#;

/// `scopegate ARGS`, which must succeed: what it printed on stdout, trimmed.
fn scopegate(args: &[&str]) -> String {
    let out = cli::scopegate(args);
    assert!(out.status.success(), "{}", cli::stderr(&out));
    cli::stdout(&out).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_manages_users_tokens_and_assignments_on_a_database() {
    let pg = Postgres::start();
    let url = pg.create("cp");
    let root = scopegate(&[
        "admin",
        "bootstrap",
        "--database",
        &url,
        "--account",
        "acme",
        "--user",
        "root",
    ]);
    let cp = Process::database(&url, "127.0.0.1:0", &["--audit", "off"]);
    let host = format!("http://{}", cp.management.expect("the management API's address"));
    let output = {
        let (host, root) = (host.clone(), root.clone());
        tokio::task::spawn_blocking(move || python::run(SCRIPT, &[&host, &root], &[]))
            .await
            .unwrap()
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();

    assert_eq!(
        seen["added"],
        json!({"dana@example.com": "USER_ADDED_SUCCESSFULLY"})
    );
    assert_eq!(seen["group"], "oncall");
    assert_eq!(seen["members"], json!(["dana@example.com"]));
    assert_eq!(seen["in_group"], json!(["dana@example.com"]));
    assert_eq!(seen["users"], json!(["dana@example.com", "root"]));
    assert_eq!(
        seen["updated"],
        json!({"name": "Root CLI", "valid_to": 4_102_444_800_000_i64, "valid": true})
    );
    assert_eq!(seen["stored_valid_to"], json!([4_102_444_800_000_i64]));
    assert_eq!(
        seen["filtered"],
        json!({"ids": ["ra_dana"], "total": 1, "pages": 1})
    );
    assert_eq!(seen["aggregate"]["assignments"].as_array().unwrap().len(), 2);
    assert_eq!(
        seen["aggregate"]["roles"],
        json!(["_account_admin", "_account_viewer"])
    );
    assert_eq!(seen["aggregate"]["account"], "acme");
    assert_eq!(
        seen["validated"],
        json!({"principal": true, "role": false, "role_error": "unknown role `no_such_role`"})
    );
    assert_eq!(seen["removed"], true);
    let refused = &seen["refused"];
    assert_eq!(refused["status"], 400, "{seen}");
    assert_eq!(refused["body"]["code"], "INVALID_REQUEST");
    assert!(
        refused["body"]["message"]
            .as_str()
            .unwrap()
            .contains("`not-an-email` is not an e-mail"),
        "{refused}"
    );

    // the database holds what the client saw: the token extended with its id and secret unchanged,
    // the group emptied by the removal, nothing naming dana; one change-log row per write
    let pool = connect(&url, 2).await.unwrap();
    let store = PgStore::new(pool, Arc::new(Catalog::embedded().unwrap()));
    let document = store.read("acme").await.unwrap().unwrap();
    let token_id = root.split('.').nth(2).unwrap();
    let key = document
        .api_keys
        .iter()
        .find(|k| k.identifier == "bootstrap_root")
        .unwrap();
    assert_eq!(key.tokens.len(), 1);
    assert_eq!(key.tokens[0].id, token_id);
    assert_eq!(key.tokens[0].valid_to, "2100-01-01T00:00:00Z");
    let oncall = document
        .user_groups
        .iter()
        .find(|g| g.identifier == "oncall")
        .unwrap();
    assert!(oncall.users.is_empty(), "{oncall:?}");
    assert!(!format!("{document:?}").contains("dana"), "{document:?}");
    // bootstrap, add user, create group, add member, update token, assign, remove user
    assert_eq!(document.version, 7);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM change_log WHERE account = 'acme'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(rows, 7);
}
