//! Reading identities and cards by key: the registry's and the cards'
//! rows as every rule needs them (issuance, the state machine, requests,
//! renewal). Only reads; the writes are `registry` (imports) and `cards`
//! (registration), which sit above the lifecycle logic.

use crate::error::{CaError, Result};
use crate::storage::models::{CardRow, IdentityRow};
use crate::storage::schema::{cards, identities};
use crate::storage::Db;
use crate::with_conn;
use diesel::prelude::*;
use std::collections::{HashMap, HashSet};

/// One identity by registry key.
pub fn identity(db: &mut Db, key: &str) -> Result<IdentityRow> {
    with_conn!(db, c => identities::table.find(key).select(IdentityRow::as_select()).first(c).optional())?
        .ok_or_else(|| CaError::UnknownIdentity(key.to_string()))
}

/// Identities by key (the ones that exist).
pub fn identities_by_key(db: &mut Db, keys: &[String]) -> Result<HashMap<String, IdentityRow>> {
    let mut out = HashMap::new();
    for chunk in keys.chunks(500) {
        let rows: Vec<IdentityRow> = with_conn!(db, c => identities::table
            .filter(identities::registry_key.eq_any(chunk))
            .select(IdentityRow::as_select())
            .load(c))?;
        out.extend(rows.into_iter().map(|r| (r.registry_key.clone(), r)));
    }
    Ok(out)
}

/// Identities by key, for bulk checks.
pub fn identities(db: &mut Db, keys: &HashSet<String>) -> Result<HashMap<String, IdentityRow>> {
    let keys: Vec<String> = keys.iter().cloned().collect();
    identities_by_key(db, &keys)
}

/// One card by number.
pub fn card(db: &mut Db, number: &str) -> Result<CardRow> {
    with_conn!(db, c => cards::table.find(number).select(CardRow::as_select()).first(c).optional())?
        .ok_or_else(|| CaError::UnknownCard(number.to_string()))
}

/// Cards by number, for bulk checks.
pub fn cards(db: &mut Db, numbers: &HashSet<String>) -> Result<HashMap<String, CardRow>> {
    let numbers: Vec<String> = numbers.iter().cloned().collect();
    let mut out = HashMap::new();
    for chunk in numbers.chunks(500) {
        let rows: Vec<CardRow> = with_conn!(db, c => cards::table
            .filter(cards::card_number.eq_any(chunk))
            .select(CardRow::as_select())
            .load(c))?;
        out.extend(rows.into_iter().map(|r| (r.card_number.clone(), r)));
    }
    Ok(out)
}
