//! CRL numbers and publication records.
//!
//! [`reserve_number`] takes the next number of an issuer in its own
//! committed write transaction, before anything is signed; nothing ever
//! hands out a number twice or a smaller one. [`Record`]s are the CRLs
//! published (table `crls`); the newest of a scope is its current CRL.

use crate::error::Result;
use crate::scope::Kind;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use pki_store::storage::schema::{crl_numbers, crls};
use pki_store::storage::Db;
use pki_store::with_conn;
use std::collections::BTreeSet;

/// One published CRL.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = crls)]
pub struct Record {
    pub issuer: String,
    pub number: i64,
    pub crl_partition: i32,
    pub kind: String,
    pub base_number: Option<i64>,
    pub this_update: NaiveDateTime,
    pub next_update: NaiveDateTime,
    pub expiry_cutoff: Option<NaiveDateTime>,
    pub feed_position: i64,
    pub entries: i64,
    pub size_bytes: i64,
    pub sha256: String,
    pub url: String,
    pub location: String,
    pub published_at: NaiveDateTime,
}

impl Record {
    pub fn kind(&self) -> Kind {
        Kind::parse(&self.kind).unwrap_or(Kind::Complete)
    }
}

/// Reserves the next CRL number of `issuer` (committed before returning).
pub fn reserve_number(db: &mut Db, actor: &str, now: DateTime<Utc>, issuer: &str) -> Result<i64> {
    db.write(actor, now, |tx| {
        let current: Option<i64> = with_conn!(tx.db, c => crl_numbers::table
            .find(issuer)
            .select(crl_numbers::last_number)
            .first(c)
            .optional())?;
        let next = match current {
            Some(n) => {
                with_conn!(tx.db, c => diesel::update(crl_numbers::table.find(issuer))
                    .set(crl_numbers::last_number.eq(n + 1))
                    .execute(c))?;
                n + 1
            }
            None => {
                with_conn!(tx.db, c => diesel::insert_into(crl_numbers::table)
                    .values((crl_numbers::issuer.eq(issuer), crl_numbers::last_number.eq(1i64)))
                    .execute(c))?;
                1
            }
        };
        Ok(next)
    })
}

/// The last number reserved for `issuer` (0 if none).
pub fn last_reserved(db: &mut Db, issuer: &str) -> Result<i64> {
    Ok(with_conn!(db, c => crl_numbers::table
        .find(issuer)
        .select(crl_numbers::last_number)
        .first(c)
        .optional())?
    .unwrap_or(0))
}

/// The newest CRL published for a scope.
pub fn latest(db: &mut Db, issuer: &str, partition: u32, kind: Kind) -> Result<Option<Record>> {
    let partition = partition as i32;
    Ok(with_conn!(db, c => crls::table
        .filter(crls::issuer.eq(issuer))
        .filter(crls::crl_partition.eq(partition))
        .filter(crls::kind.eq(kind.as_str()))
        .order(crls::number.desc())
        .select(Record::as_select())
        .first(c)
        .optional())?)
}

/// The current CRL of every scope ever published, by issuer, partition, kind.
pub fn current(db: &mut Db) -> Result<Vec<Record>> {
    let heads: Vec<(String, i32, String, Option<i64>)> = with_conn!(db, c => crls::table
        .group_by((crls::issuer, crls::crl_partition, crls::kind))
        .select((crls::issuer, crls::crl_partition, crls::kind, diesel::dsl::max(crls::number)))
        .load(c))?;
    let mut out = Vec::with_capacity(heads.len());
    for (issuer, _, _, number) in heads {
        let Some(number) = number else { continue };
        let row: Record = with_conn!(db, c => crls::table
            .find((&issuer, number))
            .select(Record::as_select())
            .first(c))?;
        out.push(row);
    }
    out.sort_by(|a, b| {
        (&a.issuer, a.crl_partition, &a.kind).cmp(&(&b.issuer, b.crl_partition, &b.kind))
    });
    Ok(out)
}

/// Partitions of an issuer that have had a complete CRL.
pub fn published_partitions(db: &mut Db, issuer: &str) -> Result<BTreeSet<u32>> {
    let parts: Vec<i32> = with_conn!(db, c => crls::table
        .filter(crls::issuer.eq(issuer))
        .filter(crls::kind.eq(Kind::Complete.as_str()))
        .select(crls::crl_partition)
        .distinct()
        .load(c))?;
    Ok(parts.into_iter().map(|p| p.max(0) as u32).collect())
}

/// Stores a publication record (inside a write transaction).
pub fn insert(db: &mut Db, record: &Record) -> Result<()> {
    with_conn!(db, c => diesel::insert_into(crls::table).values(record).execute(c))?;
    Ok(())
}
