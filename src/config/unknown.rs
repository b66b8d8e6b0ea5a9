//! Every unknown field of a configuration at once. serde stops at the first unknown field, so a
//! file with three typos took three runs to fix; [`unknown_fields`] reads the document again as a
//! tree, removing each unknown field it meets, and names them all by path.

use serde::de::DeserializeOwned;

/// At most this many unknown fields are listed.
const MAX_LISTED: usize = 50;

/// The unknown fields of a YAML (or JSON, which is YAML) document for `T`, each as
/// "`path`: unknown field …"; empty when the first error is something else.
pub(super) fn unknown_fields<T: DeserializeOwned>(text: &str) -> Vec<String> {
    let Ok(mut tree) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    while found.len() < MAX_LISTED {
        let Err(error) = serde_path_to_error::deserialize::<_, T>(tree.clone()) else {
            break;
        };
        let message = error.inner().to_string();
        if !message.starts_with("unknown field") {
            break;
        }
        let path = error.path().to_string();
        let Some(name) = message.split('`').nth(1) else {
            break;
        };
        if !remove(&mut tree, &path, name) {
            break;
        }
        found.push(format!("`{path}`: {message}"));
    }
    found
}

/// Removes the key `name` of the mapping at the parent of `path` (`a.b[2].name`); whether it was
/// there.
fn remove(tree: &mut serde_yaml_ng::Value, path: &str, name: &str) -> bool {
    let parent = path.strip_suffix(name).unwrap_or(path).trim_end_matches('.');
    let mut node = tree;
    for segment in parent.split('.').filter(|s| !s.is_empty() && *s != "?") {
        let (key, indexes) = segment.split_once('[').unwrap_or((segment, ""));
        if !key.is_empty() {
            let Some(next) = node.get_mut(key) else {
                return false;
            };
            node = next;
        }
        for index in indexes.split('[').filter(|i| !i.is_empty()) {
            let Some(next) = index
                .trim_end_matches(']')
                .parse::<usize>()
                .ok()
                .and_then(|i| node.get_mut(i))
            else {
                return false;
            };
            node = next;
        }
    }
    node.as_mapping_mut()
        .is_some_and(|map| map.remove(name).is_some())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::config::Config;

    #[test]
    fn every_unknown_field_is_named_by_its_path_in_one_run() {
        let text = "listn: {grpc: 1}\ncache: {token: 5}\njwt: {issuers: [{issuer: x, keyz: []}]}\n";
        let error = Config::parse(text, false).unwrap_err();
        for path in ["`listn`", "`cache.token`", "`jwt.issuers[0].keyz`"] {
            assert!(error.contains(path), "no {path} in {error}");
        }
        // one unknown field keeps serde's own message, with its line and column
        let one = Config::parse("cache: {token: 5}\n", false).unwrap_err();
        assert!(
            one.contains("unknown field `token`") && one.contains("line 1"),
            "{one}"
        );
    }
}
