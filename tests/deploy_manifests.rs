//! The deployment files under deploy/ hold together: every YAML/JSON file parses and is of a known
//! kind, the Kubernetes manifests are hardened, and the ports, paths and names the manifests, the
//! Envoy bootstrap and the Istio resources share agree with each other and with the crate's defaults.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

use scopegate::config::{
    Config, DEFAULT_ADMIN_PORT, DEFAULT_CONTROL_PLANE_PORT, DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT,
};
use scopegate::envoy::{ACCOUNT_HEADER, DECISION_ID_HEADER, PRINCIPAL_HEADER};
use serde_yaml_ng::Value;

use crate::manifests;

use manifests::{
    app_pod, args, at, check_pod, cluster, config_map_mount, container, doc, docs, envoy, find, flag,
    generated_from, hcm, listener, mount_of, root, routes, scopegate_config, seq_at, socket, str_at,
};

#[test]
fn the_crate_defaults_are_the_documented_ports() {
    assert_eq!(
        socket(&Config::default().listen.grpc),
        socket(&format!("127.0.0.1:{DEFAULT_GRPC_PORT}"))
    );
    assert_eq!(
        (
            DEFAULT_GRPC_PORT,
            DEFAULT_HTTP_PORT,
            DEFAULT_ADMIN_PORT,
            DEFAULT_CONTROL_PLANE_PORT
        ),
        (9191, 9192, 9193, 9300)
    );
}

#[test]
fn scopegate_in_the_app_pod_listens_on_loopback_at_the_default_ports() {
    let config = scopegate_config();
    let grpc = socket(&config.listen.grpc);
    assert_eq!(grpc, socket(&Config::default().listen.grpc));
    assert!(grpc.ip().is_loopback());
    // health and metrics on the admin listener; no HTTP authz listener (Envoy asks over gRPC)
    assert_eq!(config.listen.http, None);
    let admin = socket(config.listen.admin.as_deref().unwrap());
    assert!(admin.ip().is_loopback());
    assert_eq!(admin.port(), DEFAULT_ADMIN_PORT);
}

#[test]
fn scopegate_container_finds_its_config_routes_and_cache() {
    let pod = app_pod();
    let sg = container(&pod, "scopegate");
    assert_eq!(args(sg)[0], "serve");
    let config_path = Path::new(flag(sg, "--config"));
    let mount = config_map_mount(&pod, sg, "scopegate-config");
    assert_eq!(config_path.parent().unwrap(), Path::new(&mount));
    let sources = generated_from("deploy/kubernetes/kustomization.yaml", "scopegate-config");
    assert_eq!(
        sources,
        [root()
            .join("deploy/kubernetes")
            .join(config_path.file_name().unwrap())]
    );

    let config = scopegate_config();
    let routes = config.routes.as_deref().unwrap();
    let mount = config_map_mount(&pod, sg, "scopegate-routes");
    assert_eq!(routes.parent().unwrap(), Path::new(&mount));
    let sources = generated_from("deploy/routes/kustomization.yaml", "scopegate-routes");
    assert_eq!(
        sources,
        [root().join("deploy/routes").join(routes.file_name().unwrap())]
    );
    assert!(sources[0].is_file());

    let cache = config.snapshot.cache_dir.as_deref().unwrap();
    let volume = seq_at(&pod, "volumes")
        .iter()
        .find(|v| v.get("emptyDir").is_some() && mount_of(sg, str_at(v, "name")) == cache.to_str().unwrap());
    assert!(
        volume.is_some(),
        "cache_dir `{}` is not an emptyDir",
        cache.display()
    );
}

#[test]
fn control_plane_url_service_and_listen_port_agree() {
    let config = scopegate_config();
    let url = &config.snapshot.control_plane.as_ref().unwrap().url;
    let host_port = url.split_once("://").unwrap().1.trim_end_matches('/');
    let (host, port) = host_port.split_once(':').unwrap();
    let port: u16 = port.parse().unwrap();

    let service = find("deploy/kubernetes/control-plane.yaml", "Service", host);
    let service_port = &seq_at(&service, "spec.ports")[0];
    assert_eq!(
        service_port.get("port").and_then(Value::as_u64),
        Some(u64::from(port))
    );
    assert_eq!(port, DEFAULT_CONTROL_PLANE_PORT);

    let deployment = find("deploy/kubernetes/control-plane.yaml", "Deployment", host);
    let pod = at(&deployment, "spec.template.spec").unwrap();
    let cp = container(pod, "control-plane");
    assert_eq!(args(cp)[0], "control-plane");
    assert_eq!(socket(flag(cp, "--listen")).port(), port);
    let target = str_at(service_port, "targetPort");
    let container_port = seq_at(cp, "ports")
        .iter()
        .find(|p| str_at(p, "name") == target)
        .unwrap();
    assert_eq!(
        container_port.get("containerPort").and_then(Value::as_u64),
        Some(u64::from(port))
    );
    assert_eq!(
        at(&service, "spec.selector"),
        at(&deployment, "spec.template.metadata.labels")
    );
    let source = flag(cp, "--source");
    assert_eq!(config_map_mount(pod, cp, "scopegate-snapshots"), source);
    for snapshot in generated_from("deploy/examples/kustomization.yaml", "scopegate-snapshots") {
        assert!(snapshot.is_file(), "{}", snapshot.display());
    }
}

#[test]
fn envoy_asks_scopegate_over_loopback_grpc_and_fails_closed() {
    let envoy = envoy();
    let ingress = hcm(&listener(&envoy, "ingress"));
    let filters = seq_at(&ingress, "http_filters");
    let names: Vec<&str> = filters.iter().map(|f| str_at(f, "name")).collect();
    assert_eq!(
        names,
        ["envoy.filters.http.ext_authz", "envoy.filters.http.router"]
    );
    let authz = filters[0].get("typed_config").unwrap();
    assert_eq!(
        str_at(authz, "@type"),
        "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz"
    );
    assert_eq!(str_at(authz, "transport_api_version"), "V3");
    assert_eq!(
        authz.get("failure_mode_allow").and_then(Value::as_bool),
        Some(false)
    );
    assert_eq!(str_at(authz, "grpc_service.timeout"), "0.2s");

    let (address, cluster) = cluster(&envoy, str_at(authz, "grpc_service.envoy_grpc.cluster_name"));
    assert_eq!(address, socket(&scopegate_config().listen.grpc));
    // The key holds dots, so it is looked up whole.
    let options = at(&cluster, "typed_extension_protocol_options")
        .and_then(|o| o.get("envoy.extensions.upstreams.http.v3.HttpProtocolOptions"));
    let options = options.expect("the scopegate cluster has no HttpProtocolOptions");
    assert!(at(options, "explicit_http_config.http2_protocol_options").is_some());
}

#[test]
fn envoy_routes_show_per_route_settings_with_real_permissions() {
    let ingress = hcm(&listener(&envoy(), "ingress"));
    let per_route: Vec<Value> = routes(&ingress)
        .iter()
        .filter_map(|r| {
            at(r, "typed_per_filter_config")?
                .get("envoy.filters.http.ext_authz")
                .cloned()
        })
        .collect();
    for config in &per_route {
        assert_eq!(
            str_at(config, "@type"),
            "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute"
        );
    }
    assert!(
        per_route
            .iter()
            .any(|c| c.get("disabled").and_then(Value::as_bool) == Some(true))
    );
    // Where scopegate is not asked, it strips no forged identity headers: the route must.
    for route in routes(&ingress) {
        let disabled = at(&route, "typed_per_filter_config")
            .and_then(|c| c.get("envoy.filters.http.ext_authz"))
            .and_then(|c| c.get("disabled"))
            .and_then(Value::as_bool);
        if disabled != Some(true) {
            continue;
        }
        let removed: Vec<&str> = seq_at(&route, "request_headers_to_remove")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for header in [PRINCIPAL_HEADER, ACCOUNT_HEADER, DECISION_ID_HEADER] {
            assert!(
                removed.contains(&header),
                "{route:?} passes a client's `{header}` on"
            );
        }
    }
    let catalog = scopegate::rbac::Catalog::embedded().unwrap();
    let permissions: Vec<&str> = per_route
        .iter()
        .filter_map(|c| at(c, "check_settings.context_extensions.permission")?.as_str())
        .collect();
    assert!(!permissions.is_empty());
    for permission in permissions {
        assert!(
            catalog.permission_id(permission).is_some(),
            "`{permission}` is not in the catalog"
        );
    }
}

#[test]
fn the_pod_wires_envoy_app_and_probes_consistently() {
    let envoy = envoy();
    let pod = app_pod();
    let proxy = container(&pod, "envoy");
    let config = Path::new(flag(proxy, "-c"));
    assert_eq!(
        config.parent().unwrap(),
        Path::new(&config_map_mount(&pod, proxy, "envoy-config"))
    );
    assert_eq!(
        generated_from("deploy/envoy/kustomization.yaml", "envoy-config"),
        [root().join("deploy/envoy").join(config.file_name().unwrap())]
    );
    let port_of = |name: &str| {
        let l = listener(&envoy, name);
        at(&l, "address.socket_address.port_value")
            .and_then(Value::as_u64)
            .unwrap()
    };
    // The Service sends to Envoy's ingress listener, never to the app directly.
    let service = find("deploy/kubernetes/app.yaml", "Service", "app");
    let target = str_at(&seq_at(&service, "spec.ports")[0], "targetPort");
    let port = seq_at(proxy, "ports")
        .iter()
        .find(|p| str_at(p, "name") == target)
        .unwrap();
    assert_eq!(
        port.get("containerPort").and_then(Value::as_u64),
        Some(port_of("ingress"))
    );
    let (app, _) = cluster(&envoy, "app");
    assert!(app.ip().is_loopback());
    let (admin, _) = cluster(&envoy, "scopegate_admin");
    assert_eq!(admin.port(), DEFAULT_ADMIN_PORT);

    // Every probe of the pod reaches a listener Envoy has, on a path it routes.
    let probe_paths: Vec<String> = routes(&hcm(&listener(&envoy, "probes")))
        .iter()
        .chain(routes(&hcm(&listener(&envoy, "ingress"))).iter())
        .filter_map(|r| Some(at(r, "match.path")?.as_str()?.to_owned()))
        .collect();
    for c in seq_at(&pod, "containers") {
        for kind in ["startupProbe", "readinessProbe", "livenessProbe"] {
            let Some(probe) = c.get(kind) else { continue };
            let (port, path) = if let Some(get) = probe.get("httpGet") {
                (
                    get.get("port").and_then(Value::as_u64),
                    str_at(get, "path").to_owned(),
                )
            } else if let Some(grpc) = probe.get("grpc") {
                (
                    grpc.get("port").and_then(Value::as_u64),
                    "/grpc.health.v1.Health/Check".to_owned(),
                )
            } else {
                continue;
            };
            let port = port.unwrap();
            assert!(
                port == port_of("ingress") || port == port_of("probes"),
                "{kind} port {port}"
            );
            assert!(probe_paths.contains(&path), "{kind}: Envoy routes no `{path}`");
        }
    }
}

#[test]
fn istio_provider_service_entry_and_policy_agree() {
    let mesh = find("deploy/istio/mesh-config.yaml", "IstioOperator", "scopegate");
    let provider = &seq_at(&mesh, "spec.meshConfig.extensionProviders")[0];
    let name = str_at(provider, "name");
    let grpc = provider.get("envoyExtAuthzGrpc").unwrap();
    assert_eq!(
        grpc.get("port").and_then(Value::as_u64),
        Some(u64::from(DEFAULT_GRPC_PORT))
    );
    assert_eq!(grpc.get("failOpen").and_then(Value::as_bool), Some(false));
    assert_eq!(str_at(grpc, "timeout"), "0.2s");

    let entry = find(
        "deploy/istio/service-entry.yaml",
        "ServiceEntry",
        "scopegate-local",
    );
    let hosts: Vec<&str> = seq_at(&entry, "spec.hosts")
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    assert_eq!(hosts, [str_at(grpc, "service")]);
    let port = &seq_at(&entry, "spec.ports")[0];
    assert_eq!(
        port.get("number").and_then(Value::as_u64),
        Some(u64::from(DEFAULT_GRPC_PORT))
    );
    assert_eq!(str_at(port, "protocol"), "GRPC");
    assert_eq!(str_at(&entry, "spec.resolution"), "STATIC");
    assert_eq!(
        str_at(&seq_at(&entry, "spec.endpoints")[0], "address"),
        "127.0.0.1"
    );

    let policy = find(
        "deploy/istio/authorization-policy.yaml",
        "AuthorizationPolicy",
        "scopegate",
    );
    assert_eq!(str_at(&policy, "spec.action"), "CUSTOM");
    assert_eq!(str_at(&policy, "spec.provider.name"), name);
    assert_eq!(
        at(&policy, "spec.selector.matchLabels"),
        at(
            &find("deploy/kubernetes/app.yaml", "Deployment", "app"),
            "spec.selector.matchLabels"
        )
    );

    // The Istio sidecar patch runs scopegate exactly as the Kubernetes pod does.
    let patch = find("deploy/istio/scopegate-sidecar-patch.yaml", "Deployment", "app");
    let patched = container(at(&patch, "spec.template.spec").unwrap(), "scopegate");
    let pod = app_pod();
    let original = container(&pod, "scopegate");
    assert_eq!(args(patched), args(original));
    assert_eq!(patched.get("volumeMounts"), original.get("volumeMounts"));
}

fn check_kubernetes(path: &Path, file: &str) {
    for d in docs(path) {
        for key in ["apiVersion", "kind", "metadata.name"] {
            assert!(
                at(&d, key).and_then(Value::as_str).is_some_and(|s| !s.is_empty()),
                "{file}: {key}"
            );
        }
        if let Some(pod) = at(&d, "spec.template.spec") {
            check_pod(file, str_at(&d, "metadata.name"), pod);
        }
    }
}

/// kustomize reads no file outside a kustomization's folder: every file a generator or patch names
/// must be in or below it, and every resource must exist.
fn check_kustomization(path: &Path, file: &str) {
    let k = doc(file);
    assert_eq!(str_at(&k, "kind"), "Kustomization", "{file}");
    let dir = path.parent().unwrap();
    for resource in seq_at(&k, "resources") {
        let target = dir.join(resource.as_str().unwrap());
        assert!(
            target.is_file() || target.join("kustomization.yaml").is_file(),
            "{file}: resource `{}` is neither a file nor a kustomization",
            target.display()
        );
    }
    let generated = seq_at(&k, "configMapGenerator")
        .iter()
        .flat_map(|g| seq_at(g, "files").to_vec())
        .map(|f| f.as_str().unwrap().rsplit('=').next().unwrap().to_owned());
    let patches = seq_at(&k, "patches")
        .iter()
        .filter_map(|p| Some(p.get("path")?.as_str()?.to_owned()));
    for name in generated.chain(patches) {
        assert!(
            !name.split('/').any(|part| part == ".."),
            "{file}: `{name}` is outside its folder"
        );
        assert!(dir.join(&name).is_file(), "{file}: `{name}` does not exist");
    }
}

fn validate_with_cli(path: &Path) {
    let output = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .arg("validate")
        .arg(path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, files);
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| ["yaml", "yml", "json"].contains(&e))
        {
            files.push(path);
        }
    }
}

#[test]
fn every_yaml_and_json_file_under_deploy_is_known_and_checked() {
    let mut files = Vec::new();
    walk(&root().join("deploy"), &mut files);
    files.sort();
    assert!(files.len() >= 12, "{files:?}");
    let patches = crate::deploy_database::patches_of("deploy/kubernetes-database/kustomization.yaml");
    for path in files {
        let rel = path
            .strip_prefix(root())
            .unwrap()
            .to_str()
            .unwrap()
            .replace('\\', "/");
        let under = |prefix: &str| rel.starts_with(prefix);
        if rel.ends_with("/kustomization.yaml") {
            check_kustomization(&path, &rel);
        } else if rel == "deploy/kubernetes/scopegate.yaml" || rel == "deploy/examples/config.yaml" {
            let text = std::fs::read_to_string(&path).unwrap();
            let config = Config::parse(&text, false).unwrap_or_else(|e| panic!("{rel}: {e}"));
            config.validate().unwrap_or_else(|e| panic!("{rel}: {e}"));
        } else if patches.contains(&rel) {
            crate::deploy_database::check_patch(&path, &rel);
        } else if under("deploy/kubernetes/")
            || under("deploy/kubernetes-database/")
            || under("deploy/istio/")
        {
            check_kubernetes(&path, &rel);
        } else if rel == "deploy/envoy/envoy.yaml" {
            let envoy = doc(&rel);
            assert!(at(&envoy, "static_resources.listeners").is_some(), "{rel}");
        } else if under("deploy/routes/") || under("deploy/examples/snapshots/") {
            validate_with_cli(&path);
        } else if under("deploy/loadtest/") || under("deploy/nginx/") || under("deploy/traefik/") {
            docs(&path);
        } else {
            panic!("{rel}: no check knows this file: add one to tests/deploy_manifests.rs");
        }
    }
}
