//! The subcommands: argument types and their handlers.

use crate::output::{cert_json, cert_text, print_json};
use anyhow::Context;
use ca_core::batch::EntryResult;
use ca_core::issuance::{IssueInput, Outcome};
use ca_core::{hierarchy, issuance, Ca};
use clap::{Args, Subcommand};
use pki_registration::lifecycle::{Scope, Transition};
use pki_registration::revocation;
use pki_registration::{cards, registry};
use pki_store::domain::{CardKind, Usage};
use pki_store::domain::{Reason, SuspensionCause};
use pki_store::input::{parse_date, Format};
use pki_store::{authorities, certificates};
use pki_x509::cert_pem;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum CaCommand {
    /// List the CAs with their certificates and OCSP responder certificates.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum OcspCommand {
    /// Issue new responder certificates; the old ones stay valid until they expire.
    Rotate {
        /// Only this authority (default: every authority).
        #[arg(long)]
        authority: Option<String>,
        /// Only responders whose newest certificate expires within this many days.
        #[arg(long)]
        if_expiring_within: Option<i64>,
    },
}

#[derive(Subcommand)]
pub enum RegistryCommand {
    /// Import identities from a registry extract (CSV or JSON Lines); all or nothing.
    Import {
        file: PathBuf,
        /// csv or jsonl (default: from the file extension).
        #[arg(long)]
        format: Option<String>,
    },
    /// Show one identity.
    Show {
        key: String,
        #[arg(long)]
        json: bool,
    },
    /// Record one registry event (loss, theft, end of residency, death...) and execute what is due.
    Event(crate::lifecycle::EventArgs),
    /// Record a JSON Lines feed of registry events (replay-safe) and execute what is due.
    Events(crate::lifecycle::EventsArgs),
}

#[derive(Subcommand)]
pub enum CardCommand {
    /// Register one card.
    Add {
        #[arg(long)]
        number: String,
        #[arg(long)]
        kind: CardKindArg,
        /// Registry key of the holder.
        #[arg(long)]
        holder: String,
        /// Issue date, YYYY-MM-DD.
        #[arg(long)]
        issued: String,
        /// Expiry date, YYYY-MM-DD.
        #[arg(long)]
        expires: String,
    },
    /// Register cards from a CSV or JSON Lines file; all or nothing.
    Import {
        file: PathBuf,
        #[arg(long)]
        format: Option<String>,
    },
    /// Show a card and its certificates.
    Show {
        number: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum CardKindArg {
    Identity,
    Residence,
}

#[derive(Args)]
pub struct IssueArgs {
    /// Card number.
    #[arg(long)]
    card: String,
    /// auth, sign or mobile-auth.
    #[arg(long)]
    usage: Usage,
    /// PKCS#10 request, PEM or DER.
    #[arg(long)]
    csr: PathBuf,
    /// Print a JSON object instead of PEM.
    #[arg(long)]
    json: bool,
    /// Write the output to this file instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
pub struct BatchArgs {
    /// JSON Lines manifest: {"card", "usage", "csr" | "csr_file"} per line.
    manifest: PathBuf,
    /// Write the result lines to this file instead of stdout.
    #[arg(long)]
    results: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
}

#[derive(Args)]
#[group(required = true, multiple = false, id = "target")]
pub struct TargetArgs {
    /// One certificate, by serial (hex).
    #[arg(long, group = "target")]
    serial: Option<String>,
    /// Every live certificate of this card.
    #[arg(long, group = "target")]
    card: Option<String>,
}

impl TargetArgs {
    fn scope(&self) -> Scope {
        match (&self.serial, &self.card) {
            (Some(s), _) => Scope::Serial(s.clone()),
            (None, Some(c)) => Scope::Card(c.clone()),
            (None, None) => unreachable!("clap requires one of --serial, --card"),
        }
    }
}

#[derive(Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// keyCompromise, cACompromise, affiliationChanged, superseded,
    /// cessationOfOperation, privilegeWithdrawn, or unspecified (no reason code).
    #[arg(long)]
    reason: String,
    /// Since when the key is known to be unusable: YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC).
    #[arg(long)]
    invalidity_date: Option<String>,
}

#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// For a suspension: since when the key is known to be unusable (UTC).
    #[arg(long)]
    invalidity_date: Option<String>,
}

#[derive(Subcommand)]
pub enum CertCommand {
    /// Show one certificate.
    Show {
        serial: String,
        #[arg(long, conflicts_with = "pem")]
        json: bool,
        #[arg(long)]
        pem: bool,
    },
    /// List certificates (newest first).
    List {
        #[arg(long)]
        card: Option<String>,
        /// At most this many (the newest); a note on stderr says when more exist.
        #[arg(long, default_value_t = 1000)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
}

pub fn init(ca: &mut Ca) -> anyhow::Result<ExitCode> {
    let created = hierarchy::init(ca)?;
    outln!(
        "initialised the CA hierarchy ({} database):",
        ca.db.backend()
    );
    for c in created {
        outln!(
            "  {:<34} {:<15} serial {}  until {}",
            c.name,
            c.profile,
            c.serial,
            c.not_after
        );
    }
    // The hierarchy is committed: a file that cannot be written is only
    // reported (the certificates are also in `ca list --json`).
    match write_ca_certificates(ca) {
        Ok((dir, names)) => outln!(
            "CA certificates in {}: {}",
            dir.display(),
            names
                .iter()
                .map(|n| format!("{n}.pem"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Err(e) => eprintln!("warning: the CA certificates were not written as files: {e:#}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes every CA certificate as `<data_dir>/ca/<name>.pem` (what `openssl
/// ocsp -issuer/-CAfile` and `openssl verify` are given); returns the
/// directory and the names.
pub fn write_ca_certificates(ca: &mut Ca) -> anyhow::Result<(PathBuf, Vec<String>)> {
    let dir = ca.config.data_dir.join("ca");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut names = Vec::new();
    for a in authorities::list(&mut ca.db)? {
        let cert = certificates::find(&mut ca.db, &a.certificate_serial)?;
        let path = dir.join(format!("{}.pem", a.name));
        std::fs::write(&path, cert_pem(&cert.der))
            .with_context(|| format!("writing {}", path.display()))?;
        names.push(a.name);
    }
    Ok((dir, names))
}

pub fn ca(ca: &mut Ca, command: CaCommand) -> anyhow::Result<ExitCode> {
    let CaCommand::List { json } = command;
    let rows = authorities::list(&mut ca.db)?;
    if rows.is_empty() {
        anyhow::bail!(pki_store::CaError::NotInitialised);
    }
    let mut out = Vec::new();
    for a in rows {
        let cert = certificates::find(&mut ca.db, &a.certificate_serial)?;
        let responder = match authorities::current_responder(&mut ca.db, &a.name)? {
            Some(r) => {
                let rc = certificates::find(&mut ca.db, &r.certificate_serial)?;
                json!({"serial": rc.serial, "subject": rc.subject, "not_after": cert_json(&rc)["not_after"],
                       "certificate_pem": cert_pem(&rc.der)})
            }
            None => serde_json::Value::Null,
        };
        let mut v = cert_json(&cert);
        v["name"] = json!(a.name);
        v["ocsp_responder"] = responder;
        out.push(v);
    }
    if json {
        print_json(&json!(out));
    } else {
        for v in &out {
            outln!(
                "{:<20} {:<12} serial {}  until {}\n  {}\n  OCSP responder serial {}  until {}",
                v["name"].as_str().unwrap_or(""),
                v["profile"].as_str().unwrap_or(""),
                v["serial"].as_str().unwrap_or(""),
                v["not_after"].as_str().unwrap_or(""),
                v["subject"].as_str().unwrap_or(""),
                v["ocsp_responder"]["serial"].as_str().unwrap_or("-"),
                v["ocsp_responder"]["not_after"].as_str().unwrap_or("-"),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line per authority of a responder rotation.
pub fn report_rotation(rotation: &hierarchy::Rotation, days: i64) {
    match rotation {
        hierarchy::Rotation::Kept { authority } => {
            outln!("{authority}: responder certificate valid beyond {days} days, kept")
        }
        hierarchy::Rotation::Offline { authority } => {
            outln!("{authority}: key kept offline, its responder certificate is renewed in a key ceremony")
        }
        hierarchy::Rotation::Rotated { authority, created } => outln!(
            "{}: new responder certificate {} until {}",
            authority,
            created.serial,
            created.not_after
        ),
    }
}

pub fn ocsp(ca: &mut Ca, command: OcspCommand) -> anyhow::Result<ExitCode> {
    let OcspCommand::Rotate {
        authority: only,
        if_expiring_within,
    } = command;
    let within = if_expiring_within.map(chrono::Duration::days);
    for rotation in hierarchy::rotate_responders(ca, only.as_deref(), within)? {
        report_rotation(&rotation, if_expiring_within.unwrap_or(0));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn registry(ca: &mut Ca, command: RegistryCommand) -> anyhow::Result<ExitCode> {
    match command {
        RegistryCommand::Import { file, format } => {
            let format = Format::detect(&file, format.as_deref())?;
            let s = registry::import(ca, &file, format)?;
            outln!(
                "imported {} identities ({} created, {} updated, {} unchanged)",
                s.total,
                s.created,
                s.updated,
                s.unchanged
            );
            if s.status_events > 0 {
                let done =
                    pki_registration::requests::execute_due(ca, crate::lifecycle::EXECUTE_LIMIT)
                        .context("executing the requests of the status changes")?;
                outln!(
                    "{} status changes recorded as registry events: {} requests executed, {} certificates changed",
                    s.status_events, done.executed, done.certificates
                );
            }
        }
        RegistryCommand::Event(args) => return crate::lifecycle::event(ca, args),
        RegistryCommand::Events(args) => return crate::lifecycle::events_feed(ca, args),
        RegistryCommand::Show { key, json } => {
            let row = pki_store::lookup::identity(&mut ca.db, &key)?;
            let v = json!({
                "registry_key": row.registry_key, "family_name": row.family_name, "given_names": row.given_names,
                "birth_name": row.birth_name, "birth_datetime": row.birth_datetime.format("%Y-%m-%dT%H:%M:%S").to_string(),
                "birth_place": row.birth_place, "gender": row.gender, "authority": row.authority,
                "status": row.status, "protected_adult": row.protected_adult, "email": row.email, "mobile": row.mobile,
            });
            if json {
                print_json(&v);
            } else if let Some(map) = v.as_object() {
                for (k, val) in map {
                    outln!(
                        "{k:<16} {}",
                        val.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| val.to_string())
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn card(ca: &mut Ca, command: CardCommand) -> anyhow::Result<ExitCode> {
    match command {
        CardCommand::Add {
            number,
            kind,
            holder,
            issued,
            expires,
        } => {
            cards::check_card_number(&number).map_err(|m| anyhow::anyhow!("--number: {m}"))?;
            let card = cards::NewCard {
                card_number: number.clone(),
                kind: match kind {
                    CardKindArg::Identity => CardKind::Identity,
                    CardKindArg::Residence => CardKind::Residence,
                },
                holder_key: holder,
                issue_date: parse_date(&issued).map_err(|m| anyhow::anyhow!("--issued: {m}"))?,
                expiry_date: parse_date(&expires).map_err(|m| anyhow::anyhow!("--expires: {m}"))?,
            };
            // The same rule as every card file, reported against the flag.
            cards::check_dates(&card).map_err(|e| match e {
                pki_store::CaError::Field { message, .. } => {
                    anyhow::anyhow!("--expires: {message}")
                }
                other => other.into(),
            })?;
            cards::register(ca, &[card], "pki-admin card add")?;
            outln!("registered card {number}");
        }
        CardCommand::Import { file, format } => {
            let format = Format::detect(&file, format.as_deref())?;
            let n = cards::import(ca, &file, format)?;
            outln!("registered {n} cards");
        }
        CardCommand::Show { number, json } => {
            let card = pki_store::lookup::card(&mut ca.db, &number)?;
            let certs = certificates::list(&mut ca.db, Some(&number), 1000)?;
            let v = json!({
                "card_number": card.card_number, "kind": card.kind, "holder_key": card.holder_key,
                "issue_date": card.issue_date.to_string(), "expiry_date": card.expiry_date.to_string(),
                "certificates": certs.iter().map(|c| json!({"serial": c.serial, "usage": c.usage, "status": c.status,
                    "not_after": cert_json(c)["not_after"]})).collect::<Vec<_>>(),
            });
            if json {
                print_json(&v);
            } else {
                outln!(
                    "card {} ({}) of {}, issued {}, expires {}",
                    card.card_number,
                    card.kind,
                    card.holder_key,
                    card.issue_date,
                    card.expiry_date
                );
                for c in &certs {
                    outln!(
                        "  {:<12} {:<10} serial {}  until {}",
                        c.usage.map_or("-", |u| u.as_str()),
                        c.status,
                        c.serial,
                        c.not_after
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_output(out: Option<&PathBuf>, text: &str) -> anyhow::Result<()> {
    match out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
        }
        None => {
            out!("{text}");
            Ok(())
        }
    }
}

pub fn issue(ca: &mut Ca, args: IssueArgs) -> anyhow::Result<ExitCode> {
    let csr = std::fs::read(&args.csr)
        .with_context(|| format!("cannot read CSR file {}", args.csr.display()))?;
    let row = issuance::issue_one(
        ca,
        IssueInput {
            line: 1,
            card_number: args.card,
            usage: args.usage,
            csr,
        },
    )?;
    let chain = issuance::chain_der(ca, &row.issuer)?;
    let text = if args.json {
        let mut v = cert_json(&row);
        v["chain_pem"] = json!(chain.iter().map(|d| cert_pem(d)).collect::<Vec<_>>());
        format!("{}\n", serde_json::to_string_pretty(&v)?)
    } else {
        format!("{}{}", cert_pem(&row.der), cert_pem(&chain[0]))
    };
    write_output(args.out.as_ref(), &text)?;
    eprintln!(
        "issued {} certificate {} for card {}",
        row.usage.map_or("", |u| u.as_str()),
        row.serial,
        row.card_number.as_deref().unwrap_or("")
    );
    Ok(ExitCode::SUCCESS)
}

/// One result line of a batch.
pub fn entry_json(r: &EntryResult) -> serde_json::Value {
    let (outcome, row, error) = match &r.outcome {
        Outcome::Issued(row) => ("issued", Some(row), None),
        Outcome::AlreadyIssued(row) => ("already-issued", Some(row), None),
        Outcome::Rejected(e) => ("rejected", None, Some(e.to_string())),
    };
    json!({
        "line": r.line, "card": r.card, "usage": r.usage, "outcome": outcome,
        "serial": row.map(|r| r.serial.clone()),
        "certificate_pem": row.map(|r| cert_pem(&r.der)),
        "error": error,
    })
}

pub fn issue_batch(ca: &mut Ca, args: BatchArgs) -> anyhow::Result<ExitCode> {
    let mut sink: Box<dyn Write> = match &args.results {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let bar = indicatif::ProgressBar::new(0);
    if args.no_progress {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} entries  {per_sec}  eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
    }
    let mut write_error = None;
    let summary = ca_core::batch::run(ca, &args.manifest, |result, total| {
        bar.set_length(total as u64);
        bar.inc(1);
        let line = entry_json(&result).to_string();
        if let Err(e) = writeln!(sink, "{line}").and_then(|_| sink.flush()) {
            write_error.get_or_insert(e);
        }
    })?;
    bar.finish_and_clear();
    if let Some(e) = write_error {
        return Err(e).context("writing results");
    }
    eprintln!(
        "batch {}: {} entries, {} issued, {} already issued, {} rejected",
        &summary.batch_id[..16],
        summary.entries,
        summary.issued,
        summary.already_issued,
        summary.rejected
    );
    Ok(if summary.rejected > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn parse_invalidity(arg: Option<&str>) -> anyhow::Result<Option<chrono::NaiveDateTime>> {
    arg.map(|s| {
        pki_store::input::parse_invalidity(s).map_err(|m| anyhow::anyhow!("--invalidity-date: {m}"))
    })
    .transpose()
}

fn report_changes(rows: &[pki_store::storage::models::CertificateRow], verb: &str) {
    for r in rows {
        outln!(
            "{verb} {} ({} {} of card {}): now {}{}",
            r.serial,
            r.issuer,
            r.usage.map_or(r.kind.as_str(), |u| u.as_str()),
            r.card_number.as_deref().unwrap_or("-"),
            r.status,
            r.revocation_reason
                .map(|x| format!(", reason {x}"))
                .unwrap_or_default()
        );
    }
}

pub fn revoke(ca: &mut Ca, args: RevokeArgs) -> anyhow::Result<ExitCode> {
    let reason = Reason::from_input(&args.reason).map_err(|m| anyhow::anyhow!("--reason: {m}"))?;
    let invalidity = parse_invalidity(args.invalidity_date.as_deref())?;
    let rows = revocation::apply(
        ca,
        &args.target.scope(),
        Transition::Revoke(reason),
        invalidity,
    )?;
    report_changes(&rows, "revoked");
    Ok(ExitCode::SUCCESS)
}

/// An officer's suspension or release (cause `officer`).
pub fn change_status(ca: &mut Ca, args: StatusArgs, resume: bool) -> anyhow::Result<ExitCode> {
    let invalidity = parse_invalidity(args.invalidity_date.as_deref())?;
    let (change, verb) = if resume {
        (Transition::Resume(SuspensionCause::Officer), "resumed")
    } else {
        (Transition::Suspend(SuspensionCause::Officer), "suspended")
    };
    let rows = revocation::apply(ca, &args.target.scope(), change, invalidity)?;
    report_changes(&rows, verb);
    Ok(ExitCode::SUCCESS)
}

pub fn cert(ca: &mut Ca, command: CertCommand) -> anyhow::Result<ExitCode> {
    match command {
        CertCommand::Show { serial, json, pem } => {
            let row = certificates::find(&mut ca.db, &serial)?;
            if json {
                print_json(&cert_json(&row));
            } else if pem {
                out!("{}", cert_pem(&row.der));
            } else {
                out!("{}", cert_text(&row));
            }
        }
        CertCommand::List { card, limit, json } => {
            let mut rows =
                certificates::list(&mut ca.db, card.as_deref(), limit.saturating_add(1))?;
            if rows.len() as i64 > limit {
                rows.truncate(limit as usize);
                eprintln!(
                    "note: showing the newest {limit} certificates; more exist (use --limit)"
                );
            }
            if json {
                print_json(&json!(rows.iter().map(cert_json).collect::<Vec<_>>()));
            } else {
                for r in &rows {
                    outln!(
                        "{}  {:<14} {:<11} {:<8} {:<14} {}",
                        r.serial,
                        r.kind,
                        r.usage.map_or("-", |u| u.as_str()),
                        r.status,
                        r.card_number.as_deref().unwrap_or("-"),
                        r.subject
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
