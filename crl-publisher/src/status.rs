//! The signer's status file in the publication directory
//! (`pki_store::urls::SIGNER_STATUS_FILE`): written after every pass of the
//! publisher loop, read by `crl-server` for its `/health` and `/metrics`,
//! so that the server needs neither the database nor the signer's memory.
//! Replaced by rename (never half-written); not fsynced (it is rewritten
//! every pass and says nothing that must survive a crash).

use crate::catalog::Catalog;
use crate::error::{CrlError, Result};
use chrono::{DateTime, Utc};
use std::path::Path;

/// Writes the status as of `now`; the server calls the signer stale after
/// `stale_after` without a new one.
pub fn write(
    dir: &Path,
    catalog: &Catalog,
    now: DateTime<Utc>,
    stale_after: chrono::Duration,
) -> Result<()> {
    let (ok, health) = catalog.health(now, stale_after);
    let v = serde_json::json!({
        "written_at": now.to_rfc3339(),
        "stale_after_seconds": stale_after.num_seconds(),
        "ok": ok,
        "health": health,
        "metrics": catalog.metrics(now),
    });
    let path = dir.join(pki_store::urls::SIGNER_STATUS_FILE);
    let tmp = dir.join(format!(
        "{}.{}.tmp",
        pki_store::urls::SIGNER_STATUS_FILE,
        std::process::id()
    ));
    std::fs::write(&tmp, v.to_string()).map_err(|e| CrlError::io("cannot write", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        CrlError::io("cannot rename into", &path, e)
    })
}
