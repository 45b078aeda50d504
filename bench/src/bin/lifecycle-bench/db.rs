//! What the benchmark reads in the database, cheap reads made while the
//! services work: a wave's revoke requests and their change-feed
//! positions, the responders' publication marks, the CRLs' feed positions,
//! the wave's certificates and the state of its identities.

use crate::scenario::Wave;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use pki_store::storage::schema::revocation_requests as rr;
use pki_store::storage::schema::{certificates, crls, identities, ocsp_publications};
use pki_store::storage::Db;
use pki_store::with_conn;

/// The wave's revoke requests: (count, executed, largest feed position).
pub fn progress(db: &mut Db, prefix: &str) -> anyhow::Result<(i64, i64, Option<i64>)> {
    let pattern = format!("{prefix}%");
    let total: i64 = with_conn!(db, c => rr::table
        .filter(rr::id.like(&pattern))
        .filter(rr::change.eq("revoke"))
        .count()
        .get_result(c))?;
    let (executed, max_pos): (i64, Option<i64>) = with_conn!(db, c => rr::table
        .filter(rr::id.like(&pattern))
        .filter(rr::change.eq("revoke"))
        .filter(rr::state.eq("executed"))
        .select((diesel::dsl::count_star(), diesel::dsl::max(rr::feed_position)))
        .first(c))?;
    Ok((total, executed, max_pos))
}

/// The feed position of the newest OCSP publication mark.
pub fn max_ocsp_position(db: &mut Db) -> anyhow::Result<Option<i64>> {
    Ok(with_conn!(db, c => ocsp_publications::table
        .select(diesel::dsl::max(ocsp_publications::feed_position))
        .first::<Option<i64>>(c))?)
}

/// The feed position of the newest CRL (complete or delta) of `issuer`.
pub fn max_crl_position(db: &mut Db, issuer: &str) -> anyhow::Result<Option<i64>> {
    Ok(with_conn!(db, c => crls::table
        .filter(crls::issuer.eq(issuer))
        .select(diesel::dsl::max(crls::feed_position))
        .first::<Option<i64>>(c))?)
}

/// The first complete CRL of `issuer` read at or past `position`.
pub fn first_complete_crl(
    db: &mut Db,
    issuer: &str,
    position: i64,
) -> anyhow::Result<Option<NaiveDateTime>> {
    Ok(with_conn!(db, c => crls::table
        .filter(crls::issuer.eq(issuer))
        .filter(crls::kind.eq("complete"))
        .filter(crls::feed_position.ge(position))
        .select(diesel::dsl::min(crls::published_at))
        .first::<Option<NaiveDateTime>>(c))?)
}

/// How many issuing CAs have a complete CRL.
pub fn issuers_with_complete_crl(db: &mut Db) -> anyhow::Result<usize> {
    Ok(with_conn!(db, c => crls::table
        .filter(crls::kind.eq("complete"))
        .select(crls::issuer)
        .distinct()
        .load::<String>(c))?
    .len())
}

/// A certificate's (serial, status, reason, issuer).
pub type StatusRow = (String, String, Option<String>, String);

/// The wave's certificates.
pub fn wave_certificates(db: &mut Db, wave: Wave) -> anyhow::Result<Vec<StatusRow>> {
    let pattern = format!("{}%", wave.spec().card_prefix);
    Ok(with_conn!(db, c => certificates::table
        .filter(certificates::card_number.like(&pattern))
        .select((certificates::serial, certificates::status,
                 certificates::revocation_reason, certificates::issuer))
        .load(c))?)
}

/// The serials of the wave's certificates.
pub fn wave_serials(db: &mut Db, wave: Wave) -> anyhow::Result<Vec<String>> {
    Ok(wave_certificates(db, wave)?
        .into_iter()
        .map(|(serial, ..)| serial)
        .collect())
}

/// How many of these identities (registry keys) are inactive.
pub fn inactive_identities(db: &mut Db, keys: &[String]) -> anyhow::Result<i64> {
    let mut n = 0i64;
    for chunk in keys.chunks(1000) {
        let c: i64 = with_conn!(db, c => identities::table
            .filter(identities::registry_key.eq_any(chunk))
            .filter(identities::status.eq("inactive"))
            .count()
            .get_result(c))?;
        n += c;
    }
    Ok(n)
}
