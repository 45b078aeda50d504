//! Reading the current CRLs back, for `pki-admin crl show|fetch`: from the
//! files their publication records name, or over HTTP from a publisher or
//! a mirror; each one checked against its issuer's key before it is shown
//! or saved.

use crate::error::{CrlError, Result};
use crate::scan;
use crate::scope::Kind;
use crate::state::{self, Record};
use der::Decode;
use pki_store::Context;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// `GET url` over plain HTTP/1.1 (CRLs are published over HTTP, CPS 2.2);
/// the body of a 200 answer.
pub fn http_get(url: &str) -> Result<Vec<u8>> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| CrlError::Http(format!("{url}: only http:// URLs are supported")))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let err = |e: std::io::Error| CrlError::Http(format!("{url}: {e}"));
    let mut s = TcpStream::connect(&addr).map_err(err)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(err)?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: application/pkix-crl\r\nConnection: close\r\n\r\n"
    )
    .map_err(err)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(err)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| CrlError::Http(format!("{url}: malformed HTTP answer")))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw.split_off(split + 4);
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        let line = head.lines().next().unwrap_or("").to_string();
        return Err(CrlError::Http(format!("{url}: {line}")));
    }
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if chunked {
        return dechunk(&body).ok_or_else(|| CrlError::Http(format!("{url}: bad chunked body")));
    }
    Ok(body)
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

/// Splits a CertificateList into (TBS bytes, signature algorithm OID, signature).
fn parts(crl: &[u8]) -> Result<(&[u8], const_oid::ObjectIdentifier, &[u8])> {
    let bad = || CrlError::malformed("not a CertificateList");
    let (tag, h, l) = scan::tlv(crl).ok_or_else(bad)?;
    if tag != 0x30 {
        return Err(bad());
    }
    let body = crl.get(h..h + l).ok_or_else(bad)?;
    let (_, h1, l1) = scan::tlv(body).ok_or_else(bad)?;
    let tbs = &body[..h1 + l1];
    let rest = &body[h1 + l1..];
    let (_, h2, l2) = scan::tlv(rest).ok_or_else(bad)?;
    let alg = spki::AlgorithmIdentifierOwned::from_der(&rest[..h2 + l2])?;
    let rest = &rest[h2 + l2..];
    let (tag, h3, l3) = scan::tlv(rest).ok_or_else(bad)?;
    let bits = rest.get(h3..h3 + l3).ok_or_else(bad)?;
    if tag != 0x03 || bits.first() != Some(&0) {
        return Err(bad());
    }
    Ok((tbs, alg.oid, &bits[1..]))
}

/// Checks a CRL's signature with the public key of its issuer's certificate.
pub fn verify_signature(crl: &[u8], issuer_cert: &[u8], issuer: &str) -> Result<()> {
    use aws_lc_rs::signature;
    let cert = x509_cert::Certificate::from_der(issuer_cert)?;
    let spki = &cert.tbs_certificate.subject_public_key_info;
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<const_oid::ObjectIdentifier>().ok());
    let (tbs, alg, sig) = parts(crl)?;
    let p256 = const_oid::db::rfc5912::SECP_256_R_1;
    let p384 = const_oid::db::rfc5912::SECP_384_R_1;
    let verifier: &dyn signature::VerificationAlgorithm = match (alg, curve) {
        (a, Some(c)) if a == pki_x509::oids::ECDSA_SHA384 && c == p384 => {
            &signature::ECDSA_P384_SHA384_ASN1
        }
        (a, Some(c)) if a == pki_x509::oids::ECDSA_SHA256 && c == p256 => {
            &signature::ECDSA_P256_SHA256_ASN1
        }
        (a, Some(c)) if a == pki_x509::oids::ECDSA_SHA384 && c == p256 => {
            &signature::ECDSA_P256_SHA384_ASN1
        }
        (a, Some(c)) if a == pki_x509::oids::ECDSA_SHA256 && c == p384 => {
            &signature::ECDSA_P384_SHA256_ASN1
        }
        _ => {
            return Err(CrlError::malformed(format!(
                "unsupported signature algorithm {alg}"
            )))
        }
    };
    signature::UnparsedPublicKey::new(verifier, spki.subject_public_key.raw_bytes())
        .verify(tbs, sig)
        .map_err(|_| CrlError::BadSignature {
            issuer: issuer.to_string(),
        })
}

/// The current CRL of every published scope, optionally of one issuer.
pub fn current(ca: &mut Context, issuer: Option<&str>) -> Result<Vec<Record>> {
    let mut records = state::current(&mut ca.db)?;
    if let Some(issuer) = issuer {
        pki_store::authorities::find(&mut ca.db, issuer)?;
        records.retain(|r| r.issuer == issuer);
    }
    Ok(records)
}

/// Where to read a published CRL from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The file its publication record names.
    Recorded,
    /// `<dir>/<file name>` (a mirror of the publication directory).
    Dir(std::path::PathBuf),
    /// `<base URL>/<path of its URL>`, e.g. `http://127.0.0.1:8080` (a
    /// publisher or mirror); a base with a path replaces the CRL base path.
    Http(String),
}

/// Reads a published CRL and checks its signature (and, from the recorded
/// file, that it is the recorded one).
pub fn read(ca: &mut Context, record: &Record, source: &Source) -> Result<Vec<u8>> {
    let file = record
        .url
        .rsplit('/')
        .next()
        .unwrap_or(&record.url)
        .to_string();
    let bytes = match source {
        Source::Recorded => std::fs::read(&record.location)
            .map_err(|e| CrlError::io("cannot read", &record.location, e))?,
        Source::Dir(dir) => {
            let p = dir.join(&file);
            std::fs::read(&p).map_err(|e| CrlError::io("cannot read", p, e))?
        }
        Source::Http(base) => {
            let base = base.trim_end_matches('/');
            let has_path = base
                .strip_prefix("http://")
                .is_some_and(|r| r.contains('/'));
            let url = if has_path {
                format!("{base}/{file}")
            } else {
                format!("{base}{}", crate::scope::url_path(&record.url))
            };
            http_get(&url)?
        }
    };
    let row = pki_store::authorities::find(&mut ca.db, &record.issuer)?;
    let issuer_cert = pki_store::certificates::find(&mut ca.db, &row.certificate_serial)?.der;
    verify_signature(&bytes, &issuer_cert, &record.issuer)?;
    if matches!(source, Source::Recorded) {
        let sha =
            hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes).as_ref());
        if sha != record.sha256 {
            let s = scan::scan(&bytes[..], None)?;
            return Err(CrlError::Malformed {
                what: Some(record.location.clone()),
                message: format!(
                    "holds CRL number {:?}, not the recorded number {} (replaced by a newer publication?)",
                    s.number, record.number
                ),
            });
        }
    }
    Ok(bytes)
}

/// A CRL as PEM (`X509 CRL`).
pub fn pem(der: &[u8]) -> String {
    der::pem::encode_string("X509 CRL", der::pem::LineEnding::LF, der)
        .expect("PEM encoding of bytes cannot fail")
}

/// Is a record a delta?
pub fn is_delta(r: &Record) -> bool {
    r.kind() == Kind::Delta
}
