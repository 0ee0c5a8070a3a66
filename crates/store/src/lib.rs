//! stepgate's persistence: one [`Store`] with two real backends, SQLite (the embedded
//! default) and PostgreSQL (for many stateless nodes sharing one database), both through
//! sqlx with embedded migrations.
//!
//! Every query is written once in SQL both engines accept (`$1` placeholders,
//! `RETURNING`, `ON CONFLICT`); [`with_pool!`] runs it on whichever backend is open.
//! Anything that must hold across nodes (single use, counters) is a single statement
//! whose WHERE clause is the lock, never a read followed by a write in memory.
//!
//! Not here: business rules (the core) and HTTP (the server). Times are Unix seconds
//! passed in by the caller; the store reads no clock.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

mod api_keys;
mod audit;
mod decisions;
mod email;
mod factors;
mod policy;
mod risk;
mod sessions;
mod stepup;
mod users;
mod webauthn;

pub use api_keys::{ApiKeyRecord, Revocation};
pub use audit::{AuditEvent, AuditFilter, AuditRecord, ChainHead, CheckpointRecord};
pub use decisions::DecisionRecord;
pub use email::EmailCodeRecord;
pub use factors::{CredentialFacts, FactorRecord, SpentCode};
pub use policy::PolicyVersionRecord;
pub use risk::{DeviceRecord, LoginCompletion, LoginRecord, Prune};
pub use sessions::SessionRecord;
pub use stepup::{
    ActionCompletion, ChallengeRecord, Completion, ElevationRecord, FailureOutcome, Reserved,
    StepupAttempt,
};
pub use users::UserRecord;
pub use webauthn::RegistrationRecord;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write.
    #[error("a record with this key already exists")]
    Conflict,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL (expected sqlite:… or postgres://…): {0}")]
    BadUrl(String),
    #[error("database file: {0}")]
    File(#[from] std::io::Error),
    /// A row holds what no version of stepgate writes there.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Turns a unique-constraint violation into [`StoreError::Conflict`].
    fn from_insert(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict,
            _ => Self::Database(err),
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
enum Db {
    /// SQLite allows one writer at a time. All writes go through a pool of exactly one
    /// connection, so writers queue in the pool instead of failing with
    /// `database is locked`; readers use their own pool and see WAL snapshots.
    Sqlite {
        read: SqlitePool,
        write: SqlitePool,
    },
    Postgres(PgPool),
}

/// Runs one expression against the backend's pool. The expression is compiled once per
/// backend, so it must evaluate to the same type for both (map query results to plain
/// values inside it).
macro_rules! with_pool {
    ($db:expr, read, |$pool:ident| $body:expr) => {
        match $db {
            $crate::Db::Sqlite { read: $pool, .. } => $body,
            $crate::Db::Postgres($pool) => $body,
        }
    };
    ($db:expr, write, |$pool:ident| $body:expr) => {
        match $db {
            $crate::Db::Sqlite { write: $pool, .. } => $body,
            $crate::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Runs a block inside one write transaction, committing if it evaluates without error
/// (`?` inside returns early and rolls back). `$tx` is the transaction; `$pg_lock` is
/// `None` on SQLite (whose single writer already serializes every write transaction)
/// and on PostgreSQL the statement that serializes the audit chain's appenders, which a
/// block may also take to serialize with them; a block that needs a narrower lock of its
/// own takes it when `$pg_lock` is set.
macro_rules! with_tx {
    ($db:expr, |$tx:ident, $pg_lock:ident| $body:expr) => {
        match $db {
            $crate::Db::Sqlite { write, .. } => {
                let mut $tx = write.begin().await?;
                let $pg_lock: Option<&str> = None;
                let out = $body;
                $tx.commit().await?;
                out
            }
            $crate::Db::Postgres(pool) => {
                let mut $tx = pool.begin().await?;
                let $pg_lock: Option<&str> = Some("SELECT pg_advisory_xact_lock(7403100)");
                let out = $body;
                $tx.commit().await?;
                out
            }
        }
    };
}
pub(crate) use with_tx;

/// Connection settings beyond the URL.
#[derive(Debug, Clone, Copy)]
pub struct ConnectOptions {
    /// Pool size for PostgreSQL and for SQLite readers.
    pub max_connections: u32,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
        }
    }
}

/// Makes the SQLite file readable and writable by its owner only (0600), creating it
/// empty if it does not exist: SQLite gives its `-wal` and `-shm` files the mode of the
/// database file, so all three hold the data only for the server's user. Existing
/// `-wal`/`-shm` files left wider by an older version are narrowed too.
fn owner_only(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
        return Ok(());
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

/// The persistence interface the server uses. Cheap to clone (pools are shared).
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
}

impl Store {
    /// Opens `sqlite:…` (created if missing, mode 0600, WAL) or `postgres://…`.
    pub async fn connect(url: &str, options: ConnectOptions) -> Result<Self> {
        let db = if url.starts_with("sqlite:") {
            let base = SqliteConnectOptions::from_str(url)?;
            owner_only(base.get_filename())?;
            let base = base
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(base.clone().create_if_missing(true))
                .await?;
            let read = SqlitePoolOptions::new()
                .max_connections(options.max_connections)
                .connect_with(base)
                .await?;
            Db::Sqlite { read, write }
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            Db::Postgres(pool)
        } else {
            return Err(StoreError::BadUrl(redact_url(url)));
        };
        Ok(Self { db })
    }

    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite { .. } => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies the embedded migrations (idempotent; PostgreSQL takes an advisory lock so
    /// several nodes may start at once).
    pub async fn migrate(&self) -> Result<()> {
        match &self.db {
            Db::Sqlite { write, .. } => sqlx::migrate!("./migrations/sqlite").run(write).await?,
            Db::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// A round trip to the database, for readiness checks.
    pub async fn ping(&self) -> Result<()> {
        with_pool!(&self.db, read, |p| sqlx::query("SELECT 1")
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    pub async fn close(&self) {
        match &self.db {
            Db::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

/// Drops any password from a URL before it goes into an error message.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://***@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials_in_errors() {
        assert_eq!(redact_url("mysql://u:pw@h/db"), "mysql://***@h/db");
        assert_eq!(redact_url("nonsense"), "nonsense");
    }
}
