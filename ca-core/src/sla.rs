//! The 24-hour revocation commitment (CPS 4.9.5) measured per request.
//! (Being written: placeholder API.)

use crate::error::Result;
use crate::storage::Db;
use chrono::{DateTime, Utc};

/// Counts over all requests, for `/metrics`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SlaSummary {
    pub total: u64,
    /// Not yet executed.
    pub pending: u64,
    /// Executed, not yet in both OCSP and a CRL.
    pub unpublished: u64,
    /// Unfinished and past the 5-minute target.
    pub at_risk: u64,
    /// Finished after, or still unfinished beyond, the 24-hour limit.
    pub late: u64,
    /// Age of the oldest unfinished request since it was due (0 if none).
    pub oldest_unfinished_seconds: i64,
}

/// Records when executed requests reached OCSP and a CRL; returns how many
/// requests got a new time.
pub fn stamp_publications(_db: &mut Db) -> Result<usize> {
    Ok(0)
}

/// The counts at `now`.
pub fn summary(_db: &mut Db, _now: DateTime<Utc>) -> Result<SlaSummary> {
    Ok(SlaSummary::default())
}
