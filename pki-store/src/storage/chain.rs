//! The audit chain's writing side, inside [`Db::write`](super::Db::write):
//! every state change queues its records; they are chained here (each
//! record's hash covers its content and the previous hash) and inserted in
//! the same transaction, and the chain's head moves with them.

use super::models::AuditRow;
use super::schema::{audit_head, audit_log};
use super::{Db, StorageError};
use crate::with_conn;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use sha2::{Digest, Sha256};

/// The hash that precedes the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Rows inserted per statement.
const INSERT_CHUNK: usize = 500;

/// A record queued by a write transaction.
#[derive(Debug, Clone)]
pub struct PendingAudit {
    pub at: NaiveDateTime,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub details: serde_json::Value,
}

/// The chain's head: the last sequence number and hash.
#[derive(Debug, Clone)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
}

/// The hash of a record: SHA-256 over a JSON array of its fields, which is
/// an unambiguous encoding (every string is quoted and escaped).
pub fn record_hash(
    seq: i64,
    at: &NaiveDateTime,
    actor: &str,
    action: &str,
    subject: &str,
    details: &str,
    prev: &str,
) -> String {
    let at = at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
    let canonical = serde_json::json!([seq, at, actor, action, subject, details, prev]).to_string();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// Reads the head inside a write transaction, locking it on PostgreSQL
/// (SQLite's `BEGIN IMMEDIATE` already holds the write lock).
pub(crate) fn lock_head(db: &mut Db) -> Result<Head, StorageError> {
    let (seq, hash): (i64, String) = match db {
        Db::Pg(c) => audit_head::table
            .find(1)
            .select((audit_head::seq, audit_head::hash))
            .for_update()
            .first(c)?,
        Db::Sqlite(c) => audit_head::table
            .find(1)
            .select((audit_head::seq, audit_head::hash))
            .first(c)?,
    };
    Ok(Head { seq, hash })
}

/// Chains and inserts queued records, then moves the head.
pub(crate) fn append(
    db: &mut Db,
    head: Head,
    pending: Vec<PendingAudit>,
) -> Result<(), StorageError> {
    if pending.is_empty() {
        return Ok(());
    }
    let mut prev = head.hash;
    let mut seq = head.seq;
    let mut rows = Vec::with_capacity(pending.len());
    for p in pending {
        seq += 1;
        let details = p.details.to_string();
        let hash = record_hash(seq, &p.at, &p.actor, &p.action, &p.subject, &details, &prev);
        rows.push(AuditRow {
            seq,
            at: p.at,
            actor: p.actor,
            action: p.action,
            subject: p.subject,
            details,
            prev_hash: std::mem::replace(&mut prev, hash.clone()),
            hash,
        });
    }
    for chunk in rows.chunks(INSERT_CHUNK) {
        with_conn!(db, c => diesel::insert_into(audit_log::table).values(chunk).execute(c))?;
    }
    with_conn!(db, c => diesel::update(audit_head::table.find(1))
        .set((audit_head::seq.eq(seq), audit_head::hash.eq(&prev)))
        .execute(c))?;
    Ok(())
}
