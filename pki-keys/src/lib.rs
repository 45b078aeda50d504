//! Keys and signing. Issuance, CRL and OCSP code sign through the
//! [`Signer`] trait only, so a PKCS#11 backend slots in beside the software
//! one without touching them. A key is named by a *key reference*
//! (`software:<file>`; later `pkcs11:<uri>`) that the database stores.
//!
//! This is the only crate that opens a private key. The OCSP responder
//! links it for its responder keys only ([`KeyStore`] of
//! `KeyPurpose::OcspResponder`), the CRL publisher for the CA keys that
//! sign CRLs (`KeyPurpose::Ca`), and the CA for both families.
//!
//! | module | job |
//! | --- | --- |
//! | (root) | [`Signer`], [`SignatureAlgorithm`], [`KeyStore`]: where keys live, open and generate |
//! | `software` | encrypted PKCS#8 key files, signing with aws-lc-rs |
//! | [`authority`] | a stored CA opened for signing: row, certificate, subject and key |
//! | [`audit`] | the audit key (`KeyPurpose::Audit` only) and the audit log's signed checkpoints: sign, and check with a trusted public key |

pub mod audit;
pub mod authority;
mod software;

pub use software::SoftwareKey;

use pki_store::config::{Config, KeyPurpose};
use spki::AlgorithmIdentifierOwned;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key file {path} already exists; refusing to overwrite a key")]
    Exists { path: String },
    #[error("cannot write key file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot decrypt key {path}: wrong passphrase or damaged file")]
    Decrypt { path: String },
    #[error("key {path} is not a usable {algorithm} key: {message}")]
    Invalid {
        path: String,
        algorithm: &'static str,
        message: String,
    },
    #[error("unsupported key reference {0:?} (expected software:<file>)")]
    UnsupportedReference(String),
    #[error("key generation failed")]
    Generate,
    #[error("signing failed")]
    Sign,
    #[error("{0}")]
    Passphrase(String),
}

/// `bytes` random octets from the system CSPRNG, hex-encoded (for
/// passphrases and file-name tags).
pub fn random_hex(bytes: usize) -> Result<String, KeyError> {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).map_err(|_| KeyError::Generate)?;
    Ok(hex::encode(buf))
}

/// Signature algorithms a CA key can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    EcdsaP256Sha256,
    EcdsaP384Sha384,
}

impl SignatureAlgorithm {
    pub fn oid(self) -> const_oid::ObjectIdentifier {
        match self {
            SignatureAlgorithm::EcdsaP256Sha256 => pki_x509::oids::ECDSA_SHA256,
            SignatureAlgorithm::EcdsaP384Sha384 => pki_x509::oids::ECDSA_SHA384,
        }
    }

    /// The AlgorithmIdentifier written in certificates (ECDSA: no parameters).
    pub fn identifier(self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: self.oid(),
            parameters: None,
        }
    }

    pub fn key_algorithm(self) -> pki_x509::KeyAlgorithm {
        match self {
            SignatureAlgorithm::EcdsaP256Sha256 => pki_x509::KeyAlgorithm::EcP256,
            SignatureAlgorithm::EcdsaP384Sha384 => pki_x509::KeyAlgorithm::EcP384,
        }
    }

    /// The signature algorithm that goes with a CA key type.
    pub fn for_key(key: pki_x509::KeyAlgorithm) -> Option<Self> {
        match key {
            pki_x509::KeyAlgorithm::EcP256 => Some(SignatureAlgorithm::EcdsaP256Sha256),
            pki_x509::KeyAlgorithm::EcP384 => Some(SignatureAlgorithm::EcdsaP384Sha384),
            _ => None,
        }
    }
}

/// Something that signs with a private key it never shows.
pub trait Signer: Send + Sync {
    fn algorithm(&self) -> SignatureAlgorithm;
    /// DER SubjectPublicKeyInfo of the key.
    fn public_key_der(&self) -> &[u8];
    /// A DER signature (ECDSA-Sig-Value) over `message`.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError>;
}

/// Creates keys of one family (CA or OCSP responder) and opens them by
/// reference, with that family's directory and passphrase.
pub struct KeyStore {
    purpose: KeyPurpose,
    dir: std::path::PathBuf,
    passphrase: Result<String, pki_store::config::ConfigError>,
}

impl KeyStore {
    pub fn new(config: &Config, purpose: KeyPurpose) -> Self {
        Self {
            purpose,
            dir: config.key_dir(purpose),
            passphrase: config.passphrase(purpose),
        }
    }

    pub fn purpose(&self) -> KeyPurpose {
        self.purpose
    }

    fn passphrase(&self) -> Result<&str, KeyError> {
        match &self.passphrase {
            Ok(p) => Ok(p),
            Err(e) => Err(KeyError::Passphrase(e.to_string())),
        }
    }

    /// Fails early when no passphrase is configured.
    pub fn require_passphrase(&self) -> Result<(), KeyError> {
        self.passphrase().map(|_| ())
    }

    /// Generates a new key, stores it encrypted, and returns its reference and signer.
    pub fn generate(
        &self,
        name: &str,
        algorithm: SignatureAlgorithm,
    ) -> Result<(String, Arc<dyn Signer>), KeyError> {
        let passphrase = self.passphrase()?;
        let file = format!("{name}.key.pem");
        let (key, pkcs8) = SoftwareKey::generate(algorithm)?;
        SoftwareKey::store_encrypted(&pkcs8, &self.dir.join(&file), passphrase)?;
        Ok((format!("software:{file}"), Arc::new(key)))
    }

    /// Opens a key by the reference the database holds.
    pub fn open(
        &self,
        key_ref: &str,
        algorithm: SignatureAlgorithm,
    ) -> Result<Arc<dyn Signer>, KeyError> {
        let file = key_ref
            .strip_prefix("software:")
            .filter(|f| !f.contains('/') && !f.contains(".."))
            .ok_or_else(|| KeyError::UnsupportedReference(key_ref.to_string()))?;
        let key = SoftwareKey::load_encrypted(&self.dir.join(file), algorithm, self.passphrase()?)?;
        Ok(Arc::new(key))
    }
}

impl From<KeyError> for pki_store::CaError {
    fn from(e: KeyError) -> Self {
        pki_store::CaError::Key(Box::new(e))
    }
}
