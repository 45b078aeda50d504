//! `ocsp-bench setup`: the certificate population and the prepared
//! requests of the OCSP load test (`bench/ocsp/run.sh`).
//!
//! It builds, in `--dir`, a CA on SQLite with `--certs` card certificates
//! (identity cards, auth and sign, all from the identity-card CA) issued
//! through `ca_core::batch::run` — the `pki-admin issue-batch` path — from
//! generated P-256 CSRs, activates them (they are issued on hold, pending
//! activation: `lifecycle::activate`'s transition, by card, 500 cards per
//! audited transaction), revokes and suspends a share of them, and writes
//! what the load generator and the peer responders need:
//!
//! * `pki.toml` and `data/` for `ocsp-responder`;
//! * `peer/ca.pem`, `peer/responder.pem`, `peer/responder-key.pem`
//!   (unencrypted: OpenSSL's scrypt memory limit refuses the key store's
//!   encrypted files), `peer/index.txt` for `openssl ocsp -index`,
//!   `peer/cfssl-certs.jsonl` for cfssl's certificate database;
//! * `requests/*.hex` (one DER request per line, for POST) and
//!   `requests/*.path` (one `/<url-encoded base64>` per line, for GET), for a
//!   random sample of the certificates: SHA-1 CertIDs with and without a
//!   nonce, SHA-256 CertIDs;
//! * `setup.json`: counts and timings.
//!
//! cargo run --release -p bench --bin ocsp-bench -- setup --dir target/ocsp-bench --certs 100000

use anyhow::Context;
use base64::Engine;
use ca_core::{batch, Ca};
use clap::{Parser, Subcommand};
use der::asn1::OctetString;
use der::{Decode, Encode};
use ocsp_responder::request::{HashAlg, Serial};
use pki_registration::lifecycle::{self, Scope, Transition};
use pki_registration::revocation;
use pki_registration::{cards, registry};
use pki_sample as sample;
use pki_store::clock::SystemClock;
use pki_store::config::Config;
use pki_store::domain::{Reason, SuspensionCause};
use pki_store::input::Format;
use pki_store::published::{published_status, PublishedStatus, StatusFacts};
use rayon::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

const CA_PASSPHRASE: &str = "ocsp benchmark CA passphrase";
const OCSP_PASSPHRASE: &str = "ocsp benchmark responder passphrase";
const ISSUER: &str = "identity-card-ca";
/// Cards activated per audited transaction.
const ACTIVATE_CHUNK: usize = 500;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the population and the prepared requests.
    Setup {
        #[arg(long)]
        dir: PathBuf,
        /// Card certificates to issue (two per card).
        #[arg(long, default_value_t = 100_000)]
        certs: usize,
        /// Revoked certificates, per thousand (as many again are suspended).
        #[arg(long, default_value_t = 10)]
        revoked_permille: usize,
        /// Certificates the prepared requests ask about.
        #[arg(long, default_value_t = 1000)]
        sample: usize,
    },
    /// The OCSP responder passphrase the setup used (for run.sh).
    Passphrase,
}

fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Cmd::Passphrase => {
            println!("{OCSP_PASSPHRASE}");
            Ok(())
        }
        Cmd::Setup {
            dir,
            certs,
            revoked_permille,
            sample,
        } => setup(&dir, certs, revoked_permille, sample),
    }
}

fn setup(
    dir: &Path,
    certs: usize,
    revoked_permille: usize,
    sample_size: usize,
) -> anyhow::Result<()> {
    std::env::set_var("PKI_CA_PASSPHRASE", CA_PASSPHRASE);
    std::env::set_var("PKI_OCSP_PASSPHRASE", OCSP_PASSPHRASE);
    if dir.join("data").exists() {
        anyhow::bail!(
            "{} already holds a population: remove it first",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir.join("peer"))?;
    std::fs::create_dir_all(dir.join("requests"))?;
    let config_path = dir.join("pki.toml");
    std::fs::write(
        &config_path,
        "# ocsp-bench population (SQLite)\ndata_dir = \"data\"\n[urls]\nocsp = \"http://127.0.0.1:18080\"\n",
    )?;
    let config = Config::load(&config_path)?;
    let mut ca = Ca::create(config, Arc::new(SystemClock), "ocsp-bench")?;
    let total = Instant::now();
    ca_core::hierarchy::init(&mut ca)?;

    // Holders: the even sample identities (nationals, identity cards).
    let holders = certs.div_ceil(2);
    let today = chrono::Utc::now().date_naive();
    let reg = dir.join("registry.jsonl");
    let crd = dir.join("cards.jsonl");
    {
        let mut r = std::io::BufWriter::new(std::fs::File::create(&reg)?);
        let mut c = std::io::BufWriter::new(std::fs::File::create(&crd)?);
        for i in 0..holders {
            writeln!(r, "{}", sample::identity_json(2 * i))?;
            writeln!(c, "{}", sample::card_json(2 * i, today))?;
        }
    }
    registry::import(&mut ca, &reg, Format::JsonLines)?;
    cards::import(&mut ca, &crd, Format::JsonLines)?;

    let start = Instant::now();
    let lines: Vec<String> = (0..holders)
        .into_par_iter()
        .flat_map_iter(|i| {
            ["auth", "sign"].into_iter().map(move |usage| {
                let csr = sample::p256_csr("ocsp-bench").expect("CSR generation works");
                serde_json::json!({"card": sample::card_number(2 * i), "usage": usage, "csr": csr})
                    .to_string()
            })
        })
        .collect();
    let csr_seconds = start.elapsed().as_secs_f64();
    let manifest = dir.join("manifest.jsonl");
    std::fs::write(&manifest, lines.join("\n") + "\n")?;
    drop(lines);
    eprintln!(
        "ocsp-bench: {} CSRs in {csr_seconds:.1} s; issuing",
        2 * holders
    );
    let start = Instant::now();
    let summary = batch::run(&mut ca, &manifest, |_, _| {})?;
    let issue_seconds = start.elapsed().as_secs_f64();
    anyhow::ensure!(summary.rejected == 0, "batch rejected entries: {summary:?}");
    eprintln!(
        "ocsp-bench: issued {} in {issue_seconds:.1} s",
        summary.issued
    );

    // Activation (CPS 4.4.1): the certificates are issued on hold, pending
    // activation; hold -> active through the state machine, as
    // `lifecycle::activate` does per card, without a transaction per card.
    let start = Instant::now();
    let now = ca.clock.now();
    let actor = ca.actor.clone();
    let cards: Vec<String> = (0..holders).map(|i| sample::card_number(2 * i)).collect();
    let mut activated = 0;
    for chunk in cards.chunks(ACTIVATE_CHUNK) {
        activated += ca.db.write(&actor, now, |tx| {
            let mut n = 0;
            for card in chunk {
                let context = serde_json::json!({"activation": {"card": card, "by": "ocsp-bench"}});
                let scope = Scope::Card(card.clone());
                n += lifecycle::apply_in(tx, &scope, Transition::Activate, None, &context, false)?
                    .len();
            }
            Ok::<_, pki_store::CaError>(n)
        })?;
    }
    let activate_seconds = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        activated == summary.issued,
        "activated {activated} certificates, issued {}",
        summary.issued
    );
    eprintln!("ocsp-bench: activated {activated} in {activate_seconds:.1} s");

    // All certificates of the issuing CA, in serial order.
    let mut rows = Vec::new();
    let mut after = String::new();
    loop {
        let page = pki_store::certificates::page_for_issuer(&mut ca.db, ISSUER, &after, 5000)?;
        let Some(last) = page.last() else { break };
        after = last.serial.clone();
        rows.extend(page.into_iter().filter(|r| r.card_number.is_some()));
    }

    // Revocations and suspensions, spread over the population.
    let start = Instant::now();
    let step = 1000 / revoked_permille.max(1);
    let reasons = [
        Reason::KeyCompromise,
        Reason::Superseded,
        Reason::AffiliationChanged,
        Reason::CessationOfOperation,
    ];
    let mut changed = 0;
    for (n, row) in rows.iter().enumerate() {
        let change = if n % step == 1 {
            Transition::Revoke(Some(reasons[(n / step) % reasons.len()]))
        } else if n % step == 2 {
            Transition::Suspend(SuspensionCause::Officer)
        } else {
            continue;
        };
        revocation::apply(&mut ca, &Scope::Serial(row.serial.clone()), change, None)?;
        changed += 1;
    }
    let revoke_seconds = start.elapsed().as_secs_f64();
    // Reread the statuses.
    let serials: Vec<String> = rows.iter().map(|r| r.serial.clone()).collect();
    let current = pki_store::certificates::find_many(&mut ca.db, &serials)?;

    // The issuing CA, its responder, and the responder's key in clear.
    let authority = pki_store::authorities::find(&mut ca.db, ISSUER)?;
    let ca_cert = pki_store::certificates::find(&mut ca.db, &authority.certificate_serial)?;
    let responder = pki_store::authorities::current_responder(&mut ca.db, ISSUER)?
        .context("no responder for the identity-card CA")?;
    let responder_cert = pki_store::certificates::find(&mut ca.db, &responder.certificate_serial)?;
    let key_file = ca
        .config
        .key_dir(pki_store::config::KeyPurpose::OcspResponder)
        .join(responder.key_ref.trim_start_matches("software:"));
    let pem = std::fs::read_to_string(&key_file)?;
    let (_, der) = der::pem::decode_vec(pem.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let encrypted =
        pkcs8::EncryptedPrivateKeyInfo::from_der(&der).map_err(|e| anyhow::anyhow!("{e}"))?;
    let plain = encrypted
        .decrypt(OCSP_PASSPHRASE)
        .map_err(|e| anyhow::anyhow!("decrypting the responder key: {e}"))?;
    let peer = dir.join("peer");
    std::fs::write(
        peer.join("responder-key.pem"),
        der::pem::encode_string("PRIVATE KEY", der::pem::LineEnding::LF, plain.as_bytes())
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    )?;
    std::fs::write(
        peer.join("responder.pem"),
        pki_x509::cert_pem(&responder_cert.der),
    )?;
    std::fs::write(peer.join("ca.pem"), pki_x509::cert_pem(&ca_cert.der))?;

    // openssl ocsp -index, and cfssl's certificate database rows.
    let utc = |t: chrono::NaiveDateTime| t.format("%y%m%d%H%M%SZ").to_string();
    let sql = |t: chrono::NaiveDateTime| t.format("%Y-%m-%d %H:%M:%S").to_string();
    let mut index = std::io::BufWriter::new(std::fs::File::create(peer.join("index.txt"))?);
    let mut cfssl = std::io::BufWriter::new(std::fs::File::create(peer.join("cfssl-certs.jsonl"))?);
    let aki = hex::encode(&authority.key_id);
    for row in &rows {
        let row = current.get(&row.serial).unwrap_or(row);
        let serial = row.serial.to_ascii_uppercase();
        let (flag, revocation, reason_code) = match published_status(StatusFacts::from(row)) {
            PublishedStatus::Revoked { at, reason, .. } => {
                let name = reason.map_or("unspecified", Reason::as_str);
                let code = reason.map_or(0, Reason::code);
                ("R", format!("{},{name}", utc(at)), code)
            }
            PublishedStatus::Good => ("V", String::new(), 0),
        };
        writeln!(
            index,
            "{flag}\t{}\t{revocation}\t{serial}\tunknown\t/CN=card {}",
            utc(row.not_after),
            row.card_number.as_deref().unwrap_or("-")
        )?;
        writeln!(
            cfssl,
            "{}",
            serde_json::json!({
                "serial": row.serial,
                "aki": aki,
                "status": if flag == "R" { "revoked" } else { "good" },
                "reason": reason_code,
                "expiry": sql(row.not_after),
                "revoked_at": row.revoked_at.map(sql),
                "pem": pki_x509::cert_pem(&row.der),
            })
        )?;
    }
    index.flush()?;
    cfssl.flush()?;
    std::fs::write(peer.join("index.txt.attr"), "unique_subject = no\n")?;

    // Prepared requests for a spread-out sample.
    let ca_parsed = x509_cert::Certificate::from_der(&ca_cert.der)?;
    let name_der = ca_parsed.tbs_certificate.subject.to_der()?;
    let key_bits = ca_parsed
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes()
        .to_vec();
    let stride = (rows.len() / sample_size.max(1)).max(1);
    let picked: Vec<Serial> = rows
        .iter()
        .step_by(stride)
        .take(sample_size)
        .filter_map(|r| Serial::from_hex(&r.serial))
        .collect();
    let requests = dir.join("requests");
    for (name, alg, nonce) in [
        ("sha1", HashAlg::Sha1, false),
        ("sha1-nonce", HashAlg::Sha1, true),
        ("sha256", HashAlg::Sha256, false),
        ("sha256-nonce", HashAlg::Sha256, true),
    ] {
        let mut hex_lines = String::new();
        let mut paths = String::new();
        for (i, serial) in picked.iter().enumerate() {
            let nonce = nonce.then(|| {
                let mut n = [0u8; 32];
                n[..8].copy_from_slice(&(i as u64).to_be_bytes());
                n[8..16].copy_from_slice(&(std::process::id() as u64).to_be_bytes());
                n
            });
            let der = request(
                alg,
                &name_der,
                &key_bits,
                serial,
                nonce.as_ref().map(|n| &n[..]),
            )?;
            hex_lines.push_str(&hex::encode(&der));
            hex_lines.push('\n');
            let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
            paths.push('/');
            paths.push_str(
                &b64.replace('+', "%2B")
                    .replace('/', "%2F")
                    .replace('=', "%3D"),
            );
            paths.push('\n');
        }
        std::fs::write(requests.join(format!("{name}.hex")), hex_lines)?;
        std::fs::write(requests.join(format!("{name}.path")), paths)?;
    }

    let report = serde_json::json!({
        "certificates": rows.len(),
        "revoked_or_suspended": changed,
        "issuer": ISSUER,
        "csr_seconds": csr_seconds,
        "issue_seconds": issue_seconds,
        "activate_seconds": activate_seconds,
        "revoke_seconds": revoke_seconds,
        "total_seconds": total.elapsed().as_secs_f64(),
        "sampled_requests": picked.len(),
    });
    std::fs::write(
        dir.join("setup.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    println!("{report}");
    Ok(())
}

/// A DER OCSPRequest for one certificate.
fn request(
    alg: HashAlg,
    name_der: &[u8],
    key_bits: &[u8],
    serial: &Serial,
    nonce: Option<&[u8]>,
) -> anyhow::Result<Vec<u8>> {
    let cert_id = ocsp_responder::response::canonical_cert_id(
        alg,
        &alg.digest(name_der),
        &alg.digest(key_bits),
        serial,
    )?;
    let request_extensions = match nonce {
        Some(n) => Some(vec![x509_cert::ext::Extension {
            extn_id: const_oid::db::rfc6960::ID_PKIX_OCSP_NONCE,
            critical: false,
            extn_value: OctetString::new(OctetString::new(n)?.to_der()?)?,
        }]),
        None => None,
    };
    Ok(x509_ocsp::OcspRequest {
        tbs_request: x509_ocsp::TbsRequest {
            version: Default::default(),
            requestor_name: None,
            request_list: vec![x509_ocsp::Request {
                req_cert: cert_id,
                single_request_extensions: None,
            }],
            request_extensions,
        },
        optional_signature: None,
    }
    .to_der()?)
}
