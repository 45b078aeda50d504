//! The CAs of the hierarchy as stored: their certificates, subjects, key
//! identifiers and keys. Loading an authority opens its signer.

use crate::ca::Ca;
use crate::error::{CaError, Result};
use crate::keys::{KeyStore, SignatureAlgorithm, Signer};
use crate::policy::KeyAlgorithm;
use crate::storage::models::{AuthorityRow, OcspResponderRow};
use crate::storage::schema::{authorities, ocsp_responders};
use crate::storage::{Db, StorageError};
use crate::with_conn;
use chrono::{DateTime, Utc};
use der::Decode;
use diesel::prelude::*;
use std::sync::Arc;
use x509_cert::name::Name;

/// A CA ready to sign.
pub struct Authority {
    pub row: AuthorityRow,
    pub subject: Name,
    pub certificate_der: Vec<u8>,
    pub signer: Arc<dyn Signer>,
    pub not_after: DateTime<Utc>,
}

pub fn key_algorithm_name(alg: SignatureAlgorithm) -> &'static str {
    alg.key_algorithm().name()
}

pub fn signature_algorithm_of(name: &str) -> Result<SignatureAlgorithm> {
    let key = match name {
        "ec-p256" => KeyAlgorithm::EcP256,
        "ec-p384" => KeyAlgorithm::EcP384,
        other => {
            return Err(CaError::Field {
                field: "key_algorithm".into(),
                message: format!("{other:?} is not a CA key algorithm"),
            })
        }
    };
    Ok(SignatureAlgorithm::for_key(key).expect("EC keys have a signature algorithm"))
}

/// All authorities, the root first.
pub fn list(db: &mut Db) -> Result<Vec<AuthorityRow>> {
    let mut rows: Vec<AuthorityRow> =
        with_conn!(db, c => authorities::table.select(AuthorityRow::as_select()).load(c))
            .map_err(StorageError::from)?;
    rows.sort_by_key(|r| (r.parent.is_some(), r.name.clone()));
    Ok(rows)
}

pub fn find(db: &mut Db, name: &str) -> Result<AuthorityRow> {
    with_conn!(db, c => authorities::table.find(name).select(AuthorityRow::as_select()).first(c).optional())
        .map_err(StorageError::from)?
        .ok_or(CaError::NotInitialised)
}

/// The current (latest) OCSP responder certificate of an authority.
pub fn current_responder(db: &mut Db, authority: &str) -> Result<Option<OcspResponderRow>> {
    Ok(with_conn!(db, c => ocsp_responders::table
        .filter(ocsp_responders::authority.eq(authority))
        .order(ocsp_responders::not_after.desc())
        .select(OcspResponderRow::as_select())
        .first(c)
        .optional())
    .map_err(StorageError::from)?)
}

/// Days left (fractional) before the current OCSP responder certificate
/// of each authority expires, at `now` (negative: expired), by authority.
pub fn responder_days_left(
    db: &mut Db,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<(String, f64)>> {
    let mut out = Vec::new();
    for a in list(db)? {
        if let Some(r) = current_responder(db, &a.name)? {
            let left = r.not_after.and_utc() - now;
            out.push((a.name, left.num_seconds() as f64 / 86_400.0));
        }
    }
    Ok(out)
}

/// The one rule for rotating a responder certificate ahead of its end:
/// does the current one of `authority` end within `within` of `now`
/// (or is there none)?
pub fn responder_needs_rotation(
    db: &mut Db,
    authority: &str,
    now: chrono::DateTime<chrono::Utc>,
    within: chrono::Duration,
) -> Result<bool> {
    Ok(current_responder(db, authority)?.is_none_or(|r| r.not_after.and_utc() <= now + within))
}

impl Authority {
    /// This authority as the issuer of a certificate.
    pub fn issuer(&self) -> crate::mint::Issuer<'_> {
        crate::mint::Issuer {
            subject: &self.subject,
            subject_der: &self.row.subject_der,
            key_id: &self.row.key_id,
            ca_name: &self.row.name,
            signer: self.signer.as_ref(),
            not_after: Some(self.not_after),
        }
    }
}

/// An authority's stored row, certificate and subject: everything but its key.
pub struct UnopenedAuthority {
    row: AuthorityRow,
    subject: Name,
    certificate_der: Vec<u8>,
}

/// Loads an authority's row and certificate (no key yet).
pub fn load_row(ca: &mut Ca, name: &str) -> Result<UnopenedAuthority> {
    let row = find(&mut ca.db, name)?;
    let cert = crate::certificates::find(&mut ca.db, &row.certificate_serial)?;
    let subject = Name::from_der(&row.subject_der).map_err(|e| CaError::Field {
        field: "subject_der".into(),
        message: e.to_string(),
    })?;
    Ok(UnopenedAuthority {
        row,
        subject,
        certificate_der: cert.der,
    })
}

impl UnopenedAuthority {
    /// Opens the key: the authority can sign.
    pub fn open(self, keys: &KeyStore) -> Result<Authority> {
        let signer = keys.open(
            &self.row.key_ref,
            signature_algorithm_of(&self.row.key_algorithm)?,
        )?;
        Ok(Authority {
            not_after: self.row.not_after.and_utc(),
            row: self.row,
            subject: self.subject,
            certificate_der: self.certificate_der,
            signer,
        })
    }
}
