//! Setup (timed, not part of the measurement): the CA hierarchy and the
//! two populations, imported from the sample registry, their auth
//! certificates issued through the batch engine from generated CSRs, then
//! activated through the lifecycle state machine.

use crate::scenario::Wave;
use crate::stats::round3;
use crate::workdir::ACTOR;
use anyhow::{ensure, Context};
use ca_core::{batch, hierarchy, Ca};
use chrono::Utc;
use diesel::prelude::*;
use pki_registration::lifecycle::{self, Scope, Transition};
use pki_registration::{cards, registry};
use pki_sample as sample;
use pki_store::input::Format;
use pki_store::storage::schema::certificates;
use pki_store::storage::Db;
use pki_store::with_conn;
use rayon::prelude::*;
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// Cards activated per audited transaction during setup.
const ACTIVATE_CHUNK: usize = 500;

/// Creates the hierarchy and both populations of `population` holders in
/// `dir`; returns the timings.
pub fn setup(ca: &mut Ca, dir: &Path, population: usize, backend: &str) -> anyhow::Result<Value> {
    eprintln!("setup ({backend}): 2 x {population} holders");
    let t = Instant::now();
    hierarchy::init(ca).context("creating the CA hierarchy")?;
    let mut setup = setup_population(ca, dir, population)?;
    setup["seconds"] = json!(round3(t.elapsed().as_secs_f64()));
    eprintln!("  setup done in {:.1} s", t.elapsed().as_secs_f64());
    Ok(setup)
}

/// Imports both populations, issues their auth certificates through the
/// batch engine, and activates them. Returns the timings.
fn setup_population(ca: &mut Ca, dir: &Path, population: usize) -> anyhow::Result<Value> {
    let waves = Wave::ALL;
    let today = Utc::now().date_naive();
    let t = Instant::now();
    let reg = dir.join("registry.jsonl");
    let crd = dir.join("cards.jsonl");
    {
        let mut r = std::io::BufWriter::new(std::fs::File::create(&reg)?);
        let mut c = std::io::BufWriter::new(std::fs::File::create(&crd)?);
        for wave in waves {
            for i in 0..population {
                let n = wave.sample_index(i);
                writeln!(r, "{}", sample::identity_json(n))?;
                writeln!(c, "{}", sample::card_json(n, today))?;
            }
        }
    }
    registry::import(ca, &reg, Format::JsonLines)?;
    cards::import(ca, &crd, Format::JsonLines)?;
    let import_seconds = t.elapsed().as_secs_f64();
    eprintln!(
        "  registry and cards: {} holders in {import_seconds:.1} s",
        2 * population
    );

    let t = Instant::now();
    let cards: Vec<String> = waves
        .iter()
        .flat_map(|w| (0..population).map(|i| sample::card_number(w.sample_index(i))))
        .collect();
    let lines: Vec<String> = cards
        .par_iter()
        .map(|card| {
            let csr = sample::p256_csr("lifecycle-bench").expect("CSR generation works");
            json!({"card": card, "usage": "auth", "csr": csr}).to_string()
        })
        .collect();
    let manifest = dir.join("manifest.jsonl");
    std::fs::write(&manifest, lines.join("\n") + "\n")?;
    drop(lines);
    let csr_seconds = t.elapsed().as_secs_f64();
    eprintln!("  {} CSRs generated in {csr_seconds:.1} s", cards.len());

    let t = Instant::now();
    let summary = batch::run(ca, &manifest, |_, _| {})?;
    ensure!(
        summary.issued == cards.len() && summary.rejected == 0,
        "the batch did not issue everything: {summary:?}"
    );
    let issue_seconds = t.elapsed().as_secs_f64();
    eprintln!(
        "  {} auth certificates issued (batch engine) in {issue_seconds:.1} s",
        summary.issued
    );

    // Activation (CPS 4.4.1): hold -> active, through the state machine,
    // by serial.
    let t = Instant::now();
    let now = ca.clock.now();
    let held: Vec<(String, Option<String>)> = with_conn!(&mut ca.db, c => certificates::table
        .filter(certificates::status.eq("hold"))
        .filter(certificates::kind.eq("end-entity"))
        .select((certificates::serial, certificates::card_number))
        .load(c))?;
    ensure!(
        held.len() == cards.len(),
        "{} certificates on hold, expected {}",
        held.len(),
        cards.len()
    );
    for chunk in held.chunks(ACTIVATE_CHUNK) {
        ca.db.write(ACTOR, now, |tx| {
            for (serial, card) in chunk {
                let context = json!({"activation": {"card": card, "by": ACTOR}});
                let changed = lifecycle::apply_in(
                    tx,
                    &Scope::Serial(serial.clone()),
                    Transition::Activate,
                    None,
                    &context,
                    true,
                )?;
                if changed.len() != 1 {
                    return Err(pki_store::CaError::Field {
                        field: "serial".into(),
                        message: format!("{serial}: {} certificates activated", changed.len()),
                    });
                }
            }
            Ok::<_, pki_store::CaError>(())
        })?;
    }
    let activate_seconds = t.elapsed().as_secs_f64();
    eprintln!(
        "  {} cards activated in {activate_seconds:.1} s",
        cards.len()
    );
    use diesel::connection::SimpleConnection;
    match &mut ca.db {
        Db::Pg(c) => c.batch_execute("VACUUM ANALYZE")?,
        Db::Sqlite(c) => c.batch_execute("ANALYZE")?,
    }
    Ok(json!({
        "holders": 2 * population,
        "certificates": summary.issued,
        "import_seconds": round3(import_seconds),
        "csr_seconds": round3(csr_seconds),
        "issue_seconds": round3(issue_seconds),
        "activate_seconds": round3(activate_seconds),
    }))
}
