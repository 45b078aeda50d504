//! Revocation requests: what registry events ask the CA to do, with their
//! deadlines. (Being written: placeholder API.)

use crate::ca::Ca;
use crate::error::Result;

/// What one run of [`execute_due`] did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ExecuteReport {
    /// Requests waiting for a new card's certificates that became due.
    pub armed: usize,
    /// Requests executed.
    pub executed: usize,
    /// Certificates whose status changed.
    pub certificates: usize,
}

/// Executes the requests that are due (at most `limit`).
pub fn execute_due(_ca: &mut Ca, _limit: usize) -> Result<ExecuteReport> {
    Ok(ExecuteReport::default())
}
