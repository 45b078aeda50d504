//! The certificate store: every certificate this CA signed, with what it
//! certifies (card, usage, holder), its status and its DER.

use crate::domain::{CertStatus, Usage};
use crate::error::{CaError, Result};
use crate::storage::models::CertificateRow;
use crate::storage::schema::certificates;
use crate::storage::Db;
use crate::with_conn;
use diesel::prelude::*;
use std::collections::{HashMap, HashSet};

/// One certificate by serial (lower-case hex).
pub fn find(db: &mut Db, serial: &str) -> Result<CertificateRow> {
    let serial = serial.to_ascii_lowercase();
    with_conn!(db, c => certificates::table.find(&serial).select(CertificateRow::as_select()).first(c).optional())?
        .ok_or(CaError::UnknownCertificate(serial))
}

/// Certificates by serial.
pub fn find_many(db: &mut Db, serials: &[String]) -> Result<HashMap<String, CertificateRow>> {
    let mut out = HashMap::new();
    for chunk in serials.chunks(500) {
        let rows: Vec<CertificateRow> = with_conn!(db, c => certificates::table
            .filter(certificates::serial.eq_any(chunk))
            .select(CertificateRow::as_select())
            .load(c))?;
        out.extend(rows.into_iter().map(|r| (r.serial.clone(), r)));
    }
    Ok(out)
}

/// The live certificates of some cards, keyed by (card, usage).
pub fn live_for_cards(
    db: &mut Db,
    cards: &HashSet<String>,
) -> Result<HashMap<(String, Usage), CertificateRow>> {
    let cards: Vec<String> = cards.iter().cloned().collect();
    let mut out = HashMap::new();
    for chunk in cards.chunks(500) {
        let rows: Vec<CertificateRow> = with_conn!(db, c => certificates::table
            .filter(certificates::card_number.eq_any(chunk))
            .filter(certificates::status.eq_any(CertStatus::LIVE))
            .select(CertificateRow::as_select())
            .load(c))?;
        for r in rows {
            if let (Some(card), Some(usage)) = (r.card_number.clone(), r.usage) {
                out.insert((card, usage), r);
            }
        }
    }
    Ok(out)
}

/// Certificates, optionally of one card, newest first.
pub fn list(db: &mut Db, card: Option<&str>, limit: i64) -> Result<Vec<CertificateRow>> {
    let rows = match card {
        Some(card) => with_conn!(db, c => certificates::table
            .filter(certificates::card_number.eq(card))
            .order((certificates::issued_at.desc(), certificates::serial))
            .limit(limit)
            .select(CertificateRow::as_select())
            .load(c)),
        None => with_conn!(db, c => certificates::table
            .order((certificates::issued_at.desc(), certificates::serial))
            .limit(limit)
            .select(CertificateRow::as_select())
            .load(c)),
    }?;
    Ok(rows)
}

/// Certificates of one issuer in serial order, after `after` (keyset
/// pagination: constant cost per page whatever the population).
pub fn page_for_issuer(
    db: &mut Db,
    issuer: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<CertificateRow>> {
    let rows = with_conn!(db, c => certificates::table
        .filter(certificates::issuer.eq(issuer))
        .filter(certificates::serial.gt(after))
        .order(certificates::serial)
        .limit(limit)
        .select(CertificateRow::as_select())
        .load(c))?;
    Ok(rows)
}

/// Inserts certificates (inside a write transaction).
pub fn insert(db: &mut Db, rows: &[CertificateRow]) -> Result<()> {
    for chunk in rows.chunks(400) {
        with_conn!(db, c => diesel::insert_into(certificates::table).values(chunk).execute(c))?;
    }
    Ok(())
}
