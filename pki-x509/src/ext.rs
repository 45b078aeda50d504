//! The certificate extensions of this PKI, each built from its x509-cert
//! type (or by hand where x509-cert 0.2 gets criticality wrong) and encoded
//! into an [`Extension`] with the criticality the profiles require.

use crate::{oids, KeyUsageBit};
use const_oid::ObjectIdentifier as Oid;
use der::asn1::{Any, Ia5String, Null, OctetString};
use der::Encode;
use sha1::{Digest, Sha1};
use x509_cert::ext::pkix::certpolicy::{PolicyInformation, PolicyQualifierInfo};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints,
    CertificatePolicies, CrlDistributionPoints, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;

fn extension<T: Encode>(oid: Oid, critical: bool, value: &T) -> Result<Extension, der::Error> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

/// RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING.
pub fn key_identifier(subject_public_key: &[u8]) -> Vec<u8> {
    Sha1::digest(subject_public_key).to_vec()
}

pub fn key_usage_flags(bits: &[KeyUsageBit]) -> KeyUsage {
    let mut flags = der::flagset::FlagSet::<KeyUsages>::default();
    for b in bits {
        flags |= match b {
            KeyUsageBit::DigitalSignature => KeyUsages::DigitalSignature,
            KeyUsageBit::NonRepudiation => KeyUsages::NonRepudiation,
            KeyUsageBit::KeyEncipherment => KeyUsages::KeyEncipherment,
            KeyUsageBit::KeyAgreement => KeyUsages::KeyAgreement,
            KeyUsageBit::KeyCertSign => KeyUsages::KeyCertSign,
            KeyUsageBit::CRLSign => KeyUsages::CRLSign,
        };
    }
    KeyUsage(flags)
}

/// keyUsage, always critical.
pub fn key_usage(bits: &[KeyUsageBit]) -> Result<Extension, der::Error> {
    extension(oids::EXT_KEY_USAGE, true, &key_usage_flags(bits))
}

/// basicConstraints for a CA, critical.
pub fn basic_constraints_ca(path_length: u8) -> Result<Extension, der::Error> {
    extension(
        oids::EXT_BASIC_CONSTRAINTS,
        true,
        &BasicConstraints {
            ca: true,
            path_len_constraint: Some(path_length),
        },
    )
}

/// extKeyUsage, non-critical (x509-cert 0.2 would mark it critical).
pub fn extended_key_usage(purposes: &[Oid]) -> Result<Extension, der::Error> {
    extension(oids::EXT_EXT_KEY_USAGE, false, &purposes.to_vec())
}

pub fn subject_key_id(id: &[u8]) -> Result<Extension, der::Error> {
    extension(
        oids::EXT_SUBJECT_KEY_ID,
        false,
        &SubjectKeyIdentifier(OctetString::new(id)?),
    )
}

pub fn authority_key_id(id: &[u8]) -> Result<Extension, der::Error> {
    extension(
        oids::EXT_AUTHORITY_KEY_ID,
        false,
        &AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(id)?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        },
    )
}

fn uri(url: &str) -> Result<GeneralName, der::Error> {
    Ok(GeneralName::UniformResourceIdentifier(Ia5String::new(url)?))
}

pub fn crl_distribution_point(url: &str) -> Result<Extension, der::Error> {
    extension(
        oids::EXT_CRL_DP,
        false,
        &CrlDistributionPoints(vec![DistributionPoint {
            distribution_point: Some(DistributionPointName::FullName(vec![uri(url)?])),
            reasons: None,
            crl_issuer: None,
        }]),
    )
}

/// authorityInfoAccess: the OCSP responder (unless None) and the issuer's certificate.
pub fn authority_info_access(
    ocsp: Option<&str>,
    ca_issuers: &str,
) -> Result<Extension, der::Error> {
    let mut access = Vec::new();
    if let Some(ocsp) = ocsp {
        access.push(AccessDescription {
            access_method: oids::AD_OCSP,
            access_location: uri(ocsp)?,
        });
    }
    access.push(AccessDescription {
        access_method: oids::AD_CA_ISSUERS,
        access_location: uri(ca_issuers)?,
    });
    extension(oids::EXT_AIA, false, &AuthorityInfoAccessSyntax(access))
}

/// certificatePolicies; the policies under our own arc carry the CPS URI.
pub fn certificate_policies(
    policies: &[Oid],
    own_arc: &str,
    cps: &str,
) -> Result<Extension, der::Error> {
    let mut infos = Vec::new();
    for p in policies {
        let ours = p.to_string().starts_with(&format!("{own_arc}."));
        let qualifiers = if ours {
            Some(vec![PolicyQualifierInfo {
                policy_qualifier_id: oids::QT_CPS,
                qualifier: Some(Any::encode_from(&Ia5String::new(cps)?)?),
            }])
        } else {
            None
        };
        infos.push(PolicyInformation {
            policy_identifier: *p,
            policy_qualifiers: qualifiers,
        });
    }
    extension(oids::EXT_CERT_POLICIES, false, &CertificatePolicies(infos))
}

/// id-pkix-ocsp-nocheck: a NULL value.
pub fn ocsp_no_check() -> Result<Extension, der::Error> {
    extension(oids::OCSP_NOCHECK, false, &Null)
}

/// qcStatements from an already encoded value.
pub fn qc_statements(encoded: Vec<u8>) -> Result<Extension, der::Error> {
    Ok(Extension {
        extn_id: oids::QC_STATEMENTS,
        critical: false,
        extn_value: OctetString::new(encoded)?,
    })
}
