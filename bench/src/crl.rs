//! `crl-bench`: CRL generation time and peak memory of the real
//! `crl-publisher` binary for synthetic populations of revoked certificates
//! (10,000, 100,000 and 1,000,000 by default), next to `openssl ca -gencrl`
//! over an index of the same serials and `cfssl gencrl` over the same
//! serials, all three signing with a P-384 key and measured by
//! `/usr/bin/time -v` (wall time and maximum resident set size).
//!
//! The population is inserted straight into the database (one identity and
//! card; N revoked certificates of `identity-card-ca` with a mix of reasons
//! and invalidity dates, a dummy DER), without audit records: only the CRL
//! path is measured. Each tool runs `--runs` times (`crl-publisher` after
//! one unmeasured publication, as a running publisher would have made); the
//! table shows the median wall time and the highest peak memory.
//!
//! Run through `bench/crl/run.sh`, which builds the release binaries first.

use anyhow::{bail, Context};
use ca_core::{hierarchy, Ca};
use chrono::{Duration, Utc};
use clap::Parser;
use pki_registration::{cards, registry};
use pki_sample as sample;
use pki_store::certificates;
use pki_store::clock::SystemClock;
use pki_store::config::Config;
use pki_store::input::Format;
use pki_store::storage::models::CertificateRow;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

#[derive(Parser)]
struct Args {
    /// Population sizes (revoked certificates).
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    sizes: Vec<usize>,
    /// sqlite or postgres.
    #[arg(long, default_value = "sqlite")]
    backend: String,
    /// PostgreSQL server for the postgres run (a fresh schema is made).
    #[arg(
        long,
        env = "PKI_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,
    /// Runs per tool and size.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// The crl-publisher binary (default: next to this one).
    #[arg(long)]
    publisher: Option<PathBuf>,
    /// `--read-threads` of crl-publisher (default: its own).
    #[arg(long)]
    read_threads: Option<usize>,
    /// Skip cfssl (when not installed).
    #[arg(long)]
    no_cfssl: bool,
    /// Where to keep the files (default: a temporary directory, removed).
    #[arg(long)]
    keep: Option<PathBuf>,
}

const PASSPHRASE: &str = "crl benchmark passphrase";

/// One measured process.
#[derive(Debug, Clone, Copy)]
struct Measure {
    wall: f64,
    peak_mb: f64,
}

/// Runs a command under `/usr/bin/time -v`; returns its stdout and measure.
fn timed(cmd: &mut Command, what: &str) -> anyhow::Result<(Vec<u8>, Measure)> {
    let program = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let mut t = Command::new("/usr/bin/time");
    t.arg("-v").arg(program).args(args);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => t.env(k, v),
            None => t.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        t.current_dir(d);
    }
    let out = t.output().with_context(|| format!("running {what}"))?;
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("{what} failed: {}\n{err}", out.status);
    }
    let field = |name: &str| -> Option<&str> {
        err.lines()
            .find_map(|l| l.trim().strip_prefix(name).map(str::trim))
    };
    let wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss):")
        .map(|v| {
            v.split(':')
                .fold(0.0, |acc, p| acc * 60.0 + p.parse::<f64>().unwrap_or(0.0))
        })
        .context("no wall time from /usr/bin/time")?;
    let rss_kb: f64 = field("Maximum resident set size (kbytes):")
        .and_then(|v| v.parse().ok())
        .context("no peak memory from /usr/bin/time")?;
    Ok((
        out.stdout,
        Measure {
            wall,
            peak_mb: rss_kb / 1024.0,
        },
    ))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

struct Row {
    size: usize,
    gen: f64,
    publish: f64,
    ours: Measure,
    openssl: Measure,
    cfssl: Option<Measure>,
}

fn random_serial() -> anyhow::Result<String> {
    let mut s = [0u8; 16];
    aws_lc_rs::rand::fill(&mut s).map_err(|_| anyhow::anyhow!("no randomness"))?;
    s[0] = (s[0] & 0x7f) | 0x40;
    Ok(hex::encode(s))
}

/// The CA, one identity and card, and `n` revoked certificates.
fn populate(dir: &Path, database_url: &str, n: usize) -> anyhow::Result<(PathBuf, Vec<String>)> {
    let data = dir.join("data");
    let config_path = dir.join("pki.toml");
    std::fs::write(
        &config_path,
        format!(
            "data_dir = {:?}\ndatabase_url = {:?}\n",
            data.display().to_string(),
            database_url
        ),
    )?;
    let config = Config::load(&config_path)?;
    let mut ca = Ca::create(config, Arc::new(SystemClock), "bench")?;
    hierarchy::init(&mut ca)?;
    let today = Utc::now().date_naive();
    let reg = dir.join("registry.jsonl");
    let crd = dir.join("cards.jsonl");
    std::fs::write(&reg, format!("{}\n", sample::identity_json(0)))?;
    std::fs::write(&crd, format!("{}\n", sample::card_json(0, today)))?;
    registry::import(&mut ca, &reg, Format::JsonLines)?;
    cards::import(&mut ca, &crd, Format::JsonLines)?;
    let now = Utc::now().naive_utc();
    use pki_store::domain::Reason;
    let reasons = [
        Some(Reason::KeyCompromise),
        None,
        Some(Reason::Superseded),
        Some(Reason::AffiliationChanged),
        Some(Reason::CessationOfOperation),
    ];
    let mut serials = Vec::with_capacity(n);
    let mut done = 0;
    while done < n {
        let chunk = (n - done).min(50_000);
        let mut rows = Vec::with_capacity(chunk);
        for i in done..done + chunk {
            let serial = random_serial()?;
            serials.push(serial.clone());
            let revoked = now - Duration::seconds((i % 86_400) as i64 + 60);
            rows.push(CertificateRow {
                serial,
                issuer: "identity-card-ca".into(),
                profile: "card-auth".into(),
                kind: pki_store::domain::CertKind::EndEntity,
                usage: Some(pki_store::domain::Usage::Auth),
                card_number: Some(sample::card_number(0)),
                holder_key: Some("MC00000001".into()),
                subject: "CN=bench".into(),
                not_before: now - Duration::days(400),
                not_after: now + Duration::days(700),
                status: pki_store::domain::CertStatus::Revoked,
                public_key_sha256: "00".into(),
                der: vec![0],
                issued_at: now - Duration::days(400),
                revoked_at: Some(revoked),
                revocation_reason: reasons[i % reasons.len()],
                invalidity_date: (i % 3 == 0).then(|| revoked - Duration::days(2)),
                crl_partition: 0,
                suspension_cause: None,
                linked_serial: None,
            });
        }
        ca.db.write("bench", Utc::now(), |tx| {
            certificates::insert(tx.db, &rows)?;
            Ok::<_, pki_store::CaError>(())
        })?;
        done += chunk;
    }
    if let pki_store::storage::Db::Pg(c) = &mut ca.db {
        use diesel::connection::SimpleConnection;
        c.batch_execute("VACUUM ANALYZE certificates")?;
    }
    Ok((config_path, serials))
}

fn openssl_setup(dir: &Path, serials: &[String]) -> anyhow::Result<PathBuf> {
    let d = dir.join("openssl");
    std::fs::create_dir_all(&d)?;
    let run = |args: &[&str]| -> anyhow::Result<()> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&d)
            .output()?;
        if !out.status.success() {
            bail!("openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    };
    run(&[
        "ecparam",
        "-genkey",
        "-name",
        "secp384r1",
        "-noout",
        "-out",
        "ca.key",
    ])?;
    run(&[
        "req",
        "-new",
        "-x509",
        "-key",
        "ca.key",
        "-sha384",
        "-days",
        "3650",
        "-subj",
        "/C=MC/O=Bench/CN=Bench CA",
        "-out",
        "ca.pem",
    ])?;
    let mut index = std::io::BufWriter::new(std::fs::File::create(d.join("index.txt"))?);
    let reasons = [
        "keyCompromise",
        "",
        "superseded",
        "affiliationChanged",
        "cessationOfOperation",
    ];
    for (i, s) in serials.iter().enumerate() {
        let reason = reasons[i % reasons.len()];
        let rev = if reason.is_empty() {
            "261120083000Z".to_string()
        } else {
            format!("261120083000Z,{reason}")
        };
        writeln!(
            index,
            "R\t281231235959Z\t{rev}\t{}\tunknown\t/CN=bench",
            s.to_uppercase()
        )?;
    }
    index.flush()?;
    std::fs::write(d.join("crlnumber"), "01\n")?;
    std::fs::write(
        d.join("openssl.cnf"),
        format!(
            "[ ca ]\ndefault_ca = bench\n[ bench ]\ndir = {}\ndatabase = $dir/index.txt\n\
             certificate = $dir/ca.pem\nprivate_key = $dir/ca.key\ncrlnumber = $dir/crlnumber\n\
             default_md = sha384\ndefault_crl_days = 1\ncrl_extensions = crl_ext\n\
             unique_subject = no\n[ crl_ext ]\nauthorityKeyIdentifier = keyid:always\n",
            d.display()
        ),
    )?;
    // cfssl reads decimal serials, one per line.
    let mut list = std::io::BufWriter::new(std::fs::File::create(d.join("serials.txt"))?);
    for s in serials {
        let bytes = hex::decode(s)?;
        writeln!(list, "{}", to_decimal(&bytes))?;
    }
    list.flush()?;
    Ok(d)
}

/// Big-endian unsigned bytes as a decimal string.
fn to_decimal(bytes: &[u8]) -> String {
    let mut digits: Vec<u8> = vec![0];
    for &b in bytes {
        let mut carry = b as u32;
        for d in digits.iter_mut() {
            let v = *d as u32 * 256 + carry;
            *d = (v % 10) as u8;
            carry = v / 10;
        }
        while carry > 0 {
            digits.push((carry % 10) as u8);
            carry /= 10;
        }
    }
    digits.iter().rev().map(|d| (b'0' + d) as char).collect()
}

fn bench_size(args: &Args, publisher: &Path, n: usize, root: &Path) -> anyhow::Result<Row> {
    let dir = root.join(format!("n{n}"));
    std::fs::create_dir_all(&dir)?;
    let schema = format!("crlbench_{}_{n}", std::process::id());
    let url = match args.backend.as_str() {
        "sqlite" => format!("sqlite://{}", dir.join("data/pki.sqlite").display()),
        "postgres" => pki_store::storage::pg_fresh_schema(&args.postgres_url, &schema)?,
        other => bail!("--backend {other}: sqlite or postgres"),
    };
    let t = std::time::Instant::now();
    let (config, serials) = populate(&dir, &url, n)?;
    eprintln!(
        "  {n}: population inserted in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let out_dir = dir.join("crl");
    // One publication first, as a running publisher would have made: the
    // measured runs then have a previous CRL (size hint, parallel readers).
    let warm = Command::new(publisher)
        .arg("--config")
        .arg(&config)
        .arg("--out-dir")
        .arg(&out_dir)
        .args(["publish", "--complete-only", "--issuer", "identity-card-ca"])
        .env("PKI_CA_PASSPHRASE", PASSPHRASE)
        .output()?;
    anyhow::ensure!(
        warm.status.success(),
        "crl-publisher: {}",
        String::from_utf8_lossy(&warm.stderr)
    );
    let mut gens = Vec::new();
    let mut pubs = Vec::new();
    let mut walls = Vec::new();
    let mut peak: f64 = 0.0;
    let threads: Vec<String> = args
        .read_threads
        .map(|n| vec!["--read-threads".to_string(), n.to_string()])
        .unwrap_or_default();
    for _ in 0..args.runs {
        let (stdout, m) = timed(
            Command::new(publisher)
                .args(["--config"])
                .arg(&config)
                .arg("--out-dir")
                .arg(&out_dir)
                .args(&threads)
                .args([
                    "publish",
                    "--complete-only",
                    "--issuer",
                    "identity-card-ca",
                    "--json",
                ])
                .env("PKI_CA_PASSPHRASE", PASSPHRASE),
            "crl-publisher",
        )?;
        let line = String::from_utf8_lossy(&stdout);
        let v: serde_json::Value = serde_json::from_str(line.lines().next().unwrap_or("{}"))
            .with_context(|| format!("crl-publisher output {line:?}"))?;
        anyhow::ensure!(
            v["entries"].as_u64() == Some(n as u64),
            "crl-publisher listed {} entries, expected {n}",
            v["entries"]
        );
        gens.push(v["generation_seconds"].as_f64().unwrap_or(f64::NAN));
        pubs.push(v["seconds"].as_f64().unwrap_or(f64::NAN));
        walls.push(m.wall);
        peak = peak.max(m.peak_mb);
    }
    // The CRL verifies with the issuing CA's certificate.
    let ca_pem = dir.join("data/ca/identity-card-ca.pem");
    if ca_pem.exists() {
        let out = Command::new("openssl")
            .args(["crl", "-inform", "DER", "-noout", "-in"])
            .arg(out_dir.join("identity-card-ca.crl"))
            .arg("-CAfile")
            .arg(&ca_pem)
            .output()?;
        anyhow::ensure!(
            String::from_utf8_lossy(&out.stderr).contains("verify OK"),
            "openssl crl does not verify the benchmark CRL: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let od = openssl_setup(&dir, &serials)?;
    let mut o_walls = Vec::new();
    let mut o_peak: f64 = 0.0;
    let mut c_walls = Vec::new();
    let mut c_peak: f64 = 0.0;
    for _ in 0..args.runs {
        let (_, m) = timed(
            Command::new("openssl")
                .args([
                    "ca",
                    "-batch",
                    "-config",
                    "openssl.cnf",
                    "-gencrl",
                    "-out",
                    "openssl.crl",
                ])
                .current_dir(&od),
            "openssl ca -gencrl",
        )?;
        o_walls.push(m.wall);
        o_peak = o_peak.max(m.peak_mb);
        if !args.no_cfssl {
            let (out, m) = timed(
                Command::new("cfssl")
                    .args(["gencrl", "serials.txt", "ca.pem", "ca.key"])
                    .current_dir(&od),
                "cfssl gencrl",
            )?;
            anyhow::ensure!(out.len() > n, "cfssl gencrl wrote too little");
            c_walls.push(m.wall);
            c_peak = c_peak.max(m.peak_mb);
        }
    }
    if args.backend == "postgres" {
        pki_store::storage::pg_drop_schema(&args.postgres_url, &schema)?;
    }
    Ok(Row {
        size: n,
        gen: median(gens),
        publish: median(pubs),
        ours: Measure {
            wall: median(walls),
            peak_mb: peak,
        },
        openssl: Measure {
            wall: median(o_walls),
            peak_mb: o_peak,
        },
        cfssl: (!args.no_cfssl).then(|| Measure {
            wall: median(c_walls),
            peak_mb: c_peak,
        }),
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::env::set_var("PKI_CA_PASSPHRASE", PASSPHRASE);
    std::env::set_var("PKI_OCSP_PASSPHRASE", "crl benchmark responder passphrase");
    let publisher = match &args.publisher {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("binary directory")?
            .join("crl-publisher"),
    };
    anyhow::ensure!(
        publisher.exists(),
        "{} not found: cargo build --release -p crl-publisher",
        publisher.display()
    );
    let tmp = tempfile::Builder::new().prefix("crl-bench-").tempdir()?;
    let root = args
        .keep
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&root)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "crl-bench: {} backend, {cores} cores, median of {} runs, P-384 signatures everywhere",
        args.backend, args.runs
    );
    let mut rows = Vec::new();
    for &n in &args.sizes {
        rows.push(bench_size(&args, &publisher, n, &root)?);
    }
    println!();
    println!("| revoked entries | crl-publisher generation s | + write & record s | crl-publisher process s | peak MB | openssl ca -gencrl s | peak MB | cfssl gencrl s | peak MB | openssl / ours | cfssl / ours |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in &rows {
        let (cs, cm, cr) = match r.cfssl {
            Some(c) => (
                format!("{:.2}", c.wall),
                format!("{:.0}", c.peak_mb),
                format!("{:.1}x", c.wall / r.ours.wall),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        println!(
            "| {} | {:.3} | {:.3} | {:.2} | {:.0} | {:.2} | {:.0} | {cs} | {cm} | {:.1}x | {cr} |",
            r.size,
            r.gen,
            r.publish,
            r.ours.wall,
            r.ours.peak_mb,
            r.openssl.wall,
            r.openssl.peak_mb,
            r.openssl.wall / r.ours.wall,
        );
    }
    Ok(())
}
