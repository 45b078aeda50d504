//! The CAs of the hierarchy as stored: their rows and their OCSP responder
//! certificates, read without any key. Opening a CA's key is `pki_keys::authority`.

use crate::error::{CaError, Result};
use crate::storage::models::{AuthorityRow, OcspResponderRow};
use crate::storage::schema::{authorities, ocsp_responders};
use crate::storage::Db;
use crate::with_conn;
use diesel::prelude::*;

/// The prefix of the key reference of a CA whose key is kept offline (the
/// root made in a key ceremony): online processes never open it.
pub const OFFLINE_PREFIX: &str = "offline:";

/// Whether a CA's key is kept offline: the one rule every online process
/// asks before signing with a CA (the ARL, the root's responder rotation).
pub fn is_offline(row: &AuthorityRow) -> bool {
    row.key_ref.starts_with(OFFLINE_PREFIX)
}

/// All authorities, the root first.
pub fn list(db: &mut Db) -> Result<Vec<AuthorityRow>> {
    let mut rows: Vec<AuthorityRow> =
        with_conn!(db, c => authorities::table.select(AuthorityRow::as_select()).load(c))?;
    rows.sort_by_key(|r| (r.parent.is_some(), r.name.clone()));
    Ok(rows)
}

pub fn find(db: &mut Db, name: &str) -> Result<AuthorityRow> {
    with_conn!(db, c => authorities::table.find(name).select(AuthorityRow::as_select()).first(c).optional())?
        .ok_or(CaError::NotInitialised)
}

/// The current (latest) OCSP responder certificate of an authority.
pub fn current_responder(db: &mut Db, authority: &str) -> Result<Option<OcspResponderRow>> {
    Ok(with_conn!(db, c => ocsp_responders::table
        .filter(ocsp_responders::authority.eq(authority))
        .order(ocsp_responders::not_after.desc())
        .select(OcspResponderRow::as_select())
        .first(c)
        .optional())?)
}

/// Days left (fractional) before the current OCSP responder certificate
/// of each authority expires, at `now` (negative: expired), by authority.
pub fn responder_days_left(
    db: &mut Db,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<(String, f64)>> {
    let mut out = Vec::new();
    for a in list(db)? {
        if let Some(r) = current_responder(db, &a.name)? {
            let left = r.not_after.and_utc() - now;
            out.push((a.name, left.num_seconds() as f64 / 86_400.0));
        }
    }
    Ok(out)
}

/// The one rule for rotating a responder certificate ahead of its end:
/// does the current one of `authority` end within `within` of `now`
/// (or is there none)?
pub fn responder_needs_rotation(
    db: &mut Db,
    authority: &str,
    now: chrono::DateTime<chrono::Utc>,
    within: chrono::Duration,
) -> Result<bool> {
    Ok(current_responder(db, authority)?.is_none_or(|r| r.not_after.and_utc() <= now + within))
}
