//! The command line as scripts use it: `validate`, `check` and `token new`, their output and exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

use crate::common::cli::{scopegate, stderr, stdout, temp_file};

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/examples/snapshots/demo.yaml");
const ROUTES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/routes/harness-ng.yaml");

fn check(args: &[&str]) -> Output {
    let mut all = vec!["check", "--snapshot", DEMO];
    all.extend_from_slice(args);
    scopegate(&all)
}

#[test]
fn validate_accepts_the_demo_and_the_default_routes() {
    let out = scopegate(&["validate", DEMO, ROUTES]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("valid snapshot of account `acme` version 1"),
        "{text}"
    );
    assert!(text.contains("valid route table"), "{text}");
}

#[test]
fn validate_lists_every_error_and_exits_1() {
    let demo = std::fs::read_to_string(DEMO).unwrap();
    let broken = demo
        .replace("role: pipeline_runner", "role: pipeline_runnr")
        .replace(
            "core_service_view, core_service_access]",
            "core_service_view, core_account_edit]",
        );
    let path = temp_file("broken.yaml", &broken);
    let out = scopegate(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let errors = stderr(&out);
    assert!(errors.contains("role `deployer` in `acme/eng/payments`: permission `core_account_edit` is not allowed at PROJECT level"), "{errors}");
    assert!(
        errors.contains(
            "role assignment `ra_bob_runner` in `acme/eng/payments`: unknown role `pipeline_runnr`"
        ),
        "{errors}"
    );
    assert_eq!(errors.lines().count(), 2, "{errors}");
}

#[test]
fn validate_rejects_unknown_fields_and_unknown_kinds() {
    let path = temp_file("unknown.yaml", "account: acme\nversion: 1\ncolour: blue\n");
    let out = scopegate(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unknown field `colour`"),
        "{}",
        stderr(&out)
    );
    let path = temp_file("other.yaml", "hello: world\n");
    let out = scopegate(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a snapshot"), "{}", stderr(&out));
}

#[test]
fn check_allow_prints_the_grant_and_exits_0() {
    let out = check(&[
        "--principal",
        "USER:alice",
        "--scope",
        "acme/eng/payments",
        "--permission",
        "core_pipeline_execute",
        "--resource",
        "PIPELINE/deploy_prod",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("ALLOW"));
    assert_eq!(
        lines.next(),
        Some(
            "granted by assignment `ra_eng_leads_admin` in `acme/eng`: role `_organization_admin`, resource group `_all_resources_including_child_scopes`, through user group `eng_leads` of `acme/eng`"
        )
    );
}

#[test]
fn check_deny_prints_the_failed_check_and_exits_1() {
    let out = check(&[
        "--principal",
        "USER:bob",
        "--scope",
        "acme/eng/payments",
        "--permission",
        "core_pipeline_execute",
        "--resource",
        "PIPELINE/other",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "DENY\nno_matching_grant: permission `core_pipeline_execute`, scope `acme/eng/payments`, resource type `PIPELINE`, identifier `other`\n"
    );
}

#[test]
fn check_token_subset_and_service_accounts() {
    let out = check(&[
        "--principal",
        "SERVICE_ACCOUNT:ci_bot",
        "--scope",
        "acme/eng/payments",
        "--permission",
        "core_pipeline_execute",
        "--token-permissions",
        "core_pipeline_view,core_service_view",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with("DENY\ntoken_permission_subset"),
        "{}",
        stdout(&out)
    );
    let out = check(&[
        "--principal",
        "SERVICE_ACCOUNT:eng/ci_bot",
        "--scope",
        "acme/eng/payments",
        "--permission",
        "core_pipeline_execute",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn check_bad_input_exits_2_with_one_line() {
    for (args, message) in [
        (
            vec![
                "--principal",
                "USER:zed",
                "--scope",
                "acme",
                "--permission",
                "core_account_view",
            ],
            "unknown principal `USER:zed`",
        ),
        (
            vec![
                "--principal",
                "ROBOT:x",
                "--scope",
                "acme",
                "--permission",
                "core_account_view",
            ],
            "is not `USER:<id>`",
        ),
        (
            vec![
                "--principal",
                "USER:alice",
                "--scope",
                "globex",
                "--permission",
                "core_account_view",
            ],
            "not in account `acme`",
        ),
        (
            vec![
                "--principal",
                "USER:alice",
                "--scope",
                "acme/nope",
                "--permission",
                "core_account_view",
            ],
            "unknown scope `acme/nope`",
        ),
        (
            vec![
                "--principal",
                "USER:alice",
                "--scope",
                "acme",
                "--permission",
                "core_acount_view",
            ],
            "unknown permission `core_acount_view`",
        ),
        (
            vec![
                "--principal",
                "USER:alice",
                "--scope",
                "acme",
                "--permission",
                "core_account_view",
                "--resource",
                "PLANET/x",
            ],
            "unknown resource type `PLANET`",
        ),
    ] {
        let out = check(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains(message), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(stdout(&out).is_empty());
    }
}

#[test]
fn token_new_prints_a_token_and_its_snapshot_entry() {
    let out = scopegate(&[
        "token",
        "new",
        "--account",
        "acme",
        "--type",
        "sat",
        "--id",
        "deploy01",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let token = text.lines().next().unwrap();
    assert!(token.starts_with("sat.acme.deploy01."), "{token}");
    let secret = token.rsplit('.').next().unwrap();
    assert!(secret.len() >= 32);
    assert!(
        !text.lines().skip(1).any(|line| line.contains(secret)),
        "the secret appears only in the token"
    );
    assert!(text.contains("  id: deploy01"), "{text}");
    assert!(text.contains("  secret_hash: \"sha256:"), "{text}");

    // The printed entry, pasted into a snapshot, authenticates the printed token.
    let entry: String = text.lines().skip(2).map(|l| format!("      {l}\n")).collect();
    let demo = std::fs::read_to_string(DEMO).unwrap();
    let snapshot = format!(
        "{demo}  - identifier: new_key\n    parent: {{type: SERVICE_ACCOUNT, identifier: ci_bot, scope: {{org: eng}}}}\n    tokens:\n{entry}"
    );
    let path = temp_file("with-token.yaml", &snapshot);
    let out = scopegate(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("6 tokens"), "{}", stdout(&out));
}

#[test]
fn token_new_refuses_bad_input() {
    let out = scopegate(&["token", "new", "--account", "ac.me", "--type", "pat"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid account `ac.me`"),
        "{}",
        stderr(&out)
    );
    let out = scopegate(&["token", "new", "--account", "acme", "--type", "xat"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_catalog_file_replaces_the_embedded_one() {
    let catalog = temp_file(
        "catalog.yaml",
        "permissions:\n  - {id: core_pipeline_view, resource_type: PIPELINE, levels: [ACCOUNT, ORGANIZATION, PROJECT]}\n",
    );
    // The demo names permissions this small catalog does not know: validation says so.
    let out = scopegate(&["validate", "--catalog", catalog.to_str().unwrap(), DEMO]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unknown permission `core_pipeline_execute`"),
        "{}",
        stderr(&out)
    );
    let bad = temp_file("bad-catalog.yaml", "permissions: [{id: x}]\n");
    let out = scopegate(&["validate", "--catalog", bad.to_str().unwrap(), DEMO]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_decides_for_the_holder_of_an_api_token_or_a_jwt() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/examples/config.yaml");
    let alice_jwt = concat!("@", env!("CARGO_MANIFEST_DIR"), "/deploy/examples/jwt/alice.jwt");
    let dave_jwt = concat!("@", env!("CARGO_MANIFEST_DIR"), "/deploy/examples/jwt/dave.jwt");
    let execute = [
        "--scope",
        "acme/eng/payments",
        "--permission",
        "core_pipeline_execute",
    ];
    let run = |token: &str, config: Option<&str>| {
        let mut args = vec!["--token", token];
        if let Some(config) = config {
            args.extend(["--config", config]);
        }
        args.extend(execute);
        check(&args)
    };
    let out = run(alice_jwt, Some(config));
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).starts_with("ALLOW\n"));
    let out = run(dave_jwt, Some(config));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "DENY\ncredential refused: jwt principal is disabled\n"
    );
    let out = run("pat.acme.alicetok01.AliceDemoSecret01", None);
    assert_eq!(out.status.code(), Some(0));
    // the read-only CI token's subset lacks execute
    let out = run("sat.acme.citokro01.CiBotReadOnlySecret01", None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("token_permission_subset"));
    let out = run("pat.acme.alicetok01.WrongSecret", None);
    assert_eq!(
        stdout(&out),
        "DENY\ncredential refused: api token secret does not match\n"
    );
    // a jwt without a configuration naming its issuer is bad input, not a denial
    let out = run(alice_jwt, None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--config"), "{}", stderr(&out));
}

#[test]
fn serve_refuses_bad_flags_at_start_not_at_request_time() {
    // a control-plane address without a scheme used to be accepted and fail every request later
    for (args, expected) in [
        (
            &["serve", "--control-plane", "127.0.0.1:9300"][..],
            "snapshot.control_plane.url",
        ),
        (&["serve", "--client-ca", "ca.pem"][..], "--client-ca"),
        (&["serve", "--log-format", "xml"][..], "xml"),
        // a mistyped snapshot path used to leave the server not ready, warning once a second
        (
            &["serve", "--snapshots", "/nonexistent/snapshots"][..],
            "--wait-for-snapshots",
        ),
    ] {
        let out = scopegate(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn version_help_and_completions_serve_a_shell_user() {
    let version = stdout(&scopegate(&["--version"]));
    assert!(version.starts_with("scopegate 0."), "{version}");
    assert!(
        version.contains("(commit "),
        "--version names the commit: {version}"
    );
    let help = stdout(&scopegate(&["--help"]));
    assert!(help.contains("Exit codes:"), "{help}");
    for command in [
        "validate",
        "check",
        "token",
        "serve",
        "control-plane",
        "completions",
    ] {
        let out = scopegate(&[command, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{command}");
        assert!(
            stdout(&out).contains("Example"),
            "`{command} --help` shows no example"
        );
    }
    for shell in ["bash", "zsh", "fish"] {
        let out = scopegate(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        assert!(
            stdout(&out).contains("control-plane"),
            "{shell}: no subcommand in the script"
        );
    }
    assert_eq!(scopegate(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn a_configuration_means_the_same_from_any_folder_and_validate_finds_missing_files() {
    // relative paths resolve against the configuration's folder: the example validates from /
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/examples/config.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(["validate", example])
        .current_dir("/")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // a named file that does not exist is an error of `validate`, listed with the others
    let broken = temp_file(
        "missing-files.yaml",
        "routes: no-such-routes.yaml\ncache: {tokens: 0}\ntls: {cert: no.pem, key: no.key}\n",
    );
    let out = scopegate(&["validate", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let errors = stderr(&out);
    for expected in [
        "cache.tokens",
        "`routes`",
        "`tls.cert`",
        "`tls.key`",
        "no-such-routes.yaml",
    ] {
        assert!(errors.contains(expected), "no `{expected}` in {errors}");
    }
}
