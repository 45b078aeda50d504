//! The lifecycle commands of the counters, kiosks and registry officers:
//! `activate`, `renew`, `registry event` / `registry events` (the event
//! feed), `requests` and `sla`. Rules live in `ca-core` (lifecycle,
//! renewal, events, requests, sla).

use crate::output::{cert_json, print_json};
use anyhow::Context;
use ca_core::{renewal, Ca};
use clap::Args;
use pki_registration::events::{self, EventKind};
use pki_registration::sla::{self, Verdict};
use pki_registration::{lifecycle, requests};
use pki_store::domain::Usage;
use pki_x509::cert_pem;
use serde_json::{json, Value};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

/// Requests executed per run of `execute_due` from the command line.
pub const EXECUTE_LIMIT: usize = 10_000;

#[derive(Args)]
pub struct ActivateArgs {
    /// The card whose certificates pending activation are released.
    #[arg(long)]
    card: String,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct RenewArgs {
    #[arg(long)]
    card: String,
    #[arg(long)]
    usage: Usage,
    /// The new PKCS#10 request, PEM or DER.
    #[arg(long)]
    csr: PathBuf,
    /// Print a JSON object instead of PEM.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct EventArgs {
    /// The event type (card-lost, card-stolen, phone-lost, holder-request,
    /// residency-ended, nationality-acquired, name-changed, address-changed,
    /// death, identity-suspended, identity-reactivated, identity-inactive,
    /// card-cancelled).
    kind: String,
    #[arg(long)]
    card: Option<String>,
    #[arg(long)]
    holder: Option<String>,
    /// The replacement card (name or address change, new nationality).
    #[arg(long)]
    new_card: Option<String>,
    /// When the effect is due: YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC); default now.
    #[arg(long)]
    effective: Option<String>,
    /// When it was reported (RFC 3339); default now.
    #[arg(long)]
    reported_at: Option<String>,
    /// identity-inactive only: the revocation reason.
    #[arg(long)]
    reason: Option<String>,
    /// Since when the key is known to be unusable (loss, theft):
    /// YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC), as for revoke.
    #[arg(long = "invalidity-date", alias = "invalidity")]
    invalidity_date: Option<String>,
    #[arg(long)]
    note: Option<String>,
    /// The event's id (default: a new one). Recording an id again changes nothing.
    #[arg(long)]
    id: Option<String>,
    /// Record only; leave execution to pki-scheduler.
    #[arg(long)]
    no_execute: bool,
    /// Print a JSON object instead of a line of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct EventsArgs {
    /// JSON Lines: one event object per line (see docs/CLI.md).
    file: PathBuf,
    /// Record only; leave execution to pki-scheduler.
    #[arg(long)]
    no_execute: bool,
    /// Print `{events, recorded, replayed, requests, executed}` as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct SlaArgs {
    /// Only requests received since (YYYY-MM-DD or YYYY-MM-DDTHH:MM, UTC).
    #[arg(long)]
    since: Option<String>,
    #[arg(long, default_value_t = 1000)]
    limit: i64,
    /// One JSON object per request.
    #[arg(long)]
    json: bool,
    /// Exit with status 4 when a request is late or at risk.
    #[arg(long)]
    check: bool,
}

pub fn activate(ca: &mut Ca, args: ActivateArgs) -> anyhow::Result<ExitCode> {
    let rows = lifecycle::activate(ca, &args.card)?;
    if args.json {
        print_json(&json!(rows.iter().map(cert_json).collect::<Vec<_>>()));
    }
    for r in &rows {
        eprintln!(
            "activated {} certificate {} of card {}",
            r.usage.map_or("", |u| u.as_str()),
            r.serial,
            args.card
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn renew(ca: &mut Ca, args: RenewArgs) -> anyhow::Result<ExitCode> {
    let csr = std::fs::read(&args.csr)
        .with_context(|| format!("cannot read CSR file {}", args.csr.display()))?;
    let renewed = renewal::renew(ca, &args.card, args.usage, csr)?;
    if args.json {
        let mut v = cert_json(&renewed.new);
        v["previous"] = cert_json(&renewed.previous);
        print_json(&v);
    } else {
        out!("{}", cert_pem(&renewed.new.der));
    }
    eprintln!(
        "renewed card {}: new certificate {} (until {}), previous {} now {}",
        args.card,
        renewed.new.serial,
        renewed.new.not_after,
        renewed.previous.serial,
        renewed.previous.status
    );
    Ok(ExitCode::SUCCESS)
}

/// The event object a command line describes.
fn event_json(args: &EventArgs) -> anyhow::Result<Value> {
    let kind: EventKind = args.kind.parse().map_err(anyhow::Error::msg)?;
    let id = match &args.id {
        Some(id) => id.clone(),
        None => format!("cli-{}", pki_keys::random_hex(12)?),
    };
    if let Some(d) = &args.invalidity_date {
        pki_store::input::parse_invalidity(d)
            .map_err(|m| anyhow::anyhow!("--invalidity-date: {m}"))?;
    }
    let mut v = json!({"id": id, "type": kind.as_str()});
    // The event's content as recorded (and hashed, to tell a replay from a
    // conflicting reuse of its id): the keys stay those of earlier versions
    // (`invalidity`, which the event parser reads as `invalidity_date`).
    for (key, value) in [
        ("card", &args.card),
        ("holder", &args.holder),
        ("new_card", &args.new_card),
        ("effective", &args.effective),
        ("reported_at", &args.reported_at),
        ("reason", &args.reason),
        ("invalidity", &args.invalidity_date),
        ("note", &args.note),
    ] {
        if let Some(value) = value {
            v[key] = json!(value);
        }
    }
    Ok(v)
}

fn execute(ca: &mut Ca) -> anyhow::Result<requests::ExecuteReport> {
    requests::execute_due(ca, EXECUTE_LIMIT).context("executing the requests that are due")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What the execution after recording did, for people.
fn executed_text(executed: Option<&requests::ExecuteReport>) -> String {
    match executed {
        None => "not executed (--no-execute): pki-scheduler executes them when due".to_string(),
        Some(x) => format!(
            "executed what was due: {}, {} changed{}",
            plural(x.executed, "request", "requests"),
            plural(x.certificates, "certificate", "certificates"),
            if x.armed > 0 {
                format!(", {} armed", plural(x.armed, "request", "requests"))
            } else {
                String::new()
            }
        ),
    }
}

/// `registry event`'s line for people.
fn event_line(
    kind: &str,
    recorded: &requests::Recorded,
    executed: Option<&requests::ExecuteReport>,
) -> String {
    let ids = if recorded.requests.is_empty() {
        String::new()
    } else {
        format!(" ({})", recorded.requests.join(", "))
    };
    let requests = plural(recorded.requests.len(), "request", "requests");
    if recorded.replay {
        return format!(
            "event {} ({kind}) was already recorded with this content, with {requests}{ids}: nothing changed",
            recorded.event
        );
    }
    let done = executed_text(executed);
    format!(
        "recorded event {} ({kind}): {requests}{ids}; {done}",
        recorded.event
    )
}

pub fn event(ca: &mut Ca, args: EventArgs) -> anyhow::Result<ExitCode> {
    let raw = event_json(&args)?;
    let recorded = requests::record(ca, &raw, "pki-admin")?;
    let executed = if args.no_execute || recorded.replay {
        None
    } else {
        Some(execute(ca)?)
    };
    if args.json {
        print_json(&json!({"event": recorded.event, "replay": recorded.replay,
                           "requests": recorded.requests, "executed": executed}));
    } else {
        let kind = raw["type"].as_str().unwrap_or_default();
        outln!("{}", event_line(kind, &recorded, executed.as_ref()));
    }
    Ok(ExitCode::SUCCESS)
}

/// Records a JSON Lines feed: every line is checked first (a bad line
/// stops the run before anything is recorded), then the events are
/// recorded in chunks (a replayed line changes nothing), then what is due
/// is executed.
pub fn events_feed(ca: &mut Ca, args: EventsArgs) -> anyhow::Result<ExitCode> {
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    let now = ca.clock.now();
    let mut checked = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("{}: line {}", args.file.display(), n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}: line {}", args.file.display(), n + 1);
        // A key given twice is refused (serde_json alone keeps the last).
        let raw: Value = pki_store::input::json_object(&line)
            .map_err(anyhow::Error::msg)
            .with_context(at)?;
        let event = requests::parse(&raw)
            .map_err(anyhow::Error::msg)
            .with_context(at)?;
        checked.push((events::check(event, now).with_context(at)?, raw));
    }
    let source = args.file.display().to_string();
    let (mut recorded, mut replayed, mut request_count) = (0, 0, 0);
    for chunk in checked.chunks(500) {
        for r in requests::record_all(ca, chunk, &source)? {
            if r.replay {
                replayed += 1;
            } else {
                recorded += 1;
                request_count += r.requests.len();
            }
        }
    }
    let executed = if args.no_execute {
        None
    } else {
        Some(execute(ca)?)
    };
    if args.json {
        print_json(
            &json!({"events": checked.len(), "recorded": recorded, "replayed": replayed,
                           "requests": request_count, "executed": executed}),
        );
    } else {
        outln!(
            "{source}: {} read, {recorded} recorded with {}, {replayed} already recorded (nothing changed); {}",
            plural(checked.len(), "event", "events"),
            plural(request_count, "request", "requests"),
            executed_text(executed.as_ref())
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn short(t: Option<chrono::NaiveDateTime>) -> String {
    t.map(|t| t.format("%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".into())
}

fn took(s: Option<i64>) -> String {
    match s {
        None => "-".into(),
        Some(s) if s < 120 => format!("{s}s"),
        Some(s) if s < 7200 => format!("{}m", s / 60),
        Some(s) => format!("{}h{:02}", s / 3600, (s % 3600) / 60),
    }
}

pub fn sla_report(ca: &mut Ca, args: SlaArgs) -> anyhow::Result<ExitCode> {
    let since = args
        .since
        .as_deref()
        .map(pki_store::input::parse_invalidity)
        .transpose()
        .map_err(|m| anyhow::anyhow!("--since: {m}"))?;
    let now = ca.clock.now();
    sla::stamp_publications(&mut ca.db)?;
    let lines = sla::report(&mut ca.db, now, since, args.limit)?;
    let summary = sla::summary(&mut ca.db, now)?;
    if args.json {
        for l in &lines {
            outln!("{}", serde_json::to_string(l)?);
        }
    } else {
        // The request ids and event names set their columns' widths.
        let event_of = |l: &sla::SlaLine| -> String {
            l.event_type
                .clone()
                .unwrap_or_else(|| l.change.as_str().to_string())
        };
        let rw = lines
            .iter()
            .map(|l| l.request.chars().count())
            .fold("request".len(), usize::max);
        let ew = lines
            .iter()
            .map(|l| event_of(l).chars().count())
            .fold("event".len(), usize::max);
        outln!(
            "{:<2} {:<rw$} {:<ew$} {:<14} {:<14} {:>5} {:<14} {:>7} {:>7} {:>7}  stage",
            "",
            "request",
            "event",
            "received",
            "due",
            "certs",
            "executed",
            "exec",
            "ocsp",
            "crl"
        );
        for l in &lines {
            let mark = match l.verdict {
                Verdict::Late => "!!",
                Verdict::AtRisk => "! ",
                Verdict::OverTarget => "~ ",
                Verdict::Ok => "  ",
            };
            outln!(
                "{mark} {:<rw$} {:<ew$} {:<14} {:<14} {:>5} {:<14} {:>7} {:>7} {:>7}  {}",
                l.request,
                event_of(l),
                short(Some(l.received_at)),
                short(l.due_at),
                l.certificates.map(|c| c.to_string()).unwrap_or("-".into()),
                short(l.executed_at),
                took(l.to_execute_seconds),
                took(l.to_ocsp_seconds),
                took(l.to_crl_seconds),
                serde_json::to_value(l.stage)?.as_str().unwrap_or("")
            );
        }
        outln!(
            "{} requests: {} pending, {} awaiting publication, {} at risk (past the 5-minute target), {} late (past 24 hours){}",
            summary.total,
            summary.pending,
            summary.unpublished,
            summary.at_risk,
            summary.late,
            if summary.oldest_unfinished_seconds > 0 {
                format!("; oldest unfinished due {} ago", took(Some(summary.oldest_unfinished_seconds)))
            } else {
                String::new()
            }
        );
        outln!("times from due; !! late, ! at risk, ~ finished over the 5-minute target");
    }
    if args.check && (summary.late > 0 || summary.at_risk > 0) {
        return Ok(ExitCode::from(4));
    }
    Ok(ExitCode::SUCCESS)
}
