//! The files a configuration names. A relative path in a configuration file is resolved against
//! that file's folder, so the file means the same whatever the working directory (paths given as
//! flags stay relative to the working directory, as a shell user expects). [`Config::missing_files`]
//! lists the named files that do not exist, for `scopegate validate`.

use std::path::{Path, PathBuf};

use super::{Config, ConfigError};

/// The prefix of a file audit sink.
const FILE_SINK: &str = "file:";

impl Config {
    /// Resolves every relative path the configuration names against `base` (the configuration
    /// file's folder). Empty paths are left for [`Config::validate`] to refuse.
    pub fn resolve_paths(&mut self, base: &Path) {
        self.visit_paths(&mut |_, path, _| {
            if !path.as_os_str().is_empty() && path.is_relative() {
                *path = base.join(&*path);
            }
        });
    }

    /// Every named file that must exist and does not (the audit file and the last-known-good
    /// folder are created when needed; the snapshot path may be waited for).
    pub fn missing_files(&self) -> Vec<ConfigError> {
        let mut missing = Vec::new();
        let mut copy = self.clone();
        copy.visit_paths(&mut |field, path, must_exist| {
            if must_exist && !path.as_os_str().is_empty() && !path.exists() {
                missing.push(ConfigError::MissingFile {
                    field: field.to_owned(),
                    path: path.display().to_string(),
                });
            }
        });
        missing
    }

    /// Calls `visit(field, path, must_exist)` for each path the configuration names.
    fn visit_paths(&mut self, visit: &mut dyn FnMut(&str, &mut PathBuf, bool)) {
        if let Some(tls) = &mut self.tls {
            visit("tls.cert", &mut tls.cert, true);
            visit("tls.key", &mut tls.key, true);
            if let Some(ca) = &mut tls.client_ca {
                visit("tls.client_ca", ca, true);
            }
        }
        let wait = self.snapshot.wait_for_files;
        if let Some(files) = &mut self.snapshot.files {
            visit("snapshot.files", files, !wait);
        }
        if let Some(dir) = &mut self.snapshot.cache_dir {
            visit("snapshot.cache_dir", dir, false);
        }
        if let Some(remote) = &mut self.snapshot.control_plane {
            for (field, path) in [
                ("snapshot.control_plane.ca", &mut remote.ca),
                ("snapshot.control_plane.cert", &mut remote.cert),
                ("snapshot.control_plane.key", &mut remote.key),
            ] {
                if let Some(path) = path {
                    visit(field, path, true);
                }
            }
        }
        if let Some(routes) = &mut self.routes {
            visit("routes", routes, true);
        }
        if let Some(catalog) = &mut self.catalog {
            visit("catalog", catalog, true);
        }
        for issuer in &mut self.jwt.issuers {
            for key in &mut issuer.keys {
                visit("jwt.issuers[].keys", key, true);
            }
            if let Some(ca) = &mut issuer.ca {
                visit("jwt.issuers[].ca", ca, true);
            }
        }
        if let Some(file) = self.audit.sink.strip_prefix(FILE_SINK) {
            let mut path = PathBuf::from(file);
            visit("audit.sink", &mut path, false);
            self.audit.sink = format!("{FILE_SINK}{}", path.display());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use super::Config;

    #[test]
    fn relative_paths_resolve_against_the_file_and_absolute_ones_stay() {
        let text = "routes: r.yaml\ncatalog: /etc/c.yaml\nsnapshot: {files: snaps/}\n\
                    audit: {sink: 'file:log/a.jsonl'}\ntls: {cert: t.pem, key: t.key}\n";
        let mut config = Config::parse(text, false).unwrap();
        config.resolve_paths(Path::new("/srv/conf"));
        assert_eq!(config.routes.as_deref(), Some(Path::new("/srv/conf/r.yaml")));
        assert_eq!(config.catalog.as_deref(), Some(Path::new("/etc/c.yaml")));
        assert_eq!(
            config.snapshot.files.as_deref(),
            Some(Path::new("/srv/conf/snaps/"))
        );
        assert_eq!(config.audit.sink, "file:/srv/conf/log/a.jsonl");
        assert_eq!(config.tls.as_ref().unwrap().key, Path::new("/srv/conf/t.key"));
    }

    #[test]
    fn missing_files_are_named_by_field() {
        let text =
            "routes: /nonexistent/r.yaml\nsnapshot: {files: /nonexistent/s/, cache_dir: /nonexistent/c}\n";
        let config = Config::parse(text, false).unwrap();
        let missing: Vec<String> = config.missing_files().iter().map(ToString::to_string).collect();
        assert_eq!(missing.len(), 2, "{missing:?}");
        assert!(missing[0].contains("snapshot.files"), "{missing:?}");
        assert!(missing[1].contains("routes"), "{missing:?}");
    }
}
