//! Cards: identity cards of nationals and residence cards of residents,
//! registered one by one or in bulk. A card's kind must match its holder's
//! registration authority; card numbers are unique.

use chrono::NaiveDate;
use diesel::prelude::*;
use pki_store::domain::AuditAction;
use pki_store::domain::CardKind;
use pki_store::error::{CaError, Result};
use pki_store::input::{self, FieldReader, Format};
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

fn parse_card(r: &FieldReader<'_>) -> Result<NewCard> {
    r.only(FIELDS)?;
    let card_number = r.required("card_number")?;
    check_card_number(&card_number).map_err(|m| r.error("card_number", m))?;
    Ok(NewCard {
        card_number,
        kind: r.parsed("kind")?,
        holder_key: r.required("holder_key")?,
        issue_date: r.date("issue_date")?,
        expiry_date: r.date("expiry_date")?,
    })
}

/// A refusal of one card of a list, with its position in the list and the
/// field it is about.
struct Refusal {
    index: usize,
    field: &'static str,
    error: CaError,
}

/// Checks and inserts cards inside a write transaction.
fn register_in(
    tx: &mut pki_store::storage::WriteTx<'_>,
    new_cards: &[NewCard],
    source: &str,
) -> std::result::Result<usize, Refusal> {
    let whole = |error: CaError| Refusal {
        index: usize::MAX,
        field: "",
        error,
    };
    let holders: HashSet<String> = new_cards.iter().map(|c| c.holder_key.clone()).collect();
    let holders = pki_store::lookup::identities(tx.db, &holders).map_err(whole)?;
    let numbers: Vec<String> = new_cards.iter().map(|c| c.card_number.clone()).collect();
    let existing = existing_numbers(tx.db, &numbers).map_err(whole)?;
    let mut seen = HashSet::new();
    let mut rows = Vec::with_capacity(new_cards.len());
    for (index, card) in new_cards.iter().enumerate() {
        let refuse = |field, error| Refusal {
            index,
            field,
            error,
        };
        if existing.contains(&card.card_number) || !seen.insert(card.card_number.clone()) {
            return Err(refuse(
                "card_number",
                CaError::DuplicateCard(card.card_number.clone()),
            ));
        }
        let holder = holders.get(&card.holder_key).ok_or_else(|| {
            refuse(
                "holder_key",
                CaError::UnknownIdentity(card.holder_key.clone()),
            )
        })?;
        check_card(card, holder).map_err(|(field, e)| refuse(field, e))?;
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
    for chunk in rows.chunks(500) {
        with_conn!(tx.db, c => diesel::insert_into(cards::table).values(chunk).execute(c))
            .map_err(|e| whole(e.into()))?;
    }
    Ok(rows.len())
}

/// Registers cards; all of them or none.
pub fn register(ca: &mut Context, new_cards: &[NewCard], source: &str) -> Result<usize> {
    let now = ca.clock.now();
    let actor = ca.actor.clone();
    ca.db.write(&actor, now, |tx| {
        register_in(tx, new_cards, source).map_err(|r| r.error)
    })
}

/// Registers the cards of a CSV or JSONL file; all or nothing. Errors name
/// the line and the field.
pub fn import(ca: &mut Context, path: &Path, format: Format) -> Result<usize> {
    let file = path.display().to_string();
    let records = input::read_records(path, format)?;
    let mut lines = Vec::with_capacity(records.len());
    let mut cards = Vec::with_capacity(records.len());
    for record in &records {
        let reader = FieldReader {
            file: &file,
            record,
        };
        cards.push(parse_card(&reader)?);
        lines.push(record.line);
    }
    let now = ca.clock.now();
    let actor = ca.actor.clone();
    ca.db.write(&actor, now, |tx| {
        register_in(tx, &cards, &file).map_err(|r| match lines.get(r.index) {
            Some(line) => CaError::Input {
                file: file.clone(),
                line: *line,
                field: r.field.to_string(),
                // The field is named once, by the line's prefix.
                message: match r.error {
                    CaError::Field { message, .. } => message,
                    other => other.to_string(),
                },
            },
            None => r.error,
        })
    })
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
