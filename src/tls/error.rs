//! Errors of the TLS setup: reading and parsing certificate, key and client-CA files, and building
//! the rustls configuration.

/// Why a TLS configuration could not be built (at startup: fatal; on reload: the old one stays).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate, key or CA file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not valid PEM.
    #[error("invalid pem in `{path}`: {source}")]
    Pem {
        /// The file.
        path: String,
        /// The parser's error.
        source: rustls_pki_types::pem::Error,
    },
    /// The certificate file holds no certificate (or the CA file no CA certificate).
    #[error("no certificate in `{path}`")]
    NoCertificate {
        /// The file.
        path: String,
    },
    /// The key file holds no private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
    #[error("no private key in `{path}`")]
    NoKey {
        /// The file.
        path: String,
    },
    /// The private key is not supported or does not match the certificate.
    #[error("private key `{path}` cannot be used with its certificate: {source}")]
    Key {
        /// The key file.
        path: String,
        /// The rustls error.
        source: rustls::Error,
    },
    /// A client-CA certificate was rejected.
    #[error("client ca `{path}`: {source}")]
    CaCert {
        /// The CA file.
        path: String,
        /// The rustls error.
        source: rustls::Error,
    },
    /// The client-certificate verifier could not be built from the CA file.
    #[error("client ca `{path}`: {source}")]
    Verifier {
        /// The CA file.
        path: String,
        /// The rustls error.
        source: rustls::server::VerifierBuilderError,
    },
    /// rustls refused the configuration.
    #[error("tls configuration: {0}")]
    Config(rustls::Error),
}

impl TlsError {
    /// A stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Read { .. } => "tls_read",
            Self::Pem { .. } => "tls_pem",
            Self::NoCertificate { .. } => "tls_no_certificate",
            Self::NoKey { .. } => "tls_no_key",
            Self::Key { .. } => "tls_key",
            Self::CaCert { .. } | Self::Verifier { .. } => "tls_client_ca",
            Self::Config(_) => "tls_config",
        }
    }
}
