//! Criterion benchmarks of the per-certificate steps of issuance: CSR proof
//! of possession, and build + lint + sign of a card certificate (the whole
//! `mint`), against a bare P-384 signature as the floor.
//!
//! cargo bench -p bench --bench issuance_steps

use ca_core::issuer::Issuer;
use ca_core::mint::{mint, MintRequest};
use ca_core::policy::Policy;
use criterion::{criterion_group, criterion_main, Criterion};
use der::{Decode, Encode};
use pki_keys::{SignatureAlgorithm, Signer, SoftwareKey};
use pki_store::config::Config;
use pki_store::domain::{CertStatus, Usage};
use pki_x509::{csr, ext, name};

fn steps(c: &mut Criterion) {
    let config = Config::default();
    let policy =
        Policy::from_toml(ca_core::policy::EMBEDDED_PROFILES, &config.policy_oid_arc).unwrap();
    let profile = policy.profile_for_usage(Usage::Sign).unwrap();
    let (ca_key, _) = SoftwareKey::generate(SignatureAlgorithm::EcdsaP384Sha384).unwrap();
    let ca_name = name::authority("MC", "Example", "Bench CA").unwrap();
    let ca_name_der = ca_name.to_der().unwrap();
    let ca_spki = spki::SubjectPublicKeyInfoOwned::from_der(ca_key.public_key_der()).unwrap();
    let ca_key_id = ext::key_identifier(ca_spki.subject_public_key.raw_bytes());
    let csr_pem = pki_sample::p256_csr("bench").unwrap();
    let now = chrono::Utc::now();
    let issuer = Issuer {
        subject: &ca_name,
        subject_der: &ca_name_der,
        key_id: &ca_key_id,
        ca_name: "bench-ca",
        signer: &ca_key,
        not_after: Some(now + chrono::Duration::days(4000)),
    };
    let message = vec![0x5au8; 1024];

    c.bench_function("p384_sign_1KiB", |b| {
        b.iter(|| ca_key.sign(&message).unwrap())
    });
    c.bench_function("csr_check_p256", |b| {
        b.iter(|| csr::check(csr_pem.as_bytes()).unwrap())
    });
    let checked = csr::check(csr_pem.as_bytes()).unwrap();
    c.bench_function("mint_card_sign_certificate", |b| {
        b.iter(|| {
            let subject = name::natural_person("MC", "Rossi", "Louise", "MC00000001").unwrap();
            mint(
                &config,
                MintRequest {
                    profile,
                    subject,
                    public_key: checked.public_key.clone(),
                    not_before: now,
                    not_after: now + chrono::Duration::days(1000),
                    latest_not_after: None,
                    card: Some(("ID000000001", "MC00000001", Usage::Sign)),
                    status: CertStatus::Active,
                    linked_serial: None,
                },
                &issuer,
                now,
            )
            .unwrap()
        })
    });
}

criterion_group!(benches, steps);
criterion_main!(benches);
