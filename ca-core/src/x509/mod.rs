//! X.509 encoding the way this PKI needs it, on the RustCrypto `der` /
//! `x509-cert` 0.2 types: RFC 5280 times, subject names, extensions and QC
//! statements, PKCS#10 checking, certificate building and the pre-issuance
//! linter. Pieces are written by hand only where x509-cert 0.2 gets a rule
//! wrong (time encoding, EKU criticality) or has no type (QC statements).

pub mod builder;
pub mod csr;
pub mod ext;
pub mod lint;
pub mod name;
pub mod qc;
pub mod time;

/// PEM-encodes a DER certificate.
pub fn cert_pem(der: &[u8]) -> String {
    der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der)
        .expect("PEM encoding of a byte string cannot fail")
}

/// SHA-256 of bytes, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
