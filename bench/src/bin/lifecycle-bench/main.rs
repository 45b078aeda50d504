//! `lifecycle-bench`: a mass registry event executed and published end to
//! end by the real services, timed from the moment it is due to the moment
//! it is published in OCSP and in a CRL (CPS 4.9.5: 24 hours promised, 5
//! minutes targeted).
//!
//! Setup (timed, not part of the measurement), in this process through
//! ca-core: a fresh data directory and pki.toml (SQLite, or a fresh schema
//! on PostgreSQL with `--database postgres://...`), `hierarchy::init`, two
//! populations of `--population` card holders, each card with an
//! authentication certificate issued by `ca_core::batch::run` (the
//! `pki-admin issue-batch` path) from generated P-256 CSRs and then
//! activated through the lifecycle state machine
//! (`lifecycle::apply_in(.., Transition::Activate, ..)` by serial, 500
//! certificates per audited transaction: what `lifecycle::activate` does
//! per card, without a transaction per card):
//!
//! * residents (residents section) with residence cards, for the
//!   `residency-ended` wave (residence-card CA);
//! * nationals (town hall) with identity cards, for the `card-lost` wave
//!   (identity-card CA).
//!
//! Then `ocsp-responder`, `crl-publisher run` (the CRL signer), `crl-server`
//! and `pki-scheduler` are started from the release directory (defaults of each, except the
//! scheduler's `requests_cron` / `sla_cron`, set in pki.toml), each waited
//! for until it listens and has loaded or published everything.
//!
//! The waves (measured):
//!
//! * `residency-ended`: one event per resident, all with the same
//!   `effective` instant T = now + `--lead-seconds`, recorded through
//!   `pki_registration::requests::record_all` in chunks of 500 (what `pki-admin
//!   registry events FILE --no-execute` does) before T. Each event makes a
//!   revoke request and an identity-status request, due at T.
//! * `card-lost`: one event per national's card, all reported at the same
//!   instant T (the start of the recording) and so due at T: the feed's
//!   recording time is inside the measurement, as when a registry delivers
//!   a wave of reports.
//!
//! Nothing else happens: the scheduler executes the due requests on its
//! own cron, the responder and the publisher follow the change feed on
//! their own. This process only watches the database (cheap reads: the
//! requests' feed positions against the responders' publication marks and
//! the CRLs' feed positions) until every revoke request of the wave is
//! executed and published in both, then stamps the publication times
//! (`pki_registration::sla::stamp_publications`, as the scheduler's `sla` job does)
//! and reads them with `pki_registration::sla::report`. Times come from the SLA
//! columns: due, executed, first OCSP publication mark and first CRL
//! (complete or delta) at or past the request's change-feed position.
//! Alongside, the wave is watched from outside, as a relying party sees it
//! and independently of those marks: 500 of its certificates asked to the
//! responder over HTTP every second until each answers revoked, and the CRL
//! files read whenever they change (a certificate counts from the
//! modification time of the first file listing it). It then waits (`--complete-crl-timeout`) for a *complete* CRL covering the
//! whole wave, and checks the result: every certificate of the wave revoked
//! with the right reason in the database, asked over HTTP to the responder
//! (one OCSP request per certificate), and listed in the complete CRL file
//! (`openssl crl -text`, and the serials compared one by one).
//!
//! Output: one JSON object on stdout, a readable summary on stderr; the
//! pki.toml, CRLs and service logs stay in `--dir/<backend>`. The services
//! are stopped with SIGTERM at the end.
//!
//! ```text
//! bench/lifecycle/run.sh                                   # SQLite, both waves of 10,000
//! bench/lifecycle/run.sh --database postgres://postgres@127.0.0.1:5432/test
//! target/release/lifecycle-bench --population 1000 --scenario card-lost
//! ```
//!
//! The modules: `cli` (the options), `workdir` (the directory, pki.toml,
//! the CA opened here), `population` (setup), `services` (the three
//! services), `scenario` (what each wave is), `workload` (its events),
//! `publication` (the delays measured), `observer` (the outside view),
//! `checks` (the end-of-wave checks), `wave` (one wave end to end), `db`,
//! `ocsp`, `crl` and `http` (reading the database, the responder, the CRL
//! files), `stats` and `report` (the figures and the summary).

mod checks;
mod cli;
mod crl;
mod db;
mod http;
mod observer;
mod ocsp;
mod population;
mod publication;
mod report;
mod scenario;
mod services;
mod stats;
mod wave;
mod workdir;
mod workload;

use anyhow::{ensure, Context};
use clap::Parser;
use cli::Args;
use serde_json::{json, Value};
use services::Services;
use stats::memory_mib;
use workdir::Workdir;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    workdir::export_passphrases();
    let postgres = args.database.starts_with("postgres");
    let backend = if postgres { "postgresql" } else { "sqlite" };
    ensure!(
        postgres || args.database == "sqlite",
        "--database: sqlite or postgres://..."
    );
    let workdir = Workdir::fresh(&args.dir, backend)?;
    let out = if postgres {
        let schema = format!("lifecycle_bench_{}", std::process::id());
        let url = pki_store::storage::pg_fresh_schema(&args.database, &schema)
            .context("PostgreSQL for the benchmark")?;
        let out = run(&args, backend, &url, &workdir);
        if args.keep_schema {
            eprintln!("schema {schema} kept");
        } else {
            pki_store::storage::pg_drop_schema(&args.database, &schema)?;
        }
        out?
    } else {
        run(&args, backend, &workdir.sqlite_url(), &workdir)?
    };
    println!("{out}");
    report::print_summary(&out);
    Ok(())
}

/// Setup, the services, the waves, the services stopped: the JSON output.
fn run(args: &Args, backend: &str, database_url: &str, workdir: &Workdir) -> anyhow::Result<Value> {
    let bin_dir = services::bin_dir(args.bin_dir.as_deref())?;
    let mut ca = workdir.open_ca(args, backend, database_url)?;
    let setup = population::setup(&mut ca, &workdir.dir, args.population, backend)?;

    let mut services = Services::start(&bin_dir, workdir)?;
    let ready = services.wait_ready(&mut ca, 2 * args.population)?;
    eprintln!(
        "services: ocsp-responder on {}, crl-server on {}, pki-scheduler on {}; ready after {ready:.1} s more",
        services.ocsp.addr, services.crl.addr, services.scheduler.addr
    );
    let services_start = services.started(ready);

    let mut results = Vec::new();
    for wave in args.scenario.waves() {
        results.push(wave::run_wave(
            args,
            &workdir.crl_dir,
            &mut ca,
            &mut services,
            wave,
        )?);
    }

    let stops = services.stop()?;
    let audit_ok = pki_store::audit::verify(&mut ca.db).is_ok();
    Ok(json!({
        "bench": "lifecycle",
        "backend": backend,
        "population_per_wave": args.population,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "requests_cron": args.requests_cron,
        "sla_cron": args.sla_cron,
        "crl_publisher": "defaults (debounce 10s / max-delay 45s; complete 60s / 5m)",
        "setup": setup,
        "services": services_start,
        "waves": results,
        "stopped": stops,
        "audit_chain_verified": audit_ok,
        "bench_process_peak_rss_mib": memory_mib("self").map(|m| m.0),
        "dir": workdir.dir.display().to_string(),
    }))
}
