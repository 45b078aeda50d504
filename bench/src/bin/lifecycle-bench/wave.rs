//! One wave end to end: wait for quiet services, record the events, watch
//! them published (from the database and from outside), read the delays,
//! wait for a complete CRL, check the result, and sum it all up as the
//! wave's JSON object.

use crate::checks::check_wave;
use crate::cli::Args;
use crate::db;
use crate::observer::Observer;
use crate::publication;
use crate::scenario::Wave;
use crate::services::Services;
use crate::stats::{loadavg, round3, seconds};
use crate::workload;
use ca_core::Ca;
use serde_json::{json, Value};
use std::path::Path;

/// Runs `wave`; returns its results (the JSON output's `waves[]`).
pub fn run_wave(
    args: &Args,
    crl_dir: &Path,
    ca: &mut Ca,
    services: &mut Services,
    wave: Wave,
) -> anyhow::Result<Value> {
    let spec = wave.spec();
    let population = args.population;
    eprintln!("\n== wave {}: {population} events", spec.name);
    let quiet = services.wait_ready(ca, 0)?;
    let load_before = loadavg();
    let wave_serials = db::wave_serials(&mut ca.db, wave)?;

    let recorded = workload::record(ca, args, wave)?;
    let due = recorded.due;
    let mut observer = Observer::new(ca, wave, &wave_serials, due, &services.ocsp.addr, crl_dir)?;

    let observed =
        publication::wait_published(ca, services, wave, due, args.timeout_seconds, &mut observer)?;
    let outside = observer.finish();
    let delays = publication::delays(ca, wave, due, recorded.start, population)?;
    eprintln!(
        "  published: last request in both {:.1} s after due (observed here {:.1} s)",
        delays.last_in_both,
        seconds(observed - due)
    );
    let complete_after =
        publication::wait_complete_crl(ca, services, wave, due, args.complete_crl_timeout)?;

    let checks = check_wave(
        ca,
        wave,
        population,
        &services.ocsp.addr,
        crl_dir,
        complete_after.is_some(),
    )?;

    Ok(json!({
        "wave": spec.name,
        "events": population,
        "requests_recorded": recorded.requests,
        "revoke_requests": delays.requests,
        "certificates_revoked": delays.certificates,
        "issuer": spec.issuer,
        "quiet_wait_seconds": round3(quiet),
        "load_average_before": load_before,
        "load_average_after": loadavg(),
        "due_at": due.to_rfc3339(),
        "due": spec.due,
        "check_seconds": round3(recorded.check_seconds),
        "record_seconds": round3(recorded.record_seconds),
        "record_events_per_second": (population as f64 / recorded.record_seconds).round(),
        "seconds_from_due": delays.seconds_from_due,
        "execution_span_seconds": round3(delays.execution_span),
        "last_published_in_both_seconds": round3(delays.last_in_both),
        "complete_crl_seconds": complete_after,
        "sla_verdicts": delays.verdicts,
        "observed_from_outside": outside,
        "checks": checks,
        "services_memory": services.memory(),
    }))
}
