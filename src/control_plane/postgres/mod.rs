//! PostgreSQL as the control plane's source of truth (`control-plane --database`, `admin`).
//!
//! [`PgStore`] implements [`AccountStore`]: a change is one transaction that locks the account's
//! row (`SELECT … FOR UPDATE`, inserting it first when the change may create the account), reads
//! the account's rows, runs and compiles the edit ([`apply_edit`]), writes only the rows that
//! differ, appends a `change_log` row (with the change's delta in the wire form, so replicas catch
//! up without reading the whole account), sets the revision to exactly one more, and `NOTIFY`s
//! [`CHANNEL`] with `account:revision` before committing. Nothing else holds state: every replica
//! serves what [`follower`] reads back from the database. The schema is in `migrations/` (embedded,
//! applied by [`connect`]) and described in `docs/control-plane.md`.

use std::sync::Arc;

use prost::Message as _;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Row as _, Transaction};

use crate::control_plane::changes::{AccountStore, ChangeError, Committed, Edit, StoreFuture, apply_edit};
use crate::proto::delta::to_wire;
use crate::rbac::model::AccountSnapshot;
use crate::rbac::{AccountDelta, Catalog, EntityChange};

pub mod follower;
pub mod schema;

use schema::{Diff, RowId, StoredRow, StoredRows};

/// The channel a commit notifies (payload `account:revision`): a hint to followers, never the only
/// way they learn of a change (they also poll).
pub const CHANNEL: &str = "scopegate_account_changes";

/// The largest delta the change log keeps (encoded): a bigger change (an import replacing most of
/// an account) is logged without one, and replicas read that revision whole.
pub const MAX_LOGGED_DELTA_BYTES: usize = 1 << 20;

/// The migrations of `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Why the database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// Connecting failed (or the URL is not a PostgreSQL URL).
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    /// A migration failed.
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database: {0}")]
    Query(#[from] sqlx::Error),
    /// Stored rows do not make a valid document.
    #[error(transparent)]
    Rows(#[from] schema::RowError),
}

impl From<DatabaseError> for ChangeError {
    fn from(error: DatabaseError) -> Self {
        ChangeError::Storage(error.to_string())
    }
}

fn storage(error: sqlx::Error) -> ChangeError {
    ChangeError::Storage(error.to_string())
}

/// Connects to `url` (`postgres://…`) and applies the migrations not yet applied (a no-op when
/// all are).
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, DatabaseError> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect(url)
        .await
        .map_err(DatabaseError::Connect)?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// A revision as the database stores it (`bigint`).
pub(crate) fn to_db(revision: u64) -> Result<i64, ChangeError> {
    i64::try_from(revision).map_err(|_| ChangeError::Storage(format!("revision {revision} is out of range")))
}

pub(crate) fn from_db(revision: i64) -> u64 {
    u64::try_from(revision).unwrap_or(0)
}

/// Reads the rows of `account` (within the caller's transaction or on the pool).
async fn read_rows<'c, E>(executor: E, account: &str) -> Result<StoredRows, DatabaseError>
where
    E: sqlx::Executor<'c, Database = Postgres>,
{
    let rows = sqlx::query("SELECT kind, key, parent, body::text AS body FROM entities WHERE account = $1")
        .bind(account)
        .fetch_all(executor)
        .await?;
    let mut stored = StoredRows::new();
    for row in rows {
        let id: RowId = (row.try_get("kind")?, row.try_get("key")?);
        let body: String = row.try_get("body")?;
        let body = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
        stored.insert(
            id,
            StoredRow {
                parent: row.try_get("parent")?,
                body,
            },
        );
    }
    Ok(stored)
}

/// The current document of `account` and its revision, read in one statement (one consistent
/// view), or `None` when there is no such account.
pub async fn read_account(pool: &PgPool, account: &str) -> Result<Option<AccountSnapshot>, DatabaseError> {
    let rows = sqlx::query(
        "SELECT a.revision, e.kind, e.key, e.parent, e.body::text AS body
           FROM accounts a LEFT JOIN entities e ON e.account = a.account
          WHERE a.account = $1 AND a.revision > 0",
    )
    .bind(account)
    .fetch_all(pool)
    .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let revision = from_db(first.try_get("revision")?);
    let mut stored = StoredRows::new();
    for row in &rows {
        let Some(kind) = row.try_get::<Option<String>, _>("kind")? else {
            continue;
        };
        let body: String = row.try_get("body")?;
        stored.insert(
            (kind, row.try_get("key")?),
            StoredRow {
                parent: row.try_get("parent")?,
                body: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
            },
        );
    }
    Ok(Some(schema::from_rows(account, revision, &stored)?))
}

/// Every account and its revision.
pub async fn revisions(pool: &PgPool) -> Result<Vec<(String, u64)>, DatabaseError> {
    let rows = sqlx::query("SELECT account, revision FROM accounts WHERE revision > 0")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("account")?, from_db(row.try_get("revision")?))))
        .collect()
}

/// Accounts in PostgreSQL: the [`AccountStore`] of every control-plane replica and of `admin`.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    catalog: Arc<Catalog>,
}

impl PgStore {
    /// A store over `pool` (migrated: see [`connect`]) validating against `catalog`.
    pub fn new(pool: PgPool, catalog: Arc<Catalog>) -> Self {
        Self { pool, catalog }
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn change_now(
        &self,
        account: &str,
        actor: &str,
        create: bool,
        edit: Edit,
    ) -> Result<Committed, ChangeError> {
        let mut tx = self.pool.begin().await.map_err(storage)?;
        let before = lock_account(&mut tx, account, create).await?;
        let stored = read_rows(&mut *tx, account).await?;
        let current = match before {
            0 => None,
            revision => Some(schema::from_rows(account, revision, &stored).map_err(DatabaseError::from)?),
        };
        let catalog = Arc::clone(&self.catalog);
        let owned = account.to_owned();
        // the edit and the compile are CPU work: off the async workers (the row stays locked)
        let applied = tokio::task::spawn_blocking(move || {
            let previous = current.clone();
            let applied = apply_edit(&owned, current, create, edit, &catalog)?;
            let delta = logged_delta(previous.as_ref(), &applied.0);
            let rows = schema::to_rows(&applied.0).map_err(ChangeError::Invalid)?;
            Ok::<_, ChangeError>((applied, schema::diff(&stored, rows), delta))
        })
        .await
        .map_err(|e| ChangeError::Storage(format!("the edit did not finish: {e}")))?;
        let ((document, before, summary), diff, delta) = applied?;
        let after = document.version;
        write_diff(&mut tx, account, after, &diff).await?;
        sqlx::query(
            "UPDATE accounts SET revision = $2, updated_at = now() WHERE account = $1 AND revision = $3",
        )
        .bind(account)
        .bind(to_db(after)?)
        .bind(to_db(before)?)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        sqlx::query(
            "INSERT INTO change_log (account, revision, actor, summary, changed, delta)
             VALUES ($1, $2, $3, $4, $5::jsonb, $6)",
        )
        .bind(account)
        .bind(to_db(after)?)
        .bind(actor)
        .bind(&summary.0)
        .bind(serde_json::Value::Array(diff.changed).to_string())
        .bind(delta)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(format!("{account}:{after}"))
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(Committed {
            before,
            after,
            summary,
        })
    }
}

/// The change from `previous` to `next` in the wire form (`scopegate.v1.AccountDelta`), for the
/// change log, each entity as a read of its rows gives it ([`schema::as_read_back`]); `None` for an
/// account's first revision or a delta over [`MAX_LOGGED_DELTA_BYTES`].
fn logged_delta(previous: Option<&AccountSnapshot>, next: &AccountSnapshot) -> Option<Vec<u8>> {
    let mut delta = AccountDelta::between(previous?, next).ok()?;
    for change in &mut delta.changes {
        if let EntityChange::Upsert(entity) = change {
            *entity = schema::as_read_back(&next.account, entity.clone())?;
        }
    }
    let bytes = to_wire(&next.account, delta).encode_to_vec();
    (bytes.len() <= MAX_LOGGED_DELTA_BYTES).then_some(bytes)
}

/// Locks the account's row for the transaction and returns its revision; inserts it at revision 0
/// first when `create` (a concurrent creator waits on the insert, then finds the row).
async fn lock_account(
    tx: &mut Transaction<'static, Postgres>,
    account: &str,
    create: bool,
) -> Result<u64, ChangeError> {
    if create {
        sqlx::query(
            "INSERT INTO accounts (account, revision) VALUES ($1, 0) ON CONFLICT (account) DO NOTHING",
        )
        .bind(account)
        .execute(&mut **tx)
        .await
        .map_err(storage)?;
    }
    let row = sqlx::query("SELECT revision FROM accounts WHERE account = $1 FOR UPDATE")
        .bind(account)
        .fetch_optional(&mut **tx)
        .await
        .map_err(storage)?;
    match row {
        Some(row) => Ok(from_db(row.try_get("revision").map_err(storage)?)),
        None => Err(ChangeError::NoAccount(account.to_owned())),
    }
}

/// Writes the rows of `diff` (batched: one statement for the upserts, one for the deletes).
async fn write_diff(
    tx: &mut Transaction<'static, Postgres>,
    account: &str,
    revision: u64,
    diff: &Diff,
) -> Result<(), ChangeError> {
    if !diff.deletes.is_empty() {
        let (kinds, keys): (Vec<String>, Vec<String>) = diff.deletes.iter().cloned().unzip();
        sqlx::query(
            "DELETE FROM entities WHERE account = $1
               AND (kind, key) IN (SELECT * FROM UNNEST($2::text[], $3::text[]))",
        )
        .bind(account)
        .bind(kinds)
        .bind(keys)
        .execute(&mut **tx)
        .await
        .map_err(storage)?;
    }
    if !diff.upserts.is_empty() {
        let kinds: Vec<&str> = diff.upserts.iter().map(|r| r.kind).collect();
        let keys: Vec<&str> = diff.upserts.iter().map(|r| r.key.as_str()).collect();
        let parents: Vec<Option<&str>> = diff.upserts.iter().map(|r| r.parent.as_deref()).collect();
        let bodies: Vec<String> = diff.upserts.iter().map(|r| r.body.to_string()).collect();
        sqlx::query(
            "INSERT INTO entities (account, kind, key, parent, body, revision)
             SELECT $1, kind, key, parent, body::jsonb, $2
               FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[]) AS t(kind, key, parent, body)
             ON CONFLICT (account, kind, key)
             DO UPDATE SET parent = EXCLUDED.parent, body = EXCLUDED.body, revision = EXCLUDED.revision",
        )
        .bind(account)
        .bind(to_db(revision)?)
        .bind(kinds)
        .bind(keys)
        .bind(parents)
        .bind(bodies)
        .execute(&mut **tx)
        .await
        .map_err(storage)?;
    }
    Ok(())
}

impl AccountStore for PgStore {
    fn read<'a>(&'a self, account: &'a str) -> StoreFuture<'a, Result<Option<AccountSnapshot>, ChangeError>> {
        Box::pin(async move { Ok(read_account(&self.pool, account).await?) })
    }

    fn change<'a>(
        &'a self,
        account: &'a str,
        actor: &'a str,
        create: bool,
        edit: Edit,
    ) -> StoreFuture<'a, Result<Committed, ChangeError>> {
        Box::pin(self.change_now(account, actor, create, edit))
    }
}
