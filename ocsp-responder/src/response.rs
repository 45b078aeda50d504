//! Response building and signing (RFC 6960 §4.2): a `BasicOCSPResponse`
//! signed by a delegated responder, ResponderID by key hash, the responder
//! certificate in `certs`, `nextUpdate` always present; the nonce echoed
//! (RFC 9654) and the extended revoked definition (§4.4.8) when asked for.
//!
//! Memory layout: a [`Signed`] response keeps only what its signature
//! covers plus the signature (`tbsResponseData`, `signatureAlgorithm`,
//! `signature`: about 300 bytes for one SingleResponse). The responder
//! certificate (about 800 bytes) lives once per responder and is spliced in
//! by [`Signed::to_der`] when a response is sent: the `certs` field is not
//! signed, so this costs one copy of about 1.1 KB per answer instead of
//! 800 bytes of memory per pre-signed response.

use crate::issuers::Responder;
use crate::request::{HashAlg, Serial};
use const_oid::db::rfc6960::{ID_PKIX_OCSP_EXTENDED_REVOKE, ID_PKIX_OCSP_NONCE};
use der::asn1::{BitString, GeneralizedTime, Null, OctetString};
use der::Encode;
use pki_store::domain::Reason;
use pki_store::published::{published_status, PublishedStatus, StatusFacts};
use pki_x509::der_header::{header_len, push_header};
use spki::AlgorithmIdentifierOwned;
use std::sync::Arc;
use std::time::Duration;
use x509_cert::ext::pkix::CrlReason;
use x509_cert::ext::Extension;
use x509_ocsp::{
    CertId, CertStatus, OcspGeneralizedTime, OcspResponseStatus, ResponderId, ResponseData,
    RevokedInfo, SingleResponse, Version,
};

/// The status of a certificate, as the responder answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Good,
    /// `at` in Unix seconds; `reason` the CRLReason (`None`: no reason
    /// code).
    Revoked {
        at: i64,
        reason: Option<Reason>,
    },
    /// Never issued by this CA (RFC 6960 §2.2): answered `revoked`, time
    /// 1970-01-01, reason certificateHold, with the extended revoked
    /// definition extension.
    NotIssued,
}

impl Status {
    /// The answer for a stored certificate: the published-status rule of
    /// the core ([`published_status`]), in the responder's units.
    pub fn of(facts: StatusFacts) -> Status {
        match published_status(facts) {
            PublishedStatus::Good => Status::Good,
            PublishedStatus::Revoked { at, reason, .. } => Status::Revoked {
                at: at.and_utc().timestamp(),
                reason,
            },
        }
    }

    fn cert_status(self) -> Result<CertStatus, BuildError> {
        Ok(match self {
            Status::Good => CertStatus::Good(Null),
            Status::Revoked { at, reason } => CertStatus::Revoked(RevokedInfo {
                revocation_time: time(at)?,
                revocation_reason: reason.map(crl_reason),
            }),
            Status::NotIssued => CertStatus::Revoked(RevokedInfo {
                revocation_time: time(0)?,
                revocation_reason: Some(CrlReason::CertificateHold),
            }),
        })
    }
}

/// The wire form of a reason (the code table is `Reason::code`'s; this
/// only names x509-ocsp's type for it).
fn crl_reason(reason: Reason) -> CrlReason {
    match reason {
        Reason::KeyCompromise => CrlReason::KeyCompromise,
        Reason::CaCompromise => CrlReason::CaCompromise,
        Reason::AffiliationChanged => CrlReason::AffiliationChanged,
        Reason::Superseded => CrlReason::Superseded,
        Reason::CessationOfOperation => CrlReason::CessationOfOperation,
        Reason::CertificateHold => CrlReason::CertificateHold,
        Reason::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
    }
}

fn time(unix: i64) -> Result<OcspGeneralizedTime, BuildError> {
    let secs = u64::try_from(unix).map_err(|_| BuildError::Time(unix))?;
    GeneralizedTime::from_unix_duration(Duration::from_secs(secs))
        .map(OcspGeneralizedTime)
        .map_err(|_| BuildError::Time(unix))
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("time {0} cannot be encoded")]
    Time(i64),
    #[error("DER encoding failed: {0}")]
    Der(#[from] der::Error),
    #[error("signing failed: {0}")]
    Sign(#[from] pki_keys::KeyError),
}

/// The CertID of a certificate as this responder writes it in pre-signed
/// responses (hash algorithm with NULL parameters, the common encoding).
pub fn canonical_cert_id(
    alg: HashAlg,
    name_hash: &[u8],
    key_hash: &[u8],
    serial: &Serial,
) -> Result<CertId, BuildError> {
    Ok(CertId {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: alg.oid(),
            parameters: Some(Null.into()),
        },
        issuer_name_hash: OctetString::new(name_hash)?,
        issuer_key_hash: OctetString::new(key_hash)?,
        serial_number: serial.to_serial_number(),
    })
}

/// One answer inside a response.
#[derive(Debug, Clone)]
pub struct SingleAnswer {
    pub cert_id: CertId,
    pub status: Status,
}

/// The times of a response (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    pub produced_at: i64,
    /// When the status was last known correct: the last synchronisation
    /// with the database.
    pub this_update: i64,
    pub next_update: i64,
}

/// A signed response without its `certs` field (see the module docs).
pub struct Signed {
    pub this_update: i64,
    pub next_update: i64,
    pub responder: Arc<Responder>,
    /// `tbsResponseData || signatureAlgorithm || signature`, DER.
    core: Box<[u8]>,
}

impl std::fmt::Debug for Signed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signed")
            .field("this_update", &self.this_update)
            .field("next_update", &self.next_update)
            .field("responder", &self.responder.serial)
            .field("bytes", &self.core.len())
            .finish()
    }
}

impl Signed {
    /// A strong HTTP entity tag: the last 12 octets of the signature
    /// (unique per signature: ECDSA signatures are randomised).
    pub fn etag(&self) -> String {
        let n = self.core.len();
        let mut s = String::with_capacity(26);
        s.push('"');
        s.push_str(&hex::encode(&self.core[n.saturating_sub(12)..]));
        s.push('"');
        s
    }

    /// Bytes held in memory for this response (without the shared responder).
    pub fn memory(&self) -> usize {
        std::mem::size_of::<Self>() + self.core.len()
    }

    /// The complete DER `OCSPResponse`.
    pub fn to_der(&self) -> Vec<u8> {
        let certs = &self.responder.certs_field;
        let basic_len = self.core.len() + certs.len();
        let octet_len = header_len(basic_len) + basic_len;
        let bytes_len = OID_BASIC.len() + header_len(octet_len) + octet_len;
        let explicit_len = header_len(bytes_len) + bytes_len;
        let outer_len = 3 + header_len(explicit_len) + explicit_len;
        let mut out = Vec::with_capacity(header_len(outer_len) + outer_len);
        push_header(&mut out, 0x30, outer_len);
        out.extend_from_slice(&[0x0a, 0x01, 0x00]);
        push_header(&mut out, 0xa0, explicit_len);
        push_header(&mut out, 0x30, bytes_len);
        out.extend_from_slice(&OID_BASIC);
        push_header(&mut out, 0x04, octet_len);
        push_header(&mut out, 0x30, basic_len);
        out.extend_from_slice(&self.core);
        out.extend_from_slice(certs);
        out
    }
}

/// DER of the OID id-pkix-ocsp-basic (1.3.6.1.5.5.7.48.1.1).
const OID_BASIC: [u8; 11] = [
    0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01,
];

/// Builds and signs a response.
pub fn sign(
    responder: &Arc<Responder>,
    answers: Vec<SingleAnswer>,
    times: Times,
    nonce: Option<&[u8]>,
) -> Result<Signed, BuildError> {
    let this_update = time(times.this_update)?;
    let next_update = time(times.next_update)?;
    let extended_revoke = answers.iter().any(|a| a.status == Status::NotIssued);
    let mut responses = Vec::with_capacity(answers.len());
    for a in answers {
        responses.push(SingleResponse {
            cert_id: a.cert_id,
            cert_status: a.status.cert_status()?,
            this_update,
            next_update: Some(next_update),
            single_extensions: None,
        });
    }
    let mut extensions = Vec::new();
    if let Some(n) = nonce {
        extensions.push(Extension {
            extn_id: ID_PKIX_OCSP_NONCE,
            critical: false,
            extn_value: OctetString::new(n)?,
        });
    }
    if extended_revoke {
        extensions.push(Extension {
            extn_id: ID_PKIX_OCSP_EXTENDED_REVOKE,
            critical: false,
            extn_value: OctetString::new(Null.to_der()?)?,
        });
    }
    let tbs = ResponseData {
        version: Version::V1,
        responder_id: ResponderId::ByKey(OctetString::new(responder.key_hash.as_slice())?),
        produced_at: time(times.produced_at)?,
        responses,
        response_extensions: (!extensions.is_empty()).then_some(extensions),
    };
    let tbs_der = tbs.to_der()?;
    let signature = responder.signer.sign(&tbs_der)?;
    let sig = BitString::from_bytes(&signature)?.to_der()?;
    let alg = &responder.signature_algorithm_der;
    let mut core = Vec::with_capacity(tbs_der.len() + alg.len() + sig.len());
    core.extend_from_slice(&tbs_der);
    core.extend_from_slice(alg);
    core.extend_from_slice(&sig);
    Ok(Signed {
        this_update: times.this_update,
        next_update: times.next_update,
        responder: responder.clone(),
        core: core.into_boxed_slice(),
    })
}

/// An unsigned error response (`OCSPResponse` with a status and no body).
pub fn error_response(status: OcspResponseStatus) -> &'static [u8] {
    match status {
        OcspResponseStatus::Successful => &[0x30, 0x03, 0x0a, 0x01, 0x00],
        OcspResponseStatus::MalformedRequest => &[0x30, 0x03, 0x0a, 0x01, 0x01],
        OcspResponseStatus::InternalError => &[0x30, 0x03, 0x0a, 0x01, 0x02],
        OcspResponseStatus::TryLater => &[0x30, 0x03, 0x0a, 0x01, 0x03],
        OcspResponseStatus::SigRequired => &[0x30, 0x03, 0x0a, 0x01, 0x05],
        OcspResponseStatus::Unauthorized => &[0x30, 0x03, 0x0a, 0x01, 0x06],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::test_responder;
    use const_oid::db::rfc6960::ID_PKIX_OCSP_BASIC;
    use der::Decode;
    use x509_ocsp::{BasicOcspResponse, OcspResponse};

    #[test]
    fn error_responses_decode() {
        for s in [
            OcspResponseStatus::MalformedRequest,
            OcspResponseStatus::InternalError,
            OcspResponseStatus::TryLater,
            OcspResponseStatus::Unauthorized,
        ] {
            let r = OcspResponse::from_der(error_response(s)).unwrap();
            assert_eq!(r.response_status, s);
            assert!(r.response_bytes.is_none());
        }
    }

    #[test]
    fn signed_responses_assemble_to_valid_der() {
        let responder = test_responder();
        let serial = Serial::from_hex("4a0b").unwrap();
        let id = canonical_cert_id(HashAlg::Sha1, &[1; 20], &[2; 20], &serial).unwrap();
        let signed = sign(
            &responder,
            vec![
                SingleAnswer {
                    cert_id: id.clone(),
                    status: Status::Revoked {
                        at: 1_700_000_000,
                        reason: Some(Reason::KeyCompromise),
                    },
                },
                SingleAnswer {
                    cert_id: id,
                    status: Status::NotIssued,
                },
            ],
            Times {
                produced_at: 1_700_000_100,
                this_update: 1_700_000_050,
                next_update: 1_700_086_450,
            },
            Some(&[0x04, 0x02, 0xaa, 0xbb]),
        )
        .unwrap();
        let der = signed.to_der();
        let r = OcspResponse::from_der(&der).unwrap();
        assert_eq!(r.response_status, OcspResponseStatus::Successful);
        let bytes = r.response_bytes.unwrap();
        assert_eq!(bytes.response_type, ID_PKIX_OCSP_BASIC);
        let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap();
        assert_eq!(basic.certs.as_ref().unwrap().len(), 1);
        assert_eq!(basic.tbs_response_data.responses.len(), 2);
        assert_eq!(
            basic.nonce().unwrap().0.as_bytes(),
            &[0xaa, 0xbb],
            "nonce echoed"
        );
        let exts = basic.tbs_response_data.response_extensions.unwrap();
        assert!(exts
            .iter()
            .any(|e| e.extn_id == ID_PKIX_OCSP_EXTENDED_REVOKE && !e.critical));
        assert_eq!(signed.etag().len(), 26);
    }

    #[test]
    fn der_headers_match_der_crate() {
        for len in [0usize, 5, 127, 128, 255, 256, 65535, 65536, 1 << 24] {
            let mut out = Vec::new();
            push_header(&mut out, 0x04, len);
            assert_eq!(out.len(), header_len(len));
            let expected = der::Header::new(der::Tag::OctetString, len)
                .unwrap()
                .to_der()
                .unwrap();
            assert_eq!(out, expected, "length {len}");
        }
    }
}
