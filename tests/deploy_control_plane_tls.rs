//! deploy/kubernetes runs the control plane authenticated (security review, issue 10): mutual TLS
//! from Secrets on both ends, certificates that cert-manager issues, and a NetworkPolicy that lets
//! only the sidecar pods reach the control plane's port.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;

use serde_yaml_ng::Value;

#[allow(dead_code)]
use crate::manifests;

use manifests::{
    app_pod, args, at, container, docs, find, flag, mount_of, root, scopegate_config, seq_at, str_at,
};

/// The Secret a pod's volume mounted at the parent folder of `file` comes from.
fn secret_of(pod: &Value, c: &Value, file: &Path) -> String {
    let dir = file.parent().unwrap().to_str().unwrap();
    let volume = seq_at(pod, "volumes")
        .iter()
        .find(|v| {
            seq_at(c, "volumeMounts")
                .iter()
                .any(|m| str_at(m, "name") == str_at(v, "name") && str_at(m, "mountPath") == dir)
        })
        .unwrap_or_else(|| panic!("nothing mounted at `{dir}`"));
    let name = str_at(volume, "secret.secretName").to_owned();
    assert_eq!(mount_of(c, str_at(volume, "name")), dir);
    name
}

/// The Secret names cert-manager's Certificates write.
fn issued_secrets() -> Vec<String> {
    docs(&root().join("deploy/kubernetes/cert-manager/certificates.yaml"))
        .iter()
        .filter(|d| str_at(d, "kind") == "Certificate")
        .map(|d| str_at(d, "spec.secretName").to_owned())
        .collect()
}

#[test]
fn the_control_plane_serves_mutual_tls_only_with_issued_certificates() {
    let deployment = find(
        "deploy/kubernetes/control-plane.yaml",
        "Deployment",
        "scopegate-control-plane",
    );
    let pod = at(&deployment, "spec.template.spec").unwrap();
    let cp = container(pod, "control-plane");
    assert!(!args(cp).contains(&"--insecure"));
    let issued = issued_secrets();
    let mut secrets = Vec::new();
    for name in ["--tls-cert", "--tls-key", "--client-ca"] {
        secrets.push(secret_of(pod, cp, Path::new(flag(cp, name))));
    }
    secrets.dedup();
    assert_eq!(secrets.len(), 1, "{secrets:?}");
    assert!(issued.contains(&secrets[0]), "{} is not issued", secrets[0]);

    let config = scopegate_config();
    let remote = config.snapshot.control_plane.as_ref().unwrap();
    assert!(remote.url.starts_with("https://"), "{}", remote.url);
    assert!(!remote.insecure);
    let app = app_pod();
    let sidecar = container(&app, "scopegate");
    let mut secrets = Vec::new();
    for file in [&remote.ca, &remote.cert, &remote.key] {
        secrets.push(secret_of(&app, sidecar, file.as_deref().unwrap()));
    }
    secrets.dedup();
    assert_eq!(secrets.len(), 1, "{secrets:?}");
    assert!(issued.contains(&secrets[0]), "{} is not issued", secrets[0]);
    // The control plane's certificate names the host the sidecars dial.
    let host = remote.url["https://".len()..].split(':').next().unwrap();
    let server = docs(&root().join("deploy/kubernetes/cert-manager/certificates.yaml"))
        .into_iter()
        .find(|d| {
            str_at(d, "kind") == "Certificate"
                && str_at(d, "spec.secretName") != secrets[0]
                && at(d, "spec.dnsNames").is_some()
        })
        .unwrap();
    assert!(
        seq_at(&server, "spec.dnsNames")
            .iter()
            .any(|n| n.as_str() == Some(host))
    );
}

#[test]
fn only_sidecar_pods_reach_the_control_plane_port() {
    let policy = find(
        "deploy/kubernetes/control-plane.yaml",
        "NetworkPolicy",
        "scopegate-control-plane",
    );
    let deployment = find(
        "deploy/kubernetes/control-plane.yaml",
        "Deployment",
        "scopegate-control-plane",
    );
    assert_eq!(
        at(&policy, "spec.podSelector.matchLabels"),
        at(&deployment, "spec.template.metadata.labels")
    );
    assert_eq!(seq_at(&policy, "spec.policyTypes"), [Value::from("Ingress")]);
    let rules = seq_at(&policy, "spec.ingress");
    assert_eq!(rules.len(), 1);
    let app = find("deploy/kubernetes/app.yaml", "Deployment", "app");
    let from = seq_at(&rules[0], "from");
    assert_eq!(from.len(), 1);
    assert_eq!(
        at(&from[0], "podSelector.matchLabels"),
        at(&app, "spec.template.metadata.labels")
    );
    let ports = seq_at(&rules[0], "ports");
    assert_eq!(ports.len(), 1);
    assert_eq!(at(&ports[0], "port").and_then(Value::as_u64), Some(9300));
}
