//! Batch issuance for the card personalisation bureau. A manifest is JSON
//! Lines (`card`, `usage`, and `csr` inline or `csr_file`); the batch is
//! identified by the manifest's SHA-256, every issued line is recorded with
//! its certificate in the same transaction as the certificate, so a batch
//! killed at any point and run again finishes the rest and issues nothing
//! twice.

use crate::ca::Ca;
use crate::issuance::{self, ChunkOptions, Claims, IssueInput, Issuers, MintedChunk, Outcome};
use diesel::prelude::*;
use pki_store::domain::AuditAction;
use pki_store::domain::CardKind;
use pki_store::domain::Usage;
use pki_store::error::{CaError, Result};
use pki_store::storage::db_time;
use pki_store::storage::models::{BatchEntryRow, BatchRow};
use pki_store::storage::schema::{issuance_batch_entries, issuance_batches};
use pki_store::{certificates, with_conn};
use std::collections::HashMap;
use std::path::Path;

/// The result of one manifest line.
#[derive(Debug)]
pub struct EntryResult {
    pub line: usize,
    pub card: String,
    pub usage: String,
    pub outcome: Outcome,
}

/// Totals of a run.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct BatchSummary {
    pub batch_id: String,
    pub entries: usize,
    pub issued: usize,
    pub already_issued: usize,
    pub rejected: usize,
}

struct Line {
    line: usize,
    card: String,
    usage: String,
    parsed: std::result::Result<IssueInput, CaError>,
}

fn parse_line(dir: &Path, file: &str, line: usize, raw: &str) -> Line {
    let value: std::result::Result<serde_json::Value, _> = serde_json::from_str(raw);
    let field = |v: &serde_json::Value, k: &str| {
        v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string()
    };
    // `card` (as `--card` and the result lines); `card_number`, the card
    // file's column name, is accepted too.
    let card_of = |v: &serde_json::Value| match field(v, "card") {
        c if c.is_empty() => field(v, "card_number"),
        c => c,
    };
    let (card, usage) = match &value {
        Ok(v) => (card_of(v), field(v, "usage")),
        Err(_) => (String::new(), String::new()),
    };
    let err = |f: &str, message: String| CaError::Input {
        file: file.to_string(),
        line,
        field: f.to_string(),
        message,
    };
    let parsed = (|| {
        let v = value.map_err(|e| err("(line)", format!("not a JSON object: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| err("(line)", "not a JSON object".into()))?;
        if let Some(k) = obj
            .keys()
            .find(|k| !["card", "card_number", "usage", "csr", "csr_file"].contains(&k.as_str()))
        {
            return Err(err(
                k,
                "unknown field (expected card, usage, csr or csr_file)".into(),
            ));
        }
        if obj.contains_key("card") && obj.contains_key("card_number") {
            return Err(err(
                "card",
                "give card or card_number (the same field), not both".into(),
            ));
        }
        if card.is_empty() {
            return Err(err("card", "is required".into()));
        }
        let usage: Usage = usage.parse().map_err(|m| err("usage", m))?;
        let csr = match (
            obj.get("csr").and_then(|c| c.as_str()),
            obj.get("csr_file").and_then(|c| c.as_str()),
        ) {
            (Some(pem), None) => pem.as_bytes().to_vec(),
            (None, Some(path)) => {
                let p = dir.join(path);
                std::fs::read(&p)
                    .map_err(|e| err("csr_file", format!("cannot read {}: {e}", p.display())))?
            }
            _ => {
                return Err(err(
                    "csr",
                    "give exactly one of csr (PEM) or csr_file".into(),
                ))
            }
        };
        Ok(IssueInput {
            line,
            card_number: card.clone(),
            usage,
            csr,
        })
    })();
    Line {
        line,
        card,
        usage: usage.clone(),
        parsed,
    }
}

fn start_batch(ca: &mut Ca, id: &str, source: &str, entries: usize) -> Result<()> {
    let existing: Option<BatchRow> = with_conn!(&mut ca.db, c => issuance_batches::table
        .find(id)
        .select(BatchRow::as_select())
        .first(c)
        .optional())?;
    if existing.is_some() {
        return Ok(());
    }
    let now = ca.clock.now();
    let actor = ca.actor.clone();
    let row = BatchRow {
        id: id.to_string(),
        source: source.to_string(),
        entries: entries as i64,
        started_at: db_time(now),
        finished_at: None,
    };
    ca.db.write(&actor, now, |tx| {
        with_conn!(tx.db, c => diesel::insert_into(issuance_batches::table).values(&row).execute(c))?;
        tx.audit(
            AuditAction::BatchStart,
            id,
            serde_json::json!({"source": source, "entries": entries}),
        );
        Ok::<_, CaError>(())
    })
}

fn done_entries(ca: &mut Ca, id: &str) -> Result<HashMap<usize, String>> {
    let rows: Vec<BatchEntryRow> = with_conn!(&mut ca.db, c => issuance_batch_entries::table
        .filter(issuance_batch_entries::batch_id.eq(id))
        .select(BatchEntryRow::as_select())
        .load(c))?;
    Ok(rows
        .into_iter()
        .map(|r| (r.line_no as usize, r.certificate_serial))
        .collect())
}

/// A manifest line on its way through the pipeline: its result is known
/// already (done in an earlier run, unreadable) or comes with its chunk.
struct Head {
    line: usize,
    card: String,
    usage: String,
    ready: Option<Outcome>,
}

fn emit(
    heads: Vec<Head>,
    results: Vec<(IssueInput, Outcome)>,
    total: usize,
    summary: &mut BatchSummary,
    report: &mut impl FnMut(EntryResult, usize),
) {
    let mut results: HashMap<usize, Outcome> =
        results.into_iter().map(|(i, o)| (i.line, o)).collect();
    for head in heads {
        let outcome = head
            .ready
            .or_else(|| results.remove(&head.line))
            .unwrap_or_else(|| {
                Outcome::Rejected(CaError::Field {
                    field: "batch".into(),
                    message: "entry was not processed".into(),
                })
            });
        match &outcome {
            Outcome::Issued(_) => summary.issued += 1,
            Outcome::AlreadyIssued(_) => summary.already_issued += 1,
            Outcome::Rejected(_) => summary.rejected += 1,
        }
        report(
            EntryResult {
                line: head.line,
                card: head.card,
                usage: head.usage,
                outcome,
            },
            total,
        );
    }
}

/// Runs (or resumes) a batch; `report` is called once per manifest line,
/// in order, as soon as its chunk is committed. Signing of one chunk runs
/// while the previous chunk is being stored.
pub fn run(
    ca: &mut Ca,
    manifest: &Path,
    mut report: impl FnMut(EntryResult, usize),
) -> Result<BatchSummary> {
    let file = manifest.display().to_string();
    let bytes = std::fs::read(manifest).map_err(|source| CaError::ReadFile {
        path: file.clone(),
        source,
    })?;
    let batch_id = pki_x509::sha256_hex(&bytes);
    let text = String::from_utf8(bytes).map_err(|e| CaError::Input {
        file: file.clone(),
        line: 0,
        field: "(file)".into(),
        message: format!("not UTF-8 text: {e}"),
    })?;
    ca.keys.require_passphrase()?;
    let dir = manifest.parent().unwrap_or(Path::new(".")).to_path_buf();
    let lines: Vec<Line> = text
        .lines()
        .enumerate()
        .filter(|(_, raw)| !raw.trim().is_empty())
        .map(|(i, raw)| parse_line(&dir, &file, i + 1, raw))
        .collect();
    let issuers = Issuers::load(ca, CardKind::ALL)?;
    start_batch(ca, &batch_id, &file, lines.len())?;
    let done = done_entries(ca, &batch_id)?;
    let total = lines.len();
    let mut summary = BatchSummary {
        batch_id: batch_id.clone(),
        entries: total,
        ..Default::default()
    };
    let options = ChunkOptions {
        batch_id: Some(&batch_id),
        same_key_is_done: true,
    };
    let mut claims = Claims::new();
    let mut in_flight: Option<(Vec<Head>, MintedChunk)> = None;
    for chunk in lines.chunks(ca.config.issuance.batch_chunk) {
        let done_serials: Vec<String> = chunk
            .iter()
            .filter_map(|l| done.get(&l.line).cloned())
            .collect();
        let mut done_rows = certificates::find_many(&mut ca.db, &done_serials)?;
        let mut heads = Vec::with_capacity(chunk.len());
        let mut inputs = Vec::new();
        for l in chunk {
            let ready = if let Some(serial) = done.get(&l.line) {
                if let Ok(input) = &l.parsed {
                    claims.insert((input.card_number.clone(), input.usage), l.line);
                }
                Some(match done_rows.remove(serial) {
                    Some(row) => Outcome::AlreadyIssued(row),
                    None => Outcome::Rejected(CaError::UnknownCertificate(serial.clone())),
                })
            } else {
                match &l.parsed {
                    Ok(input) => {
                        inputs.push(input.clone());
                        None
                    }
                    Err(e) => Some(Outcome::Rejected(copy_error(e))),
                }
            };
            heads.push(Head {
                line: l.line,
                card: l.card.clone(),
                usage: l.usage.clone(),
                ready,
            });
        }
        let planned = issuance::plan_chunk(ca, &issuers, inputs, &mut claims)?;
        let ctx = &mut ca.context;
        let (db, config, actor) = (&mut ctx.db, &ctx.config, ctx.actor.as_str());
        let (committed, minted) = rayon::join(
            || {
                in_flight
                    .take()
                    .map(|(heads, m)| (heads, issuance::commit_chunk(db, actor, m, options)))
            },
            || issuance::mint_chunk(config, &issuers, planned, options),
        );
        if let Some((heads, results)) = committed {
            emit(heads, results, total, &mut summary, &mut report);
        }
        in_flight = Some((heads, minted));
    }
    if let Some((heads, minted)) = in_flight.take() {
        let results =
            issuance::commit_chunk(&mut ca.context.db, &ca.context.actor, minted, options);
        emit(heads, results, total, &mut summary, &mut report);
    }
    let now = ca.clock.now();
    let actor = ca.actor.clone();
    let finished = summary.clone();
    ca.db.write(&actor, now, |tx| {
        with_conn!(tx.db, c => diesel::update(issuance_batches::table.find(&batch_id))
            .set(issuance_batches::finished_at.eq(Some(db_time(now))))
            .execute(c))?;
        tx.audit(
            AuditAction::BatchFinish,
            &batch_id,
            serde_json::to_value(&finished).unwrap_or_default(),
        );
        Ok::<_, CaError>(())
    })?;
    Ok(summary)
}

/// Manifest errors are reported on every run; they are plain data.
fn copy_error(e: &CaError) -> CaError {
    match e {
        CaError::Input {
            file,
            line,
            field,
            message,
        } => CaError::Input {
            file: file.clone(),
            line: *line,
            field: field.clone(),
            message: message.clone(),
        },
        other => CaError::Field {
            field: "(line)".into(),
            message: other.to_string(),
        },
    }
}
