//! The CAs this responder answers for, and their delegated responders.
//!
//! An [`Issuer`] is recognised in a CertID by the hashes of its subject name
//! and public key (SHA-1 and SHA-256, RFC 6960 §4.1.1). Its [`Responder`] is
//! the newest currently valid certificate of `ocsp_responders` for that CA,
//! with its key opened from the OCSP responder key store (never a CA key).
//! The set is reloaded when the change feed says an authority or responder
//! changed (`pki-admin ocsp rotate`); a responder whose certificate did not
//! change keeps its opened key.

use crate::request::HashAlg;
use der::{Decode, Encode};
use diesel::prelude::*;
use pki_keys::{KeyStore, SignatureAlgorithm, Signer};
use pki_store::storage::models::{AuthorityRow, OcspResponderRow};
use pki_store::storage::schema::ocsp_responders;
use pki_store::storage::Db;
use pki_store::with_conn;
use std::collections::HashMap;
use std::sync::Arc;
use x509_cert::Certificate;

/// A delegated OCSP responder: certificate and opened key.
pub struct Responder {
    /// Serial of the responder certificate (lower-case hex).
    pub serial: String,
    pub authority: String,
    pub cert_der: Vec<u8>,
    /// The `certs` field of its responses (see `der_header::certs_field`).
    pub certs_field: Vec<u8>,
    /// SHA-1 of the responder's public key (ResponderID byKey).
    pub key_hash: [u8; 20],
    pub signer: Arc<dyn Signer>,
    pub signature_algorithm_der: Vec<u8>,
    /// Validity of the responder certificate (Unix seconds).
    pub not_before: i64,
    pub not_after: i64,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("serial", &self.serial)
            .field("authority", &self.authority)
            .field("not_after", &self.not_after)
            .finish()
    }
}

/// A CA whose certificates this responder answers for.
#[derive(Debug, Clone)]
pub struct Issuer {
    pub name: String,
    /// Stable small number of the CA inside this process (store keys).
    pub index: u16,
    /// Issuer name hash per [`HashAlg`] (indexed by `HashAlg::index`).
    pub name_hash: [Vec<u8>; 2],
    /// Issuer key hash per [`HashAlg`].
    pub key_hash: [Vec<u8>; 2],
    pub responder: Option<Arc<Responder>>,
}

impl Issuer {
    pub fn matches(&self, alg: HashAlg, name_hash: &[u8], key_hash: &[u8]) -> bool {
        self.name_hash[alg.index()] == name_hash && self.key_hash[alg.index()] == key_hash
    }
}

/// The CAs served.
#[derive(Debug, Default, Clone)]
pub struct Issuers {
    pub list: Vec<Issuer>,
}

impl Issuers {
    /// The CA a CertID names.
    pub fn find(&self, alg: HashAlg, name_hash: &[u8], key_hash: &[u8]) -> Option<&Issuer> {
        self.list
            .iter()
            .find(|i| i.matches(alg, name_hash, key_hash))
    }

    pub fn by_name(&self, name: &str) -> Option<&Issuer> {
        self.list.iter().find(|i| i.name == name)
    }

    pub fn by_index(&self, index: u16) -> Option<&Issuer> {
        self.list.iter().find(|i| i.index == index)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    #[error(transparent)]
    Ca(#[from] pki_store::CaError),
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("certificate {serial} of {what} does not decode: {message}")]
    Certificate {
        serial: String,
        what: String,
        message: String,
    },
    #[error("the key {key_ref} does not belong to responder certificate {serial}")]
    KeyMismatch { key_ref: String, serial: String },
    #[error("no authority to serve{0}: run `pki-admin init` first")]
    NoAuthority(String),
}

/// Subject name and public key bits of a certificate.
fn subject_and_key(
    der: &[u8],
    serial: &str,
    what: &str,
) -> Result<(Vec<u8>, Vec<u8>), IssuerError> {
    let err = |message: String| IssuerError::Certificate {
        serial: serial.to_string(),
        what: what.to_string(),
        message,
    };
    let cert = Certificate::from_der(der).map_err(|e| err(e.to_string()))?;
    let name = cert
        .tbs_certificate
        .subject
        .to_der()
        .map_err(|e| err(e.to_string()))?;
    let key = cert
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes()
        .to_vec();
    Ok((name, key))
}

fn validity(der: &[u8], serial: &str, what: &str) -> Result<(i64, i64), IssuerError> {
    let cert = Certificate::from_der(der).map_err(|e| IssuerError::Certificate {
        serial: serial.to_string(),
        what: what.to_string(),
        message: e.to_string(),
    })?;
    let v = &cert.tbs_certificate.validity;
    Ok((
        pki_x509::time::from_x509(&v.not_before).timestamp(),
        pki_x509::time::from_x509(&v.not_after).timestamp(),
    ))
}

/// Builds a responder from its certificate and an opened key, checking
/// that they belong together.
pub fn responder_from(
    authority: &str,
    serial: &str,
    key_ref: &str,
    cert_der: Vec<u8>,
    signer: Arc<dyn Signer>,
) -> Result<Responder, IssuerError> {
    use sha1::Digest;
    let what = format!("the {authority} OCSP responder");
    let (_, key_bits) = subject_and_key(&cert_der, serial, &what)?;
    let spki = spki::SubjectPublicKeyInfoRef::from_der(signer.public_key_der()).map_err(|e| {
        IssuerError::Certificate {
            serial: serial.to_string(),
            what: what.clone(),
            message: e.to_string(),
        }
    })?;
    if spki.subject_public_key.raw_bytes() != key_bits.as_slice() {
        return Err(IssuerError::KeyMismatch {
            key_ref: key_ref.to_string(),
            serial: serial.to_string(),
        });
    }
    let (not_before, not_after) = validity(&cert_der, serial, &what)?;
    let algorithm: SignatureAlgorithm = signer.algorithm();
    Ok(Responder {
        serial: serial.to_string(),
        authority: authority.to_string(),
        certs_field: crate::der_header::certs_field(&cert_der),
        cert_der,
        key_hash: sha1::Sha1::digest(&key_bits).into(),
        signature_algorithm_der: algorithm.identifier().to_der().map_err(|e| {
            IssuerError::Certificate {
                serial: serial.to_string(),
                what,
                message: e.to_string(),
            }
        })?,
        signer,
        not_before,
        not_after,
    })
}

/// Responder rows of an authority, newest first.
fn responder_rows(db: &mut Db, authority: &str) -> Result<Vec<OcspResponderRow>, IssuerError> {
    Ok(with_conn!(db, c => ocsp_responders::table
        .filter(ocsp_responders::authority.eq(authority))
        .order((ocsp_responders::created_at.desc(), ocsp_responders::not_after.desc()))
        .select(OcspResponderRow::as_select())
        .load(c))?)
}

/// Loads the CAs to serve and their current responders.
///
/// * `only`: serve just these authorities (empty = all);
/// * `indexes`: the stable numbering of authorities, extended for new ones;
/// * `previous`: the set in use, whose opened responder keys are reused.
///
/// A responder key that cannot be opened is an error when there is no
/// previous responder for that CA; otherwise the previous one is kept and
/// the error reported through `warn`.
pub fn load(
    db: &mut Db,
    keys: &KeyStore,
    only: &[String],
    indexes: &mut HashMap<String, u16>,
    previous: Option<&Issuers>,
    now: i64,
    warn: &mut dyn FnMut(String),
) -> Result<Issuers, IssuerError> {
    let rows: Vec<AuthorityRow> = pki_store::authorities::list(db)?;
    let rows: Vec<AuthorityRow> = rows
        .into_iter()
        .filter(|r| only.is_empty() || only.contains(&r.name))
        .collect();
    if rows.is_empty() {
        let which = if only.is_empty() {
            String::new()
        } else {
            format!(" (asked for: {})", only.join(", "))
        };
        return Err(IssuerError::NoAuthority(which));
    }
    let mut list = Vec::with_capacity(rows.len());
    for row in rows {
        let cert = pki_store::certificates::find(db, &row.certificate_serial)?;
        let (name_der, key_bits) = subject_and_key(&cert.der, &row.certificate_serial, &row.name)?;
        let next = indexes.len() as u16;
        let index = *indexes.entry(row.name.clone()).or_insert(next);
        let old = previous
            .and_then(|p| p.by_name(&row.name))
            .and_then(|i| i.responder.clone());
        let responder = match pick_responder(db, keys, &row.name, old.as_ref(), now) {
            Ok(r) => r,
            Err(e) if old.is_some() => {
                warn(format!("keeping the previous {} responder: {e}", row.name));
                old
            }
            Err(e) => return Err(e),
        };
        list.push(Issuer {
            name: row.name.clone(),
            index,
            name_hash: [
                HashAlg::Sha1.digest(&name_der),
                HashAlg::Sha256.digest(&name_der),
            ],
            key_hash: [
                HashAlg::Sha1.digest(&key_bits),
                HashAlg::Sha256.digest(&key_bits),
            ],
            responder,
        });
    }
    Ok(Issuers { list })
}

/// The newest responder of an authority whose certificate is valid now.
fn pick_responder(
    db: &mut Db,
    keys: &KeyStore,
    authority: &str,
    current: Option<&Arc<Responder>>,
    now: i64,
) -> Result<Option<Arc<Responder>>, IssuerError> {
    for row in responder_rows(db, authority)? {
        if row.not_after.and_utc().timestamp() <= now {
            continue;
        }
        if let Some(c) = current {
            if c.serial == row.certificate_serial {
                return Ok(Some(c.clone()));
            }
        }
        let cert = pki_store::certificates::find(db, &row.certificate_serial)?;
        let (not_before, _) = validity(&cert.der, &row.certificate_serial, authority)?;
        if not_before > now {
            continue;
        }
        let algorithm = pki_keys::authority::signature_algorithm_of(&row.key_algorithm)?;
        let signer = keys
            .open(&row.key_ref, algorithm)
            .map_err(pki_store::CaError::from)?;
        let responder = responder_from(
            authority,
            &row.certificate_serial,
            &row.key_ref,
            cert.der,
            signer,
        )?;
        return Ok(Some(Arc::new(responder)));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Fixture;

    #[test]
    fn loads_the_three_authorities_with_their_responders() {
        let f = Fixture::shared();
        assert_eq!(f.issuers.list.len(), 3);
        for i in &f.issuers.list {
            let r = i.responder.as_ref().expect("responder");
            assert_eq!(r.authority, i.name);
            assert!(r.not_after > r.not_before);
            for alg in HashAlg::ALL {
                assert_eq!(i.name_hash[alg.index()].len(), alg.digest_len());
                assert!(f
                    .issuers
                    .find(alg, &i.name_hash[alg.index()], &i.key_hash[alg.index()])
                    .is_some());
            }
        }
    }
}
