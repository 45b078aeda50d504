//! Reading the append-only, hash-chained audit log: [`verify`] walks the
//! chain and names the first record that was altered, removed or
//! reordered; [`list`] shows it. The records are written and chained by
//! [`Db::write`](crate::storage::Db::write) (`storage::chain`).

use crate::storage::chain::{record_hash, GENESIS};
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
