//! Asking the responder over HTTP, as a relying party does: OCSP requests
//! for the certificates of one issuing CA, and the check that every
//! certificate of a wave is answered revoked with the expected reason.

use crate::http::Http;
use crate::stats::round3;
use anyhow::{bail, ensure, Context};
use ca_core::Ca;
use der::{Decode, Encode};
use ocsp_responder::request::{HashAlg, Serial};
use serde_json::{json, Value};
use std::time::Instant;
use x509_cert::ext::pkix::CrlReason;

/// OCSP requests for the certificates of one issuing CA, over one
/// kept-alive HTTP connection.
pub struct OcspProbe {
    http: Http,
    name_hash: Vec<u8>,
    key_hash: Vec<u8>,
}

impl OcspProbe {
    pub fn new(ca: &mut Ca, addr: &str, issuer: &str) -> anyhow::Result<OcspProbe> {
        let authority = pki_store::authorities::find(&mut ca.db, issuer)?;
        let ca_cert = pki_store::certificates::find(&mut ca.db, &authority.certificate_serial)?;
        let parsed = x509_cert::Certificate::from_der(&ca_cert.der)?;
        let name_der = parsed.tbs_certificate.subject.to_der()?;
        let key_bits = parsed
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes();
        Ok(OcspProbe {
            http: Http::new(addr),
            name_hash: HashAlg::Sha1.digest(&name_der),
            key_hash: HashAlg::Sha1.digest(key_bits),
        })
    }

    /// The certificate's status: `Ok(None)` good, `Ok(Some(reason))`
    /// revoked (or on hold), `Err` anything else.
    pub fn revoked(&mut self, serial: &str) -> anyhow::Result<Option<Option<CrlReason>>> {
        let s = Serial::from_hex(serial).with_context(|| format!("serial {serial}"))?;
        let cert_id = ocsp_responder::response::canonical_cert_id(
            HashAlg::Sha1,
            &self.name_hash,
            &self.key_hash,
            &s,
        )?;
        let request = x509_ocsp::OcspRequest {
            tbs_request: x509_ocsp::TbsRequest {
                version: Default::default(),
                requestor_name: None,
                request_list: vec![x509_ocsp::Request {
                    req_cert: cert_id,
                    single_request_extensions: None,
                }],
                request_extensions: None,
            },
            optional_signature: None,
        }
        .to_der()?;
        let (status, body) = self.http.call("POST", "/eid/ocsp", &request)?;
        ensure!(status == 200, "HTTP {status}");
        let response = x509_ocsp::OcspResponse::from_der(&body)?;
        let bytes = response
            .response_bytes
            .with_context(|| format!("status {:?}", response.response_status))?;
        let basic = x509_ocsp::BasicOcspResponse::from_der(bytes.response.as_bytes())?;
        let single = basic
            .tbs_response_data
            .responses
            .first()
            .context("no SingleResponse")?;
        match &single.cert_status {
            x509_ocsp::CertStatus::Good(_) => Ok(None),
            x509_ocsp::CertStatus::Revoked(info) => Ok(Some(info.revocation_reason)),
            other => bail!("{other:?}"),
        }
    }
}

/// Asks the responder about every certificate; returns (asked, answered
/// revoked with the expected reason, first wrong answers).
pub fn check(
    ca: &mut Ca,
    addr: &str,
    issuer: &str,
    serials: &[String],
    reason: CrlReason,
) -> anyhow::Result<Value> {
    let mut probe = OcspProbe::new(ca, addr, issuer)?;
    let t = Instant::now();
    let (mut ok, mut wrong) = (0usize, Vec::new());
    for serial in serials {
        match probe.revoked(serial) {
            Ok(Some(r)) if r == Some(reason) => ok += 1,
            answer => {
                if wrong.len() < 5 {
                    wrong.push(format!("{serial}: {answer:?}"));
                }
            }
        }
    }
    Ok(
        json!({"asked": serials.len(), "revoked_with_reason": ok, "wrong": wrong,
              "seconds": round3(t.elapsed().as_secs_f64())}),
    )
}
