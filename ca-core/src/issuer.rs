//! The issuing side of a certificate, named once: an opened authority
//! ([`Issuer::of`]) or the root signing its own certificate. The builder
//! writes its name, key identifier and URLs into the certificate, the
//! linter checks them, and its signer signs.

use chrono::{DateTime, Utc};
use pki_keys::authority::Authority;
use pki_keys::Signer;
use x509_cert::name::Name;

/// The issuing side of a certificate.
pub struct Issuer<'a> {
    pub subject: &'a Name,
    pub subject_der: &'a [u8],
    pub key_id: &'a [u8],
    /// The issuer's name in this PKI (`identity-card-ca`): forms its URLs.
    pub ca_name: &'a str,
    pub signer: &'a dyn Signer,
    /// None for the self-signed root.
    pub not_after: Option<DateTime<Utc>>,
}

impl<'a> Issuer<'a> {
    /// An opened authority as the issuer of a certificate.
    pub fn of(authority: &'a Authority) -> Self {
        Issuer {
            subject: &authority.subject,
            subject_der: &authority.row.subject_der,
            key_id: &authority.row.key_id,
            ca_name: &authority.row.name,
            signer: authority.signer.as_ref(),
            not_after: Some(authority.not_after),
        }
    }
}
