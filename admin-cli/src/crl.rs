//! `pki-admin crl show|fetch`: the current CRLs as the CRL publisher
//! recorded them (table `crls`), read back from the files it wrote, from a
//! mirror directory, or over HTTP (`--from`), and checked against the
//! issuer's key before they are shown or saved.

use ca_core::Ca;
use clap::Subcommand;
use crl_publisher::fetch::{self, pem, Source};
use crl_publisher::scan;
use crl_publisher::state::Record;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum CrlCommand {
    /// The current CRLs: scope, number, dates, entries, URL and file.
    Show {
        /// Only this issuer (the root's name: its ARL).
        #[arg(long)]
        issuer: Option<String>,
        /// Only this partition.
        #[arg(long)]
        partition: Option<u32>,
        /// Also list each CRL's entries (read and signature-checked).
        #[arg(long)]
        entries: bool,
        /// The CRLs themselves, PEM (read and signature-checked).
        #[arg(long, conflicts_with_all = ["entries", "json"])]
        pem: bool,
        /// JSON array of the publication records (with the entries if --entries).
        #[arg(long)]
        json: bool,
        /// Read the CRLs from a directory (a mirror) or an http:// base URL
        /// instead of the files the publisher recorded.
        #[arg(long)]
        from: Option<String>,
    },
    /// Save the current CRLs into a directory (DER, or PEM with --pem),
    /// each checked against its issuer's key.
    Fetch {
        /// Directory to write into (created if needed).
        #[arg(long, default_value = ".")]
        out: PathBuf,
        #[arg(long)]
        issuer: Option<String>,
        #[arg(long)]
        partition: Option<u32>,
        /// Complete CRLs and the ARL only.
        #[arg(long)]
        no_delta: bool,
        /// Write PEM (`.pem` files) instead of DER (`.crl`).
        #[arg(long)]
        pem: bool,
        /// Read from a directory (a mirror) or an http:// base URL.
        #[arg(long)]
        from: Option<String>,
    },
}

fn source(from: Option<&str>) -> Source {
    match from {
        None => Source::Recorded,
        Some(s) if s.starts_with("http://") => Source::Http(s.to_string()),
        Some(dir) => Source::Dir(PathBuf::from(dir)),
    }
}

fn select(
    ca: &mut Ca,
    issuer: Option<&str>,
    partition: Option<u32>,
) -> anyhow::Result<Vec<Record>> {
    let mut records = fetch::current(ca, issuer)?;
    if let Some(p) = partition {
        records.retain(|r| r.crl_partition as u32 == p);
    }
    Ok(records)
}

fn kind_label(ca: &mut Ca, r: &Record) -> anyhow::Result<&'static str> {
    let root = pki_store::authorities::find(&mut ca.db, &r.issuer)?
        .parent
        .is_none();
    Ok(if root {
        "arl"
    } else if fetch::is_delta(r) {
        "delta"
    } else {
        "complete"
    })
}

fn time(t: &chrono::NaiveDateTime) -> String {
    t.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn file_name(r: &Record) -> &str {
    r.url.rsplit('/').next().unwrap_or(&r.url)
}

/// The entries of a CRL as JSON values.
fn entries_of(der: &[u8]) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut out = Vec::new();
    let mut each = |e: &[u8]| -> crl_publisher::Result<()> {
        let e = scan::parse_entry(e)?;
        out.push(json!({
            "serial": e.serial_hex(),
            "revocation_date": e.revocation_date.to_rfc3339(),
            "reason": e.reason.map(scan::reason_name),
            "invalidity_date": e.invalidity_date.map(|t| t.to_rfc3339()),
        }));
        Ok(())
    };
    scan::scan(der, Some(&mut each))?;
    Ok(out)
}

pub fn run(ca: &mut Ca, cmd: CrlCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CrlCommand::Show {
            issuer,
            partition,
            entries,
            pem: as_pem,
            json: as_json,
            from,
        } => {
            let records = select(ca, issuer.as_deref(), partition)?;
            let src = source(from.as_deref());
            if records.is_empty() {
                if as_json {
                    outln!("[]");
                } else {
                    outln!("no CRL published yet (run crl-publisher)");
                }
                return Ok(ExitCode::SUCCESS);
            }
            let mut shown = Vec::new();
            for r in &records {
                let kind = kind_label(ca, r)?;
                let der = if entries || as_pem {
                    Some(fetch::read(ca, r, &src)?)
                } else {
                    None
                };
                if as_pem {
                    out!("{}", pem(der.as_deref().unwrap_or_default()));
                    continue;
                }
                let list = match &der {
                    Some(d) if entries => Some(entries_of(d)?),
                    _ => None,
                };
                if as_json {
                    let mut v = serde_json::to_value(r)?;
                    v["kind"] = json!(kind);
                    v["this_update"] = json!(time(&r.this_update));
                    v["next_update"] = json!(time(&r.next_update));
                    v["published_at"] = json!(time(&r.published_at));
                    if let Some(list) = list {
                        v["revoked"] = json!(list);
                    }
                    shown.push(v);
                } else {
                    let number = format!(
                        "number {}{}",
                        r.number,
                        r.base_number
                            .map(|b| format!(" (base {b})"))
                            .unwrap_or_default()
                    );
                    outln!(
                        "{:<20} partition {:<3} {:<8} {:<20} {:>8} entries  this update {}  next update {}\n    {}  ({})",
                        r.issuer,
                        r.crl_partition,
                        kind,
                        number,
                        r.entries,
                        time(&r.this_update),
                        time(&r.next_update),
                        r.url,
                        r.location
                    );
                    for e in list.unwrap_or_default() {
                        outln!(
                            "      {}  {}  {}{}",
                            e["serial"].as_str().unwrap_or(""),
                            e["revocation_date"].as_str().unwrap_or(""),
                            e["reason"].as_str().unwrap_or("(no reason code)"),
                            e["invalidity_date"]
                                .as_str()
                                .map(|t| format!(", invalid since {t}"))
                                .unwrap_or_default()
                        );
                    }
                }
            }
            if as_json {
                outln!("{}", serde_json::to_string_pretty(&shown)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        CrlCommand::Fetch {
            out,
            issuer,
            partition,
            no_delta,
            pem: as_pem,
            from,
        } => {
            let mut records = select(ca, issuer.as_deref(), partition)?;
            if no_delta {
                records.retain(|r| !fetch::is_delta(r));
            }
            anyhow::ensure!(
                !records.is_empty(),
                "no CRL published yet (run crl-publisher)"
            );
            let src = source(from.as_deref());
            std::fs::create_dir_all(&out)?;
            for r in &records {
                let der = fetch::read(ca, r, &src)?;
                let (name, bytes) = if as_pem {
                    let stem = file_name(r).trim_end_matches(".crl");
                    (format!("{stem}.pem"), pem(&der).into_bytes())
                } else {
                    (file_name(r).to_string(), der)
                };
                let path = out.join(&name);
                crl_publisher::publish::write_atomic(&path, &bytes)?;
                outln!(
                    "saved {} (CRL number {}, {} entries, signature verified)",
                    path.display(),
                    r.number,
                    r.entries
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
