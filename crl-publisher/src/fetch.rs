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
use std::time::Duration;

/// Bounds of an HTTP fetch: a publisher or mirror that does not answer, or
/// answers without end, costs at most this much.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// To open the TCP connection.
    pub connect: Duration,
    /// The whole exchange, connection included.
    pub total: Duration,
    /// The largest body accepted.
    pub max_bytes: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            connect: Duration::from_secs(10),
            total: Duration::from_secs(120),
            max_bytes: 512 << 20,
        }
    }
}

/// `GET url` over plain HTTP (CRLs are published over HTTP, CPS 2.2), with
/// ureq: the body of a 200 answer, within `limits`.
pub fn http_get(url: &str, limits: &HttpLimits) -> Result<Vec<u8>> {
    if !url.starts_with("http://") {
        return Err(CrlError::Http(format!(
            "{url}: only http:// URLs are supported (CRLs are published over plain HTTP)"
        )));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(limits.connect))
        .timeout_global(Some(limits.total))
        .http_status_as_error(false)
        .build()
        .into();
    let describe = |e: ureq::Error| match e {
        ureq::Error::Timeout(what) => CrlError::Http(format!(
            "{url}: no complete answer within {:?} ({what})",
            limits.total
        )),
        ureq::Error::BodyExceedsLimit(n) => {
            CrlError::Http(format!("{url}: the answer is larger than {n} bytes"))
        }
        other => CrlError::Http(format!("{url}: {other}")),
    };
    let mut resp = agent
        .get(url)
        .header("Accept", "application/pkix-crl")
        .call()
        .map_err(describe)?;
    if resp.status() != 200 {
        return Err(CrlError::Http(format!("{url}: HTTP {}", resp.status())));
    }
    resp.body_mut()
        .with_config()
        .limit(limits.max_bytes)
        .read_to_vec()
        .map_err(describe)
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
            http_get(&url, &HttpLimits::default())?
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::time::Instant;

    fn limits(total_ms: u64, max_bytes: u64) -> HttpLimits {
        HttpLimits {
            connect: Duration::from_secs(2),
            total: Duration::from_millis(total_ms),
            max_bytes,
        }
    }

    /// A server on 127.0.0.1 that reads the request, then does `then`.
    fn serve_once(then: impl FnOnce(std::net::TcpStream) + Send + 'static) -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                then(s);
            }
        });
        format!("http://{addr}/x.crl")
    }

    #[test]
    fn a_server_that_never_answers_is_a_timeout_within_the_limit() {
        let url = serve_once(|s| {
            std::thread::sleep(Duration::from_secs(10));
            drop(s);
        });
        let t = Instant::now();
        let err = http_get(&url, &limits(800, 1 << 20))
            .unwrap_err()
            .to_string();
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "took {:?}",
            t.elapsed()
        );
        assert!(err.contains("no complete answer within"), "{err}");
    }

    #[test]
    fn a_body_over_the_limit_is_refused() {
        let url = serve_once(|mut s| {
            let body = vec![0x30u8; 10_000];
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(&body);
        });
        let err = http_get(&url, &limits(5_000, 1_000))
            .unwrap_err()
            .to_string();
        assert!(err.contains("larger than 1000 bytes"), "{err}");
    }

    #[test]
    fn a_good_answer_is_its_body_and_an_error_status_is_an_error() {
        let url = serve_once(|mut s| {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
        });
        assert_eq!(http_get(&url, &limits(5_000, 100)).unwrap(), b"abc");
        let url = serve_once(|mut s| {
            let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        });
        let err = http_get(&url, &limits(5_000, 100)).unwrap_err().to_string();
        assert!(err.contains("HTTP 404"), "{err}");
        let err = http_get("https://example.com/x.crl", &limits(5_000, 100)).unwrap_err();
        assert!(err.to_string().contains("only http://"), "{err}");
    }
}
