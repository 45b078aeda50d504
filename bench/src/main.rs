//! `issuance-bench`: batch issuance throughput on SQLite and PostgreSQL,
//! measured through the same `ca_core::batch::run` that `pki-admin
//! issue-batch` uses, next to the raw P-384 signature rate of the issuing
//! key on this machine. CSRs (P-256 card keys) are generated before timing.
//!
//! cargo run --release -p bench --bin issuance-bench -- --holders 10000

use anyhow::Context;
use ca_core::{batch, hierarchy, Ca};
use clap::Parser;
use pki_keys::{SignatureAlgorithm, Signer, SoftwareKey};
use pki_registration::{cards, registry};
use pki_sample as sample;
use pki_store::clock::SystemClock;
use pki_store::config::Config;
use pki_store::input::Format;
use rayon::prelude::*;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Card holders; each gets an auth and a sign certificate.
    #[arg(long, default_value_t = 10_000)]
    holders: usize,
    /// sqlite, postgres or both.
    #[arg(long, default_value = "both")]
    backend: String,
    /// PostgreSQL server for the postgres run (a fresh schema is made).
    #[arg(
        long,
        env = "PKI_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,
    /// Seconds spent measuring the raw signature rate.
    #[arg(long, default_value_t = 3.0)]
    sign_seconds: f64,
}

/// Signatures per second over a 1 KiB message (a TBSCertificate's size).
fn raw_signature_rate(threads: usize, seconds: f64) -> anyhow::Result<f64> {
    let (key, _) = SoftwareKey::generate(SignatureAlgorithm::EcdsaP384Sha384)?;
    let key = Arc::new(key);
    let message = vec![0x5au8; 1024];
    let deadline = Duration::from_secs_f64(seconds);
    let counts: Vec<u64> = (0..threads)
        .into_par_iter()
        .map(|_| {
            let start = Instant::now();
            let mut n = 0u64;
            while start.elapsed() < deadline {
                for _ in 0..64 {
                    key.sign(&message).expect("signing works");
                }
                n += 64;
            }
            n
        })
        .collect();
    Ok(counts.iter().sum::<u64>() as f64 / seconds)
}

struct Run {
    backend: &'static str,
    certificates: usize,
    seconds: f64,
}

fn bench_backend(
    backend: &'static str,
    database_url: String,
    holders: usize,
    manifest_lines: &[String],
) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    let config = Config {
        data_dir: dir.path().join("data"),
        database_url: Some(database_url),
        ..Config::default()
    };
    let mut ca = Ca::create(config, Arc::new(SystemClock), "bench")?;
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
    std::fs::write(&manifest, manifest_lines.join("\n") + "\n")?;

    let start = Instant::now();
    let summary = batch::run(&mut ca, &manifest, |_, _| {})?;
    let seconds = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        summary.issued == manifest_lines.len() && summary.rejected == 0,
        "batch did not issue everything: {summary:?}"
    );
    pki_store::audit::verify(&mut ca.db)?;
    Ok(Run {
        backend,
        certificates: summary.issued,
        seconds,
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::env::set_var("PKI_CA_PASSPHRASE", "benchmark passphrase");
    std::env::set_var("PKI_OCSP_PASSPHRASE", "benchmark responder passphrase");
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "issuance-bench: {} holders, {} certificates per run, {cores} cores",
        args.holders,
        2 * args.holders
    );

    let one = raw_signature_rate(1, args.sign_seconds)?;
    let all = raw_signature_rate(cores, args.sign_seconds)?;
    println!("raw P-384 signatures/s (aws-lc-rs): {one:.0} on 1 core, {all:.0} on {cores} cores");

    let start = Instant::now();
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
    println!(
        "generated {} CSRs in {:.1}s (not timed below)",
        lines.len(),
        start.elapsed().as_secs_f64()
    );

    let mut runs = Vec::new();
    if args.backend == "sqlite" || args.backend == "both" {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("bench.sqlite").display());
        runs.push(bench_backend("sqlite", url, args.holders, &lines)?);
    }
    if args.backend == "postgres" || args.backend == "both" {
        let schema = format!("bench_{}", std::process::id());
        let url = pki_store::storage::pg_fresh_schema(&args.postgres_url, &schema)
            .context("PostgreSQL for the benchmark")?;
        let run = bench_backend("postgres", url, args.holders, &lines);
        pki_store::storage::pg_drop_schema(&args.postgres_url, &schema)?;
        runs.push(run?);
    }

    println!();
    println!("| backend | certificates | seconds | certificates/s | vs 1-core raw P-384 signing | vs {cores}-core raw |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for r in &runs {
        let rate = r.certificates as f64 / r.seconds;
        println!(
            "| {} | {} | {:.2} | {:.0} | {:.2} | {:.2} |",
            r.backend,
            r.certificates,
            r.seconds,
            rate,
            rate / one,
            rate / all
        );
    }
    Ok(())
}
