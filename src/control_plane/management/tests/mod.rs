//! In-process tests of the management API: a real listener on 127.0.0.1:0 over a [`MemoryStore`]
//! seeded with one account, driven by reqwest.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::Management;
use super::audit::ChangeLog;
use crate::audit::sink::LineSink;
use crate::authn::api_key::{TokenKind, mint};
use crate::control_plane::Store;
use crate::rbac::Catalog;
use crate::rbac::model::{AccountSnapshot, FileFormat};
use crate::tls::{ConnectionLimits, Listener, Protocols};

mod assignment_queries;
mod errors;
mod flows;
mod tokens;
mod users;

/// The seed: org `eng` with project `pay`; service account `admin` (account admin) and `viewer`
/// (account viewer), each with one token; user `alice`.
const SEED: &str = r#"
account: acme
version: 1
organizations:
  - {identifier: eng, projects: [pay]}
users:
  - {identifier: alice}
service_accounts:
  - {identifier: admin}
  - {identifier: viewer}
role_assignments:
  - {identifier: ra_admin, principal: {type: SERVICE_ACCOUNT, identifier: admin}, role: _account_admin, resource_group: _all_resources_including_child_scopes}
  - {identifier: ra_viewer, principal: {type: SERVICE_ACCOUNT, identifier: viewer}, role: _account_viewer, resource_group: _all_resources_including_child_scopes}
api_keys:
  - identifier: admin_key
    parent: {type: SERVICE_ACCOUNT, identifier: admin}
    tokens: [{identifier: t, id: ADMINID, secret_hash: "ADMINHASH", valid_from: "2020-01-01T00:00:00Z", valid_to: "2099-01-01T00:00:00Z"}]
  - identifier: viewer_key
    parent: {type: SERVICE_ACCOUNT, identifier: viewer}
    tokens: [{identifier: t, id: VIEWERID, secret_hash: "VIEWERHASH", valid_from: "2020-01-01T00:00:00Z", valid_to: "2099-01-01T00:00:00Z"}]
"#;

/// Lines written to the change log.
#[derive(Clone, Default)]
pub struct Lines(pub Arc<Mutex<Vec<u8>>>);

impl LineSink for Lines {
    fn write_line(&mut self, line: &[u8]) -> std::io::Result<()> {
        self.0.lock().unwrap().extend_from_slice(line);
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A running management API.
pub struct Harness {
    pub url: String,
    pub served: Arc<Store>,
    pub admin: String,
    pub viewer: String,
    pub log: Lines,
    client: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// An answer: status, body, `x-scopegate-revision`.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub revision: Option<u64>,
}

impl Harness {
    pub async fn start() -> Self {
        let catalog = Arc::new(Catalog::embedded().unwrap());
        let admin = mint("acme", TokenKind::Sat, Some("ADMINID")).unwrap();
        let viewer = mint("acme", TokenKind::Sat, Some("VIEWERID")).unwrap();
        let yaml = SEED
            .replace("ADMINHASH", &admin.secret_hash)
            .replace("VIEWERHASH", &viewer.secret_hash);
        let served = Arc::new(Store::default());
        served
            .publish(AccountSnapshot::parse(&yaml, FileFormat::Yaml).unwrap())
            .unwrap();
        let log = Lines::default();
        let management = Arc::new(Management::over_folder(
            catalog,
            Arc::clone(&served),
            ChangeLog::new(Box::new(log.clone())),
        ));
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", tcp.local_addr().unwrap());
        let listener = Listener::with_limits(tcp, None, Protocols::Http, ConnectionLimits::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(super::serve_on(listener, management, async move {
            let _ = stopped.await;
        }));
        Self {
            url,
            served,
            admin: admin.token,
            viewer: viewer.token,
            log,
            client: reqwest::Client::new(),
            _stop: stop,
        }
    }

    /// The document served now.
    pub fn document(&self) -> AccountSnapshot {
        (*self.served.current("acme").unwrap()).clone()
    }

    /// `method path` with `token` (as `x-api-key`) and a raw body.
    pub async fn raw(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.client.request(method, format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.header("x-api-key", token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let revision = response
            .headers()
            .get("x-scopegate-revision")
            .map(|v| v.to_str().unwrap().parse().unwrap());
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            body,
            revision,
        }
    }

    /// [`Self::raw`] as the admin, with a JSON body.
    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let body = body.map(|b| b.to_string());
        self.raw(method, path, Some(&self.admin.clone()), body.as_deref())
            .await
    }
}

/// Asserts a Harness `Failure` with `status` and `code` whose message contains `needle`.
pub fn assert_failure(answer: &Answer, status: u16, code: &str, needle: &str) {
    assert_eq!(answer.status, status, "{answer:?}");
    assert_eq!(answer.body["status"], "ERROR", "{answer:?}");
    assert_eq!(answer.body["code"], code, "{answer:?}");
    let message = answer.body["message"].as_str().unwrap();
    assert!(message.contains(needle), "`{message}` lacks `{needle}`");
    assert!(answer.body["correlationId"].is_string(), "{answer:?}");
    assert_eq!(
        answer.revision, None,
        "a refused write produced a revision: {answer:?}"
    );
}
