//! Blocked keys (CPS 3.2.1, 4.9.1): public keys this CA never certifies
//! again, keyed by the SHA-256 of their SubjectPublicKeyInfo (Boulder's
//! `blockedKeys`). A key enters the table when a certificate of it is
//! revoked for `keyCompromise` (in the revocation's own transaction,
//! [`block_compromised`]) or when an officer blocks it by hand
//! ([`block_by_hand`]). Issuance and renewal refuse a CSR whose key is
//! blocked ([`check`]) before anything is signed, and again inside the
//! storing transaction.

use diesel::prelude::*;
use pki_store::domain::{AuditAction, KeyBlockSource};
use pki_store::error::{CaError, Result};
use pki_store::storage::models::{BlockedKeyRow, CertificateRow};
use pki_store::storage::schema::blocked_keys;
use pki_store::storage::{Db, WriteTx};
use pki_store::with_conn;
use std::collections::HashMap;

/// The SHA-256 (lower-case hex) of a DER SubjectPublicKeyInfo.
pub fn spki_sha256(spki_der: &[u8]) -> String {
    pki_x509::sha256_hex(spki_der)
}

/// Which of these key hashes are blocked, with their records.
pub fn blocked_among(db: &mut Db, hashes: &[String]) -> Result<HashMap<String, BlockedKeyRow>> {
    let mut out = HashMap::new();
    for chunk in hashes.chunks(500) {
        let found: Vec<BlockedKeyRow> = with_conn!(db, c => blocked_keys::table
            .filter(blocked_keys::public_key_sha256.eq_any(chunk))
            .select(BlockedKeyRow::as_select())
            .load(c))?;
        out.extend(found.into_iter().map(|r| (r.public_key_sha256.clone(), r)));
    }
    Ok(out)
}

/// The SPKI hash of a certificate's key (PEM or DER).
pub fn cert_key_sha256(cert: &[u8]) -> Result<String> {
    use der::{Decode, DecodePem, Encode};
    let bad = |e: der::Error| CaError::Field {
        field: "certificate".into(),
        message: format!("not an X.509 certificate (PEM or DER): {e}"),
    };
    let parsed = if cert.starts_with(b"-----") {
        x509_cert::Certificate::from_pem(cert).map_err(bad)?
    } else {
        x509_cert::Certificate::from_der(cert).map_err(bad)?
    };
    let spki = parsed
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(bad)?;
    Ok(spki_sha256(&spki))
}

/// The SPKI hash of a CSR's key, read without checking the CSR (the full
/// check comes later; a CSR that does not decode is refused there).
pub fn csr_key_sha256(csr: &[u8]) -> Option<String> {
    use der::Encode;
    let req = pki_x509::csr::decode(csr).ok()?;
    let spki = req.info.public_key.to_der().ok()?;
    Some(spki_sha256(&spki))
}

/// Refuses a blocked key.
pub fn check(db: &mut Db, spki_sha256: &str) -> Result<()> {
    match blocked_among(db, &[spki_sha256.to_string()])?
        .values()
        .next()
    {
        None => Ok(()),
        Some(row) => Err(refusal(row)),
    }
}

/// The error for a blocked key.
pub fn refusal(row: &BlockedKeyRow) -> CaError {
    CaError::BlockedKey {
        spki_sha256: row.public_key_sha256.clone(),
        why: match (&row.source, &row.certificate_serial) {
            (KeyBlockSource::KeyCompromise, Some(serial)) => {
                format!("certificate {serial} of this key was revoked for keyCompromise")
            }
            (KeyBlockSource::KeyCompromise, None) => "it was revoked for keyCompromise".into(),
            (KeyBlockSource::Officer, _) => format!(
                "an officer blocked it on {}{}",
                row.blocked_at.format("%Y-%m-%d"),
                row.comment
                    .as_deref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default()
            ),
        },
    }
}

fn insert(tx: &mut WriteTx<'_>, row: &BlockedKeyRow) -> Result<bool> {
    let n = with_conn!(tx.db, c => diesel::insert_into(blocked_keys::table)
        .values(row)
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(n == 1)
}

/// Blocks the key of a certificate just revoked for keyCompromise (inside
/// the revocation's transaction). A key already blocked stays as it was.
pub(crate) fn block_compromised(tx: &mut WriteTx<'_>, cert: &CertificateRow) -> Result<()> {
    let row = BlockedKeyRow {
        public_key_sha256: cert.public_key_sha256.clone(),
        source: KeyBlockSource::KeyCompromise,
        certificate_serial: Some(cert.serial.clone()),
        blocked_at: tx.at(),
        comment: None,
    };
    if insert(tx, &row)? {
        tx.audit(
            AuditAction::KeyBlock,
            &row.public_key_sha256,
            serde_json::json!({"source": row.source, "certificate": cert.serial}),
        );
    }
    Ok(())
}

/// An officer blocks a key by hand. Returns false when it was already
/// blocked (nothing changed).
pub fn block_by_hand(
    db: &mut Db,
    actor: &str,
    now: chrono::DateTime<chrono::Utc>,
    spki_sha256: &str,
    comment: Option<&str>,
) -> Result<bool> {
    if spki_sha256.len() != 64 || !spki_sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CaError::Field {
            field: "key".into(),
            message: format!("{spki_sha256:?} is not a SHA-256 in hex (64 digits)"),
        });
    }
    let hash = spki_sha256.to_ascii_lowercase();
    db.write(actor, now, |tx| {
        let row = BlockedKeyRow {
            public_key_sha256: hash.clone(),
            source: KeyBlockSource::Officer,
            certificate_serial: None,
            blocked_at: tx.at(),
            comment: comment.map(str::to_string),
        };
        let added = insert(tx, &row)?;
        if added {
            tx.audit(
                AuditAction::KeyBlock,
                &hash,
                serde_json::json!({"source": row.source, "comment": row.comment}),
            );
        }
        Ok(added)
    })
}

/// The blocked keys, newest first.
pub fn list(db: &mut Db, limit: i64) -> Result<Vec<BlockedKeyRow>> {
    Ok(with_conn!(db, c => blocked_keys::table
        .order(blocked_keys::blocked_at.desc())
        .limit(limit)
        .select(BlockedKeyRow::as_select())
        .load(c))?)
}
