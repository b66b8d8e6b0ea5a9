//! Reading the deployment files for tests/deploy_manifests.rs: multi-document YAML into
//! `serde_yaml_ng::Value`, dotted-path lookups, and the pieces of pod specs, kustomizations and
//! the Envoy bootstrap those tests compare.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use scopegate::config::Config;
use serde::Deserialize;
use serde_yaml_ng::Value;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every document of a YAML (or JSON) file, empty documents left out.
pub fn docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str::<serde_json::Value>(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|v| !v.is_null())
        .collect()
}

pub fn doc(rel: &str) -> Value {
    let mut all = docs(&root().join(rel));
    assert_eq!(all.len(), 1, "{rel}: one document expected");
    all.remove(0)
}

/// The value at a dotted path (`spec.template.spec`), if every step exists.
pub fn at<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| v.get(key))
}

pub fn str_at<'a>(value: &'a Value, path: &str) -> &'a str {
    at(value, path)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at `{path}` in {value:?}"))
}

pub fn seq_at<'a>(value: &'a Value, path: &str) -> &'a [Value] {
    at(value, path)
        .and_then(Value::as_sequence)
        .map_or(&[], Vec::as_slice)
}

/// The document of `kind` named `name` in a manifest file.
pub fn find(rel: &str, kind: &str, name: &str) -> Value {
    docs(&root().join(rel))
        .into_iter()
        .find(|d| d.get("kind").and_then(Value::as_str) == Some(kind) && str_at(d, "metadata.name") == name)
        .unwrap_or_else(|| panic!("{rel}: no {kind} `{name}`"))
}

pub fn container<'a>(pod_spec: &'a Value, name: &str) -> &'a Value {
    seq_at(pod_spec, "containers")
        .iter()
        .find(|c| str_at(c, "name") == name)
        .unwrap_or_else(|| panic!("no container `{name}`"))
}

/// Where `container` mounts the volume that comes from ConfigMap `config_map`.
pub fn config_map_mount(pod_spec: &Value, container: &Value, config_map: &str) -> String {
    let volume = seq_at(pod_spec, "volumes")
        .iter()
        .find(|v| at(v, "configMap.name").and_then(Value::as_str) == Some(config_map))
        .unwrap_or_else(|| panic!("no volume from ConfigMap `{config_map}`"));
    mount_of(container, str_at(volume, "name"))
}

pub fn mount_of(container: &Value, volume: &str) -> String {
    seq_at(container, "volumeMounts")
        .iter()
        .find(|m| str_at(m, "name") == volume)
        .map(|m| str_at(m, "mountPath").to_owned())
        .unwrap_or_else(|| panic!("volume `{volume}` is not mounted"))
}

pub fn args(container: &Value) -> Vec<&str> {
    seq_at(container, "args")
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

/// The value following `flag` in a container's args.
pub fn flag<'a>(container: &'a Value, name: &str) -> &'a str {
    let args = args(container);
    let i = args
        .iter()
        .position(|a| *a == name)
        .unwrap_or_else(|| panic!("no `{name}`"));
    args[i + 1]
}

/// The files a kustomization's configMapGenerator `name` is made from.
pub fn generated_from(kustomization: &str, name: &str) -> Vec<PathBuf> {
    let k = doc(kustomization);
    let generator = seq_at(&k, "configMapGenerator")
        .iter()
        .find(|g| str_at(g, "name") == name)
        .unwrap_or_else(|| panic!("{kustomization}: no generator `{name}`"));
    let dir = root().join(kustomization).parent().unwrap().to_owned();
    seq_at(generator, "files")
        .iter()
        .map(|f| dir.join(f.as_str().unwrap().rsplit('=').next().unwrap()))
        .collect()
}

pub fn app_pod() -> Value {
    at(
        &find("deploy/kubernetes/app.yaml", "Deployment", "app"),
        "spec.template.spec",
    )
    .unwrap()
    .clone()
}

pub fn scopegate_config() -> Config {
    let text = std::fs::read_to_string(root().join("deploy/kubernetes/scopegate.yaml")).unwrap();
    let config = Config::parse(&text, false).unwrap();
    config.validate().unwrap();
    config
}

pub fn socket(text: &str) -> SocketAddr {
    text.parse().unwrap_or_else(|e| panic!("`{text}`: {e}"))
}

pub fn envoy() -> Value {
    doc("deploy/envoy/envoy.yaml")
}

pub fn listener(envoy: &Value, name: &str) -> Value {
    seq_at(envoy, "static_resources.listeners")
        .iter()
        .find(|l| str_at(l, "name") == name)
        .unwrap_or_else(|| panic!("no listener `{name}`"))
        .clone()
}

pub fn hcm(listener: &Value) -> Value {
    let filter = &seq_at(&seq_at(listener, "filter_chains")[0], "filters")[0];
    assert_eq!(
        str_at(filter, "name"),
        "envoy.filters.network.http_connection_manager"
    );
    filter.get("typed_config").unwrap().clone()
}

/// The one endpoint of a static Envoy cluster, and the cluster.
pub fn cluster(envoy: &Value, name: &str) -> (SocketAddr, Value) {
    let cluster = seq_at(envoy, "static_resources.clusters")
        .iter()
        .find(|c| str_at(c, "name") == name)
        .unwrap_or_else(|| panic!("no cluster `{name}`"));
    let endpoint = &seq_at(&seq_at(cluster, "load_assignment.endpoints")[0], "lb_endpoints")[0];
    let address = at(endpoint, "endpoint.address.socket_address").unwrap();
    let port = address.get("port_value").and_then(Value::as_u64).unwrap();
    (
        socket(&format!("{}:{port}", str_at(address, "address"))),
        cluster.clone(),
    )
}

pub fn routes(hcm: &Value) -> Vec<Value> {
    seq_at(hcm, "route_config.virtual_hosts")
        .iter()
        .flat_map(|vh| seq_at(vh, "routes").to_vec())
        .collect()
}

/// Hardening every container of every pod template under deploy/ must have.
pub fn check_pod(file: &str, name: &str, pod: &Value) {
    let pod_context = pod.get("securityContext");
    let pod_bool = |key: &str| pod_context.and_then(|c| c.get(key)).and_then(Value::as_bool);
    for c in seq_at(pod, "containers") {
        let at_c = |key: &str| at(c, &format!("securityContext.{key}"));
        let what = format!("{file}: {name}/{}", str_at(c, "name"));
        let non_root = at_c("runAsNonRoot")
            .and_then(Value::as_bool)
            .or(pod_bool("runAsNonRoot"));
        assert_eq!(non_root, Some(true), "{what}: runAsNonRoot");
        if let Some(uid) = at_c("runAsUser").or(pod_context.and_then(|p| p.get("runAsUser"))) {
            assert_ne!(uid.as_u64(), Some(0), "{what}: runs as root");
        }
        assert_eq!(
            at_c("readOnlyRootFilesystem").and_then(Value::as_bool),
            Some(true),
            "{what}"
        );
        assert_eq!(
            at_c("allowPrivilegeEscalation").and_then(Value::as_bool),
            Some(false),
            "{what}"
        );
        let drop = at_c("capabilities.drop").and_then(Value::as_sequence);
        assert!(
            drop.is_some_and(|d| d.iter().any(|c| c.as_str() == Some("ALL"))),
            "{what}: drop ALL"
        );
        let seccomp = at_c("seccompProfile.type").or(pod_context.and_then(|p| at(p, "seccompProfile.type")));
        assert_eq!(
            seccomp.and_then(Value::as_str),
            Some("RuntimeDefault"),
            "{what}: seccomp"
        );
        for key in ["limits.cpu", "limits.memory", "requests.cpu", "requests.memory"] {
            assert!(
                at(c, &format!("resources.{key}")).is_some(),
                "{what}: no resources.{key}"
            );
        }
    }
}
