"""Drives scopegate's `POST /authz/api/acl` with Harness's official Python client
(`harness_open_api.AccessControlListApi`) and prints, as JSON, what the client saw.

Usage: python - HOST CASES_JSON
  HOST        e.g. http://127.0.0.1:9193
  CASES_JSON  [{"name", "token", "principal": {...} | null, "permissions": [...]}]
              with `principal` and `permissions` in the client's own attribute names
              (identifier/type/scope_level/unique_id; resource_scope/resource_type/...).

Output: {name: outcome}, an outcome being either
  {"ok": true, "type": class name, "status", "correlation_id", "meta_data",
   "principal": {identifier, type, scope_level, unique_id, class},
   "acl": [{permission, permitted, resource_type, resource_identifier, resource_scope, class}]}
or
  {"ok": false, "exception": class name, "status", "reason", "body": parsed JSON,
   "www_authenticate", "content_type", "failure": the body read as the client's `Failure` model
   (or the error the model raised)}.
"""

import json
import sys

import harness_open_api
from harness_open_api.rest import ApiException


def scope_dict(scope):
    if scope is None:
        return None
    return {
        "account_identifier": scope.account_identifier,
        "org_identifier": scope.org_identifier,
        "project_identifier": scope.project_identifier,
        "class": type(scope).__name__,
    }


def client(host, token):
    configuration = harness_open_api.Configuration()
    configuration.host = host
    # `Configuration()` is a shallow copy of one default, so its `api_key` dict is shared by every
    # instance: give each client its own.
    configuration.api_key = {} if token is None else {"x-api-key": token}
    return harness_open_api.ApiClient(configuration)


class Body:
    """What `ApiClient.deserialize` reads from a response: its `data`."""

    def __init__(self, data):
        self.data = data


def request_of(case):
    principal = None
    if case.get("principal") is not None:
        principal = harness_open_api.AuthzPrincipal(**case["principal"])
    permissions = []
    for check in case["permissions"]:
        check = dict(check)
        check["resource_scope"] = harness_open_api.ResourceScope(**check["resource_scope"])
        permissions.append(harness_open_api.PermissionCheck(**check))
    return harness_open_api.AccessCheckRequest(permissions=permissions, principal=principal)


def run(host, case):
    api_client = client(host, case.get("token"))
    api = harness_open_api.AccessControlListApi(api_client)
    try:
        answer = api.get_access_control_list(request_of(case))
    except ApiException as error:
        text = error.body.decode() if isinstance(error.body, bytes) else error.body
        try:
            failure = api_client.deserialize(Body(text), "Failure").to_dict()
        except ValueError as refused:
            failure = {"refused": str(refused)}
        headers = error.headers or {}
        return {
            "ok": False,
            "exception": type(error).__name__,
            "status": error.status,
            "reason": error.reason,
            "body": json.loads(text),
            "www_authenticate": headers.get("www-authenticate"),
            "content_type": headers.get("content-type"),
            "failure": failure,
        }
    data = answer.data
    principal = data.principal
    return {
        "ok": True,
        "type": type(answer).__name__,
        "data_type": type(data).__name__,
        "status": answer.status,
        "correlation_id": answer.correlation_id,
        "meta_data": answer.meta_data,
        "principal": None
        if principal is None
        else {
            "identifier": principal.identifier,
            "type": principal.type,
            "scope_level": principal.scope_level,
            "unique_id": principal.unique_id,
            "class": type(principal).__name__,
        },
        "acl": [
            {
                "permission": entry.permission,
                "permitted": entry.permitted,
                "resource_type": entry.resource_type,
                "resource_identifier": entry.resource_identifier,
                "resource_scope": scope_dict(entry.resource_scope),
                "class": type(entry).__name__,
            }
            for entry in data.access_control_list
        ],
    }


def main():
    host, cases = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps({case["name"]: run(host, case) for case in cases}))


main()
