//! `serve`'s command-line flags as changes to the configuration: each flag given replaces the
//! value of the file (or of the default configuration), so the server reads every setting from
//! one [`Config`].

use std::path::PathBuf;

use super::{Config, ConfigError, ControlPlane, Mode, Parsed, Tls};

/// The values `serve`'s flags give; `None` (or `false`) leaves the configuration's value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--listen`: `listen.grpc`.
    pub grpc: Option<String>,
    /// `--no-grpc-reflection`: `listen.grpc_reflection: false`.
    pub no_grpc_reflection: bool,
    /// `--http-listen`: `listen.http`.
    pub http: Option<String>,
    /// `--http-source`: `listen.http_source`.
    pub http_source: Option<String>,
    /// `--admin-listen`: `listen.admin`.
    pub admin: Option<String>,
    /// `--snapshots`: `snapshot.files`, replacing any `snapshot.control_plane`.
    pub snapshots: Option<PathBuf>,
    /// `--control-plane`: `snapshot.control_plane.url`, or, comma-separated, `url` then `urls`
    /// (the section's other settings are kept, or their defaults), replacing any `snapshot.files`.
    pub control_plane: Option<String>,
    /// `--control-plane-insecure`: `snapshot.control_plane.insecure: true`.
    pub control_plane_insecure: bool,
    /// `--wait-for-snapshots`: `snapshot.wait_for_files: true`.
    pub wait_for_snapshots: bool,
    /// `--routes`: `routes`.
    pub routes: Option<PathBuf>,
    /// `--catalog`: `catalog`.
    pub catalog: Option<PathBuf>,
    /// `--dry-run`: `mode: dry_run`.
    pub dry_run: bool,
    /// `--audit`: `audit.sink` (`stdout`, `file:PATH` or `off`).
    pub audit: Option<String>,
    /// `--log-format`: `telemetry.log_format` (`json` or `text`).
    pub log_format: Option<String>,
    /// `--tls-cert` and `--tls-key`: `tls.cert` and `tls.key` (the section's other settings kept).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `--client-ca`: `tls.client_ca` (with `--tls-cert`/`--tls-key` or a `tls` section).
    pub client_ca: Option<PathBuf>,
}

impl Config {
    /// Applies the flags. A flag that makes the configuration inconsistent is refused: an
    /// `http_source` that is not `envoy` beside the file's `listen.http_path_prefix`.
    pub fn merge_overrides(&mut self, overrides: &Overrides) -> Result<(), ConfigError> {
        let set = |value: &Option<String>, into: &mut String| {
            if let Some(value) = value {
                value.clone_into(into);
            }
        };
        set(&overrides.grpc, &mut self.listen.grpc);
        if overrides.no_grpc_reflection {
            self.listen.grpc_reflection = false;
        }
        set(&overrides.http_source, &mut self.listen.http_source);
        if overrides.http.is_some() {
            self.listen.http.clone_from(&overrides.http);
        }
        if overrides.admin.is_some() {
            self.listen.admin.clone_from(&overrides.admin);
        }
        if overrides.routes.is_some() {
            self.routes.clone_from(&overrides.routes);
        }
        if overrides.catalog.is_some() {
            self.catalog.clone_from(&overrides.catalog);
        }
        if overrides.wait_for_snapshots {
            self.snapshot.wait_for_files = true;
        }
        if overrides.dry_run {
            self.mode = Parsed::new(Mode::DryRun);
        }
        set(&overrides.audit, &mut self.audit.sink);
        set(&overrides.log_format, &mut self.telemetry.log_format);
        if let Some((cert, key)) = &overrides.tls {
            let tls = self.tls.get_or_insert_with(Tls::default);
            cert.clone_into(&mut tls.cert);
            key.clone_into(&mut tls.key);
        }
        if let Some(client_ca) = &overrides.client_ca {
            let Some(tls) = &mut self.tls else {
                return Err(ConfigError::ClientCaWithoutTls);
            };
            tls.client_ca = Some(client_ca.clone());
        }
        if let Some(files) = &overrides.snapshots {
            self.snapshot.files = Some(files.clone());
            self.snapshot.control_plane = None;
        } else if let Some(url) = &overrides.control_plane {
            self.snapshot.files = None;
            let remote = self
                .snapshot
                .control_plane
                .get_or_insert_with(ControlPlane::default);
            let mut urls = url.split(',').map(str::trim).map(str::to_owned);
            remote.url = urls.next().unwrap_or_default();
            remote.urls = urls.collect();
        }
        if overrides.control_plane_insecure
            && let Some(remote) = &mut self.snapshot.control_plane
        {
            remote.insecure = true;
        }
        let source = super::HttpSource::parse(&self.listen.http_source);
        if source.is_none() {
            return Err(ConfigError::HttpSource(self.listen.http_source.clone()));
        }
        if source != Some(super::HttpSource::Envoy) && self.listen.http_path_prefix.is_some() {
            return Err(ConfigError::PathPrefixSource);
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn flags_replace_the_file_values_and_absent_flags_keep_them() {
        let text =
            "listen: {grpc: 127.0.0.1:1, admin: 127.0.0.1:3}\nroutes: r.yaml\nsnapshot: {files: snaps/}\n";
        let file = Config::parse(text, false).unwrap();
        let mut config = file.clone();
        config.merge_overrides(&Overrides::default()).unwrap();
        assert_eq!(config, file);
        let mut config = file.clone();
        let flags = Overrides {
            grpc: Some("127.0.0.1:9".to_owned()),
            http: Some("127.0.0.1:8".to_owned()),
            http_source: Some("nginx".to_owned()),
            control_plane: Some("https://cp:9300".to_owned()),
            control_plane_insecure: true,
            no_grpc_reflection: true,
            ..Overrides::default()
        };
        assert!(config.listen.grpc_reflection, "on by default");
        config.merge_overrides(&flags).unwrap();
        assert_eq!(config.listen.grpc, "127.0.0.1:9");
        assert!(!config.listen.grpc_reflection);
        assert_eq!(config.listen.http.as_deref(), Some("127.0.0.1:8"));
        assert_eq!(config.listen.http_source, "nginx");
        assert_eq!(config.listen.admin.as_deref(), Some("127.0.0.1:3"));
        assert_eq!(config.routes.as_deref(), Some(Path::new("r.yaml")));
        assert_eq!(config.snapshot.files, None);
        let remote = config.snapshot.control_plane.as_ref().unwrap();
        assert_eq!((remote.url.as_str(), remote.insecure), ("https://cp:9300", true));
        assert_eq!(remote.load_timeout, ControlPlane::default().load_timeout);
        assert_eq!(config.validate(), Ok(()));
        // `--snapshots` replaces a configured control plane
        let mut config = config.clone();
        let files = Overrides {
            snapshots: Some("other/".into()),
            ..Overrides::default()
        };
        config.merge_overrides(&files).unwrap();
        assert_eq!(config.snapshot.files.as_deref(), Some(Path::new("other/")));
        assert_eq!(config.snapshot.control_plane, None);
    }

    #[test]
    fn a_flag_that_contradicts_the_file_is_refused() {
        let mut config = Config::parse("listen: {http_path_prefix: /authz}\n", false).unwrap();
        let nginx = Overrides {
            http_source: Some("nginx".to_owned()),
            ..Overrides::default()
        };
        assert_eq!(
            config.merge_overrides(&nginx).unwrap_err().to_string(),
            "`listen.http_path_prefix` applies to `http_source: envoy` only"
        );
    }

    #[test]
    fn mode_audit_logs_catalog_and_tls_have_flags() {
        let mut config = Config::parse(
            "tls: {cert: a.pem, key: a.key, min_version: '1.2'}
",
            false,
        )
        .unwrap();
        let flags = Overrides {
            dry_run: true,
            audit: Some("off".to_owned()),
            log_format: Some("text".to_owned()),
            catalog: Some("c.yaml".into()),
            tls: Some(("b.pem".into(), "b.key".into())),
            client_ca: Some("ca.pem".into()),
            ..Overrides::default()
        };
        config.merge_overrides(&flags).unwrap();
        assert_eq!(config.mode.get(), Mode::DryRun);
        assert_eq!(config.audit.sink, "off");
        assert_eq!(config.telemetry.log_format, "text");
        assert_eq!(config.catalog.as_deref(), Some(Path::new("c.yaml")));
        let tls = config.tls.as_ref().unwrap();
        assert_eq!(
            (tls.cert.as_path(), tls.key.as_path()),
            (Path::new("b.pem"), Path::new("b.key"))
        );
        assert_eq!(tls.client_ca.as_deref(), Some(Path::new("ca.pem")));
        assert_eq!(
            tls.min_version.get(),
            crate::tls::MinVersion::Tls12,
            "the file's other settings stay"
        );
        let mut plain = Config::default();
        let ca_only = Overrides {
            client_ca: Some("ca.pem".into()),
            ..Overrides::default()
        };
        assert_eq!(
            plain.merge_overrides(&ca_only),
            Err(ConfigError::ClientCaWithoutTls)
        );
    }

    #[test]
    fn a_control_plane_flag_without_a_scheme_fails_validation() {
        let mut config = Config::default();
        let flags = Overrides {
            control_plane: Some("127.0.0.1:9300".to_owned()),
            ..Overrides::default()
        };
        config.merge_overrides(&flags).unwrap();
        let errors = config.validate().unwrap_err().to_string();
        assert!(errors.contains("snapshot.control_plane.url"), "{errors}");
    }
}
