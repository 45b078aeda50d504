//! Cards: identity cards of nationals and residence cards of residents,
//! registered one by one or in bulk. A card's kind must match its holder's
//! registration authority; card numbers are unique.

use chrono::NaiveDate;
use diesel::prelude::*;
use pki_store::domain::AuditAction;
use pki_store::domain::CardKind;
use pki_store::error::{CaError, Result};
use pki_store::input::{self, FieldReader, Format, Problems};
use pki_store::storage::models::{CardRow, IdentityRow};
use pki_store::storage::schema::cards;
use pki_store::storage::Db;
use pki_store::with_conn;
use pki_store::Context;
use std::collections::HashSet;
use std::path::Path;

pub const FIELDS: &[&str] = &[
    "card_number",
    "kind",
    "holder_key",
    "issue_date",
    "expiry_date",
];

/// A card as an operator declares it.
#[derive(Debug, Clone)]
pub struct NewCard {
    pub card_number: String,
    pub kind: CardKind,
    pub holder_key: String,
    pub issue_date: NaiveDate,
    pub expiry_date: NaiveDate,
}

/// Checks a card number's form: 4 to 32 characters, A-Z, 0-9 and '-'.
pub fn check_card_number(n: &str) -> std::result::Result<(), String> {
    let ok = (4..=32).contains(&n.len())
        && n.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{n:?} is not a card number (4 to 32 characters: A-Z, 0-9, -)"
        ))
    }
}

/// The card's checks, each with the field it is about: its kind against
/// its holder's registration authority, and its dates.
fn check_card(
    card: &NewCard,
    holder: &IdentityRow,
) -> std::result::Result<(), (&'static str, CaError)> {
    crate::eligibility::check_card_matches_holder(card.kind, holder).map_err(|e| ("kind", e))?;
    check_dates(card).map_err(|e| ("expiry_date", e))
}

/// The card's dates: it expires after it is issued.
pub fn check_dates(card: &NewCard) -> Result<()> {
    if card.expiry_date <= card.issue_date {
        return Err(CaError::Field {
            field: "expiry_date".into(),
            message: format!(
                "{} is not after the issue date {}",
                card.expiry_date, card.issue_date
            ),
        });
    }
    Ok(())
}

/// Reads one card; every problem of the line goes to `p`.
fn parse_card(r: &FieldReader<'_>, p: &mut Problems) -> Option<NewCard> {
    for e in r.unknown(FIELDS) {
        p.add(e);
    }
    let card_number = p.take(r.required("card_number").and_then(|n| {
        check_card_number(&n)
            .map(|()| n)
            .map_err(|m| r.error("card_number", m))
    }));
    let kind = p.take(r.parsed("kind"));
    let holder_key = p.take(r.required("holder_key"));
    let issue_date = p.take(r.date("issue_date"));
    let expiry_date = p.take(r.date("expiry_date"));
    Some(NewCard {
        card_number: card_number?,
        kind: kind?,
        holder_key: holder_key?,
        issue_date: issue_date?,
        expiry_date: expiry_date?,
    })
}

/// A refusal of one card of a list, with its position in the list and the
/// field it is about.
struct Refusal {
    index: usize,
    field: &'static str,
    error: CaError,
}

/// Checks and inserts cards inside a write transaction. Every refused card
/// is reported (none is inserted then).
fn register_in(
    tx: &mut pki_store::storage::WriteTx<'_>,
    new_cards: &[NewCard],
    source: &str,
) -> std::result::Result<usize, Vec<Refusal>> {
    let whole = |error: CaError| {
        vec![Refusal {
            index: usize::MAX,
            field: "",
            error,
        }]
    };
    let holders: HashSet<String> = new_cards.iter().map(|c| c.holder_key.clone()).collect();
    let holders = pki_store::lookup::identities(tx.db, &holders).map_err(whole)?;
    let numbers: Vec<String> = new_cards.iter().map(|c| c.card_number.clone()).collect();
    let existing = existing_numbers(tx.db, &numbers).map_err(whole)?;
    let mut seen = HashSet::new();
    let mut rows = Vec::with_capacity(new_cards.len());
    let mut refusals = Vec::new();
    for (index, card) in new_cards.iter().enumerate() {
        let refuse = |field, error| Refusal {
            index,
            field,
            error,
        };
        if existing.contains(&card.card_number) || !seen.insert(card.card_number.clone()) {
            refusals.push(refuse(
                "card_number",
                CaError::DuplicateCard(card.card_number.clone()),
            ));
            continue;
        }
        let Some(holder) = holders.get(&card.holder_key) else {
            refusals.push(refuse(
                "holder_key",
                CaError::UnknownIdentity(card.holder_key.clone()),
            ));
            continue;
        };
        if let Err((field, e)) = check_card(card, holder) {
            refusals.push(refuse(field, e));
            continue;
        }
        rows.push(CardRow {
            card_number: card.card_number.clone(),
            kind: card.kind,
            holder_key: card.holder_key.clone(),
            issue_date: card.issue_date,
            expiry_date: card.expiry_date,
            registered_at: tx.at(),
        });
        tx.audit(
            AuditAction::CardRegister,
            &card.card_number,
            serde_json::json!({"kind": card.kind, "holder": card.holder_key,
                               "issue_date": card.issue_date, "expiry_date": card.expiry_date, "source": source}),
        );
    }
    if !refusals.is_empty() {
        return Err(refusals);
    }
    for chunk in rows.chunks(500) {
        with_conn!(tx.db, c => diesel::insert_into(cards::table).values(chunk).execute(c))
            .map_err(|e| whole(e.into()))?;
    }
    Ok(rows.len())
}

/// Registers cards; all of them or none. The first refusal is the error.
pub fn register(ca: &mut Context, new_cards: &[NewCard], source: &str) -> Result<usize> {
    let now = ca.clock.now();
    let actor = ca.actor.clone();
    ca.db.write(&actor, now, |tx| {
        register_in(tx, new_cards, source).map_err(|mut r| r.remove(0).error)
    })
}

/// Registers the cards of a CSV or JSONL file; all or nothing. Every
/// problem of the file is reported (up to [`input::MAX_REPORTED`]), each
/// naming its line and field.
pub fn import(ca: &mut Context, path: &Path, format: Format) -> Result<usize> {
    let file = path.display().to_string();
    let mut problems = Problems::new(file.clone());
    let records = input::read_records(path, format, &mut problems)?;
    let mut lines = Vec::with_capacity(records.len());
    let mut cards = Vec::with_capacity(records.len());
    for record in &records {
        let reader = FieldReader {
            file: &file,
            record,
        };
        if let Some(card) = parse_card(&reader, &mut problems) {
            cards.push(card);
            lines.push(record.line);
        }
    }
    // The checks against the database run even when some lines were bad,
    // so that one run reports everything; nothing is written either way.
    let now = ca.clock.now();
    let actor = ca.actor.clone();
    let bad_lines = !problems.is_empty();
    let outcome = ca.db.write(&actor, now, |tx| {
        match register_in(tx, &cards, &file) {
            Ok(n) if !bad_lines => Ok(n),
            // Some lines were bad: roll back.
            Ok(_) => Err(Refused::Cards(Vec::new())),
            Err(refusals) => Err(Refused::Cards(refusals)),
        }
    });
    let refusals = match outcome {
        Ok(n) => return Ok(n),
        Err(Refused::Store(e)) => return Err(e.into()),
        Err(Refused::Cards(refusals)) => refusals,
    };
    for r in refusals {
        let Some(line) = lines.get(r.index) else {
            return Err(r.error);
        };
        // The field is named once, by the line's prefix.
        let message = match r.error {
            CaError::Field { message, .. } => message,
            other => other.to_string(),
        };
        problems.push(*line, r.field, message);
    }
    problems.finish()?;
    Err(CaError::Field {
        field: "(file)".into(),
        message: "the import was refused".into(),
    })
}

/// Why a card import's transaction was rolled back.
enum Refused {
    /// Cards refused (none when only the file's lines were bad).
    Cards(Vec<Refusal>),
    Store(pki_store::storage::StorageError),
}

impl From<pki_store::storage::StorageError> for Refused {
    fn from(e: pki_store::storage::StorageError) -> Self {
        Refused::Store(e)
    }
}

fn existing_numbers(db: &mut Db, numbers: &[String]) -> Result<HashSet<String>> {
    let mut out = HashSet::new();
    for chunk in numbers.chunks(500) {
        let found: Vec<String> = with_conn!(db, c => cards::table
            .filter(cards::card_number.eq_any(chunk))
            .select(cards::card_number)
            .load(c))?;
        out.extend(found);
    }
    Ok(out)
}
