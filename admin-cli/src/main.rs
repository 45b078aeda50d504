//! `pki-admin`: the command line of the bureau's operators and the registry
//! officers. It parses arguments, opens the CA context and prints results;
//! every rule lives in `ca-core`. Reference: `docs/CLI.md`; how the crates
//! fit together: `docs/ARCHITECTURE.md`.
//!
//! ## Module map (one job per module)
//!
//! | module | job |
//! | --- | --- |
//! | `main.rs` | the argument tree, configuration and CA context (`Ca::open`: the schema must exist and be the one this program knows), dispatch, error printing |
//! | `commands` | argument types and handlers of `init`, `ca`, `ocsp`, `registry`, `card`, `issue`, `issue-batch`, `revoke`, `suspend`, `resume`, `cert` |
//! | `audit` | `audit verify`, `list`, `checkpoint`, `prove`, `consistency`, and `check-proof` (offline: no database) |
//! | `lifecycle` | `activate`, `renew`, `registry event` / `registry events`, `sla` |
//! | `database` | `migrate` (the only command that changes the schema) and `db roles` / `db status` |
//! | `ceremony` | `ceremony FILE [--dry-run]`: a key ceremony (offline root, issuing CAs, responders) with its transcript |
//! | `crl` | `crl show` / `crl fetch`: the current CRLs read back and checked (through `crl_publisher::fetch`) |
//! | `reminders` | `reminders list` / `reminders postal`: the outbox `pki-scheduler` fills |
//! | `demo` | `demo`: demo CA, sample registry and cards, a bureau batch, activation |
//! | `run` | `run`: the demo set-up, then `ocsp-responder`, `crl-publisher` and `pki-scheduler` as child processes |
//! | `handover` | `run` re-executes itself without its passphrase variables and receives them on a pipe |
//! | `output` | how certificates and authorities are shown (JSON, PEM, text) |
//! | `stdout` | `outln!` / `out!`: writing to stdout without panicking on a closed pipe |

#[macro_use]
mod stdout;
mod audit;
mod ceremony;
mod commands;
mod crl;
mod database;
mod demo;
mod handover;
mod keys;
mod lifecycle;
mod output;
mod paths;
mod reminders;
mod run;
mod worker;

use anyhow::Context;
use clap::{Parser, Subcommand};
use pki_store::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "pki-admin",
    version,
    about = "Operate the national eID certificate authority"
)]
struct Cli {
    /// Configuration file (default: ./pki.toml when present, else built-in defaults).
    #[arg(long, global = true, env = "PKI_CONFIG")]
    config: Option<PathBuf>,
    /// Who is acting, as recorded in the audit log (default: $USER).
    #[arg(long, global = true, env = "PKI_ACTOR")]
    actor: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the database if needed and bring its schema up to date (the only command that changes the schema).
    Migrate,
    /// The database: the components' PostgreSQL roles, the schema version.
    Db {
        #[command(subcommand)]
        command: database::DbCommand,
    },
    /// A key ceremony from its declarative file: the offline root, issuing CAs, responders, with a transcript.
    Ceremony(ceremony::CeremonyArgs),
    /// Create the hierarchy: root CA, issuing CAs and their OCSP responder certificates.
    Init,
    /// The certificate authorities.
    Ca {
        #[command(subcommand)]
        command: commands::CaCommand,
    },
    /// Certificate revocation lists: show or save the current CRLs.
    Crl {
        #[command(subcommand)]
        command: crl::CrlCommand,
    },
    /// OCSP responder certificates.
    Ocsp {
        #[command(subcommand)]
        command: commands::OcspCommand,
    },
    /// Identities of the national registry.
    Registry {
        #[command(subcommand)]
        command: commands::RegistryCommand,
    },
    /// Identity and residence cards.
    Card {
        #[command(subcommand)]
        command: commands::CardCommand,
    },
    /// Issue one card certificate from a PKCS#10 request.
    Issue(commands::IssueArgs),
    /// Issue a bureau batch (JSON Lines manifest); resumable.
    IssueBatch(commands::BatchArgs),
    /// Revoke certificates (final), by serial or every live certificate of a card.
    Revoke(commands::RevokeArgs),
    /// Suspend certificates (certificateHold), by serial or card.
    Suspend(commands::StatusArgs),
    /// Resume suspended certificates, by serial or card.
    Resume(commands::StatusArgs),
    /// Release a card's certificates held pending activation (adult, not protected, active identity, valid card).
    Activate(lifecycle::ActivateArgs),
    /// Renew a card certificate from a new CSR; the previous one is superseded.
    Renew(lifecycle::RenewArgs),
    /// The revocation commitment: every request, its times against 5 minutes and 24 hours.
    Sla(lifecycle::SlaArgs),
    /// Certificates.
    Cert {
        #[command(subcommand)]
        command: commands::CertCommand,
    },
    /// Expiry reminders: the outbox and the postal list.
    Reminders {
        #[command(subcommand)]
        command: reminders::RemindersCommand,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Blocked keys: never certified again (by hand, or revoked for keyCompromise).
    Key {
        #[command(subcommand)]
        command: keys::KeyCommand,
    },
    /// The CA-side jobs that need keys (OCSP responder rotation), with no network listener.
    Worker(worker::WorkerArgs),
    /// Try the system: a demo CA, a sample registry, a batch of card certificates.
    Demo(demo::DemoArgs),
    /// The whole system: the demo CA, then the OCSP responder, the CRL publisher and the scheduler until Ctrl-C.
    Run(run::RunArgs),
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // The offline proof checker reads no configuration and no database.
    if let Command::Audit {
        command: audit::AuditCommand::CheckProof(args),
    } = &cli.command
    {
        return audit::check_proof(args);
    }
    let config = Config::resolve(cli.config.as_deref())?;
    let actor = cli
        .actor
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "operator".into());
    let clock = pki_store::clock::from_env().map_err(anyhow::Error::msg)?;
    if let Command::Demo(args) = &cli.command {
        return demo::run(config, clock, &actor, args);
    }
    if let Command::Worker(args) = &cli.command {
        return worker::run(config, clock, &actor, args);
    }
    if let Command::Run(args) = &cli.command {
        return run::run(config, cli.config.as_deref(), clock, &actor, args);
    }
    let command = match cli.command {
        Command::Migrate => return database::migrate(&config).map(|()| ExitCode::SUCCESS),
        Command::Db { command } => {
            return database::run(&config, command).map(|()| ExitCode::SUCCESS)
        }
        other => other,
    };
    let url = pki_store::storage::redact(&config.database_url());
    let mut ca = ca_core::Ca::open(config, clock, &actor)
        .with_context(|| format!("opening the CA at {url}"))?;
    match command {
        Command::Init => commands::init(&mut ca),
        Command::Ceremony(args) => ceremony::run(&mut ca, args),
        Command::Ca { command } => commands::ca(&mut ca, command),
        Command::Ocsp { command } => commands::ocsp(&mut ca, command),
        Command::Crl { command } => crl::run(&mut ca, command),
        Command::Registry { command } => commands::registry(&mut ca, command),
        Command::Card { command } => commands::card(&mut ca, command),
        Command::Issue(args) => commands::issue(&mut ca, args),
        Command::IssueBatch(args) => commands::issue_batch(&mut ca, args),
        Command::Revoke(args) => commands::revoke(&mut ca, args),
        Command::Suspend(args) => commands::change_status(&mut ca, args, false),
        Command::Resume(args) => commands::change_status(&mut ca, args, true),
        Command::Cert { command } => commands::cert(&mut ca, command),
        Command::Key { command } => keys::run(&mut ca, command),
        Command::Activate(args) => lifecycle::activate(&mut ca, args),
        Command::Renew(args) => lifecycle::renew(&mut ca, args),
        Command::Sla(args) => lifecycle::sla_report(&mut ca, args),
        Command::Audit { command } => audit::run(&mut ca, command),
        Command::Reminders { command } => reminders::run(&mut ca, command),
        Command::Demo(_)
        | Command::Run(_)
        | Command::Worker(_)
        | Command::Migrate
        | Command::Db { .. } => unreachable!("handled above"),
    }
}

/// The error and its causes on one line, leaving out a cause whose text
/// the message already contains (library errors often quote their source).
fn error_chain(e: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

fn main() -> ExitCode {
    // Keys, passphrase files, the SQLite database, CRLs: the owner's alone.
    pki_store::files::restrict_umask();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) if stdout::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(1)
        }
    }
}
