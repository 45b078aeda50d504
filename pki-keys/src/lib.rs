//! Keys and signing. Issuance, CRL and OCSP code sign through the
//! [`Signer`] trait only, so a PKCS#11 backend slots in beside the software
//! one without touching them. A key is named by a *key reference*
//! (`software:<file>` or an RFC 7512 `pkcs11:` URI) that the database stores.
//! `[keys] backend` chooses where new keys are made; a key store opens only
//! references of its own backend.
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
//! | [`pkcs11`] | keys generated and kept on a PKCS#11 token (one per family), signing through a session pool |
//! | [`authority`] | a stored CA opened for signing: row, certificate, subject and key |
//! | [`audit`] | the audit key (`KeyPurpose::Audit` only) and the audit log's signed checkpoints: sign, and check with a trusted public key |

pub mod audit;
pub mod authority;
pub mod pkcs11;
mod software;

pub use software::SoftwareKey;

use pki_store::config::{Config, KeyPurpose};
use pki_store::domain::KeyBackend;
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
    #[error(transparent)]
    Private(pki_store::files::FileError),
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
    #[error("unsupported key reference {0:?} (expected software:<file> or pkcs11:token=..;object=..;id=..)")]
    UnsupportedReference(String),
    #[error("key reference {reference:?} is for the {backend} backend, but keys.backend is {configured}")]
    OtherBackend {
        reference: String,
        backend: &'static str,
        configured: &'static str,
    },
    #[error("cannot load PKCS#11 module {path}: {message}")]
    Module { path: String, message: String },
    #[error("no initialized PKCS#11 token labelled {label:?} in {module}")]
    TokenNotFound { module: String, label: String },
    #[error("cannot log in to token {token:?}: {message}")]
    Login { token: String, message: String },
    #[error("key reference {reference:?} names another token than this key family's ({token:?}); refusing a key of another family")]
    WrongToken { reference: String, token: String },
    #[error("no key pair {reference:?} on the token")]
    KeyNotFound { reference: String },
    #[error("PKCS#11 {op} failed: {message}")]
    Pkcs11 { op: &'static str, message: String },
    #[error("key generation failed")]
    Generate,
    #[error("signing failed")]
    Sign,
    #[error("{0}")]
    Passphrase(String),
    #[error("{0}")]
    Pin(String),
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

/// Creates keys of one family (CA, OCSP responder or audit) and opens them
/// by reference: with that family's directory and passphrase (`software`),
/// or on that family's token with its PIN (`pkcs11`).
pub struct KeyStore {
    purpose: KeyPurpose,
    backend: Backend,
}

enum Backend {
    Software {
        dir: std::path::PathBuf,
        passphrase: Result<String, pki_store::config::ConfigError>,
    },
    Pkcs11 {
        module: std::path::PathBuf,
        label: String,
        pin: Result<String, pki_store::config::ConfigError>,
        /// Opened and logged in on first use.
        token: std::sync::OnceLock<Arc<pkcs11::Token>>,
    },
}

impl KeyStore {
    pub fn new(config: &Config, purpose: KeyPurpose) -> Self {
        let backend = match config.keys.backend {
            KeyBackend::Software => Backend::Software {
                dir: config.key_dir(purpose),
                passphrase: config.passphrase(purpose),
            },
            KeyBackend::Pkcs11 => Backend::Pkcs11 {
                module: config.keys.pkcs11.module.clone().unwrap_or_default(),
                label: config.pkcs11_token(purpose).label.to_string(),
                pin: config.pin(purpose),
                token: std::sync::OnceLock::new(),
            },
        };
        Self { purpose, backend }
    }

    pub fn purpose(&self) -> KeyPurpose {
        self.purpose
    }

    fn backend(&self) -> KeyBackend {
        match self.backend {
            Backend::Software { .. } => KeyBackend::Software,
            Backend::Pkcs11 { .. } => KeyBackend::Pkcs11,
        }
    }

    fn other_backend(&self, reference: &str, backend: KeyBackend) -> KeyError {
        KeyError::OtherBackend {
            reference: reference.to_string(),
            backend: backend.as_str(),
            configured: self.backend().as_str(),
        }
    }

    fn passphrase(&self) -> Result<&str, KeyError> {
        match &self.backend {
            Backend::Software {
                passphrase: Ok(p), ..
            } => Ok(p),
            Backend::Software {
                passphrase: Err(e), ..
            } => Err(KeyError::Passphrase(e.to_string())),
            Backend::Pkcs11 { .. } => Err(self.other_backend("software:", KeyBackend::Software)),
        }
    }

    /// This family's token, found and logged in with the family's PIN (once
    /// per process). The call a key ceremony makes before generating a key
    /// on a family's token: `KeyStore::new(config, purpose).token()?.generate(..)`.
    pub fn token(&self) -> Result<Arc<pkcs11::Token>, KeyError> {
        let Backend::Pkcs11 {
            module,
            label,
            pin,
            token,
        } = &self.backend
        else {
            return Err(self.other_backend("pkcs11:", KeyBackend::Pkcs11));
        };
        if let Some(t) = token.get() {
            return Ok(t.clone());
        }
        let pin = pin.as_ref().map_err(|e| KeyError::Pin(e.to_string()))?;
        let opened = pkcs11::Token::open(module, label, pin)?;
        Ok(token.get_or_init(|| opened).clone())
    }

    /// Fails early when the keys cannot be unlocked: no passphrase
    /// configured (`software`), or the token cannot be found or logged in
    /// to with its PIN (`pkcs11`).
    pub fn require_passphrase(&self) -> Result<(), KeyError> {
        match self.backend {
            Backend::Software { .. } => self.passphrase().map(|_| ()),
            Backend::Pkcs11 { .. } => self.token().map(|_| ()),
        }
    }

    /// Generates a new key where this family's keys live (an encrypted file,
    /// or on the family's token) and returns its reference and signer.
    /// `name` becomes the file name or the token object's label.
    pub fn generate(
        &self,
        name: &str,
        algorithm: SignatureAlgorithm,
    ) -> Result<(String, Arc<dyn Signer>), KeyError> {
        match &self.backend {
            Backend::Software { dir, .. } => {
                let passphrase = self.passphrase()?;
                let file = format!("{name}.key.pem");
                let (key, pkcs8) = SoftwareKey::generate(algorithm)?;
                SoftwareKey::store_encrypted(&pkcs8, &dir.join(&file), passphrase)?;
                Ok((format!("software:{file}"), Arc::new(key)))
            }
            Backend::Pkcs11 { .. } => {
                let (uri, key) = self.token()?.generate(name, algorithm)?;
                Ok((uri, Arc::new(key)))
            }
        }
    }

    /// Opens a key by the reference the database holds; a reference of the
    /// other backend, or (pkcs11) of another family's token, is refused.
    pub fn open(
        &self,
        key_ref: &str,
        algorithm: SignatureAlgorithm,
    ) -> Result<Arc<dyn Signer>, KeyError> {
        match &self.backend {
            Backend::Software { dir, .. } => {
                if key_ref.starts_with("pkcs11:") {
                    return Err(self.other_backend(key_ref, KeyBackend::Pkcs11));
                }
                let file = key_ref
                    .strip_prefix("software:")
                    .filter(|f| !f.contains('/') && !f.contains(".."))
                    .ok_or_else(|| KeyError::UnsupportedReference(key_ref.to_string()))?;
                let key =
                    SoftwareKey::load_encrypted(&dir.join(file), algorithm, self.passphrase()?)?;
                Ok(Arc::new(key))
            }
            Backend::Pkcs11 { .. } => {
                if key_ref.starts_with("software:") {
                    return Err(self.other_backend(key_ref, KeyBackend::Software));
                }
                let uri = pkcs11::KeyUri::parse(key_ref)?;
                Ok(Arc::new(self.token()?.find(&uri, algorithm)?))
            }
        }
    }
}

impl From<KeyError> for pki_store::CaError {
    fn from(e: KeyError) -> Self {
        pki_store::CaError::Key(Box::new(e))
    }
}
