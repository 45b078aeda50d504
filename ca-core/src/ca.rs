//! The CA context: the store's [`Context`] (configuration, clock, database,
//! actor) plus what only the CA holds: the loaded policy and the two key
//! stores. Only CA-side commands open it; the status services and the
//! scheduler open a [`Context`] and never see a key store.

use crate::policy::{Policy, EMBEDDED_PROFILES};
use pki_keys::KeyStore;
use pki_store::clock::Clock;
use pki_store::config::{Config, KeyPurpose};
use pki_store::error::Result;
use pki_store::Context;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

pub struct Ca {
    /// Configuration, clock, database and actor, shared with the layers
    /// below (registration and lifecycle take a `&mut Context`; a `&mut Ca`
    /// coerces to it).
    pub context: Context,
    pub policy: Policy,
    /// CA keys.
    pub keys: KeyStore,
    /// OCSP responder keys (only to create or rotate responder certificates).
    pub responder_keys: KeyStore,
}

impl Deref for Ca {
    type Target = Context;
    fn deref(&self) -> &Context {
        &self.context
    }
}

impl DerefMut for Ca {
    fn deref_mut(&mut self) -> &mut Context {
        &mut self.context
    }
}

impl Ca {
    /// Loads the policy and opens (and migrates) the database, creating
    /// it when it does not exist yet.
    pub fn open(config: Config, clock: Arc<dyn Clock>, actor: &str) -> Result<Self> {
        Self::on(Context::open(config, clock, actor)?)
    }

    /// The CA on a database created or migrated first (`Context::create`):
    /// the demo's first run, tests and benchmarks.
    pub fn create(config: Config, clock: Arc<dyn Clock>, actor: &str) -> Result<Self> {
        Self::on(Context::create(config, clock, actor)?)
    }

    /// The CA on an opened context: its policy loaded, its key stores set
    /// up (no key is opened until something signs).
    pub fn on(context: Context) -> Result<Self> {
        let policy = load_policy(&context.config)?;
        let keys = KeyStore::new(&context.config, KeyPurpose::Ca);
        let responder_keys = KeyStore::new(&context.config, KeyPurpose::OcspResponder);
        Ok(Self {
            context,
            policy,
            keys,
            responder_keys,
        })
    }
}

/// The profiles in force: the configured file, or the embedded ones.
pub fn load_policy(config: &Config) -> Result<Policy> {
    let text = match &config.profiles_file {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|source| pki_store::CaError::ReadFile {
                path: path.display().to_string(),
                source,
            })?
        }
        None => EMBEDDED_PROFILES.to_string(),
    };
    Ok(Policy::from_toml(&text, &config.policy_oid_arc)?)
}
