//! Storage: one diesel schema on PostgreSQL (production) or SQLite (the
//! embedded default), migrations embedded per backend, and the one way to
//! change anything: [`Db::write`], a transaction that serialises writers and
//! appends the audit records of the change before it commits.
//!
//! Queries are written once and compiled for each backend by
//! [`with_conn!`](crate::with_conn), which matches the connection enum.
//! (diesel's `MultiConnection` derive cannot express multi-row inserts,
//! `RETURNING` or binary and boolean columns, all of which are needed here.)

pub mod chain;
pub mod models;
pub mod roles;
pub mod schema;
pub mod schema_version;

use crate::domain::AuditAction;
use chain::PendingAudit;
use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::{PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot open database {url}: {message}")]
    Connect { url: String, message: String },
    #[error("database URL {0:?} is neither postgres://... nor sqlite://...")]
    BadUrl(String),
    #[error("there is no CA database at {0}: run `pki-admin migrate`, then `pki-admin init` (only `pki-admin migrate` creates or changes the schema)")]
    NoDatabase(String),
    #[error("the database schema at {url} is older than this program: migration {missing} is missing; run `pki-admin migrate` (only it changes the schema)")]
    SchemaOlder { url: String, missing: String },
    #[error("the database schema at {url} is newer than this program: it has migration {version}, the newest this program knows is {newest_known}; upgrade this program")]
    SchemaNewer {
        url: String,
        version: String,
        newest_known: String,
    },
    #[error("{what} {value:?} must be a plain lower-case identifier (a-z, 0-9, _)")]
    BadIdentifier { what: &'static str, value: String },
    #[error("database roles exist on PostgreSQL only; a SQLite database is protected by its file mode (0600) and its owner")]
    NoRoles,
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
}

/// A connection to one of the two supported backends.
pub enum Db {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

/// Runs `$body` with `$c` bound to the concrete connection of either
/// backend; the body is compiled once per backend.
#[macro_export]
macro_rules! with_conn {
    ($db:expr, $c:ident => $body:expr) => {
        match $db {
            $crate::storage::Db::Pg($c) => $body,
            $crate::storage::Db::Sqlite($c) => $body,
        }
    };
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Creates an empty SQLite file readable by its owner only (0600; SQLite
/// gives its `-wal` and `-shm` files the same mode). An existing file is
/// left as it is.
fn create_private_file(path: &str) -> std::io::Result<()> {
    match crate::files::create_new_private(std::path::Path::new(path)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Opens a SQLite file with the pragmas every connection needs.
fn open_sqlite(url: &str, path: &str) -> Result<SqliteConnection, StorageError> {
    let mut c = SqliteConnection::establish(path).map_err(|e| connect_error(url, e))?;
    c.batch_execute(
        "PRAGMA busy_timeout = 30000; PRAGMA journal_mode = WAL; \
         PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
    )?;
    Ok(c)
}

/// Timestamps are stored with microsecond precision on both backends.
pub fn db_time(at: DateTime<Utc>) -> NaiveDateTime {
    at.naive_utc().trunc_subsecs(6)
}

impl Db {
    /// Opens an existing database and checks that its schema is the one
    /// this binary knows (`schema_version::check`); changes nothing. A
    /// database that does not exist, or has no schema, is refused with a
    /// message naming `pki-admin migrate`.
    pub fn connect(url: &str) -> Result<Db, StorageError> {
        let shown = redact(url);
        if is_postgres(url) {
            let c = PgConnection::establish(url).map_err(|e| connect_error(url, e))?;
            Db::checked(Db::Pg(c), &shown)
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            if !std::path::Path::new(path).is_file() {
                return Err(StorageError::NoDatabase(shown));
            }
            Db::checked(Db::Sqlite(open_sqlite(url, path)?), &shown)
        } else {
            Err(StorageError::BadUrl(shown))
        }
    }

    /// The database if its schema is the one this program knows.
    fn checked(mut db: Db, shown: &str) -> Result<Db, StorageError> {
        let applied = schema_version::applied(&mut db)?;
        schema_version::check(shown, applied, &schema_version::known(&db))?;
        Ok(db)
    }

    /// Creates the database when it does not exist (a SQLite file; a
    /// PostgreSQL database must exist) and applies the pending migrations,
    /// one migrator at a time. `pki-admin migrate` is the one production
    /// caller; the demo, tests and benchmarks use it through
    /// `Context::create`. Returns the versions it applied.
    pub fn migrate(url: &str) -> Result<(Db, Vec<String>), StorageError> {
        // A schema already at this program's version is left untouched (no
        // DDL at all, so a role without CREATE rights may run it); a newer
        // one is refused, never migrated down.
        match Db::connect(url) {
            Ok(db) => return Ok((db, Vec::new())),
            Err(StorageError::NoDatabase(_) | StorageError::SchemaOlder { .. }) => {}
            Err(e) => return Err(e),
        }
        let migration_error =
            |e: Box<dyn std::error::Error + Send + Sync>| StorageError::Migration(e.to_string());
        if is_postgres(url) {
            let mut c = PgConnection::establish(url).map_err(|e| connect_error(url, e))?;
            c.batch_execute("SELECT pg_advisory_lock(7345001)")?;
            let applied = c
                .run_pending_migrations(PG_MIGRATIONS)
                .map(|versions| versions.iter().map(|v| v.to_string()).collect())
                .map_err(migration_error);
            c.batch_execute("SELECT pg_advisory_unlock(7345001)")?;
            Ok((Db::Pg(c), applied?))
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            if let Some(dir) = std::path::Path::new(path).parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir).map_err(|e| connect_error(url, e))?;
                }
            }
            create_private_file(path).map_err(|e| connect_error(url, e))?;
            let mut c = open_sqlite(url, path)?;
            let applied = c
                .run_pending_migrations(SQLITE_MIGRATIONS)
                .map(|versions| versions.iter().map(|v| v.to_string()).collect())
                .map_err(migration_error)?;
            Ok((Db::Sqlite(c), applied))
        } else {
            Err(StorageError::BadUrl(redact(url)))
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Db::Pg(_) => "postgresql",
            Db::Sqlite(_) => "sqlite",
        }
    }

    /// Runs `f` in a write transaction: writers are serialised (SQLite
    /// `BEGIN IMMEDIATE`; PostgreSQL locks the audit chain's head row), the
    /// audit records `f` queued are chained and inserted, and everything
    /// commits together or not at all.
    pub fn write<T, E>(
        &mut self,
        actor: &str,
        now: DateTime<Utc>,
        f: impl FnOnce(&mut WriteTx<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StorageError>,
    {
        match self {
            Db::Pg(c) => AnsiTransactionManager::begin_transaction(c),
            Db::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE"),
        }
        .map_err(StorageError::from)?;
        let result = (|| {
            let head = chain::lock_head(self)?;
            let mut tx = WriteTx {
                head_seq: head.seq,
                db: self,
                pending: Vec::new(),
                actor: actor.to_string(),
                at: db_time(now),
            };
            let value = f(&mut tx)?;
            let pending = std::mem::take(&mut tx.pending);
            chain::append(self, head, pending).map_err(E::from)?;
            Ok(value)
        })();
        match result {
            Ok(value) => {
                with_conn!(self, c => AnsiTransactionManager::commit_transaction(c))
                    .map_err(StorageError::from)?;
                Ok(value)
            }
            Err(e) => {
                let _ = with_conn!(self, c => AnsiTransactionManager::rollback_transaction(c));
                Err(e)
            }
        }
    }
}

/// An open write transaction.
pub struct WriteTx<'a> {
    pub db: &'a mut Db,
    head_seq: i64,
    pending: Vec<PendingAudit>,
    actor: String,
    at: NaiveDateTime,
}

impl WriteTx<'_> {
    /// Queues an audit record; it is chained and stored when the transaction commits.
    pub fn audit(&mut self, action: AuditAction, subject: &str, details: serde_json::Value) {
        self.pending.push(PendingAudit {
            at: self.at,
            actor: self.actor.clone(),
            action: action.as_str().to_string(),
            subject: subject.to_string(),
            details,
        });
    }

    /// The sequence number of the last audit record queued so far (the
    /// change-feed position at which this transaction's changes up to now
    /// become visible once it commits).
    pub fn last_seq(&self) -> i64 {
        self.head_seq + self.pending.len() as i64
    }

    /// The transaction's timestamp (as stored).
    pub fn at(&self) -> NaiveDateTime {
        self.at
    }
}

/// Creates a fresh, empty schema on a PostgreSQL server and returns a URL
/// whose connections use it (for tests and benchmarks that must not share
/// state). `name` must be a plain identifier.
pub fn pg_fresh_schema(base_url: &str, name: &str) -> Result<String, StorageError> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StorageError::BadUrl(format!("schema name {name:?}")));
    }
    let mut c = PgConnection::establish(base_url).map_err(|e| connect_error(base_url, e))?;
    c.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name};"
    ))?;
    let sep = if base_url.contains('?') { '&' } else { '?' };
    Ok(format!("{base_url}{sep}options=-csearch_path%3D{name}"))
}

/// Drops a schema made by [`pg_fresh_schema`].
pub fn pg_drop_schema(base_url: &str, name: &str) -> Result<(), StorageError> {
    let mut c = PgConnection::establish(base_url).map_err(|e| connect_error(base_url, e))?;
    c.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))?;
    Ok(())
}

/// The one redaction of database URLs ([`crate::secrets::redact`]), kept
/// here under its old name for the binaries' messages.
pub use crate::secrets::redact;

/// A failed connection, with the URL redacted and the driver's message
/// scrubbed of the URL's secrets (libpq may quote a piece of the URL).
fn connect_error(url: &str, message: impl std::fmt::Display) -> StorageError {
    StorageError::Connect {
        url: redact(url),
        message: crate::secrets::scrub(&message.to_string(), url),
    }
}
