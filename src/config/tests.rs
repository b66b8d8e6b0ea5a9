//! Unit tests of the configuration file: defaults, parsing, validation.

use super::*;

const FULL: &str = r#"
listen:
  grpc: 127.0.0.1:9191
  http: 127.0.0.1:9192
tls: {cert: /etc/tls/cert.pem, key: /etc/tls/key.pem, client_ca: /etc/tls/ca.pem, min_version: "1.3"}
snapshot:
  files: deploy/examples/snapshots/
  cache_dir: /var/lib/scopegate
routes: deploy/routes/harness-ng.yaml
catalog: null
jwt:
  issuers:
    - issuer: https://login.example.com/
      audiences: [scopegate]
      jwks_url: https://login.example.com/.well-known/jwks.json
      algorithms: [RS256, ES256]
      principal: {claim: sub, type: USER}
      account_claim: account
      accounts: [acme]
cache: {tokens: 100000, token_ttl: 5m, accounts: 1000, account_idle: 1h}
audit: {sink: stdout}
mode: enforce
telemetry: {log_format: json, otlp_endpoint: null}
"#;

#[test]
fn defaults_are_the_documented_ones_and_valid() {
    let config = Config::default();
    assert_eq!(config.listen.grpc, "127.0.0.1:9191");
    assert_eq!(config.listen.http, None);
    assert_eq!(config.tls, None);
    assert_eq!(config.snapshot, Snapshot::default());
    assert_eq!(config.routes, None);
    assert_eq!(config.catalog, None);
    assert!(config.jwt.issuers.is_empty());
    assert_eq!(config.cache.tokens, 100_000);
    assert_eq!(config.cache.token_ttl.get(), Duration::from_secs(300));
    assert_eq!(config.cache.accounts, 1000);
    assert_eq!(config.cache.account_idle.get(), Duration::from_secs(3600));
    assert_eq!(config.audit.sink, "stdout");
    assert_eq!(config.audit.max_bytes, 100 * 1024 * 1024);
    assert_eq!((config.audit.keep, config.audit.queue), (5, 65_536));
    assert_eq!(config.mode.get(), Mode::Enforce);
    assert_eq!(config.telemetry.log_format, "json");
    assert_eq!(Tls::default().min_version.get(), MinVersion::Tls13);
    let algorithms: Vec<_> = Issuer::default().algorithms.iter().map(Parsed::get).collect();
    assert_eq!(
        algorithms,
        [jsonwebtoken::Algorithm::RS256, jsonwebtoken::Algorithm::ES256]
    );
    assert_eq!(
        Issuer::default().principal.kind.get(),
        crate::authn::jwt::PrincipalKind::User
    );
    assert_eq!(config.validate(), Ok(()));
    assert!(config.unsupported().is_empty());
    assert_eq!(Config::parse("", false).unwrap(), config);
    assert_eq!(Config::parse("{}", true).unwrap(), config);
    assert_eq!(Config::parse("mode: enforce\n", false).unwrap(), config);
}

#[test]
fn the_full_example_parses_and_validates() {
    let config = Config::parse(FULL, false).unwrap();
    assert_eq!(config.validate(), Ok(()));
    assert_eq!(config.listen.http.as_deref(), Some("127.0.0.1:9192"));
    assert_eq!(config.tls.as_ref().unwrap().min_version.get(), MinVersion::Tls13);
    assert_eq!(
        config.snapshot.files.as_deref(),
        Some(Path::new("deploy/examples/snapshots/"))
    );
    assert_eq!(config.jwt.issuers[0].audiences, ["scopegate"]);
    assert_eq!(config.unsupported(), ["snapshot.cache_dir"]);
    let json = serde_json::to_string(&serde_yaml_ng::from_str::<serde_json::Value>(FULL).unwrap()).unwrap();
    assert_eq!(Config::parse(&json, true).unwrap(), config);
}

#[test]
fn the_shipped_example_parses_and_validates() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/examples/config.yaml");
    let config = Config::load(&path).unwrap();
    assert_eq!(config.validate(), Ok(()));
    assert!(config.snapshot.files.is_some() && config.routes.is_some());
}

#[test]
fn unknown_fields_are_rejected_at_every_level() {
    for text in [
        "listn: {grpc: 127.0.0.1:1}",
        "listen: {grcp: 127.0.0.1:1}",
        "cache: {token: 5}",
        "snapshot: {file: x}",
        "jwt: {issuers: [{issuer: x, jwks: y}]}",
        "tls: {cert: a, key: b, min: '1.2'}",
    ] {
        let error = Config::parse(text, false).unwrap_err();
        assert!(error.contains("unknown field"), "{text}: {error}");
    }
    let error = Config::load(Path::new("/nonexistent/scopegate.yaml")).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("cannot read configuration `/nonexistent")
    );
}

#[test]
fn every_validation_error_is_reported_at_once() {
    let text = r#"
listen: {grpc: "localhost:nine", http: "9192", http_path_prefix: "authz/"}
tls: {cert: "", key: "", min_version: "1.1"}
snapshot: {files: "", control_plane: {url: "cp:9300"}}
routes: ""
jwt: {issuers: [{issuer: "", algorithms: [HS256], principal: {type: ROBOT}, accounts: []}]}
cache: {tokens: 0, token_ttl: 5 minutes, accounts: 0, account_idle: "1x"}
audit: {sink: "file:", max_bytes: 0, keep: 0, queue: 0}
mode: enforcing
telemetry: {log_format: xml, otlp_endpoint: collector}
"#;
    let errors = Config::parse(text, false).unwrap().validate().unwrap_err();
    let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    let expected = [
        "`listen.grpc`: `localhost:nine` is not a socket address (`ip:port`)",
        "`listen.http`: `9192` is not a socket address (`ip:port`)",
        "`listen.http_path_prefix`: `authz/` must start with `/` and not end with `/` (like `/authz`)",
        "`tls.cert` must not be empty",
        "`tls.key` must not be empty",
        "`tls.min_version`: `1.1` is not `1.2` or `1.3`",
        "`snapshot.files` must not be empty",
        "`snapshot`: set `files` or `control_plane`, not both",
        "`snapshot.control_plane.url`: `cp:9300` is not an http(s) url",
        "`routes` must not be empty",
        "`jwt.issuers[0].issuer` must not be empty",
        "`jwt.issuers[0]`: set exactly one of `jwks_url`, `keys` and `discovery: true`",
        "`jwt.issuers[0].algorithms`: `HS256` is not one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA",
        "`jwt.issuers[0].principal.type`: `ROBOT` is not `USER` or `SERVICE_ACCOUNT`",
        "`jwt.issuers[0].accounts` must not be empty",
        "`cache.tokens` must be at least 1",
        "`cache.accounts` must be at least 1",
        "`cache.token_ttl`: `5 minutes` is not a duration like `30s`, `5m` or `1h`",
        "`cache.account_idle`: `1x` is not a duration like `30s`, `5m` or `1h`",
        "`audit.sink`: `file:` is not `stdout`, `off` or `file:PATH`",
        "`audit.max_bytes` must be at least 1",
        "`audit.keep` must be at least 1",
        "`audit.queue` must be at least 1",
        "`mode`: `enforcing` is not `enforce` or `dry_run`",
        "`telemetry.log_format`: `xml` is not `json` or `text`",
        "`telemetry.otlp_endpoint`: `collector` is not an http(s) url",
    ];
    assert_eq!(lines, expected);
    assert_eq!(errors.to_string().lines().count(), expected.len());
}

#[test]
fn durations() {
    assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
    assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
    assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
    assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172_800)));
    assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
    for bad in [
        "",
        "5",
        "m",
        "-5m",
        "5 m",
        "1.5h",
        "5M",
        "99999999999999999999s",
        "18446744073709551615d",
    ] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
}

#[test]
fn unsupported_sections_are_named() {
    let text = "mode: dry_run\naudit: {sink: off}\ncatalog: cat.yaml\ncache: {tokens: 5}\nsnapshot: {control_plane: {url: https://cp:9300}}\n";
    let config = Config::parse(text, false).unwrap();
    assert_eq!(config.validate(), Ok(()));
    assert!(config.unsupported().is_empty());
    let cache = "cache: {accounts: 5, account_idle: 1m}\nsnapshot: {cache_dir: /tmp/lkg}\n";
    let config = Config::parse(cache, false).unwrap();
    assert_eq!(
        config.unsupported(),
        ["snapshot.cache_dir", "cache.accounts", "cache.account_idle"]
    );
    let remote = "cache: {accounts: 5, account_idle: 1m}\nsnapshot: {cache_dir: /tmp/lkg, control_plane: {url: https://cp:9300}}\n";
    let config = Config::parse(remote, false).unwrap();
    assert_eq!(config.validate(), Ok(()));
    assert!(config.unsupported().is_empty());
}

#[test]
fn control_plane_settings_are_checked() {
    let text = "snapshot: {control_plane: {url: https://cp:9300, cert: c.pem, load_timeout: soon}}\n";
    let errors = Config::parse(text, false).unwrap().validate().unwrap_err();
    let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "`snapshot.control_plane`: set both `cert` and `key` (mutual tls), or neither",
            "`snapshot.control_plane.load_timeout`: `soon` is not a duration like `30s`, `5m` or `1h`",
        ]
    );
}

#[test]
fn a_plaintext_control_plane_off_loopback_needs_insecure() {
    let check = |cp: &str| {
        let text = format!("snapshot: {{control_plane: {cp}}}\n");
        Config::parse(&text, false).unwrap().validate()
    };
    let refused = check("{url: \"http://scopegate-control-plane:9300\"}").unwrap_err();
    assert!(
        matches!(&refused.0[..], [ConfigError::PlaintextControlPlane(url)] if url == "http://scopegate-control-plane:9300"),
        "{refused}"
    );
    assert!(check("{url: \"http://10.1.2.3:9300\"}").is_err());
    assert!(check("{url: \"http://user@[2001:db8::1]:9300/\"}").is_err());
    assert_eq!(
        check("{url: \"http://scopegate-control-plane:9300\", insecure: true}"),
        Ok(())
    );
    for url in [
        "http://127.0.0.1:9300",
        "http://127.9.9.9",
        "http://[::1]:9300",
        "http://localhost:9300",
        "https://cp:9300",
    ] {
        assert_eq!(check(&format!("{{url: \"{url}\"}}")), Ok(()), "{url}");
    }
    assert!(check("{url: \"https://cp:9300\", max_snapshot_bytes: 0}").is_err());
}

#[test]
fn typed_settings_are_parsed_when_the_file_is_read() {
    let text = "mode: dry_run\ntls: {cert: c, key: k, min_version: \"1.2\"}\ncache: {token_ttl: 90s}\njwt: {refresh_interval: 1h, issuers: [{issuer: x, keys: [k.pem], leeway: 500ms, algorithms: [EdDSA], principal: {type: SERVICE_ACCOUNT}}]}\nsnapshot: {control_plane: {url: https://cp:9300, load_timeout: 2s}}\nlisten: {connections: {idle_timeout: 1m}}\n";
    let config = Config::parse(text, false).unwrap();
    assert_eq!(config.validate(), Ok(()));
    assert_eq!(config.mode.get(), Mode::DryRun);
    let tls = config.tls.as_ref().unwrap();
    assert_eq!(tls.settings().min_version, MinVersion::Tls12);
    assert_eq!(config.cache.token_ttl.get(), Duration::from_secs(90));
    assert_eq!(config.jwt.refresh_interval.get(), Duration::from_secs(3600));
    let issuer = &config.jwt.issuers[0];
    assert_eq!(issuer.leeway.get(), Duration::from_millis(500));
    assert_eq!(issuer.algorithms[0].get(), jsonwebtoken::Algorithm::EdDSA);
    assert_eq!(
        issuer.principal.kind.get(),
        crate::authn::jwt::PrincipalKind::ServiceAccount
    );
    let remote = config.snapshot.control_plane.as_ref().unwrap();
    assert_eq!(remote.load_timeout.get(), Duration::from_secs(2));
    assert_eq!(
        config.listen.connections.limits().idle_timeout,
        Duration::from_secs(60)
    );
    // text that does not parse is kept for the validator, never silently taken as a value
    let bad = Parsed::<Duration>::parse("soon");
    assert_eq!(bad.rejected(), Some("soon"));
    assert_eq!(Parsed::<Mode>::parse("enforce").rejected(), None);
}

#[test]
fn the_revision_wait_defaults_to_150ms_and_zero_means_none() {
    assert_eq!(
        Config::default().snapshot.max_revision_wait.get(),
        Duration::from_millis(150)
    );
    let config = Config::parse("snapshot: {max_revision_wait: 200ms}\n", false).unwrap();
    assert_eq!(config.validate(), Ok(()));
    assert_eq!(
        config.snapshot.max_revision_wait.get(),
        Duration::from_millis(200)
    );
    let config = Config::parse("snapshot: {max_revision_wait: 0s}\n", false).unwrap();
    assert_eq!(config.snapshot.max_revision_wait.get(), Duration::ZERO);
    let config = Config::parse("snapshot: {max_revision_wait: later}\n", false).unwrap();
    let shown = config.validate().unwrap_err().to_string();
    assert!(shown.contains("`snapshot.max_revision_wait`: `later`"), "{shown}");
}
