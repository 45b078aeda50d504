//! The software key backend: ECDSA keys held by aws-lc-rs in memory, stored
//! on disk as passphrase-encrypted PKCS#8 (PBES2: scrypt N=2^15, r=8, p=1 +
//! AES-256-CBC, the `pkcs8` crate). OpenSSL 3.0's default scrypt memory limit
//! (32 MiB) is just below what these parameters need, so `openssl pkey`
//! cannot open them; the keys are meant for this CA's signers only.

use super::{KeyError, SignatureAlgorithm, Signer};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair};
use pkcs8::der::pem::LineEnding;
use pkcs8::der::{Decode, EncodePem};
use std::io::Write;
use std::path::Path;

/// An ECDSA private key in process memory.
pub struct SoftwareKey {
    pair: EcdsaKeyPair,
    algorithm: SignatureAlgorithm,
    spki: Vec<u8>,
    rng: SystemRandom,
}

fn signing_algorithm(alg: SignatureAlgorithm) -> &'static signature::EcdsaSigningAlgorithm {
    match alg {
        SignatureAlgorithm::EcdsaP256Sha256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        SignatureAlgorithm::EcdsaP384Sha384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
    }
}

impl SoftwareKey {
    /// A fresh key and its unencrypted PKCS#8 encoding.
    pub fn generate(algorithm: SignatureAlgorithm) -> Result<(Self, Vec<u8>), KeyError> {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(signing_algorithm(algorithm), &rng)
            .map_err(|_| KeyError::Generate)?;
        let key = Self::from_pkcs8(doc.as_ref(), algorithm, "<new key>")?;
        Ok((key, doc.as_ref().to_vec()))
    }

    /// A key from unencrypted PKCS#8 DER.
    pub fn from_pkcs8(
        der: &[u8],
        algorithm: SignatureAlgorithm,
        path: &str,
    ) -> Result<Self, KeyError> {
        let pair = EcdsaKeyPair::from_pkcs8(signing_algorithm(algorithm), der).map_err(|e| {
            KeyError::Invalid {
                path: path.to_string(),
                algorithm: algorithm.key_algorithm().name(),
                message: e.to_string(),
            }
        })?;
        let spki = pair
            .public_key()
            .as_der()
            .map_err(|_| KeyError::Invalid {
                path: path.to_string(),
                algorithm: algorithm.key_algorithm().name(),
                message: "cannot encode the public key".into(),
            })?
            .as_ref()
            .to_vec();
        Ok(Self {
            pair,
            algorithm,
            spki,
            rng: SystemRandom::new(),
        })
    }

    /// Encrypts `pkcs8` under `passphrase` and writes it to a new file
    /// (mode 0600); an existing file is never overwritten.
    pub fn store_encrypted(pkcs8: &[u8], path: &Path, passphrase: &str) -> Result<(), KeyError> {
        let shown = path.display().to_string();
        let info = pkcs8::PrivateKeyInfo::from_der(pkcs8).map_err(|e| KeyError::Invalid {
            path: shown.clone(),
            algorithm: "PKCS#8",
            message: e.to_string(),
        })?;
        let encrypted = info
            .encrypt(rand_core::OsRng, passphrase.as_bytes())
            .map_err(|_| KeyError::Generate)?;
        let encrypted = pkcs8::EncryptedPrivateKeyInfo::from_der(encrypted.as_bytes())
            .map_err(|_| KeyError::Generate)?;
        let pem = encrypted
            .to_pem(LineEnding::LF)
            .map_err(|_| KeyError::Generate)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| KeyError::Write {
                path: shown.clone(),
                source,
            })?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                KeyError::Exists {
                    path: shown.clone(),
                }
            } else {
                KeyError::Write {
                    path: shown.clone(),
                    source,
                }
            }
        })?;
        file.write_all(pem.as_bytes())
            .and_then(|_| file.sync_all())
            .map_err(|source| KeyError::Write {
                path: shown,
                source,
            })
    }

    /// Reads and decrypts a key file.
    pub fn load_encrypted(
        path: &Path,
        algorithm: SignatureAlgorithm,
        passphrase: &str,
    ) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        let pem = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: shown.clone(),
            source,
        })?;
        let (label, der) =
            pkcs8::der::pem::decode_vec(pem.as_bytes()).map_err(|e| KeyError::Invalid {
                path: shown.clone(),
                algorithm: "PEM",
                message: e.to_string(),
            })?;
        if label != "ENCRYPTED PRIVATE KEY" {
            return Err(KeyError::Invalid {
                path: shown,
                algorithm: "encrypted PKCS#8",
                message: format!("PEM label is {label:?}; CA keys are only kept encrypted"),
            });
        }
        let encrypted =
            pkcs8::EncryptedPrivateKeyInfo::from_der(&der).map_err(|e| KeyError::Invalid {
                path: shown.clone(),
                algorithm: "encrypted PKCS#8",
                message: e.to_string(),
            })?;
        let plain = encrypted
            .decrypt(passphrase.as_bytes())
            .map_err(|_| KeyError::Decrypt {
                path: shown.clone(),
            })?;
        Self::from_pkcs8(plain.as_bytes(), algorithm, &shown)
    }
}

impl Signer for SoftwareKey {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    fn public_key_der(&self) -> &[u8] {
        &self.spki
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.pair
            .sign(&self.rng, message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| KeyError::Sign)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_key_round_trips_and_refuses_wrong_passphrase_and_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let (key, pkcs8) = SoftwareKey::generate(SignatureAlgorithm::EcdsaP256Sha256).unwrap();
        SoftwareKey::store_encrypted(&pkcs8, &path, "correct horse").unwrap();
        let loaded = SoftwareKey::load_encrypted(
            &path,
            SignatureAlgorithm::EcdsaP256Sha256,
            "correct horse",
        )
        .unwrap();
        assert_eq!(loaded.public_key_der(), key.public_key_der());
        assert!(matches!(
            SoftwareKey::load_encrypted(&path, SignatureAlgorithm::EcdsaP256Sha256, "wrong"),
            Err(KeyError::Decrypt { .. })
        ));
        assert!(matches!(
            SoftwareKey::store_encrypted(&pkcs8, &path, "x"),
            Err(KeyError::Exists { .. })
        ));
        let sig = loaded.sign(b"hello").unwrap();
        let point = &key.pair.public_key().as_ref().to_vec();
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, point)
            .verify(b"hello", &sig)
            .unwrap();
    }
}
