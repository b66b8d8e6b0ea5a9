//! `serve`'s command-line flags as changes to the configuration: each flag given replaces the
//! value of the file (or of the default configuration), so the server reads every setting from
//! one [`Config`].

use std::path::PathBuf;

use super::{Config, ConfigError, ControlPlane};

/// The values `serve`'s flags give; `None` (or `false`) leaves the configuration's value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--listen`: `listen.grpc`.
    pub grpc: Option<String>,
    /// `--http-listen`: `listen.http`.
    pub http: Option<String>,
    /// `--http-source`: `listen.http_source`.
    pub http_source: Option<String>,
    /// `--admin-listen`: `listen.admin`.
    pub admin: Option<String>,
    /// `--snapshots`: `snapshot.files`, replacing any `snapshot.control_plane`.
    pub snapshots: Option<PathBuf>,
    /// `--control-plane`: `snapshot.control_plane.url` (the section's other settings are kept, or
    /// their defaults), replacing any `snapshot.files`.
    pub control_plane: Option<String>,
    /// `--control-plane-insecure`: `snapshot.control_plane.insecure: true`.
    pub control_plane_insecure: bool,
    /// `--routes`: `routes`.
    pub routes: Option<PathBuf>,
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
        if let Some(files) = &overrides.snapshots {
            self.snapshot.files = Some(files.clone());
            self.snapshot.control_plane = None;
        } else if let Some(url) = &overrides.control_plane {
            self.snapshot.files = None;
            let remote = self
                .snapshot
                .control_plane
                .get_or_insert_with(ControlPlane::default);
            url.clone_into(&mut remote.url);
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
            ..Overrides::default()
        };
        config.merge_overrides(&flags).unwrap();
        assert_eq!(config.listen.grpc, "127.0.0.1:9");
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
}
