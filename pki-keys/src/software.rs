//! The software key backend: ECDSA keys held by aws-lc-rs in memory, stored
//! on disk as passphrase-encrypted PKCS#8 (PBES2: scrypt with the pinned
//! [`SCRYPT_LOG_N`], [`SCRYPT_R`], [`SCRYPT_P`] + AES-256-CBC, the `pkcs8`
//! crate). The parameters are written into each file, so files made with
//! other parameters still open. OpenSSL 3.0's default scrypt memory limit
//! (32 MiB) is below what these parameters need (128 MiB), so `openssl pkey`
//! cannot open them; the keys are meant for this CA's signers only.

use super::{KeyError, SignatureAlgorithm, Signer};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair};
use pkcs8::der::pem::LineEnding;
use pkcs8::der::{Decode, EncodePem};
use pkcs8::pkcs5;
use std::io::Write;
use std::path::Path;

/// scrypt cost of new key files: N = 2^17, r = 8, p = 1 (128 MiB, about
/// 0.3 s per derivation here). These are the values every key file written
/// before they were pinned carries (the `scrypt` 0.11 crate default, which
/// an earlier comment misnamed 2^15); pinned so that a dependency update
/// cannot change them silently. A key is decrypted once per process start,
/// so the cost buys brute-force resistance and costs no signing speed.
pub const SCRYPT_LOG_N: u8 = 17;
pub const SCRYPT_R: u32 = 8;
pub const SCRYPT_P: u32 = 1;
/// AES-256 key length derived by scrypt.
const SCRYPT_KEY_LEN: usize = 32;

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
        let mut salt = [0u8; 16];
        let mut iv = [0u8; 16];
        aws_lc_rs::rand::fill(&mut salt).map_err(|_| KeyError::Generate)?;
        aws_lc_rs::rand::fill(&mut iv).map_err(|_| KeyError::Generate)?;
        let scrypt = pkcs5::scrypt::Params::new(SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P, SCRYPT_KEY_LEN)
            .map_err(|_| KeyError::Generate)?;
        let params = pkcs5::pbes2::Parameters::scrypt_aes256cbc(scrypt, &salt, &iv)
            .map_err(|_| KeyError::Generate)?;
        let encrypted = info
            .encrypt_with_params(params, passphrase.as_bytes())
            .map_err(|_| KeyError::Generate)?;
        let encrypted = pkcs8::EncryptedPrivateKeyInfo::from_der(encrypted.as_bytes())
            .map_err(|_| KeyError::Generate)?;
        let pem = encrypted
            .to_pem(LineEnding::LF)
            .map_err(|_| KeyError::Generate)?;
        if let Some(dir) = path.parent() {
            // The key directory is its owner's alone (0700), whatever the umask.
            pki_store::files::create_private_dir(dir).map_err(KeyError::Private)?;
        }
        let mut file = pki_store::files::create_new_private(path).map_err(|source| {
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
        // A key file open to group or others is refused, naming it.
        if path.exists() {
            pki_store::files::check_private(path, "key file").map_err(KeyError::Private)?;
        }
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
        // A key directory of its own (the temporary directory itself is 0755).
        let path = dir.path().join("keys").join("k.pem");
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

    #[test]
    fn new_key_files_carry_the_pinned_scrypt_parameters() {
        let dir = tempfile::tempdir().unwrap();
        // A key directory of its own (the temporary directory itself is 0755).
        let path = dir.path().join("keys").join("k.pem");
        let (_, pkcs8) = SoftwareKey::generate(SignatureAlgorithm::EcdsaP384Sha384).unwrap();
        SoftwareKey::store_encrypted(&pkcs8, &path, "pass").unwrap();
        let pem = std::fs::read_to_string(&path).unwrap();
        let (_, der) = pkcs8::der::pem::decode_vec(pem.as_bytes()).unwrap();
        let info = pkcs8::EncryptedPrivateKeyInfo::from_der(&der).unwrap();
        let pkcs5::EncryptionScheme::Pbes2(pbes2) = info.encryption_algorithm else {
            panic!("not PBES2");
        };
        let pkcs5::pbes2::Kdf::Scrypt(scrypt) = pbes2.kdf else {
            panic!("not scrypt");
        };
        assert_eq!(scrypt.cost_parameter, 1u64 << SCRYPT_LOG_N);
        assert_eq!(scrypt.block_size as u32, SCRYPT_R);
        assert_eq!(scrypt.parallelization as u32, SCRYPT_P);
        assert!(matches!(
            pbes2.encryption,
            pkcs5::pbes2::EncryptionScheme::Aes256Cbc { .. }
        ));
    }

    /// A key file written before the parameters were pinned (pkcs8's
    /// default encryption) still opens.
    #[test]
    fn files_written_with_the_crate_default_still_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.pem");
        let (key, pkcs8) = SoftwareKey::generate(SignatureAlgorithm::EcdsaP256Sha256).unwrap();
        let old = pkcs8::PrivateKeyInfo::from_der(&pkcs8)
            .unwrap()
            .encrypt(rand_core::OsRng, b"pass")
            .unwrap();
        let old = pkcs8::EncryptedPrivateKeyInfo::from_der(old.as_bytes()).unwrap();
        std::fs::write(&path, old.to_pem(LineEnding::LF).unwrap()).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            let private = std::fs::Permissions::from_mode(0o600);
            std::fs::set_permissions(&path, private).unwrap();
        }
        let loaded =
            SoftwareKey::load_encrypted(&path, SignatureAlgorithm::EcdsaP256Sha256, "pass")
                .unwrap();
        assert_eq!(loaded.public_key_der(), key.public_key_der());
    }
}
