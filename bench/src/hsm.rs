//! `hsm-bench`: the PKCS#11 key backend (SoftHSM2) beside software keys in
//! one run, on SQLite: batch issuance per second (`ca_core::batch::run`, the
//! `pki-admin issue-batch` path), OCSP answers to nonce requests per second
//! (each one signed when asked, through the responder's own
//! `Source::answer`, as `ocsp-responder` does), and the raw signature rate
//! of each backend as the ceiling (for the token: `C_Sign` with CKM_ECDSA
//! through `pki_keys::pkcs11`, session pool included).
//!
//! The SoftHSM2 tokens live in a temporary directory (`SOFTHSM2_CONF`),
//! initialised with `softhsm2-util` (Debian `softhsm2`).
//!
//! cargo run --release -p bench --bin hsm-bench -- --holders 1000
//!
//! Measured 2026-12-03 (debug build, `--holders 100 --seconds 1`, 2 shared
//! cores while other builds ran: indicative only, re-run in release):
//!
//! | raw signatures/s (1 KiB) | 1 thread | 2 threads |
//! | --- | ---: | ---: |
//! | P-256 software (aws-lc-rs) | 32,006 | 35,184 |
//! | P-256 SoftHSM2 C_Sign | 5,385 | 5,795 |
//! | P-384 software (aws-lc-rs) | 6,735 | 7,786 |
//! | P-384 SoftHSM2 C_Sign | 635 | 569 |
//!
//! | keys (SQLite) | certificates | certificates/s | nonce OCSP answers/s, 1 thread | 2 threads |
//! | --- | ---: | ---: | ---: | ---: |
//! | software | 200 | 133 | 4,601 | 2,649 |
//! | pkcs11 (SoftHSM2) | 200 | 261 | 339 | 342 |
//!
//! With SoftHSM2 the P-384 responder and issuing-CA keys bound both rates
//! (about 600 signatures/s); 200 certificates are too few for a stable
//! issuance rate.

use anyhow::Context;
use ca_core::{batch, hierarchy, Ca};
use clap::Parser;
use ocsp_responder::request::{HashAlg, Serial};
use ocsp_responder::source::Source;
use pki_keys::{KeyStore, SignatureAlgorithm, Signer, SoftwareKey};
use pki_registration::{cards, registry};
use pki_sample as sample;
use pki_store::clock::SystemClock;
use pki_store::config::{Config, KeyPurpose};
use pki_store::domain::KeyBackend;
use pki_store::input::Format;
use rayon::prelude::*;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const ISSUER: &str = "identity-card-ca";

#[derive(Parser)]
struct Args {
    /// Card holders; each gets an auth and a sign certificate.
    #[arg(long, default_value_t = 1000)]
    holders: usize,
    /// Seconds per signature-rate and OCSP measurement.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
}

/// Runs `op` on `threads` threads for `seconds`; operations per second.
fn rate(threads: usize, seconds: f64, op: impl Fn(u64) + Sync) -> f64 {
    let deadline = Duration::from_secs_f64(seconds);
    let counter = AtomicU64::new(0);
    let start = Instant::now();
    (0..threads).into_par_iter().for_each(|_| {
        while start.elapsed() < deadline {
            for _ in 0..16 {
                op(counter.fetch_add(1, Ordering::Relaxed));
            }
        }
    });
    counter.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// A temporary SoftHSM2 token directory with a CA and a responder token.
fn softhsm(dir: &Path) -> anyhow::Result<()> {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens)?;
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )?;
    for (label, pin) in [
        ("bench-ca", "bench-ca-pin"),
        ("bench-ocsp", "bench-ocsp-pin"),
    ] {
        let out = std::process::Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &conf)
            .args(["--init-token", "--free", "--label", label])
            .args(["--so-pin", "bench-so-pin", "--pin", pin])
            .output()
            .context("softhsm2-util (scripts/setup-test-tools.sh installs it)")?;
        anyhow::ensure!(out.status.success(), "softhsm2-util: {out:?}");
    }
    // Before the first PKCS#11 call of this process.
    std::env::set_var("SOFTHSM2_CONF", &conf);
    std::env::set_var("PKI_CA_PIN", "bench-ca-pin");
    std::env::set_var("PKI_OCSP_PIN", "bench-ocsp-pin");
    Ok(())
}

fn config(data_dir: &Path, keys: KeyBackend) -> Config {
    let mut c = Config {
        data_dir: data_dir.to_path_buf(),
        ..Config::default()
    };
    c.keys.backend = keys;
    c.keys.pkcs11.module = Some(MODULE.into());
    c.keys.pkcs11.ca.token = Some("bench-ca".into());
    c.keys.pkcs11.ocsp.token = Some("bench-ocsp".into());
    c
}

/// A signer of each kind for the raw rates.
fn signer(keys: KeyBackend, alg: SignatureAlgorithm) -> anyhow::Result<Arc<dyn Signer>> {
    Ok(match keys {
        KeyBackend::Software => Arc::new(SoftwareKey::generate(alg)?.0),
        KeyBackend::Pkcs11 => {
            let dir = tempfile::tempdir()?;
            let store = KeyStore::new(&config(dir.path(), keys), KeyPurpose::Ca);
            let name = format!("raw-{}", pki_keys::random_hex(4)?);
            store.generate(&name, alg)?.1
        }
    })
}

struct Measured {
    keys: KeyBackend,
    certificates: usize,
    issue_seconds: f64,
    ocsp_1: f64,
    ocsp_all: f64,
}

/// Issues the manifest with `keys`, then answers nonce requests about
/// the issued certificates.
fn run(
    keys: KeyBackend,
    holders: usize,
    lines: &[String],
    seconds: f64,
    cores: usize,
) -> anyhow::Result<Measured> {
    let dir = tempfile::tempdir()?;
    let config = config(&dir.path().join("data"), keys);
    let mut ca = Ca::create(config.clone(), Arc::new(SystemClock), "bench")?;
    hierarchy::init(&mut ca)?;
    let today = chrono::Utc::now().date_naive();
    let reg = dir.path().join("registry.jsonl");
    let crd = dir.path().join("cards.jsonl");
    let mut r = std::io::BufWriter::new(std::fs::File::create(&reg)?);
    let mut c = std::io::BufWriter::new(std::fs::File::create(&crd)?);
    for n in 0..holders {
        writeln!(r, "{}", sample::identity_json(n))?;
        writeln!(c, "{}", sample::card_json(n, today))?;
    }
    drop((r, c));
    registry::import(&mut ca, &reg, Format::JsonLines)?;
    cards::import(&mut ca, &crd, Format::JsonLines)?;
    let manifest = dir.path().join("manifest.jsonl");
    std::fs::write(&manifest, lines.join("\n") + "\n")?;
    let start = Instant::now();
    let summary = batch::run(&mut ca, &manifest, |_, _| {})?;
    let issue_seconds = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        summary.issued == lines.len() && summary.rejected == 0,
        "batch did not issue everything: {summary:?}"
    );

    // Nonce requests for the issued certificates (SHA-1 CertIDs).
    let authority = pki_store::authorities::find(&mut ca.db, ISSUER)?;
    let ca_cert = pki_store::certificates::find(&mut ca.db, &authority.certificate_serial)?;
    let page = pki_store::certificates::page_for_issuer(&mut ca.db, ISSUER, "", 5000)?;
    let serials: Vec<Serial> = page
        .iter()
        .filter(|r| r.card_number.is_some())
        .filter_map(|r| Serial::from_hex(&r.serial))
        .collect();
    anyhow::ensure!(!serials.is_empty(), "no certificates to ask about");
    let parsed = x509_cert::Certificate::from_der(&ca_cert.der)?;
    let name_der = der::Encode::to_der(&parsed.tbs_certificate.subject)?;
    let key_bits = parsed
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes()
        .to_vec();
    let requests: Vec<Vec<u8>> = (0..4096u64)
        .map(|i| {
            let mut nonce = [0u8; 32];
            nonce[..8].copy_from_slice(&i.to_be_bytes());
            let serial = &serials[i as usize % serials.len()];
            request(&name_der, &key_bits, serial, &nonce)
        })
        .collect::<anyhow::Result<_>>()?;
    drop(ca);

    let settings =
        <ocsp_responder::settings::Settings as clap::Parser>::parse_from(["ocsp-responder"]);
    let service = ocsp_responder::start(&settings, &config, Arc::new(SystemClock))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let source = service.source.clone();
    let limits = ocsp_responder::request::Limits::default();
    let answer = |i: u64| {
        let req = &requests[i as usize % requests.len()];
        let parsed = ocsp_responder::request::parse(req, &limits).expect("request parses");
        let a = source.answer(&parsed);
        assert!(a.body.len() > 100, "not a signed answer");
    };
    answer(0);
    let ocsp_1 = rate(1, seconds, answer);
    let ocsp_all = rate(cores, seconds, answer);
    Ok(Measured {
        keys,
        certificates: summary.issued,
        issue_seconds,
        ocsp_1,
        ocsp_all,
    })
}

/// A DER OCSPRequest with a nonce for one certificate.
fn request(
    name_der: &[u8],
    key_bits: &[u8],
    serial: &Serial,
    nonce: &[u8],
) -> anyhow::Result<Vec<u8>> {
    use der::asn1::OctetString;
    use der::Encode;
    let alg = HashAlg::Sha1;
    let cert_id = ocsp_responder::response::canonical_cert_id(
        alg,
        &alg.digest(name_der),
        &alg.digest(key_bits),
        serial,
    )?;
    Ok(x509_ocsp::OcspRequest {
        tbs_request: x509_ocsp::TbsRequest {
            version: Default::default(),
            requestor_name: None,
            request_list: vec![x509_ocsp::Request {
                req_cert: cert_id,
                single_request_extensions: None,
            }],
            request_extensions: Some(vec![x509_cert::ext::Extension {
                extn_id: const_oid::db::rfc6960::ID_PKIX_OCSP_NONCE,
                critical: false,
                extn_value: OctetString::new(OctetString::new(nonce)?.to_der()?)?,
            }]),
        },
        optional_signature: None,
    }
    .to_der()?)
}

use der::Decode;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let hsm_dir = tempfile::tempdir()?;
    softhsm(hsm_dir.path())?;
    std::env::set_var("PKI_CA_PASSPHRASE", "benchmark passphrase");
    std::env::set_var("PKI_OCSP_PASSPHRASE", "benchmark responder passphrase");
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "hsm-bench: {} holders ({} certificates per run), {cores} cores, SoftHSM2 at {MODULE}",
        args.holders,
        2 * args.holders
    );

    let message = vec![0x5au8; 1024];
    println!();
    println!("| raw signatures/s (1 KiB message) | 1 thread | {cores} threads |");
    println!("| --- | ---: | ---: |");
    for alg in [
        SignatureAlgorithm::EcdsaP256Sha256,
        SignatureAlgorithm::EcdsaP384Sha384,
    ] {
        for keys in [KeyBackend::Software, KeyBackend::Pkcs11] {
            let s = signer(keys, alg)?;
            let sign = |_| {
                s.sign(&message).expect("signing works");
            };
            let one = rate(1, args.seconds, sign);
            let all = rate(cores, args.seconds, sign);
            let what = match keys {
                KeyBackend::Software => "software (aws-lc-rs)",
                KeyBackend::Pkcs11 => "SoftHSM2 C_Sign (CKM_ECDSA)",
            };
            println!(
                "| {} {what} | {one:.0} | {all:.0} |",
                alg.key_algorithm().name()
            );
        }
    }

    let lines: Vec<String> = (0..args.holders)
        .into_par_iter()
        .flat_map_iter(|n| {
            ["auth", "sign"].into_iter().map(move |usage| {
                let csr = sample::p256_csr("bench").expect("CSR generation works");
                serde_json::json!({"card": sample::card_number(n), "usage": usage, "csr": csr})
                    .to_string()
            })
        })
        .collect();
    let mut runs = Vec::new();
    for keys in [KeyBackend::Software, KeyBackend::Pkcs11] {
        runs.push(run(keys, args.holders, &lines, args.seconds, cores)?);
    }
    println!();
    println!("| keys (SQLite) | certificates | issuance s | certificates/s | nonce OCSP answers/s, 1 thread | {cores} threads |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for m in &runs {
        println!(
            "| {} | {} | {:.2} | {:.0} | {:.0} | {:.0} |",
            m.keys,
            m.certificates,
            m.issue_seconds,
            m.certificates as f64 / m.issue_seconds,
            m.ocsp_1,
            m.ocsp_all
        );
    }
    Ok(())
}
