//! The context every command and service opens once: the configuration, the
//! injected clock, the database and who is acting. It holds no key: the CA
//! adds its key stores on top (`ca_core::Ca`), and the status services and
//! the scheduler work with this alone.

use crate::clock::Clock;
use crate::config::Config;
use crate::error::Result;
use crate::storage::Db;
use std::sync::Arc;

pub struct Context {
    pub config: Config,
    pub clock: Arc<dyn Clock>,
    pub db: Db,
    /// Who is acting, as recorded in the audit log.
    pub actor: String,
}

impl Context {
    /// Opens the existing database, whose schema must be the one this
    /// program knows; never creates or migrates anything (every service and
    /// every `pki-admin` command but `migrate`).
    pub fn open(config: Config, clock: Arc<dyn Clock>, actor: &str) -> Result<Self> {
        let db = Db::connect(&config.database_url())?;
        Ok(Self::with_db(config, clock, actor, db))
    }

    /// Creates the database if needed and brings its schema up to date, then
    /// opens it: `pki-admin migrate`, the demo's first run, tests and
    /// benchmarks. No service calls it.
    pub fn create(config: Config, clock: Arc<dyn Clock>, actor: &str) -> Result<Self> {
        let (db, _applied) = Db::migrate(&config.database_url())?;
        Ok(Self::with_db(config, clock, actor, db))
    }

    fn with_db(config: Config, clock: Arc<dyn Clock>, actor: &str, db: Db) -> Self {
        Self {
            config,
            clock,
            db,
            actor: actor.to_string(),
        }
    }
}
