//! `reminders-bench`: time per run of the expiry-reminders job
//! (`pki_registration::reminders::decide_due`, what `pki-scheduler run-once
//! reminders` runs) on a population of one million active certificates.
//!
//! The population is inserted straight into the database (a real CA
//! hierarchy from `hierarchy::init`, then N/2 identities and cards and N
//! active certificates, an authentication and a signature certificate per
//! card, with a dummy DER), without audit records: only the reminders path
//! is measured. The certificates' ends are spread uniformly over three years
//! (23:59:59 UTC of a random day); one card in five ends with its
//! certificates (the "renew your card" message), one holder in ten has no
//! e-mail (postal list). Three runs are timed, with an injected clock:
//!
//! * `first`: the first run ever, every reminder of the window (90 days)
//!   decided, composed, inserted and audited;
//! * `again`: a second run at the same instant (nothing new: the cost of an
//!   idle daily run);
//! * `next_day`: a run one day later (the reminders of one day).
//!
//! Each run's counts are checked against the counts computed here from the
//! generated ends, so a fast run that decides the wrong thing fails. SQLite
//! always; PostgreSQL too when `--postgres-url` (or `PKI_BENCH_POSTGRES_URL`)
//! is given (a fresh schema, dropped afterwards). One JSON object per
//! backend on stdout, progress on stderr.
//!
//! make bench-reminders   # = cargo run --release -p bench --bin reminders-bench

use anyhow::Context;
use ca_core::{hierarchy, Ca};
use chrono::{Duration, DurationRound, NaiveDateTime, Utc};
use clap::Parser;
use diesel::prelude::*;
use pki_registration::reminders::{self, DecideReport};
use pki_store::clock::FixedClock;
use pki_store::config::Config;
use pki_store::storage::models::{CardRow, CertificateRow, IdentityRow};
use pki_store::storage::schema::{cards, identities};
use pki_store::storage::Db;
use pki_store::{certificates, with_conn};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// Active certificates (two per card).
    #[arg(long, default_value_t = 1_000_000)]
    certificates: usize,
    /// Also run on this PostgreSQL server (a fresh schema is made).
    #[arg(long, env = "PKI_BENCH_POSTGRES_URL")]
    postgres_url: Option<String>,
    /// Skip SQLite (with --postgres-url).
    #[arg(long)]
    no_sqlite: bool,
    /// Keep the SQLite file and the PostgreSQL schema (their names are
    /// printed on stderr) for a look afterwards.
    #[arg(long)]
    keep: bool,
}

const PASSPHRASE: &str = "reminders benchmark passphrase";
/// Rows per transaction while populating.
const TX_ROWS: usize = 50_000;

/// A small deterministic generator (xorshift64*), so that every run
/// measures the same population.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// One card of the population.
struct Holder {
    not_after: NaiveDateTime,
    email: bool,
}

/// The counts a run at `now` must decide, given what was decided before
/// (`last`: each card's smallest due offset at the previous run).
fn expected(
    holders: &[Holder],
    offsets: &[i64],
    now: NaiveDateTime,
    last: &mut [Option<i64>],
) -> (usize, usize, usize) {
    let (mut examined, mut email, mut postal) = (0, 0, 0);
    for (h, prev) in holders.iter().zip(last.iter_mut()) {
        if h.not_after <= now || h.not_after > now + Duration::days(offsets[offsets.len() - 1]) {
            continue;
        }
        examined += 2;
        let due = reminders::smallest_due_offset(offsets, h.not_after, now);
        if due.is_some() && due != *prev {
            if h.email {
                email += 1;
            } else {
                postal += 1;
            }
            *prev = due;
        }
    }
    (examined, email, postal)
}

fn populate(ca: &mut Ca, holders: &[Holder], now: NaiveDateTime) -> anyhow::Result<()> {
    let today = now.date();
    let issued = today - Duration::days(400);
    let mut done = 0;
    while done < holders.len() {
        let end = (done + TX_ROWS / 2).min(holders.len());
        let mut ids = Vec::with_capacity(end - done);
        let mut card_rows = Vec::with_capacity(end - done);
        let mut certs = Vec::with_capacity(2 * (end - done));
        for (i, h) in holders.iter().enumerate().take(end).skip(done) {
            let key = format!("MC{:08}", i + 1);
            let card = format!("ID{:09}", i + 1);
            ids.push(IdentityRow {
                registry_key: key.clone(),
                family_name: "Gastaud".into(),
                given_names: "Louise".into(),
                birth_name: None,
                birth_datetime: now - Duration::days(15_000),
                birth_place: "Monaco".into(),
                gender: pki_store::domain::Gender::Female,
                authority: pki_store::domain::RegistrationAuthority::TownHall,
                status: pki_store::domain::IdentityStatus::Active,
                protected_adult: false,
                email: h.email.then(|| format!("holder{}@example.com", i + 1)),
                mobile: None,
                updated_at: now,
            });
            // One card in five ends with its certificates.
            let expiry = if i.is_multiple_of(5) {
                h.not_after.date()
            } else {
                h.not_after.date() + Duration::days(7 * 365)
            };
            card_rows.push(CardRow {
                card_number: card.clone(),
                kind: pki_store::domain::CardKind::Identity,
                holder_key: key.clone(),
                issue_date: issued,
                expiry_date: expiry,
                registered_at: now,
            });
            for (u, usage) in [
                pki_store::domain::Usage::Auth,
                pki_store::domain::Usage::Sign,
            ]
            .into_iter()
            .enumerate()
            {
                certs.push(CertificateRow {
                    serial: format!("{:030x}{u:02x}", i + 1),
                    issuer: "identity-card-ca".into(),
                    profile: format!("card-{usage}"),
                    kind: pki_store::domain::CertKind::EndEntity,
                    usage: Some(usage),
                    card_number: Some(card.clone()),
                    holder_key: Some(key.clone()),
                    subject: "CN=bench".into(),
                    not_before: now - Duration::days(400),
                    not_after: h.not_after,
                    status: pki_store::domain::CertStatus::Active,
                    public_key_sha256: "00".into(),
                    der: vec![0],
                    issued_at: now - Duration::days(400),
                    revoked_at: None,
                    revocation_reason: None,
                    invalidity_date: None,
                    crl_partition: 0,
                    suspension_cause: None,
                    linked_serial: None,
                });
            }
        }
        ca.db.write("bench", Utc::now(), |tx| {
            for chunk in ids.chunks(1000) {
                with_conn!(tx.db, c => diesel::insert_into(identities::table).values(chunk).execute(c))
                    .map_err(pki_store::storage::StorageError::from)?;
            }
            for chunk in card_rows.chunks(2000) {
                with_conn!(tx.db, c => diesel::insert_into(cards::table).values(chunk).execute(c))
                    .map_err(pki_store::storage::StorageError::from)?;
            }
            certificates::insert(tx.db, &certs)?;
            Ok::<_, pki_store::CaError>(())
        })?;
        done = end;
        eprint!("\r  populated {} / {} cards", done, holders.len());
    }
    eprintln!();
    use diesel::connection::SimpleConnection;
    match &mut ca.db {
        Db::Pg(c) => c.batch_execute("VACUUM ANALYZE")?,
        Db::Sqlite(c) => c.batch_execute("ANALYZE")?,
    }
    Ok(())
}

/// Runs `decide_due` once, timed, and checks its counts.
fn timed_run(
    ca: &mut Ca,
    name: &str,
    want: (usize, usize, usize),
) -> anyhow::Result<serde_json::Value> {
    let t = Instant::now();
    let report: DecideReport = reminders::decide_due(ca)?;
    let seconds = t.elapsed().as_secs_f64();
    let got = (report.examined, report.decided_email, report.decided_postal);
    anyhow::ensure!(
        got == want,
        "{name}: decided (examined, email, postal) = {got:?}, expected {want:?}"
    );
    eprintln!("  {name}: {seconds:.3} s  {report:?}");
    Ok(serde_json::json!({ "seconds": (seconds * 1000.0).round() / 1000.0, "report": report }))
}

fn bench(
    backend: &str,
    url: &str,
    dir: &Path,
    holders: &[Holder],
    now: NaiveDateTime,
) -> anyhow::Result<serde_json::Value> {
    eprintln!("{backend}: {} certificates", 2 * holders.len());
    let data = dir.join(backend);
    let config = Config {
        data_dir: data.clone(),
        database_url: Some(url.to_string()),
        ..Config::default()
    };
    let clock = FixedClock::new(now.and_utc());
    let mut ca = Ca::create(config, Arc::new(clock.clone()), "bench")?;
    hierarchy::init(&mut ca).context("creating the CA hierarchy")?;
    let t = Instant::now();
    populate(&mut ca, holders, now)?;
    let populate_seconds = t.elapsed().as_secs_f64();
    eprintln!("  population inserted in {populate_seconds:.1} s");

    let offsets: Vec<i64> = {
        let mut v: Vec<i64> = ca
            .config
            .reminders
            .offsets_days
            .iter()
            .map(|d| i64::from(*d))
            .collect();
        v.sort_unstable();
        v
    };
    let mut last = vec![None; holders.len()];
    let want = expected(holders, &offsets, now, &mut last);
    let first = timed_run(&mut ca, "first", want)?;
    let again_want = expected(holders, &offsets, now, &mut last);
    let again = timed_run(&mut ca, "again", again_want)?;
    clock.advance(Duration::days(1));
    let later = now + Duration::days(1);
    let next_want = expected(holders, &offsets, later, &mut last);
    let next_day = timed_run(&mut ca, "next_day", next_want)?;
    Ok(serde_json::json!({
        "backend": backend,
        "certificates": 2 * holders.len(),
        "cards": holders.len(),
        "offsets_days": offsets,
        "populate_seconds": (populate_seconds * 10.0).round() / 10.0,
        "first": first,
        "again": again,
        "next_day": next_day,
    }))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::env::set_var("PKI_CA_PASSPHRASE", PASSPHRASE);
    std::env::set_var(
        "PKI_OCSP_PASSPHRASE",
        "reminders benchmark responder passphrase",
    );
    let now = Utc::now()
        .duration_trunc(Duration::seconds(1))
        .context("time")?
        .naive_utc();
    let today = now.date();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let cards = args.certificates.div_ceil(2);
    let holders: Vec<Holder> = (0..cards)
        .map(|_| {
            let day = 1 + (rng.next() % (3 * 365)) as i64;
            let not_after = (today + Duration::days(day))
                .and_hms_opt(23, 59, 59)
                .unwrap_or(now);
            Holder {
                not_after,
                email: !rng.next().is_multiple_of(10),
            }
        })
        .collect();
    let dir = tempfile::Builder::new()
        .prefix("reminders-bench-")
        .tempdir()?;
    if !args.no_sqlite {
        let url = format!("sqlite://{}", dir.path().join("pki.sqlite").display());
        let out = bench("sqlite", &url, dir.path(), &holders, now)?;
        println!("{out}");
    }
    if let Some(base) = &args.postgres_url {
        let schema = format!("reminders_bench_{}", std::process::id());
        let url = pki_store::storage::pg_fresh_schema(base, &schema)?;
        let out = bench("postgresql", &url, dir.path(), &holders, now);
        if args.keep {
            eprintln!("kept PostgreSQL schema {schema}");
        } else {
            let _ = pki_store::storage::pg_drop_schema(base, &schema);
        }
        println!("{}", out?);
    }
    if args.keep {
        eprintln!("kept {}", dir.keep().display());
    }
    Ok(())
}
