//! The audit chain's writing side, inside [`Db::write`](super::Db::write):
//! every state change queues its records; they are chained here (each
//! record's hash covers its content and the previous hash) and inserted in
//! the same transaction, and the chain's head moves with them. The head
//! also keeps the Merkle tree's frontier over the same records
//! ([`crate::merkle`]: the leaf of a record is its hash), moved in the same
//! transaction, so the root of the whole log is always at hand.

use super::models::AuditRow;
use super::schema::{audit_head, audit_log};
use super::{Db, StorageError};
use crate::merkle::{self, Frontier};
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

/// The chain's head: the last sequence number and hash, and the Merkle
/// tree's frontier (`tree_size` records; behind `seq` only in a log written
/// before the tree existed, until the next write rebuilds it).
#[derive(Debug, Clone)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
    pub tree_size: i64,
    pub frontier: String,
}

/// Records read per page when the tree is rebuilt or recomputed.
const PAGE: i64 = 10_000;

/// Calls `f` with the sequence number and stored hash of every record
/// from `#1` to `#up_to`, in order, reading in pages.
pub fn for_each_record_hash(
    db: &mut Db,
    up_to: i64,
    mut f: impl FnMut(i64, &str) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    let mut after = 0i64;
    while after < up_to {
        let page: Vec<(i64, String)> = with_conn!(db, c => audit_log::table
            .filter(audit_log::seq.gt(after))
            .filter(audit_log::seq.le(up_to))
            .order(audit_log::seq)
            .limit(PAGE)
            .select((audit_log::seq, audit_log::hash))
            .load(c))?;
        let Some(last) = page.last().map(|(seq, _)| *seq) else {
            break;
        };
        for (seq, hash) in &page {
            f(*seq, hash)?;
        }
        after = last;
    }
    Ok(())
}

/// The leaf hash of a record whose stored hash is `hash_hex`. A stored
/// hash that is not 32 bytes of hex (a damaged row) is hashed as its text,
/// so the tree still changes with it.
pub fn record_leaf(hash_hex: &str) -> merkle::Hash {
    match merkle::leaf_data_of(hash_hex) {
        Some(data) => merkle::leaf_hash(&data),
        None => merkle::leaf_hash(hash_hex.as_bytes()),
    }
}

/// The tree's frontier over records `#1..=#seq`, from the stored head when
/// it is up to date, else recomputed from the records.
pub(crate) fn frontier_of(db: &mut Db, head: &Head) -> Result<Frontier, StorageError> {
    if head.tree_size == head.seq {
        if let Ok(f) = Frontier::from_text(head.tree_size as u64, &head.frontier) {
            return Ok(f);
        }
        log::warn!("audit_head's tree frontier is unreadable: rebuilding it from the records");
    }
    let mut frontier = Frontier::new();
    for_each_record_hash(db, head.seq, |_, hash| {
        frontier.push(record_leaf(hash));
        Ok(())
    })?;
    Ok(frontier)
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
    let columns = (
        audit_head::seq,
        audit_head::hash,
        audit_head::tree_size,
        audit_head::frontier,
    );
    let (seq, hash, tree_size, frontier): (i64, String, i64, String) = match db {
        Db::Pg(c) => audit_head::table
            .find(1)
            .select(columns)
            .for_update()
            .first(c)?,
        Db::Sqlite(c) => audit_head::table.find(1).select(columns).first(c)?,
    };
    Ok(Head {
        seq,
        hash,
        tree_size,
        frontier,
    })
}

/// Reads the head without locking it (for readers).
pub fn read_head(db: &mut Db) -> Result<Head, StorageError> {
    let (seq, hash, tree_size, frontier): (i64, String, i64, String) = with_conn!(db, c => audit_head::table
            .find(1)
            .select((
                audit_head::seq,
                audit_head::hash,
                audit_head::tree_size,
                audit_head::frontier,
            ))
            .first(c))?;
    Ok(Head {
        seq,
        hash,
        tree_size,
        frontier,
    })
}

/// Chains and inserts queued records, then moves the head and the tree's
/// frontier.
pub(crate) fn append(
    db: &mut Db,
    head: Head,
    pending: Vec<PendingAudit>,
) -> Result<(), StorageError> {
    if pending.is_empty() {
        return Ok(());
    }
    let mut frontier = frontier_of(db, &head)?;
    let mut prev = head.hash;
    let mut seq = head.seq;
    let mut rows = Vec::with_capacity(pending.len());
    for p in pending {
        seq += 1;
        let details = p.details.to_string();
        let hash = record_hash(seq, &p.at, &p.actor, &p.action, &p.subject, &details, &prev);
        frontier.push(record_leaf(&hash));
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
        .set((
            audit_head::seq.eq(seq),
            audit_head::hash.eq(&prev),
            audit_head::tree_size.eq(frontier.size() as i64),
            audit_head::frontier.eq(frontier.to_text()),
        ))
        .execute(c))?;
    Ok(())
}
