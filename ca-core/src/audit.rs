//! The append-only, hash-chained audit log. Every state change queues its
//! records inside [`Db::write`](crate::storage::Db::write); they are chained
//! here (each record's hash covers its content and the previous hash) and
//! inserted in the same transaction. [`verify`] walks the chain and names the
//! first record that was altered, removed or reordered.

use crate::storage::models::AuditRow;
use crate::storage::schema::{audit_head, audit_log};
use crate::storage::{Db, StorageError};
use crate::with_conn;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use sha2::{Digest, Sha256};

/// The hash that precedes the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Rows inserted per statement.
const INSERT_CHUNK: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit record #{seq} was altered: its hash does not match its content")]
    Altered { seq: i64 },
    #[error("audit record #{seq} is missing: the chain goes from #{before} to #{after}")]
    Missing { seq: i64, before: i64, after: i64 },
    #[error(
        "audit record #{seq} does not follow record #{previous}: records were removed or reordered"
    )]
    Broken { seq: i64, previous: i64 },
    #[error("the audit chain ends at #{found} but its head says #{head}: records at the end were removed")]
    Truncated { found: i64, head: i64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

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

/// Walks the whole chain in pages; returns the number of records.
pub fn verify(db: &mut Db) -> Result<i64, AuditError> {
    const PAGE: i64 = 10_000;
    let mut expected_seq = 1i64;
    let mut prev = GENESIS.to_string();
    loop {
        let page: Vec<AuditRow> = with_conn!(db, c => audit_log::table
            .filter(audit_log::seq.ge(expected_seq))
            .order(audit_log::seq)
            .limit(PAGE)
            .select(AuditRow::as_select())
            .load(c))
        .map_err(StorageError::from)?;
        let done = (page.len() as i64) < PAGE;
        for row in page {
            if row.seq != expected_seq {
                return Err(AuditError::Missing {
                    seq: expected_seq,
                    before: expected_seq - 1,
                    after: row.seq,
                });
            }
            if row.prev_hash != prev {
                return Err(AuditError::Broken {
                    seq: row.seq,
                    previous: row.seq - 1,
                });
            }
            let hash = record_hash(
                row.seq,
                &row.at,
                &row.actor,
                &row.action,
                &row.subject,
                &row.details,
                &row.prev_hash,
            );
            if hash != row.hash {
                return Err(AuditError::Altered { seq: row.seq });
            }
            prev = row.hash;
            expected_seq += 1;
        }
        if done {
            break;
        }
    }
    let (head_seq, head_hash): (i64, String) = with_conn!(db, c => audit_head::table
        .find(1)
        .select((audit_head::seq, audit_head::hash))
        .first(c))
    .map_err(StorageError::from)?;
    let last = expected_seq - 1;
    if head_seq != last || head_hash != prev {
        return Err(AuditError::Truncated {
            found: last,
            head: head_seq,
        });
    }
    Ok(last)
}

/// The last `tail` records (all when None), oldest first.
pub fn list(db: &mut Db, tail: Option<i64>) -> Result<Vec<AuditRow>, StorageError> {
    let mut rows: Vec<AuditRow> = match tail {
        Some(n) => with_conn!(db, c => audit_log::table
            .order(audit_log::seq.desc())
            .limit(n)
            .select(AuditRow::as_select())
            .load(c))?,
        None => with_conn!(db, c => audit_log::table
            .order(audit_log::seq.desc())
            .select(AuditRow::as_select())
            .load(c))?,
    };
    rows.reverse();
    Ok(rows)
}
