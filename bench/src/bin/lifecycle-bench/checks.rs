//! The checks at the end of a wave: every certificate of the wave revoked
//! with the right reason in the database (and, for residency-ended, every
//! identity inactive), answered revoked by the responder over HTTP (one
//! OCSP request per certificate), and listed in the CRL files (the serials
//! compared one by one, and counted by `openssl crl -text`).

use crate::crl;
use crate::db;
use crate::ocsp;
use crate::scenario::Wave;
use anyhow::ensure;
use ca_core::Ca;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;

/// Runs the checks (an error when one fails); returns what was checked.
/// `complete_crl`: a complete CRL with the whole wave was published, so the
/// complete CRL file alone must list the wave.
pub fn check_wave(
    ca: &mut Ca,
    wave: Wave,
    population: usize,
    ocsp_addr: &str,
    crl_dir: &Path,
    complete_crl: bool,
) -> anyhow::Result<Value> {
    let spec = wave.spec();
    let issuer = spec.issuer;

    // The database.
    let certs = db::wave_certificates(&mut ca.db, wave)?;
    ensure!(
        certs.len() == population,
        "{} certificates on {}* cards, expected {population}",
        certs.len(),
        spec.card_prefix
    );
    let bad_db = certs
        .iter()
        .filter(|(_, status, reason, i)| {
            status != "revoked" || reason.as_deref() != Some(spec.reason) || i != issuer
        })
        .count();
    ensure!(
        bad_db == 0,
        "{bad_db} certificates not revoked ({}) in the database",
        spec.reason
    );
    let inactive = if wave == Wave::ResidencyEnded {
        let keys: Vec<String> = (0..population).map(|i| wave.registry_key(i)).collect();
        let n = db::inactive_identities(&mut ca.db, &keys)?;
        ensure!(
            n as usize == population,
            "{n} identities inactive, expected {population}"
        );
        Some(n)
    } else {
        None
    };

    // OCSP over HTTP.
    let serials: Vec<String> = certs.iter().map(|(s, ..)| s.clone()).collect();
    let ocsp = ocsp::check(ca, ocsp_addr, issuer, &serials, spec.crl_reason)?;
    eprintln!(
        "  OCSP over HTTP: {}/{} revoked ({}) in {} s",
        ocsp["revoked_with_reason"], ocsp["asked"], spec.reason, ocsp["seconds"]
    );
    ensure!(
        ocsp["revoked_with_reason"].as_u64() == Some(population as u64),
        "OCSP answers: {ocsp}"
    );

    // The CRL files.
    let complete_file = crl::complete_file(crl_dir, issuer);
    let delta_file = crl::delta_file(crl_dir, issuer);
    let complete = crl::entries(&complete_file)?;
    let delta = if delta_file.exists() {
        crl::entries(&delta_file)?
    } else {
        Vec::new()
    };
    let wanted: BTreeSet<String> = serials.iter().map(|s| crl::norm_hex(s)).collect();
    let in_complete = crl::listed(&complete, spec.crl_reason);
    let in_delta = crl::listed(&delta, spec.crl_reason);
    let missing_complete = wanted.difference(&in_complete).count();
    let missing_both = wanted
        .iter()
        .filter(|s| !in_complete.contains(*s) && !in_delta.contains(*s))
        .count();
    let openssl = crl::openssl_count(&complete_file);
    eprintln!(
        "  CRL files: {issuer}.crl lists {} entries (openssl crl -text: {}), {} of the wave's \
         {population}; delta lists {}",
        complete.len(),
        openssl.map_or("-".into(), |n| n.to_string()),
        in_complete.len(),
        delta.len()
    );
    ensure!(
        missing_both == 0,
        "{missing_both} certificates in neither the complete nor the delta CRL"
    );
    if complete_crl {
        ensure!(
            missing_complete == 0 && complete.len() == population,
            "the complete CRL misses {missing_complete} of the wave ({} entries)",
            complete.len()
        );
    }

    Ok(json!({
        "database_revoked": certs.len() - bad_db,
        "identities_inactive": inactive,
        "ocsp": ocsp,
        "crl_complete_entries": complete.len(),
        "crl_complete_openssl_serial_numbers": openssl,
        "crl_complete_wave_entries": in_complete.len(),
        "crl_delta_entries": delta.len(),
    }))
}
