//! Minting: the one path from a profile and a subject to a signed, linted
//! certificate row. CA certificates, responder certificates and card
//! certificates all go through [`mint`]; nothing else calls the signer for
//! a certificate.

use crate::issuer::Issuer;
use crate::policy::{Profile, ProfileKind};
use crate::x509::builder::{self, CertificateSpec, SERIAL_LEN};
use crate::x509::lint::{self, Expectations};
use chrono::{DateTime, Utc};
use der::Encode;
use pki_store::config::Config;
use pki_store::domain::CertKind;
use pki_store::domain::{CertStatus, Usage};
use pki_store::error::{CaError, Result};
use pki_store::storage::db_time;
use pki_store::storage::models::CertificateRow;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::name::Name;

/// What to certify.
pub struct MintRequest<'a> {
    pub profile: &'a Profile,
    pub subject: Name,
    pub public_key: SubjectPublicKeyInfoOwned,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// The card rule's limit, for card certificates.
    pub latest_not_after: Option<DateTime<Utc>>,
    /// Card, holder and usage, for card certificates.
    pub card: Option<(&'a str, &'a str, Usage)>,
    pub status: CertStatus,
    /// A mobile-derived certificate: the card authentication certificate
    /// it follows.
    pub linked_serial: Option<&'a str>,
}

pub fn kind_name(kind: ProfileKind) -> CertKind {
    match kind {
        ProfileKind::RootCa => CertKind::RootCa,
        ProfileKind::IssuingCa => CertKind::IssuingCa,
        ProfileKind::OcspResponder => CertKind::OcspResponder,
        ProfileKind::EndEntity => CertKind::EndEntity,
    }
}

/// Builds, lints and signs; returns the row to store.
pub fn mint(
    config: &Config,
    req: MintRequest<'_>,
    issuer: &Issuer<'_>,
    issued_at: DateTime<Utc>,
) -> Result<CertificateRow> {
    let serial = builder::new_serial()?;
    // Card certificates spread over the CRL partitions by their (random)
    // serial; CA and responder certificates are listed by their issuer's
    // single list.
    let crl_partition = match req.profile.kind {
        ProfileKind::EndEntity => u32::from(serial[SERIAL_LEN - 1]) % config.crl.partitions,
        _ => 0,
    };
    let crl_url = pki_store::urls::crl_url(config, issuer.ca_name, crl_partition);
    let spec = CertificateSpec {
        profile: req.profile,
        serial,
        subject: req.subject,
        public_key: req.public_key,
        not_before: req.not_before,
        not_after: req.not_after,
        crl_partition,
    };
    let tbs = builder::build_tbs(&spec, issuer, config)?;
    let tbs_der = tbs.to_der().map_err(builder::BuildError::from)?;
    let findings = lint::lint(
        &tbs_der,
        &Expectations {
            profile: req.profile,
            issuer_name_der: issuer.subject_der,
            issuer_key_id: issuer.key_id,
            signature_algorithm: issuer.signer.algorithm(),
            issuer_not_after: issuer.not_after,
            latest_not_after: req.latest_not_after,
            country: &config.country,
            crl_url: req
                .profile
                .crl_distribution_point
                .then_some(crl_url.as_str()),
        },
    );
    if !findings.is_empty() {
        return Err(CaError::Lint(findings));
    }
    let der = builder::sign_tbs(&tbs_der, issuer.signer)?;
    let spki_der = spec
        .public_key
        .to_der()
        .map_err(builder::BuildError::from)?;
    let (card_number, holder_key, usage) = match req.card {
        Some((card, holder, usage)) => (
            Some(card.to_string()),
            Some(holder.to_string()),
            Some(usage),
        ),
        None => (None, None, None),
    };
    Ok(CertificateRow {
        serial: hex::encode(serial),
        issuer: issuer.ca_name.to_string(),
        profile: req.profile.name.clone(),
        kind: kind_name(req.profile.kind),
        usage,
        card_number,
        holder_key,
        subject: spec.subject.to_string(),
        not_before: db_time(req.not_before),
        not_after: db_time(req.not_after),
        status: req.status,
        public_key_sha256: pki_x509::sha256_hex(&spki_der),
        der,
        issued_at: db_time(issued_at),
        revoked_at: None,
        revocation_reason: None,
        invalidity_date: None,
        crl_partition: crl_partition as i32,
        suspension_cause: None,
        linked_serial: req.linked_serial.map(str::to_string),
    })
}
