//! The audit key and the checkpoints it signs (CPS 5.4.4).
//!
//! * [`open_or_create`]: the audit key of a [`KeyStore`] of
//!   `KeyPurpose::Audit` (refused for any other family), created on first
//!   use. Its reference is kept in `<keys.audit_dir>/audit-key.ref` and its
//!   public key in `<keys.audit_dir>/audit-key.pub.pem` (copy that file
//!   somewhere the database's administrators cannot write: it is what
//!   checkpoints are checked against).
//! * [`checkpoint_now`]: signs the tree head of the whole log, writes the
//!   checkpoint file (never over another) and records `audit.checkpoint`.
//! * [`checkpoint_due`]: the `[audit]` rule of "every N records or T minutes".
//! * [`check_signature`] and [`read_public_key`]: the offline side, with a
//!   public key the verifier trusts; no database, no private key.

use crate::{KeyError, KeyStore, SignatureAlgorithm, Signer};
use chrono::{DateTime, Timelike, Utc};
use pki_store::audit::{self, AuditError};
use pki_store::checkpoint::{self, Checkpoint, CheckpointError};
use pki_store::config::{Config, KeyPurpose};
use pki_store::domain::AuditAction;
use pki_store::storage::{Db, StorageError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The audit key's algorithm.
pub const ALGORITHM: SignatureAlgorithm = SignatureAlgorithm::EcdsaP384Sha384;
/// The file holding the audit key's reference, in the audit key directory.
pub const REF_FILE: &str = "audit-key.ref";
/// The audit key's public key (PEM), in the audit key directory.
pub const PUBLIC_KEY_FILE: &str = "audit-key.pub.pem";

#[derive(Debug, thiserror::Error)]
pub enum AuditKeyError {
    #[error("the audit key is opened only from a key store of the audit family, not {0:?}")]
    WrongFamily(KeyPurpose),
    #[error("audit key: {0}")]
    Key(#[from] KeyError),
    #[error("audit key file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("public key {path}: {message}")]
    PublicKey { path: String, message: String },
    #[error("the audit log is empty: nothing to checkpoint")]
    Empty,
    #[error(
        "checkpoint {file} is signed by another key (key id {found}), not the audit key {expected}"
    )]
    OtherKey {
        file: String,
        found: String,
        expected: String,
    },
    #[error("checkpoint {file}: its signature does not verify with the audit key: the file was changed after it was signed, or forged")]
    BadSignature { file: String },
    #[error("checkpoint {file}: unsupported algorithm {algorithm:?}")]
    Algorithm { file: String, algorithm: String },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The name of an algorithm in checkpoints.
fn algorithm_name(alg: SignatureAlgorithm) -> &'static str {
    match alg {
        SignatureAlgorithm::EcdsaP256Sha256 => "ecdsa-with-SHA256",
        SignatureAlgorithm::EcdsaP384Sha384 => "ecdsa-with-SHA384",
    }
}

/// Opens the audit key, creating it (and its reference and public key
/// files) when the audit key directory has none yet.
pub fn open_or_create(config: &Config, keys: &KeyStore) -> Result<Arc<dyn Signer>, AuditKeyError> {
    if keys.purpose() != KeyPurpose::Audit {
        return Err(AuditKeyError::WrongFamily(keys.purpose()));
    }
    let dir = config.key_dir(KeyPurpose::Audit);
    let ref_path = dir.join(REF_FILE);
    let file_err = |path: &Path| {
        let path = path.display().to_string();
        move |source| AuditKeyError::File { path, source }
    };
    if ref_path.exists() {
        let key_ref = std::fs::read_to_string(&ref_path).map_err(file_err(&ref_path))?;
        return Ok(keys.open(key_ref.trim(), ALGORITHM)?);
    }
    keys.require_passphrase()?;
    let name = format!("audit-{}", crate::random_hex(4)?);
    let (key_ref, signer) = keys.generate(&name, ALGORITHM)?;
    let pem = der::pem::encode_string(
        "PUBLIC KEY",
        der::pem::LineEnding::LF,
        signer.public_key_der(),
    )
    .map_err(|e| AuditKeyError::PublicKey {
        path: PUBLIC_KEY_FILE.into(),
        message: e.to_string(),
    })?;
    let pub_path = dir.join(PUBLIC_KEY_FILE);
    write_new_file(&pub_path, pem.as_bytes()).map_err(file_err(&pub_path))?;
    write_new_file(&ref_path, format!("{key_ref}\n").as_bytes()).map_err(file_err(&ref_path))?;
    Ok(signer)
}

fn write_new_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Whether a checkpoint is due: records were added since `last` (beyond
/// its own `audit.checkpoint` record) and either
/// `checkpoint_every_records` were added or `checkpoint_every_minutes`
/// passed; always when there is none yet and the log is not empty.
pub fn checkpoint_due(
    config: &Config,
    last: Option<&Checkpoint>,
    size: u64,
    now: DateTime<Utc>,
) -> bool {
    let Some(last) = last else {
        return size > 0;
    };
    let added = size.saturating_sub(last.size);
    let minutes = (now - last.time).num_minutes();
    added >= config.audit.checkpoint_every_records.max(1)
        || (added > 1 && minutes >= config.audit.checkpoint_every_minutes as i64)
}

/// The checkpoint with the largest size in `dir`, if any.
pub fn latest(dir: &Path) -> Result<Option<Checkpoint>, AuditKeyError> {
    Ok(checkpoint::list(dir)?.pop().map(|(_, cp)| cp))
}

/// Signs the tree head of the whole log, writes the checkpoint into
/// `config.checkpoint_dir()` and records `audit.checkpoint` (the record is
/// the next leaf, covered by the next checkpoint). `Ok(None)` when the
/// newest checkpoint already covers the whole log but its own record.
pub fn checkpoint_now(
    db: &mut Db,
    config: &Config,
    signer: &dyn Signer,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Option<(PathBuf, Checkpoint)>, AuditKeyError> {
    let (size, root) = audit::tree_head(db)?;
    if size == 0 {
        return Err(AuditKeyError::Empty);
    }
    let dir = config.checkpoint_dir();
    if let Some(last) = latest(&dir)? {
        // Covered already, or only its own `audit.checkpoint` record since.
        let only_its_record = size == last.size + 1
            && audit::list(db, Some(1))?.last().is_some_and(|r| {
                r.seq as u64 == size && r.action == AuditAction::AuditCheckpoint.as_str()
            });
        if last.size >= size || only_its_record {
            return Ok(None);
        }
    }
    let spki = signer.public_key_der().to_vec();
    let key_id = checkpoint::key_id(&spki);
    let algorithm = algorithm_name(signer.algorithm()).to_string();
    let time = now.with_nanosecond(0).unwrap_or(now);
    let log = config.audit.log_name.clone();
    let text = checkpoint::signed_text(&log, size, &root, time, &key_id, &algorithm);
    let signature = signer.sign(text.as_bytes())?;
    let cp = Checkpoint {
        log,
        size,
        root,
        time,
        key_id,
        algorithm,
        spki,
        signature,
    };
    let path = checkpoint::write_new(&dir, &cp)?;
    let file = checkpoint::file_name(size);
    let details = serde_json::json!({
        "size": size,
        "root": hex::encode(root),
        "key_id": hex::encode(key_id),
    });
    db.write(actor, now, |tx| {
        tx.audit(AuditAction::AuditCheckpoint, &file, details);
        Ok::<_, AuditKeyError>(())
    })?;
    Ok(Some((path, cp)))
}

/// Reads a PEM `PUBLIC KEY` file: the DER SubjectPublicKeyInfo.
pub fn read_public_key(path: &Path) -> Result<Vec<u8>, AuditKeyError> {
    let bad = |message: String| AuditKeyError::PublicKey {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let (label, der) =
        der::pem::decode_vec(text.trim().as_bytes()).map_err(|e| bad(e.to_string()))?;
    if label != "PUBLIC KEY" {
        return Err(bad(format!(
            "expected a PUBLIC KEY PEM block, found {label}"
        )));
    }
    Ok(der)
}

/// Checks a checkpoint's signature with the public key the verifier
/// trusts (`trusted_spki`, DER); `file` names it in errors.
pub fn check_signature(
    cp: &Checkpoint,
    trusted_spki: &[u8],
    file: &str,
) -> Result<(), AuditKeyError> {
    use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA384_ASN1};
    use der::Decode;
    let expected = checkpoint::key_id(trusted_spki);
    if cp.key_id != expected {
        return Err(AuditKeyError::OtherKey {
            file: file.to_string(),
            found: hex::encode(cp.key_id),
            expected: hex::encode(expected),
        });
    }
    let spki = spki::SubjectPublicKeyInfoRef::from_der(trusted_spki).map_err(|e| {
        AuditKeyError::PublicKey {
            path: "trusted audit key".into(),
            message: e.to_string(),
        }
    })?;
    let point = spki.subject_public_key.raw_bytes();
    let alg: &'static aws_lc_rs::signature::EcdsaVerificationAlgorithm = match cp.algorithm.as_str()
    {
        "ecdsa-with-SHA384" => &ECDSA_P384_SHA384_ASN1,
        "ecdsa-with-SHA256" => &ECDSA_P256_SHA256_ASN1,
        other => {
            return Err(AuditKeyError::Algorithm {
                file: file.to_string(),
                algorithm: other.to_string(),
            })
        }
    };
    UnparsedPublicKey::new(alg, point)
        .verify(cp.signed_text().as_bytes(), &cp.signature)
        .map_err(|_| AuditKeyError::BadSignature {
            file: file.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> Config {
        Config {
            data_dir: dir.to_path_buf(),
            keys: pki_store::config::Keys {
                audit_dir: Some(dir.join("audit-keys")),
                ..Default::default()
            },
            ..Config::default()
        }
    }

    #[test]
    fn only_the_audit_family_opens_the_audit_key() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path());
        let ca = KeyStore::new(&c, KeyPurpose::Ca);
        assert!(matches!(
            open_or_create(&c, &ca),
            Err(AuditKeyError::WrongFamily(KeyPurpose::Ca))
        ));
        assert!(!dir.path().join("audit-keys").exists());
    }

    #[test]
    fn a_signature_verifies_with_the_right_key_only() {
        let (key, _) = crate::SoftwareKey::generate(ALGORITHM).unwrap();
        let (other, _) = crate::SoftwareKey::generate(ALGORITHM).unwrap();
        let spki = key.public_key_der().to_vec();
        let time: DateTime<Utc> = "2026-12-03T17:00:00Z".parse().unwrap();
        let key_id = checkpoint::key_id(&spki);
        let text = checkpoint::signed_text("l", 3, &[1; 32], time, &key_id, "ecdsa-with-SHA384");
        let mut cp = Checkpoint {
            log: "l".into(),
            size: 3,
            root: [1; 32],
            time,
            key_id,
            algorithm: "ecdsa-with-SHA384".into(),
            spki: spki.clone(),
            signature: key.sign(text.as_bytes()).unwrap(),
        };
        check_signature(&cp, &spki, "f").unwrap();
        assert!(matches!(
            check_signature(&cp, other.public_key_der(), "f"),
            Err(AuditKeyError::OtherKey { .. })
        ));
        cp.root = [2; 32];
        assert!(matches!(
            check_signature(&cp, &spki, "f"),
            Err(AuditKeyError::BadSignature { .. })
        ));
    }
}
