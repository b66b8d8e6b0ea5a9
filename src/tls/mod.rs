//! TLS and mTLS for the sidecar's gRPC and HTTP listeners (docs/formats.md `tls`) and the control
//! plane's listener: a rustls server configuration
//! built from PEM files on the ring provider, an optional client-certificate requirement
//! (`client_ca`), a minimum protocol version, and certificates reloaded when their files change.
//!
//! [`ServerTls`] owns the configuration; [`Listener`](listener::Listener) accepts connections with
//! it. The served certificate sits behind a [`ResolvesServerCert`] that reads an [`ArcSwap`], so a
//! reload swaps it under live listeners; a new client CA rebuilds the per-listener configurations,
//! which every new handshake reads afresh. A reload that fails keeps what is served and logs why.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier, danger::ClientCertVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

mod error;
mod http_server;
pub mod listener;
mod refusals;

pub use error::TlsError;
pub use http_server::serve_router;
pub use listener::{Closed, Conn, ConnectionLimits, Listener};

/// How often the certificate, key and client-CA files are checked for changes (SIGHUP also
/// triggers a check).
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// The lowest TLS version a listener accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinVersion {
    /// TLS 1.2 and 1.3.
    Tls12,
    /// TLS 1.3 only (the default: the peer is a proxy we configure, so nothing needs 1.2).
    Tls13,
}

static TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

impl MinVersion {
    /// Parses `1.2` or `1.3`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "1.2" => Some(Self::Tls12),
            "1.3" => Some(Self::Tls13),
            _ => None,
        }
    }

    fn versions(self) -> &'static [&'static SupportedProtocolVersion] {
        match self {
            Self::Tls12 => rustls::ALL_VERSIONS,
            Self::Tls13 => TLS13_ONLY,
        }
    }
}

impl std::fmt::Display for MinVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Tls12 => "1.2",
            Self::Tls13 => "1.3",
        })
    }
}

/// Which application protocols a listener offers by ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocols {
    /// The gRPC listener: `h2`.
    Grpc,
    /// The HTTP listener: `h2` and `http/1.1`.
    Http,
}

impl Protocols {
    fn alpn(self) -> Vec<Vec<u8>> {
        match self {
            Self::Grpc => vec![b"h2".to_vec()],
            Self::Http => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        }
    }
}

/// Where the certificates come from and how they are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// The private key (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub key: PathBuf,
    /// CA certificates (PEM); when set, every client must present a certificate they issued.
    pub client_ca: Option<PathBuf>,
    /// The lowest TLS version accepted.
    pub min_version: MinVersion,
    /// How often the files are checked for changes.
    pub reload_interval: Duration,
}

/// Serves the current certificate to every handshake; [`ServerTls::reload`] replaces it.
#[derive(Debug)]
struct CurrentCert(ArcSwap<CertifiedKey>);

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

/// Digests of the files last loaded (or last tried: a bad file is reported once, not every poll).
#[derive(Debug)]
struct Seen {
    pair: [u8; 32],
    client_ca: Option<[u8; 32]>,
}

/// The listeners' TLS: configurations per listener kind over one reloadable certificate.
#[derive(Debug)]
pub struct ServerTls {
    settings: TlsSettings,
    provider: Arc<CryptoProvider>,
    cert: Arc<CurrentCert>,
    grpc: ArcSwap<ServerConfig>,
    http: ArcSwap<ServerConfig>,
    seen: Mutex<Seen>,
}

impl ServerTls {
    /// Reads the files and builds the configurations; any error is fatal here (nothing to keep).
    /// Does blocking file I/O.
    pub fn load(settings: TlsSettings) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (cert_pem, key_pem) = (read(&settings.cert)?, read(&settings.key)?);
        let key = certified_key(&settings, &cert_pem, &key_pem, &provider)?;
        let cert = Arc::new(CurrentCert(ArcSwap::from_pointee(key)));
        let (verifier, client_ca) = match &settings.client_ca {
            Some(path) => {
                let pem = read(path)?;
                (
                    Some(client_verifier(path, &pem, &provider)?),
                    Some(digest(&[&pem])),
                )
            }
            None => (None, None),
        };
        let config = |protocols| server_config(&settings, &provider, &cert, verifier.clone(), protocols);
        let (grpc, http) = (config(Protocols::Grpc)?, config(Protocols::Http)?);
        Ok(Self {
            seen: Mutex::new(Seen {
                pair: digest(&[&cert_pem, &key_pem]),
                client_ca,
            }),
            grpc: ArcSwap::from_pointee(grpc),
            http: ArcSwap::from_pointee(http),
            settings,
            provider,
            cert,
        })
    }

    /// The settings it was loaded with.
    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// The configuration a new handshake on a `protocols` listener uses.
    pub fn config(&self, protocols: Protocols) -> Arc<ServerConfig> {
        match protocols {
            Protocols::Grpc => self.grpc.load_full(),
            Protocols::Http => self.http.load_full(),
        }
    }

    /// The certificate chain served now (leaf first).
    pub fn current_chain(&self) -> Vec<CertificateDer<'static>> {
        self.cert.0.load().cert.clone()
    }

    /// Re-reads the files and publishes what changed; returns whether anything did. On error
    /// (unreadable file, bad PEM, key not matching the certificate, bad CA) what is served stays.
    /// Does blocking file I/O: call it from a blocking context.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let (cert_pem, key_pem) = (read(&self.settings.cert)?, read(&self.settings.key)?);
        let ca_pem = self.settings.client_ca.as_deref().map(read).transpose()?;
        let pair = digest(&[&cert_pem, &key_pem]);
        let client_ca = ca_pem.as_ref().map(|pem| digest(&[pem]));
        let Ok(mut seen) = self.seen.lock() else {
            return Ok(false);
        };
        let mut changed = false;
        if pair != seen.pair {
            seen.pair = pair;
            let key = certified_key(&self.settings, &cert_pem, &key_pem, &self.provider)?;
            self.cert.0.store(Arc::new(key));
            changed = true;
        }
        if let (Some(path), Some(pem)) = (&self.settings.client_ca, &ca_pem)
            && client_ca != seen.client_ca
        {
            seen.client_ca = client_ca;
            let verifier = client_verifier(path, pem, &self.provider)?;
            let config = |protocols| {
                server_config(
                    &self.settings,
                    &self.provider,
                    &self.cert,
                    Some(Arc::clone(&verifier)),
                    protocols,
                )
            };
            let (grpc, http) = (config(Protocols::Grpc)?, config(Protocols::Http)?);
            self.grpc.store(Arc::new(grpc));
            self.http.store(Arc::new(http));
            changed = true;
        }
        Ok(changed)
    }

    /// Checks the files every `reload_interval` and on SIGHUP, until the task is aborted.
    pub fn spawn_reloader(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let tls = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(tls.settings.reload_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            let mut hangup = hangups();
            loop {
                tokio::select! {
                    _ = tick.tick() => {},
                    () = next_hangup(&mut hangup) => {},
                }
                let polled = Arc::clone(&tls);
                match tokio::task::spawn_blocking(move || polled.reload()).await {
                    Ok(Ok(true)) => tracing::info!(code = "tls_reloaded", "tls: certificates reloaded"),
                    Ok(Ok(false)) | Err(_) => {}
                    Ok(Err(error)) => tracing::warn!(
                        code = error.code(),
                        %error,
                        "tls: new certificate files rejected; still serving the previous ones"
                    ),
                }
            }
        })
    }
}

/// A subscription to SIGHUP (nothing off Unix). Subscribing replaces SIGHUP's default action
/// (exit) for the whole process.
#[cfg(unix)]
pub(crate) type Hangups = Option<tokio::signal::unix::Signal>;
/// A subscription to SIGHUP (nothing off Unix).
#[cfg(not(unix))]
pub(crate) type Hangups = ();

/// Subscribes to SIGHUP; call it before the signal may arrive.
#[cfg(unix)]
pub(crate) fn hangups() -> Hangups {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}

/// Subscribes to SIGHUP; call it before the signal may arrive.
#[cfg(not(unix))]
pub(crate) fn hangups() -> Hangups {}

/// Completes at the next SIGHUP (never, when the subscription failed).
#[cfg(unix)]
pub(crate) async fn next_hangup(signal: &mut Hangups) {
    if let Some(stream) = signal
        && stream.recv().await.is_some()
    {
        return;
    }
    *signal = None;
    std::future::pending::<()>().await;
}

/// Completes at the next SIGHUP (never off Unix).
#[cfg(not(unix))]
pub(crate) async fn next_hangup(_signal: &mut Hangups) {
    std::future::pending::<()>().await;
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            path: path.display().to_string(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.display().to_string(),
        });
    }
    Ok(certs)
}

fn certified_key(
    settings: &TlsSettings,
    cert_pem: &[u8],
    key_pem: &[u8],
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = certificates(&settings.cert, cert_pem)?;
    let path = settings.key.display().to_string();
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|source| match source {
        pem::Error::NoItemsFound => TlsError::NoKey { path: path.clone() },
        source => TlsError::Pem {
            path: path.clone(),
            source,
        },
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|source| TlsError::Key { path, source })
}

fn client_verifier(
    path: &Path,
    pem: &[u8],
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path, pem)? {
        roots.add(cert).map_err(|source| TlsError::CaCert {
            path: path.display().to_string(),
            source,
        })?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
        .build()
        .map_err(|source| TlsError::Verifier {
            path: path.display().to_string(),
            source,
        })
}

fn server_config(
    settings: &TlsSettings,
    provider: &Arc<CryptoProvider>,
    cert: &Arc<CurrentCert>,
    verifier: Option<Arc<dyn ClientCertVerifier>>,
    protocols: Protocols,
) -> Result<ServerConfig, TlsError> {
    let builder = ServerConfig::builder_with_provider(Arc::clone(provider))
        .with_protocol_versions(settings.min_version.versions())
        .map_err(TlsError::Config)?;
    let builder = match verifier {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::clone(cert) as Arc<dyn ResolvesServerCert>);
    config.alpn_protocols = protocols.alpn();
    Ok(config)
}

#[cfg(test)]
mod tests;
