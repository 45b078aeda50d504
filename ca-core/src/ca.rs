//! The CA context: configuration, the loaded policy, the clock, the key
//! store and the database, opened together once per command or service.

use crate::clock::Clock;
use crate::config::{Config, KeyPurpose};
use crate::error::Result;
use crate::keys::KeyStore;
use crate::policy::{Policy, EMBEDDED_PROFILES};
use crate::storage::Db;
use std::sync::Arc;

pub struct Ca {
    pub config: Config,
    pub policy: Policy,
    pub clock: Arc<dyn Clock>,
    /// CA keys.
    pub keys: KeyStore,
    /// OCSP responder keys (only to create or rotate responder certificates).
    pub responder_keys: KeyStore,
    pub db: Db,
    /// Who is acting, as recorded in the audit log.
    pub actor: String,
}

impl Ca {
    /// Loads the policy and opens (and migrates) the database, creating
    /// it when it does not exist yet.
    pub fn open(config: Config, clock: Arc<dyn Clock>, actor: &str) -> Result<Self> {
        let db = Db::connect(&config.database_url())?;
        Self::with_db(config, clock, actor, db)
    }

    /// The same for a command that only reads: a database that does not
    /// exist is an error, never created.
    pub fn open_existing(config: Config, clock: Arc<dyn Clock>, actor: &str) -> Result<Self> {
        let db = Db::connect_existing(&config.database_url())?;
        Self::with_db(config, clock, actor, db)
    }

    fn with_db(config: Config, clock: Arc<dyn Clock>, actor: &str, db: Db) -> Result<Self> {
        let policy = load_policy(&config)?;
        let keys = KeyStore::new(&config, KeyPurpose::Ca);
        let responder_keys = KeyStore::new(&config, KeyPurpose::OcspResponder);
        Ok(Self {
            config,
            policy,
            clock,
            keys,
            responder_keys,
            db,
            actor: actor.to_string(),
        })
    }
}

/// The profiles in force: the configured file, or the embedded ones.
pub fn load_policy(config: &Config) -> Result<Policy> {
    let text = match &config.profiles_file {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|source| crate::error::CaError::ReadFile {
                path: path.display().to_string(),
                source,
            })?
        }
        None => EMBEDDED_PROFILES.to_string(),
    };
    Ok(Policy::from_toml(&text, &config.policy_oid_arc)?)
}
