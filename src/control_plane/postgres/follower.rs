//! A replica's view of the database: the task that keeps the in-memory [`Store`] (what Watch and
//! Get serve) equal to what PostgreSQL holds.
//!
//! At start it loads every account. Then it waits for either a notification on [`CHANNEL`]
//! (`account:revision`, a hint: that account is reloaded if the revision is newer than the one
//! served) or the poll tick, when it reads every account's revision and reloads each one newer
//! than the one served. The poll is what makes a lost notification harmless (a listener that
//! reconnected, a `NOTIFY` sent while this replica was starting): a change is served at most one
//! poll interval late.
//!
//! An account this replica already serves catches up from the change log: the deltas written
//! with each revision after the one served, each applied to a copy of the document last published
//! and published one by one (no read of the whole account, no full compile: the writer compiled
//! each revision before committing it, and every sidecar compiles what it receives and refuses
//! what does not compile). When the log has a gap or a revision without a delta (written before
//! the delta column, or too large to log), the account is read whole: in one statement, so it is
//! one committed revision, and compiled before it is published, as the folder scanner does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};

use prost::Message as _;
use sqlx::Row as _;

use crate::control_plane::Store;
use crate::control_plane::postgres::{CHANNEL, DatabaseError, from_db, read_account, revisions, to_db};
use crate::proto::AccountDelta as WireDelta;
use crate::proto::delta::from_wire;
use crate::rbac::{Catalog, compile};

/// The most change-log rows one catch-up reads; an account further behind is read whole.
const MAX_CATCH_UP: i64 = 256;

/// The default poll interval.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Feeds a [`Store`] from the database.
#[derive(Debug, Clone)]
pub struct Follower {
    pool: PgPool,
    catalog: Arc<Catalog>,
    store: Arc<Store>,
    poll: Duration,
    /// The revision of each account last refused (it does not compile against this replica's
    /// catalog): not read again until a newer one is committed.
    refused: Arc<Mutex<HashMap<String, u64>>>,
    /// Revisions published from the change log, and accounts read whole.
    counts: Arc<(AtomicU64, AtomicU64)>,
}

impl Follower {
    /// A follower of `pool` publishing to `store`, polling every `poll`.
    pub fn new(pool: PgPool, catalog: Arc<Catalog>, store: Arc<Store>, poll: Duration) -> Self {
        Self {
            pool,
            catalog,
            store,
            poll,
            refused: Arc::default(),
            counts: Arc::default(),
        }
    }

    /// How many revisions were published from the change log's deltas, and how many times an
    /// account was read whole, since start.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.counts.0.load(Ordering::Relaxed),
            self.counts.1.load(Ordering::Relaxed),
        )
    }

    /// The revision served, or refused last, of `account` (0: none).
    fn served(&self, account: &str) -> u64 {
        let served = self.store.current(account).map_or(0, |s| s.version);
        let refused = self
            .refused
            .lock()
            .map_or(0, |r| r.get(account).copied().unwrap_or(0));
        served.max(refused)
    }

    /// Brings `account` up to the database's revision and publishes it; returns whether a new
    /// revision was published. From the change log when it can, otherwise read whole.
    pub async fn reload(&self, account: &str) -> Result<bool, DatabaseError> {
        if let Some(published) = self.catch_up(account).await? {
            return Ok(published);
        }
        self.read_whole(account).await
    }

    /// Applies the logged deltas after the revision served; `None` when there is nothing served
    /// to apply them to, or the log cannot take it to the newest revision (a gap, a revision
    /// without a delta, a delta that does not apply).
    async fn catch_up(&self, account: &str) -> Result<Option<bool>, DatabaseError> {
        let Some(served) = self.store.current(account) else {
            return Ok(None);
        };
        let Ok(from) = to_db(served.version) else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT c.revision, c.delta, a.revision AS newest
               FROM change_log c JOIN accounts a ON a.account = c.account
              WHERE c.account = $1 AND c.revision > $2
              ORDER BY c.revision LIMIT $3",
        )
        .bind(account)
        .bind(from)
        .bind(MAX_CATCH_UP)
        .fetch_all(&self.pool)
        .await?;
        let mut logged = Vec::with_capacity(rows.len());
        for row in &rows {
            let revision = from_db(row.try_get("revision")?);
            let newest = from_db(row.try_get("newest")?);
            let delta: Option<Vec<u8>> = row.try_get("delta")?;
            logged.push((revision, newest, delta));
        }
        let (Some(&(_, newest, _)), true) = (logged.last(), logged.len() <= MAX_CATCH_UP as usize) else {
            return Ok(None);
        };
        if logged.last().map(|l| l.0) != Some(newest) {
            return Ok(None);
        }
        let (store, counts) = (Arc::clone(&self.store), Arc::clone(&self.counts));
        let account = account.to_owned();
        let caught_up = tokio::task::spawn_blocking(move || {
            // one copy of the document per revision: each is made from the one just published
            let mut base = served;
            for (revision, _, bytes) in logged {
                let delta = bytes
                    .and_then(|bytes| WireDelta::decode(bytes.as_slice()).ok())
                    .filter(|wire| wire.account == account && wire.to_version == revision)
                    .and_then(|wire| from_wire(wire).ok())?;
                let mut next = (*base).clone();
                delta.apply_in_place(&mut next).ok()?;
                if store.publish_delta(next, delta).is_err() {
                    return None;
                }
                counts.0.fetch_add(1, Ordering::Relaxed);
                base = store.current(&account)?;
            }
            Some(true)
        })
        .await
        .unwrap_or(None);
        Ok(caught_up)
    }

    /// Reads `account` whole, compiles it and publishes it when it is newer than the one served.
    async fn read_whole(&self, account: &str) -> Result<bool, DatabaseError> {
        self.counts.1.fetch_add(1, Ordering::Relaxed);
        let Some(snapshot) = read_account(&self.pool, account).await? else {
            return Ok(false);
        };
        if snapshot.version <= self.served(account) {
            return Ok(false);
        }
        let catalog = Arc::clone(&self.catalog);
        let store = Arc::clone(&self.store);
        let refused = Arc::clone(&self.refused);
        let published = tokio::task::spawn_blocking(move || {
            let (account, version) = (snapshot.account.clone(), snapshot.version);
            if let Err(error) = compile(&snapshot, catalog, None) {
                tracing::warn!(account, version, %error, "stored account does not compile; not served");
                if let Ok(mut refused) = refused.lock() {
                    refused.insert(account, version);
                }
                return false;
            }
            match store.publish(snapshot) {
                Ok(published) => published,
                Err(refusal) => {
                    tracing::warn!(account, version, code = refusal.code(), error = %refusal, "stored account not published");
                    false
                }
            }
        })
        .await
        .unwrap_or(false);
        if published {
            tracing::debug!(account, "account reloaded from the database");
        }
        Ok(published)
    }

    /// Reads every account's revision and reloads each one newer than the one served; returns how
    /// many were published. At start, this loads every account.
    pub async fn sync(&self) -> Result<usize, DatabaseError> {
        let mut published = 0;
        for (account, revision) in revisions(&self.pool).await? {
            if revision > self.served(&account) && self.reload(&account).await? {
                published += 1;
            }
        }
        Ok(published)
    }

    /// A notification's payload: reload that account if its revision is newer than the one served.
    async fn hint(&self, payload: &str) -> Result<(), DatabaseError> {
        let Some((account, revision)) = payload.rsplit_once(':') else {
            return Ok(());
        };
        let revision: u64 = revision.parse().unwrap_or(u64::MAX);
        if revision > self.served(account) {
            self.reload(account).await?;
        }
        Ok(())
    }

    /// Follows the database until the task is aborted: notifications when a listener is
    /// connected, the poll always, and a poll at once on SIGHUP (which never ends the process).
    async fn run(self, mut hangup: crate::tls::Hangups) {
        let mut listener: Option<PgListener> = None;
        let mut tick = tokio::time::interval(self.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if listener.is_none() {
                listener = self.listen().await;
            }
            let notified = tokio::select! {
                _ = tick.tick() => None,
                received = next(&mut listener) => received,
                () = crate::tls::next_hangup(&mut hangup) => {
                    tracing::info!(code = "sighup_rescan", "SIGHUP: reading every account's revision");
                    None
                },
            };
            let result = match notified {
                Some(payload) => self.hint(&payload).await,
                None => self.sync().await.map(|_| ()),
            };
            if let Err(error) = result {
                tracing::warn!(%error, "cannot follow the database; retrying at the next poll");
            }
        }
    }

    async fn listen(&self) -> Option<PgListener> {
        let mut listener = PgListener::connect_with(&self.pool).await.ok()?;
        listener.listen(CHANNEL).await.ok()?;
        Some(listener)
    }

    /// Spawns the task following the database (see the module documentation); call it inside the
    /// runtime. SIGHUP is subscribed to before it returns.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        let hangup = crate::tls::hangups();
        tokio::spawn(self.run(hangup))
    }
}

/// The next notification's payload; `None` when the listener lost its connection (it is dropped,
/// and made again at the next turn). Never completes without a listener.
async fn next(listener: &mut Option<PgListener>) -> Option<String> {
    let Some(connected) = listener.as_mut() else {
        return std::future::pending().await;
    };
    match connected.try_recv().await {
        Ok(Some(notification)) => Some(notification.payload().to_owned()),
        Ok(None) | Err(_) => {
            *listener = None;
            None
        }
    }
}
