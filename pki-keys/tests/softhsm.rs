//! The PKCS#11 backend against a real SoftHSM2 token: keys generated on the
//! token with the right attributes, found again by reference, signatures
//! verified by aws-lc-rs, signing from many threads through the session
//! pool, and every refusal (another family's token, another backend, a
//! missing or wrong PIN, a reference to nothing) as a typed error without
//! the PIN in it.
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` once, at `C_Initialize`, and a process
//! initialises a module once: every test here shares one token directory,
//! made by [`hsm`] before the first PKCS#11 call.

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use der::Decode;
use pki_keys::{KeyError, KeyStore, SignatureAlgorithm, Signer};
use pki_store::config::{Config, KeyPurpose};
use pki_store::domain::KeyBackend;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const CA_PIN: &str = "unit-ca-pin-1111";
const OCSP_PIN: &str = "unit-ocsp-pin-2222";
const WRONG_PIN_TOKEN_PIN: &str = "unit-other-pin-3333";

/// The shared token directory: tokens `unit-ca`, `unit-ocsp`, `unit-other`.
fn hsm() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("pki-keys-softhsm-")
            .tempdir()
            .expect("temp dir")
            .keep();
        std::fs::create_dir_all(dir.join("tokens")).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.join("tokens").display()
            ),
        )
        .unwrap();
        for (label, pin) in [
            ("unit-ca", CA_PIN),
            ("unit-ocsp", OCSP_PIN),
            ("unit-other", WRONG_PIN_TOKEN_PIN),
        ] {
            let out = Command::new("softhsm2-util")
                .env("SOFTHSM2_CONF", &conf)
                .args(["--init-token", "--free", "--label", label])
                .args(["--so-pin", "unit-so-pin", "--pin", pin])
                .output()
                .expect("softhsm2-util (run scripts/setup-test-tools.sh)");
            assert!(out.status.success(), "{out:?}");
        }
        write_private(&dir.join("ocsp.pin"), &format!("{OCSP_PIN}\n"));
        // Before any PKCS#11 call of this process (inside this OnceLock).
        std::env::set_var("SOFTHSM2_CONF", &conf);
        std::env::set_var("PKI_UNIT_CA_PIN", CA_PIN);
        dir
    })
}

/// A configuration with the `pkcs11` backend: CA PIN from the
/// environment, OCSP PIN from a file.
fn config() -> Config {
    let dir = hsm();
    let mut c = Config::default();
    c.keys.backend = KeyBackend::Pkcs11;
    c.keys.pkcs11.module = Some(MODULE.into());
    c.keys.pkcs11.ca.token = Some("unit-ca".into());
    c.keys.pkcs11.ca.pin_env = Some("PKI_UNIT_CA_PIN".into());
    c.keys.pkcs11.ocsp.token = Some("unit-ocsp".into());
    c.keys.pkcs11.ocsp.pin_env = Some("PKI_UNIT_UNSET_PIN".into());
    c.keys.pkcs11.ocsp.pin_file = Some(dir.join("ocsp.pin"));
    c.keys.pkcs11.audit.token = Some("unit-other".into());
    c.keys.pkcs11.audit.pin_env = Some("PKI_UNIT_UNSET_PIN".into());
    c.validate().unwrap();
    c
}

fn unique(name: &str) -> String {
    format!("{name}-{}", pki_keys::random_hex(4).unwrap())
}

/// Verifies a DER signature with aws-lc-rs against the signer's SPKI.
fn verify(signer: &dyn Signer, message: &[u8], signature: &[u8]) {
    let spki = spki::SubjectPublicKeyInfoRef::from_der(signer.public_key_der()).unwrap();
    assert_eq!(spki.algorithm.oid, pki_x509::oids::EC_PUBLIC_KEY);
    let alg = match signer.algorithm() {
        SignatureAlgorithm::EcdsaP256Sha256 => &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
        SignatureAlgorithm::EcdsaP384Sha384 => &aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1,
    };
    aws_lc_rs::signature::UnparsedPublicKey::new(alg, spki.subject_public_key.raw_bytes())
        .verify(message, signature)
        .expect("signature verifies");
}

#[test]
fn keys_are_generated_on_the_token_and_sign_verifiably() {
    let config = config();
    let store = KeyStore::new(&config, KeyPurpose::Ca);
    store.require_passphrase().unwrap();
    for alg in [
        SignatureAlgorithm::EcdsaP256Sha256,
        SignatureAlgorithm::EcdsaP384Sha384,
    ] {
        let name = unique("unit-ca-key");
        let (reference, signer) = store.generate(&name, alg).unwrap();
        assert!(
            reference.starts_with(&format!("pkcs11:token=unit-ca;object={name};id=%")),
            "{reference}"
        );
        let sig = signer.sign(b"to be signed").unwrap();
        verify(signer.as_ref(), b"to be signed", &sig);

        // Found again by a fresh key store (as another process would).
        let reopened = KeyStore::new(&config, KeyPurpose::Ca)
            .open(&reference, alg)
            .unwrap();
        assert_eq!(reopened.public_key_der(), signer.public_key_der());
        verify(
            reopened.as_ref(),
            b"again",
            &reopened.sign(b"again").unwrap(),
        );

        // The same label again is refused, nothing is generated.
        assert!(matches!(
            store.generate(&name, alg),
            Err(KeyError::Exists { .. })
        ));
    }
}

#[test]
fn the_private_key_is_sensitive_never_extractable_and_private() {
    let config = config();
    let name = unique("unit-attrs");
    let (reference, _) = KeyStore::new(&config, KeyPurpose::Ca)
        .generate(&name, SignatureAlgorithm::EcdsaP256Sha256)
        .unwrap();
    // Read back with cryptoki directly, not through the code under test.
    let ctx = Pkcs11::new(MODULE).unwrap();
    let _ = ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
    let slot = ctx
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label().trim_end() == "unit-ca")
        .unwrap();
    let session = ctx.open_ro_session(slot).unwrap();
    let _ = session.login(UserType::User, Some(&CA_PIN.to_string().into()));
    let found = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(name.as_bytes().to_vec()),
        ])
        .unwrap();
    assert_eq!(found.len(), 1, "{reference}");
    let attrs = session
        .get_attributes(
            found[0],
            &[
                AttributeType::Token,
                AttributeType::Private,
                AttributeType::Sensitive,
                AttributeType::AlwaysSensitive,
                AttributeType::Extractable,
                AttributeType::NeverExtractable,
                AttributeType::Sign,
                AttributeType::Decrypt,
                AttributeType::Unwrap,
                AttributeType::Derive,
                AttributeType::Id,
            ],
        )
        .unwrap();
    for a in attrs {
        match a {
            Attribute::Token(v)
            | Attribute::Private(v)
            | Attribute::Sensitive(v)
            | Attribute::AlwaysSensitive(v)
            | Attribute::NeverExtractable(v)
            | Attribute::Sign(v) => assert!(v, "{a:?}"),
            Attribute::Extractable(v)
            | Attribute::Decrypt(v)
            | Attribute::Unwrap(v)
            | Attribute::Derive(v) => assert!(!v, "{a:?}"),
            Attribute::Id(id) => {
                let hex: String = id.iter().map(|b| format!("%{b:02x}")).collect();
                assert_eq!(id.len(), 16);
                assert!(reference.ends_with(&format!(";id={hex}")), "{reference}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn many_threads_sign_through_the_session_pool() {
    let config = config();
    let (_, signer) = KeyStore::new(&config, KeyPurpose::OcspResponder)
        .generate(&unique("unit-pool"), SignatureAlgorithm::EcdsaP256Sha256)
        .unwrap();
    let signer: Arc<dyn Signer> = signer;
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let signer = signer.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let msg = format!("thread {t} message {i}");
                    let sig = signer.sign(msg.as_bytes()).unwrap();
                    verify(signer.as_ref(), msg.as_bytes(), &sig);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("signing thread");
    }
}

#[test]
fn references_of_another_family_or_backend_or_to_nothing_are_refused() {
    let config = config();
    let alg = SignatureAlgorithm::EcdsaP256Sha256;
    let ca = KeyStore::new(&config, KeyPurpose::Ca);
    let ocsp = KeyStore::new(&config, KeyPurpose::OcspResponder);
    let (ca_ref, _) = ca.generate(&unique("unit-family"), alg).unwrap();

    // The responder's key store does not open a CA key.
    let e = ocsp.open(&ca_ref, alg).err().unwrap();
    assert!(matches!(e, KeyError::WrongToken { .. }), "{e}");
    assert!(e.to_string().contains("another family"), "{e}");

    // Right token, wrong id or label: nothing.
    let wrong_id = format!("{}%00", ca_ref);
    assert!(matches!(
        ca.open(&wrong_id, alg),
        Err(KeyError::KeyNotFound { .. })
    ));
    let wrong_label = ca_ref.replace("object=unit-family", "object=unit-nothing");
    assert!(matches!(
        ca.open(&wrong_label, alg),
        Err(KeyError::KeyNotFound { .. })
    ));
    // Right key, wrong curve.
    assert!(matches!(
        ca.open(&ca_ref, SignatureAlgorithm::EcdsaP384Sha384),
        Err(KeyError::Invalid { .. })
    ));
    // Another backend's reference, both ways.
    assert!(matches!(
        ca.open("software:root.key.pem", alg),
        Err(KeyError::OtherBackend { .. })
    ));
    let software = KeyStore::new(&Config::default(), KeyPurpose::Ca);
    assert!(matches!(
        software.open(&ca_ref, alg),
        Err(KeyError::OtherBackend { .. })
    ));
    assert!(matches!(
        ca.open("pkcs11:token=unit-ca;object=x", alg),
        Err(KeyError::UnsupportedReference(_))
    ));
}

#[test]
fn a_missing_or_wrong_pin_and_a_missing_token_are_clear_errors() {
    let mut config = config();
    // Audit token: no PIN configured anywhere.
    let e = KeyStore::new(&config, KeyPurpose::Audit)
        .require_passphrase()
        .unwrap_err();
    assert!(matches!(e, KeyError::Pin(_)), "{e}");
    assert!(e.to_string().contains("PKI_UNIT_UNSET_PIN"), "{e}");

    // A wrong PIN (another family's) for the audit token.
    write_private(&hsm().join("wrong.pin"), CA_PIN);
    config.keys.pkcs11.audit.pin_file = Some(hsm().join("wrong.pin"));
    let e = KeyStore::new(&config, KeyPurpose::Audit)
        .generate(&unique("unit-denied"), SignatureAlgorithm::EcdsaP256Sha256)
        .err()
        .unwrap();
    assert!(matches!(e, KeyError::Login { .. }), "{e}");
    assert!(e.to_string().contains("unit-other"), "{e}");
    assert!(!e.to_string().contains(CA_PIN), "{e}");

    // A token that does not exist.
    config.keys.pkcs11.audit.token = Some("unit-absent".into());
    config.keys.pkcs11.audit.pin_file = Some(hsm().join("ocsp.pin"));
    let e = KeyStore::new(&config, KeyPurpose::Audit)
        .require_passphrase()
        .unwrap_err();
    assert!(matches!(e, KeyError::TokenNotFound { .. }), "{e}");

    // A module that does not exist.
    config.keys.pkcs11.module = Some("/nonexistent/libpkcs11.so".into());
    let e = KeyStore::new(&config, KeyPurpose::Audit)
        .require_passphrase()
        .unwrap_err();
    assert!(matches!(e, KeyError::Module { .. }), "{e}");
}

/// A PIN file readable by its owner only (an open one is refused).
fn write_private(path: &std::path::Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}
