//! JWT helpers for the integration tests and benches: fixture keys, signing, JWK sets, and a JWKS
//! (plus OIDC discovery) server on 127.0.0.1:0 whose keys can be rotated and which can be taken down.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State as AxumState;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// A fixture key pair: its kid, algorithm and private key PEM.
#[derive(Clone, Copy)]
pub struct Signer {
    pub kid: &'static str,
    pub alg: Algorithm,
    pub pem: &'static str,
}

pub const RSA1: Signer = Signer {
    kid: "rsa1",
    alg: Algorithm::RS256,
    pem: include_str!("../fixtures/jwt/rsa1.key.pem"),
};
pub const RSA2: Signer = Signer {
    kid: "rsa2",
    alg: Algorithm::RS256,
    pem: include_str!("../fixtures/jwt/rsa2.key.pem"),
};
pub const EC1: Signer = Signer {
    kid: "ec1",
    alg: Algorithm::ES256,
    pem: include_str!("../fixtures/jwt/ec1.key.pem"),
};
pub const ED1: Signer = Signer {
    kid: "ed1",
    alg: Algorithm::EdDSA,
    pem: include_str!("../fixtures/jwt/ed1.key.pem"),
};
/// The RSA public key of RSA1 as PEM (for the HMAC-confusion attack).
pub const RSA1_PUBLIC_PEM: &str = include_str!("../fixtures/jwt/rsa1.pub.pem");
/// The path of RSA2's public key, relative to the crate root.
pub const RSA2_PUBLIC_PATH: &str = "tests/fixtures/jwt/rsa2.pub.pem";

impl Signer {
    pub fn encoding_key(&self) -> EncodingKey {
        match self.alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(self.pem.as_bytes()),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(self.pem.as_bytes()),
            _ => EncodingKey::from_rsa_pem(self.pem.as_bytes()),
        }
        .unwrap()
    }

    /// Signs `claims` with this key, naming its kid.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.kid, claims)
    }

    /// Signs `claims` with this key but names `kid` in the header.
    pub fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding_key()).unwrap()
    }

    /// The public JWK, with kid and alg.
    pub fn jwk(&self) -> Value {
        let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&self.encoding_key(), self.alg).unwrap();
        let mut jwk = serde_json::to_value(jwk).unwrap();
        jwk["kid"] = json!(self.kid);
        jwk["use"] = json!("sig");
        jwk
    }
}

/// A JWK set of these keys.
pub fn jwks(signers: &[Signer]) -> String {
    json!({"keys": signers.iter().map(Signer::jwk).collect::<Vec<_>>()}).to_string()
}

/// The current Unix time.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

#[derive(Default)]
struct Published {
    jwks: std::sync::Mutex<String>,
    issuer: std::sync::Mutex<String>,
    down: AtomicBool,
    jwks_requests: AtomicUsize,
}

/// A JWKS + OIDC discovery server on 127.0.0.1:0.
pub struct JwksServer {
    pub base: String,
    published: Arc<Published>,
    task: tokio::task::JoinHandle<()>,
}

async fn discovery(AxumState(p): AxumState<Arc<Published>>) -> axum::response::Response {
    if p.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let issuer = p.issuer.lock().unwrap().clone();
    axum::Json(json!({"issuer": issuer, "jwks_uri": format!("{}jwks.json", issuer)})).into_response()
}

async fn keys(AxumState(p): AxumState<Arc<Published>>) -> axum::response::Response {
    p.jwks_requests.fetch_add(1, Ordering::SeqCst);
    if p.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let body = p.jwks.lock().unwrap().clone();
    (
        [
            ("content-type", "application/json"),
            ("cache-control", "max-age=3600"),
        ],
        body,
    )
        .into_response()
}

impl JwksServer {
    /// Serves `signers`' public keys at `<base>jwks.json` and discovery at
    /// `<base>.well-known/openid-configuration`; `base` (also the issuer) ends in `/`.
    pub async fn start(signers: &[Signer]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/", listener.local_addr().unwrap());
        let published = Arc::new(Published::default());
        *published.jwks.lock().unwrap() = jwks(signers);
        *published.issuer.lock().unwrap() = base.clone();
        let app = axum::Router::new()
            .route("/.well-known/openid-configuration", axum::routing::get(discovery))
            .route("/jwks.json", axum::routing::get(keys))
            .with_state(Arc::clone(&published));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            base,
            published,
            task,
        }
    }

    /// Publishes a new key set.
    pub fn publish(&self, signers: &[Signer]) {
        *self.published.jwks.lock().unwrap() = jwks(signers);
    }

    /// Takes the endpoints down (503) or brings them back.
    pub fn set_down(&self, down: bool) {
        self.published.down.store(down, Ordering::SeqCst);
    }

    /// How many JWKS requests arrived.
    pub fn jwks_requests(&self) -> usize {
        self.published.jwks_requests.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
