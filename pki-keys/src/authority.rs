//! A stored CA opened for signing: its row, certificate and subject read
//! from the store, and its key opened from a [`KeyStore`]. Only the
//! processes that sign with a CA key (the CA, and the CRL publisher until
//! it is split into a signer and a server) call [`UnopenedAuthority::open`].

use crate::{KeyStore, SignatureAlgorithm, Signer};
use chrono::{DateTime, Utc};
use der::Decode;
use pki_store::authorities::find;
use pki_store::error::{CaError, Result};
use pki_store::storage::models::AuthorityRow;
use pki_store::storage::Db;
use pki_x509::KeyAlgorithm;
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

/// An authority's stored row, certificate and subject: everything but its key.
pub struct UnopenedAuthority {
    row: AuthorityRow,
    subject: Name,
    certificate_der: Vec<u8>,
}

/// Loads an authority's row and certificate (no key yet).
pub fn load_row(db: &mut Db, name: &str) -> Result<UnopenedAuthority> {
    let row = find(db, name)?;
    let cert = pki_store::certificates::find(db, &row.certificate_serial)?;
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
    pub fn row(&self) -> &AuthorityRow {
        &self.row
    }

    /// Opens the key: the authority can sign. A key kept offline (the
    /// ceremony's root) is refused: see [`UnopenedAuthority::open_offline`].
    pub fn open(self, keys: &KeyStore) -> Result<Authority> {
        if pki_store::authorities::is_offline(&self.row) {
            return Err(CaError::OfflineKey(self.row.name.clone()));
        }
        let key_ref = self.row.key_ref.clone();
        self.open_ref(keys, &key_ref)
    }

    /// Opens a key kept offline, from the store of the ceremony that holds
    /// it (`pki-admin ceremony` only).
    pub fn open_offline(self, keys: &KeyStore) -> Result<Authority> {
        let key_ref = self
            .row
            .key_ref
            .strip_prefix(pki_store::authorities::OFFLINE_PREFIX)
            .unwrap_or(&self.row.key_ref)
            .to_string();
        self.open_ref(keys, &key_ref)
    }

    fn open_ref(self, keys: &KeyStore, key_ref: &str) -> Result<Authority> {
        let signer = keys.open(key_ref, signature_algorithm_of(&self.row.key_algorithm)?)?;
        Ok(Authority {
            not_after: self.row.not_after.and_utc(),
            row: self.row,
            subject: self.subject,
            certificate_der: self.certificate_der,
            signer,
        })
    }
}
