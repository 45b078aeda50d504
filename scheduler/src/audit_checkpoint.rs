//! The `audit-checkpoint` job: signs a checkpoint of the audit log's Merkle
//! tree when `[audit]` says one is due (every `checkpoint_every_records`
//! records or `checkpoint_every_minutes` minutes), with the audit key.
//!
//! This is the only place the scheduler touches a key: [`audit_keys`]
//! builds its one `KeyStore`, of `KeyPurpose::Audit`; the scheduler never
//! builds one of the CA or OCSP responder families (and does not link
//! `ca-core`: `tests/tests/crate_boundaries.rs`).

use crate::job_error::{JobError, ACTOR};
use pki_keys::audit as audit_key;
use pki_keys::KeyStore;
use pki_store::config::{Config, KeyPurpose};
use pki_store::Context;
use serde_json::json;

/// The scheduler's one key store: the audit family.
pub fn audit_keys(config: &Config) -> KeyStore {
    KeyStore::new(config, KeyPurpose::Audit)
}

/// Runs the job once: a checkpoint if one is due. Without an audit key and
/// without a passphrase to create one, nothing is signed and the report
/// (and a warning in the log) says why.
pub fn run(ca: &mut Context) -> Result<serde_json::Value, JobError> {
    let (size, _) = pki_store::audit::tree_head(&mut ca.db).map_err(audit_err)?;
    let dir = ca.config.checkpoint_dir();
    let last = audit_key::latest(&dir)?;
    let now = ca.clock.now();
    if !audit_key::checkpoint_due(&ca.config, last.as_ref(), size, now) {
        return Ok(json!({
            "checkpoint": null,
            "size": size,
            "last_checkpoint_size": last.map(|c| c.size),
        }));
    }
    let keys = audit_keys(&ca.config);
    let key_exists = ca
        .config
        .key_dir(KeyPurpose::Audit)
        .join(audit_key::REF_FILE)
        .exists();
    if !key_exists {
        if let Err(e) = keys.require_passphrase() {
            log::warn!("audit checkpoint due but not signed: {e}");
            return Ok(json!({
                "checkpoint": null,
                "size": size,
                "skipped": format!("no audit key yet and {e}"),
            }));
        }
    }
    let signer = audit_key::open_or_create(&ca.config, &keys)?;
    let config = ca.config.clone();
    let made = audit_key::checkpoint_now(&mut ca.db, &config, signer.as_ref(), ACTOR, now)?;
    Ok(match made {
        Some((path, cp)) => json!({
            "checkpoint": path.display().to_string(),
            "size": cp.size,
            "root": hex::encode(cp.root),
        }),
        None => json!({ "checkpoint": null, "size": size }),
    })
}

fn audit_err(e: pki_store::audit::AuditError) -> JobError {
    JobError::AuditKey(e.into())
}
