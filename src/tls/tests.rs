//! Unit tests of TLS file loading and reloading: key formats, refusals with their codes, and a
//! reload that keeps the served certificate when the new files are bad.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;

/// A self-signed certificate and its PKCS#8 key, as PEM.
fn self_signed(name: &str) -> (String, String) {
    let key = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
    (key.cert.pem(), key.signing_key.serialize_pem())
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn settings(cert: PathBuf, key: PathBuf) -> TlsSettings {
    TlsSettings {
        cert,
        key,
        client_ca: None,
        min_version: MinVersion::Tls13,
        reload_interval: RELOAD_INTERVAL,
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

fn load_error(settings: TlsSettings) -> TlsError {
    ServerTls::load(settings).unwrap_err()
}

#[test]
fn loads_pkcs8_sec1_and_pkcs1_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed("localhost");
    let pkcs8 = settings(
        write(dir.path(), "c.pem", &cert),
        write(dir.path(), "k.pem", &key),
    );
    let tls = ServerTls::load(pkcs8).unwrap();
    assert_eq!(tls.current_chain().len(), 1);
    for stem in ["ec-sec1", "rsa-pkcs1"] {
        let files = settings(fixture(&format!("{stem}.crt")), fixture(&format!("{stem}.key")));
        ServerTls::load(files).unwrap_or_else(|e| panic!("{stem}: {e}"));
    }
}

#[test]
fn configurations_offer_alpn_and_the_versions_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed("localhost");
    let mut files = settings(
        write(dir.path(), "c.pem", &cert),
        write(dir.path(), "k.pem", &key),
    );
    let tls = ServerTls::load(files.clone()).unwrap();
    assert_eq!(tls.config(Protocols::Grpc).alpn_protocols, [b"h2".to_vec()]);
    assert_eq!(
        tls.config(Protocols::Http).alpn_protocols,
        [b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    assert_eq!(MinVersion::parse("1.3").unwrap().versions().len(), 1);
    files.min_version = MinVersion::parse("1.2").unwrap();
    assert_eq!(files.min_version.versions().len(), 2);
    assert_eq!(MinVersion::parse("1.1"), None);
}

#[test]
fn bad_files_are_refused_with_their_code() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed("localhost");
    let (other_cert, _) = self_signed("other");
    let cert = write(dir.path(), "c.pem", &cert);
    let key = write(dir.path(), "k.pem", &key);
    let missing = dir.path().join("missing.pem");
    let garbage = write(dir.path(), "garbage.pem", "not pem at all\n");
    let other = write(dir.path(), "other.pem", &other_cert);

    let error = load_error(settings(missing.clone(), key.clone()));
    assert_eq!(error.code(), "tls_read");
    assert!(error.to_string().contains("missing.pem"), "{error}");
    assert_eq!(
        load_error(settings(garbage.clone(), key.clone())).code(),
        "tls_no_certificate"
    );
    assert_eq!(
        load_error(settings(cert.clone(), cert.clone())).code(),
        "tls_no_key"
    );
    let mismatch = load_error(settings(other.clone(), key.clone()));
    assert_eq!(mismatch.code(), "tls_key", "{mismatch}");
    let mut with_ca = settings(cert.clone(), key.clone());
    with_ca.client_ca = Some(garbage);
    assert_eq!(load_error(with_ca.clone()).code(), "tls_no_certificate");
    with_ca.client_ca = Some(missing);
    assert_eq!(load_error(with_ca).code(), "tls_read");
}

#[test]
fn reload_swaps_a_good_pair_and_keeps_the_old_one_on_a_bad_pair() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed("localhost");
    let files = settings(
        write(dir.path(), "c.pem", &cert),
        write(dir.path(), "k.pem", &key),
    );
    let tls = ServerTls::load(files.clone()).unwrap();
    let first = tls.current_chain();
    assert!(!tls.reload().unwrap(), "nothing changed");

    let (next_cert, next_key) = self_signed("localhost");
    std::fs::write(&files.cert, &next_cert).unwrap();
    let half_written = tls.reload().unwrap_err();
    assert_eq!(half_written.code(), "tls_key", "new cert with the old key");
    assert_eq!(tls.current_chain(), first);
    assert!(!tls.reload().unwrap(), "a rejected pair is reported once");
    std::fs::write(&files.key, &next_key).unwrap();
    assert!(tls.reload().unwrap());
    let second = tls.current_chain();
    assert_ne!(second, first);

    std::fs::write(&files.cert, "garbage").unwrap();
    assert_eq!(tls.reload().unwrap_err().code(), "tls_no_certificate");
    assert_eq!(tls.current_chain(), second);
    std::fs::remove_file(&files.key).unwrap();
    assert_eq!(tls.reload().unwrap_err().code(), "tls_read");
    assert_eq!(tls.current_chain(), second);
}

#[test]
fn reload_rebuilds_the_configurations_when_the_client_ca_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed("localhost");
    let (ca, _) = self_signed("ca");
    let mut files = settings(
        write(dir.path(), "c.pem", &cert),
        write(dir.path(), "k.pem", &key),
    );
    files.client_ca = Some(write(dir.path(), "ca.pem", &ca));
    let tls = Arc::new(ServerTls::load(files.clone()).unwrap());
    let before = tls.config(Protocols::Grpc);
    assert!(!tls.reload().unwrap());
    assert!(Arc::ptr_eq(&before, &tls.config(Protocols::Grpc)));
    let (next_ca, _) = self_signed("ca2");
    std::fs::write(files.client_ca.as_ref().unwrap(), next_ca).unwrap();
    assert!(tls.reload().unwrap());
    assert!(!Arc::ptr_eq(&before, &tls.config(Protocols::Grpc)));
}
