//! `pki-admin demo`: on the embedded default (SQLite under ./pki-data) it
//! creates the demo CA if needed, imports a sample registry and cards, has
//! "the bureau" generate card keys and CSRs, issues them as a batch,
//! activates the cards (the holders accept them), and shows the result with
//! commands to try next. [`setup`] is that set-up, shared with `pki-admin
//! run` (`run.rs`), which then starts the services.

use crate::commands::entry_json;
use anyhow::Context;
use ca_core::batch;
use ca_core::{hierarchy, Ca};
use clap::Args;
use pki_registration::{cards, registry};
use pki_sample as sample;
use pki_store::clock::Clock;
use pki_store::config::{Config, KeyPurpose};
use pki_store::domain::{CertKind, CertStatus, Usage};
use pki_store::input::Format;
use pki_store::{authorities, certificates};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Args)]
pub struct DemoArgs {
    /// Number of sample holders (each gets an auth and a sign certificate).
    #[arg(long, default_value_t = 12)]
    holders: usize,
}

/// The demo keeps its key passphrases in files of the data directory when
/// none are configured: convenient for a try-out, never for production.
pub fn ensure_passphrases(config: &mut Config) -> anyhow::Result<()> {
    for purpose in [KeyPurpose::Ca, KeyPurpose::OcspResponder, KeyPurpose::Audit] {
        if config.passphrase(purpose).is_ok() {
            continue;
        }
        let (name, what) = match purpose {
            KeyPurpose::Ca => ("demo-ca-passphrase", "CA key passphrase"),
            KeyPurpose::OcspResponder => ("demo-ocsp-passphrase", "OCSP responder key passphrase"),
            KeyPurpose::Audit => ("demo-audit-passphrase", "audit key passphrase"),
        };
        let path = config.data_dir.join(name);
        if !path.exists() {
            std::fs::create_dir_all(&config.data_dir)?;
            let passphrase = pki_keys::random_hex(18)?;
            write_private(&path, &format!("{passphrase}\n"))?;
            eprintln!(
                "demo: no {what} configured; generated one in {} (demo only)",
                path.display()
            );
        }
        match purpose {
            KeyPurpose::Ca => config.keys.passphrase_file = Some(path),
            KeyPurpose::OcspResponder => config.keys.ocsp_passphrase_file = Some(path),
            KeyPurpose::Audit => config.keys.audit_passphrase_file = Some(path),
        }
    }
    Ok(())
}

/// Writes a new secret file readable by its owner only (0600), whatever the umask.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    pki_store::files::create_new_private(path)?.write_all(text.as_bytes())
}

/// What [`setup`] made, for the hints that follow it.
pub struct Demo {
    /// `<data_dir>/ca`: the CA certificates in PEM, `<name>.pem`.
    pub ca_dir: PathBuf,
    /// The first card certificate: serial, issuer, card number.
    pub first: Option<(String, String, String)>,
}

pub fn run(
    config: Config,
    clock: Arc<dyn Clock>,
    actor: &str,
    args: &DemoArgs,
) -> anyhow::Result<ExitCode> {
    let demo = setup(config, clock, actor, args.holders)?;
    let ca_dir = demo.ca_dir;
    if let Some((serial, issuer, _)) = demo.first {
        // This very binary, by the path it was called with, so that the
        // commands work pasted as they are (with this configuration).
        let admin = std::env::current_exe()
            .map(|p| crate::paths::shown(&p))
            .unwrap_or_else(|_| "pki-admin".into());
        let leaf = ca_dir.parent().unwrap_or(&ca_dir).join("demo-leaf.pem");
        outln!("\nTry:");
        outln!("  {admin} cert show {serial}");
        outln!("  {admin} cert show {serial} --pem | openssl x509 -noout -text");
        outln!(
            "  {admin} cert show {serial} --pem > {} && openssl verify -CAfile {} -untrusted {} {}    # OK",
            leaf.display(),
            ca_dir.join("root.pem").display(),
            ca_dir.join(format!("{issuer}.pem")).display(),
            leaf.display()
        );
        outln!("  {admin} audit list --tail 5");
        outln!("  {admin} run    # the whole system: OCSP responder, CRL publisher, scheduler (what make demo runs)");
    }
    Ok(ExitCode::SUCCESS)
}

/// The demo CA on `config` (passphrases already in place, see
/// [`ensure_passphrases`]): the hierarchy if missing, the sample registry
/// and cards, a bureau batch for the cards without certificates, and the
/// activation of the cards whose certificates are held. Idempotent.
pub fn setup(
    config: Config,
    clock: Arc<dyn Clock>,
    actor: &str,
    holders: usize,
) -> anyhow::Result<Demo> {
    let mut config = config;
    ensure_passphrases(&mut config)?;
    let data_dir = config.data_dir.clone();
    std::fs::create_dir_all(&data_dir)?;
    let today = clock.now().date_naive();
    // The demo is `pki-admin migrate` followed by `pki-admin init` and the rest.
    let mut ca = Ca::create(config, clock, actor).context("creating the demo CA")?;
    outln!(
        "== eID CA demo on {} ({})",
        ca.db.backend(),
        pki_store::storage::redact(&ca.config.database_url())
    );

    if authorities::list(&mut ca.db)?.is_empty() {
        let created = hierarchy::init(&mut ca)?;
        outln!("-- created the hierarchy:");
        for c in &created {
            outln!("   {:<34} {}", c.name, c.subject);
        }
    } else {
        outln!("-- the hierarchy exists already");
    }
    let (ca_dir, _) = crate::commands::write_ca_certificates(&mut ca)?;

    let registry_file = data_dir.join("sample-registry.jsonl");
    let cards_file = data_dir.join("sample-cards.jsonl");
    let mut reg = String::new();
    let mut crd = String::new();
    for n in 0..holders {
        reg.push_str(&format!("{}\n", sample::identity_json(n)));
    }
    std::fs::write(&registry_file, reg)?;
    let s = registry::import(&mut ca, &registry_file, Format::JsonLines)?;
    outln!(
        "-- registry {}: {} created, {} unchanged",
        registry_file.display(),
        s.created,
        s.unchanged
    );

    let mut new_cards = Vec::new();
    for n in 0..holders {
        if pki_store::lookup::card(&mut ca.db, &sample::card_number(n)).is_err() {
            crd.push_str(&format!("{}\n", sample::card_json(n, today)));
            new_cards.push(n);
        }
    }
    if !new_cards.is_empty() {
        std::fs::write(&cards_file, &crd)?;
        let n = cards::import(&mut ca, &cards_file, Format::JsonLines)?;
        outln!("-- registered {n} cards from {}", cards_file.display());
    }

    let manifest = data_dir.join(format!("bureau-batch-{}.jsonl", today));
    let mut lines = String::new();
    for n in 0..holders {
        let card = sample::card_number(n);
        let existing = certificates::list(&mut ca.db, Some(&card), 10)?;
        for usage in [Usage::Auth, Usage::Sign] {
            if existing.iter().any(|c| {
                c.usage == Some(usage)
                    && matches!(c.status, CertStatus::Active | CertStatus::PendingActivation)
            }) {
                continue;
            }
            let csr = sample::p256_csr(&format!("{card} {usage}")).map_err(anyhow::Error::msg)?;
            lines.push_str(&format!(
                "{}\n",
                serde_json::json!({"card": card, "usage": usage, "csr": csr})
            ));
        }
    }
    if lines.is_empty() {
        outln!("-- every sample card has its certificates already");
    } else {
        std::fs::write(&manifest, &lines)?;
        let results = data_dir.join("bureau-batch-results.jsonl");
        let mut out = std::fs::File::create(&results)?;
        let summary = batch::run(&mut ca, &manifest, |r, _| {
            let _ = writeln!(out, "{}", entry_json(&r));
        })?;
        outln!(
            "-- bureau batch {}: {} issued, {} rejected (results in {})",
            manifest.display(),
            summary.issued,
            summary.rejected,
            results.display()
        );
    }

    // The holders accept their cards: the certificates leave their hold.
    let mut activated = 0;
    for n in 0..holders {
        let card = sample::card_number(n);
        let held = certificates::list(&mut ca.db, Some(&card), 10)?
            .iter()
            .any(|c| c.status == CertStatus::PendingActivation);
        if held {
            match pki_registration::lifecycle::activate(&mut ca, &card) {
                Ok(_) => activated += 1,
                Err(e) => outln!("-- card {card} stays on hold: {e}"),
            }
        }
    }
    if activated > 0 {
        outln!("-- activated {activated} cards (their certificates leave the hold)");
    }

    outln!("-- card certificates:");
    let rows = certificates::list(&mut ca.db, None, 1000)?;
    let mut first = None;
    for r in rows.iter().filter(|r| r.kind == CertKind::EndEntity) {
        if r.status == CertStatus::Active {
            first.get_or_insert((
                r.serial.clone(),
                r.issuer.clone(),
                r.card_number.clone().unwrap_or_default(),
            ));
        }
        outln!(
            "   {:<12} {:<5} {}  until {}  {}",
            r.card_number.as_deref().unwrap_or("-"),
            r.usage.map_or("-", |u| u.as_str()),
            r.serial,
            r.not_after.format("%Y-%m-%d"),
            r.subject
        );
    }
    let n = pki_store::audit::verify(&mut ca.db)?;
    outln!("-- audit chain intact: {n} records");
    Ok(Demo { ca_dir, first })
}
