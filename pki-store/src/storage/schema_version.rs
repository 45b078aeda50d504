//! The schema version: the migrations a database has applied against the
//! ones this binary embeds. Only `pki-admin migrate` applies migrations
//! ([`Db::migrate`](super::Db::migrate)); every other process opens the
//! database with [`Db::connect`](super::Db::connect), which calls
//! [`check`] and refuses a schema older or newer than the binary knows,
//! without changing anything (diesel's own `applied_migrations` would
//! create its bookkeeping table, so the versions are read with plain SQL).

use super::{Db, StorageError, PG_MIGRATIONS, SQLITE_MIGRATIONS};
use crate::with_conn;
use diesel::migration::MigrationSource;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};

/// The migration bookkeeping table diesel keeps.
const VERSIONS_TABLE: &str = "__diesel_schema_migrations";

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = Text)]
    version: String,
}

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = Bool)]
    exists: bool,
}

/// The versions of the migrations this binary embeds for the database's
/// backend, oldest first.
pub fn known(db: &Db) -> Vec<String> {
    let names: Vec<String> = match db {
        Db::Pg(_) => names_of::<diesel::pg::Pg>(&PG_MIGRATIONS),
        Db::Sqlite(_) => names_of::<diesel::sqlite::Sqlite>(&SQLITE_MIGRATIONS),
    };
    let mut versions = names;
    versions.sort();
    versions
}

fn names_of<B: diesel::backend::Backend>(source: &dyn MigrationSource<B>) -> Vec<String> {
    // The migrations are embedded at compile time: listing them cannot fail.
    source
        .migrations()
        .map(|all| {
            all.into_iter()
                .map(|m| m.name().version().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The versions a database has applied; `None` when it has no schema at all.
pub fn applied(db: &mut Db) -> Result<Option<Vec<String>>, StorageError> {
    let exists_sql = match db {
        Db::Pg(_) => format!("SELECT to_regclass('{VERSIONS_TABLE}') IS NOT NULL AS exists"),
        Db::Sqlite(_) => format!(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '{VERSIONS_TABLE}') AS \"exists\""
        ),
    };
    let exists: Exists = with_conn!(db, c => diesel::sql_query(&exists_sql).get_result(c))?;
    if !exists.exists {
        return Ok(None);
    }
    let list = format!("SELECT version FROM {VERSIONS_TABLE} ORDER BY version");
    let rows: Vec<Version> = with_conn!(db, c => diesel::sql_query(&list).load(c))?;
    Ok(Some(rows.into_iter().map(|v| v.version).collect()))
}

/// Compares what a database applied with what this binary knows.
/// `url` (already redacted) names the database in the message.
pub fn check(
    url: &str,
    applied: Option<Vec<String>>,
    known: &[String],
) -> Result<(), StorageError> {
    let Some(applied) = applied else {
        return Err(StorageError::NoDatabase(url.to_string()));
    };
    if let Some(unknown) = applied.iter().find(|v| !known.contains(v)) {
        return Err(StorageError::SchemaNewer {
            url: url.to_string(),
            version: unknown.clone(),
            newest_known: known.last().cloned().unwrap_or_default(),
        });
    }
    if let Some(missing) = known.iter().find(|v| !applied.contains(v)) {
        return Err(StorageError::SchemaOlder {
            url: url.to_string(),
            missing: missing.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn both_backends_embed_the_same_versions() {
        let pg = names_of::<diesel::pg::Pg>(&PG_MIGRATIONS);
        assert_eq!(pg, names_of::<diesel::sqlite::Sqlite>(&SQLITE_MIGRATIONS));
        assert!(pg.len() >= 5);
    }

    #[test]
    fn same_older_newer_and_absent_schemas() {
        let known = v(&["1", "2", "3"]);
        check("db", Some(v(&["1", "2", "3"])), &known).unwrap();
        let older = check("db", Some(v(&["1", "2"])), &known).unwrap_err();
        assert!(matches!(older, StorageError::SchemaOlder { ref missing, .. } if missing == "3"));
        assert!(older.to_string().contains("pki-admin migrate"), "{older}");
        let newer = check("db", Some(v(&["1", "2", "3", "4"])), &known).unwrap_err();
        assert!(matches!(newer, StorageError::SchemaNewer { ref version, .. } if version == "4"));
        assert!(newer.to_string().contains("newer"), "{newer}");
        let absent = check("db", None, &known).unwrap_err();
        assert!(matches!(absent, StorageError::NoDatabase(_)));
    }
}
