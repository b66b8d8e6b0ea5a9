#!/usr/bin/env python3
"""Generate the default route table's generated section from data/harness-api/endpoints.tsv.

Writes the routes between the `# BEGIN GENERATED` / `# END GENERATED` markers of
deploy/routes/harness-ng.yaml and data/harness-api/excluded.tsv. Hand-written routes (above the
markers) win: an endpoint they already route is not generated again. Convention: see the table's
header and docs/formats.md, "Route table". Deterministic; needs PyYAML.

    python scripts/harness_routes.py
"""
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "deploy/routes/harness-ng.yaml"
BEGIN, END = "  # BEGIN GENERATED", "  # END GENERATED"

# module → permission prefix: first matching path regex wins. None = excluded (reason).
MODULES = [
    (r"^/har/", None, "artifact registry: no permission in the catalog"),
    (r"^/gateway/ssca-manager|/v1/orgs/\{org\}/projects/\{project\}/(artifacts?|signing|slsa-verification|sbom-drift|provenance|remediations|compliance-|orchestration|artifact-|code-repos|components|ci-cd|integration)", None, "SSCA: no permission in the catalog"),
    (r"dbops|dbschema|dbinstance", None, "database devops: no permission in the catalog"),
    (r"sei|/dora|/v1/org/|/v1/insights|collection|contributor", None, "SEI: no permission in the catalog"),
    (r"^/gatway/ssca-manager", None, "SSCA (Harness's path spells it `gatway`): no permission in the catalog"),
    (r"^/ng/api/serviceOverrides", "core_environment", ""),
    (r"^/ng/api/apikey|^/ng/api/token", "core_serviceaccount_manageapikey", ""),
    (r"^/ng/api/account-setting", "core_setting", ""),
    (r"^/ng/api/gitops", "gitops_agent", ""),
    (r"^/ng/api/filters", "AUTHENTICATED", "the caller's saved filters"),
    (r"^/v1/orgs/\{org\}/projects/\{project\}/exemptions", "sto_exemption", ""),
    (r"^/gitops/api/.*/applications?|applicationset", "gitops_application", ""),
    (r"^/gitops/api/.*/clusters", "gitops_cluster", ""),
    (r"^/gitops/api/.*/repositor|^/gitops/api/.*/repocreds", "gitops_repository", ""),
    (r"^/gitops/api/.*/gpgkeys", "gitops_gpgkey", ""),
    (r"^/gitops/api/.*/certificates", "gitops_cert", ""),
    (r"^/gitops/api", "gitops_agent", ""),
    (r"^/code/api", "code_repository", ""),
    (r"^/iacm/api", "iac_workspace", ""),
    (r"^/ccm/api/.*budget", "ccm_budget", ""),
    (r"^/ccm/api/.*(costCategor|business-mapping)", "ccm_costCategory", ""),
    (r"^/ccm/api/.*folder", "ccm_folder", ""),
    (r"^/ccm/api/.*perspective", "ccm_perspective", ""),
    (r"^/gateway/lw/.*(loadbalancer|load_balancer|access_points)", "ccm_loadBalancer", ""),
    (r"^/gateway/lw", "ccm_autoStoppingRule", ""),
    (r"^/ccm/api", "ccm_overview", ""),
    (r"^/cv/api/.*slo", "chi_slo", ""),
    (r"^/cv/api", "chi_monitoredservice", ""),
    (r"^/sto/api/.*exemption", "sto_exemption", ""),
    (r"^/sto/api/.*(target)", "sto_testtarget", ""),
    (r"^/sto/api/.*scan", "sto_scan", ""),
    (r"^/sto/api", "sto_issue", ""),
    (r"^/cf/admin/.*segments", "ff_targetgroup", ""),
    (r"^/cf/admin/.*targets", "ff_target", ""),
    (r"^/cf/admin/.*(environments|apikey)", "ff_environment", ""),
    (r"^/cf/admin", "ff_featureflag", ""),
    (r"^/pm/api/.*policysets", "core_governancePolicySets", ""),
    (r"^/pm/api", "core_governancePolicy", ""),
    (r"input-?sets|inputSets|^/pipeline/api|/pipelines", "core_pipeline", ""),
    (r"templates?", "core_template", ""),
    (r"environment-?groups?|environmentGroup", "core_environmentgroup", ""),
    (r"infrastructure|environment|/overrides", "core_environment", ""),
    (r"services?V2|/services|servicesV2", "core_service", ""),
    (r"connector", "core_connector", ""),
    (r"secret", "core_secret", ""),
    (r"variable", "core_variable", ""),
    (r"file-?store", "core_file", ""),
    (r"freeze", "core_deploymentfreeze", ""),
    (r"delegate-?config|delegate-profile", "core_delegateconfiguration", ""),
    (r"delegate", "core_delegate", ""),
    (r"role-?assignments", "AUTHENTICATED", "role assignment: the body's principal decides; Harness checks"),
    (r"/roles", "core_role", ""),
    (r"resource-?groups?", "core_resourcegroup", ""),
    (r"user-?groups?|/groups", "core_usergroup", ""),
    (r"serviceaccount|service-accounts", "core_serviceaccount", ""),
    (r"/invites?", "core_user_invite", ""),
    (r"/user", "core_user", ""),
    (r"authentication-settings|ldap|saml|oauth", "core_authsetting", ""),
    (r"smtp", "core_smtp", ""),
    (r"licen[cs]e|credit|moduleAccess|licensedModules", "core_license", ""),
    (r"audit", "core_audit", ""),
    (r"settings|ip-allowlist|banners", "core_setting", ""),
    (r"dashboard", "core_dashboards", ""),
    (r"/chaos", "chaos_chaosexperiment", ""),
    (r"scorecard|/scores|/checks|data-sources|data-points", "idp_scorecard", ""),
    (r"/layout|home-page-layout", "idp_layout", ""),
    (r"plugin", "idp_plugin", ""),
    (r"backstage-permissions|catalog-access", "idp_catalogaccesspolicy", ""),
    (r"backstage-env-variables|app-config|merged-plugins-config|configuration-entities", "idp_advancedconfiguration", ""),
    (r"/entities|/catalog|entity-facets|idp", "idp_integration", ""),
    (r"^/ng/api/organizations|^/v1/orgs(/\{org\})?$", "core_organization", ""),
    (r"^/ng/api/projects|^/v1/orgs/\{org\}/projects(/\{project\})?$|^/v1/projects", "core_project", ""),
    (r"/accounts", "core_account", ""),
    (r"webhook|/gitx|git-?sync|git-x", None, "Git Experience webhooks and sync: no permission in the catalog"),
    (r"notification", None, "notification rules and channels: no permission in the catalog"),
    (r"/me$|/me/|favorites|/eula|auth-info|onboarding|token|oidc", "AUTHENTICATED", "the caller's own data"),
]
PUBLIC = r"webhook/trigger|/public-access|/health$|/version$"
VIEWISH = re.compile(r"list|filter|search|aggregate|query|stats|summary|count|get|fetch|validate|preview|export|compare|diff|details|/graph|download", re.I)
QUERY_OP = re.compile(r"^(get|list|fetch)_|_summary$|_counts?$")
EXECUTE = re.compile(r"execut|retry|rerun|interrupt|/run|trigger|abort|approve|review", re.I)


def action(method, path, op):
    if method == "DELETE":
        return "delete"
    if method == "GET":
        return "view"
    tail = path.rsplit("/", 1)[-1] + " " + op
    if re.search(r"sync", tail, re.I):
        return "sync"
    if method == "POST" and QUERY_OP.search(op):
        return "view"  # a query sent as POST (Harness names it get_/list_/fetch_, or a summary or count)
    if EXECUTE.search(tail):
        return "execute"
    if method == "POST" and VIEWISH.search(tail) and not re.search(r"create|save|update", op):
        return "view"
    if method == "POST" and not path.endswith("}"):
        return "create"
    return "edit"


FALLBACK = {
    "view": ["view"],
    "create": ["create", "edit", "manage"],
    "edit": ["edit", "manage"],
    "delete": ["delete", "manage", "edit"],
    "execute": ["execute", "trigger", "toggle", "approve", "edit", "manage"],
    "sync": ["sync", "edit"],
}


def sanitize(path):
    """Route template for a real path: dots etc. in capture names become `_`; a segment with
    several captures or a capture plus literal text becomes one capture of the whole segment."""
    out = []
    for seg in path.split("/"):
        caps = re.findall(r"\{([^}]*)\}", seg)
        if caps and seg != "{" + caps[0] + "}" or len(caps) > 1:
            out.append("{" + "_".join(re.sub(r"\W", "_", c) for c in caps) + "}")
        elif caps:
            out.append("{" + re.sub(r"\W", "_", caps[0]) + "}")
        else:
            out.append(seg)
    joined = "/".join(out)
    return joined.rstrip("/") or "/"


def shape(path):
    return re.sub(r"\{[^}]*\}", "{}", path)


def main():
    catalog = {p["id"] for p in yaml.safe_load((ROOT / "data/catalog.yaml").read_text())["permissions"]}
    text = TABLE.read_text()
    head = text.split(BEGIN)[0].rstrip("\n") + "\n"
    hand = yaml.safe_load(head)["routes"]
    routed = set()
    hand_open = {}  # hand-written routes that need no permission: still listed as excluded, with why
    names = {}  # (method, shape prefix) -> capture name, to keep one name per router position
    for r in hand:
        ms = r["method"] if isinstance(r["method"], list) else [r["method"]]
        for m in ms:
            routed.add((m, shape(r["path"])))
            if r.get("authenticated") or r.get("public"):
                hand_open[(m, shape(r["path"]))] = "authenticated" if r.get("authenticated") else "public"
            remember(names, m, r["path"])
    rows = [l.rstrip("\n").split("\t") for l in (ROOT / "data/harness-api/endpoints.tsv").open() if not l.startswith("#")][1:]
    seen, lines, excluded, pins = set(), [], [], []
    hand_routed = set(routed)
    for method, path, op, tag in rows:
        if (method, path) in seen:
            continue
        seen.add((method, path))
        tmpl = rename(names, method, sanitize(path))
        if (method, shape(tmpl)) in hand_open:
            kind = hand_open[(method, shape(tmpl))]
            why = "carries its own secret or is public in Harness" if kind == "public" else "written by hand: the request's body or the caller decides"
            excluded.append((method, path, f"routed {kind}: {why}"))
        if (method, shape(tmpl)) in routed:
            pins.append((method, path, "hand-written" if (method, shape(tmpl)) in hand_routed else "duplicate"))
            continue
        if re.search(PUBLIC, path):
            excluded.append((method, path, "routed public: carries its own secret or is public in Harness"))
            lines.append(f"  - {{method: {method}, path: '{tmpl}', public: true}}  # {tag}")
            pins.append((method, path, "public"))
            routed.add((method, shape(tmpl)))
            continue
        prefix, reason = None, "no permission in the catalog for this module"
        for rx, p, why in MODULES:
            if re.search(rx, path):
                prefix, reason = p, why or reason
                break
        if prefix is None:
            excluded.append((method, path, reason))
            continue
        if prefix == "AUTHENTICATED":
            excluded.append((method, path, "routed authenticated: " + reason))
            lines.append(f"  - {{method: {method}, path: '{tmpl}', authenticated: true}}  # {tag}")
            pins.append((method, path, "authenticated"))
            routed.add((method, shape(tmpl)))
            continue
        act = action(method, path, op)
        perm = None
        if prefix in catalog:  # a full permission (core_user_invite)
            perm = prefix
        else:
            for a in FALLBACK[act]:
                if f"{prefix}_{a}" in catalog:
                    perm = f"{prefix}_{a}"
                    break
        if prefix in RESOURCE_AFTER and act in ("create", "edit", "delete") and child_of_resource(path, RESOURCE_AFTER[prefix]):
            # a child of a repository or workspace (webhook, branch, variable) edits its parent
            act = "push" if prefix == "code_repository" and re.search(r"branches|tags|commits|content|pullreq|merge|rule", path) else "edit"
            perm = f"{prefix}_{act}"
        if prefix == "core_pipeline" and re.search(r"input-?sets|inputSets", path) and act in ("create", "edit", "delete"):
            perm = "core_pipeline_edit"  # input sets are part of the pipeline: Harness checks pipeline edit
        if prefix == "core_environment" and re.search(r"infrastructure|[Oo]verride", path) and act in ("create", "edit", "delete"):
            perm = "core_environment_edit"  # infrastructures and overrides belong to their environment
        if perm == "code_repository_delete" and not re.search(r"/repos/\{[^}]*\}$", path):
            perm = "code_repository_edit"  # deleting a webhook, rule or label edits the repository
        if prefix == "iac_workspace" and "/variables" in path and act in ("create", "edit", "delete"):
            perm = "iac_workspace_deletevariable" if act == "delete" else "iac_workspace_editvariable"
        if perm is None:
            excluded.append((method, path, f"no {prefix} permission for {act}"))
            continue
        lines.append(route_line(method, tmpl, perm, act, tag))
        pins.append((method, path, perm))
        routed.add((method, shape(tmpl)))
    body = "\n".join(lines)
    TABLE.write_text(f"{head}\n{BEGIN} by scripts/harness_routes.py from data/harness-api/endpoints.tsv: do not edit by hand\n{body}\n{END}\n")
    with (ROOT / "data/harness-api/excluded.tsv").open("w") as f:
        f.write("method\tpath\treason\n")
        for e in sorted(excluded):
            f.write("\t".join(e) + "\n")
    with (ROOT / "data/harness-api/generated-pins.tsv").open("w") as f:
        f.write("method\tpath\texpected\n")
        for e in sorted(pins):
            f.write("\t".join(e) + "\n")
    print(f"{len(lines)} generated routes, {len(excluded)} excluded", file=sys.stderr)


def remember(names, method, path):
    segs = path.split("/")
    for i, s in enumerate(segs):
        if s.startswith("{"):
            key = (method, shape("/".join(segs[:i])))
            names.setdefault(key, s)


def rename(names, method, path):
    segs = path.split("/")
    for i, s in enumerate(segs):
        if s.startswith("{"):
            key = (method, shape("/".join(segs[:i])))
            cand = names.setdefault(key, s)
            if cand.startswith("{*") == s.startswith("{*"):
                segs[i] = cand
    # a capture name repeated within one path is invalid: suffix the later ones
    used = set()
    for i, s in enumerate(segs):
        if s.startswith("{"):
            n = s
            k = 2
            while n in used:
                n = s[:-1] + f"_{k}" + "}"
                k += 1
            used.add(n)
            segs[i] = n
    return "/".join(segs)


def child_of_resource(path, anchor):
    segs = sanitize(path).split("/")
    for i, seg in enumerate(segs[:-2]):
        if seg == anchor and segs[i + 1].startswith("{"):
            return True
    return False


# Resources addressed by a parent capture: the id is the capture after this literal segment.
RESOURCE_AFTER = {"core_pipeline": "pipelines", "core_environment": "environments", "code_repository": "repos", "iac_workspace": "workspaces", "gitops_agent": "agents"}


def route_line(method, tmpl, perm, act, tag):
    segs = tmpl.split("/")
    caps = [s[1:-1] for s in segs if s.startswith("{")]
    scope = None
    org = proj = acct = None
    for i, s in enumerate(segs[:-1]):
        nxt = segs[i + 1]
        if s == "account" and nxt.startswith("{") and tmpl.startswith("/cv/api"):
            acct = nxt[1:-1]
        if s == "org" and nxt.startswith("{") and tmpl.startswith("/cv/api"):
            org = nxt[1:-1]
        if s == "project" and nxt.startswith("{") and org and tmpl.startswith("/cv/api"):
            proj = nxt[1:-1]
        if s in ("orgs", "organizations") and nxt.startswith("{") and not tmpl.startswith("/ng/"):
            org = nxt[1:-1]
        if s == "projects" and nxt.startswith("{") and org and not tmpl.startswith("/ng/"):
            proj = nxt[1:-1]
        if s == "accounts" and nxt.startswith("{") and tmpl.startswith("/gateway/lw"):
            acct = nxt[1:-1]
    parts = []
    if acct and org and proj:
        scope = f"{{account: [{{path: {acct}}}, {{header: harness-account}}, {{query: accountIdentifier}}, credential], org: [{{path: {org}}}], project: [{{path: {proj}}}]}}"
    elif org and proj:
        scope = f"{{org: [{{path: {org}}}], project: [{{path: {proj}}}]}}"
    elif org:
        scope = f"{{org: [{{path: {org}}}]}}"
    elif acct:
        scope = f"{{account: [{{path: {acct}}}, {{header: harness-account}}, {{query: accountIdentifier}}, credential]}}"
    elif tmpl.startswith(("/v1/", "/v2/")):
        scope = "{}"
    res = None
    last = segs[-1]
    anchor = RESOURCE_AFTER.get(perm.rsplit("_", 1)[0])
    if anchor:
        for i, seg in enumerate(segs[:-1]):
            if seg == anchor and segs[i + 1].startswith("{") and not segs[i + 1].startswith("{*"):
                res = segs[i + 1]
        if res and act == "create" and segs[-1] == res:
            res = None
    elif last.startswith("{") and not last.startswith("{*") and act != "create" and last[1:-1] not in (org, proj, acct):
        res = last
    elif act in ("execute", "sync") and len(segs) > 2 and segs[-2].startswith("{") and not segs[-2].startswith("{*") and segs[-2][1:-1] not in (org, proj, acct):
        res = segs[-2]
    out = f"  - {{method: {method}, path: '{tmpl}', permission: {perm}"
    if res:
        out += f', resource: {{id: "{res}"}}'
    if scope:
        out += f", scope: {scope}"
    return out + f"}}  # {tag}"


if __name__ == "__main__":
    main()
