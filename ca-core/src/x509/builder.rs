//! Builds a TBSCertificate from a profile, and signs it. The builder only
//! writes what the profile says; the linter (`lint`) checks the encoded
//! result against the same profile before the signature is made.

use crate::issuer::Issuer;
use crate::policy::{Profile, ProfileKind};
use chrono::{DateTime, Utc};
use der::asn1::BitString;
use der::{Encode, Header, Length, Tag};
use pki_keys::{KeyError, Signer};
use pki_store::config::Config;
use pki_store::urls::{ca_issuers_url, crl_url};
use pki_x509::{ext, qc, time};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::certificate::{TbsCertificate, Version};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;

/// Serial numbers are this many octets from a CSPRNG (126 random bits).
pub const SERIAL_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("encoding error: {0}")]
    Der(#[from] der::Error),
    #[error(transparent)]
    Time(#[from] time::TimeError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("random number generator failed")]
    Random,
}

/// A fresh serial number: 16 octets, positive (top bit clear) and with a
/// non-zero first octet so that its encoding always keeps 16 octets.
pub fn new_serial() -> Result<[u8; SERIAL_LEN], BuildError> {
    let mut serial = [0u8; SERIAL_LEN];
    aws_lc_rs::rand::fill(&mut serial).map_err(|_| BuildError::Random)?;
    serial[0] = (serial[0] & 0x7f) | 0x40;
    Ok(serial)
}

/// What one certificate says about its subject.
pub struct CertificateSpec<'a> {
    pub profile: &'a Profile,
    pub serial: [u8; SERIAL_LEN],
    pub subject: Name,
    pub public_key: SubjectPublicKeyInfoOwned,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// The CRL partition the certificate is listed in (0 for CA and responder certificates).
    pub crl_partition: u32,
}

/// Assembles the TBSCertificate.
pub fn build_tbs(
    spec: &CertificateSpec<'_>,
    issuer: &Issuer<'_>,
    config: &Config,
) -> Result<TbsCertificate, BuildError> {
    let profile = spec.profile;
    let subject_key = spec.public_key.subject_public_key.raw_bytes();
    let mut extensions = Vec::with_capacity(10);
    if let Some(path_length) = profile.path_length {
        extensions.push(ext::basic_constraints_ca(path_length)?);
    }
    extensions.push(ext::key_usage(&profile.key_usage)?);
    if !profile.extended_key_usage.is_empty() {
        extensions.push(ext::extended_key_usage(&profile.extended_key_usage)?);
    }
    extensions.push(ext::subject_key_id(&ext::key_identifier(subject_key))?);
    extensions.push(ext::authority_key_id(issuer.key_id)?);
    if profile.crl_distribution_point {
        extensions.push(ext::crl_distribution_point(&crl_url(
            config,
            issuer.ca_name,
            spec.crl_partition,
        ))?);
    }
    if profile.authority_info_access {
        let ocsp =
            (profile.kind != ProfileKind::OcspResponder).then_some(config.urls.ocsp.as_str());
        extensions.push(ext::authority_info_access(
            ocsp,
            &ca_issuers_url(config, issuer.ca_name),
        )?);
    }
    if !profile.policies.is_empty() {
        extensions.push(ext::certificate_policies(
            &profile.policies,
            &config.policy_oid_arc,
            &config.urls.cps,
        )?);
    }
    if !profile.qc_statements.is_empty() {
        let value = qc::encode(&profile.qc_statements, &config.country, &config.urls.pds)?;
        extensions.push(ext::qc_statements(value)?);
    }
    if profile.ocsp_no_check {
        extensions.push(ext::ocsp_no_check()?);
    }
    Ok(TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&spec.serial)?,
        signature: issuer.signer.algorithm().identifier(),
        issuer: issuer.subject.clone(),
        validity: Validity {
            not_before: time::to_x509(spec.not_before)?,
            not_after: time::to_x509(spec.not_after)?,
        },
        subject: spec.subject.clone(),
        subject_public_key_info: spec.public_key.clone(),
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    })
}

/// Signs an encoded TBSCertificate and returns the DER certificate. The
/// Certificate SEQUENCE is assembled from the already encoded TBS rather
/// than re-encoding it (x509-cert would encode the TBS a second time).
pub fn sign_tbs(tbs_der: &[u8], signer: &dyn Signer) -> Result<Vec<u8>, BuildError> {
    let signature = signer.sign(tbs_der)?;
    let algorithm = signer.algorithm().identifier().to_der()?;
    let signature = BitString::from_bytes(&signature)?.to_der()?;
    let body_len = tbs_der.len() + algorithm.len() + signature.len();
    let header = Header::new(Tag::Sequence, Length::try_from(body_len)?)?;
    let mut out = Vec::with_capacity(body_len + 8);
    header.encode_to_vec(&mut out)?;
    out.extend_from_slice(tbs_der);
    out.extend_from_slice(&algorithm);
    out.extend_from_slice(&signature);
    Ok(out)
}

impl From<BuildError> for pki_store::CaError {
    fn from(e: BuildError) -> Self {
        pki_store::CaError::Build(Box::new(e))
    }
}
