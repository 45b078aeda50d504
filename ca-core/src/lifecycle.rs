//! The certificate lifecycle state machine. (Being written: placeholder API.)

use crate::ca::Ca;
use crate::error::Result;

/// Marks active certificates past their notAfter as expired; returns how many.
pub fn expire_due(_ca: &mut Ca) -> Result<usize> {
    Ok(0)
}
