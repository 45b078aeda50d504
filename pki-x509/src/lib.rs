//! `pki-x509`: X.509 encoding the way this PKI needs it, on the RustCrypto
//! `der` / `x509-cert` 0.2 types, with no key and no database: OIDs, RFC 5280
//! times, subject names, extensions, QC statements, PKCS#10 decoding and
//! checking. Pieces are written by hand only where x509-cert 0.2 gets a
//! rule wrong (time encoding, EKU criticality) or has no type (QC
//! statements). Certificate building and the pre-issuance linter follow a
//! profile, so they live with the policy in `ca-core`.
//!
//! ## Module map
//!
//! | module | job |
//! | --- | --- |
//! | [`oids`] | every object identifier the PKI writes or reads |
//! | [`vocabulary`] | key algorithms, KeyUsage bits, QC statements: the words profiles are written in |
//! | [`time`] | RFC 5280 UTCTime/GeneralizedTime and chrono |
//! | [`name`] | subject and issuer names, registry keys as serialNumber |
//! | [`ext`] | extensions: key usage, EKU, policies, CRL distribution points, AIA |
//! | [`qc`] | QC statements (ETSI EN 319 412-5) |
//! | [`der_header`] | DER tags and lengths for the two hand assemblers (OCSP answers, CRL entries) |
//! | [`csr`] | PKCS#10: decode, verify the signature, read the key |

pub mod csr;
pub mod der_header;
pub mod ext;
pub mod name;
pub mod oids;
pub mod qc;
pub mod time;
pub mod vocabulary;

pub use vocabulary::{KeyAlgorithm, KeyUsageBit, QcStatement};

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
