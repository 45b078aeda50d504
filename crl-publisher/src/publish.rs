//! Publication of a signed CRL: never a half-written file, never an older
//! CRL over a newer one.
//!
//! 1. The DER is written to a temporary file in the publication directory
//!    and fsynced.
//! 2. In one database write transaction (which holds the writers' lock, so
//!    publishers sharing a database take turns): if the scope already has a
//!    CRL of a higher or equal number, in the database or in the file on
//!    disk, the new one is dropped; otherwise its record and an audit record
//!    `crl.publish` are inserted, the temporary file is renamed over the
//!    published one and the directory is fsynced, and the transaction commits.
//!
//! A reader of the directory sees the old file or the new one, whole.

use crate::encode::CrlDer;
use crate::error::{CrlError, Result};
use crate::scan;
use crate::scope::Scope;
use crate::state::{self, Record};
use chrono::{DateTime, NaiveDateTime, Utc};
use pki_store::domain::AuditAction;
use pki_store::storage::db_time;
use pki_store::Context;
use std::fs;
use std::io::Write;
use std::path::Path;

/// A signed CRL not yet published.
#[derive(Debug, Clone)]
pub struct Generated {
    pub scope: Scope,
    pub number: i64,
    pub base_number: Option<i64>,
    pub this_update: DateTime<Utc>,
    pub next_update: DateTime<Utc>,
    pub expiry_cutoff: Option<NaiveDateTime>,
    pub feed_position: i64,
    pub entries: u64,
    pub der: CrlDer,
    pub sha256: String,
    /// Time spent reading, encoding and signing.
    pub elapsed: std::time::Duration,
}

/// What happened to a signed CRL.
#[derive(Debug, Clone)]
pub enum Outcome {
    Published(Box<Record>),
    /// The scope already had CRL number `by` (>= this one): dropped.
    Superseded {
        by: i64,
    },
}

/// Writes `bytes` to `path` durably (create, write, fsync).
pub fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = fs::File::create(path).map_err(|e| CrlError::io("cannot create", path, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| CrlError::io("cannot write", path, e))
}

/// Fsyncs a directory (so that a rename in it is durable).
pub fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| CrlError::io("cannot sync directory", dir, e))
}

/// Writes a file atomically: temporary file, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    write_synced(&tmp, bytes)?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        CrlError::io("cannot rename into", path, e)
    })?;
    sync_dir(dir)
}

/// Publishes a signed CRL into `out_dir` and records it.
pub fn publish(ca: &mut Context, out_dir: &Path, g: &Generated) -> Result<Outcome> {
    fs::create_dir_all(out_dir).map_err(|e| CrlError::io("cannot create", out_dir, e))?;
    let out_dir =
        std::path::absolute(out_dir).map_err(|e| CrlError::io("cannot resolve", out_dir, e))?;
    let file = g.scope.file_name(&ca.config);
    let final_path = out_dir.join(&file);
    let tmp = out_dir.join(format!(".{file}.{}.{}.tmp", g.number, std::process::id()));
    write_synced(&tmp, g.der.as_bytes())?;
    let now = ca.clock.now();
    let record = Record {
        issuer: g.scope.issuer.clone(),
        number: g.number,
        crl_partition: g.scope.partition as i32,
        kind: g.scope.kind.as_str().to_string(),
        base_number: g.base_number,
        this_update: g.this_update.naive_utc(),
        next_update: g.next_update.naive_utc(),
        expiry_cutoff: g.expiry_cutoff,
        feed_position: g.feed_position,
        entries: g.entries as i64,
        size_bytes: g.der.len() as i64,
        sha256: g.sha256.clone(),
        url: g.scope.url(&ca.config),
        location: final_path.to_string_lossy().into_owned(),
        published_at: db_time(now),
    };
    let actor = ca.actor.clone();
    let result = ca.db.write(&actor, now, |tx| {
        if let Some(newer) = state::latest(tx.db, &g.scope.issuer, g.scope.partition, g.scope.kind)?
        {
            if newer.number >= g.number {
                return Ok(Outcome::Superseded { by: newer.number });
            }
        }
        if final_path.exists() {
            // Also what is on disk: a publisher whose commit failed after
            // its rename must not be overwritten by an older number.
            if let Ok(on_disk) = scan::scan_file(&final_path, None) {
                if let Some(n) = on_disk.number.filter(|n| *n >= g.number) {
                    return Ok(Outcome::Superseded { by: n });
                }
            }
        }
        state::insert(tx.db, &record)?;
        tx.audit(
            AuditAction::CrlPublish,
            &format!("{}/{}", g.scope.issuer, file),
            serde_json::json!({
                "kind": g.scope.kind.as_str(), "partition": g.scope.partition, "number": g.number,
                "base_number": g.base_number, "this_update": record.this_update,
                "next_update": record.next_update, "entries": g.entries, "sha256": g.sha256,
                "url": record.url,
            }),
        );
        fs::rename(&tmp, &final_path)
            .map_err(|e| CrlError::io("cannot rename into", &final_path, e))?;
        sync_dir(&out_dir)?;
        Ok(Outcome::Published(Box::new(record.clone())))
    });
    if !matches!(result, Ok(Outcome::Published(_))) {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.crl");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
    }
}
