//! The benchmark's working directory (`--dir/<backend>`: pki.toml, data,
//! CRLs, service logs) and the CA this process opens on it, with the
//! passphrases and the audit actor of everything done here.

use crate::cli::Args;
use anyhow::Context;
use ca_core::Ca;
use pki_store::clock::SystemClock;
use pki_store::config::Config;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const CA_PASSPHRASE: &str = "lifecycle benchmark CA passphrase";
pub const OCSP_PASSPHRASE: &str = "lifecycle benchmark responder passphrase";
/// The audit actor of this process.
pub const ACTOR: &str = "lifecycle-bench";

/// This process creates the hierarchy (CA and responder keys); each
/// service gets only its own passphrase.
pub fn export_passphrases() {
    std::env::set_var("PKI_CA_PASSPHRASE", CA_PASSPHRASE);
    std::env::set_var("PKI_OCSP_PASSPHRASE", OCSP_PASSPHRASE);
}

/// The paths of one run.
pub struct Workdir {
    /// `--dir/<backend>`, absolute (the services run in it).
    pub dir: PathBuf,
    /// Where crl-publisher writes its CRL files.
    pub crl_dir: PathBuf,
    /// pki.toml.
    pub config: PathBuf,
}

impl Workdir {
    /// `--dir/<backend>`, emptied first.
    pub fn fresh(base: &Path, backend: &str) -> anyhow::Result<Workdir> {
        let dir = std::path::absolute(base.join(backend))?;
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("emptying {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir)?;
        Ok(Workdir {
            crl_dir: dir.join("crl"),
            config: dir.join("pki.toml"),
            dir,
        })
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The SQLite database's URL (`--database sqlite`).
    pub fn sqlite_url(&self) -> String {
        format!("sqlite://{}", self.data().join("pki.sqlite").display())
    }

    /// Writes pki.toml (the data directory, the database, the scheduler's
    /// crons) and opens the CA on it.
    pub fn open_ca(&self, args: &Args, backend: &str, database_url: &str) -> anyhow::Result<Ca> {
        std::fs::create_dir_all(&self.crl_dir)?;
        std::fs::write(
            &self.config,
            format!(
                "# lifecycle-bench ({backend})\ndata_dir = {}\ndatabase_url = {}\n\n[scheduler]\n\
                 listen = \"127.0.0.1:0\"\nrequests_cron = {}\nsla_cron = {}\n",
                toml_str(&self.data().display().to_string()),
                toml_str(database_url),
                toml_str(&args.requests_cron),
                toml_str(&args.sla_cron),
            ),
        )?;
        let config = Config::load(&self.config)?;
        Ok(Ca::create(config, Arc::new(SystemClock), ACTOR)?)
    }
}

fn toml_str(s: &str) -> String {
    // A JSON string is a valid TOML basic string.
    serde_json::to_string(s).unwrap_or_default()
}
