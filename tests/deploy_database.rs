//! deploy/kubernetes-database (the control plane on PostgreSQL, docs/deploy.md) holds together: its
//! patches name what deploy/kubernetes defines; the control plane's args are a real `scopegate
//! control-plane --database` command line whose URL comes from the database Secret (never written
//! in the manifest) and whose ports are the container's and the Service's; the example Secret is a
//! marked placeholder with no password in its URL; the bootstrap Job is a real `admin bootstrap` on
//! the same Secret for the account the sidecars load. Built with `kubectl kustomize`, the overlay is
//! the folder mode with only the control plane changed, hardened, spread over nodes, under a
//! PodDisruptionBudget; those checks are skipped, with a note on stderr, where kubectl is missing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::str::FromStr;

use clap::Parser;
use scopegate::cli::admin::AdminCommand;
use scopegate::cli::control_plane::{ControlPlaneArgs, DEFAULT_MANAGEMENT_PORT};
use scopegate::cli::{Cli, Command};
use scopegate::config::{Config, DEFAULT_CONTROL_PLANE_PORT};
use serde_yaml_ng::Value;

use crate::kustomize_build::build_at;
use crate::manifests::check_pod;
use crate::manifests::{
    args, at, container, doc, docs, find, root, scopegate_config, seq_at, socket, str_at,
};

const OVERLAY: &str = "deploy/kubernetes-database";
const PATCH: &str = "deploy/kubernetes-database/control-plane.yaml";
const SECRET_EXAMPLE: &str = "deploy/kubernetes-database/database-secret.example.yaml";
const JOB: &str = "deploy/kubernetes-database/bootstrap/job.yaml";
const CONTROL_PLANE: &str = "scopegate-control-plane";
const TLS_SECRET: &str = "scopegate-control-plane-tls";

/// The example Secret: its name and its `stringData`.
fn example_secret() -> (String, HashMap<String, String>) {
    let secret = doc(SECRET_EXAMPLE);
    assert_eq!(str_at(&secret, "kind"), "Secret");
    let data = at(&secret, "stringData")
        .and_then(Value::as_mapping)
        .expect("the example Secret has no stringData")
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_owned(), v.as_str().unwrap().to_owned()))
        .collect();
    (str_at(&secret, "metadata.name").to_owned(), data)
}

/// A container's environment as the pod would see it, each `secretKeyRef` read from the example
/// Secret (which must be the Secret referred to, and hold the key); and the names taken from it.
fn environment(c: &Value) -> (HashMap<String, String>, BTreeSet<String>) {
    let (secret, data) = example_secret();
    let mut env = HashMap::new();
    let mut from_secret = BTreeSet::new();
    for var in seq_at(c, "env") {
        let name = str_at(var, "name").to_owned();
        let value = if let Some(value) = var.get("value") {
            value.as_str().unwrap().to_owned()
        } else {
            let reference = at(var, "valueFrom.secretKeyRef").unwrap_or_else(|| panic!("`{name}`: no value"));
            assert_eq!(str_at(reference, "name"), secret, "`{name}` reads another Secret");
            let key = str_at(reference, "key");
            from_secret.insert(name.clone());
            data.get(key)
                .unwrap_or_else(|| panic!("`{name}`: the Secret has no key `{key}`"))
                .clone()
        };
        env.insert(name, value);
    }
    (env, from_secret)
}

/// `arg` with each `$(NAME)` replaced as the kubelet does, from `env` (every name must be defined:
/// the kubelet leaves an undefined one as it is, which no flag would accept).
fn expand(arg: &str, env: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = arg;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find(')').map(|e| start + e).unwrap();
        let name = &rest[start + 2..end];
        out.push_str(
            env.get(name)
                .unwrap_or_else(|| panic!("`$({name})` is not in the env")),
        );
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The container's args, expanded, parsed as `scopegate`'s own command line.
fn command_line(c: &Value) -> Command {
    let (env, _) = environment(c);
    let expanded = args(c).iter().map(|a| expand(a, &env)).collect::<Vec<_>>();
    let line = std::iter::once("scopegate".to_owned()).chain(expanded.iter().cloned());
    Cli::try_parse_from(line)
        .unwrap_or_else(|e| panic!("{expanded:?} is not a scopegate command line: {e}"))
        .command
}

/// The database flag's raw arg: a `$(VAR)` of an env var read from the Secret, never a URL.
fn assert_database_from_secret(c: &Value) {
    let raw = args(c);
    let (_, from_secret) = environment(c);
    let (_, data) = example_secret();
    let i = raw
        .iter()
        .position(|a| *a == "--database")
        .expect("no --database");
    let var = raw[i + 1]
        .strip_prefix("$(")
        .and_then(|v| v.strip_suffix(')'))
        .unwrap_or_else(|| panic!("--database `{}` is written in the manifest", raw[i + 1]));
    assert!(from_secret.contains(var), "`{var}` is not read from the Secret");
    for arg in &raw {
        assert!(!arg.contains("://"), "a URL in the args: `{arg}`");
        assert!(!arg.contains(&data["password"]), "the password in the args");
    }
    // the password reaches the driver through PGPASSWORD, from the Secret
    assert!(
        from_secret.contains("PGPASSWORD"),
        "PGPASSWORD is not read from the Secret"
    );
}

fn control_plane_args(c: &Value) -> ControlPlaneArgs {
    match command_line(c) {
        Command::ControlPlane(args) => args,
        other => panic!("not `control-plane`: {other:?}"),
    }
}

fn check_control_plane_args(c: &Value) -> ControlPlaneArgs {
    let cp = control_plane_args(c);
    let (_, data) = example_secret();
    assert_eq!(cp.database.as_deref(), Some(data["url"].as_str()));
    assert_eq!(cp.source, None);
    assert!(!cp.insecure);
    assert!(cp.tls_cert.is_some() && cp.tls_key.is_some() && cp.client_ca.is_some());
    assert_eq!(socket(&cp.listen).port(), DEFAULT_CONTROL_PLANE_PORT);
    assert_eq!(socket(&cp.http_listen).port(), DEFAULT_MANAGEMENT_PORT);
    assert_database_from_secret(c);
    cp
}

/// Kinds and names deploy/kubernetes defines (its resources' documents, its ConfigMap generators),
/// following the kustomizations it includes.
fn defined_by(kustomization: &Path, out: &mut BTreeSet<(String, String)>) {
    let k = docs(kustomization).remove(0);
    let dir = kustomization.parent().unwrap();
    for resource in seq_at(&k, "resources") {
        let target = dir.join(resource.as_str().unwrap());
        if target.is_dir() {
            defined_by(&target.join("kustomization.yaml"), out);
        } else {
            for d in docs(&target) {
                out.insert((
                    str_at(&d, "kind").to_owned(),
                    str_at(&d, "metadata.name").to_owned(),
                ));
            }
        }
    }
    for generator in seq_at(&k, "configMapGenerator") {
        out.insert(("ConfigMap".to_owned(), str_at(generator, "name").to_owned()));
    }
}

/// The files a kustomization lists under `patches`, relative to the repository.
pub fn patches_of(kustomization: &str) -> Vec<String> {
    let dir = Path::new(kustomization).parent().unwrap();
    seq_at(&doc(kustomization), "patches")
        .iter()
        .map(|p| dir.join(str_at(p, "path")).to_str().unwrap().to_owned())
        .collect()
}

/// A patch file of the overlay: each document names a kind and name that deploy/kubernetes
/// defines (a patch of nothing fails the build, or silently adds a half resource).
pub fn check_patch(path: &Path, rel: &str) {
    let mut defined = BTreeSet::new();
    defined_by(&root().join("deploy/kubernetes/kustomization.yaml"), &mut defined);
    for d in docs(path) {
        let target = (
            str_at(&d, "kind").to_owned(),
            str_at(&d, "metadata.name").to_owned(),
        );
        assert!(at(&d, "apiVersion").is_some(), "{rel}: no apiVersion");
        assert!(
            defined.contains(&target),
            "{rel}: deploy/kubernetes defines no {target:?}"
        );
    }
}

#[test]
fn the_overlay_patches_what_the_folder_mode_defines() {
    let overlay = format!("{OVERLAY}/kustomization.yaml");
    let kustomization = doc(&overlay);
    let resources: Vec<&str> = seq_at(&kustomization, "resources")
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(resources.contains(&"../kubernetes"), "{resources:?}");
    let patches = patches_of(&overlay);
    assert!(patches.contains(&PATCH.to_owned()), "{patches:?}");
    for patch in patches {
        check_patch(&root().join(&patch), &patch);
    }
    // neither the placeholder Secret nor the one-shot Job comes back with each `kubectl apply -k`
    let mut listed = Vec::new();
    for k in [
        "deploy/kubernetes/kustomization.yaml",
        &overlay,
        "deploy/kubernetes-database/bootstrap/kustomization.yaml",
    ] {
        listed.extend(
            seq_at(&doc(k), "resources")
                .iter()
                .map(|r| r.as_str().unwrap().to_owned()),
        );
    }
    assert!(!listed.iter().any(|r| r.contains("secret")), "{listed:?}");
    assert!(
        !resources.iter().any(|r| r.contains("bootstrap")),
        "{resources:?}"
    );
}

#[test]
fn the_patched_control_plane_runs_a_database_command_line_from_the_secret() {
    let patch = find(PATCH, "Deployment", CONTROL_PLANE);
    let pod = at(&patch, "spec.template.spec").unwrap();
    check_control_plane_args(container(pod, "control-plane"));
}

#[test]
fn the_example_secret_is_a_marked_placeholder_with_no_password_in_its_url() {
    let text = std::fs::read_to_string(root().join(SECRET_EXAMPLE)).unwrap();
    assert!(text.contains("EXAMPLE ONLY") && text.contains("PLACEHOLDER"));
    let (_, data) = example_secret();
    let mut keys: Vec<&str> = data.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["password", "url"]);
    assert!(data["password"].contains("placeholder"), "{}", data["password"]);
    let url = &data["url"];
    sqlx::postgres::PgConnectOptions::from_str(url).unwrap_or_else(|e| panic!("`{url}`: {e}"));
    let authority = url.split_once("://").unwrap().1.split('/').next().unwrap();
    let user_info = authority.rsplit_once('@').map_or("", |(u, _)| u);
    assert!(!user_info.contains(':'), "`{url}` holds a password");
}

#[test]
fn the_bootstrap_job_runs_admin_bootstrap_for_the_account_the_sidecars_load() {
    let job = find(JOB, "Job", "scopegate-admin-bootstrap");
    let pod = at(&job, "spec.template.spec").unwrap();
    check_pod(JOB, "scopegate-admin-bootstrap", pod);
    assert_eq!(str_at(pod, "restartPolicy"), "Never");
    let c = container(pod, "bootstrap");
    let Command::Admin(AdminCommand::Bootstrap(bootstrap)) = command_line(c) else {
        panic!("not `admin bootstrap`: {:?}", args(c));
    };
    let (_, data) = example_secret();
    assert_eq!(bootstrap.db.database, data["url"]);
    assert_database_from_secret(c);
    let config = scopegate_config();
    let accounts = &config.snapshot.control_plane.as_ref().unwrap().accounts;
    assert!(
        accounts.contains(&bootstrap.account),
        "{} not in {accounts:?}",
        bootstrap.account
    );
    // the Job and the control plane read the same Secret keys the same way
    let patch = find(PATCH, "Deployment", CONTROL_PLANE);
    let cp = container(at(&patch, "spec.template.spec").unwrap(), "control-plane");
    assert_eq!(environment(c).1, environment(cp).1);
    // and run the same image
    let scopegate_image = |k: &str| {
        seq_at(&doc(k), "images")
            .iter()
            .find(|i| str_at(i, "name") == "scopegate")
            .unwrap_or_else(|| panic!("{k}: no scopegate image"))
            .clone()
    };
    assert_eq!(
        scopegate_image("deploy/kubernetes-database/bootstrap/kustomization.yaml"),
        scopegate_image("deploy/kubernetes/kustomization.yaml")
    );
}

fn key_of(d: &Value) -> (String, String) {
    let name = str_at(d, "metadata.name");
    // generated ConfigMaps carry a content hash: compare them by generator name
    let name = if str_at(d, "kind") == "ConfigMap" {
        name.rsplit_once('-').map_or(name, |(base, _)| base)
    } else {
        name
    };
    (str_at(d, "kind").to_owned(), name.to_owned())
}

fn built(docs: &[Value], kind: &str, name: &str) -> Value {
    docs.iter()
        .find(|d| key_of(d) == (kind.to_owned(), name.to_owned()))
        .unwrap_or_else(|| panic!("no {kind} `{name}` built"))
        .clone()
}

fn port_named<'a>(list: &'a [Value], name: &str) -> &'a Value {
    list.iter()
        .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no port `{name}`"))
}

fn number(v: &Value, key: &str) -> u64 {
    v.get(key)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no number `{key}` in {v:?}"))
}

#[test]
fn the_overlay_builds_the_folder_mode_with_a_hardened_control_plane_on_postgres() {
    let (Some(folder), Some(database)) = (build_at("deploy/kubernetes"), build_at(OVERLAY)) else {
        return;
    };
    // Everything but the control plane is the folder mode's, byte for byte; the snapshot files'
    // ConfigMap is gone; a PodDisruptionBudget is added.
    let changed =
        ["Deployment", "Service", "NetworkPolicy"].map(|k| (k.to_owned(), CONTROL_PLANE.to_owned()));
    let folder_keys: BTreeSet<_> = folder.iter().map(key_of).collect();
    let database_keys: BTreeSet<_> = database.iter().map(key_of).collect();
    let removed: Vec<_> = folder_keys.difference(&database_keys).collect();
    assert_eq!(
        removed,
        [&("ConfigMap".to_owned(), "scopegate-snapshots".to_owned())]
    );
    let added: Vec<_> = database_keys.difference(&folder_keys).collect();
    assert_eq!(
        added,
        [&("PodDisruptionBudget".to_owned(), CONTROL_PLANE.to_owned())]
    );
    for d in &folder {
        let key = key_of(d);
        if database_keys.contains(&key) && !changed.contains(&key) {
            assert_eq!(&built(&database, &key.0, &key.1), d, "{key:?} differs");
        }
    }

    let deployment = built(&database, "Deployment", CONTROL_PLANE);
    let pod = at(&deployment, "spec.template.spec").unwrap();
    check_pod(OVERLAY, CONTROL_PLANE, pod);
    let replicas = number(&deployment["spec"], "replicas");
    assert!(replicas >= 2, "{replicas} replica");
    let labels = at(&deployment, "spec.template.metadata.labels").unwrap();
    let c = container(pod, "control-plane");
    let cp = check_control_plane_args(c);

    // no snapshot files: every volume is the TLS Secret, mounted where the TLS flags point
    let volumes = seq_at(pod, "volumes");
    assert_eq!(volumes.len(), 1, "{volumes:?}");
    assert_eq!(str_at(&volumes[0], "secret.secretName"), TLS_SECRET);
    let mount = crate::manifests::mount_of(c, str_at(&volumes[0], "name"));
    for file in [&cp.tls_cert, &cp.tls_key, &cp.client_ca] {
        assert_eq!(file.as_deref().unwrap().parent().unwrap(), Path::new(&mount));
    }

    // listen ports = container ports = the Service's target ports; the sidecars dial the Service
    let ports = seq_at(c, "ports");
    let grpc = number(port_named(ports, "grpc"), "containerPort");
    let management = number(port_named(ports, "management"), "containerPort");
    assert_eq!(u64::from(socket(&cp.listen).port()), grpc);
    assert_eq!(u64::from(socket(&cp.http_listen).port()), management);
    let service = built(&database, "Service", CONTROL_PLANE);
    assert_eq!(at(&service, "spec.selector"), Some(labels));
    let service_ports = seq_at(&service, "spec.ports");
    assert_eq!(service_ports.len(), 2, "{service_ports:?}");
    for (name, container_port) in [("grpc", grpc), ("management", management)] {
        let port = port_named(service_ports, name);
        assert_eq!(number(port, "port"), container_port, "{name}");
        assert_eq!(
            number(port_named(ports, str_at(port, "targetPort")), "containerPort"),
            container_port
        );
    }
    // (the key holds a dot, so it is looked up whole)
    let config_map = built(&database, "ConfigMap", "scopegate-config");
    let text = config_map["data"]["scopegate.yaml"].as_str().unwrap();
    let config = Config::parse(text, false).unwrap();
    let url = &config.snapshot.control_plane.as_ref().unwrap().url;
    assert_eq!(url, &format!("https://{CONTROL_PLANE}:{grpc}"));

    // probes on a named port of the container (TCP: the kubelet has no client certificate)
    for kind in ["readinessProbe", "livenessProbe"] {
        let probe = c.get(kind).unwrap_or_else(|| panic!("no {kind}"));
        let port = at(probe, "tcpSocket.port").unwrap_or_else(|| panic!("{kind} is not TCP"));
        port_named(ports, port.as_str().unwrap());
    }

    // replicas spread over nodes, and a drain never takes the last one
    let terms = at(
        pod,
        "affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution",
    )
    .and_then(Value::as_sequence)
    .expect("no pod anti-affinity");
    assert!(terms.iter().any(|t| {
        str_at(t, "podAffinityTerm.topologyKey") == "kubernetes.io/hostname"
            && at(t, "podAffinityTerm.labelSelector.matchLabels") == Some(labels)
    }));
    let budget = built(&database, "PodDisruptionBudget", CONTROL_PLANE);
    assert_eq!(at(&budget, "spec.selector.matchLabels"), Some(labels));
    let min = number(&budget["spec"], "minAvailable");
    assert!((1..replicas).contains(&min), "minAvailable {min} of {replicas}");

    // the sidecar pods reach the snapshot port, labelled clients the management port, nothing else
    let policy = built(&database, "NetworkPolicy", CONTROL_PLANE);
    assert_eq!(at(&policy, "spec.podSelector.matchLabels"), Some(labels));
    let app = built(&database, "Deployment", "app");
    let rules = seq_at(&policy, "spec.ingress");
    let reaching = |port: u64| -> Vec<Value> {
        rules
            .iter()
            .filter(|r| seq_at(r, "ports").iter().any(|p| number(p, "port") == port))
            .flat_map(|r| seq_at(r, "from").to_vec())
            .collect()
    };
    for rule in rules {
        assert!(
            !seq_at(rule, "from").is_empty(),
            "a rule open to every pod: {rule:?}"
        );
    }
    let sidecars = reaching(grpc);
    assert_eq!(sidecars.len(), 1);
    assert_eq!(
        at(&sidecars[0], "podSelector.matchLabels"),
        at(&app, "spec.template.metadata.labels")
    );
    assert_eq!(reaching(management).len(), 1);
}
