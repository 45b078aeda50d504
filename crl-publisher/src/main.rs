//! `crl-publisher`: the CRL signer of the national eID CA. It has no
//! listener: it writes the CRLs and the CA certificates into the
//! publication directory, which `crl-server` (no key) serves over HTTP.
//!
//! ```text
//! crl-publisher [OPTIONS] run       # publish everything, then follow changes and the schedule
//! crl-publisher [OPTIONS] publish   # publish once (all scopes, or --issuer/--partition) and exit
//! ```
//!
//! `run` prints `crl-publisher: published, following changes` on stdout once
//! every CRL has been published; SIGINT or SIGTERM stop it after the job
//! under way, exit 0 (a kill cut short leaves the old file whole and skips
//! at most a CRL number).
//!
//! `pki.toml` (`--config`, env `PKI_CONFIG`, else `./pki.toml` when present)
//! gives the database, the keys (passphrase from `PKI_CA_PASSPHRASE` or
//! `keys.passphrase_file`), the URLs and `[crl] partitions`. Everything else
//! is a flag (or environment variable), see `--help` and
//! `crl-publisher/README.md`. Time comes from the injected clock
//! (`PKI_FAKE_NOW` for tests).
//!
//! Test hook (test builds only, see `pki_store::test_hooks`): with
//! `CRL_PUBLISHER_TEST_CRASH_AFTER_SIGN=1` the process aborts right after
//! signing its first CRL, before storing it (the crash test of the CRL
//! numbering). Release binaries ignore it.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use crl_publisher::catalog::Catalog;
use crl_publisher::generate::Published;
use crl_publisher::schedule::{parse_duration, Schedule};
use crl_publisher::service::Service;
use crl_publisher::{Publisher, Scope, Settings};
use pki_store::config::Config;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "crl-publisher",
    version,
    about = "Publish the CRLs of the national eID CA (complete, delta, partitioned, and the root's ARL)"
)]
struct Cli {
    /// Configuration file (default: ./pki.toml when present, else built-in defaults).
    #[arg(long, global = true, env = "PKI_CONFIG")]
    config: Option<PathBuf>,
    /// Who is recorded in the audit log.
    #[arg(
        long,
        global = true,
        env = "PKI_ACTOR",
        default_value = "crl-publisher"
    )]
    actor: String,
    /// Log level of the publisher's own lines (error, warn, info, debug).
    #[arg(long, global = true, env = "CRL_LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Publication directory (default: <data_dir>/crl).
    #[arg(long, global = true, env = "CRL_OUT_DIR")]
    out_dir: Option<PathBuf>,
    /// nextUpdate - thisUpdate of end-entity CRLs (at most 24h).
    #[arg(long, global = true, env = "CRL_VALIDITY", default_value = "24h")]
    validity: String,
    /// nextUpdate - thisUpdate of delta CRLs.
    #[arg(long, global = true, env = "CRL_DELTA_VALIDITY", default_value = "1h")]
    delta_validity: String,
    /// nextUpdate - thisUpdate of the root's ARL (at most 365d).
    #[arg(long, global = true, env = "CRL_ARL_VALIDITY", default_value = "30d")]
    arl_validity: String,
    /// Publish no delta CRLs (and no freshestCRL pointer).
    #[arg(long, global = true)]
    no_delta: bool,
    /// Certificates read per database page.
    #[arg(long, global = true, default_value_t = 20_000)]
    page_size: i64,
    /// Database connections reading a large CRL in parallel (default: the
    /// number of cores, at most 4).
    #[arg(long, global = true, env = "CRL_READ_THREADS")]
    read_threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Publish every CRL, then keep them current (no listener: `crl-server` serves them).
    Run(RunArgs),
    /// Publish once and exit.
    Publish(PublishArgs),
}

#[derive(Args)]
struct RunArgs {
    /// When complete CRLs are regenerated: a 6-field cron expression (seconds
    /// first, UTC) or an interval such as 6h (at most six hours apart).
    #[arg(long, env = "CRL_SCHEDULE", default_value = "0 0 */6 * * *")]
    schedule: String,
    /// Delta CRLs are also regenerated this often.
    #[arg(long, env = "CRL_DELTA_INTERVAL", default_value = "15m")]
    delta_interval: String,
    /// A delta CRL follows a status change after this much quiet...
    #[arg(long, env = "CRL_DEBOUNCE", default_value = "10s")]
    debounce: String,
    /// ...and at most this long after the first change.
    #[arg(long, env = "CRL_MAX_DELAY", default_value = "45s")]
    max_delay: String,
    /// The touched partition's complete CRL follows after this much quiet...
    #[arg(long, env = "CRL_COMPLETE_DEBOUNCE", default_value = "60s")]
    complete_debounce: String,
    /// ...and at most this long after the first change.
    #[arg(long, env = "CRL_COMPLETE_MAX_DELAY", default_value = "5m")]
    complete_max_delay: String,
    /// How often the change feed is read.
    #[arg(long, env = "CRL_POLL", default_value = "2s")]
    poll: String,
}

#[derive(Args)]
struct PublishArgs {
    /// Only this issuer (repeatable; the root's name publishes its ARL).
    #[arg(long)]
    issuer: Vec<String>,
    /// Only this partition.
    #[arg(long)]
    partition: Option<u32>,
    /// Only delta CRLs (a scope without a complete CRL yet gets one).
    #[arg(long, conflicts_with = "complete_only")]
    delta_only: bool,
    /// Only complete CRLs (no new delta).
    #[arg(long)]
    complete_only: bool,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

fn duration(flag: &str, value: &str) -> anyhow::Result<chrono::Duration> {
    parse_duration(value).with_context(|| format!("--{flag}"))
}

fn settings(cli: &Cli, config: &Config) -> anyhow::Result<Settings> {
    let mut s = Settings::new(
        cli.out_dir
            .clone()
            .unwrap_or_else(|| config.data_dir.join("crl")),
    );
    s.validity = duration("validity", &cli.validity)?;
    s.delta_validity = duration("delta-validity", &cli.delta_validity)?;
    s.arl_validity = duration("arl-validity", &cli.arl_validity)?;
    s.deltas = !cli.no_delta;
    s.page_size = cli.page_size;
    if let Some(n) = cli.read_threads {
        s.read_threads = n;
    }
    s.crash_after_sign = pki_store::test_hooks::crash_after_sign();
    if let Command::Run(r) = &cli.command {
        s.schedule = Schedule::parse(&r.schedule).context("--schedule")?;
        s.delta_interval = duration("delta-interval", &r.delta_interval)?;
        s.debounce = duration("debounce", &r.debounce)?;
        s.max_delay = duration("max-delay", &r.max_delay)?;
        s.complete_debounce = duration("complete-debounce", &r.complete_debounce)?;
        s.complete_max_delay = duration("complete-max-delay", &r.complete_max_delay)?;
        s.poll = duration("poll", &r.poll)?;
    }
    Ok(s)
}

fn report(p: &Published, json: bool) {
    if json {
        let v = match p {
            Published::Done(p) => serde_json::json!({
                "outcome": "published",
                "issuer": p.scope.issuer, "partition": p.scope.partition,
                "kind": if p.scope.arl { "arl" } else { p.scope.kind.as_str() },
                "number": p.record.number, "base_number": p.record.base_number,
                "entries": p.record.entries, "size_bytes": p.record.size_bytes,
                "this_update": p.record.this_update.and_utc().to_rfc3339(),
                "next_update": p.record.next_update.and_utc().to_rfc3339(),
                "url": p.record.url, "file": p.record.location, "sha256": p.record.sha256,
                "generation_seconds": p.generation.as_secs_f64(),
                "seconds": p.total.as_secs_f64(),
            }),
            Published::Superseded { scope, number, by } => serde_json::json!({
                "outcome": "superseded",
                "issuer": scope.issuer, "partition": scope.partition,
                "kind": if scope.arl { "arl" } else { scope.kind.as_str() },
                "number": number, "superseded_by": by,
            }),
        };
        println!("{v}");
    } else {
        match p {
            Published::Done(p) => println!(
                "published {} number {}{}: {} entries, {} bytes, next update {} -> {}",
                p.scope,
                p.record.number,
                p.record
                    .base_number
                    .map(|b| format!(" (base {b})"))
                    .unwrap_or_default(),
                p.record.entries,
                p.record.size_bytes,
                p.record.next_update.and_utc().to_rfc3339(),
                p.record.location
            ),
            Published::Superseded { scope, number, by } => {
                println!("dropped {scope} number {number}: number {by} was already published")
            }
        }
    }
    let _ = std::io::stdout().flush();
}

fn publish_once(mut publisher: Publisher, args: &PublishArgs) -> anyhow::Result<ExitCode> {
    for issuer in &args.issuer {
        publisher.authority(issuer)?;
    }
    publisher.publish_certificates()?;
    let scopes: Vec<Scope> = publisher
        .scopes()
        .into_iter()
        .filter(|s| args.issuer.is_empty() || args.issuer.contains(&s.issuer))
        .filter(|s| args.partition.is_none_or(|p| p == s.partition))
        .collect();
    if scopes.is_empty() {
        anyhow::bail!("no CRL matches --issuer/--partition");
    }
    for scope in scopes {
        let published = if args.complete_only {
            let g = publisher.generate_complete(&scope)?;
            vec![publisher.publish(g)?]
        } else if args.delta_only {
            if scope.arl {
                continue;
            }
            publisher.publish_delta(&scope)?
        } else {
            publisher.publish_complete(&scope)?
        };
        for p in &published {
            report(p, args.json);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn follow(publisher: Publisher) -> anyhow::Result<ExitCode> {
    log::info!(
        "publishing into {} ({} partition(s) per issuing CA, complete CRLs {}, deltas {})",
        publisher.settings.out_dir.display(),
        publisher.ca.config.crl.partitions,
        publisher.settings.schedule,
        if publisher.settings.deltas {
            "on"
        } else {
            "off"
        }
    );
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())
            .context("installing the SIGINT/SIGTERM handlers")?;
    }
    let service = Service::start(publisher, Catalog::new())?;
    println!("crl-publisher: published, following changes");
    let _ = std::io::stdout().flush();
    service.run(stop);
    log::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    pki_store::logging::init(&cli.log_level, &["crl_publisher"]).map_err(anyhow::Error::msg)?;
    let config = Config::resolve(cli.config.as_deref())?;
    let settings = settings(&cli, &config)?;
    let clock = pki_store::clock::from_env().map_err(anyhow::Error::msg)?;
    let url = pki_store::storage::redact(&config.database_url());
    let keys = pki_keys::KeyStore::new(&config, pki_store::config::KeyPurpose::Ca);
    let ca = pki_store::Context::open(config, clock, &cli.actor)
        .with_context(|| format!("opening the database at {url}"))?;
    let publisher = Publisher::open(ca, keys, settings)?;
    match &cli.command {
        Command::Publish(args) => publish_once(publisher, args),
        Command::Run(_) => follow(publisher),
    }
}

fn main() -> ExitCode {
    // Keys, passphrase files, the SQLite database, CRLs: the owner's alone.
    pki_store::files::restrict_umask();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
