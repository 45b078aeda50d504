//! `pki.toml`: where the data lives, which database, the URLs written into
//! certificates, the country and the policy OID arc. Every field has a safe
//! default so that a new user needs no file at all. Secrets never live here:
//! the CA key passphrase and the PKCS#11 token PINs come from an environment
//! variable or a file path.

use crate::domain::{KeyBackend, SmtpTls};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error(
        "no {what} passphrase: set the environment variable {env} or keys.{file_key} in the config"
    )]
    MissingPassphrase {
        what: &'static str,
        env: String,
        file_key: &'static str,
    },
    #[error("no PIN for the {what} token: set the environment variable {env} or keys.pkcs11.{family}.pin_file in the config")]
    MissingPin {
        what: &'static str,
        env: String,
        family: &'static str,
    },
    #[error("cannot read passphrase file {path}: {source}")]
    PassphraseFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    SecretFile(#[from] crate::files::FileError),
}

/// The whole configuration, as read from `pki.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory for the SQLite database, CA keys and published files.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` (default: `<data_dir>/pki.sqlite`) or `postgres://...`.
    pub database_url: Option<String>,
    /// ISO 3166 country code written in subjects and semantics identifiers.
    pub country: String,
    /// Organisation name written in CA subjects.
    pub organization: String,
    /// The OID arc under which this PKI's policies live.
    pub policy_oid_arc: String,
    /// A profiles file replacing the embedded `policies/profiles.toml`.
    pub profiles_file: Option<PathBuf>,
    pub urls: Urls,
    pub keys: Keys,
    pub issuance: Issuance,
    pub crl: Crl,
    pub scheduler: Scheduler,
    pub worker: Worker,
    pub reminders: Reminders,
    pub smtp: Smtp,
    pub audit: Audit,
    /// Secrets handed over in memory instead of the environment (`pki-admin
    /// run` re-executes itself without its passphrase variables); never read
    /// from a file.
    #[serde(skip)]
    pub handed_over: HandedOver,
}

/// Environment variables handed over in memory: name and value. Its
/// `Debug` shows the names only.
#[derive(Clone, Default)]
pub struct HandedOver(pub Vec<(String, String)>);

impl std::fmt::Debug for HandedOver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| name))
            .finish()
    }
}

impl HandedOver {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.as_str())
    }
}

/// The audit log's signed checkpoints (CPS 5.4.4): where they go and how
/// often the scheduler's `audit-checkpoint` job makes one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Audit {
    /// Directory of the checkpoint files (default `<data_dir>/audit-checkpoints`);
    /// files are only ever added to it.
    pub checkpoint_dir: Option<PathBuf>,
    /// A checkpoint is due once this many records were added since the last one.
    pub checkpoint_every_records: u64,
    /// Or once this many minutes passed since the last one (and records were added).
    pub checkpoint_every_minutes: u64,
    /// The log's name written in every checkpoint.
    pub log_name: String,
}

impl Default for Audit {
    fn default() -> Self {
        Self {
            checkpoint_dir: None,
            checkpoint_every_records: 1000,
            checkpoint_every_minutes: 60,
            log_name: "eid-pki-audit".into(),
        }
    }
}

/// `pki-scheduler`: when each job runs (cron, six fields, seconds first,
/// UTC) and where its health and metrics are served.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scheduler {
    /// `/health` and `/metrics`.
    pub listen: String,
    /// Executes revocation requests that are due.
    pub requests_cron: String,
    /// Marks active certificates past their notAfter as expired.
    pub expiry_cron: String,
    /// Decides the expiry reminders that are due (writes the outbox).
    pub reminders_cron: String,
    /// Delivers the outbox over SMTP.
    pub mail_cron: String,
    /// Updates the publication times of executed requests (SLA).
    pub sla_cron: String,
    /// Signs a checkpoint of the audit log when one is due (`[audit]`).
    pub audit_checkpoint_cron: String,
}

impl Default for Scheduler {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8083".into(),
            requests_cron: "*/10 * * * * *".into(),
            expiry_cron: "0 5 * * * *".into(),
            reminders_cron: "0 15 6 * * *".into(),
            mail_cron: "30 * * * * *".into(),
            sla_cron: "*/15 * * * * *".into(),
            audit_checkpoint_cron: "0 * * * * *".into(),
        }
    }
}

/// `pki-admin worker`: the CA-side jobs that need CA or responder keys,
/// run by a process without a network listener (CPS 6.5.1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Worker {
    /// When the OCSP responder certificates are checked (cron, six fields).
    pub responder_rotation_cron: String,
    /// A responder certificate ending within this many days is replaced.
    pub responder_rotate_within_days: i64,
}

impl Default for Worker {
    fn default() -> Self {
        Self {
            responder_rotation_cron: "0 0 * * * *".into(),
            responder_rotate_within_days: 10,
        }
    }
}

/// Expiry reminders (CPS 4.6.1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Reminders {
    /// Days before a certificate's end at which a reminder is sent.
    pub offsets_days: Vec<u32>,
    /// Delivery attempts before a reminder is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay; doubled after each failure.
    pub retry_base_seconds: u64,
    /// Where holders renew (written into the messages).
    pub kiosk_url: String,
}

impl Default for Reminders {
    fn default() -> Self {
        Self {
            offsets_days: vec![90, 30, 7],
            max_attempts: 8,
            retry_base_seconds: 60,
            kiosk_url: "https://pki.example.com/eid/renew".into(),
        }
    }
}

/// The mail relay reminders are handed to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    /// `none` (plain, for a local relay), `starttls` or `tls`.
    pub tls: SmtpTls,
    pub from: String,
    pub username: Option<String>,
    /// Environment variable holding the SMTP password (when `username` is set).
    pub password_env: String,
    pub timeout_seconds: u64,
}

impl Default for Smtp {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 25,
            tls: SmtpTls::None,
            from: "eID <no-reply@pki.example.com>".into(),
            username: None,
            password_env: "PKI_SMTP_PASSWORD".into(),
            timeout_seconds: 10,
        }
    }
}

/// Certificate revocation lists.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Crl {
    /// CRL partitions per issuing CA. A certificate's partition is fixed at
    /// issuance (from its serial) and written into its CRL distribution point.
    pub partitions: u32,
}

impl Default for Crl {
    fn default() -> Self {
        Self { partitions: 1 }
    }
}

/// Base URLs written into certificates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Urls {
    /// The OCSP responder (AIA id-ad-ocsp).
    pub ocsp: String,
    /// Base of CRL distribution points: `<crl_base>/<ca-name>.crl`.
    pub crl_base: String,
    /// Base of CA certificates (AIA id-ad-caIssuers): `<base>/<ca-name>.cer`.
    pub ca_issuers_base: String,
    /// The certification practice statement (policy qualifier).
    pub cps: String,
    /// The PKI disclosure statement (QcPDS), English.
    pub pds: String,
}

/// Where keys live and how they are unlocked. CA keys and OCSP responder
/// keys are kept apart (directories and passphrases), so that a responder
/// host receives responder keys only.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Keys {
    /// `software` (encrypted PKCS#8 files) or `pkcs11` (keys on tokens, `[keys.pkcs11]`).
    pub backend: KeyBackend,
    /// Environment variable holding the CA keys' passphrase.
    pub passphrase_env: String,
    /// Or a file whose first line is the CA keys' passphrase.
    pub passphrase_file: Option<PathBuf>,
    /// Directory of the CA keys (default `<data_dir>/keys/ca`).
    pub ca_dir: Option<PathBuf>,
    /// Environment variable holding the OCSP responder keys' passphrase.
    pub ocsp_passphrase_env: String,
    /// Or a file whose first line is the OCSP responder keys' passphrase.
    pub ocsp_passphrase_file: Option<PathBuf>,
    /// Directory of the OCSP responder keys (default `<data_dir>/keys/ocsp`).
    pub ocsp_dir: Option<PathBuf>,
    /// Environment variable holding the audit key's passphrase.
    pub audit_passphrase_env: String,
    /// Or a file whose first line is the audit key's passphrase.
    pub audit_passphrase_file: Option<PathBuf>,
    /// Directory of the audit key that signs checkpoints (default `<data_dir>/keys/audit`).
    pub audit_dir: Option<PathBuf>,
    /// The tokens of the `pkcs11` backend.
    pub pkcs11: Pkcs11,
}

/// `[keys.pkcs11]`: the PKCS#11 module and one token per key family, each
/// with its own user PIN, so that a responder host holds only its own token.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pkcs11 {
    /// Path of the PKCS#11 module (`.so`), e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: Option<PathBuf>,
    /// The CA keys' token (`[keys.pkcs11.ca]`).
    pub ca: Pkcs11Token,
    /// The OCSP responder keys' token (`[keys.pkcs11.ocsp]`).
    pub ocsp: Pkcs11Token,
    /// The audit key's token (`[keys.pkcs11.audit]`).
    pub audit: Pkcs11Token,
}

/// One key family's token and where its user PIN comes from.
// The private `pin` field exists to refuse a `pin = ...` key with a clear
// message, not to make the struct non-exhaustive.
#[allow(clippy::manual_non_exhaustive)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pkcs11Token {
    /// The token label (`softhsm2-util --init-token --label ...`); default
    /// `pki-ca`, `pki-ocsp`, `pki-audit`.
    pub token: Option<String>,
    /// Environment variable holding the user PIN; default `PKI_CA_PIN`,
    /// `PKI_OCSP_PIN`, `PKI_AUDIT_PIN`.
    pub pin_env: Option<String>,
    /// Or a file whose first line is the user PIN.
    pub pin_file: Option<PathBuf>,
    /// Never accepted: a `pin = ...` key is refused with a message saying where a PIN goes.
    #[serde(default, rename = "pin", deserialize_with = "refuse_pin")]
    _pin: (),
}

const PIN_REFUSED: &str =
    "a PIN never goes into pki.toml: name an environment variable (pin_env) or a file (pin_file)";

fn refuse_pin<'de, D: serde::Deserializer<'de>>(_: D) -> Result<(), D::Error> {
    Err(serde::de::Error::custom(PIN_REFUSED))
}

/// A family's PKCS#11 token as configured, defaults filled in.
#[derive(Debug, Clone, Copy)]
pub struct TokenChoice<'a> {
    /// `ca`, `ocsp` or `audit` (the `[keys.pkcs11.<family>]` table).
    pub family: &'static str,
    pub label: &'a str,
    pub pin_env: &'a str,
    pub pin_file: Option<&'a Path>,
}

/// The environment variable that overrides `database_url` ([`Config::resolve`]).
pub const DATABASE_URL_ENV: &str = "PKI_DATABASE_URL";

/// Which family of keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    /// Root and issuing CA keys: sign certificates and CRLs.
    Ca,
    /// Delegated OCSP responder keys: sign OCSP responses only.
    OcspResponder,
    /// The audit key: signs the audit log's checkpoints (tree heads) only.
    Audit,
}

/// Batch issuance tuning.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Issuance {
    /// Entries signed and committed per database transaction.
    pub batch_chunk: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("pki-data"),
            database_url: None,
            country: "MC".into(),
            organization: "Example National eID Authority".into(),
            policy_oid_arc: "1.3.6.1.4.1.32473".into(),
            profiles_file: None,
            urls: Urls::default(),
            keys: Keys::default(),
            issuance: Issuance::default(),
            crl: Crl::default(),
            scheduler: Scheduler::default(),
            worker: Worker::default(),
            reminders: Reminders::default(),
            smtp: Smtp::default(),
            audit: Audit::default(),
            handed_over: HandedOver::default(),
        }
    }
}

impl Default for Urls {
    fn default() -> Self {
        Self {
            ocsp: "http://pki.example.com/eid/ocsp".into(),
            crl_base: "http://pki.example.com/eid/crl".into(),
            ca_issuers_base: "http://pki.example.com/eid/ca".into(),
            cps: "https://pki.example.com/eid/cps".into(),
            pds: "https://pki.example.com/eid/pds-en.pdf".into(),
        }
    }
}

impl Default for Keys {
    fn default() -> Self {
        Self {
            backend: KeyBackend::Software,
            passphrase_env: "PKI_CA_PASSPHRASE".into(),
            passphrase_file: None,
            ca_dir: None,
            ocsp_passphrase_env: "PKI_OCSP_PASSPHRASE".into(),
            ocsp_passphrase_file: None,
            ocsp_dir: None,
            audit_passphrase_env: "PKI_AUDIT_PASSPHRASE".into(),
            audit_passphrase_file: None,
            audit_dir: None,
            pkcs11: Pkcs11::default(),
        }
    }
}

impl Default for Issuance {
    fn default() -> Self {
        Self { batch_chunk: 512 }
    }
}

impl Config {
    /// Reads and validates a config file; relative paths in it are taken
    /// relative to the file's directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            // toml quotes the offending line; a refused PIN must not be echoed.
            message: if e.message() == PIN_REFUSED {
                PIN_REFUSED.to_string()
            } else {
                e.to_string()
            },
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.data_dir = base.join(&config.data_dir);
        if let Some(p) = &config.profiles_file {
            config.profiles_file = Some(base.join(p));
        }
        for p in [
            &mut config.keys.passphrase_file,
            &mut config.keys.ocsp_passphrase_file,
            &mut config.keys.ca_dir,
            &mut config.keys.ocsp_dir,
            &mut config.keys.pkcs11.module,
            &mut config.keys.pkcs11.ca.pin_file,
            &mut config.keys.pkcs11.ocsp.pin_file,
            &mut config.keys.pkcs11.audit.pin_file,
        ] {
            if let Some(path) = p.as_mut() {
                *path = base.join(&*path);
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// The configuration every binary uses: the file given (`--config` or
    /// `PKI_CONFIG`), else `./pki.toml` when present, else the defaults.
    ///
    /// `PKI_DATABASE_URL`, when set, replaces `database_url`: one
    /// configuration file serves every component, and each service's unit
    /// names the database role it connects as (its password, if any, comes
    /// from libpq's own `~/.pgpass` of the service user, never from here).
    pub fn resolve(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut config = match path {
            Some(p) => Self::load(p)?,
            None if Path::new("pki.toml").exists() => Self::load(Path::new("pki.toml"))?,
            None => Self::default(),
        };
        if let Ok(url) = std::env::var(DATABASE_URL_ENV) {
            if !url.is_empty() {
                config.database_url = Some(url);
            }
        }
        Ok(config)
    }

    /// Checks values that serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.country.len() != 2 || !self.country.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(ConfigError::Invalid(format!(
                "country {:?} must be an ISO 3166 alpha-2 code such as MC",
                self.country
            )));
        }
        const_oid::ObjectIdentifier::new(&self.policy_oid_arc).map_err(|e| {
            ConfigError::Invalid(format!(
                "policy_oid_arc {:?} is not an OID: {e}",
                self.policy_oid_arc
            ))
        })?;
        if self.crl.partitions == 0 || self.crl.partitions > 1024 {
            return Err(ConfigError::Invalid(
                "crl.partitions must be between 1 and 1024".into(),
            ));
        }
        if self.issuance.batch_chunk == 0 || self.issuance.batch_chunk > 5000 {
            return Err(ConfigError::Invalid(
                "issuance.batch_chunk must be between 1 and 5000".into(),
            ));
        }
        if self.reminders.offsets_days.is_empty()
            || self
                .reminders
                .offsets_days
                .iter()
                .any(|d| *d == 0 || *d > 3650)
        {
            return Err(ConfigError::Invalid(
                "reminders.offsets_days must list days between 1 and 3650".into(),
            ));
        }
        if self.reminders.max_attempts == 0 {
            return Err(ConfigError::Invalid(
                "reminders.max_attempts must be at least 1".into(),
            ));
        }
        if self.keys.backend == KeyBackend::Pkcs11 {
            let p = &self.keys.pkcs11;
            if p.module.as_ref().is_none_or(|m| m.as_os_str().is_empty()) {
                return Err(ConfigError::Invalid(
                    "keys.pkcs11.module (the PKCS#11 .so) must be set when keys.backend = \"pkcs11\"".into(),
                ));
            }
            let tokens = [KeyPurpose::Ca, KeyPurpose::OcspResponder, KeyPurpose::Audit]
                .map(|purpose| self.pkcs11_token(purpose));
            for (i, t) in tokens.iter().enumerate() {
                if t.label.is_empty() || t.label.len() > 32 {
                    return Err(ConfigError::Invalid(format!(
                        "keys.pkcs11.{}.token must be a token label of 1 to 32 bytes",
                        t.family
                    )));
                }
                if let Some(other) = tokens[..i].iter().find(|o| o.label == t.label) {
                    return Err(ConfigError::Invalid(format!(
                        "keys.pkcs11.{}.token and keys.pkcs11.{}.token are both {:?}: each key family has its own token",
                        other.family, t.family, t.label
                    )));
                }
            }
        }
        for (name, url) in [
            ("urls.ocsp", &self.urls.ocsp),
            ("urls.crl_base", &self.urls.crl_base),
            ("urls.ca_issuers_base", &self.urls.ca_issuers_base),
            ("urls.cps", &self.urls.cps),
            ("urls.pds", &self.urls.pds),
        ] {
            if !(url.starts_with("http://") || url.starts_with("https://")) || !url.is_ascii() {
                return Err(ConfigError::Invalid(format!(
                    "{name} {url:?} must be an ASCII http:// or https:// URL"
                )));
            }
        }
        Ok(())
    }

    /// The database URL, defaulting to a SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) if !url.is_empty() => url.clone(),
            _ => format!("sqlite://{}", self.data_dir.join("pki.sqlite").display()),
        }
    }

    /// Directory of the audit log's checkpoint files.
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.audit
            .checkpoint_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("audit-checkpoints"))
    }

    /// Directory of a family of encrypted software keys.
    pub fn key_dir(&self, purpose: KeyPurpose) -> PathBuf {
        let (configured, default) = match purpose {
            KeyPurpose::Ca => (&self.keys.ca_dir, "ca"),
            KeyPurpose::OcspResponder => (&self.keys.ocsp_dir, "ocsp"),
            KeyPurpose::Audit => (&self.keys.audit_dir, "audit"),
        };
        configured
            .clone()
            .unwrap_or_else(|| self.data_dir.join("keys").join(default))
    }

    /// The passphrase of a family of keys, from the environment or a file.
    pub fn passphrase(&self, purpose: KeyPurpose) -> Result<String, ConfigError> {
        let (env, file, what, file_key) = match purpose {
            KeyPurpose::Ca => (
                &self.keys.passphrase_env,
                &self.keys.passphrase_file,
                "CA key",
                "passphrase_file",
            ),
            KeyPurpose::OcspResponder => (
                &self.keys.ocsp_passphrase_env,
                &self.keys.ocsp_passphrase_file,
                "OCSP responder key",
                "ocsp_passphrase_file",
            ),
            KeyPurpose::Audit => (
                &self.keys.audit_passphrase_env,
                &self.keys.audit_passphrase_file,
                "audit key",
                "audit_passphrase_file",
            ),
        };
        secret_from(&self.handed_over, env, file.as_deref(), "passphrase file")?.ok_or_else(|| {
            ConfigError::MissingPassphrase {
                what,
                env: env.clone(),
                file_key,
            }
        })
    }

    /// The `[keys.pkcs11]` token of a family of keys, defaults filled in.
    pub fn pkcs11_token(&self, purpose: KeyPurpose) -> TokenChoice<'_> {
        let (t, family, label, env) = match purpose {
            KeyPurpose::Ca => (&self.keys.pkcs11.ca, "ca", "pki-ca", "PKI_CA_PIN"),
            KeyPurpose::OcspResponder => {
                (&self.keys.pkcs11.ocsp, "ocsp", "pki-ocsp", "PKI_OCSP_PIN")
            }
            KeyPurpose::Audit => (
                &self.keys.pkcs11.audit,
                "audit",
                "pki-audit",
                "PKI_AUDIT_PIN",
            ),
        };
        TokenChoice {
            family,
            label: t.token.as_deref().unwrap_or(label),
            pin_env: t.pin_env.as_deref().unwrap_or(env),
            pin_file: t.pin_file.as_deref(),
        }
    }

    /// The user PIN of a family's PKCS#11 token, from the environment or a file.
    pub fn pin(&self, purpose: KeyPurpose) -> Result<String, ConfigError> {
        let what = match purpose {
            KeyPurpose::Ca => "CA key",
            KeyPurpose::OcspResponder => "OCSP responder key",
            KeyPurpose::Audit => "audit key",
        };
        let t = self.pkcs11_token(purpose);
        secret_from(&self.handed_over, t.pin_env, t.pin_file, "PIN file")?.ok_or_else(|| {
            ConfigError::MissingPin {
                what,
                env: t.pin_env.to_string(),
                family: t.family,
            }
        })
    }
}

/// A secret from a non-empty environment variable, else the first line of a file.
fn secret_from(
    handed_over: &HandedOver,
    env: &str,
    file: Option<&Path>,
    what: &'static str,
) -> Result<Option<String>, ConfigError> {
    if let Ok(p) = std::env::var(env) {
        if !p.is_empty() {
            return Ok(Some(p));
        }
    }
    if let Some(p) = handed_over.get(env).filter(|p| !p.is_empty()) {
        return Ok(Some(p.to_string()));
    }
    if let Some(path) = file {
        // A secret file open to group or others is refused, naming it.
        crate::files::check_private(path, what)?;
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::PassphraseFile {
            path: path.to_path_buf(),
            source,
        })?;
        let line = text.lines().next().unwrap_or("").to_string();
        if !line.is_empty() {
            return Ok(Some(line));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_point_at_sqlite() {
        let c = Config::default();
        c.validate().unwrap();
        assert!(c.database_url().starts_with("sqlite://"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pki.toml");
        std::fs::write(&path, "colour = 'blue'\n").unwrap();
        assert!(matches!(
            Config::load(&path),
            Err(ConfigError::Parse { .. })
        ));
        std::fs::write(&path, "country = 'Monaco'\n").unwrap();
        assert!(matches!(Config::load(&path), Err(ConfigError::Invalid(_))));
        std::fs::write(&path, "data_dir = 'd'\n").unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(c.data_dir, dir.path().join("d"));
    }

    #[test]
    fn pkcs11_tokens_take_defaults_refuse_a_pin_and_must_differ() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pki.toml");
        std::fs::write(
            &path,
            "[keys]\nbackend = 'pkcs11'\n[keys.pkcs11]\nmodule = '/usr/lib/softhsm/libsofthsm2.so'\n[keys.pkcs11.ocsp]\ntoken = 'resp'\npin_file = 'ocsp.pin'\n",
        )
        .unwrap();
        let c = Config::load(&path).unwrap();
        let ca = c.pkcs11_token(KeyPurpose::Ca);
        assert_eq!((ca.label, ca.pin_env), ("pki-ca", "PKI_CA_PIN"));
        let ocsp = c.pkcs11_token(KeyPurpose::OcspResponder);
        assert_eq!((ocsp.label, ocsp.pin_env), ("resp", "PKI_OCSP_PIN"));
        assert_eq!(ocsp.pin_file, Some(dir.path().join("ocsp.pin").as_path()));

        std::fs::write(
            &path,
            "[keys]\nbackend = 'pkcs11'\n[keys.pkcs11]\nmodule = 'm.so'\n[keys.pkcs11.ca]\npin = '1234'\n",
        )
        .unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(err.contains("a PIN never goes into pki.toml"), "{err}");
        assert!(!err.contains("1234"), "{err}");

        std::fs::write(
            &path,
            "[keys]\nbackend = 'pkcs11'\n[keys.pkcs11]\nmodule = 'm.so'\n[keys.pkcs11.ocsp]\ntoken = 'pki-ca'\n",
        )
        .unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(err.contains("each key family has its own token"), "{err}");

        std::fs::write(&path, "[keys]\nbackend = 'pkcs11'\n").unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(err.contains("keys.pkcs11.module"), "{err}");
    }

    #[test]
    fn the_documented_example_is_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pki.toml");
        std::fs::copy(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../pki.example.toml"),
            &path,
        )
        .unwrap();
        let c = Config::load(&path).unwrap();
        let d = Config::default();
        assert_eq!(c.country, d.country);
        assert_eq!(c.urls.ocsp, d.urls.ocsp);
        assert_eq!(c.issuance.batch_chunk, d.issuance.batch_chunk);
        assert_eq!(
            c.database_url(),
            format!(
                "sqlite://{}",
                dir.path().join("pki-data/pki.sqlite").display()
            )
        );
    }
}
