//! PKCS#10 requests from the card personalisation bureau: decoding (PEM or
//! DER), proof of possession (the request's signature under its own key,
//! with whatever hash the chip used: a P-384 key may sign with SHA-256), and
//! the key's type and size. Subject and extensions asked for in the request
//! are ignored: the registry and the profile decide what is certified.

use crate::{oids, KeyAlgorithm};
use aws_lc_rs::signature::{self, VerificationAlgorithm};
use const_oid::ObjectIdentifier as Oid;
use der::asn1::UintRef;
use der::{Decode, Encode, Sequence};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::request::CertReq;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CsrError {
    #[error("not a PKCS#10 request: {0}")]
    Malformed(String),
    #[error(
        "the request's signature does not verify under its own public key (no proof of possession)"
    )]
    BadSignature,
    #[error("request signature algorithm {0} is not supported (ECDSA or RSA PKCS#1 v1.5 with SHA-256/384/512)")]
    UnsupportedSignatureAlgorithm(Oid),
    #[error("key too small: RSA {0} bits (at least 2048 required)")]
    RsaTooSmall(usize),
    #[error("RSA key of {0} bits is not a size this PKI accepts (2048, 3072, 4096)")]
    RsaOddSize(usize),
    #[error("elliptic curve {0} is not accepted (P-256, P-384)")]
    UnsupportedCurve(String),
    #[error("public key algorithm {0} is not accepted (EC or RSA)")]
    UnsupportedKeyType(Oid),
    #[error("request signature algorithm {signature} does not match its {key} key")]
    AlgorithmMismatch { signature: Oid, key: &'static str },
}

/// A request that passed proof of possession.
#[derive(Debug, Clone)]
pub struct CheckedCsr {
    pub public_key: SubjectPublicKeyInfoOwned,
    pub key_algorithm: KeyAlgorithm,
    /// The subject the bureau wrote (for the record only).
    pub requested_subject: String,
}

#[derive(Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

/// Decodes PEM ("CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST") or DER.
pub fn decode(input: &[u8]) -> Result<CertReq, CsrError> {
    let trimmed = input.trim_ascii_start();
    let der = if trimmed.starts_with(b"-----BEGIN") {
        let (label, der) = der::pem::decode_vec(trimmed)
            .map_err(|e| CsrError::Malformed(format!("bad PEM: {e}")))?;
        if label != "CERTIFICATE REQUEST" && label != "NEW CERTIFICATE REQUEST" {
            return Err(CsrError::Malformed(format!(
                "PEM label is {label:?}, expected CERTIFICATE REQUEST"
            )));
        }
        der
    } else {
        input.to_vec()
    };
    CertReq::from_der(&der).map_err(|e| CsrError::Malformed(e.to_string()))
}

fn key_algorithm(spki: &SubjectPublicKeyInfoOwned) -> Result<KeyAlgorithm, CsrError> {
    match spki.algorithm.oid {
        oids::EC_PUBLIC_KEY => {
            let curve: Oid = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<Oid>().ok())
                .ok_or_else(|| CsrError::UnsupportedCurve("(no named curve)".into()))?;
            match curve {
                oids::SECP256R1 => Ok(KeyAlgorithm::EcP256),
                oids::SECP384R1 => Ok(KeyAlgorithm::EcP384),
                oids::SECP521R1 => Ok(KeyAlgorithm::EcP521),
                other => {
                    let name = const_oid::db::DB.by_oid(&other).map(str::to_string);
                    Err(CsrError::UnsupportedCurve(match name {
                        Some(n) => format!("{n} ({other})"),
                        None => other.to_string(),
                    }))
                }
            }
        }
        oids::RSA_ENCRYPTION => {
            let bits = rsa_bits(spki.subject_public_key.raw_bytes())?;
            if bits < 2048 {
                return Err(CsrError::RsaTooSmall(bits));
            }
            KeyAlgorithm::rsa_with_bits(bits).ok_or(CsrError::RsaOddSize(bits))
        }
        other => Err(CsrError::UnsupportedKeyType(other)),
    }
}

fn rsa_bits(pkcs1: &[u8]) -> Result<usize, CsrError> {
    let key = RsaPublicKey::from_der(pkcs1)
        .map_err(|e| CsrError::Malformed(format!("RSA public key: {e}")))?;
    let m = key.modulus.as_bytes();
    let _ = key.public_exponent;
    match m.first() {
        None => Err(CsrError::Malformed("RSA modulus is empty".into())),
        Some(first) => Ok(m.len() * 8 - first.leading_zeros() as usize),
    }
}

fn verification_algorithm(
    signature: Oid,
    key: KeyAlgorithm,
) -> Result<&'static dyn VerificationAlgorithm, CsrError> {
    use KeyAlgorithm::*;
    let alg: &'static dyn VerificationAlgorithm = match (signature, key) {
        (oids::ECDSA_SHA256, EcP256) => &signature::ECDSA_P256_SHA256_ASN1,
        (oids::ECDSA_SHA384, EcP256) => &signature::ECDSA_P256_SHA384_ASN1,
        (oids::ECDSA_SHA512, EcP256) => &signature::ECDSA_P256_SHA512_ASN1,
        (oids::ECDSA_SHA256, EcP384) => &signature::ECDSA_P384_SHA256_ASN1,
        (oids::ECDSA_SHA384, EcP384) => &signature::ECDSA_P384_SHA384_ASN1,
        (oids::ECDSA_SHA512, EcP384) => &signature::ECDSA_P384_SHA512_ASN1,
        (oids::ECDSA_SHA256, EcP521) => &signature::ECDSA_P521_SHA256_ASN1,
        (oids::ECDSA_SHA384, EcP521) => &signature::ECDSA_P521_SHA384_ASN1,
        (oids::ECDSA_SHA512, EcP521) => &signature::ECDSA_P521_SHA512_ASN1,
        (oids::RSA_SHA256, Rsa2048 | Rsa3072 | Rsa4096) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (oids::RSA_SHA384, Rsa2048 | Rsa3072 | Rsa4096) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (oids::RSA_SHA512, Rsa2048 | Rsa3072 | Rsa4096) => &signature::RSA_PKCS1_2048_8192_SHA512,
        (
            oids::ECDSA_SHA256
            | oids::ECDSA_SHA384
            | oids::ECDSA_SHA512
            | oids::RSA_SHA256
            | oids::RSA_SHA384
            | oids::RSA_SHA512,
            _,
        ) => {
            return Err(CsrError::AlgorithmMismatch {
                signature,
                key: key.name(),
            })
        }
        _ => return Err(CsrError::UnsupportedSignatureAlgorithm(signature)),
    };
    Ok(alg)
}

/// Classifies a DER SubjectPublicKeyInfo (also used by the linter).
pub fn classify_key(spki_der: &[u8]) -> Result<KeyAlgorithm, CsrError> {
    let spki = SubjectPublicKeyInfoOwned::from_der(spki_der)
        .map_err(|e| CsrError::Malformed(e.to_string()))?;
    key_algorithm(&spki)
}

/// Decodes a request and checks its proof of possession and key type.
pub fn check(input: &[u8]) -> Result<CheckedCsr, CsrError> {
    let req = decode(input)?;
    let key_algorithm = key_algorithm(&req.info.public_key)?;
    let alg = verification_algorithm(req.algorithm.oid, key_algorithm)?;
    let message = req
        .info
        .to_der()
        .map_err(|e| CsrError::Malformed(format!("cannot re-encode request info: {e}")))?;
    let sig = req
        .signature
        .as_bytes()
        .ok_or_else(|| CsrError::Malformed("signature BIT STRING has unused bits".into()))?;
    let key = req
        .info
        .public_key
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| CsrError::Malformed("public key BIT STRING has unused bits".into()))?;
    signature::UnparsedPublicKey::new(alg, key)
        .verify(&message, sig)
        .map_err(|_| CsrError::BadSignature)?;
    Ok(CheckedCsr {
        public_key: req.info.public_key,
        key_algorithm,
        requested_subject: req.info.subject.to_string(),
    })
}
