//! Reading the append-only, hash-chained audit log: [`verify`] walks the
//! chain and names the first record that was altered, removed or
//! reordered; [`list`] shows it. The records are written and chained by
//! [`Db::write`](crate::storage::Db::write) (`storage::chain`).
//!
//! The chain alone cannot tell a cut or rewritten *tail* (the attacker
//! moves the head too). The Merkle tree over the same records
//! ([`crate::merkle`]) and its signed checkpoints ([`crate::checkpoint`])
//! can: [`tree_head`] is the current size and root, [`inclusion`] and
//! [`consistency`] are proofs, and [`verify_tree`] recomputes the tree and
//! holds it against checkpoints whose signatures the caller has checked.

use crate::checkpoint::Checkpoint;
use crate::merkle::{self, Hash};
use crate::storage::chain::{self, record_hash, GENESIS};
use crate::storage::models::AuditRow;
use crate::storage::schema::{audit_head, audit_log};
use crate::storage::{Db, StorageError};
use crate::with_conn;
use diesel::prelude::*;

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
    #[error(
        "checkpoint {file} covers records #1..#{size} but the log ends at #{found}: \
         records after #{found} were removed (the tail was cut and the head moved back)"
    )]
    TailRemoved { file: String, size: u64, found: u64 },
    #[error(
        "checkpoint {file}: the first {size} records no longer hash to its signed root: \
         records between #{from} and #{size} were rewritten since it was signed"
    )]
    Rewritten { file: String, size: u64, from: u64 },
    #[error("checkpoints {first} and {second} both cover {size} records but sign different roots: the log was forked")]
    Forked {
        first: String,
        second: String,
        size: u64,
    },
    #[error("checkpoint {later} (#1..#{later_size}) is not consistent with checkpoint {earlier} (#1..#{earlier_size})")]
    Inconsistent {
        earlier: String,
        earlier_size: u64,
        later: String,
        later_size: u64,
    },
    #[error("checkpoint {file} is for the log {found:?}, not {expected:?}")]
    OtherLog {
        file: String,
        found: String,
        expected: String,
    },
    #[error("audit_head's Merkle frontier does not match the records: the head was edited")]
    FrontierMismatch,
    #[error("audit record #{seq} does not exist (the log has {size} records)")]
    NoSuchRecord { seq: i64, size: i64 },
    #[error("tree size {size} is outside the log (1..={records})")]
    BadSize { size: i64, records: i64 },
    #[error("a consistency proof needs sizes 1 <= A <= B <= {records}; got {old} and {new}")]
    BadSizes { old: i64, new: i64, records: i64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
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

/// The Merkle tree head of the whole log: its size and root (from the
/// frontier kept in `audit_head`; recomputed when that is not up to date).
pub fn tree_head(db: &mut Db) -> Result<(u64, Hash), AuditError> {
    let head = chain::read_head(db)?;
    let frontier = chain::frontier_of(db, &head)?;
    Ok((frontier.size(), frontier.root()))
}

/// The leaf hashes of records `#1..=#size`; fewer when records are missing.
fn leaf_hashes(db: &mut Db, size: i64) -> Result<Vec<Hash>, AuditError> {
    let mut leaves = Vec::with_capacity(size.max(0) as usize);
    chain::for_each_record_hash(db, size, |_, hash| {
        leaves.push(chain::record_leaf(hash));
        Ok(())
    })?;
    Ok(leaves)
}

/// The number of records (the head's sequence number).
fn record_count(db: &mut Db) -> Result<i64, AuditError> {
    Ok(chain::read_head(db)?.seq)
}

/// An inclusion proof of one record in the tree of the first `tree_size`
/// records.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Inclusion {
    pub seq: i64,
    pub leaf_index: u64,
    pub tree_size: u64,
    /// The leaf data: the record's stored hash (hex of 32 bytes).
    pub record_hash: String,
    pub leaf_hash: String,
    /// Bottom up, hex.
    pub audit_path: Vec<String>,
    pub root: String,
}

/// The inclusion proof of record `#seq` in the tree of `size` records
/// (default: the whole log).
pub fn inclusion(db: &mut Db, seq: i64, size: Option<i64>) -> Result<Inclusion, AuditError> {
    let records = record_count(db)?;
    let size = size.unwrap_or(records);
    if size < 1 || size > records {
        return Err(AuditError::BadSize { size, records });
    }
    if seq < 1 || seq > size {
        return Err(AuditError::NoSuchRecord { seq, size });
    }
    let leaves = leaf_hashes(db, size)?;
    if leaves.len() as i64 != size {
        return Err(AuditError::Missing {
            seq: leaves.len() as i64 + 1,
            before: leaves.len() as i64,
            after: size,
        });
    }
    let record: String = with_conn!(db, c => audit_log::table
        .find(seq)
        .select(audit_log::hash)
        .first(c))
    .map_err(StorageError::from)?;
    let index = (seq - 1) as u64;
    let path = merkle::inclusion_proof(&leaves, index)
        .map_err(|_| AuditError::NoSuchRecord { seq, size })?;
    Ok(Inclusion {
        seq,
        leaf_index: index,
        tree_size: size as u64,
        leaf_hash: hex::encode(leaves[index as usize]),
        record_hash: record,
        audit_path: path.iter().map(hex::encode).collect(),
        root: hex::encode(merkle::root(&leaves)),
    })
}

/// A consistency proof between the trees of the first `old` and `new` records.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Consistency {
    pub old_size: u64,
    pub old_root: String,
    pub new_size: u64,
    pub new_root: String,
    /// Hex, in the order of RFC 9162 section 2.1.4.
    pub proof: Vec<String>,
}

/// The consistency proof between the trees of `old` and `new` records.
pub fn consistency(db: &mut Db, old: i64, new: i64) -> Result<Consistency, AuditError> {
    let records = record_count(db)?;
    if old < 1 || old > new || new > records {
        return Err(AuditError::BadSizes { old, new, records });
    }
    let leaves = leaf_hashes(db, new)?;
    if leaves.len() as i64 != new {
        return Err(AuditError::Missing {
            seq: leaves.len() as i64 + 1,
            before: leaves.len() as i64,
            after: new,
        });
    }
    let proof = merkle::consistency_proof(&leaves, old as u64)
        .map_err(|_| AuditError::BadSizes { old, new, records })?;
    Ok(Consistency {
        old_size: old as u64,
        old_root: hex::encode(merkle::root(&leaves[..old as usize])),
        new_size: new as u64,
        new_root: hex::encode(merkle::root(&leaves)),
        proof: proof.iter().map(hex::encode).collect(),
    })
}

/// What [`verify_tree`] found.
#[derive(Debug, Clone)]
pub struct TreeReport {
    pub size: u64,
    pub root: Hash,
    pub checkpoints: usize,
}

/// Recomputes the Merkle tree of the first `records` records (after
/// [`verify`] passed) and holds it against `checkpoints` (file name and
/// checkpoint, signatures already checked by the caller): every checkpoint
/// must be of this log, within it and signed over the root of its size;
/// checkpoints must agree with each other (same size, same root; each
/// consistent with the next); and `audit_head`'s frontier must be the
/// records' own.
pub fn verify_tree(
    db: &mut Db,
    records: i64,
    log_name: &str,
    checkpoints: &[(String, Checkpoint)],
) -> Result<TreeReport, AuditError> {
    let mut sorted: Vec<&(String, Checkpoint)> = checkpoints.iter().collect();
    sorted.sort_by_key(|(name, cp)| (cp.size, name.clone()));
    for (file, cp) in &sorted {
        if cp.log != log_name {
            return Err(AuditError::OtherLog {
                file: file.clone(),
                found: cp.log.clone(),
                expected: log_name.to_string(),
            });
        }
    }
    for pair in sorted.windows(2) {
        let ((a_file, a), (b_file, b)) = (pair[0], pair[1]);
        if a.size == b.size && a.root != b.root {
            return Err(AuditError::Forked {
                first: a_file.clone(),
                second: b_file.clone(),
                size: a.size,
            });
        }
    }
    let leaves = leaf_hashes(db, records)?;
    let size = leaves.len() as u64;
    let mut frontier = merkle::Frontier::new();
    let mut roots = std::collections::BTreeMap::new();
    let wanted: std::collections::BTreeSet<u64> = sorted.iter().map(|(_, cp)| cp.size).collect();
    for leaf in &leaves {
        frontier.push(*leaf);
        if wanted.contains(&frontier.size()) {
            roots.insert(frontier.size(), frontier.root());
        }
    }
    // The last checkpoint that still matches: a rewrite lies after it.
    let mut good: u64 = 0;
    for (file, cp) in &sorted {
        match roots.get(&cp.size) {
            None if cp.size > 0 => {
                return Err(AuditError::TailRemoved {
                    file: file.clone(),
                    size: cp.size,
                    found: size,
                })
            }
            Some(root) if *root != cp.root => {
                return Err(AuditError::Rewritten {
                    file: file.clone(),
                    size: cp.size,
                    from: good + 1,
                })
            }
            _ => good = cp.size,
        }
    }
    for pair in sorted.windows(2) {
        let ((a_file, a), (b_file, b)) = (pair[0], pair[1]);
        if a.size == 0 || a.size == b.size {
            continue;
        }
        let proof = merkle::consistency_proof(&leaves[..b.size as usize], a.size);
        let ok = proof.is_ok_and(|p| {
            merkle::verify_consistency(a.size, &a.root, b.size, &b.root, &p).is_ok()
        });
        if !ok {
            return Err(AuditError::Inconsistent {
                earlier: a_file.clone(),
                earlier_size: a.size,
                later: b_file.clone(),
                later_size: b.size,
            });
        }
    }
    let head = chain::read_head(db)?;
    if head.tree_size == head.seq && head.seq as u64 == size {
        let stored = merkle::Frontier::from_text(size, &head.frontier)
            .map_err(|_| AuditError::FrontierMismatch)?;
        if stored.root() != frontier.root() {
            return Err(AuditError::FrontierMismatch);
        }
    }
    Ok(TreeReport {
        size,
        root: frontier.root(),
        checkpoints: sorted.len(),
    })
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
