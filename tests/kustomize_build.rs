//! `kubectl kustomize deploy/kubernetes` builds, and what it builds is what the files say: every
//! ConfigMap a pod mounts exists under its hashed name, the scopegate configuration inside its
//! ConfigMap is valid, and the route table and envoy.yaml are carried over byte for byte.
//! Skipped, with a note on stderr, where kubectl is not installed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::process::Command;

use scopegate::config::Config;
use serde::Deserialize;
use serde_yaml_ng::Value;

fn build() -> Option<Vec<Value>> {
    build_at("deploy/kubernetes")
}

/// `kubectl kustomize DIR` (DIR relative to the repository), its documents; `None` (and a note on
/// stderr) where kubectl is not installed.
pub fn build_at(dir: &str) -> Option<Vec<Value>> {
    let output = Command::new("kubectl")
        .args(["kustomize", dir])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    let Ok(output) = output else {
        eprintln!("kubectl is not installed: kustomize build not checked");
        return None;
    };
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    Some(
        serde_yaml_ng::Deserializer::from_str(&text)
            .map(|d| Value::deserialize(d).unwrap())
            .filter(|v| !v.is_null())
            .collect(),
    )
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap().to_owned()
}

fn repo_file(rel: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

#[test]
fn the_kustomization_builds_what_the_files_say() {
    let Some(docs) = build() else { return };
    // ConfigMap data by generator name (the name without kustomize's hash suffix).
    let mut config_maps: BTreeMap<String, (String, Value)> = BTreeMap::new();
    for d in docs.iter().filter(|d| text(d, "kind") == "ConfigMap") {
        let name = text(&d["metadata"], "name");
        let base = name.rsplit_once('-').unwrap().0.to_owned();
        config_maps.insert(base, (name, d["data"].clone()));
    }
    let names: Vec<&str> = config_maps.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "envoy-config",
            "scopegate-config",
            "scopegate-routes",
            "scopegate-snapshots"
        ]
    );

    let data = |base: &str, key: &str| text(&config_maps[base].1, key);
    let config = Config::parse(&data("scopegate-config", "scopegate.yaml"), false).unwrap();
    config.validate().unwrap();
    assert_eq!(
        data("scopegate-routes", "harness-ng.yaml"),
        repo_file("deploy/routes/harness-ng.yaml")
    );
    assert_eq!(
        data("envoy-config", "envoy.yaml"),
        repo_file("deploy/envoy/envoy.yaml")
    );

    let hashed: Vec<&String> = config_maps.values().map(|(name, _)| name).collect();
    let mut deployments = 0;
    for d in docs.iter().filter(|d| text(d, "kind") == "Deployment") {
        deployments += 1;
        let pod = &d["spec"]["template"]["spec"];
        for volume in pod["volumes"].as_sequence().unwrap() {
            if let Some(cm) = volume.get("configMap") {
                let name = text(cm, "name");
                assert!(
                    hashed.contains(&&name),
                    "volume refers to ConfigMap `{name}`, not built"
                );
            }
        }
        for c in pod["containers"].as_sequence().unwrap() {
            let image = text(c, "image");
            assert!(
                image.contains(':'),
                "image `{image}` is a placeholder or unpinned"
            );
        }
    }
    assert_eq!(deployments, 2);
}
